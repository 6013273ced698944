"""LiteRT, NumPy and the gate-level hardware, all equal on every path, on models nobody chose.

Random dense models (layer count, sizes, per-tensor and per-channel scales, zero points, ReLU)
are written with :func:`qnn_ref.testing.write_model` and run through the interpreter on each
kernel path LiteRT accepts for them (:attr:`qnn_ref.Model.roundings`), through the NumPy
reference and through the hardware on a random array. The draws reach where the arithmetic
leaves int32: requantization scales from 1e-9 to 1e6, biases up to ±2**31, zero points across
int8. Crafted models put each of the int32 corner cases in front of the hardware as well.

Hardware builds cost about a second each, so few examples build it; NumPy and LiteRT get many.
"""

import dataclasses
import itertools
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import pyrtlnet
from qnn_ref import ROUNDINGS, DenseLayer, Model, Outputs, read_model, run_litert, run_numpy
from qnn_ref.testing import write_model

SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def assert_same(actual: Outputs, expected: Outputs, what: str) -> None:
    np.testing.assert_array_equal(actual.input, expected.input, strict=True, err_msg=what)
    for i, (got, want) in enumerate(zip(actual.layers, expected.layers, strict=True)):
        np.testing.assert_array_equal(got, want, strict=True, err_msg=f"{what}, layer {i}")
    np.testing.assert_array_equal(
        actual.predictions, expected.predictions, strict=True, err_msg=what
    )


def log_uniform(low: float, high: float) -> st.SearchStrategy[float]:
    return st.floats(np.log(low), np.log(high)).map(np.exp)


@st.composite
def dense_models(draw: st.DrawFn) -> list[DenseLayer]:
    """1 to 3 layers of 1 to 10 units, every quantization parameter drawn."""
    sizes = draw(st.lists(st.integers(1, 10), min_size=2, max_size=4))
    input_q = (float(np.float32(draw(log_uniform(1e-3, 10.0)))), draw(st.integers(-128, 127)))
    layers = []
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    for index, (k, n) in enumerate(itertools.pairwise(sizes)):
        per_channel = draw(st.booleans())
        output_scale = float(np.float32(draw(log_uniform(1e-3, 10.0))))
        # The requantization scale s_in * s_w / s_out, from 1e-9 to 1e6.
        requant = [draw(log_uniform(1e-9, 1e6)) for _ in range(n if per_channel else 1)]
        weight_scales = np.array(requant) * output_scale / input_q[0]
        bias_bits = draw(st.integers(0, 31))
        activation = draw(st.sampled_from(["NONE", "RELU", "RELU6"]))
        layers.append(
            DenseLayer(
                index=index,
                weights=rng.integers(-127, 128, (k, n)).astype(np.int8),
                bias=rng.integers(-(2**bias_bits), 2**bias_bits, n, endpoint=True)
                .clip(-(2**31), 2**31 - 1)
                .astype(np.int32),
                input_scale=input_q[0],
                input_zero_point=input_q[1],
                weight_scales=np.broadcast_to(weight_scales, (n,)).astype(np.float32),
                per_channel=per_channel,
                output_scale=output_scale,
                output_zero_point=draw(st.integers(-128, 127)),
                relu=activation != "NONE",
                relu6=activation == "RELU6",
            )
        )
        input_q = (output_scale, layers[-1].output_zero_point)
    return layers


def int8_inputs(model: Model, count: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Random int8 inputs and the float32 inputs that quantize to them."""
    q = np.random.default_rng(seed).integers(-128, 128, (count, model.in_features), np.int8)
    x = (q.astype(np.float32) - np.float32(model.input_zero_point)) * np.float32(model.input_scale)
    return q, x.astype(np.float32)


@settings(max_examples=60, **SETTINGS)
@given(layers=dense_models(), seed=st.integers(0, 2**16))
def test_numpy_equals_litert_on_every_path(
    tmp_path: Path, layers: list[DenseLayer], seed: int
) -> None:
    model = read_model(write_model(tmp_path / "random.tflite", layers))
    q, x = int8_inputs(model, 6, seed)
    for rounding in model.roundings:
        litert = run_litert(model, x, rounding=rounding, batch_size=int(seed % 4) + 1)
        np.testing.assert_array_equal(litert.input, q, strict=True)
        assert_same(run_numpy(model, x, rounding=rounding), litert, rounding)


@settings(max_examples=8, **SETTINGS)
@given(
    layers=dense_models(),
    seed=st.integers(0, 2**16),
    rows=st.integers(1, 3),
    cols=st.integers(1, 4),
    path=st.sampled_from(ROUNDINGS),
)
def test_hardware_equals_litert(
    tmp_path: Path, layers: list[DenseLayer], seed: int, rows: int, cols: int, path: str
) -> None:
    """One hardware build per example: a random array, a batch of ``rows``, one drawn path
    (the next one LiteRT accepts if it refuses that one)."""
    model = read_model(write_model(tmp_path / "random.tflite", layers))
    if not model.roundings:
        return  # LiteRT runs it on no path: nothing to be bit-exact with
    rounding = path if path in model.roundings else model.roundings[0]
    q, x = int8_inputs(model, 2 * rows + 1, seed)
    litert = run_litert(model, x, rounding=rounding)
    hardware = pyrtlnet.build(model, array=(rows, cols), batch_size=rows, rounding=rounding)
    assert_same(hardware.run(q).outputs, litert, f"{rounding} on a {rows}x{cols} array")


def edge_model(tmp_path: Path, name: str, units: list[tuple[int, float]], zero_point: int) -> Model:
    """One per-channel layer, one unit per ``(accumulator at input 0, scale)`` pair, and a last
    unit whose bias 2147480647 plus 146 * 127 + 111 = 2147499300 leaves int32 (it wraps)."""
    biases = [acc for acc, _ in units] + [2147480647]
    scales = [scale for _, scale in units] + [2.0**-25]
    weights = np.zeros((2, len(biases)), np.int8)
    weights[:, -1] = [127, 111]
    layer = DenseLayer(
        index=0,
        weights=weights,
        bias=np.array(biases, np.int32),
        input_scale=1.0,
        input_zero_point=-128,
        weight_scales=np.array(scales, np.float32),
        per_channel=True,
        output_scale=1.0,
        output_zero_point=zero_point,
        relu=False,
    )
    return read_model(write_model(tmp_path / f"{name}.tflite", [layer]))


#: name -> (units, zero point, paths LiteRT runs): the int32 corner cases of the docs' page.
EDGES = {
    # builtin: acc << 11 wraps; reference: the double product leaves int32 -> INT32_MIN + z.
    "large-scales": (
        [(-1850631, 2024.1), (1850631, 2024.1), (-48260, 1.7e5), (12633, 1.7e5)],
        -17,
        ("builtin", "reference"),
    ),
    # reference: ±2147483647.5 rounds to ±2**31 -> INT32_MIN; 2147483646 + 2 wraps. builtin:
    # scale 1.5 (shift 1) wraps the left shift. XNNPACK: fl(-2**30 * 2) <= -2**31 wraps with z < 0.
    "int32-limits-negative-z": (
        [(1431655765, 1.5), (1431655764, 1.5), (-1431655765, 1.5), (-(2**30), 2.0)],
        -3,
        ROUNDINGS,
    ),
    "int32-limits-positive-z": (
        [(1431655765, 1.5), (1431655764, 1.5), (-1431655764, 1.5), (-(2**30), 2.0)],
        2,
        ROUNDINGS,
    ),
}


@pytest.mark.parametrize("name", list(EDGES))
def test_int32_edges_on_every_path(tmp_path: Path, name: str) -> None:
    units, zero_point, paths = EDGES[name]
    model = edge_model(tmp_path, name, units, zero_point)
    assert model.roundings == paths
    q = np.array([[18, -127]], np.int8)  # q - z_in = 146, 1
    x = np.array([[146.0, 1.0]], np.float32)
    for rounding in paths:
        litert = run_litert(model, x, rounding=rounding)
        assert_same(run_numpy(model, x, rounding=rounding), litert, f"numpy, {rounding}")
        hardware = pyrtlnet.build(model, array=(1, 2), rounding=rounding)
        assert_same(hardware.run(q).outputs, litert, f"hardware, {rounding}")


def test_builtin_zero_point_addition_wraps_in_hardware(tmp_path: Path) -> None:
    """M = 2147483640, shift 0: 2**31 - 1 scales to 2147483639, and ``+ 127`` wraps."""
    layer = DenseLayer(
        index=0,
        weights=np.zeros((1, 2), np.int8),
        bias=np.array([2**31 - 1, 2**31 - 129], np.int32),
        input_scale=0.9970133900642395,
        input_zero_point=0,
        weight_scales=np.array([0.8905952572822571] * 2, np.float32),
        per_channel=True,  # M from the double product s_in * s_w / s_out
        output_scale=0.8879354000091553,
        output_zero_point=127,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "zero-point.tflite", [layer]))
    x = np.zeros((1, 1), np.float32)
    litert = run_litert(model, x, rounding="builtin")
    assert litert.layers[0].tolist() == [[-128, 127]]
    hardware = pyrtlnet.build(model, array=(1, 2), rounding="builtin")
    assert_same(hardware.run(np.zeros((1, 1), np.int8)).outputs, litert, "hardware")
    assert_same(run_numpy(model, x, rounding="builtin"), litert, "numpy")


def test_edges_really_leave_int32(tmp_path: Path) -> None:
    """The crafted units are flagged by the static bound, and the exact arithmetic (a model
    whose bias leaves int32 room) would give different outputs: the cases test something."""
    units, zero_point, _ = EDGES["large-scales"]
    model = edge_model(tmp_path, "flags", units, zero_point)
    for rounding in model.roundings:
        assert model.layers[0].int32_overflow(rounding).all()
    safe = dataclasses.replace(model.layers[0], bias=model.layers[0].bias // 2**16)
    assert not safe.int32_overflow("reference")[:2].any()
