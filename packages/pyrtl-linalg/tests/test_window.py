"""Window geometry against independent references: loops, NumPy's sliding windows, TF's rule."""

import doctest

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyrtl_linalg import Window, _window


@st.composite
def windows(draw):
    height, width = draw(st.integers(1, 6)), draw(st.integers(1, 6))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
    assume(kernel[0] <= height + sum(padding[0]) and kernel[1] <= width + sum(padding[1]))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    return Window(height, width, draw(st.integers(1, 3)), kernel, stride, padding)


def padded_views(window, grids, fill):
    """Every window position of each padded grid, by NumPy's sliding windows:
    ``[m, out_height, out_width, kh, kw, channels]``."""
    (top, bottom), (left, right) = window.padding
    padded = np.pad(grids, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    views = np.lib.stride_tricks.sliding_window_view(padded, window.kernel, axis=(1, 2))
    sh, sw = window.stride
    views = views[:, ::sh, ::sw]  # [m, oh, ow, channels, kh, kw]
    return views.transpose(0, 1, 2, 4, 5, 3)


@settings(max_examples=60, deadline=None)
@given(window=windows(), m=st.integers(1, 3), fill=st.integers(-128, 127), seed=st.integers(0, 99))
def test_patches_are_sliding_windows(window, m, fill, seed):
    rng = np.random.default_rng(seed)
    grids = rng.integers(-128, 128, (m, window.height, window.width, window.channels))
    views = padded_views(window, grids, fill)
    assert views.shape[1:3] == (window.out_height, window.out_width)
    expected = views.reshape(m, window.positions, window.size)
    np.testing.assert_array_equal(window.patches(grids, fill=fill), expected, strict=True)


@settings(max_examples=60, deadline=None)
@given(window=windows())
def test_offsets_by_loops(window):
    (top, _), (left, _) = window.padding
    kh, kw = window.kernel
    expected = []
    for oy in range(window.out_height):
        for ox in range(window.out_width):
            row = []
            for ky in range(kh):
                for kx in range(kw):
                    for c in range(window.channels):
                        y = oy * window.stride[0] + ky - top
                        x = ox * window.stride[1] + kx - left
                        inside = 0 <= y < window.height and 0 <= x < window.width
                        row.append((y * window.width + x) * window.channels + c if inside else -1)
            expected.append(row)
    np.testing.assert_array_equal(window.offsets(), np.array(expected, dtype=np.int64), strict=True)


@settings(max_examples=60, deadline=None)
@given(window=windows(), seed=st.integers(0, 99))
def test_reduce_by_loops(window, seed):
    rng = np.random.default_rng(seed)
    grids = rng.integers(-128, 128, (2, window.height, window.width, window.channels))
    # Padding as NaN marks what the reductions must skip.
    views = padded_views(window, grids.astype(float), np.nan).reshape(
        2, window.out_height, window.out_width, -1, window.channels
    )
    inside = ~np.isnan(views)
    count = inside.sum(axis=3)
    assume(count.min() > 0)  # a window wholly inside the padding has nothing to reduce
    np.testing.assert_array_equal(
        window.reduce(grids, "max"), np.nanmax(views, axis=3).astype(np.int64), strict=True
    )
    sums = np.nansum(views, axis=3).astype(np.int64)
    # Round half away from zero with exact integers: floor(|s|/c + 1/2) with the sign of s.
    mean = np.sign(sums) * ((2 * np.abs(sums) + count) // (2 * count))
    np.testing.assert_array_equal(window.reduce(grids, "mean"), mean, strict=True)
    np.testing.assert_array_equal(window.counts(), count[0, :, :, 0].reshape(-1), strict=True)


def test_mean_rounds_half_away_from_zero():
    window = Window(1, 2, 1, (1, 2))
    grids = np.array([[[[1], [2]]], [[[-1], [-2]]], [[[1], [-2]]], [[[3], [3]]]])
    np.testing.assert_array_equal(
        window.reduce(grids, "mean").ravel(), np.array([2, -2, -1, 3]), strict=True
    )


@pytest.mark.parametrize(
    ("size", "kernel", "stride", "out", "padding"),
    [
        # TF SAME: out = ceil(size / stride), total = max((out - 1) * stride + kernel - size, 0),
        # the smaller half before.
        (7, 3, 2, 4, (1, 1)),
        (8, 3, 2, 4, (0, 1)),
        (14, 2, 2, 7, (0, 0)),
        (7, 2, 2, 4, (0, 1)),
        (5, 4, 1, 5, (1, 2)),
        (1, 3, 3, 1, (1, 1)),
    ],
)
def test_same_padding(size, kernel, stride, out, padding):
    window = Window.from_mode(size, 3, 1, (kernel, 1), (stride, 1), "same")
    assert (window.out_height, window.padding[0]) == (out, padding)
    assert (window.out_width, window.padding[1]) == (3, (0, 0))


def test_valid_and_sizes():
    window = Window.from_mode(7, 6, 4, (3, 2), (2, 2), "valid")
    assert window.padding == ((0, 0), (0, 0))
    assert (window.out_height, window.out_width, window.positions) == (3, 3, 9)
    assert (window.size, window.words) == (24, 168)


@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (
            lambda: Window(0, 2, 1, (1, 1)),
            ValueError,
            "window height must be a positive integer, not 0",
        ),
        (
            lambda: Window(2, 2, 1.0, (1, 1)),
            TypeError,
            "window channels must be a positive integer, not 1.0",
        ),
        (lambda: Window(2, 2, 1, 2), ValueError, "window kernel must be a pair of integers, not 2"),
        (
            lambda: Window(2, 2, 1, (1, 1), (0, 1)),
            ValueError,
            r"window stride\[0\] must be a positive integer, not 0",
        ),
        (
            lambda: Window(2, 2, 1, (1, 1), padding=((0, -1), (0, 0))),
            ValueError,
            r"window padding\[0\]\[1\] must be a non-negative integer, not -1",
        ),
        (
            lambda: Window(2, 2, 1, (1, 1), padding=(0, 0, 0)),
            ValueError,
            r"window padding must be \(\(top, bottom\), \(left, right\)\), not \(0, 0, 0\)",
        ),
        (
            lambda: Window(2, 2, 1, (4, 1), padding=((1, 0), (0, 0))),
            ValueError,
            r"a 4x1 window does not fit a 2x2 grid padded by \(\(1, 0\), \(0, 0\)\)",
        ),
        (
            lambda: Window(1, 3, 1, (1, 2), padding=((1, 0), (0, 0))).reduce(
                np.zeros((1, 1, 3, 1)), "mean"
            ),
            ValueError,
            r"window position 0 covers only padding: its mean is empty \(use less padding\)",
        ),
        (
            lambda: Window.from_mode(2, 2, 1, (1, 1), mode="full"),
            ValueError,
            "window mode must be 'valid' or 'same', not 'full'",
        ),
        (
            lambda: Window(2, 2, 1, (1, 1)).patches(np.zeros((1, 2, 2))),
            ValueError,
            r"grids must have shape \[m, 2, 2, 1\], not \[1, 2, 2\]",
        ),
        (
            lambda: Window(2, 2, 1, (1, 1)).reduce(np.zeros((1, 2, 2, 1)), "sum"),
            ValueError,
            "reduction must be 'max' or 'mean', not 'sum'",
        ),
    ],
)
def test_bad_arguments(call, error, message):
    with pytest.raises(error, match=rf"^{message}$"):
        call()


def test_doctests():
    assert doctest.testmod(_window, raise_on_error=False).failed == 0
