"""center_digit: MNIST's preparation of a digit (20x20 box, centre of mass at the centre)."""

import re

import numpy as np
import pytest

from pyrtlnet.web import BOX_SIZE, IMAGE_SIZE, center_digit
from qnn_ref import load_mnist


@pytest.fixture(scope="module")
def digits() -> np.ndarray:
    images, _ = load_mnist("test")
    return images[:50]


def _on_canvas(image: np.ndarray, shape: tuple[int, int], top: int, left: int) -> np.ndarray:
    canvas = np.zeros(shape, np.uint8)
    canvas[top : top + image.shape[0], left : left + image.shape[1]] = image
    return canvas


def test_the_bounding_box_fills_twenty_pixels_and_the_centre_of_mass_is_central(digits):
    for digit in digits:
        # Drawn small in a corner of a large canvas, as people do.
        drawn = _on_canvas(digit[4:24, 4:24], (90, 70), 3, 41)
        image = center_digit(drawn)
        assert image.shape == (IMAGE_SIZE, IMAGE_SIZE)
        assert image.dtype == np.uint8
        rows, cols = np.nonzero(image)
        sides = (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1)
        assert max(sides) == BOX_SIZE
        mass = image.astype(np.float64)
        centre = (
            mass.sum(axis=1) @ (np.arange(IMAGE_SIZE) + 0.5) / mass.sum(),
            mass.sum(axis=0) @ (np.arange(IMAGE_SIZE) + 0.5) / mass.sum(),
        )
        # A whole-pixel shift puts the centre of mass within half a pixel of 14 (rounding of
        # the grey levels moves it by a little more at most).
        np.testing.assert_allclose(centre, (14, 14), atol=0.55)


def test_where_the_digit_is_drawn_does_not_matter(digits):
    for digit in digits:
        here = center_digit(_on_canvas(digit, (100, 120), 30, 50))
        there = center_digit(_on_canvas(digit, (60, 60), 0, 32))
        np.testing.assert_array_equal(here, there, strict=True)


def test_how_large_the_digit_is_drawn_does_not_matter(digits):
    # Each pixel drawn as a 3x3 block: the area filter sees the same ink at a third the scale.
    for digit in digits:
        large = np.kron(digit, np.ones((3, 3), np.uint8))
        np.testing.assert_array_equal(center_digit(large), center_digit(digit), strict=True)


def test_aspect_ratio_is_kept():
    bar = np.zeros((40, 40), np.uint8)
    bar[5:35, 18:23] = 255  # a "1": 30 tall, 5 wide
    rows, cols = np.nonzero(center_digit(bar))
    assert rows.max() - rows.min() + 1 == 20
    assert cols.max() - cols.min() + 1 == 3  # 5 * 20/30 = 3.3 columns, rounded


def test_a_blank_drawing_stays_blank():
    np.testing.assert_array_equal(
        center_digit(np.zeros((28, 28), np.uint8)), np.zeros((28, 28), np.uint8), strict=True
    )


@pytest.mark.parametrize(
    ("pixels", "described"),
    [
        (np.zeros((28, 28), np.float32), "float32 of shape [28, 28]"),
        (np.zeros((1, 28, 28), np.uint8), "uint8 of shape [1, 28, 28]"),
        (np.zeros((0, 28), np.uint8), "uint8 of shape [0, 28]"),
    ],
)
def test_bad_pixels_are_refused(pixels, described):
    message = f"pixels must be a non-empty uint8 array of shape [height, width], not {described}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        center_digit(pixels)
