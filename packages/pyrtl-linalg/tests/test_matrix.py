"""WireMatrix2D: constructors, conversions back to NumPy, handshake; and the doctests."""

import doctest

import numpy as np
import pyrtl
import pytest

from pyrtl_linalg import WireMatrix2D, _matrix, _simulate, _tiled, make_simulation, to_signed

VALUES = np.array([[-128, 0, 127], [5, -6, 7]])


@pytest.fixture(autouse=True)
def fresh_block():
    pyrtl.reset_working_block()


@pytest.mark.parametrize("module", [_matrix, _tiled, _simulate])
def test_doctests(module):
    assert doctest.testmod(module, raise_on_error=False).failed == 0


@pytest.mark.parametrize("simulator", ["compiled", "fast", "simulation"])
def test_from_numpy_round_trip(simulator):
    matrix = WireMatrix2D.from_numpy(VALUES, bits=8)
    assert (matrix.shape, matrix.bits) == ((2, 3), 8)
    out = matrix.to_outputs("m")
    sim = make_simulation(simulator=simulator, trace=[out[0, 0], out[1, 2], out.valid])
    sim.step()
    if simulator == "compiled":  # CompiledSimulation sees only the traced Outputs
        assert [sim.inspect("m_0_0"), sim.inspect("m_1_2")] == [128, 7]
    else:
        np.testing.assert_array_equal(out.to_numpy(sim), VALUES, strict=True)
    assert sim.inspect("m_valid") == 1


def test_from_inputs_and_trace():
    matrix = WireMatrix2D.from_inputs((2, 3), bits=8, name="x")
    doubled = WireMatrix2D(
        [[(w.sign_extended(9) + w.sign_extended(9))[:9] for w in matrix.row(i)] for i in range(2)],
        bits=9,
        valid=matrix.valid,
    ).to_outputs("y")
    sim = pyrtl.Simulation()
    inputs = {f"x_{i}_{j}": int(VALUES[i, j]) & 0xFF for i in range(2) for j in range(3)}
    sim.step(inputs | {"x_valid": 1})
    sim.step({name: 0 for name in inputs} | {"x_valid": 0})
    np.testing.assert_array_equal(doubled.to_numpy(sim.tracer, cycle=0), 2 * VALUES, strict=True)
    np.testing.assert_array_equal(doubled.to_numpy(sim), np.zeros((2, 3), np.int64), strict=True)
    assert sim.tracer.trace["y_valid"] == [1, 0]


def test_from_memory_reads_packed_rows():
    words = [int(sum((int(v) & 0xFF) << (8 * j) for j, v in enumerate(row))) for row in VALUES]
    rom = pyrtl.RomBlock(24, 2, [0, *words], max_read_ports=2, pad_with_zeros=True)
    out = WireMatrix2D.from_memory(rom, (2, 3), bits=8, address=1).to_outputs("r")
    sim = pyrtl.Simulation()
    sim.step()
    np.testing.assert_array_equal(out.to_numpy(sim), VALUES, strict=True)


def test_accessors_and_valid():
    valid = pyrtl.Input(1, "valid")
    wires = [[pyrtl.Const(v & 0xF, bitwidth=4) for v in row] for row in [[1, 2], [3, -4]]]
    matrix = WireMatrix2D(wires, bits=4, valid=valid)
    assert matrix[1, 0] is wires[1][0]
    assert matrix.column(1) == [wires[0][1], wires[1][1]]
    out = matrix.to_outputs("m")
    packed = pyrtl.Output(8, "packed")
    packed <<= matrix.packed_row(1)
    sim = pyrtl.Simulation()
    sim.step({"valid": 0})
    sim.step({"valid": 1})
    assert sim.tracer.trace["m_valid"] == [0, 1]
    assert out.valid.name == "m_valid"
    assert sim.inspect("packed") == 0xC3  # element 0 in the low bits


def test_to_signed():
    np.testing.assert_array_equal(to_signed([0, 1, 2, 3], 2), np.array([0, 1, -2, -1]), strict=True)
    assert to_signed(2**99, 100) == -(2**99)


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda: WireMatrix2D([[pyrtl.Const(1, 2)]], bits=0),
            "bits must be a positive integer, not 0",
        ),
        (
            lambda: WireMatrix2D([], bits=2),
            "wires must be a non-empty rectangle of rows of equal length",
        ),
        (
            lambda: WireMatrix2D([[pyrtl.Const(1, 2)], []], bits=2),
            "wires must be a non-empty rectangle of rows of equal length",
        ),
        (
            lambda: WireMatrix2D([[pyrtl.Const(1, 3)]], bits=2),
            r"element \(0, 0\) is 3 bits wide, not 2",
        ),
        (
            lambda: WireMatrix2D.from_numpy(np.array([1, 2]), bits=8),
            r"values must be a 2-D integer array, not int64 of shape \(2,\)",
        ),
        (
            lambda: WireMatrix2D.from_numpy(np.array([[128]]), bits=8),
            r"values must be in the 8-bit signed range \[-128, 127\]",
        ),
        (
            lambda: WireMatrix2D.from_memory(pyrtl.MemBlock(16, 2, name="mem"), (1, 3), bits=8),
            "memory 'mem' is 16 bits wide, too narrow for 3 values of 8 bits",
        ),
    ],
)
def test_bad_arguments(make, message):
    with pytest.raises(ValueError, match=rf"^{message}$"):
        make()


def test_bits_of_the_wrong_type():
    with pytest.raises(TypeError, match=r"^bits must be a positive integer, not True$"):
        WireMatrix2D([[pyrtl.Const(1, 1)]], bits=True)
    with pytest.raises(TypeError, match=r"^bits must be a positive integer, not 8.0$"):
        WireMatrix2D.from_numpy(np.array([[1]]), bits=8.0)
