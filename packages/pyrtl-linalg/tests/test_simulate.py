"""simulate_matmul against NumPy and the cycle model; simulator choice; argument checks."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import pyrtl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pyrtl_linalg
from pyrtl_linalg import make_simulation, simulate_matmul, tiled_matmul_cycles

EXAMPLE = Path(__file__).parents[3] / "examples" / "systolic_matmul.py"


def reference(a, b, a_zero_point=0, bias=None):
    result = (a.astype(np.int64) - a_zero_point) @ b.astype(np.int64)
    return result if bias is None else result + bias.astype(np.int64)


@st.composite
def problems(draw):
    m, k, n = draw(st.integers(1, 9)), draw(st.integers(1, 13)), draw(st.integers(1, 9))
    int8 = st.integers(-128, 127)
    extremes = st.sampled_from([-128, 127]) | int8
    a = draw(hnp.arrays(np.int8, (m, k), elements=extremes))
    b = draw(hnp.arrays(np.int8, (k, n), elements=extremes))
    bias = draw(st.none() | hnp.arrays(np.int32, (n,), elements=st.integers(-(2**31), 2**31 - 1)))
    return a, b, draw(extremes), bias


@settings(max_examples=40, deadline=None)
@given(problem=problems(), rows=st.integers(1, 5), cols=st.integers(1, 5))
def test_matches_numpy_and_cycle_model(problem, rows, cols):
    a, b, zero_point, bias = problem
    result, cycles = simulate_matmul(
        a, b, rows=rows, cols=cols, a_zero_point=zero_point, bias=bias, simulator="fast"
    )
    np.testing.assert_array_equal(result, reference(a, b, zero_point, bias), strict=True)
    assert cycles == tiled_matmul_cycles([(*a.shape, b.shape[1])], rows=rows, cols=cols)


@pytest.mark.parametrize("simulator", ["compiled", "fast", "simulation", None])
def test_every_simulator(simulator):
    rng = np.random.default_rng(1)
    a = rng.integers(-128, 128, (5, 11), dtype=np.int8)
    b = rng.integers(-128, 128, (11, 4), dtype=np.int8)
    bias = rng.integers(-1000, 1000, 4, dtype=np.int32)
    result, cycles = simulate_matmul(
        a, b, rows=2, cols=3, a_zero_point=-7, bias=bias, simulator=simulator
    )
    np.testing.assert_array_equal(result, reference(a, b, -7, bias), strict=True)
    assert cycles == tiled_matmul_cycles([(5, 11, 4)], rows=2, cols=3)


def test_long_k_near_the_accumulator_limit():
    # k = 300: |sum| = 300 * 255 * 128 needs 2*8 + ceil(log2 300) = 25 bits; compiled sim.
    a = np.full((2, 300), -128, dtype=np.int8)
    b = np.full((300, 3), -128, dtype=np.int8)
    result, _ = simulate_matmul(a, b, rows=2, cols=2, a_zero_point=127, simulator="compiled")
    np.testing.assert_array_equal(result, reference(a, b, 127), strict=True)


def test_other_bit_widths():
    rng = np.random.default_rng(2)
    a = rng.integers(-8, 8, (3, 5), dtype=np.int16)
    b = rng.integers(-8, 8, (5, 2), dtype=np.int16)
    result, _ = simulate_matmul(a, b, rows=2, cols=2, bits=4, a_zero_point=-8, simulator="fast")
    np.testing.assert_array_equal(result, reference(a, b, -8), strict=True)


def test_leaves_the_working_block_alone():
    pyrtl.reset_working_block()
    marker = pyrtl.Input(1, "marker")
    simulate_matmul(np.ones((1, 1), np.int8), np.ones((1, 1), np.int8), rows=1, cols=1)
    assert pyrtl.working_block().wirevector_set == {marker}


def test_falls_back_when_compiled_cannot_build(monkeypatch):
    def broken(*args, **kwargs):
        raise OSError("no C compiler")

    monkeypatch.setitem(pyrtl_linalg.SIMULATORS, "compiled", broken)
    pyrtl.reset_working_block()
    out = pyrtl.Output(1, "out")
    out <<= pyrtl.Input(1, "in")
    assert isinstance(make_simulation(), pyrtl.FastSimulation)
    a = np.ones((2, 2), np.int8)
    result, _ = simulate_matmul(a, a, rows=1, cols=1)
    np.testing.assert_array_equal(result, reference(a, a), strict=True)


def test_make_simulation_rejects_unknown_names():
    with pytest.raises(
        ValueError, match=r"^simulator must be one of compiled, fast, simulation or None, not 'x'$"
    ):
        make_simulation(simulator="x")


OK_A = np.zeros((2, 3), np.int8)
OK_B = np.zeros((3, 4), np.int8)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": np.zeros(3, np.int8)}, r"a must be 2-D, not 1-D with shape \(3,\)"),
        ({"a": np.zeros((0, 3), np.int8)}, r"a must not be empty, but has shape \(0, 3\)"),
        (
            {"b": np.full((3, 4), 200, np.int16)},
            r"b holds values in \[200, 200\], outside the 8-bit signed range \[-128, 127\]",
        ),
        (
            {"b": np.zeros((2, 4), np.int8)},
            r"a has 3 columns but b has 2 rows \(shapes \(2, 3\) and \(2, 4\)\)",
        ),
        ({"rows": 0}, "rows must be a positive integer, not 0"),
        ({"bits": 0}, "bits must be a positive integer, not 0"),
        ({"a_zero_point": 128}, "a_zero_point must be an integer from -128 to 127, not 128"),
        ({"bias": np.zeros(3, np.int32)}, r"bias must have shape \(4,\) to match b, not \(3,\)"),
        (
            {"simulator": "verilator"},
            "simulator must be one of compiled, fast, simulation or None, not 'verilator'",
        ),
    ],
)
def test_bad_arguments(kwargs, message):
    arguments = {"a": OK_A, "b": OK_B, "rows": 2, "cols": 2} | kwargs
    a, b = arguments.pop("a"), arguments.pop("b")
    with pytest.raises(ValueError, match=rf"^{message}$"):
        simulate_matmul(a, b, **arguments)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"a": [[1]]}, "a must be a NumPy array, not list"),
        ({"b": np.zeros((3, 4))}, "b must have an integer dtype, not float64"),
        ({"cols": 1.5}, "cols must be a positive integer, not 1.5"),
        ({"a_zero_point": 1.0}, "a_zero_point must be an integer from -128 to 127, not 1.0"),
        ({"bias": np.zeros(4)}, "bias must be a NumPy array of integers or None"),
    ],
)
def test_arguments_of_the_wrong_type(kwargs, message):
    arguments = {"a": OK_A, "b": OK_B, "rows": 2, "cols": 2} | kwargs
    a, b = arguments.pop("a"), arguments.pop("b")
    with pytest.raises(TypeError, match=rf"^{message}$"):
        simulate_matmul(a, b, **arguments)


@pytest.mark.skipif(not EXAMPLE.exists(), reason="the repository's examples/ is not here")
def test_example_runs(tmp_path):
    vcd, verilog = tmp_path / "run.vcd", tmp_path / "mm.v"
    done = subprocess.run(
        [sys.executable, str(EXAMPLE), "--vcd", str(vcd), "--verilog", str(verilog)],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert "matches NumPy: yes" in done.stdout
    assert vcd.read_text().startswith("$timescale")
    assert "module" in verilog.read_text()
