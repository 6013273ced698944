"""Convolutional models: reading, the NumPy reference against LiteRT on every kernel path.

The golden values are LiteRT's: every model here (the shipped CNN, CNNs written with
:func:`qnn_ref.testing.write_model`, random conv layers from hypothesis) runs through the
interpreter on each path and through the NumPy reference, and every int8 value of every layer
must agree.
"""

import dataclasses
import hashlib
import json
import re
import zlib
from collections.abc import Callable
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import qnn_ref
from qnn_ref import (
    ROUNDINGS,
    AveragePool2DLayer,
    Conv2DLayer,
    DenseLayer,
    MaxPool2DLayer,
    Model,
    ModelError,
    read_model,
    run_litert,
    run_numpy,
)
from qnn_ref.testing import (
    frozen,
    pool_layer,
    random_conv_layer,
    random_dense_layer,
    random_layers,
    require_module,
    train_in_child,
    write_model,
)


def chain(rng: np.random.Generator, specs: list[tuple]) -> list:
    """:func:`~qnn_ref.testing.random_layers` with the input shape in the first spec."""
    (kind, first), *rest = specs
    first = dict(first)
    input_shape = first.pop("input_shape")
    return random_layers(rng, [(kind, first), *rest], input_shape)


def assert_bit_exact(model: Model, x: np.ndarray) -> dict[str, list[int]]:
    """Every layer of NumPy == LiteRT on every path; returns each path's outputs' spread."""
    spread = {}
    for rounding in ROUNDINGS:
        expected = run_litert(model, x, rounding=rounding)
        actual = run_numpy(model, x, rounding=rounding)
        np.testing.assert_array_equal(actual.input, expected.input, strict=True)
        for i, (a, b) in enumerate(zip(actual.layers, expected.layers, strict=True)):
            assert a.shape == (len(x), *model.layers[i].output_shape)
            np.testing.assert_array_equal(a, b, strict=True, err_msg=f"{rounding} layer {i}")
        np.testing.assert_array_equal(actual.predictions, expected.predictions, strict=True)
        spread[rounding] = [len(np.unique(layer)) for layer in expected.layers]
    return spread


# --- the shipped CNN ---------------------------------------------------------------------------


@pytest.fixture(scope="session")
def cnn() -> Model:
    return read_model(qnn_ref.shipped_model_path("cnn"))


def test_shipped_cnn_layers(cnn: Model) -> None:
    kinds = [type(layer) for layer in cnn.layers]
    assert Conv2DLayer in kinds
    assert DenseLayer in kinds
    assert cnn.layers[-1].output_shape == (10,)
    assert not cnn.softmax_dropped


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_shipped_cnn_bit_exact(cnn: Model, rounding: str, test_inputs: Callable) -> None:
    """The shipped CNN: NumPy == LiteRT on every layer of all 10,000 test images (a few
    seconds per path)."""
    x = test_inputs(cnn.input_shape)
    expected = run_litert(cnn, x, rounding=rounding)
    actual = run_numpy(cnn, x, rounding=rounding)
    np.testing.assert_array_equal(actual.input, expected.input, strict=True)
    for a, b in zip(actual.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(a, b, strict=True)
    np.testing.assert_array_equal(actual.predictions, expected.predictions, strict=True)


def test_shipped_model_paths() -> None:
    assert qnn_ref.shipped_model_path("mlp") == qnn_ref.default_model_path()
    assert qnn_ref.shipped_model_path("cnn").name == "cnn.tflite"
    with pytest.raises(ValueError, match=r"^shipped models are mlp and cnn, not 'resnet'$"):
        qnn_ref.shipped_model_path("resnet")


# --- written CNNs of other shapes --------------------------------------------------------------

SHAPES = {
    "conv-same-maxpool-dense": [
        ("conv", dict(input_shape=(12, 12, 1), channels=4, activation="RELU")),
        ("max", dict()),
        ("dense", dict(units=10)),
    ],
    "stride-2-valid-5x5": [
        ("conv", dict(input_shape=(13, 11, 1), channels=3, kernel=5, stride=2, padding="VALID")),
        ("conv", dict(channels=5, kernel=2, stride=1, padding="VALID", activation="RELU6")),
    ],
    "three-input-channels-per-tensor": [
        ("conv", dict(input_shape=(7, 9, 3), channels=4, per_channel=False, stride=2)),
        ("average", dict(kernel=3, stride=1, padding="SAME")),
    ],
    "depthwise": [
        ("conv", dict(input_shape=(10, 10, 1), channels=6, activation="RELU")),
        ("depthwise", dict(stride=2, kernel=3)),
        ("depthwise", dict(padding="VALID", kernel=2, activation="RELU6")),
    ],
    "average-pool-same-odd": [
        ("conv", dict(input_shape=(9, 9, 2), channels=3)),
        ("average", dict(kernel=3, stride=2, padding="SAME")),
        ("max", dict(kernel=3, stride=2, padding="SAME", activation="RELU")),
        ("dense", dict(units=7)),
    ],
    "1x1-kernel": [
        ("conv", dict(input_shape=(6, 6, 2), channels=3, kernel=1)),
        ("max", dict(kernel=3, stride=3)),
    ],
}


@pytest.mark.parametrize("name", SHAPES)
def test_written_cnn_bit_exact(name: str, tmp_path: Path) -> None:
    rng = np.random.default_rng(zlib.crc32(name.encode()))
    layers = chain(rng, [(kind, dict(arguments)) for kind, arguments in SHAPES[name]])
    model = read_model(write_model(tmp_path / "m.tflite", layers))
    assert [type(a) for a in model.layers] == [type(b) for b in layers]
    x = rng.uniform(0, 1, (300, model.in_features)).astype(np.float32)
    spread = assert_bit_exact(model, x)
    # The outputs use the int8 range, so the comparison is not of saturated constants.
    assert min(spread["xnnpack"]) > 10


@pytest.mark.parametrize("float_io", [False, True])
def test_float_io_and_softmax(float_io: bool, tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    layers = chain(
        rng,
        [
            ("conv", dict(input_shape=(8, 8, 1), channels=4, activation="RELU", stride=2)),
            ("dense", dict(units=10)),
        ],
    )
    path = write_model(
        tmp_path / "m.tflite",
        layers,
        input_shape=(8, 8),
        float_input=float_io,
        float_output=float_io,
        softmax=True,
    )
    model = read_model(path)
    assert model.softmax_dropped
    assert (model.float_input, model.float_output) == (float_io, float_io)
    assert model.input_shape == (8, 8)
    x = rng.uniform(0, 1, (200, 64)).astype(np.float32)
    assert_bit_exact(model, x)


def test_paths_differ(tmp_path: Path) -> None:
    """Each path's conv requantization is needed: NumPy on another path disagrees with LiteRT.

    A conv with no activation keeps the negative exact ties where builtin (toward +inf) and
    reference (away from zero) round apart.
    """
    rng = np.random.default_rng(7)
    layers = chain(rng, [("conv", dict(input_shape=(12, 12, 2), channels=8, q_out=(0.01, 0)))])
    model = read_model(write_model(tmp_path / "m.tflite", layers))
    x = rng.uniform(0, 1, (2000, model.in_features)).astype(np.float32)
    litert = {r: run_litert(model, x, rounding=r).layers[0] for r in ROUNDINGS}
    numpy = {r: run_numpy(model, x, rounding=r).layers[0] for r in ROUNDINGS}
    for r in ROUNDINGS:
        np.testing.assert_array_equal(numpy[r], litert[r], strict=True)
        for other in ROUNDINGS:
            if other != r:
                assert (numpy[other] != litert[r]).any(), (other, r)


def test_average_pool_rounds_raw_sum(tmp_path: Path) -> None:
    """AVERAGE_POOL_2D averages the raw int8 values, rounding half away from zero: with a
    large zero point, averaging ``q - z`` and rounding half up gives other values."""
    rng = np.random.default_rng(11)
    layer = pool_layer(AveragePool2DLayer, (6, 6, 2), (0.1, 40), kernel=2, stride=1, padding="SAME")
    model = read_model(write_model(tmp_path / "m.tflite", [layer]))
    q = rng.integers(-128, 128, (500, 72)).astype(np.float32) - 40
    x = (q * np.float32(0.1)).astype(np.float32)
    litert, numpy = run_litert(model, x), run_numpy(model, x)
    np.testing.assert_array_equal(numpy.layers[0], litert.layers[0], strict=True)
    expected = litert.layers[0].astype(np.int64)
    windows = litert.input.astype(np.int64)
    # The wrong rule, on the interior (every window full): floor(mean(q - z) + 1/2) + z.
    interior = windows[:, :5, :5] + windows[:, 1:, :5] + windows[:, :5, 1:] + windows[:, 1:, 1:]
    wrong = np.floor((interior - 4 * 40) / 4 + 0.5).astype(np.int64) + 40
    assert (wrong != expected[:, :5, :5]).mean() > 0.05


@pytest.mark.parametrize("kind", ["conv", "max", "dense"])
def test_relu6_bound_tie(kind: str, tmp_path: Path) -> None:
    """With ``s_out = 12``, ``6 / s = 0.5``: XNNPACK's RELU6 bound rounds it to even (0),
    TFLite's builtin and reference kernels away from zero (1)."""
    rng = np.random.default_rng(4)
    if kind == "conv":
        layer = random_conv_layer(
            rng, (6, 6, 2), 3, activation="RELU6", q_in=(0.5, 0), q_out=(12.0, 0)
        )
    elif kind == "dense":
        layer = dataclasses.replace(
            random_dense_layer(rng, 72, 5, (0.5, 0), 0),
            weight_scales=frozen(np.full(5, 2.0, np.float32)),
            output_scale=12.0,
            output_zero_point=0,
            relu=True,
            relu6=True,
        )
    else:
        layer = pool_layer(MaxPool2DLayer, (6, 6, 2), (12.0, 0), activation="RELU6")
    model = read_model(write_model(tmp_path / "m.tflite", [layer]))
    x = rng.uniform(-60, 60, (200, model.in_features)).astype(np.float32)
    assert_bit_exact(model, x)
    highest = {r: int(run_litert(model, x, rounding=r).layers[0].max()) for r in ROUNDINGS}
    assert highest == {"xnnpack": 0, "builtin": 1, "reference": 1}


# --- random conv layers ------------------------------------------------------------------------


@st.composite
def conv_layers(draw: st.DrawFn) -> tuple[list, int]:
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    height, width = draw(st.integers(1, 9)), draw(st.integers(1, 9))
    channels = draw(st.integers(1, 4))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    kernel = draw(st.integers(1, min(height, width) if padding == "VALID" else 4))
    depthwise = draw(st.booleans())
    q_in = (draw(st.floats(1e-3, 0.5)), draw(st.integers(-128, 127)))
    q_out = (draw(st.floats(1e-3, 0.5)), draw(st.integers(-128, 127)))
    layer = random_conv_layer(
        rng,
        (height, width, channels),
        draw(st.integers(1, 5)),
        kernel=kernel,
        stride=draw(st.integers(1, 3)),
        padding=padding,
        activation=draw(st.sampled_from(["NONE", "RELU", "RELU6"])),
        q_in=q_in,
        q_out=q_out,
        per_channel=draw(st.booleans()),
        depthwise=depthwise,
    )
    return [layer], seed


@settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(case=conv_layers())
def test_random_conv_layer(case: tuple[list, int], tmp_path: Path) -> None:
    layers, seed = case
    model = read_model(write_model(tmp_path / "random.tflite", layers))
    rng = np.random.default_rng(seed)
    s, z = model.input_scale, model.input_zero_point
    q = rng.integers(-128, 128, (64, model.in_features))
    x = ((q - z) * np.float32(s)).astype(np.float32)
    assert_bit_exact(model, x)


# --- rejected models ---------------------------------------------------------------------------

SUPPORTED = (
    "qnn-ref reads chains of int8 CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D and "
    "FULLY_CONNECTED layers with RESHAPE between them, QUANTIZE/DEQUANTIZE at the ends and an "
    "optional final SOFTMAX"
)


@pytest.fixture
def small_cnn(tmp_path: Path) -> Path:
    """conv (op 1, after a RESHAPE) -> max pool (op 2) -> RESHAPE (op 3) -> dense (op 4)."""
    rng = np.random.default_rng(5)
    layers = chain(
        rng,
        [
            ("conv", dict(input_shape=(6, 6, 1), channels=2, activation="RELU")),
            ("max", dict()),
            ("dense", dict(units=10)),
        ],
    )
    return write_model(tmp_path / "cnn.tflite", layers, input_shape=(6, 6))


def mutate(source: Path, change: Callable[[schema.ModelT], None]) -> Path:
    model = schema.ModelT.InitFromPackedBuf(source.read_bytes(), 0)
    change(model)
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    target = source.with_name("bad.tflite")
    target.write_bytes(bytes(builder.Output()))
    return target


def set_op(position: int, code: int) -> Callable[[schema.ModelT], None]:
    def change(fb: schema.ModelT) -> None:
        entry = schema.OperatorCodeT()
        entry.builtinCode = entry.deprecatedBuiltinCode = code
        entry.version = 1
        fb.operatorCodes.append(entry)
        fb.subgraphs[0].operators[position].opcodeIndex = len(fb.operatorCodes) - 1

    return change


def conv_options(**fields: int) -> Callable[[schema.ModelT], None]:
    def change(fb: schema.ModelT) -> None:
        for name, value in fields.items():
            setattr(fb.subgraphs[0].operators[1].builtinOptions, name, value)

    return change


def int16_activations(fb: schema.ModelT) -> None:
    for tensor in fb.subgraphs[0].tensors:
        if tensor.type == schema.TensorType.INT8 and fb.buffers[tensor.buffer].data is None:
            tensor.type = schema.TensorType.INT16


def branch(fb: schema.ModelT) -> None:
    """Make the max pool read the graph input instead of the conv's output."""
    op = fb.subgraphs[0].operators[2]
    op.inputs = np.array([fb.subgraphs[0].inputs[0]], np.int32)


def two_inputs(fb: schema.ModelT) -> None:
    """An ADD-like second runtime input on the pool: a graph that is not a chain."""
    graph = fb.subgraphs[0]
    graph.inputs = np.array([*graph.inputs, graph.operators[0].outputs[0]], np.int32)


def rescale_pool(fb: schema.ModelT) -> None:
    """Give the pool's output (and the flattened copy of it) another scale."""
    graph = fb.subgraphs[0]
    for op in graph.operators[2:4]:
        graph.tensors[op.outputs[0]].quantization.scale = np.array([0.5], np.float32)


REJECTED = {
    "add": (
        set_op(2, schema.BuiltinOperator.ADD),
        f"op 2 is ADD (before layer 1), which is not supported; {SUPPORTED}",
    ),
    "concatenation": (
        set_op(3, schema.BuiltinOperator.CONCATENATION),
        f"op 3 is CONCATENATION (before layer 2), which is not supported; {SUPPORTED}",
    ),
    "softmax-inside": (
        set_op(2, schema.BuiltinOperator.SOFTMAX),
        f"op 2 is SOFTMAX (before layer 1), which is not supported; {SUPPORTED}",
    ),
    "int16": (
        int16_activations,
        "layer 0 (CONV_2D, op 1) has INT16 input, not INT8; convert with full-integer int8 "
        "quantization",
    ),
    "dilation": (
        conv_options(dilationHFactor=2, dilationWFactor=2),
        "layer 0 (CONV_2D, op 1) has dilation 2x2; only dilation 1 is supported",
    ),
    "tanh": (
        conv_options(fusedActivationFunction=schema.ActivationFunctionType.TANH),
        "layer 0 (CONV_2D, op 1) has fused activation TANH; only NONE, RELU and RELU6 are "
        "supported",
    ),
    "branch": (
        branch,
        f"op 2 (MAX_POOL_2D) does not take the previous op's output; the graph must be one "
        f"chain: {SUPPORTED}",
    ),
    "two-inputs": (
        two_inputs,
        f"has 2 inputs and 1 outputs, not 1 and 1; {SUPPORTED}",
    ),
    "pool-requantizes": (
        rescale_pool,
        "layer 1 (MAX_POOL_2D, op 2) output quantization differs from its input's; convert "
        "with full-integer int8 quantization (pooling keeps the scale and zero point)",
    ),
}


@pytest.mark.parametrize("case", REJECTED)
def test_rejected(case: str, small_cnn: Path) -> None:
    change, message = REJECTED[case]
    path = mutate(small_cnn, change)
    with pytest.raises(ModelError, match="^" + re.escape(f"{path}: {message}") + "$"):
        read_model(path)


def test_depth_multiplier_rejected(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    layers = chain(rng, [("depthwise", dict(input_shape=(5, 5, 2), kernel=3))])
    source = write_model(tmp_path / "dw.tflite", layers)

    def multiply(fb: schema.ModelT) -> None:
        graph = fb.subgraphs[0]
        op = graph.operators[0]
        op.builtinOptions.depthMultiplier = 2
        weights = graph.tensors[op.inputs[1]]
        weights.shape = np.array([1, 3, 3, 4], np.int32)
        fb.buffers[weights.buffer].data = np.tile(fb.buffers[weights.buffer].data, 2)
        graph.tensors[op.outputs[0]].shape = np.array([1, 5, 5, 4], np.int32)

    path = mutate(source, multiply)
    message = (
        "layer 0 (DEPTHWISE_CONV_2D, op 0) has depth multiplier 2 (2 to 4 channels); only depth "
        "multiplier 1 is supported"
    )
    with pytest.raises(ModelError, match="^" + re.escape(f"{path}: {message}") + "$"):
        read_model(path)


def test_mlp_with_softmax_reads_as_the_mlp(tmp_path: Path) -> None:
    """A trailing SOFTMAX is left out; the layers before it are read as without it."""
    mlp = read_model(qnn_ref.default_model_path())
    path = write_model(tmp_path / "softmax.tflite", mlp.layers, input_shape=(12, 12), softmax=True)
    model = read_model(path)
    assert model.softmax_dropped
    assert not mlp.softmax_dropped
    for a, b in zip(model.layers, mlp.layers, strict=True):
        np.testing.assert_array_equal(a.weights, b.weights, strict=True)
        assert (a.output_scale, a.output_zero_point, a.relu) == (
            b.output_scale,
            b.output_zero_point,
            b.relu,
        )
    x = np.random.default_rng(0).uniform(0, 1, (100, 144)).astype(np.float32)
    assert_bit_exact(model, x)


def test_describe(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    layers = chain(
        rng,
        [
            ("conv", dict(input_shape=(12, 12, 1), channels=4, activation="RELU")),
            ("average", dict(stride=2)),
            ("depthwise", dict(stride=2, padding="VALID", per_channel=False)),
            ("dense", dict(units=10)),
        ],
    )
    model = read_model(write_model(tmp_path / "m.tflite", layers))
    assert [layer.describe() for layer in model.layers] == [
        "CONV_2D 3x3/1 SAME 12x12x1 -> 12x12x4 RELU, per-channel weights",
        "AVERAGE_POOL_2D 2x2/2 VALID 12x12x4 -> 6x6x4",
        "DEPTHWISE_CONV_2D 3x3/2 VALID 6x6x4 -> 2x2x4, per-tensor weights",
        "FULLY_CONNECTED 16 -> 10",
    ]
    assert [layer.macs for layer in model.layers[:3]] == [144 * 4 * 9, 0, 16 * 9]


# --- training arguments ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (dict(architecture="rnn"), "architecture must be mlp or cnn, not 'rnn'"),
        (dict(conv_channels=(4, 0)), "conv channel count must be a positive integer, not 0"),
        (dict(conv_channels=()), "a CNN needs at least one convolution: give its conv channels"),
        (dict(kernel_sizes=(3,)), "kernel sizes must be 2 positive integers, not (3,)"),
        (dict(pooling="average"), "pooling must be max or none, not 'average'"),
        (
            dict(conv_channels=(2, 2, 2, 2), kernel_sizes=(3, 3, 3, 3), input_size=(12, 12)),
            "an input of 12x12 is too small for 4 2x2 poolings; give a larger input size or "
            "fewer convolutions",
        ),
    ],
)
def test_train_cnn_arguments(arguments: dict, message: str, tmp_path: Path) -> None:
    """Bad CNN arguments fail at once, before TensorFlow is imported."""
    arguments = {"architecture": "cnn", **arguments}
    with pytest.raises(ValueError, match="^" + re.escape(message) + "$"):
        qnn_ref.train(tmp_path / "m.tflite", **arguments)


def test_train_a_tiny_cnn(tmp_path: Path, test_inputs: Callable) -> None:
    """One float and one QAT epoch of an 8x8 CNN: a readable conv chain, bit-exact.

    Trained in a child process (:func:`qnn_ref.testing.train_in_child`): TensorFlow has
    crashed inside a test process that had loaded many PyRTL simulation libraries."""
    require_module("tensorflow_model_optimization", "training needs the train extra")
    path = tmp_path / "tiny-cnn.tflite"
    facts = train_in_child(
        path,
        architecture="cnn",
        conv_channels=(3, 4),
        kernel_sizes=(3, 2),
        input_size=(8, 8),
        epochs=1,
        qat_epochs=1,
        batch_size=256,
    )
    model = read_model(path)
    assert [layer.op for layer in model.layers] == [
        "CONV_2D",
        "MAX_POOL_2D",
        "CONV_2D",
        "MAX_POOL_2D",
        "FULLY_CONNECTED",
    ]
    assert [layer.output_shape for layer in model.layers] == [
        (8, 8, 3),
        (4, 4, 3),
        (4, 4, 4),
        (2, 2, 4),
        (10,),
    ]
    assert facts.architecture == "cnn"
    assert facts.layer_sizes == [64, 192, 48, 64, 16, 10]
    assert facts.int8_accuracy > 0.2  # learned something: chance is 0.1 (one epoch gives ~0.45)
    assert_bit_exact(model, test_inputs((8, 8))[:500])


def test_shipped_cnn_matches_its_facts(cnn: Model, mnist_test: tuple) -> None:
    facts = json.loads(qnn_ref.facts_path(cnn.path).read_text())
    data = cnn.path.read_bytes()
    assert (facts["model_bytes"], facts["model_sha256"]) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    assert facts["architecture"] == "cnn"
    assert facts["input_size"] == list(cnn.input_shape)
    outputs = run_litert(cnn, qnn_ref.preprocess(mnist_test[0], cnn.input_shape))
    assert facts["int8_accuracy"] == round(float(np.mean(outputs.predictions == mnist_test[1])), 4)
    assert facts["int8_accuracy"] >= 0.985
