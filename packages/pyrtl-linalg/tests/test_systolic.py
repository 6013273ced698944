"""The bare PE grid, driven cycle by cycle, against NumPy; and the accumulator width."""

import doctest
import re

import numpy as np
import pyrtl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    PE_LATENCY,
    _systolic,
    accumulator_bits,
    column_skews,
    make_systolic_array,
)


@pytest.mark.parametrize(
    ("k", "bits", "expected"),
    [(1, 8, 16), (2, 8, 17), (3, 8, 18), (144, 8, 24), (784, 8, 26), (5, 4, 11)],
)
def test_accumulator_bits(k, bits, expected):
    assert accumulator_bits(k, bits=bits) == expected


@pytest.mark.parametrize("k", [1, 2, 3, 7, 8, 144, 1024])
def test_accumulator_bits_holds_the_extremes_exactly(k):
    width = accumulator_bits(k)
    # The largest magnitudes: (a - zp) = -255 or 255 against b = -128.
    largest = k * 255 * 128
    assert -(1 << (width - 1)) <= -largest
    assert largest <= (1 << (width - 1)) - 1
    if k & (k - 1) == 0:  # a power of two: one bit fewer would overflow
        assert largest > (1 << (width - 2)) - 1


def _grid(rows, cols, acc_bits, a_bits=9, b_bits=8, min_period=None):
    pyrtl.reset_working_block()
    a = [pyrtl.Input(a_bits, f"a{i}") for i in range(rows)]
    b = [pyrtl.Input(b_bits, f"b{j}") for j in range(cols)]
    first, last = pyrtl.Input(1, "first"), pyrtl.Input(1, "last")
    drain = pyrtl.Input(max(1, (cols - 1).bit_length()), "drain")
    results = make_systolic_array(
        a,
        b,
        first=first,
        last=last,
        drain=drain,
        acc_bits=acc_bits,
        min_period=min_period,
        name="g",
    )
    for i, result in enumerate(results):
        out = pyrtl.Output(acc_bits, f"r{i}")
        out <<= result
    return pyrtl.FastSimulation(tracer=None)


def _signed(value, bits):
    return value - (1 << bits) if value >> (bits - 1) else value


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    k=st.integers(1, 6),
    tiles=st.integers(1, 3),
    extra=st.integers(0, 2),
    promise=st.floats(0, 1),
    seed=st.integers(0, 2**32 - 1),
)
def test_back_to_back_tiles(rows, cols, k, tiles, extra, promise, seed):
    # Tiles `period` cycles apart, the array told they are at least `min_period` apart
    # (anything from rows, the classic skew, to period itself, the least skew).
    rng = np.random.default_rng(seed)
    acc_bits = accumulator_bits(k)
    period = max(k, rows, cols) + extra
    min_period = rows + round(promise * (period - rows))
    sim = _grid(rows, cols, acc_bits, min_period=min_period)
    a = rng.integers(-255, 256, (tiles, rows, k))
    b = rng.integers(-128, 128, (tiles, k, cols))
    feeds, reads = {}, {}
    for t in range(tiles):
        for kk in range(k):
            feeds[t * period + kk] = (t, kk)
        last = t * period + k - 1
        for j in range(cols):
            reads[last + rows + PE_LATENCY + j] = (t, j)
    got = np.zeros((tiles, rows, cols), dtype=np.int64)
    for cycle in range(max(reads) + 1):
        step = {"first": 0, "last": 0, "drain": 0}
        step |= {f"a{i}": int(rng.integers(0, 1 << 9)) for i in range(rows)}  # bubbles: noise
        step |= {f"b{j}": int(rng.integers(0, 1 << 8)) for j in range(cols)}
        if cycle in feeds:
            t, kk = feeds[cycle]
            step |= {f"a{i}": int(a[t, i, kk]) & 0x1FF for i in range(rows)}
            step |= {f"b{j}": int(b[t, kk, j]) & 0xFF for j in range(cols)}
            step |= {"first": int(kk == 0), "last": int(kk == k - 1)}
        if cycle in reads:
            step["drain"] = reads[cycle][1]
        sim.step(step)
        if cycle in reads:
            t, j = reads[cycle]
            for i in range(rows):
                got[t, i, j] = _signed(sim.inspect(f"r{i}"), acc_bits)
    np.testing.assert_array_equal(got, np.einsum("tik,tkj->tij", a, b), strict=True)


@pytest.mark.parametrize("k", [1, 2, 144, 256])
@pytest.mark.parametrize(("a_value", "b_value"), [(-255, -128), (255, -128), (-255, 127)])
def test_extreme_sums_on_narrow_operands(k, a_value, b_value):
    # -255 is int8 -128 minus zero point 127; k = 1 has a 17-bit product in a 16-bit
    # accumulator, powers of two fill the accumulator to one below its limit.
    acc_bits = accumulator_bits(k)
    sim = _grid(2, 2, acc_bits)
    for kk in range(k):
        step = {"a0": a_value & 0x1FF, "a1": a_value & 0x1FF, "b0": b_value & 0xFF, "drain": 0}
        sim.step(step | {"b1": b_value & 0xFF, "first": int(kk == 0), "last": int(kk == k - 1)})
    got = []
    # Column 0 readable rows + PE_LATENCY cycles after the last element, column 1 one later.
    for j in range(PE_LATENCY + 3):
        drain = max(0, j - PE_LATENCY) // 2
        sim.step({"a0": 0, "a1": 0, "b0": 0, "b1": 0, "first": 0, "last": 0, "drain": drain})
        got.append([_signed(sim.inspect(f"r{i}"), acc_bits) for i in range(2)])
    assert got[PE_LATENCY + 1 :] == [[k * a_value * b_value] * 2] * 2


@pytest.mark.parametrize(
    ("rows", "cols", "min_period", "skews"),
    [
        (1, 4, None, [0, 1, 2, 3]),
        (1, 4, 4, [0, 0, 0, 0]),
        (1, 16, 18, [0] * 16),
        (3, 5, 4, [0, 0, 1, 2, 3]),
        (16, 16, 18, [0, 0, 0, *range(1, 14)]),
    ],
)
def test_column_skews(rows, cols, min_period, skews):
    assert column_skews(rows, cols, min_period=min_period) == skews


def test_column_skews_errors():
    with pytest.raises(ValueError, match=r"^min_period must be at least the 3 rows, not 2$"):
        column_skews(3, 4, min_period=2)
    with pytest.raises(TypeError, match=r"^min_period must be a positive integer, not '4'$"):
        column_skews(3, 4, min_period="4")
    with pytest.raises(ValueError, match=r"^array cols must be a positive integer, not 0$"):
        column_skews(3, 0)


def test_unskewed_row_has_no_delay_registers():
    # One row, tiles at least cols cycles apart: a is broadcast, b is not delayed, and the
    # flags only wait for the product registers.
    _grid(1, 4, 16, min_period=4)
    registers = {r.name for r in pyrtl.working_block().wirevector_subset(pyrtl.Register)}
    pes = {f"g_pe0_{j}_{kind}" for j in range(4) for kind in ("product", "acc", "shadow")}
    flags = {f"g_{flag}_d{stage + 1}" for flag in ("first", "last") for stage in range(PE_LATENCY)}
    assert registers == pes | flags


def test_operands_travel_and_multiply_at_their_own_width():
    _grid(3, 4, accumulator_bits(144))
    block = pyrtl.working_block()
    widths = {r.name: len(r) for r in block.wirevector_subset(pyrtl.Register)}
    a_regs = {w for n, w in widths.items() if re.fullmatch(r"g_(pe\d+_\d+_a|a\d+_d\d+)", n)}
    b_regs = {w for n, w in widths.items() if re.fullmatch(r"g_(pe\d+_\d+_b|b\d+_d\d+)", n)}
    assert (a_regs, b_regs) == ({9}, {8})
    # One 17x17 multiply per PE (9 + 8 bits, sign-extended to the product's width), no wider.
    multiplies = [tuple(len(arg) for arg in net.args) for net in block.logic if net.op == "*"]
    assert multiplies == [(17, 17)] * 12


def test_operand_widths_are_checked():
    pyrtl.reset_working_block()
    flag = pyrtl.Input(1, "flag")
    a = [pyrtl.Input(9, "a0"), pyrtl.Input(8, "a1")]
    with pytest.raises(ValueError, match=r"^operand a1 is 8 bits wide, not 9 like a\[0\]$"):
        make_systolic_array(
            a, [pyrtl.Input(8, "b0")], first=flag, last=flag, drain=flag, acc_bits=16
        )
    with pytest.raises(
        ValueError, match=r"^the array needs at least one row and one column, not 0x1$"
    ):
        make_systolic_array(
            [], [pyrtl.Input(16, "b1")], first=flag, last=flag, drain=flag, acc_bits=16
        )
    with pytest.raises(ValueError, match=r"^acc_bits must be a positive integer, not 0$"):
        make_systolic_array(a[:1], a[1:], first=flag, last=flag, drain=flag, acc_bits=0)
    with pytest.raises(TypeError, match=r"^acc_bits must be a positive integer, not 16.0$"):
        make_systolic_array(a[:1], a[1:], first=flag, last=flag, drain=flag, acc_bits=16.0)


def test_drain_width_is_checked():
    pyrtl.reset_working_block()
    flag = pyrtl.Input(1, "flag")
    b = [pyrtl.Input(16, f"b{j}") for j in range(3)]
    with pytest.raises(ValueError, match=r"^drain is 1 bits wide, too narrow to select 3 columns$"):
        make_systolic_array(
            [pyrtl.Input(16, "a0")], b, first=flag, last=flag, drain=flag, acc_bits=16
        )


def test_doctests():
    assert doctest.testmod(_systolic, raise_on_error=False).failed == 0
