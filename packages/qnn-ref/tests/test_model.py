"""Reading .tflite models: structure, scales, multipliers, and every rejection message."""

import dataclasses
import itertools
import math
import re
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

from qnn_ref import (
    ROUNDINGS,
    DenseLayer,
    Model,
    ModelError,
    default_model_path,
    quantize_multiplier,
    read_model,
)
from qnn_ref.testing import write_model

FIX = "export a chain of int8 FULLY_CONNECTED layers with full-integer quantization"


def mutate(source: Path, target: Path, change: Callable[[schema.ModelT], None]) -> Path:
    """Copy a model file, changing its parsed flatbuffer on the way."""
    model = schema.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target.write_bytes(bytes(builder.Output()))
    return target


def random_layer(
    rng: np.random.Generator,
    in_features: int,
    units: int,
    *,
    input_q: tuple[float, int],
    per_channel: bool,
    relu: bool,
) -> DenseLayer:
    scales = rng.uniform(1e-3, 1e-2, units if per_channel else 1).astype(np.float32)
    return DenseLayer(
        index=0,
        weights=rng.integers(-127, 128, (in_features, units)).astype(np.int8),
        bias=rng.integers(-5000, 5000, units).astype(np.int32),
        input_scale=input_q[0],
        input_zero_point=input_q[1],
        weight_scales=np.broadcast_to(scales, (units,)).astype(np.float32),
        per_channel=per_channel,
        output_scale=float(np.float32(rng.uniform(0.01, 0.1))),
        output_zero_point=int(rng.integers(-128, 0)),
        relu=relu,
    )


def random_layers(rng: np.random.Generator, sizes: list[int], **kwargs: bool) -> list[DenseLayer]:
    layers: list[DenseLayer] = []
    input_q = (float(np.float32(1 / 255)), -128)
    for i, (k, n) in enumerate(itertools.pairwise(sizes)):
        layer = dataclasses.replace(random_layer(rng, k, n, input_q=input_q, **kwargs), index=i)
        layers.append(layer)
        input_q = (layer.output_scale, layer.output_zero_point)
    return layers


def assert_same_layers(actual: tuple[DenseLayer, ...], expected: list[DenseLayer]) -> None:
    assert len(actual) == len(expected)
    for got, want in zip(actual, expected, strict=True):
        for field in dataclasses.fields(DenseLayer):
            a, b = getattr(got, field.name), getattr(want, field.name)
            if isinstance(b, np.ndarray):
                np.testing.assert_array_equal(a, b, strict=True)
            else:
                assert a == b, field.name


def test_default_model(default_model: Model) -> None:
    assert default_model.path == default_model_path()
    assert default_model.input_shape == (12, 12)
    assert (default_model.in_features, default_model.num_classes) == (144, 10)
    assert not default_model.float_input
    assert not default_model.float_output
    assert [(layer.in_features, layer.units) for layer in default_model.layers] == [
        (144, 18),
        (18, 10),
    ]
    assert [layer.relu for layer in default_model.layers] == [True, False]
    assert [layer.index for layer in default_model.layers] == [0, 1]
    first, last = default_model.layers
    assert (default_model.input_scale, default_model.input_zero_point) == (
        first.input_scale,
        first.input_zero_point,
    )
    assert (last.input_scale, last.input_zero_point) == (
        first.output_scale,
        first.output_zero_point,
    )
    for layer in default_model.layers:
        assert layer.weights.dtype == np.int8
        assert layer.bias.dtype == np.int32
        assert layer.weight_scales.dtype == np.float32
        assert layer.weight_scales.shape == (layer.units,)
        assert not layer.weights.flags.writeable


def test_weights_are_transposed_from_tflite(default_model: Model) -> None:
    """TFLite stores weights as [units, in_features]; the reader gives [in_features, units]."""
    fb = schema.ModelT.InitFromPackedBuf(default_model.path.read_bytes(), 0)
    graph = fb.subgraphs[0]
    fc = [op for op in graph.operators if fb.operatorCodes[op.opcodeIndex].builtinCode == 9]
    tensor = graph.tensors[fc[0].inputs[1]]
    raw = np.asarray(fb.buffers[tensor.buffer].data, np.uint8).view(np.int8)
    np.testing.assert_array_equal(
        default_model.layers[0].weights, raw.reshape(18, 144).T, strict=True
    )


@pytest.mark.parametrize("per_channel", [True, False])
@pytest.mark.parametrize("float_io", [True, False])
def test_written_model_reads_back(tmp_path: Path, per_channel: bool, float_io: bool) -> None:
    rng = np.random.default_rng(int(per_channel) * 2 + int(float_io))
    layers = random_layers(rng, [64, 20, 7, 5], per_channel=per_channel, relu=True)
    layers[-1] = dataclasses.replace(layers[-1], relu=False)
    path = write_model(
        tmp_path / "m.tflite",
        layers,
        input_shape=(8, 8),
        float_input=float_io,
        float_output=float_io,
    )
    model = read_model(path)
    # A per-tensor layer's bias scale is read back: the float32 product s_in * s_w.
    expected = [
        layer
        if layer.per_channel
        else dataclasses.replace(
            layer, bias_scale=float(np.float32(layer.input_scale) * layer.weight_scales[0])
        )
        for layer in layers
    ]
    assert_same_layers(model.layers, expected)
    assert (model.float_input, model.float_output) == (float_io, float_io)
    assert model.input_shape == (8, 8)
    assert model.num_classes == 5


@pytest.mark.parametrize(
    ("in_features", "input_shape", "expected"),
    [(144, None, (12, 12)), (10, None, (1, 10)), (40, (5, 8), (5, 8)), (1, None, (1, 1))],
)
def test_input_shape(
    tmp_path: Path, in_features: int, input_shape: tuple[int, int] | None, expected: tuple[int, int]
) -> None:
    layers = random_layers(np.random.default_rng(0), [in_features, 3], per_channel=True, relu=False)
    model = read_model(write_model(tmp_path / "m.tflite", layers, input_shape=input_shape))
    assert model.input_shape == expected


def test_input_shape_drops_a_channel_dimension(tmp_path: Path) -> None:
    source = write_model(
        tmp_path / "m.tflite",
        random_layers(np.random.default_rng(0), [36, 3], per_channel=True, relu=False),
        input_shape=(6, 6),
    )

    def add_channel(fb: schema.ModelT) -> None:
        fb.subgraphs[0].tensors[0].shape = np.array([1, 6, 6, 1], np.int32)

    assert read_model(mutate(source, tmp_path / "c.tflite", add_channel)).input_shape == (6, 6)


def test_model_without_bias(tmp_path: Path) -> None:
    layers = random_layers(np.random.default_rng(3), [16, 4], per_channel=True, relu=False)
    source = write_model(tmp_path / "m.tflite", layers)

    def drop_bias(fb: schema.ModelT) -> None:
        fb.subgraphs[0].operators[0].inputs = fb.subgraphs[0].operators[0].inputs[:2]

    layer = read_model(mutate(source, tmp_path / "nobias.tflite", drop_bias)).layers[0]
    np.testing.assert_array_equal(layer.bias, np.zeros(4, np.int32), strict=True)


def reference_quantize_multiplier(scale: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier, written out once more with Python integers."""
    if scale == 0:
        return 0, 0
    q, shift = math.frexp(scale)
    fixed = math.floor(abs(q) * 2**31 + 0.5) * (1 if q > 0 else -1)
    if fixed == 2**31:
        fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        return 2**31 - 1, 30
    return fixed, shift


def test_quantize_multiplier_against_python() -> None:
    rng = np.random.default_rng(5)
    scales = np.concatenate(
        [
            2.0 ** rng.uniform(-34, 33, 3000),
            [1.0, 0.5, 0.75, 1 - 2**-40, 2**-31, 2**-32, 2**-40, 2**31, 0.0, 1 / 3],
        ]
    )
    multipliers, shifts = quantize_multiplier(scales)
    assert multipliers.dtype == np.int64
    assert shifts.dtype == np.int64
    expected = [reference_quantize_multiplier(float(s)) for s in scales]
    assert list(zip(multipliers.tolist(), shifts.tolist(), strict=True)) == expected


def test_quantize_multiplier_rounding_carry() -> None:
    """A significand that rounds up to 2**31 is halved and the shift incremented."""
    multiplier, shift = quantize_multiplier(np.array([1 - 2**-40]))
    assert (int(multiplier[0]), int(shift[0])) == (2**30, 1)


def test_integer_multipliers_per_path() -> None:
    """Per-tensor builtin: float32 product; reference and per-channel: double product."""
    s_in, s_w, s_out = np.float32(0.0123), np.float32(0.000789), np.float32(9.7)
    layer = DenseLayer(
        index=0,
        weights=np.zeros((1, 2), np.int8),
        bias=np.zeros(2, np.int32),
        input_scale=float(s_in),
        input_zero_point=0,
        weight_scales=np.array([s_w, s_w]),
        per_channel=False,
        output_scale=float(s_out),
        output_zero_point=0,
        relu=False,
    )
    float32_product = float(np.float32(s_in * s_w)) / float(s_out)
    double_product = float(s_in) * float(s_w) / float(s_out)
    assert float32_product != double_product
    for rounding, scale in (("builtin", float32_product), ("reference", double_product)):
        multipliers, shifts = layer.integer_multipliers(rounding)
        assert (
            list(zip(multipliers.tolist(), shifts.tolist(), strict=True))
            == [reference_quantize_multiplier(scale)] * 2
        )
    per_channel = dataclasses.replace(layer, per_channel=True)
    assert (
        per_channel.integer_multipliers("builtin")[0].tolist()
        == [reference_quantize_multiplier(double_product)[0]] * 2
    )


def test_xnnpack_multipliers_are_the_float32_scale(default_model: Model) -> None:
    for layer in default_model.layers:
        scales = layer.float_scales()
        assert scales.dtype == np.float32
        expected = (np.float32(layer.input_scale) * layer.weight_scales) / np.float32(
            layer.output_scale
        )
        np.testing.assert_array_equal(scales, expected.astype(np.float32), strict=True)
        multipliers, shifts = layer.integer_multipliers("xnnpack")
        np.testing.assert_array_equal(
            multipliers * 2.0 ** (shifts - 31), scales.astype(np.float64), strict=True
        )
        assert np.all(multipliers % 2**7 == 0)  # 24 significant bits


def test_activation_range(default_model: Model) -> None:
    hidden, last = default_model.layers
    assert hidden.activation_range == (hidden.output_zero_point, 127)
    assert last.activation_range == (-128, 127)


def test_unknown_rounding(default_model: Model) -> None:
    with pytest.raises(
        ValueError, match=r"^rounding must be one of xnnpack, builtin, reference, not 'fast'$"
    ):
        default_model.layers[0].integer_multipliers("fast")  # type: ignore[arg-type]
    assert ROUNDINGS == ("xnnpack", "builtin", "reference")


def error(path: Path, message: str) -> str:
    return "^" + re.escape(f"{path}: {message}") + "$"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.tflite"
    with pytest.raises(
        ModelError, match=error(path, "no such model file; give the path of a .tflite file")
    ):
        read_model(path)


def test_directory(tmp_path: Path) -> None:
    with pytest.raises(
        ModelError,
        match=error(
            tmp_path,
            "cannot read the model file (Is a directory); give the path of a readable .tflite file",
        ),
    ):
        read_model(tmp_path)


@pytest.mark.parametrize("content", [b"", b"hello world, not a model", b"\x00" * 64])
def test_not_tflite(tmp_path: Path, content: bytes) -> None:
    path = tmp_path / "m.tflite"
    path.write_bytes(content)
    message = (
        "not a TFLite model (no TFL3 file identifier); give a .tflite file written by the "
        "TFLite converter"
    )
    with pytest.raises(ModelError, match=error(path, message)):
        read_model(path)


@pytest.mark.parametrize("keep", [8, 100, 1000, 3000, 5000])
def test_truncated(model_file: Path, keep: int) -> None:
    model_file.write_bytes(model_file.read_bytes()[:keep])
    with pytest.raises(
        ModelError,
        match="^"
        + re.escape(f"{model_file}: truncated or corrupt TFLite file (")
        + r"\w+"
        + re.escape("); export the model again")
        + "$",
    ):
        read_model(model_file)


def set_opcode(code: int) -> Callable[[schema.ModelT], None]:
    def change(fb: schema.ModelT) -> None:
        fb.operatorCodes[1].builtinCode = code
        fb.operatorCodes[1].deprecatedBuiltinCode = code

    return change


def set_tensor_type(role: int, tensor_type: int) -> Callable[[schema.ModelT], None]:
    def change(fb: schema.ModelT) -> None:
        graph = fb.subgraphs[0]
        graph.tensors[graph.operators[1].inputs[role]].type = tensor_type

    return change


def int16_activations(fb: schema.ModelT) -> None:
    """Make every activation tensor int16, as 16x8 quantization does."""
    for tensor in fb.subgraphs[0].tensors:
        if tensor.type == schema.TensorType.INT8 and fb.buffers[tensor.buffer].data is None:
            tensor.type = schema.TensorType.INT16


def set_activation(activation: int) -> Callable[[schema.ModelT], None]:
    def change(fb: schema.ModelT) -> None:
        fb.subgraphs[0].operators[2].builtinOptions.fusedActivationFunction = activation

    return change


def set_weight_zero_point(fb: schema.ModelT) -> None:
    graph = fb.subgraphs[0]
    graph.tensors[graph.operators[1].inputs[1]].quantization.zeroPoint = np.array([3], np.int64)


def append_softmax(fb: schema.ModelT) -> None:
    code = schema.OperatorCodeT()
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.SOFTMAX
    code.version = 1
    fb.operatorCodes.append(code)
    graph = fb.subgraphs[0]
    output = schema.TensorT()
    output.shape, output.type, output.buffer, output.name = np.array([1, 10]), 9, 0, "probs"
    graph.tensors.append(output)
    op = schema.OperatorT()
    op.opcodeIndex = len(fb.operatorCodes) - 1
    op.inputs = np.array(graph.outputs, np.int32)
    op.outputs = np.array([len(graph.tensors) - 1], np.int32)
    graph.operators.append(op)
    graph.outputs = op.outputs


def reshape_to_quantize(fb: schema.ModelT) -> None:
    """Turn the leading RESHAPE (int8 to int8) into a QUANTIZE: a requantization."""
    fb.operatorCodes[0].builtinCode = schema.BuiltinOperator.QUANTIZE
    fb.operatorCodes[0].deprecatedBuiltinCode = schema.BuiltinOperator.QUANTIZE


def rescale_reshape_output(fb: schema.ModelT) -> None:
    graph = fb.subgraphs[0]
    graph.tensors[graph.operators[0].outputs[0]].quantization.scale = np.array([0.5], np.float32)


def branch(fb: schema.ModelT) -> None:
    """Make the second FULLY_CONNECTED read the model input instead of the first layer."""
    op = fb.subgraphs[0].operators[2]
    op.inputs = np.array([fb.subgraphs[0].inputs[0], *op.inputs[1:]], np.int32)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            # A convolution is read by the chain reader (test_conv.py), which checks its options.
            set_opcode(schema.BuiltinOperator.CONV_2D),
            "layer 0 (CONV_2D, op 1) has no Conv2DOptions; export the model again",
        ),
        (
            set_tensor_type(1, schema.TensorType.FLOAT32),
            "layer 0 (FULLY_CONNECTED, op 1) has FLOAT32 weights, not INT8; convert with "
            "full-integer int8 quantization",
        ),
        (
            int16_activations,
            "layer 0 (FULLY_CONNECTED, op 1) has INT16 input, not INT8; convert with "
            "full-integer int8 quantization",
        ),
        (
            set_tensor_type(2, schema.TensorType.INT64),
            "layer 0 (FULLY_CONNECTED, op 1) has INT64 bias, not INT32; convert with "
            "full-integer int8 quantization",
        ),
        (
            set_activation(schema.ActivationFunctionType.TANH),
            "layer 1 (FULLY_CONNECTED, op 2) has fused activation TANH; only NONE, RELU and "
            "RELU6 are supported",
        ),
        (
            set_weight_zero_point,
            f"layer 0 (FULLY_CONNECTED, op 1) weights have a non-zero zero point; {FIX} "
            "(symmetric weights)",
        ),
        (
            branch,
            f"op 2 (FULLY_CONNECTED) does not take the previous op's output; {FIX}, one after "
            "the other",
        ),
        (
            reshape_to_quantize,
            f"op 0 is a QUANTIZE from INT8, not from the float32 model input; {FIX}",
        ),
        (
            rescale_reshape_output,
            f"op 0 is a RESHAPE that changes the type or quantization; {FIX}",
        ),
    ],
    ids=[
        "conv",
        "float-weights",
        "int16",
        "int64-bias",
        "tanh",
        "zero-point",
        "branch",
        "requantize",
        "rescale",
    ],
)
def test_unsupported(
    model_file: Path, tmp_path: Path, change: Callable[[schema.ModelT], None], message: str
) -> None:
    path = mutate(model_file, tmp_path / "bad.tflite", change)
    with pytest.raises(ModelError, match=error(path, message)):
        read_model(path)


def test_trailing_softmax_is_left_out(model_file: Path, tmp_path: Path) -> None:
    plain = read_model(model_file)
    model = read_model(mutate(model_file, tmp_path / "softmax.tflite", append_softmax))
    assert model.softmax_dropped
    assert not plain.softmax_dropped
    assert [layer.units for layer in model.layers] == [layer.units for layer in plain.layers]
    for a, b in zip(model.layers, plain.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights, strict=True)


def test_model_error_is_a_value_error() -> None:
    assert issubclass(ModelError, ValueError)


def test_accumulator_range_is_reached() -> None:
    """The bounds are the least and greatest accumulators over every int8 input (all 65,536)."""
    rng = np.random.default_rng(5)
    q = np.stack(np.meshgrid(np.arange(-128, 128), np.arange(-128, 128)), -1).reshape(-1, 2)
    for zero_point in (-128, -3, 127):
        layer = dataclasses.replace(
            random_layer(rng, 2, 6, input_q=(0.1, zero_point), per_channel=True, relu=False),
            bias=np.array([0, 2**31 - 1, -(2**31), 17, -5, 9], np.int32),
        )
        acc = (q - zero_point) @ layer.weights.astype(np.int64) + layer.bias
        low, high = layer.accumulator_range()
        np.testing.assert_array_equal(low, acc.min(axis=0), strict=True)
        np.testing.assert_array_equal(high, acc.max(axis=0), strict=True)


def overflow_layer(
    bias: int, scale: float, *, zero_point: int = 0, weight: int = 127
) -> DenseLayer:
    return DenseLayer(
        index=0,
        weights=np.full((4, 1), weight, np.int8),
        bias=np.array([bias], np.int32),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=np.array([scale], np.float32),
        per_channel=False,
        output_scale=1.0,
        output_zero_point=zero_point,
        relu=False,
    )


@pytest.mark.parametrize(
    ("layer", "expected"),
    [
        # |acc| <= 4 * 128 * 127 + 1000: nothing leaves int32 at any ordinary scale.
        (overflow_layer(1000, 0.01), {"xnnpack": False, "builtin": False, "reference": False}),
        # A bias near 2**31 plus the dot product: the accumulator wraps on every path.
        (overflow_layer(2**31 - 100, 2**-25), dict.fromkeys(ROUNDINGS, True)),
        # Scale 2024 (shift 11): 65,532 << 11 still fits; builtin's zero point and the
        # reference product fit too (65,532 * 2024 + 127 < 2**31)...
        (overflow_layer(0, 2024.1, zero_point=127), dict.fromkeys(ROUNDINGS, False)),
        # ... but with a bias of 2**20 the shifted accumulator leaves int32 (2**31 / 2**11).
        (
            overflow_layer(2**20, 2024.1),
            {"xnnpack": False, "builtin": True, "reference": True},
        ),
        # Scale 1.7e5: 65,532 * 1.7e5 > 2**31 with a negative zero point: XNNPACK too.
        (
            overflow_layer(0, 1.7e5, zero_point=-17),
            {"xnnpack": True, "builtin": True, "reference": True},
        ),
        # ... and with a non-negative one XNNPACK only saturates.
        (
            overflow_layer(0, 1.7e5, zero_point=0),
            {"xnnpack": False, "builtin": True, "reference": True},
        ),
    ],
)
def test_int32_overflow(layer: DenseLayer, expected: dict[str, bool]) -> None:
    flagged = {rounding: bool(layer.int32_overflow(rounding)[0]) for rounding in ROUNDINGS}
    assert flagged == expected


def test_int32_overflow_is_per_channel() -> None:
    layer = dataclasses.replace(overflow_layer(0, 1.0), bias=np.array([0, 2**31 - 1], np.int32))
    layer = dataclasses.replace(
        layer, weights=np.full((4, 2), 127, np.int8), weight_scales=np.ones(2, np.float32)
    )
    assert layer.int32_overflow("xnnpack").tolist() == [False, True]


def test_xnnpack_limit_and_message(tmp_path: Path) -> None:
    big = overflow_layer(0, 300.0)
    assert big.litert_refusal("xnnpack") == "requantization scale 300 is not below 256"
    assert big.litert_refusal("builtin") is None
    model = read_model(write_model(tmp_path / "big.tflite", [big]))
    assert model.roundings == ("builtin", "reference")
    assert model.check_rounding("builtin") == "builtin"
    message = (
        f"{model.path}: layer 0's requantization scale 300 is not below 256, so LiteRT's "
        "default interpreter (XNNPACK) cannot run the model; use the builtin or reference "
        "path, which can"
    )
    with pytest.raises(ModelError, match=f"^{re.escape(message)}$"):
        model.check_rounding("xnnpack")
    with pytest.raises(ValueError, match=r"^rounding must be one of xnnpack, builtin, reference"):
        model.check_rounding("exact")


def test_write_model_rejects_a_zero_point_outside_int8(tmp_path: Path) -> None:
    layer = dataclasses.replace(overflow_layer(0, 1.0), output_zero_point=200)
    with pytest.raises(
        ValueError,
        match=r"^layer 0 output zero point must be an integer from -128 to 127, not 200$",
    ):
        write_model(tmp_path / "bad.tflite", [layer])
    assert not (tmp_path / "bad.tflite").exists()
