"""The bare PE grid, driven cycle by cycle, against NumPy; and the accumulator width."""

import numpy as np
import pyrtl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrtl_linalg import accumulator_bits, make_systolic_array


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


def _grid(rows, cols, acc_bits):
    pyrtl.reset_working_block()
    a = [pyrtl.Input(acc_bits, f"a{i}") for i in range(rows)]
    b = [pyrtl.Input(acc_bits, f"b{j}") for j in range(cols)]
    first, last = pyrtl.Input(1, "first"), pyrtl.Input(1, "last")
    drain = pyrtl.Input(max(1, (cols - 1).bit_length()), "drain")
    results = make_systolic_array(
        a, b, first=first, last=last, drain=drain, acc_bits=acc_bits, name="g"
    )
    for i, result in enumerate(results):
        out = pyrtl.Output(acc_bits, f"r{i}")
        out <<= result
    return pyrtl.FastSimulation(tracer=None)


@settings(max_examples=25, deadline=None)
@given(
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    k=st.integers(1, 6),
    tiles=st.integers(1, 3),
    extra=st.integers(0, 2),
    seed=st.integers(0, 2**32 - 1),
)
def test_back_to_back_tiles(rows, cols, k, tiles, extra, seed):
    rng = np.random.default_rng(seed)
    acc_bits = accumulator_bits(k)
    sim = _grid(rows, cols, acc_bits)
    a = rng.integers(-255, 256, (tiles, rows, k))
    b = rng.integers(-128, 128, (tiles, k, cols))
    period = max(k, rows, cols) + extra
    mask = (1 << acc_bits) - 1
    feeds, reads = {}, {}
    for t in range(tiles):
        for kk in range(k):
            feeds[t * period + kk] = (t, kk)
        last = t * period + k - 1
        for j in range(cols):
            reads[last + rows + j] = (t, j)
    got = np.zeros((tiles, rows, cols), dtype=np.int64)
    for cycle in range(max(reads) + 1):
        step = {"first": 0, "last": 0, "drain": 0}
        step |= {f"a{i}": int(rng.integers(0, mask + 1)) for i in range(rows)}  # bubbles: noise
        step |= {f"b{j}": int(rng.integers(0, mask + 1)) for j in range(cols)}
        if cycle in feeds:
            t, kk = feeds[cycle]
            step |= {f"a{i}": int(a[t, i, kk]) & mask for i in range(rows)}
            step |= {f"b{j}": int(b[t, kk, j]) & mask for j in range(cols)}
            step |= {"first": int(kk == 0), "last": int(kk == k - 1)}
        if cycle in reads:
            step["drain"] = reads[cycle][1]
        sim.step(step)
        if cycle in reads:
            t, j = reads[cycle]
            for i in range(rows):
                value = sim.inspect(f"r{i}")
                got[t, i, j] = value - (1 << acc_bits) if value >> (acc_bits - 1) else value
    np.testing.assert_array_equal(got, np.einsum("tik,tkj->tij", a, b), strict=True)


def test_operand_width_is_checked():
    pyrtl.reset_working_block()
    flag = pyrtl.Input(1, "flag")
    with pytest.raises(ValueError, match=r"^operand a0 is 8 bits wide, not 16$"):
        make_systolic_array(
            [pyrtl.Input(8, "a0")],
            [pyrtl.Input(16, "b0")],
            first=flag,
            last=flag,
            drain=flag,
            acc_bits=16,
        )
    with pytest.raises(
        ValueError, match=r"^the array needs at least one row and one column, not 0x1$"
    ):
        make_systolic_array(
            [], [pyrtl.Input(16, "b1")], first=flag, last=flag, drain=flag, acc_bits=16
        )


def test_drain_width_is_checked():
    pyrtl.reset_working_block()
    flag = pyrtl.Input(1, "flag")
    b = [pyrtl.Input(16, f"b{j}") for j in range(3)]
    with pytest.raises(ValueError, match=r"^drain is 1 bits wide, too narrow to select 3 columns$"):
        make_systolic_array(
            [pyrtl.Input(16, "a0")], b, first=flag, last=flag, drain=flag, acc_bits=16
        )
