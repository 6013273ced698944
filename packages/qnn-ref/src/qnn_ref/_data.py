"""MNIST from the four canonical IDX files, and the one definition of a network's input.

The 10,000-image test set ships inside this package (golden vectors and the CLIs need it at run
time); the 60,000-image training set lives in the repository under ``data/mnist/``. Every file is
checked against its published size and SHA-256 before use, so a truncated download or an edited
file is reported by name instead of silently changing accuracies.
"""

import gzip
import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np

from ._validate import positive_ints

__all__ = ["DataError", "load_mnist", "preprocess"]

#: Where the test set ships: ``qnn_ref/data/`` inside the installed package.
_PACKAGE_DATA = Path(__file__).resolve().parent / "data"
#: Where the training set lives relative to the repository root.
_REPO_DATA = Path("data") / "mnist"


class DataError(ValueError):
    """A missing, unreadable or corrupt MNIST file, or no directory holding one.

    The message is one line naming the file and saying what to do about it.
    """


@dataclass(frozen=True)
class _IdxFile:
    name: str
    magic: int
    shape: tuple[int, ...]
    sha256: str


# Sizes and checksums of the uncompressed files, as published with the data set.
_FILES: dict[str, tuple[_IdxFile, _IdxFile]] = {
    "train": (
        _IdxFile(
            "train-images-idx3-ubyte.gz",
            0x00000803,
            (60000, 28, 28),
            "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
        ),
        _IdxFile(
            "train-labels-idx1-ubyte.gz",
            0x00000801,
            (60000,),
            "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
        ),
    ),
    "test": (
        _IdxFile(
            "t10k-images-idx3-ubyte.gz",
            0x00000803,
            (10000, 28, 28),
            "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
        ),
        _IdxFile(
            "t10k-labels-idx1-ubyte.gz",
            0x00000801,
            (10000,),
            "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
        ),
    ),
}


def _find_train_dir() -> Path:
    """Find ``data/mnist`` above the current directory, else above this package's file.

    The first search finds the repository you are working in; the second finds the repository
    an editable install of qnn-ref points into, wherever you run from.
    """
    for start in (Path.cwd(), Path(__file__).resolve().parent):
        for directory in (start, *start.parents):
            candidate = directory / _REPO_DATA
            if (candidate / _FILES["train"][0].name).is_file():
                return candidate
    raise DataError(
        "no data/mnist directory with the MNIST training set found above the current directory "
        "or the qnn_ref package; pass --data-dir (data_dir=) pointing at the directory holding "
        "train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz"
    )


def _read_idx(path: Path, spec: _IdxFile) -> np.ndarray:
    """Read one gzipped IDX file, checking its checksum, magic number and dimensions."""
    fix = "restore the original file (see data/mnist/README.md in the pyrtlnet repository)"
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"MNIST file {path} is missing; {fix}") from None
    except OSError as error:
        raise DataError(f"cannot read MNIST file {path} ({error.strerror}); {fix}") from None
    try:
        data = gzip.decompress(raw)
    except (OSError, EOFError, gzip.BadGzipFile) as error:
        raise DataError(
            f"MNIST file {path} is corrupt (not a complete gzip file: {error}); {fix}"
        ) from None
    header_bytes = 4 * (1 + len(spec.shape))
    expected_bytes = header_bytes + int(np.prod(spec.shape))
    header = [int.from_bytes(data[i : i + 4], "big") for i in range(0, header_bytes, 4)]
    if header[0] != spec.magic:
        raise DataError(
            f"MNIST file {path} is corrupt (IDX magic number {header[0]:#010x}, "
            f"expected {spec.magic:#010x}); {fix}"
        )
    if header[1:] != list(spec.shape) or len(data) != expected_bytes:
        raise DataError(
            f"MNIST file {path} is corrupt (dimensions {header[1:]} and {len(data)} bytes, "
            f"expected {list(spec.shape)} and {expected_bytes} bytes); {fix}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise DataError(
            f"MNIST file {path} is corrupt (sha256 of its contents is {digest}, "
            f"expected {spec.sha256}); {fix}"
        )
    return np.frombuffer(data, dtype=np.uint8, offset=header_bytes).reshape(spec.shape).copy()


def load_mnist(
    split: Literal["train", "test"] = "test", data_dir: str | os.PathLike[str] | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load the MNIST training or test set from its two gzipped IDX files.

    Both files are checked against the SHA-256 of the original uncompressed files, so a
    corrupt or truncated copy is reported rather than quietly changing results.

    :param split: ``"test"`` (10,000 images) or ``"train"`` (60,000 images).
    :param data_dir: Directory holding the split's two ``.gz`` files. By default the test set
        is read from the copy shipped inside qnn-ref, and the training set from the first
        ``data/mnist/`` directory found in the current directory or any of its parents, then in
        the directory of the installed ``qnn_ref`` package or any of its parents (which finds the
        repository of an editable install).
    :returns: ``(images, labels)``: ``uint8`` images of shape ``[N, 28, 28]`` (0 is background,
        255 is ink) and ``uint8`` labels 0–9 of shape ``[N]``.
    :raises DataError: if a file is missing, unreadable or corrupt, or no training data
        directory is found; the message names the file.
    """
    if split not in _FILES:
        raise ValueError(f"MNIST split must be 'train' or 'test', not {split!r}")
    if data_dir is not None:
        directory = Path(data_dir)
    elif split == "test":
        directory = _PACKAGE_DATA
    else:
        directory = _find_train_dir()
    images_spec, labels_spec = _FILES[split]
    images = _read_idx(directory / images_spec.name, images_spec)
    labels = _read_idx(directory / labels_spec.name, labels_spec)
    return images, labels


def _interpolation(in_size: int, out_size: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Source indices and weights of a half-pixel-centre bilinear resize along one axis.

    The arithmetic is TensorFlow's ``ResizeBilinear`` kernel (``half_pixel_centers=True``) in
    float32: source coordinate ``(i + 0.5) * in/out - 0.5``, its floor and ceiling clamped to the
    image, and the fractional part as the weight of the upper neighbour.
    """
    scale = np.float32(in_size) / np.float32(out_size)
    centres = (np.arange(out_size, dtype=np.float32) + np.float32(0.5)) * scale - np.float32(0.5)
    floor = np.floor(centres)
    lower = np.maximum(floor.astype(np.int64), 0)
    upper = np.minimum(np.ceil(centres).astype(np.int64), in_size - 1)
    return lower, upper, centres - floor


def preprocess(images: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """Turn MNIST images into a network's float input: *the* one definition of "the input".

    Training and every inference backend (LiteRT, NumPy, PyRTL) call this function, so a model
    never sees an input prepared in a slightly different way from the one it was trained on.
    Pixels are scaled to ``[0, 1]`` (``x / 255`` in float32), then resized with a bilinear
    filter sampling at pixel centres and no antialiasing: the same arithmetic, in float32, as
    ``tf.image.resize(x, size, "bilinear")``. Quantization to the model's int8 input is a
    separate step (:func:`qnn_ref.quantize_input`) because it depends on the model.

    :param images: ``uint8`` images of shape ``[N, H, W]`` (``[N, 28, 28]`` for MNIST).
    :param size: ``(height, width)`` the network expects, e.g. ``(12, 12)``.
    :returns: float32 array of shape ``[N, height * width]``, row-major, values in ``[0, 1]``.
    :raises ValueError: if ``images`` is not a ``uint8`` array of shape ``[N, H, W]`` or
        ``size`` is not two positive integers.
    :raises TypeError: if ``size`` is not a sequence of integers.
    """
    images = np.asarray(images)
    if images.ndim != 3 or images.dtype != np.uint8:
        raise ValueError(
            f"images must be a uint8 array of shape [N, H, W], not {images.dtype} "
            f"of shape {list(images.shape)}"
        )
    height, width = positive_ints("size (height, width)", size, 2)
    x = images.astype(np.float32) / np.float32(255)
    y0, y1, wy = _interpolation(images.shape[1], height)
    x0, x1, wx = _interpolation(images.shape[2], width)
    # Along x, then along y, in exactly TensorFlow's order of operations.
    left, right = x[:, :, x0], x[:, :, x1]
    rows = left + (right - left) * wx
    top, bottom = rows[:, y0, :], rows[:, y1, :]
    resized = top + (bottom - top) * wy[:, None]
    return resized.reshape(len(images), height * width).astype(np.float32, copy=False)
