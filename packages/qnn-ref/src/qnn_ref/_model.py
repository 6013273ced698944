"""Read a dense int8 ``.tflite`` model into plain NumPy arrays.

The reader accepts exactly the graphs whose arithmetic the rest of the project reproduces: a
chain of int8 ``FULLY_CONNECTED`` layers (fused ReLU or no activation, per-tensor or per-channel
weight scales), with ``RESHAPE``, ``QUANTIZE`` and ``DEQUANTIZE`` allowed only before the first
and after the last layer. Anything else is rejected with a :class:`ModelError` naming the op or
tensor type and the layer, because silently approximating an unsupported op would make every
"bit-exact" claim downstream meaningless.

The flatbuffer is parsed with ``ai_edge_litert.schema_py_generated``, the schema module that
ships with LiteRT, so reading a model needs neither TensorFlow nor the ``tflite`` package.
"""

import math
import os
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, NoReturn, get_args

import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = [
    "INT32_RANGE",
    "ROUNDINGS",
    "SHIPPED_MODELS",
    "XNNPACK_MAX_SCALE",
    "DenseLayer",
    "Model",
    "ModelError",
    "Rounding",
    "default_model_path",
    "quantize_multiplier",
    "read_model",
    "shipped_model_path",
]

#: The name of a LiteRT int8 kernel path, and of the NumPy arithmetic that matches it.
Rounding = Literal["xnnpack", "builtin", "reference"]

#: The LiteRT kernel paths, in order: the XNNPACK delegate (what a default ``Interpreter``
#: runs), the optimized builtin kernels, and the reference kernels.
ROUNDINGS: tuple[Rounding, ...] = get_args(Rounding)

#: XNNPACK refuses a fully connected operator whose float32 requantization scale
#: (:meth:`DenseLayer.float_scales`) is this or more, and a default ``Interpreter`` then fails
#: ("failed to create XNNPACK runtime"). Smaller scales, down to subnormal ones, are accepted.
XNNPACK_MAX_SCALE = 256.0

#: ``(INT32_MIN, INT32_MAX)``: the kernels' accumulators and intermediate values are int32.
INT32_RANGE = (-(2**31), 2**31 - 1)

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_ACTIVATION_NAMES = {
    v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")
}
_KERNEL_NAMES = {
    "xnnpack": "LiteRT's default interpreter (XNNPACK)",
    "builtin": "LiteRT's builtin kernels",
    "reference": "LiteRT's reference kernels",
}
_FIX = "export a chain of int8 FULLY_CONNECTED layers with full-integer quantization"
_CONVERT = "convert with full-integer int8 quantization"
#: The ops that convert float32 at an end of the graph: the preposition and end in messages.
_FLOAT_ENDS = {"QUANTIZE": ("from", "input"), "DEQUANTIZE": ("to", "output")}


class ModelError(ValueError):
    """A model file that is missing, unreadable, not TFLite, or not a dense int8 network.

    The message is one line naming the file and the offending op, tensor type or layer, and
    saying what to do about it.
    """


def check_rounding(rounding: str) -> Rounding:
    """Return ``rounding`` if it names a LiteRT kernel path, else raise :class:`ValueError`."""
    if rounding not in ROUNDINGS:
        raise ValueError(f"rounding must be one of {', '.join(ROUNDINGS)}, not {rounding!r}")
    return rounding  # type: ignore[return-value]


def quantize_multiplier(scale: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """TFLite's ``QuantizeMultiplier``: a real scale as a Q31 multiplier and a power-of-two shift.

    ``scale ≈ M * 2**(shift - 31)`` with ``2**30 <= M < 2**31``: ``q, shift = frexp(scale)``,
    ``M = round_half_away(q * 2**31)``, and if rounding reached ``2**31``, ``M`` is halved and
    ``shift`` incremented. Scales too small for a shift of -31 become ``M = 0, shift = 0``, and
    shifts above 30 saturate to ``M = 2**31 - 1, shift = 30``, as in TFLite's single-rounding
    build.

    :param scale: Real multipliers (converted to float64, as TFLite takes a ``double``).
    :returns: ``(M, shift)``, both int64 arrays of the shape of ``scale``.
    """
    q, shift = np.frexp(np.asarray(scale, dtype=np.float64))
    fixed = np.floor(np.abs(q) * 2.0**31 + 0.5) * np.sign(q)  # round half away from zero
    carry = fixed == 2.0**31
    multiplier = np.where(carry, fixed / 2, fixed).astype(np.int64)
    shift = np.where(carry, shift + 1, shift).astype(np.int64)
    underflow = shift < -31
    multiplier = np.where(underflow, 0, multiplier)
    shift = np.where(underflow, 0, shift)
    overflow = shift > 30
    multiplier = np.where(overflow, 2**31 - 1, multiplier)
    shift = np.where(overflow, 30, shift)
    return multiplier, shift


def activation_clamp(
    activation: str, zero_point: int, scale: float, rounding: Rounding | None = None
) -> tuple[int, int]:
    """``(low, high)`` clamp of an int8 output for a fused activation.

    ``RELU`` clamps at the zero point (a real zero); ``RELU6`` also at ``zero_point +
    round(6 / scale)``, with TFLite's ``TfLiteRound`` (ties away from zero) in float32, capped
    at 127. XNNPACK (``rounding="xnnpack"``, for an op it runs) quantizes the upper bound
    itself, ``rint_half_even(f32(6 / s) + z)`` in float32: the two differ when ``6 / s`` is an
    exact tie (``s = 12`` with an even zero point, for example).

    :param activation: ``"NONE"``, ``"RELU"`` or ``"RELU6"``.
    :param rounding: the kernel path, or ``None`` for TFLite's own rule.
    """
    low = zero_point if activation != "NONE" else -128
    high = 127
    if activation == "RELU6":
        bound = np.float32(6) / np.float32(scale)
        if rounding == "xnnpack":
            high = int(min(max(np.rint(bound + np.float32(zero_point)), -128), 127))
        else:
            high = min(127, zero_point + math.floor(bound + 0.5))
    return max(low, -128), high


@dataclass(frozen=True, eq=False)
class DenseLayer:
    """One int8 ``FULLY_CONNECTED`` layer: ``y = requantize(x @ weights + bias)``.

    All arrays are read-only copies of the model's constants. The accumulator of output
    channel ``c`` is ``acc[c] = sum_k (x[k] - input_zero_point) * weights[k, c] + bias[c]``
    (weights are symmetric: their zero point is 0); it is scaled by
    ``input_scale * weight_scales[c] / output_scale``, rounded as the chosen kernel path rounds,
    shifted by ``output_zero_point`` and clamped to :attr:`activation_range`.
    """

    #: Position of the layer in the chain, from 0.
    index: int
    #: int8, shape ``(in_features, units)``, so that a batch computes ``x @ weights``.
    weights: np.ndarray
    #: int32, shape ``(units,)`` (zeros when the model has no bias).
    bias: np.ndarray
    input_scale: float
    input_zero_point: int
    #: float32, shape ``(units,)``; a per-tensor scale is repeated for every unit.
    weight_scales: np.ndarray
    #: Whether the model stores one weight scale per output channel.
    per_channel: bool
    output_scale: float
    output_zero_point: int
    #: Whether ReLU is fused into the layer (it then clamps at :attr:`output_zero_point`).
    relu: bool
    #: The bias tensor's scale as the file stores it, when the layer has one weight scale (the
    #: only case LiteRT checks it, see :meth:`litert_refusal`); ``None`` otherwise or unknown.
    bias_scale: float | None = None
    #: Whether the fused ReLU is ReLU6 (it then also clamps at the int8 value of 6.0); needs
    #: :attr:`relu`.
    relu6: bool = False

    def __post_init__(self) -> None:
        if self.relu6 and not self.relu:
            raise ValueError("a layer with relu6 must have relu too: ReLU6 is a clamped ReLU")

    @property
    def in_features(self) -> int:
        """Length of the layer's input vector."""
        return int(self.weights.shape[0])

    @property
    def units(self) -> int:
        """Number of output channels."""
        return int(self.weights.shape[1])

    #: The LiteRT op of this layer kind (each layer kind of a chain has one).
    op: ClassVar[str] = "FULLY_CONNECTED"

    @property
    def input_shape(self) -> tuple[int]:
        """``(in_features,)``: the per-image shape, as the convolutional layer kinds give it."""
        return (self.in_features,)

    @property
    def output_shape(self) -> tuple[int]:
        """``(units,)``: the per-image shape of the output."""
        return (self.units,)

    def describe(self) -> str:
        """One line for a model summary, e.g. ``FULLY_CONNECTED 144 -> 18 RELU``."""
        text = f"{self.op} {self.in_features} -> {self.units}"
        return f"{text} {self.activation}" if self.relu else text

    @property
    def activation(self) -> str:
        """The fused activation: ``"NONE"``, ``"RELU"`` or ``"RELU6"``."""
        return "RELU6" if self.relu6 else "RELU" if self.relu else "NONE"

    @property
    def activation_range(self) -> tuple[int, int]:
        """``(low, high)`` clamp of the int8 output (:func:`activation_clamp`, TFLite's rule)."""
        return activation_clamp(self.activation, self.output_zero_point, self.output_scale)

    def output_range(self, rounding: Rounding) -> tuple[int, int]:
        """The clamp of the int8 output as the kernel path ``rounding`` computes it
        (:func:`activation_clamp`: XNNPACK rounds a ReLU6 bound its own way)."""
        rounding = check_rounding(rounding)
        return activation_clamp(
            self.activation, self.output_zero_point, self.output_scale, rounding
        )

    def double_scales(self) -> np.ndarray:
        """``s_in * s_w / s_out`` of every output channel, computed in double precision.

        The reference kernels scale every accumulator by this value in double precision, and
        TFLite derives its per-channel integer multipliers from it.

        :returns: float64 array of shape ``(units,)``.
        """
        s_in = np.float64(np.float32(self.input_scale))
        s_out = np.float64(np.float32(self.output_scale))
        return s_in * self.weight_scales.astype(np.float64) / s_out

    def integer_multipliers(self, rounding: Rounding = "builtin") -> tuple[np.ndarray, np.ndarray]:
        """The integer multiplier and shift of every output channel, as a kernel path derives it.

        ``"builtin"``: what TFLite's optimized kernel uses, :func:`quantize_multiplier` of
        :meth:`double_scales` for per-channel weights; for per-tensor weights TFLite's
        ``GetQuantizedConvolutionMultipler`` first rounds the product ``s_in * s_w`` to float32,
        which can change the last bits of ``M`` and then, rarely, an output.

        ``"reference"`` and ``"xnnpack"``: these paths use no integer multiplier (the reference
        kernel scales in double precision, XNNPACK in float32). They return the Q31 form of
        their scale, for hardware that works from integer parts: of :meth:`double_scales`
        (rounded to 31 bits, so not always bit-exact with the reference path), and of
        :meth:`float_scales` (exact: ``M`` has at most 24 significant bits).

        :param rounding: The kernel path.
        :returns: ``(M, shift)``, int64 arrays of shape ``(units,)``, with
            ``scale ≈ M * 2**(shift - 31)``.
        """
        rounding = check_rounding(rounding)
        if rounding == "xnnpack":
            return quantize_multiplier(self.float_scales().astype(np.float64))
        if rounding == "builtin" and not self.per_channel:
            product = np.float32(self.input_scale) * self.weight_scales  # float32 product
            return quantize_multiplier(
                product.astype(np.float64) / np.float64(np.float32(self.output_scale))
            )
        return quantize_multiplier(self.double_scales())

    def litert_refusal(self, rounding: Rounding) -> str | None:
        """Why LiteRT refuses to run the layer on the kernel path ``rounding``, or ``None``.

        Two checks of LiteRT's, at ``allocate_tensors``, can refuse a layer the reader
        accepts:

        * XNNPACK (``"xnnpack"``) needs every :meth:`float_scales` below
          :data:`XNNPACK_MAX_SCALE` ("failed to create XNNPACK runtime");
        * the builtin and reference kernels' ``GetQuantizedConvolutionMultipler`` needs, for a
          layer with one weight scale and a bias, ``|s_in * s_w - s_bias| / s_out <= 0.02``
          computed in double ("scale_diff / output_scale <= 0.02 was not true"). A float32
          bias scale can differ from the double product by ``2**-24`` of it, so this can
          refuse a requantization scale above about ``0.02 * 2**24`` (3.4e5).

        :param rounding: The kernel path.
        :returns: One line naming the value and the limit, or ``None`` if LiteRT runs it.
        """
        if check_rounding(rounding) == "xnnpack":
            scales = self.float_scales()
            channel = int(np.argmax(scales))
            if scales[channel] < XNNPACK_MAX_SCALE:
                return None
            where = f" (output channel {channel})" if self.per_channel else ""
            return (
                f"requantization scale {float(scales[channel]):.7g}{where} is not below "
                f"{XNNPACK_MAX_SCALE:g}"
            )
        if self.per_channel or self.bias_scale is None:
            return None
        product = np.float64(np.float32(self.input_scale)) * np.float64(self.weight_scales[0])
        difference = abs(product - np.float64(np.float32(self.bias_scale)))
        ratio = float(difference / np.float64(np.float32(self.output_scale)))
        if ratio <= 0.02:
            return None
        return (
            f"bias scale differs from input scale * weight scale by {ratio:.3g} output scales, "
            "more than 0.02"
        )

    def accumulator_range(self) -> tuple[np.ndarray, np.ndarray]:
        """The least and the greatest exact accumulator of every output channel.

        Each input ``x[k]`` ranges over the int8 values independently, so the extremes of
        ``sum_k weights[k, c] * (x[k] - z_in) + bias[c]`` are reached: for each ``k`` take
        ``x[k] - z_in`` at ``127 - z_in`` or ``-128 - z_in``, whichever the weight's sign
        favours. The bounds are exact integers (int64), not wrapped to int32.

        :returns: ``(low, high)``, int64 arrays of shape ``(units,)``.
        """
        weights = self.weights.astype(np.int64)
        up, down = 127 - self.input_zero_point, -128 - self.input_zero_point
        high = np.where(weights > 0, weights * up, weights * down).sum(axis=0) + self.bias
        low = np.where(weights > 0, weights * down, weights * up).sum(axis=0) + self.bias
        return low, high

    def int32_overflow(self, rounding: Rounding) -> np.ndarray:
        """Which output channels can leave int32 on the kernel path ``rounding``, for some input.

        A static, conservative bound (it never misses a channel that can overflow, and flags
        one that cannot only within one unit of the limit), from :meth:`accumulator_range`,
        the scale and the output zero point ``z``:

        * every path: the accumulator range leaves int32 (the kernels' accumulators wrap);
        * ``"builtin"``: also ``acc * 2**max(shift, 0)`` leaves int32 (the left shift wraps), or
          ``max|acc| * S + 1 + |z| >= 2**31`` (adding the zero point wraps);
        * ``"reference"``: also ``max|acc| * S + 1 + |z| >= 2**31`` (the conversion of the
          double product gives ``INT32_MIN``, or adding the zero point wraps);
        * ``"xnnpack"``: also ``min(acc) * S <= -2**31`` with ``z < 0`` (the conversion gives
          ``INT32_MIN`` and adding the zero point wraps).

        Where no channel is flagged, every backend's exact arithmetic equals LiteRT's int32
        arithmetic for every input.

        :param rounding: The kernel path.
        :returns: bool array of shape ``(units,)``.
        """
        rounding = check_rounding(rounding)
        low, high = self.accumulator_range()
        int32_min, int32_max = INT32_RANGE
        overflow = (low < int32_min) | (high > int32_max)
        if rounding == "xnnpack":
            scale = self.float_scales().astype(np.float64)
            return overflow | ((low * scale <= -(2.0**31)) & (self.output_zero_point < 0))
        largest = np.maximum(np.abs(low), np.abs(high)).astype(np.float64)
        if rounding == "builtin":
            multipliers, shift = self.integer_multipliers("builtin")
            left = np.exp2(np.maximum(shift, 0).astype(np.float64))  # exact: powers of two
            overflow |= (low * left < int32_min) | (high * left > int32_max)
            scale = multipliers * np.exp2(shift.astype(np.float64) - 31)
        else:
            scale = self.double_scales()
        return overflow | (largest * scale + 1 + abs(self.output_zero_point) >= 2.0**31)

    def float_scales(self) -> np.ndarray:
        """XNNPACK's requantization scale of every output channel, in float32.

        XNNPACK computes ``input_scale * weight_scale / output_scale`` in float32 arithmetic,
        rounding after the product and after the quotient.

        :returns: float32 array of shape ``(units,)``.
        """
        product = np.float32(self.input_scale) * self.weight_scales
        return (product / np.float32(self.output_scale)).astype(np.float32)


@dataclass(frozen=True, eq=False)
class Model:
    """A chain of int8 dense layers read from a ``.tflite`` file by :func:`read_model`."""

    #: The file the model was read from (LiteRT backends load it again from here).
    path: Path
    #: ``(height, width)`` of the image the model expects. It is the model input tensor's shape
    #: without the batch dimension: ``[1, 12, 12]`` gives ``(12, 12)`` (a trailing channel
    #: dimension of 1 is dropped). A flat input ``[1, n]`` gives ``(√n, √n)`` when ``n`` is a
    #: perfect square and ``(1, n)`` otherwise.
    input_shape: tuple[int, int]
    #: Quantization of the first layer's int8 input.
    input_scale: float
    input_zero_point: int
    #: Whether the model takes float32 input through a ``QUANTIZE`` op (else int8 input).
    float_input: bool
    #: Whether the model returns float32 output through a ``DEQUANTIZE`` op (else int8 output).
    float_output: bool
    #: The compute layers in order: :class:`DenseLayer` values, and in a convolutional model
    #: also :class:`Conv2DLayer`, :class:`DepthwiseConv2DLayer`, :class:`MaxPool2DLayer` and
    #: :class:`AveragePool2DLayer` values.
    layers: tuple[DenseLayer, ...]
    #: Whether the file ends in a SOFTMAX that was left out: the last layer gives the logits
    #: before it, whose argmax is the same.
    softmax_dropped: bool = False

    @property
    def in_features(self) -> int:
        """Length of the flattened input vector."""
        return self.layers[0].in_features

    @property
    def num_classes(self) -> int:
        """Number of outputs of the last layer."""
        return self.layers[-1].units

    @property
    def roundings(self) -> tuple[Rounding, ...]:
        """The kernel paths LiteRT runs the model on (see :meth:`DenseLayer.litert_refusal`)."""
        return tuple(
            rounding
            for rounding in ROUNDINGS
            if all(_refusal(layer, rounding) is None for layer in self.layers)
        )

    def check_rounding(self, rounding: str) -> Rounding:
        """Return ``rounding`` if LiteRT runs the model on that kernel path, else raise.

        Where LiteRT refuses a model there is no result to be bit-exact with, so every backend
        refuses it too, rather than produce numbers no LiteRT produces.

        :param rounding: The kernel path.
        :returns: ``rounding``.
        :raises ValueError: if ``rounding`` is not a kernel path.
        :raises ModelError: if LiteRT refuses a layer on that path; the one-line message names
            the layer, the value LiteRT rejects and the paths that can run the model.
        """
        rounding = check_rounding(rounding)
        for layer in self.layers:
            reason = _refusal(layer, rounding)
            if reason is not None:
                kernels = _KERNEL_NAMES[rounding]
                others = [r for r in self.roundings if r != rounding]
                advice = (
                    f"use the {' or '.join(others)} path, which can"
                    if others
                    else "no LiteRT path can run it; export the model again"
                )
                raise ModelError(
                    f"{self.path}: layer {layer.index}'s {reason}, so {kernels} cannot run "
                    f"the model; {advice}"
                )
        return rounding


def _refusal(layer: object, rounding: Rounding) -> str | None:
    """:meth:`DenseLayer.litert_refusal` of any layer kind (those without it never refuse)."""
    refusal = getattr(layer, "litert_refusal", None)
    return None if refusal is None else refusal(rounding)


def default_model_path() -> Path:
    """The 144-18-10 MNIST model shipped inside qnn-ref as package data."""
    return Path(__file__).resolve().parent / "models" / "default.tflite"


#: The models shipped inside qnn-ref, by name: the MLP (:func:`default_model_path`) and a
#: small CNN (two convolutions with max pooling, then FULLY_CONNECTED).
SHIPPED_MODELS = {"mlp": "default.tflite", "cnn": "cnn.tflite"}


def shipped_model_path(name: str) -> Path:
    """The ``.tflite`` file of a model shipped inside qnn-ref: ``"mlp"`` or ``"cnn"``.

    :raises ValueError: if ``name`` is not one of :data:`SHIPPED_MODELS`.
    """
    if name not in SHIPPED_MODELS:
        raise ValueError(f"shipped models are {' and '.join(SHIPPED_MODELS)}, not {name!r}")
    return Path(__file__).resolve().parent / "models" / SHIPPED_MODELS[name]


def read_model(path: str | os.PathLike[str]) -> Model:
    """Read a dense int8 ``.tflite`` model.

    :param path: The ``.tflite`` file.
    :returns: The model's layers, scales and zero points as NumPy arrays.
    :raises ModelError: if the file is missing, unreadable, truncated or not TFLite, or if its
        graph is anything but RESHAPE/QUANTIZE/DEQUANTIZE at the ends of a chain of int8
        FULLY_CONNECTED layers with no activation or a fused ReLU.
    """
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelError(f"{path}: no such model file; give the path of a .tflite file") from None
    except OSError as error:
        raise ModelError(
            f"{path}: cannot read the model file ({error.strerror}); "
            "give the path of a readable .tflite file"
        ) from None
    if len(data) < 8 or not schema.Model.ModelBufferHasIdentifier(data, 0):
        raise ModelError(
            f"{path}: not a TFLite model (no TFL3 file identifier); "
            "give a .tflite file written by the TFLite converter"
        )
    try:
        fb = schema.ModelT.InitFromPackedBuf(data, 0)
        from ._chain import CHAIN_OPS, ChainReader  # _chain's layer kinds import this module

        reader = _Reader(path, fb, data)
        if any(reader.op_name(op) in CHAIN_OPS for op in reader.graph.operators or []):
            return ChainReader(path, fb, data).model()
        return reader.model()
    except (struct.error, IndexError, ValueError, TypeError, AttributeError) as error:
        if isinstance(error, ModelError):
            raise
        raise ModelError(
            f"{path}: truncated or corrupt TFLite file ({type(error).__name__}); "
            "export the model again"
        ) from None


class _Reader:
    """Walks one parsed flatbuffer and builds the :class:`Model`, checking as it goes."""

    def __init__(self, path: Path, fb: schema.ModelT, data: bytes) -> None:
        self.path = path
        self.fb = fb
        self.data = data
        if not fb.subgraphs or len(fb.subgraphs) != 1:
            count = len(fb.subgraphs or [])
            self.fail(f"has {count} subgraphs, not 1; {_FIX}")
        self.graph = fb.subgraphs[0]
        self.tensors = self.graph.tensors or []

    def fail(self, message: str) -> NoReturn:
        raise ModelError(f"{self.path}: {message}")

    def op_name(self, op: schema.OperatorT) -> str:
        code = self.fb.operatorCodes[op.opcodeIndex]
        builtin = max(code.deprecatedBuiltinCode, code.builtinCode)
        if builtin == schema.BuiltinOperator.CUSTOM:
            return f"CUSTOM ({(code.customCode or b'').decode(errors='replace')})"
        return _OP_NAMES.get(builtin, f"builtin operator {builtin}")

    def type_name(self, tensor: schema.TensorT) -> str:
        return _TYPE_NAMES.get(tensor.type, f"tensor type {tensor.type}")

    def constant(self, tensor: schema.TensorT, dtype: type[np.generic]) -> np.ndarray | None:
        """The tensor's constant data as ``dtype`` in its shape, or None for a runtime tensor."""
        buffer = self.fb.buffers[tensor.buffer]
        if buffer.offset > 1:  # data stored outside the flatbuffer, at a file offset
            if buffer.offset + buffer.size > len(self.data):
                raise ValueError("buffer beyond the end of the file")
            raw = np.frombuffer(self.data, np.uint8, buffer.size, buffer.offset)
        elif buffer.data is not None:
            raw = np.asarray(buffer.data, dtype=np.uint8)
        else:
            return None
        values = raw.view(dtype)
        shape = tuple(int(n) for n in tensor.shape)
        if values.size != math.prod(shape):
            raise ValueError("buffer size does not match the tensor shape")
        values = values.reshape(shape).copy()
        values.flags.writeable = False
        return values

    def quantization(self, tensor: schema.TensorT) -> tuple[np.ndarray, np.ndarray]:
        q = tensor.quantization
        if q is None or q.scale is None or len(q.scale) == 0:
            return np.zeros(0, np.float32), np.zeros(0, np.int64)
        zero_points = q.zeroPoint if q.zeroPoint is not None else np.zeros(len(q.scale))
        return np.asarray(q.scale, np.float32), np.asarray(zero_points, np.int64)

    def per_tensor(self, tensor: schema.TensorT, what: str) -> tuple[float, int]:
        scales, zero_points = self.quantization(tensor)
        if len(scales) != 1 or len(zero_points) != 1:
            self.fail(f"{what} is not quantized with one scale and zero point; {_FIX}")
        return float(scales[0]), int(zero_points[0])

    def model(self) -> Model:
        ops = list(self.graph.operators or [])
        names = [self.op_name(op) for op in ops]
        fc = [j for j, name in enumerate(names) if name == "FULLY_CONNECTED"]
        first, last = (fc[0], fc[-1]) if fc else (len(ops), len(ops))
        for j, name in enumerate(names):
            allowed = {"RESHAPE", "QUANTIZE"} if j < first else {"RESHAPE", "DEQUANTIZE"}
            if name != "FULLY_CONNECTED" and (first < j < last or name not in allowed):
                layer = sum(k < j for k in fc)
                where = f"after layer {layer - 1}" if fc and j > last else f"before layer {layer}"
                self.fail(
                    f"op {j} is {name} ({where}), which qnn-ref does not support; {_FIX}, "
                    "with RESHAPE, QUANTIZE or DEQUANTIZE only at the ends"
                )
        if not fc:
            self.fail(f"has no FULLY_CONNECTED layer; {_FIX}")
        graph_input, float_input, float_output = self.check_chain(
            ops, names, fix=_FIX, unchained=f"{_FIX}, one after the other"
        )
        layers = tuple(self.layer(i, j, ops[j]) for i, j in enumerate(fc))
        return Model(
            path=self.path,
            input_shape=self.input_shape(self.tensors[graph_input], layers[0].in_features),
            input_scale=layers[0].input_scale,
            input_zero_point=layers[0].input_zero_point,
            float_input=float_input,
            float_output=float_output,
            layers=layers,
        )

    def check_chain(
        self,
        ops: list[schema.OperatorT],
        names: list[str],
        *,
        fix: str,
        unchained: str,
        one_output: bool = False,
    ) -> tuple[int, bool, bool]:
        """Check that ``ops`` form one chain from the graph input to the graph output.

        Each op must read the previous op's output, a ``QUANTIZE`` must come from the float32
        model input and a ``DEQUANTIZE`` go to the float32 model output, and a ``RESHAPE`` must
        keep type and quantization (so the int8 values pass through it unchanged).

        :param fix: What to do, ending the messages.
        :param unchained: What to do when an op does not read the previous op's output.
        :param one_output: Also refuse an op with more than one output.
        :returns: The graph input tensor index, and whether input and output are float32.
        """
        graph_inputs, graph_outputs = list(self.graph.inputs), list(self.graph.outputs)
        if len(graph_inputs) != 1 or len(graph_outputs) != 1:
            self.fail(
                f"has {len(graph_inputs)} inputs and {len(graph_outputs)} outputs, not 1 and 1; "
                f"{fix}"
            )
        current = graph_inputs[0]
        for j, op in enumerate(ops):
            if int(op.inputs[0]) != current or (one_output and len(op.outputs) != 1):
                self.fail(
                    f"op {j} ({names[j]}) does not take the previous op's output; {unchained}"
                )
            current = int(op.outputs[0])
        if current != graph_outputs[0]:
            self.fail(f"the last op's output is not the model output; {fix}")
        for j, op in enumerate(ops):
            source = self.tensors[op.inputs[0]]
            target = self.tensors[op.outputs[0]]
            if names[j] in _FLOAT_ENDS:
                preposition, end = _FLOAT_ENDS[names[j]]
                tensor = source if end == "input" else target
                if tensor.type != schema.TensorType.FLOAT32:
                    self.fail(
                        f"op {j} is a {names[j]} {preposition} {self.type_name(tensor)}, not "
                        f"{preposition} the float32 model {end}; {fix}"
                    )
            elif names[j] == "RESHAPE" and (
                source.type != target.type
                or [a.tolist() for a in self.quantization(source)]
                != [a.tolist() for a in self.quantization(target)]
            ):
                self.fail(f"op {j} is a RESHAPE that changes the type or quantization; {fix}")
        return graph_inputs[0], "QUANTIZE" in names, "DEQUANTIZE" in names

    def input_shape(self, tensor: schema.TensorT, in_features: int) -> tuple[int, int]:
        dims = [int(n) for n in tensor.shape][1:]
        if len(dims) == 3 and dims[2] == 1:
            dims = dims[:2]
        if len(dims) == 1:
            side = math.isqrt(dims[0])
            dims = [side, side] if side * side == dims[0] else [1, dims[0]]
        if len(dims) != 2 or dims[0] * dims[1] != in_features:
            self.fail(
                f"model input shape {[int(n) for n in tensor.shape]} is not a batch of "
                f"{in_features}-pixel images; {_FIX}"
            )
        return dims[0], dims[1]

    def check_types(
        self,
        where: str,
        x: schema.TensorT,
        w: schema.TensorT | None,
        y: schema.TensorT,
        b: schema.TensorT | None,
    ) -> None:
        """Fail unless input ``x``, weights ``w`` and output ``y`` are int8 and bias ``b`` int32
        (``w`` and ``b`` may be absent)."""
        for tensor, role, wanted in (
            (w, "weights", "INT8"),
            (x, "input", "INT8"),
            (y, "output", "INT8"),
            (b, "bias", "INT32"),
        ):
            if tensor is not None and self.type_name(tensor) != wanted:
                self.fail(f"{where} has {self.type_name(tensor)} {role}, not {wanted}; {_CONVERT}")

    def options_and_activation(
        self, where: str, op: schema.OperatorT, kind: int, kind_name: str
    ) -> tuple[Any, str]:
        """The op's builtin options, which must be of ``kind``, and its fused activation's name."""
        options = op.builtinOptions
        if options is None or op.builtinOptionsType != kind:
            self.fail(f"{where} has no {kind_name}; export the model again")
        activation = _ACTIVATION_NAMES.get(
            options.fusedActivationFunction, str(options.fusedActivationFunction)
        )
        return options, activation

    def bias(self, where: str, b: schema.TensorT | None, count: int, fix: str) -> np.ndarray:
        """The read-only int32 bias of ``count`` channels: zeros if the op has none.

        :param fix: What ends the message when the bias is not a constant of ``count`` values.
        """
        if b is None:
            bias = np.zeros(count, np.int32)
            bias.flags.writeable = False
            return bias
        bias = self.constant(b, np.int32)
        if bias is None or bias.shape != (count,):
            self.fail(f"{where} bias is not a constant vector of {count} values{fix}")
        return bias

    def layer(self, index: int, j: int, op: schema.OperatorT) -> DenseLayer:
        where = f"layer {index} (FULLY_CONNECTED, op {j})"
        inputs = [int(n) for n in op.inputs]
        x, w = self.tensors[inputs[0]], self.tensors[inputs[1]]
        b = self.tensors[inputs[2]] if len(inputs) > 2 and inputs[2] >= 0 else None
        y = self.tensors[int(op.outputs[0])]
        self.check_types(where, x, w, y, b)
        options, activation = self.options_and_activation(
            where, op, schema.BuiltinOptions.FullyConnectedOptions, "FullyConnectedOptions"
        )
        if activation not in ("NONE", "RELU", "RELU6"):
            self.fail(
                f"{where} has fused activation {activation}; only NONE, RELU and RELU6 are "
                "supported"
            )
        if options.weightsFormat != schema.FullyConnectedOptionsWeightsFormat.DEFAULT:
            self.fail(f"{where} has shuffled weights; export the model with default weights")
        if w.sparsity is not None:
            self.fail(f"{where} has sparse weights; export the model with dense weights")
        weights = self.constant(w, np.int8)
        if weights is None or weights.ndim != 2:
            self.fail(f"{where} weights are not a constant 2-D tensor; {_FIX}")
        units, in_features = weights.shape
        bias = self.bias(where, b, units, f"; {_FIX}")
        bias_scales = self.quantization(b)[0] if b is not None else np.zeros(0)
        input_scale, input_zero_point = self.per_tensor(x, f"{where} input")
        output_scale, output_zero_point = self.per_tensor(y, f"{where} output")
        scales, zero_points = self.quantization(w)
        if len(scales) not in (1, units) or w.quantization.quantizedDimension != 0:
            self.fail(f"{where} weights are not quantized per tensor or per output channel; {_FIX}")
        if np.any(zero_points != 0):
            self.fail(f"{where} weights have a non-zero zero point; {_FIX} (symmetric weights)")
        x_elements = math.prod(int(n) for n in x.shape[1:])
        if x_elements % in_features:
            self.fail(f"{where} input of shape {list(x.shape)} does not match its weights")
        weight_scales = np.broadcast_to(scales, (units,)).astype(np.float32)
        weight_scales.flags.writeable = False
        transposed = np.ascontiguousarray(weights.T)
        transposed.flags.writeable = False
        return DenseLayer(
            index=index,
            weights=transposed,
            bias=bias,
            input_scale=input_scale,
            input_zero_point=input_zero_point,
            weight_scales=weight_scales,
            per_channel=len(scales) > 1,
            output_scale=output_scale,
            output_zero_point=output_zero_point,
            relu=activation in ("RELU", "RELU6"),
            relu6=activation == "RELU6",
            bias_scale=float(bias_scales[0])
            if len(scales) == 1 and len(bias_scales) == 1
            else None,
        )
