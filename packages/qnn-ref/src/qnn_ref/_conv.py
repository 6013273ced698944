"""The NumPy reference of convolution and pooling layers, bit-exact per LiteRT kernel path.

Every layer runs on a whole batch ``[N, H, W, C]`` at once. For each of the ``kh * kw`` kernel
entries, the input values it meets in every window are one strided view of the padded input;
a convolution copies those views into a patch matrix (im2col) and multiplies it by the filters
in one matrix product, a depthwise convolution and the poolings add up or maximize the views.
The only Python loops run over kernel entries (and over chunks of images that bound the patch
matrix's memory), never over pixels, channels or images.

The accumulators are exact integers even though the products run in floating-point BLAS, for
the reason given in ``_numpy``: the input is padded with its zero point and multiplied raw,
so every partial sum is an integer of magnitude at most ``K * 128 * 128`` for a filter of ``K``
values (float32 while that is at most ``2**24``, else float64), and ``bias - z_in *
sum(weights)`` is added in float64, which holds every int32 exactly.

Requantization per output channel (measured against ai-edge-litert 2.3.0, see
:doc:`/int8-inference`):

``"xnnpack"``
    ``rint_half_even(f32(acc) * f32(f32(s_in * s_w[c]) / s_out))``, as XNNPACK's FULLY_CONNECTED.
``"builtin"``
    ``SaturatingRoundingDoublingHighMul(acc << left, M)`` then a right shift whose ties round
    toward +inf for CONV_2D, with ``M, shift = QuantizeMultiplier(s_in * s_w[c] / s_out)`` in
    double. DEPTHWISE_CONV_2D's builtin kernel rounds the final shift's ties away from zero
    instead, as the reference kernels do.
``"reference"``
    The same, the final shift rounding ties away from zero (gemmlowp's ``RoundingDivideByPOT``).

``MAX_POOL_2D`` and ``AVERAGE_POOL_2D`` are the same on every path.
"""

import itertools
import math
from collections.abc import Iterator

import numpy as np

from ._layers import (
    AveragePool2DLayer,
    Conv2DLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    _WeightedLayer,
    _WindowLayer,
)
from ._model import Rounding, check_rounding

__all__ = ["run_window_layer"]

#: Patch-matrix elements per chunk of images (about 64 MB in float32).
_CHUNK_ELEMENTS = 2**24


def _padded(layer: _WindowLayer, x: np.ndarray, fill: float) -> np.ndarray:
    """``x`` with the layer's padding of ``fill`` around each image."""
    (top, bottom), (left, right) = layer.padding_amounts
    if top or bottom or left or right:
        x = np.pad(x, ((0, 0), (top, bottom), (left, right), (0, 0)), constant_values=fill)
    return x


def _shifted(layer: _WindowLayer, padded: np.ndarray) -> Iterator[tuple[int, int, np.ndarray]]:
    """``(i, j, view)`` per kernel position: the ``[N, Ho, Wo, C]`` input values that meet
    kernel entry ``(i, j)`` (a strided view). Summing or maximizing over the ``kh * kw`` views
    computes every window at once, with whole-array operations only."""
    height, width, _ = layer.output_shape
    sh, sw = layer.stride
    for i, j in itertools.product(range(layer.kernel[0]), range(layer.kernel[1])):
        yield i, j, padded[:, i : i + sh * (height - 1) + 1 : sh, j : j + sw * (width - 1) + 1 : sw]


def _exact_float(terms: int) -> type[np.floating]:
    """The float type whose sums of ``terms`` int8 products are all exact."""
    return np.float32 if terms * 128 * 128 <= 2**24 else np.float64


def _accumulate(layer: _WeightedLayer, x: np.ndarray) -> np.ndarray:
    """The int32 accumulators ``[N, Ho, Wo, C_out]`` of a convolution, exactly, in float64.

    float64 holds every int32 exactly; the sums of products are exact in ``dtype`` (see the
    module documentation) and the bias offset is added in float64, so no step rounds.
    """
    z_in = layer.input_zero_point
    weights = layer.weights
    height, width, channels = layer.output_shape
    if isinstance(layer, Conv2DLayer):
        terms = math.prod(weights.shape[:3])
        offset = layer.bias - z_in * weights.astype(np.int64).reshape(terms, -1).sum(axis=0)
    else:
        terms = math.prod(layer.kernel)
        offset = layer.bias - z_in * weights.astype(np.int64).sum(axis=(0, 1))
    dtype = _exact_float(terms)
    filters = weights.astype(dtype)
    padded = _padded(layer, x.astype(dtype), z_in)
    count = len(x)
    acc = np.empty((count, height, width, channels), np.float64)
    # Chunks of images bound the patch matrix [n * Ho * Wo, kh * kw * C_in].
    step = max(1, _CHUNK_ELEMENTS // max(1, height * width * terms))
    for start in range(0, count, step):
        chunk = padded[start : start + step]
        if isinstance(layer, Conv2DLayer):
            # im2col: patches[n, y, x, i, j, :] = input at window (y, x), kernel entry (i, j);
            # the (i, j, C_in) order matches the filters' (kh, kw, C_in, C_out) layout.
            patches = np.empty((len(chunk), height, width, *weights.shape[:3]), dtype)
            for i, j, view in _shifted(layer, chunk):
                patches[:, :, :, i, j, :] = view
            products = patches.reshape(-1, terms) @ filters.reshape(terms, -1)
            acc[start : start + step] = products.reshape(len(chunk), height, width, channels)
        else:
            products = np.zeros((len(chunk), height, width, channels), dtype)
            for i, j, view in _shifted(layer, chunk):
                products += view * filters[i, j]
            acc[start : start + step] = products
    acc += offset
    return acc


def _requantize(layer: _WeightedLayer, acc: np.ndarray, rounding: Rounding) -> np.ndarray:
    """Scale ``[..., C_out]`` accumulators to the int8 output as the path does, then clamp."""
    low, high = layer.output_range(rounding)
    if rounding == "xnnpack":
        scaled = acc.astype(np.float32)  # float32(acc): the one rounding XNNPACK makes here
        scaled *= layer.float_scales()
        np.rint(scaled, out=scaled)
        scaled += np.float32(layer.output_zero_point)  # small integers: exact in float32
        return np.clip(scaled, low, high, out=scaled).astype(np.int8)
    acc = acc.astype(np.int64)
    multiplier, shift = layer.integer_multipliers(rounding)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    # SaturatingRoundingDoublingHighMul(acc << left, M) = floor(a * M / 2**31 + 1/2).
    scaled = np.left_shift(acc, left) * multiplier
    scaled += np.int64(1) << 30
    scaled >>= 31
    if rounding == "builtin" and isinstance(layer, Conv2DLayer):  # ties toward +inf
        scaled += (np.int64(1) << right) >> 1
        scaled >>= right
    else:  # gemmlowp's RoundingDivideByPOT: ties away from zero (builtin depthwise too)
        mask = (np.int64(1) << right) - 1
        remainder = scaled & mask
        threshold = (mask >> 1) + (scaled < 0)
        scaled >>= right
        scaled += remainder > threshold
    scaled += layer.output_zero_point
    return np.clip(scaled, low, high, out=scaled).astype(np.int8)


def _window_sum(layer: _WindowLayer, x: np.ndarray) -> np.ndarray:
    """Sums of every window of ``x`` padded with zeros (exact: int32 of at most ``kh*kw*128``)."""
    total = np.zeros((len(x), *layer.output_shape[:2], x.shape[3]), x.dtype)
    for _, _, view in _shifted(layer, _padded(layer, x, 0)):
        total += view
    return total


def _window_max(layer: _WindowLayer, x: np.ndarray) -> np.ndarray:
    """Maxima of every window of int8 ``x``; padding (-128) never exceeds a real value."""
    views = _shifted(layer, _padded(layer, x, -128))
    result = next(views)[2].copy()
    for _, _, view in views:
        np.maximum(result, view, out=result)
    return result


def _average(layer: AveragePool2DLayer, x: np.ndarray) -> np.ndarray:
    """TFLite's int8 average: raw sum over the valid positions, rounded half away from zero."""
    sums = _window_sum(layer, x.astype(np.int32))
    # [1, Ho, Wo, 1]: positions inside the image; padding is excluded from the count.
    counts = _window_sum(layer, np.ones((1, *layer.input_shape[:2], 1), np.int32))
    half = counts // 2
    numerator = np.where(sums > 0, sums + half, sums - half)
    return np.sign(numerator) * (np.abs(numerator) // counts)  # C's truncating division


def run_window_layer(
    layer: _WindowLayer, x: np.ndarray, *, rounding: Rounding = "xnnpack"
) -> np.ndarray:
    """Run one convolution or pooling layer on a batch, as the kernel path ``rounding`` does.

    :param layer: A :class:`Conv2DLayer`, :class:`DepthwiseConv2DLayer`,
        :class:`MaxPool2DLayer` or :class:`AveragePool2DLayer`.
    :param x: int8 ``[N, H, W, C]`` (or ``[N, H*W*C]``, reshaped to the layer's input shape).
    :param rounding: The kernel path whose requantization to reproduce.
    :returns: int8 ``[N, Ho, Wo, C_out]``.
    :raises ValueError: if ``x`` is not int8 of ``N`` images of the layer's input shape.
    """
    rounding = check_rounding(rounding)
    x = np.asarray(x)
    if x.dtype != np.int8 or x.ndim < 1 or math.prod(x.shape[1:]) != layer.in_features:
        shape = "x".join(map(str, layer.input_shape))
        raise ValueError(
            f"layer {layer.index} input must be int8 of shape [N, {shape}], not {x.dtype} of "
            f"shape {list(x.shape)}"
        )
    x = x.reshape(len(x), *layer.input_shape)
    if isinstance(layer, (Conv2DLayer, DepthwiseConv2DLayer)):
        return _requantize(layer, _accumulate(layer, x), rounding)
    if isinstance(layer, MaxPool2DLayer):
        result = _window_max(layer, x)
    elif isinstance(layer, AveragePool2DLayer):
        result = _average(layer, x)
    else:
        raise TypeError(f"not a convolution or pooling layer: {type(layer).__name__}")
    low, high = layer.output_range(rounding)
    return np.clip(result, low, high).astype(np.int8)
