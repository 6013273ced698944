"""Convolutional models on the one shared array: plan, gate-level bit-exactness, rejections.

Every expected value is LiteRT's (and the NumPy reference's, which must agree with it): every
int8 value of every layer and every prediction of the simulated hardware must equal them, on
each kernel path the hardware builds. Cycle counts come from the hardware's own counter (the
accelerator checks it against the plan every batch) and the plan's count is checked here
against the documented formula, computed independently from the layer shapes.
"""

import dataclasses
import math
import re
import zlib
from pathlib import Path

import numpy as np
import pytest

import pyrtlnet
import qnn_ref
from pyrtl_linalg import Window
from pyrtlnet import make_plan, matmul_weights
from pyrtlnet.cli import main
from qnn_ref import (
    AveragePool2DLayer,
    DenseLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    Model,
    Outputs,
    read_model,
    run_litert,
    run_numpy,
)
from qnn_ref.testing import frozen, random_layers, write_model

POOLS = (MaxPool2DLayer, AveragePool2DLayer)


@pytest.fixture(scope="session")
def cnn() -> Model:
    """The CNN shipped with qnn-ref (14x14 input, two 3x3 convolutions, two max pools, FC)."""
    return read_model(qnn_ref.shipped_model_path("cnn"))


@pytest.fixture(scope="session")
def cnn_golden(cnn: Model) -> qnn_ref.Golden:
    """LiteRT's (default, XNNPACK) outputs of the shipped CNN for test images 0-299."""
    return qnn_ref.golden(cnn, start=0, count=300)


def assert_same(actual: Outputs, expected: Outputs, what: str) -> None:
    """Every array of ``actual`` equals ``expected``'s, shapes (LiteRT's) included."""
    np.testing.assert_array_equal(actual.input, expected.input, strict=True, err_msg=what)
    assert len(actual.layers) == len(expected.layers)
    for i, (a, b) in enumerate(zip(actual.layers, expected.layers, strict=True)):
        np.testing.assert_array_equal(a, b, strict=True, err_msg=f"{what}: layer {i}")
    np.testing.assert_array_equal(actual.predictions, expected.predictions, strict=True)


def documented_cycles(model: Model, *, rows: int, cols: int, batch: int) -> int:
    """The cycle formula of :func:`pyrtlnet.make_plan`'s docstring, from the layer shapes:
    a run of the engine is ``1 + sum ((T - 1) * P + k + R + C + 3 + 9)`` (3 pipeline
    registers in the engine, 9 in the requantizers), a pooling layer
    ``4 + ceil(B/R) * positions * C * kh * kw``, and the stages add up."""
    tiles, total, running = math.ceil(batch / rows), 0, False
    for layer in model.layers:
        if isinstance(layer, POOLS):
            height, width, channels = layer.output_shape
            total += 4 + tiles * height * width * channels * math.prod(layer.kernel)
            running = False
            continue
        if isinstance(layer, DenseLayer):
            k, n, row_tiles = layer.in_features, layer.units, tiles
        else:
            height, width, n = layer.output_shape
            taps = math.prod(layer.kernel)
            k = taps * (n if isinstance(layer, DepthwiseConv2DLayer) else layer.input_shape[2])
            row_tiles = tiles * height * width
        total += 0 if running else 1
        running = True
        t = row_tiles * math.ceil(n / cols)
        total += (t - 1) * max(k, rows, cols) + k + rows + cols + 3 + 9
    return total


# --- the plan ----------------------------------------------------------------------------------


def test_plan_of_the_shipped_cnn(cnn: Model) -> None:
    plan = make_plan(cnn, array=(16, 16), batch_size=16)
    engine = plan.engines[0]
    assert engine.layers == (0, 2, 4)  # the convolutions and the FC run on the array
    assert engine.pause_after == (0, 1)  # a max pool follows each convolution
    assert engine.segments == ((0,), (2,), (4,))
    assert plan.reduce_layers == (1, 3)
    # Activation memory l holds layer l - 1's output grid: one word per value, 16 lanes.
    assert plan.memory_words == (196, 14 * 14 * 8, 7 * 7 * 8, 7 * 7 * 16, 4 * 4 * 16, 10)
    assert plan.windows[4] is None
    assert plan.windows[0] == Window(14, 14, 1, (3, 3), (1, 1), ((1, 1), (1, 1)))
    assert plan.windows[3] == Window(7, 7, 16, (2, 2), (2, 2), ((0, 1), (0, 1)))
    # conv 0: 196 tiles of period 16, k 9: 1 + 195 * 16 + 9 + 32 + 3 + 9; pool 1: 4 + 49 * 8 * 4;
    # ...
    assert plan.layer_cycles == (1 + 195 * 16 + 9 + 32 + 12, 4 + 1568, 1 + 48 * 72 + 72 + 32 + 12,
                                 4 + 1024, 1 + 256 + 32 + 12)  # fmt: skip
    assert plan.cycles_per_batch == sum(plan.layer_cycles) == 9648
    assert plan.cycles_per_batch == documented_cycles(cnn, rows=16, cols=16, batch=16)
    # Useful MACs over the array's slots: conv 0 fills 8 of 16 columns and k = 9 < 16.
    assert plan.utilization[0] == pytest.approx(16 * 14 * 14 * 8 * 9 / (256 * 3174))
    assert plan.utilization[1] == plan.utilization[3] == 0.0
    macs = 14 * 14 * 8 * 9 + 7 * 7 * 16 * 72 + 256 * 10
    assert plan.overall_utilization == pytest.approx(16 * macs / (256 * 9648))


@pytest.mark.parametrize(("array", "batch"), [((4, 8), 4), ((3, 5), 7), ((1, 16), 1)])
def test_cycle_formula(cnn: Model, array: tuple[int, int], batch: int) -> None:
    plan = make_plan(cnn, array=array, batch_size=batch)
    rows, cols = array
    assert plan.cycles_per_batch == documented_cycles(cnn, rows=rows, cols=cols, batch=batch)
    assert sum(plan.layer_cycles) == plan.cycles_per_batch


def test_depthwise_weights_are_block_diagonal() -> None:
    rng = np.random.default_rng(1)
    weights = rng.integers(-127, 128, (2, 3, 4)).astype(np.int8)
    layer = _depthwise(weights)
    b = matmul_weights(layer)
    assert b.shape == (2 * 3 * 4, 4)
    # Patch row (ky, kx, c) meets only column c, with channel c's filter entry.
    expected = np.zeros((2, 3, 4, 4), np.int8)
    for c in range(4):
        expected[:, :, c, c] = weights[:, :, c]
    np.testing.assert_array_equal(b, expected.reshape(24, 4), strict=True)


def _depthwise(weights: np.ndarray) -> DepthwiseConv2DLayer:
    kh, kw, channels = weights.shape
    return DepthwiseConv2DLayer(
        index=0,
        input_shape=(5, 5, channels),
        output_shape=(5 - kh + 1, 5 - kw + 1, channels),
        kernel=(kh, kw),
        stride=(1, 1),
        padding="VALID",
        activation="NONE",
        input_scale=0.02,
        input_zero_point=0,
        output_scale=0.05,
        output_zero_point=0,
        bias=np.zeros(channels, np.int32),
        weight_scales=np.full(channels, 0.01, np.float32),
        per_channel=True,
        weights=weights,
    )


# --- the shipped CNN at gate level -------------------------------------------------------------


@pytest.mark.parametrize(("array", "batch"), [((8, 8), 8), ((4, 8), 4)])
def test_shipped_cnn_bit_exact(
    cnn: Model, cnn_golden: qnn_ref.Golden, array: tuple[int, int], batch: int
) -> None:
    """300 test images: every layer equals LiteRT's and the NumPy reference's."""
    accelerator = pyrtlnet.build(cnn, array=array, batch_size=batch)
    result = accelerator.run(cnn_golden.input)
    assert_same(result.outputs, cnn_golden, f"{array} batch {batch} vs LiteRT")
    images, _ = qnn_ref.load_mnist("test")
    numpy = run_numpy(cnn, qnn_ref.preprocess(images[:300], cnn.input_shape))
    assert_same(result.outputs, numpy, "vs NumPy")
    assert result.batches == math.ceil(300 / batch)
    assert result.cycles == result.batches * accelerator.cycles_per_batch


def test_shipped_cnn_builtin_path(cnn: Model) -> None:
    """The builtin kernels' Q31 double rounding (ties of the final shift toward +inf): on these
    images it differs from XNNPACK's float32 rounding in some values of every layer."""
    expected = qnn_ref.golden(cnn, start=300, count=40, rounding="builtin")
    accelerator = pyrtlnet.build(cnn, array=(4, 8), batch_size=4, rounding="builtin")
    assert_same(accelerator.run(expected.input).outputs, expected, "builtin vs LiteRT")


def test_shipped_cnn_reference_path(cnn: Model) -> None:
    """The reference kernels: convolutions double-rounded with the final shift's ties away
    from zero, the FULLY_CONNECTED in float64, two requantizers per value in the one sink."""
    expected = qnn_ref.golden(cnn, start=300, count=40, rounding="reference")
    plan = make_plan(cnn, array=(4, 8), batch_size=4, rounding="reference")
    assert plan.requant_methods == ("double_round_away", "float64")
    accelerator = pyrtlnet.build(cnn, array=(4, 8), batch_size=4, rounding="reference")
    result = accelerator.run(expected.input)
    assert_same(result.outputs, expected, "reference vs LiteRT")
    images, _ = qnn_ref.load_mnist("test")
    x = qnn_ref.preprocess(images[300:340], cnn.input_shape)
    numpy = run_numpy(cnn, x, rounding="reference", batch_size=4)
    assert_same(result.outputs, numpy, "reference vs NumPy")
    assert accelerator.cycles_per_batch == documented_cycles(cnn, rows=4, cols=8, batch=4)


# --- CNNs of other shapes ----------------------------------------------------------------------


def _layers(seed: int, spec: list[tuple[str, dict]], input_shape: tuple[int, int, int]) -> list:
    return random_layers(np.random.default_rng(seed), spec, input_shape)


#: name -> (image side, layers, write_model options, array, batch, kernel paths).
CRAFTED = {
    "stride-2-valid-5x5": (
        (13, 11),
        [
            ("conv", {"channels": 3, "kernel": 5, "stride": 2, "padding": "VALID"}),
            ("conv", {"channels": 5, "kernel": 2, "padding": "VALID", "activation": "RELU6"}),
            ("dense", {"units": 6}),
        ],
        {},
        (2, 4),
        3,
        ("xnnpack", "builtin", "reference"),
    ),
    "three-channels-average-pool-same-odd": (
        (9, 9),
        [
            ("conv", {"channels": 3, "activation": "RELU"}),
            ("average", {"kernel": 3, "stride": 2, "padding": "SAME"}),
            ("conv", {"channels": 4, "per_channel": False, "stride": 2}),
            ("max", {"kernel": 3, "stride": 1, "padding": "SAME", "activation": "RELU"}),
            ("dense", {"units": 7}),
        ],
        {},
        (3, 5),
        5,
        ("xnnpack", "builtin"),
    ),
    "depthwise": (
        (10, 10),
        [
            ("conv", {"channels": 6, "activation": "RELU"}),
            ("depthwise", {"stride": 2}),
            ("depthwise", {"kernel": 2, "padding": "VALID", "activation": "RELU6"}),
            ("dense", {"units": 5}),
        ],
        {},
        (2, 3),
        2,
        ("xnnpack", "builtin", "reference"),
    ),
    "float-io-softmax-pool-first": (
        (8, 8),
        [
            ("max", {"stride": 1}),
            ("conv", {"channels": 4}),
            ("max", {}),
            ("max", {"kernel": 1, "stride": 1}),
            ("dense", {"units": 10}),
        ],
        {"float_input": True, "float_output": True, "softmax": True},
        (2, 8),
        2,
        ("xnnpack", "builtin"),
    ),
}


@pytest.mark.parametrize("name", CRAFTED)
def test_crafted_cnn_bit_exact(name: str, tmp_path: Path) -> None:
    (height, width), spec, options, array, batch, roundings = CRAFTED[name]
    layers = _layers(zlib.crc32(name.encode()), spec, (height, width, 1))
    path = write_model(tmp_path / "m.tflite", layers, input_shape=(height, width), **options)
    model = read_model(path)
    assert [type(layer) for layer in model.layers] == [type(layer) for layer in layers]
    rng = np.random.default_rng(7)
    x = rng.uniform(0, 1, (2 * batch + 1, model.in_features)).astype(np.float32)
    for rounding in roundings:
        expected = run_litert(model, x, rounding=rounding, batch_size=batch)
        assert_same(run_numpy(model, x, rounding=rounding, batch_size=batch), expected, "NumPy")
        accelerator = pyrtlnet.build(model, array=array, batch_size=batch, rounding=rounding)
        result = accelerator.run(expected.input)
        assert_same(result.outputs, expected, f"{name} {rounding}")
        rows, cols = array
        assert accelerator.cycles_per_batch == documented_cycles(
            model, rows=rows, cols=cols, batch=batch
        )
        # The outputs spread over the int8 range: not a comparison of saturated constants.
        assert min(len(np.unique(layer)) for layer in expected.layers) > 5


def test_requant_method_per_layer(tmp_path: Path) -> None:
    """Each layer gets the method of its own LiteRT kernel (see :func:`pyrtlnet.requant_method`)."""
    spec = [("conv", {"channels": 2}), ("depthwise", {}), ("dense", {"units": 3})]
    model = _written(tmp_path, spec)
    methods = {
        rounding: [pyrtlnet.requant_method(layer, rounding) for layer in model.layers]
        for rounding in qnn_ref.ROUNDINGS
    }
    assert methods == {
        "xnnpack": ["float32"] * 3,
        "builtin": ["double_round", "double_round_away", "double_round"],
        "reference": ["double_round_away", "double_round_away", "float64"],
    }
    plan = make_plan(model, array=(2, 4), rounding="builtin")
    assert plan.requant_methods == ("double_round", "double_round_away")
    assert plan.requant_method == "double_round and double_round_away"


def test_reference_conv_rounds_negative_ties_away(tmp_path: Path) -> None:
    """A CONV_2D without activation (a ReLU would clamp the negative ties away) whose scale
    (about 2**-7.6, a final shift of 7) makes ties of the final shift common: the reference
    path rounds them away from zero, the builtin one toward +inf, and the hardware follows
    each. With the builtin rounding (``"double_round"``) on the reference path it fails."""
    layers = _layers(3, [("conv", {"channels": 6}), ("dense", {"units": 4})], (10, 10, 1))
    conv = layers[0]
    rng = np.random.default_rng(4)
    scales = conv.output_scale / (200 * conv.input_scale) * rng.uniform(0.8, 1.2, 6)
    layers[0] = dataclasses.replace(conv, weight_scales=frozen(scales.astype(np.float32)))
    path = write_model(tmp_path / "m.tflite", layers, input_shape=(10, 10))
    model = read_model(path)
    assert (model.layers[0].activation, model.layers[0].per_channel) == ("NONE", True)
    _, shift = model.layers[0].integer_multipliers("reference")
    assert set(shift.tolist()) <= {-7, -8}
    x = np.random.default_rng(5).uniform(0, 1, (8, model.in_features)).astype(np.float32)
    results = {}
    for rounding in ("builtin", "reference"):
        expected = run_litert(model, x, rounding=rounding, batch_size=4)
        assert_same(run_numpy(model, x, rounding=rounding, batch_size=4), expected, "NumPy")
        accelerator = pyrtlnet.build(model, array=(2, 4), batch_size=4, rounding=rounding)
        assert_same(accelerator.run(expected.input).outputs, expected, rounding)
        results[rounding] = expected.layers[0]
    # Same multipliers (per-channel weights), different ties: the paths really differ here.
    differ = results["builtin"] != results["reference"]
    assert 5 <= differ.sum() < differ.size // 20
    assert np.all(results["reference"][differ] == results["builtin"][differ] - 1)


# --- what pyrtlnet refuses ---------------------------------------------------------------------


def _written(tmp_path: Path, spec: list[tuple[str, dict]]) -> Model:
    layers = _layers(0, spec, (6, 6, 1))
    return read_model(write_model(tmp_path / "m.tflite", layers, input_shape=(6, 6)))


def test_per_layer_is_not_offered(cnn: Model) -> None:
    with pytest.raises(
        ValueError,
        match=r"^the per-layer architecture is not offered for convolutional models \(layer 0 "
        r"is CONV_2D\); use the shared architecture$",
    ):
        make_plan(cnn, architecture="per-layer")


def test_last_layer_must_be_dense(tmp_path: Path) -> None:
    model = _written(tmp_path, [("conv", {"channels": 2}), ("max", {})])
    with pytest.raises(
        ValueError,
        match=r"^the last layer must be FULLY_CONNECTED \(its outputs are the class scores the "
        r"streaming argmax reads\), not MAX_POOL_2D \(layer 1\)$",
    ):
        make_plan(model)


def test_cli_per_layer_cnn_is_one_line(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "--model", "cnn", "--architecture", "per-layer"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].endswith(
        "the per-layer architecture is not offered for convolutional models (layer 0 is "
        "CONV_2D); use the shared architecture"
    )
    assert "Traceback" not in "".join(err)


# --- the CLI and the Verilog ------------------------------------------------------------------


def test_cli_infer_cnn_matches_both_references(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["infer", "--model", "cnn", "--num-images", "9", "--batch-size", "4"]
    assert main([*argv, "--array", "4x8", "--compare"]) == 0
    out = capsys.readouterr().out
    assert "agreement: PyRTL, LiteRT and NumPy are identical in every layer (9 images" in out
    # Both tables (LiteRT vs PyRTL, NumPy vs PyRTL): every array in LiteRT's shape, 0 differing.
    shapes = ["9x14x14x1", "9x14x14x8", "9x7x7x8", "9x7x7x16", "9x4x4x16", "9x10", "9"]
    names = ["input", *(f"layer{i}" for i in range(5)), "predictions"]
    for name, shape in zip(names, shapes, strict=True):
        rows = re.findall(rf"^{name} +{shape} +0 +0 +0$", out, re.MULTILINE)
        assert len(rows) == 2, name
    assert "per layer, cycles per batch: 0 CONV_2D 1,789 (99% of the array); 1 MAX_POOL_2D" in out


@pytest.mark.parametrize(
    ("simulator", "array", "count", "rounding"),
    [
        pytest.param("verilator", (2, 4), 4, "xnnpack", marks=pytest.mark.tool("verilator")),
        pytest.param("iverilog", (2, 8), 2, "xnnpack", marks=pytest.mark.tool("iverilog", "vvp")),
        # Two requantizers per row (double_round_away and float64), chosen by the job.
        pytest.param("verilator", (2, 4), 4, "reference", marks=pytest.mark.tool("verilator")),
    ],
)
def test_verilog_of_the_shipped_cnn(
    cnn: Model,
    simulator: str,
    array: tuple[int, int],
    count: int,
    rounding: str,
    tmp_path: Path,
) -> None:
    """The exported design and testbench: every layer's memory, the predictions and the
    design's cycle counter checked against LiteRT's golden values."""
    plan = make_plan(cnn, array=array, batch_size=2, rounding=rounding)
    design = pyrtlnet.build_design(plan)
    expected = qnn_ref.golden(cnn, start=0, count=count, rounding=rounding)
    files = pyrtlnet.write_inference_testbench(tmp_path, design, expected)
    result = pyrtlnet.run_testbench(files, simulator=simulator)
    assert result.passed, result.log
    assert (result.images, result.mismatches) == (count, 0)
    rows, cols = array
    cycles = documented_cycles(cnn, rows=rows, cols=cols, batch=2)
    assert result.batch_cycles == (cycles, cycles)
