"""make_add, make_relu, make_clamp and make_saturate against NumPy, exhaustively where small."""

import itertools

import numpy as np
import pyrtl
import pytest

from pyrtl_linalg import make_add, make_clamp, make_relu, make_saturate


def signed_range(bits: int) -> np.ndarray:
    return np.arange(-(1 << (bits - 1)), 1 << (bits - 1), dtype=np.int64)


def simulate(inputs: dict[str, np.ndarray], outputs: dict[str, pyrtl.WireVector]) -> dict:
    """Drive the working block's Inputs with the columns given, one row per step; return each
    named result wire's values read as two's complement."""
    probes = {}
    for name, wire in outputs.items():
        probes[name] = pyrtl.Output(len(wire), name)
        probes[name] <<= wire
    block = pyrtl.working_block()
    widths = {w.name: len(w) for w in block.wirevector_subset(pyrtl.Input)}
    sim = pyrtl.CompiledSimulation(tracer=pyrtl.SimulationTrace(list(probes.values())))
    steps = len(next(iter(inputs.values())))
    results: dict[str, list[int]] = {name: [] for name in outputs}
    for step in range(steps):
        sim.step({name: int(inputs[name][step]) & ((1 << w) - 1) for name, w in widths.items()})
        for name, probe in probes.items():
            sign = 1 << (len(probe) - 1)
            results[name].append((sim.inspect(name) ^ sign) - sign)
    return {name: np.array(values, dtype=np.int64) for name, values in results.items()}


def grid(*ranges: np.ndarray) -> list[np.ndarray]:
    return [
        np.array(column, dtype=np.int64) for column in zip(*itertools.product(*ranges), strict=True)
    ]


def test_add_exhaustive() -> None:
    pyrtl.reset_working_block()
    a, b = pyrtl.Input(6, "a"), pyrtl.Input(4, "b")
    total, with_const = make_add(a, b), make_add(a, -9)
    assert len(total) == 7
    assert len(with_const) == 7
    av, bv = grid(signed_range(6), signed_range(4))
    out = simulate({"a": av, "b": bv}, {"total": total, "with_const": with_const})
    np.testing.assert_array_equal(out["total"], av + bv, strict=True)
    np.testing.assert_array_equal(out["with_const"], av - 9, strict=True)


def test_add_lists() -> None:
    pyrtl.reset_working_block()
    a = [pyrtl.Input(8, f"a{i}") for i in range(3)]
    b = [pyrtl.Input(8, f"b{i}") for i in range(3)]
    c = pyrtl.Input(3, "c")
    pairwise, broadcast = make_add(a, b), make_add(a, c)
    assert isinstance(pairwise, list)
    assert len(pairwise) == 3
    rng = np.random.default_rng(0)
    values = {name: rng.integers(-128, 128, 500) for name in ("a0", "a1", "a2", "b0", "b1", "b2")}
    values["c"] = rng.integers(-4, 4, 500)
    outputs = {f"p{i}": w for i, w in enumerate(pairwise)} | {
        f"s{i}": w for i, w in enumerate(broadcast)
    }
    out = simulate(values, outputs)
    for i in range(3):
        np.testing.assert_array_equal(out[f"p{i}"], values[f"a{i}"] + values[f"b{i}"], strict=True)
        np.testing.assert_array_equal(out[f"s{i}"], values[f"a{i}"] + values["c"], strict=True)


def test_relu_exhaustive() -> None:
    pyrtl.reset_working_block()
    x = pyrtl.Input(7, "x")
    (relu,) = make_relu([x])
    assert len(relu) == 7
    xv = signed_range(7)
    out = simulate({"x": xv}, {"relu": relu, "single": make_relu(x)})
    np.testing.assert_array_equal(out["relu"], np.maximum(xv, 0), strict=True)
    np.testing.assert_array_equal(out["single"], np.maximum(xv, 0), strict=True)


def test_clamp_constant_bounds() -> None:
    pyrtl.reset_working_block()
    x = pyrtl.Input(10, "x")
    int8 = make_clamp(x, lo=-128, hi=127)
    relu = make_clamp(x, lo=-5, hi=127)
    narrow = make_clamp(x, lo=3, hi=3)
    assert (len(int8), len(relu), len(narrow)) == (8, 8, 3)
    xv = signed_range(10)
    out = simulate({"x": xv}, {"int8": int8, "relu": relu, "narrow": narrow})
    np.testing.assert_array_equal(out["int8"], np.clip(xv, -128, 127), strict=True)
    np.testing.assert_array_equal(out["relu"], np.clip(xv, -5, 127), strict=True)
    np.testing.assert_array_equal(out["narrow"], np.full_like(xv, 3), strict=True)


def test_clamp_wire_bounds_exhaustive() -> None:
    pyrtl.reset_working_block()
    x, lo, hi = pyrtl.Input(6, "x"), pyrtl.Input(4, "lo"), pyrtl.Input(4, "hi")
    clamped = make_clamp([x], lo=lo, hi=hi)[0]
    assert len(clamped) == 4
    xv, lov, hiv = grid(signed_range(6), signed_range(4), signed_range(4))
    keep = lov <= hiv
    xv, lov, hiv = xv[keep], lov[keep], hiv[keep]
    out = simulate({"x": xv, "lo": lov, "hi": hiv}, {"clamped": clamped})
    np.testing.assert_array_equal(out["clamped"], np.clip(xv, lov, hiv), strict=True)


@pytest.mark.parametrize(("in_bits", "bits"), [(9, 8), (9, 1), (9, 9), (5, 8), (33, 10)])
def test_saturate(in_bits: int, bits: int) -> None:
    pyrtl.reset_working_block()
    x = pyrtl.Input(in_bits, "x")
    saturated = make_saturate(x, bits=bits)
    assert len(saturated) == bits
    if in_bits <= 12:
        xv = signed_range(in_bits)
    else:
        edges = [-(1 << (in_bits - 1)), (1 << (in_bits - 1)) - 1, 511, 512, -512, -513]
        xv = np.concatenate([edges, np.random.default_rng(1).integers(-(2**32), 2**32, 2000)])
    out = simulate({"x": xv}, {"saturated": saturated})
    limit = 1 << (bits - 1)
    np.testing.assert_array_equal(out["saturated"], np.clip(xv, -limit, limit - 1), strict=True)


def test_errors() -> None:
    pyrtl.reset_working_block()
    x = pyrtl.Input(8, "x")
    with pytest.raises(ValueError, match=r"^lo must not exceed hi, not lo=2 and hi=1$"):
        make_clamp(x, lo=2, hi=1)
    with pytest.raises(ValueError, match=r"^bits must be a positive integer, not 0$"):
        make_saturate(x, bits=0)
    with pytest.raises(ValueError, match=r"^a and b must have the same length, not 1 and 2$"):
        make_add([x], [x, x])
    with pytest.raises(TypeError, match=r"^b must be a WireVector or an int, not float$"):
        make_add(x, 1.5)
    with pytest.raises(TypeError, match=r"^x\[1\] must be a WireVector, not int$"):
        make_relu([x, 3])
    with pytest.raises(
        TypeError, match=r"^x must be a WireVector or a sequence of WireVectors, not int$"
    ):
        make_relu(3)
    with pytest.raises(TypeError, match=r"^lo must be a WireVector or an int, not NoneType$"):
        make_clamp(x, lo=None, hi=3)
