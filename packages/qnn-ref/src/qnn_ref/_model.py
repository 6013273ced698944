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
from typing import Literal, NoReturn, get_args

import numpy as np
from ai_edge_litert import schema_py_generated as schema

__all__ = [
    "ROUNDINGS",
    "DenseLayer",
    "Model",
    "ModelError",
    "Rounding",
    "default_model_path",
    "quantize_multiplier",
    "read_model",
]

#: The name of a LiteRT int8 kernel path, and of the NumPy arithmetic that matches it.
Rounding = Literal["xnnpack", "builtin", "reference"]

#: The LiteRT kernel paths, in order: the XNNPACK delegate (what a default ``Interpreter``
#: runs), the optimized builtin kernels, and the reference kernels.
ROUNDINGS: tuple[Rounding, ...] = get_args(Rounding)

_OP_NAMES = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
_TYPE_NAMES = {v: k for k, v in vars(schema.TensorType).items() if not k.startswith("_")}
_ACTIVATION_NAMES = {
    v: k for k, v in vars(schema.ActivationFunctionType).items() if not k.startswith("_")
}
_FIX = "export a chain of int8 FULLY_CONNECTED layers with full-integer quantization"


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

    @property
    def in_features(self) -> int:
        """Length of the layer's input vector."""
        return int(self.weights.shape[0])

    @property
    def units(self) -> int:
        """Number of output channels."""
        return int(self.weights.shape[1])

    @property
    def activation_range(self) -> tuple[int, int]:
        """``(low, high)`` clamp of the int8 output: a fused ReLU clamps at the zero point."""
        return (self.output_zero_point if self.relu else -128, 127)

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
    layers: tuple[DenseLayer, ...]

    @property
    def in_features(self) -> int:
        """Length of the flattened input vector."""
        return self.layers[0].in_features

    @property
    def num_classes(self) -> int:
        """Number of outputs of the last layer."""
        return self.layers[-1].units


def default_model_path() -> Path:
    """The 144-18-10 MNIST model shipped inside qnn-ref as package data."""
    return Path(__file__).resolve().parent / "models" / "default.tflite"


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
        return _Reader(path, fb, data).model()
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
        graph_inputs = list(self.graph.inputs)
        graph_outputs = list(self.graph.outputs)
        if len(graph_inputs) != 1 or len(graph_outputs) != 1:
            self.fail(
                f"has {len(graph_inputs)} inputs and {len(graph_outputs)} outputs, not 1 and 1; "
                f"{_FIX}"
            )
        # The ops must form one chain from the graph input to the graph output.
        current = graph_inputs[0]
        for j, op in enumerate(ops):
            if int(op.inputs[0]) != current:
                self.fail(
                    f"op {j} ({names[j]}) does not take the previous op's output; "
                    f"{_FIX}, one after the other"
                )
            current = int(op.outputs[0])
        if current != graph_outputs[0]:
            self.fail(f"the last op's output is not the model output; {_FIX}")

        float_input = float_output = False
        for j, op in enumerate(ops):
            source = self.tensors[op.inputs[0]]
            target = self.tensors[op.outputs[0]]
            if names[j] == "QUANTIZE":
                float_input = True
                if source.type != schema.TensorType.FLOAT32:
                    self.fail(
                        f"op {j} is a QUANTIZE from {self.type_name(source)}, not from the "
                        f"float32 model input; {_FIX}"
                    )
            elif names[j] == "DEQUANTIZE":
                float_output = True
                if target.type != schema.TensorType.FLOAT32:
                    self.fail(
                        f"op {j} is a DEQUANTIZE to {self.type_name(target)}, not to the "
                        f"float32 model output; {_FIX}"
                    )
            elif names[j] == "RESHAPE" and (
                source.type != target.type
                or [a.tolist() for a in self.quantization(source)]
                != [a.tolist() for a in self.quantization(target)]
            ):
                self.fail(f"op {j} is a RESHAPE that changes the type or quantization; {_FIX}")
        layers = tuple(self.layer(i, j, ops[j]) for i, j in enumerate(fc))
        input_tensor = self.tensors[graph_inputs[0]]
        return Model(
            path=self.path,
            input_shape=self.input_shape(input_tensor, layers[0].in_features),
            input_scale=layers[0].input_scale,
            input_zero_point=layers[0].input_zero_point,
            float_input=float_input,
            float_output=float_output,
            layers=layers,
        )

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

    def layer(self, index: int, j: int, op: schema.OperatorT) -> DenseLayer:
        where = f"layer {index} (FULLY_CONNECTED, op {j})"
        inputs = [int(n) for n in op.inputs]
        x, w = self.tensors[inputs[0]], self.tensors[inputs[1]]
        b = self.tensors[inputs[2]] if len(inputs) > 2 and inputs[2] >= 0 else None
        y = self.tensors[int(op.outputs[0])]
        for tensor, role, wanted in (
            (w, "weights", "INT8"),
            (x, "input", "INT8"),
            (y, "output", "INT8"),
            (b, "bias", "INT32"),
        ):
            if tensor is not None and self.type_name(tensor) != wanted:
                self.fail(
                    f"{where} has {self.type_name(tensor)} {role}, not {wanted}; "
                    "convert with full-integer int8 quantization"
                )
        options = op.builtinOptions
        if options is None or op.builtinOptionsType != schema.BuiltinOptions.FullyConnectedOptions:
            self.fail(f"{where} has no FullyConnectedOptions; export the model again")
        activation = _ACTIVATION_NAMES.get(
            options.fusedActivationFunction, str(options.fusedActivationFunction)
        )
        if activation not in ("NONE", "RELU"):
            self.fail(
                f"{where} has fused activation {activation}; only NONE and RELU are supported: "
                "use ReLU or no activation"
            )
        if options.weightsFormat != schema.FullyConnectedOptionsWeightsFormat.DEFAULT:
            self.fail(f"{where} has shuffled weights; export the model with default weights")
        if w.sparsity is not None:
            self.fail(f"{where} has sparse weights; export the model with dense weights")
        weights = self.constant(w, np.int8)
        if weights is None or weights.ndim != 2:
            self.fail(f"{where} weights are not a constant 2-D tensor; {_FIX}")
        units, in_features = weights.shape
        if b is None:
            bias = np.zeros(units, np.int32)
            bias.flags.writeable = False
        else:
            bias = self.constant(b, np.int32)
            if bias is None or bias.shape != (units,):
                self.fail(f"{where} bias is not a constant vector of {units} values; {_FIX}")
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
            relu=activation == "RELU",
        )
