"""make_argmax against numpy.argmax, including ties and extreme values."""

import numpy as np
import pyrtl
import pytest

from pyrtl_linalg import make_argmax


def run_argmax(values: np.ndarray, bits: int, *, signed: bool) -> np.ndarray:
    """Build one argmax over ``values.shape[1]`` wires and step through the rows."""
    pyrtl.reset_working_block()
    n = values.shape[1]
    wires = [pyrtl.Input(bits, f"v{i}") for i in range(n)]
    out = pyrtl.Output(max(1, (n - 1).bit_length()), "index")
    index = make_argmax(wires, signed=signed)
    assert len(index) == len(out)
    out <<= index
    sim = pyrtl.CompiledSimulation(tracer=pyrtl.SimulationTrace([out]))
    mask = (1 << bits) - 1
    result = []
    for row in values:
        sim.step({f"v{i}": int(v) & mask for i, v in enumerate(row)})
        result.append(sim.inspect("index"))
    return np.array(result, dtype=np.int64)


@pytest.mark.parametrize("n", [1, 2, 3, 5, 8, 10, 17])
@pytest.mark.parametrize("signed", [True, False])
def test_matches_numpy(n: int, signed: bool) -> None:
    rng = np.random.default_rng(n)
    bits = 8
    low, high = (-128, 128) if signed else (0, 256)
    values = rng.integers(low, high, (2000, n))
    # Few distinct values make ties common; the extremes appear in every position.
    values[:500] = rng.choice([low, low + 1, high - 2, high - 1], (500, n))
    values[500:1000] = rng.integers(-2, 2, (500, n)) + (0 if signed else 2)
    values[1000] = low
    values[1001] = high - 1
    result = run_argmax(values, bits, signed=signed)
    np.testing.assert_array_equal(result, np.argmax(values, axis=1), strict=True)


def test_mixed_widths() -> None:
    """Narrower wires are sign-extended before comparing."""
    pyrtl.reset_working_block()
    a, b = pyrtl.Input(3, "a"), pyrtl.Input(8, "b")
    out = pyrtl.Output(1, "index")
    out <<= make_argmax([a, b])
    sim = pyrtl.FastSimulation(tracer=pyrtl.SimulationTrace([out]))
    for av in range(-4, 4):
        for bv in (-128, -5, -4, -1, 0, 3, 4, 127):
            sim.step({"a": av & 7, "b": bv & 0xFF})
            assert sim.inspect("index") == int(np.argmax([av, bv]))


def test_errors() -> None:
    pyrtl.reset_working_block()
    x = pyrtl.Input(8, "x")
    with pytest.raises(ValueError, match=r"^values must hold at least one WireVector$"):
        make_argmax([])
    with pytest.raises(TypeError, match=r"^values\[1\] must be a WireVector, not int$"):
        make_argmax([x, 3])
    with pytest.raises(TypeError, match=r"^values must be a sequence of WireVectors, not Input$"):
        make_argmax(x)
