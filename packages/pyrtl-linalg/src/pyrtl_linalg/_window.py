"""Sliding windows over a grid of memory words: the geometry, in pure Python and NumPy.

A *grid* is an ``height x width x channels`` array of values stored one value per memory word
in row-major order, word ``(y * width + x) * channels + c`` holding value ``(y, x, c)``. Where
several grids share a memory, each word packs ``lanes`` of them side by side (the ``A`` layout
of :func:`~pyrtl_linalg.pack_a`), and grid tile ``t`` starts at word
``t * height * width * channels``.

A :class:`Window` of ``kh x kw`` positions moves over the grid by ``(sh, sw)``, after the grid
is padded by ``top``/``bottom`` rows and ``left``/``right`` columns. Each window position ``p``
(row-major over the ``out_height x out_width`` positions) reads one *patch*: the ``kh * kw *
channels`` values in the order ``(ky, kx, c)``, ``c`` fastest, so that consecutive patch
elements are consecutive words wherever the window is inside the grid::

    patch element  e = (ky * kw + kx) * channels + c
    grid row       y = oy * sh + ky - top        (p = oy * out_width + ox)
    grid column    x = ox * sw + kx - left
    word           (y * width + x) * channels + c, or padding when y or x is outside the grid

A matrix product of the ``positions x size`` patch matrix by a ``size x n`` matrix is a 2-D
correlation; a reduction over the ``kh * kw`` positions of each channel is a windowed maximum
or mean. The hardware that streams patches (:class:`~pyrtl_linalg.MatmulJob`'s ``a_window``)
and reduces windows follows exactly this geometry; these functions are its reference.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._validate import non_negative_int, positive_int

__all__ = ["Window", "WindowMode"]

#: How :meth:`Window.from_mode` pads: ``"valid"`` not at all, ``"same"`` so that a stride of 1
#: keeps the grid's size (the names of :func:`numpy.convolve`'s modes).
WindowMode = Literal["valid", "same"]


def _pair(name: str, value: object, check: object = positive_int) -> tuple[int, int]:
    if not isinstance(value, tuple | list) or len(value) != 2:
        raise ValueError(f"{name} must be a pair of integers, not {value!r}")
    return (check(f"{name}[0]", value[0]), check(f"{name}[1]", value[1]))  # type: ignore[operator]


def _same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """``(before, after)`` padding of one axis: ``ceil(size / stride)`` positions, and the
    ``total = max((out - 1) * stride + kernel - size, 0)`` extra positions split with the
    smaller half before (TensorFlow's rule)."""
    out = -(-size // stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True)
class Window:
    """A ``kernel`` window moved by ``stride`` over a padded ``height x width x channels`` grid.

    :param height: rows of the grid.
    :param width: columns of the grid.
    :param channels: values per grid position.
    :param kernel: ``(kh, kw)`` positions of the window.
    :param stride: ``(sh, sw)`` step of the window.
    :param padding: ``((top, bottom), (left, right))`` rows and columns of padding.
    :raises ValueError: for a non-positive size, kernel or stride, negative padding, or a window
        that does not fit the padded grid even once.
    """

    height: int
    width: int
    channels: int
    kernel: tuple[int, int]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[tuple[int, int], tuple[int, int]] = ((0, 0), (0, 0))

    def __post_init__(self) -> None:
        for field in ("height", "width", "channels"):
            positive_int(f"window {field}", getattr(self, field))
        object.__setattr__(self, "kernel", _pair("window kernel", self.kernel))
        object.__setattr__(self, "stride", _pair("window stride", self.stride))
        if not isinstance(self.padding, tuple | list) or len(self.padding) != 2:
            raise ValueError(
                f"window padding must be ((top, bottom), (left, right)), not {self.padding!r}"
            )
        padding = (
            _pair("window padding[0]", self.padding[0], non_negative_int),
            _pair("window padding[1]", self.padding[1], non_negative_int),
        )
        object.__setattr__(self, "padding", padding)
        if self.out_height < 1 or self.out_width < 1:
            raise ValueError(
                f"a {self.kernel[0]}x{self.kernel[1]} window does not fit a "
                f"{self.height}x{self.width} grid padded by {padding}"
            )

    @classmethod
    def from_mode(
        cls,
        height: int,
        width: int,
        channels: int,
        kernel: tuple[int, int],
        stride: tuple[int, int] = (1, 1),
        mode: WindowMode = "valid",
    ) -> Window:
        """The window whose padding ``mode`` gives: ``"valid"`` none (``(size - kernel) //
        stride + 1`` positions per axis), ``"same"`` ``ceil(size / stride)`` positions, the
        needed padding split with the smaller half before.

        >>> Window.from_mode(14, 14, 8, (2, 2), (2, 2), "same").padding
        ((0, 0), (0, 0))
        >>> Window.from_mode(7, 7, 8, (2, 2), (2, 2), "same").padding
        ((0, 1), (0, 1))
        """
        kh, kw = _pair("window kernel", kernel)
        sh, sw = _pair("window stride", stride)
        if mode == "valid":
            padding = ((0, 0), (0, 0))
        elif mode == "same":
            padding = (_same_padding(height, kh, sh), _same_padding(width, kw, sw))
        else:
            raise ValueError(f"window mode must be 'valid' or 'same', not {mode!r}")
        return cls(height, width, channels, (kh, kw), (sh, sw), padding)

    @property
    def out_height(self) -> int:
        """Window positions down the grid: ``(height + top + bottom - kh) // sh + 1``."""
        (top, bottom), _ = self.padding
        return (self.height + top + bottom - self.kernel[0]) // self.stride[0] + 1

    @property
    def out_width(self) -> int:
        """Window positions across the grid: ``(width + left + right - kw) // sw + 1``."""
        _, (left, right) = self.padding
        return (self.width + left + right - self.kernel[1]) // self.stride[1] + 1

    @property
    def positions(self) -> int:
        """Window positions, ``out_height * out_width``: the rows of the patch matrix."""
        return self.out_height * self.out_width

    @property
    def size(self) -> int:
        """Values in one patch, ``kh * kw * channels``: the columns of the patch matrix."""
        return self.kernel[0] * self.kernel[1] * self.channels

    @property
    def words(self) -> int:
        """Words of one grid, ``height * width * channels``."""
        return self.height * self.width * self.channels

    def offsets(self) -> np.ndarray:
        """The word read by each patch element, relative to the grid's first word.

        :returns: int64 ``[positions, size]``: entry ``[p, e]`` is the word of patch element
            ``e`` at window position ``p`` (module docstring), or ``-1`` where it is padding.

        >>> Window(3, 3, 1, (2, 2)).offsets()
        array([[0, 1, 3, 4],
               [1, 2, 4, 5],
               [3, 4, 6, 7],
               [4, 5, 7, 8]])
        """
        (top, _), (left, _) = self.padding
        kh, kw = self.kernel
        sh, sw = self.stride
        oy, ox, ky, kx, c = np.meshgrid(
            np.arange(self.out_height),
            np.arange(self.out_width),
            np.arange(kh),
            np.arange(kw),
            np.arange(self.channels),
            indexing="ij",
        )
        y = oy * sh + ky - top
        x = ox * sw + kx - left
        inside = (y >= 0) & (y < self.height) & (x >= 0) & (x < self.width)
        words = np.where(inside, (y * self.width + x) * self.channels + c, -1)
        return words.reshape(self.positions, self.size).astype(np.int64)

    def counts(self) -> np.ndarray:
        """Grid positions inside each window (padding excluded), ``[positions]`` int64: what a
        mean over the window divides by."""
        per_position = self.offsets().reshape(self.positions, -1, self.channels)[:, :, 0]
        return (per_position >= 0).sum(axis=1).astype(np.int64)

    def patches(self, grids: np.ndarray, fill: int = 0) -> np.ndarray:
        """The patch matrices of ``grids``, with ``fill`` where a window covers padding.

        :param grids: ``[m, height, width, channels]`` values.
        :param fill: the value padding reads as.
        :returns: ``[m, positions, size]``, the dtype of ``grids``.

        >>> window = Window(2, 2, 1, (2, 2), padding=((0, 1), (0, 0)))
        >>> window.patches(np.arange(4).reshape(1, 2, 2, 1), fill=9)
        array([[[0, 1, 2, 3],
                [2, 3, 9, 9]]])
        """
        grids = np.asarray(grids)
        shape = (self.height, self.width, self.channels)
        if grids.ndim != 4 or grids.shape[1:] != shape:
            raise ValueError(
                f"grids must have shape [m, {', '.join(map(str, shape))}], not {list(grids.shape)}"
            )
        flat = grids.reshape(len(grids), self.words)
        offsets = self.offsets()
        patches = flat[:, np.maximum(offsets, 0)]
        patches[:, offsets < 0] = fill
        return patches

    def reduce(self, grids: np.ndarray, op: Literal["max", "mean"]) -> np.ndarray:
        """Reduce each channel over each window, padding excluded.

        ``"max"`` is the largest value; ``"mean"`` the sum divided by :meth:`counts`, rounded
        half away from zero (``(s + n // 2) // n`` for ``s >= 0``, ``-((-s + n // 2) // n)``
        otherwise), exact in integers.

        :param grids: integers ``[m, height, width, channels]``.
        :returns: int64 ``[m, out_height, out_width, channels]``.
        :raises ValueError: for another ``op``, or a window position that covers only padding
            (its reduction is empty).
        """
        if op not in ("max", "mean"):
            raise ValueError(f"reduction must be 'max' or 'mean', not {op!r}")
        empty = np.flatnonzero(self.counts() == 0)
        if len(empty):
            raise ValueError(
                f"window position {empty[0]} covers only padding: its {op} is empty "
                "(use less padding)"
            )
        grids = np.asarray(grids, dtype=np.int64)
        windows = self._by_position(self.patches(grids, fill=0))
        inside = self._by_position(self.offsets()[None] >= 0)
        if op == "max":
            low = np.iinfo(np.int64).min
            result = np.where(inside, windows, low).max(axis=2)
        else:
            sums = np.where(inside, windows, 0).sum(axis=2)
            n = self.counts()[None, :, None]
            result = np.sign(sums) * ((np.abs(sums) + n // 2) // n)
        return result.reshape(len(grids), self.out_height, self.out_width, self.channels)

    def _by_position(self, patches: np.ndarray) -> np.ndarray:
        """``[..., positions, size]`` patches as ``[..., positions, kh * kw, channels]``."""
        return patches.reshape(*patches.shape[:-1], math.prod(self.kernel), self.channels)
