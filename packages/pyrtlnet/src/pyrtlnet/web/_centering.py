"""Centre a hand-drawn digit the way the MNIST digits were prepared.

LeCun, Cortes and Burges describe the preparation of MNIST: each NIST digit was scaled, keeping
its aspect ratio, to fit a 20x20 box (the anti-aliasing of that resize gives the grey levels),
then placed in a 28x28 image so that its centre of mass sits at the image centre. A digit drawn
in a browser is nothing like that until it is treated the same way: people draw small, large and
off-centre, and a network trained on MNIST has never seen any of those.
"""

import numpy as np

__all__ = ["BOX_SIZE", "IMAGE_SIZE", "center_digit"]

#: Side of the square MNIST images.
IMAGE_SIZE = 28
#: Side of the box the digit's bounding box is scaled into.
BOX_SIZE = 20


def _area_weights(size_in: int, size_out: int) -> np.ndarray:
    """``[size_out, size_in]`` weights of an area (box-filter) resize along one axis.

    Output pixel ``o`` covers input coordinates ``[o*s, (o+1)*s)`` with ``s = size_in /
    size_out``; its value is the mean of the input over that span, each input pixel weighted by
    the length of its overlap. Each row sums to 1, so ink is neither created nor lost.
    """
    step = size_in / size_out
    low = np.arange(size_out)[:, None] * step
    high = low + step
    pixel = np.arange(size_in)[None, :]
    overlap = np.minimum(high, pixel + 1) - np.maximum(low, pixel)
    return np.clip(overlap, 0, None) / step


def center_digit(pixels: np.ndarray) -> np.ndarray:
    """Scale and centre a drawn digit into a 28x28 MNIST-style image.

    The bounding box of the ink (every non-zero pixel) is resized with an area filter so that its
    longer side is :data:`BOX_SIZE` (20) pixels and the aspect ratio is kept, then placed in a
    28x28 black image at the whole-pixel offset that brings its centre of mass closest to the
    image centre (kept inside the image). The result is invariant to where the digit was drawn
    and, up to rounding of the grey levels, to how large.

    :param pixels: ``uint8`` grey image ``[H, W]``, white (255) ink on black (0), any size.
    :returns: ``uint8 [28, 28]``; all zeros if ``pixels`` holds no ink.
    :raises ValueError: if ``pixels`` is not a two-dimensional ``uint8`` array.
    """
    pixels = np.asarray(pixels)
    if pixels.ndim != 2 or pixels.dtype != np.uint8 or 0 in pixels.shape:
        raise ValueError(
            f"pixels must be a non-empty uint8 array of shape [height, width], not "
            f"{pixels.dtype} of shape {list(pixels.shape)}"
        )
    image = np.zeros((IMAGE_SIZE, IMAGE_SIZE), np.uint8)
    rows, cols = np.nonzero(pixels)
    if len(rows) == 0:
        return image
    crop = pixels[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1].astype(np.float64)
    height, width = crop.shape
    scale = BOX_SIZE / max(height, width)
    new_height = max(1, int(np.floor(height * scale + 0.5)))
    new_width = max(1, int(np.floor(width * scale + 0.5)))
    digit = _area_weights(height, new_height) @ crop @ _area_weights(width, new_width).T
    # Centre of mass in continuous coordinates (pixel i spans [i, i+1)); the target is the
    # image centre, 14.0.
    total = digit.sum()
    centre_row = digit.sum(axis=1) @ np.arange(new_height) / total + 0.5
    centre_col = digit.sum(axis=0) @ np.arange(new_width) / total + 0.5
    top = int(np.clip(np.floor(IMAGE_SIZE / 2 - centre_row + 0.5), 0, IMAGE_SIZE - new_height))
    left = int(np.clip(np.floor(IMAGE_SIZE / 2 - centre_col + 0.5), 0, IMAGE_SIZE - new_width))
    image[top : top + new_height, left : left + new_width] = np.clip(
        np.floor(digit + 0.5), 0, 255
    ).astype(np.uint8)
    return image
