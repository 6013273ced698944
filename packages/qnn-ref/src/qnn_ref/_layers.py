"""The layer kinds of a convolutional int8 chain, one per LiteRT op, beside :class:`DenseLayer`.

Every layer works on one image at a time in LiteRT's layout, ``(height, width, channels)``
(NHWC without the batch), and carries its own int8 quantization: ``real = scale * (q - zero
point)``. The window geometry is TensorFlow's: with ``VALID`` padding the output has
``(in - kernel) // stride + 1`` positions per axis; with ``SAME`` it has ``ceil(in / stride)``,
and ``total = max((out - 1) * stride + kernel - in, 0)`` positions of padding are added,
``total // 2`` before and the rest after. Convolutions pad with the input zero point (a real
zero); pooling ignores padded positions.

A fused activation is a clamp of the int8 output: ``RELU`` at the output zero point, ``RELU6``
also at ``zero_point + round(6 / scale)`` (ties away from zero, as TFLite's ``TfLiteRound``),
both within ``[-128, 127]``.
"""

import math
from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from ._model import (
    XNNPACK_MAX_SCALE,
    Rounding,
    activation_clamp,
    check_rounding,
    quantize_multiplier,
)

__all__ = [
    "Activation",
    "AveragePool2DLayer",
    "Conv2DLayer",
    "DepthwiseConv2DLayer",
    "MaxPool2DLayer",
    "Padding",
]

#: A fused activation of a convolution or pooling layer.
Activation = Literal["NONE", "RELU", "RELU6"]
#: TensorFlow's padding schemes.
Padding = Literal["SAME", "VALID"]


def output_size(size: int, kernel: int, stride: int, padding: Padding) -> int:
    """Output positions along one axis of a window of ``kernel`` moved by ``stride``."""
    if padding == "SAME":
        return -(-size // stride)
    return (size - kernel) // stride + 1


def pad_before_after(size: int, kernel: int, stride: int, padding: Padding) -> tuple[int, int]:
    """Padding ``(before, after)`` along one axis, TensorFlow's rule (zero for ``VALID``)."""
    if padding == "VALID":
        return 0, 0
    total = max((output_size(size, kernel, stride, padding) - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


@dataclass(frozen=True, eq=False)
class _WindowLayer:
    """What every spatial layer has: shapes, window geometry, quantization and activation."""

    #: The LiteRT op this layer kind reads (set by each subclass).
    op: ClassVar[str]
    #: Whether the XNNPACK delegate runs this op (it does not take int8 AVERAGE_POOL_2D).
    on_xnnpack: ClassVar[bool] = True

    #: Position of the layer in the chain, from 0.
    index: int
    #: ``(height, width, channels)`` of one input image.
    input_shape: tuple[int, int, int]
    #: ``(height, width, channels)`` of one output image.
    output_shape: tuple[int, int, int]
    #: ``(height, width)`` of the window.
    kernel: tuple[int, int]
    #: ``(vertical, horizontal)`` step of the window.
    stride: tuple[int, int]
    padding: Padding
    activation: Activation
    input_scale: float
    input_zero_point: int
    output_scale: float
    output_zero_point: int

    @property
    def in_features(self) -> int:
        """Values of one input image, flattened."""
        return math.prod(self.input_shape)

    @property
    def out_features(self) -> int:
        """Values of one output image, flattened."""
        return math.prod(self.output_shape)

    @property
    def units(self) -> int:
        """:attr:`out_features` under the name :attr:`Model.num_classes` reads."""
        return self.out_features

    @property
    def padding_amounts(self) -> tuple[tuple[int, int], tuple[int, int]]:
        """``((top, bottom), (left, right))``: positions of padding on each side."""
        return (
            pad_before_after(self.input_shape[0], self.kernel[0], self.stride[0], self.padding),
            pad_before_after(self.input_shape[1], self.kernel[1], self.stride[1], self.padding),
        )

    @property
    def activation_range(self) -> tuple[int, int]:
        """``(low, high)`` clamp of the int8 output for the fused activation (TFLite's rule,
        :func:`~qnn_ref.activation_clamp`)."""
        return activation_clamp(self.activation, self.output_zero_point, self.output_scale)

    def output_range(self, rounding: Rounding) -> tuple[int, int]:
        """The clamp of the int8 output as the kernel path ``rounding`` computes it: XNNPACK,
        for an op it runs, rounds a ReLU6 bound its own way (:func:`~qnn_ref.activation_clamp`).
        """
        rounding = check_rounding(rounding)
        xnnpack = rounding == "xnnpack" and self.on_xnnpack
        return activation_clamp(
            self.activation,
            self.output_zero_point,
            self.output_scale,
            "xnnpack" if xnnpack else None,
        )

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image (0 for pooling)."""
        return 0

    def litert_refusal(self, rounding: Rounding) -> str | None:
        """Why LiteRT refuses the layer on the kernel path ``rounding`` (pooling: never)."""
        check_rounding(rounding)
        return None

    def describe(self) -> str:
        """One line for a model summary, e.g. ``CONV_2D 3x3/1 SAME 12x12x1 -> 12x12x8 RELU``."""
        shape_in = "x".join(map(str, self.input_shape))
        shape_out = "x".join(map(str, self.output_shape))
        kernel = "x".join(map(str, self.kernel))
        stride = (
            self.stride[0] if self.stride[0] == self.stride[1] else "x".join(map(str, self.stride))
        )
        text = f"{self.op} {kernel}/{stride} {self.padding} {shape_in} -> {shape_out}"
        return text if self.activation == "NONE" else f"{text} {self.activation}"


@dataclass(frozen=True, eq=False)
class _WeightedLayer(_WindowLayer):
    """A convolution: int8 weights with symmetric per-channel or per-tensor scales, int32 bias."""

    #: int32, shape ``(out_channels,)`` (zeros when the model has no bias).
    bias: np.ndarray
    #: float32, shape ``(out_channels,)``; a per-tensor scale is repeated for every channel.
    weight_scales: np.ndarray
    #: Whether the model stores one weight scale per output channel.
    per_channel: bool

    def double_scales(self) -> np.ndarray:
        """``s_in * s_w / s_out`` per output channel in double precision (float64 array)."""
        s_in = np.float64(np.float32(self.input_scale))
        s_out = np.float64(np.float32(self.output_scale))
        return s_in * self.weight_scales.astype(np.float64) / s_out

    def float_scales(self) -> np.ndarray:
        """XNNPACK's scale per output channel: ``f32(f32(s_in * s_w) / s_out)`` (float32)."""
        product = np.float32(self.input_scale) * self.weight_scales
        return (product / np.float32(self.output_scale)).astype(np.float32)

    def integer_multipliers(self, rounding: Rounding = "builtin") -> tuple[np.ndarray, np.ndarray]:
        """``(M, shift)`` per output channel, ``scale ≈ M * 2**(shift - 31)``.

        The builtin and reference convolution kernels both use :func:`quantize_multiplier` of
        :meth:`double_scales`, per-tensor weights included (TFLite's
        ``PopulateConvolutionQuantizationParams``; unlike FULLY_CONNECTED, no float32 product).
        ``"xnnpack"`` gives the exact Q31 form of :meth:`float_scales`.
        """
        if check_rounding(rounding) == "xnnpack":
            return quantize_multiplier(self.float_scales().astype(np.float64))
        return quantize_multiplier(self.double_scales())

    def litert_refusal(self, rounding: Rounding) -> str | None:
        """Why LiteRT refuses the layer on ``rounding``: XNNPACK needs scales below 256."""
        if check_rounding(rounding) != "xnnpack":
            return None
        scales = self.float_scales()
        channel = int(np.argmax(scales))
        if scales[channel] < XNNPACK_MAX_SCALE:
            return None
        return (
            f"requantization scale {float(scales[channel]):.7g} (output channel {channel}) is "
            f"not below {XNNPACK_MAX_SCALE:g}"
        )

    def describe(self) -> str:
        """:meth:`_WindowLayer.describe` plus how the weights are scaled."""
        scales = "per-channel" if self.per_channel else "per-tensor"
        return f"{super().describe()}, {scales} weights"


@dataclass(frozen=True, eq=False)
class Conv2DLayer(_WeightedLayer):
    """One int8 ``CONV_2D``: every output channel a 3-D filter over all input channels.

    ``acc[y, x, c] = bias[c] + sum_{i, j, k} weights[i, j, k, c] * (in[y*sh + i - top,
    x*sw + j - left, k] - input_zero_point)``, with padded positions contributing 0; the
    accumulator is requantized per output channel as the kernel path does (see
    :doc:`/qnn-ref/model`).
    """

    op: ClassVar[str] = "CONV_2D"

    #: int8, shape ``(kernel_height, kernel_width, in_channels, out_channels)`` (Keras' layout;
    #: the ``.tflite`` stores ``(out, height, width, in)``).
    weights: np.ndarray

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image: output positions times the filter volume."""
        return self.out_features * math.prod(self.weights.shape[:3])


@dataclass(frozen=True, eq=False)
class DepthwiseConv2DLayer(_WeightedLayer):
    """One int8 ``DEPTHWISE_CONV_2D`` with depth multiplier 1: one 2-D filter per channel.

    ``acc[y, x, c] = bias[c] + sum_{i, j} weights[i, j, c] * (in[y*sh + i - top,
    x*sw + j - left, c] - input_zero_point)``.
    """

    op: ClassVar[str] = "DEPTHWISE_CONV_2D"

    #: int8, shape ``(kernel_height, kernel_width, channels)``.
    weights: np.ndarray

    @property
    def macs(self) -> int:
        """Multiply-accumulates per image: output values times the window size."""
        return self.out_features * math.prod(self.kernel)


@dataclass(frozen=True, eq=False)
class MaxPool2DLayer(_WindowLayer):
    """One int8 ``MAX_POOL_2D``: the largest int8 value of each window, exact.

    Input and output share one scale and zero point, so no requantization happens; only the
    fused activation's clamp applies.
    """

    op: ClassVar[str] = "MAX_POOL_2D"


@dataclass(frozen=True, eq=False)
class AveragePool2DLayer(_WindowLayer):
    """One int8 ``AVERAGE_POOL_2D``: the rounded mean of each window's raw int8 values.

    TFLite sums the int8 values themselves (the zero point is not removed, which is exact
    because input and output share it), counts the ``n`` window positions inside the image
    (padding excluded), and divides rounding half away from zero: ``(s + n//2) / n`` for
    ``s > 0``, else ``(s - n//2) / n``, with C's truncating division. Every kernel path runs
    this same kernel.
    """

    op: ClassVar[str] = "AVERAGE_POOL_2D"
    on_xnnpack: ClassVar[bool] = False
