"""make_requantize against independent models of each rounding, over many values per build.

The models below are written from the kernels' definitions, not from the hardware's
construction: Python integers for the two integer methods (gemmlowp's code literally, with its
nudge and truncating division), real float32 arithmetic in NumPy for ``"float32"`` and real
float64 arithmetic (Python floats) for ``"float64"``. Each
requantizer is built once and simulated step by step through a batch of cases, one case per
step, so thousands of cases cost well under a second. A pipelined requantizer (``stages=k``)
must give the same results ``k`` steps later, for every ``k``: each datapath test runs at every
stage count.
"""

import math
import re
from collections.abc import Callable
from fractions import Fraction
from functools import cache, partial

import numpy as np
import pyrtl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    REQUANT_METHODS,
    float32_scale_fields,
    float64_scale_fields,
    make_requantize,
    pack_requant_constants,
    requant_stage_points,
    requant_word_bits,
    unpack_requant_constants,
)

INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1
# The scale constants of each method and their widths as wires.
SCALE_FIELDS = {
    "single_round": {"multiplier": 31, "shift": 6},
    "double_round": {"multiplier": 31, "shift": 6},
    "double_round_away": {"multiplier": 31, "shift": 6},
    "float32": {"scale_significand": 24, "scale_exponent": 9},
    "float64": {"scale_significand": 53, "scale_exponent": 12},
}
# Significand bits and exponent range of the float formats (scale = significand * 2**exponent).
FLOATS = {"float32": (24, -149, 104), "float64": (53, -1074, 971)}
Cases = dict[str, np.ndarray]
#: Every method with every stage count it supports, and with the least and the most only.
METHOD_STAGES = [
    (method, stages)
    for method in REQUANT_METHODS
    for stages in range(len(requant_stage_points(method)) + 1)
]
METHOD_EXTREMES = [
    (method, stages)
    for method in REQUANT_METHODS
    for stages in (0, len(requant_stage_points(method)))
]


# ----------------------------------------------------------------------------------------
# Independent models
# ----------------------------------------------------------------------------------------


def _single_round(acc: int, multiplier: int, shift: int) -> int:
    """TFLite reference kernels' single-rounding MultiplyByQuantizedMultiplier."""
    total_shift = 31 - shift
    return (acc * multiplier + (1 << (total_shift - 1))) >> total_shift


def _truncating_div(n: int, d: int) -> int:
    """C's integer division (toward zero)."""
    return -(-n // d) if n < 0 else n // d


def _wrap32(x: int) -> int:
    x &= 0xFFFFFFFF
    return x - (1 << 32) if x >> 31 else x


def _rounding_divide_by_pot(x: int, exponent: int) -> int:
    """gemmlowp's RoundingDivideByPOT for int32 ``x``: ties away from zero, in its own
    remainder-and-threshold form (an arithmetic shift, then one up if the remainder is past
    half, where a negative ``x``'s half counts as past)."""
    mask = (1 << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> exponent) + (1 if remainder > threshold else 0)


def _double_round(acc: int, multiplier: int, shift: int, *, ties_away: bool = False) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul, then a ties-toward-+inf shift (or with
    ``ties_away``, RoundingDivideByPOT)."""
    left_shift, right_shift = max(shift, 0), max(-shift, 0)
    a = _wrap32(acc * (1 << left_shift))
    if a == multiplier == INT32_MIN:
        high = INT32_MAX
    else:
        ab = a * multiplier
        nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
        high = _truncating_div(ab + nudge, 1 << 31)
    if ties_away:
        return _rounding_divide_by_pot(high, right_shift)
    if right_shift == 0:
        return high
    return (high + (1 << (right_shift - 1))) >> right_shift


def _float32(acc: np.ndarray, significand: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``rint(float32(acc) * float32 scale)`` in real float32 arithmetic, as float64."""
    scale = np.ldexp(significand.astype(np.float64), exponent).astype(np.float32)
    assert np.all(np.ldexp(significand.astype(np.float64), exponent) == scale)
    with np.errstate(over="ignore"):
        product = acc.astype(np.float32) * scale
    assert product.dtype == np.float32
    return np.rint(product).astype(np.float64)


def _round_half_away(x: float) -> int:
    """C's ``round`` of a finite float, exactly: ``floor(|x| + 0.5)`` would round in float."""
    whole = math.floor(abs(x))
    magnitude = whole + (1 if abs(x) - whole >= 0.5 else 0)  # the difference is exact
    return -magnitude if x < 0 else magnitude


def _float64(acc: np.ndarray, significand: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """``round(float64(acc) * float64 scale)``, ties away, in real float64 arithmetic."""
    results = []
    for a, m, e in zip(acc.tolist(), significand.tolist(), exponent.tolist(), strict=True):
        scale = math.ldexp(float(m), e)  # exact: m < 2**53 and the scale is normal
        product = float(a) * scale  # float(a) is exact; one float64 rounding
        if not abs(product) < 2.0**40:  # inf or far beyond any clamp
            results.append(math.copysign(2.0**40, product))
        else:
            results.append(float(_round_half_away(product)))
    return np.array(results, dtype=np.float64)


def expected(method: str, cases: Cases) -> np.ndarray:
    acc = cases["acc"]
    if method == "float32":
        scaled = _float32(acc, cases["scale_significand"], cases["scale_exponent"])
    elif method == "float64":
        scaled = _float64(acc, cases["scale_significand"], cases["scale_exponent"])
    else:
        model = {
            "single_round": _single_round,
            "double_round": _double_round,
            "double_round_away": partial(_double_round, ties_away=True),
        }[method]
        scaled = np.array(
            [
                float(model(int(a), int(m), int(s)))
                for a, m, s in zip(acc, cases["multiplier"], cases["shift"], strict=True)
            ]
        )
    # The kernels' int32 arithmetic on x86: float results are clamped from above first
    # (XNNPACK, float32 only), converted to int32 (INT32_MIN when out of range), and the zero
    # point is added in int32 (wrapping), as is double_round's.
    zero_point = cases["zero_point"].astype(np.int64)
    if method == "single_round":
        return np.clip(scaled + zero_point, cases["lo"], cases["hi"]).astype(np.int64)
    if method == "float32":
        scaled = np.minimum(scaled, cases["hi"] - zero_point)
    if method in ("float32", "float64"):
        scaled = np.where((scaled < INT32_MIN) | (scaled > INT32_MAX), INT32_MIN, scaled)
    total = np.array([_wrap32(int(v) + int(z)) for v, z in zip(scaled, zero_point, strict=True)])
    return np.clip(total, cases["lo"], cases["hi"]).astype(np.int64)


# ----------------------------------------------------------------------------------------
# Harness: one built requantizer, stepped through a batch of cases
# ----------------------------------------------------------------------------------------


def run_steps(
    sim: pyrtl.Simulation, steps: list[dict[str, int]], *, latency: int, out_bits: int = 8
) -> np.ndarray:
    """Step ``sim`` through one input dict per case and read the signed ``out`` of each case
    ``latency`` steps after its inputs (holding the last inputs meanwhile)."""
    sign = 1 << (out_bits - 1)
    results = []
    for step in range(len(steps) + latency):
        sim.step(steps[min(step, len(steps) - 1)])
        if step >= latency:
            results.append((sim.inspect("out") ^ sign) - sign)
    return np.array(results, dtype=np.int64)


class Requantizer:
    """A requantizer whose constants are input ports, unless given as Python integers."""

    def __init__(
        self,
        method: str,
        *,
        acc_bits: int = 32,
        out_bits: int = 8,
        constants: dict[str, int] | None = None,
        simulator: type = pyrtl.CompiledSimulation,
        stages: int = 0,
    ) -> None:
        self.method, self.acc_bits, self.out_bits = method, acc_bits, out_bits
        self.stages = stages
        self.constants = constants or {}
        pyrtl.reset_working_block()
        names = (*SCALE_FIELDS[method], "zero_point", "lo", "hi")
        widths = {**SCALE_FIELDS[method], "zero_point": out_bits, "lo": out_bits, "hi": out_bits}
        self.widths = {"acc": acc_bits}
        kwargs: dict[str, pyrtl.WireVector | int] = {}
        for name in names:
            if name in self.constants:
                kwargs[name] = self.constants[name]
            else:
                kwargs[name] = pyrtl.Input(widths[name], name)
                self.widths[name] = widths[name]
        acc = pyrtl.Input(acc_bits, "acc")
        out = pyrtl.Output(out_bits, "out")
        out <<= make_requantize(acc, method=method, out_bits=out_bits, stages=stages, **kwargs)
        self.sim = simulator(tracer=pyrtl.SimulationTrace([out]))

    def run(self, cases: Cases, *, latency: int | None = None) -> np.ndarray:
        """The result of each case, read ``latency`` steps after its inputs (by default the
        requantizer's stages)."""
        columns = {
            name: [int(v) & ((1 << w) - 1) for v in cases[name]] for name, w in self.widths.items()
        }
        steps = [
            dict(zip(columns, values, strict=True))
            for values in zip(*columns.values(), strict=True)
        ]
        latency = self.stages if latency is None else latency
        return run_steps(self.sim, steps, latency=latency, out_bits=self.out_bits)

    def check(self, cases: Cases) -> int:
        cases = {**cases, **{k: np.full(len(cases["acc"]), v) for k, v in self.constants.items()}}
        np.testing.assert_array_equal(self.run(cases), expected(self.method, cases), strict=True)
        return len(cases["acc"])


# ----------------------------------------------------------------------------------------
# Case generation: random, edge and tie cases
# ----------------------------------------------------------------------------------------


def _log2(x: np.ndarray) -> np.ndarray:
    return np.log2(np.maximum(np.abs(x), 1).astype(np.float64))


def random_accs(rng: np.random.Generator, n: int, acc_bits: int) -> np.ndarray:
    """Accumulators spread over every magnitude, plus the extremes and float32 edges."""
    lo, hi = -(1 << (acc_bits - 1)), (1 << (acc_bits - 1)) - 1
    bits = rng.integers(0, acc_bits, n)
    acc = (rng.integers(0, 1 << 62, n) >> (62 - bits)) * rng.choice([-1, 1], n)
    edges = [lo, hi, 0, 1, -1, lo + 1, hi - 1]
    for p in range(23, 32):
        edges += [s * ((1 << p) + k) for s in (1, -1) for k in (-1, 0, 1, 2, 3)]
    edges = np.array([e for e in edges if lo <= e <= hi], dtype=np.int64)
    return np.clip(np.concatenate([edges, acc]), lo, hi)[:n]


def _zero_points_and_clamps(rng: np.random.Generator, n: int, out_bits: int) -> Cases:
    low, high = -(1 << (out_bits - 1)), (1 << (out_bits - 1)) - 1
    zero_point = rng.integers(low, high + 1, n)
    zero_point[rng.random(n) < 0.2] = low
    zero_point[rng.random(n) < 0.2] = high
    lo = np.full(n, low)
    hi = np.full(n, high)
    relu = rng.random(n) < 0.3
    lo[relu] = zero_point[relu]  # a fused ReLU clamps at the zero point
    narrow = rng.random(n) < 0.2
    ends = np.sort(rng.integers(low, high + 1, (n, 2)), axis=1)
    lo[narrow], hi[narrow] = ends[narrow, 0], ends[narrow, 1]
    return {"zero_point": zero_point, "lo": lo, "hi": hi}


def integer_cases(
    rng: np.random.Generator, n: int, *, acc_bits: int = 32, out_bits: int = 8
) -> Cases:
    """Multipliers in [2**30, 2**31) (with edges and some smaller) and shifts that mostly put
    the result near the output range, the rest anywhere in [-31, 30]."""
    acc = random_accs(rng, n, acc_bits)
    multiplier = rng.integers(1 << 30, 1 << 31, n)
    pick = rng.random(n)
    multiplier[pick < 0.1] = 1 << 30
    multiplier[(pick >= 0.1) & (pick < 0.2)] = INT32_MAX
    small = (pick >= 0.2) & (pick < 0.3)
    multiplier[small] = rng.integers(0, 1 << 30, small.sum())
    # acc * M * 2**(shift - 31) ~ 2**(out_bits - 1 + jitter)
    aim = out_bits - 1 + 31 - _log2(acc) - _log2(multiplier) + rng.integers(-4, 3, n)
    shift = np.clip(np.round(aim), -31, 30).astype(np.int64)
    anywhere = rng.random(n) < 0.2
    shift[anywhere] = rng.integers(-31, 31, anywhere.sum())
    shift[: n // 20] = rng.choice([-31, 30], n // 20)
    return {"acc": acc, "multiplier": multiplier, "shift": shift} | _zero_points_and_clamps(
        rng, n, out_bits
    )


def integer_ties(rng: np.random.Generator, n: int, method: str) -> Cases:
    """Exact ties: the dropped bits are exactly one half (acc*M has 2-adic valuation t - 1)."""
    shift = rng.integers(-30, 1, n)  # a valuation of 61 (shift -31) needs |acc| >= 2**31
    # single: the one rounding drops t = 31 - shift bits; double (shift <= 0): the doubling
    # high multiply drops 31 bits and the final shift drops -shift more; aim at either.
    valuation = (
        30 - shift if method == "single_round" else np.where(rng.random(n) < 0.5, 30, 30 - shift)
    )
    m_twos = rng.integers(np.maximum(valuation - 30, 0), np.minimum(valuation, 30) + 1)
    a_twos = valuation - m_twos
    m_odd = (rng.integers(0, 1 << 31, n) >> m_twos) | 1
    a_odd = (rng.integers(0, 1 << 31, n) >> np.minimum(a_twos + rng.integers(0, 20, n), 30)) | 1
    return {
        "acc": (a_odd << a_twos) * rng.choice([-1, 1], n),
        "multiplier": m_odd << m_twos,
        "shift": shift,
    } | _zero_points_and_clamps(rng, n, 8)


def float_cases(
    rng: np.random.Generator,
    n: int,
    *,
    method: str = "float32",
    low_scale: int = -32,
    acc_bits: int = 32,
    out_bits: int = 8,
) -> Cases:
    """Scales over [2**low_scale, 256) (XNNPACK's range for float32) and beyond, mostly aimed
    near the output range, some at the ends of the format's range."""
    p, min_exponent, max_exponent = FLOATS[method]
    low, high = low_scale - (p - 1), 8 - p
    acc = random_accs(rng, n, acc_bits)
    significand = rng.integers(1 << (p - 1), 1 << p, n)
    significand[rng.random(n) < 0.1] = 1 << (p - 1)
    significand[rng.random(n) < 0.1] = (1 << p) - 1
    aim = out_bits - 1 - _log2(acc) - (p - 1) + rng.integers(-3, 3, n)
    exponent = np.clip(np.round(aim), low, high).astype(np.int64)
    anywhere = rng.random(n) < 0.2
    exponent[anywhere] = rng.integers(low, high + 1, anywhere.sum())
    exponent[: n // 50] = rng.choice([min_exponent, low, high, max_exponent], n // 50)
    return {
        "acc": acc,
        "scale_significand": significand,
        "scale_exponent": exponent,
    } | _zero_points_and_clamps(rng, n, out_bits)


def float32_ties(rng: np.random.Generator, n: int) -> Cases:
    """Ties at each of the three roundings of the float32 path."""
    kind = rng.integers(0, 3, n)
    # 1. the product x is exactly k + 1/2: a power-of-two scale 2**-e, acc odd * 2**(e-1).
    e = rng.integers(1, 12, n)
    acc_final = (rng.integers(0, 1 << 7, n) * 2 + 1) << (e - 1)
    # 2. float32(acc) ties: acc = 2**p + 2**(p-24) * odd (halfway between two float32s).
    p = rng.integers(24, 31, n)
    acc_convert = (1 << p) + ((rng.integers(0, 1 << 20, n) * 2 + 1) << (p - 24))
    # 3. the 48-bit significand product ties: 2-adic valuations of the two significands sum
    # to 22 or 23 (whichever is the rounding position for that product).
    i = rng.integers(0, 13, n)
    j = np.where(rng.random(n) < 0.5, 22, 23) - i
    a_sig = ((rng.integers(1 << 23, 1 << 24, n) >> i) | 1) << i
    m_sig = ((rng.integers(1 << 23, 1 << 24, n) >> j) | 1) << j
    acc = np.where(kind == 0, acc_final, np.where(kind == 1, acc_convert, a_sig))
    acc *= rng.choice([-1, 1], n)
    significand = np.where(kind == 2, m_sig, 1 << 23)
    exponent_convert = 7 - _log2(acc).astype(np.int64) - 23 + rng.integers(-1, 1, n)
    exponent = np.where(
        kind == 0, -e - 23, np.where(kind == 1, exponent_convert, rng.integers(-48, -39, n))
    )
    return {
        "acc": acc,
        "scale_significand": significand,
        "scale_exponent": exponent,
    } | _zero_points_and_clamps(rng, n, 8)


def _odd(rng: np.random.Generator, bits: int) -> int:
    """A random odd integer of exactly ``bits`` bits."""
    if bits == 1:
        return 1
    return (1 << (bits - 1)) | int(rng.integers(0, 1 << (bits - 2))) << 1 | 1


# 3 * CARRY_SIGNIFICAND = 2**54 - 1: the float64 product of 3 and this significand rounds up
# to 2**54, a carry out of the 53-bit significand.
CARRY_SIGNIFICAND = (2**54 - 1) // 3


def float64_ties(rng: np.random.Generator, n: int) -> Cases:
    """Ties and near ties at both roundings of the float64 path, in four kinds.

    0. exact ties: ``acc * s = k + 1/2`` with ``acc * significand`` short enough to be exact.
    1. near ties: ``s`` is the float64 just below ``(k + 1/2) / acc`` (or, a quarter of the
       time, just above), so the exact product misses the tie by less than half an ulp and its
       float64 rounding lands on it: an exact rounding of ``acc * s`` gives ``k``, the float64
       path ``k + 1``.
    2. product ties: the odd part of ``acc * significand`` has 54 bits, so the float64
       rounding of the product is itself a tie. (Its tie rule cannot change the integer
       result: the only tie whose neighbours round to different integers is between
       ``k + 1/2 - ulp`` and ``k + 1/2``, and ``k + 1/2`` is the even one, picked by ties to
       even and ties away alike, unless the ulp is 1/2, at products of 2**51 and more. These
       check the guard and sticky logic; kind 1 checks that the product rounds to nearest.)
    3. the carry: ``3 * CARRY_SIGNIFICAND`` rounds up to ``2**54``, placed anywhere from 1/2
       (``0.5 - 2**-55`` becomes exactly 0.5, which rounds away to 1) to saturation.
    """
    accs, significands, exponents = [], [], []
    kinds = rng.integers(0, 4, n)
    for kind in kinds.tolist():
        if kind == 0:
            a_bits = int(rng.integers(1, 9))
            s_bits = int(rng.integers(1, 10 - a_bits))
            i = int(rng.integers(0, 32 - a_bits))
            acc, significand = _odd(rng, a_bits) << i, _odd(rng, s_bits) << (53 - s_bits)
            exponent = -1 - i - (53 - s_bits)
        elif kind == 1:
            while True:
                acc = int(rng.integers(2, 1 << int(rng.integers(2, 32))))
                half = Fraction(2 * int(rng.integers(0, 256)) + 1, 2)
                target = half / acc
                scale = float(target)
                above = rng.random() < 0.25
                if above != (Fraction(scale) > target):
                    scale = math.nextafter(scale, math.inf if above else 0.0)
                if float(acc) * scale == half and acc * Fraction(scale) != half:
                    break
            ((significand,), (exponent,)) = (f.tolist() for f in float64_scale_fields([scale]))
        elif kind == 2:
            while True:
                a_bits = int(rng.integers(2, 32))
                s_bits = min(53, int(rng.integers(54, 56)) - a_bits)
                a_odd, s_odd = _odd(rng, a_bits), _odd(rng, s_bits)
                if (a_odd * s_odd).bit_length() == 54:
                    break
            i = int(rng.integers(0, 32 - a_bits))
            acc, significand = a_odd << i, s_odd << (53 - s_bits)
            exponent = 7 - (acc * significand).bit_length() + int(rng.integers(-6, 3))
        else:
            i = int(rng.integers(0, 30))
            acc, significand = 3 << i, CARRY_SIGNIFICAND
            exponent = -55 - i + int(rng.integers(0, 10))
        accs.append(acc * int(rng.choice([-1, 1])))
        significands.append(significand)
        exponents.append(exponent)
    return {
        "acc": np.array(accs, dtype=np.int64),
        "scale_significand": np.array(significands, dtype=np.int64),
        "scale_exponent": np.array(exponents, dtype=np.int64),
        "kind": kinds,
    } | _zero_points_and_clamps(rng, n, 8)


# ----------------------------------------------------------------------------------------
# Tests
# ----------------------------------------------------------------------------------------


TIE_MAKERS: dict[str, Callable[[np.random.Generator, int], Cases]] = {
    "single_round": partial(integer_ties, method="single_round"),
    "double_round": partial(integer_ties, method="double_round"),
    "double_round_away": partial(integer_ties, method="double_round_away"),
    "float32": float32_ties,
    "float64": float64_ties,
}


@cache
def requantizer(method: str, stages: int) -> Requantizer:
    """One requantizer per method and stage count with every constant on an input port, built
    at its first use. (Only the tests that share it call this.)"""
    return Requantizer(method, stages=stages)


CASE_MAKERS: dict[str, Callable[..., Cases]] = {
    "single_round": integer_cases,
    "double_round": integer_cases,
    "double_round_away": integer_cases,
    "float32": partial(float_cases, method="float32"),
    # float64 scales aimed at [2**-40, 2**8), wider than any quantized layer needs.
    "float64": partial(float_cases, method="float64", low_scale=-40),
}


def _cases(method: str, stages: int, n: int) -> int:
    """``n`` cases at the least and the most stages, a fifth of them between (the same
    datapath with fewer registers)."""
    return n if (method, stages) in METHOD_EXTREMES else n // 5


@pytest.mark.parametrize(("method", "stages"), METHOD_STAGES)
def test_random_and_edge_cases(method: str, stages: int) -> None:
    rng = np.random.default_rng(REQUANT_METHODS.index(method))
    n = _cases(method, stages, 20_000)
    assert requantizer(method, stages).check(CASE_MAKERS[method](rng, n)) == n


@pytest.mark.parametrize(("method", "stages"), METHOD_STAGES)
def test_exact_ties(method: str, stages: int) -> None:
    rng = np.random.default_rng(10 + REQUANT_METHODS.index(method))
    n = _cases(method, stages, 5_000)
    requantizer(method, stages).check(TIE_MAKERS[method](rng, n))


def test_ties_are_ties() -> None:
    """The tie generators really produce exact halves (else the test above proves little)."""
    rng = np.random.default_rng(0)
    cases = integer_ties(rng, 1000, "single_round")
    total = 31 - cases["shift"]
    rest = [
        (int(a) * int(m)) % (1 << int(t))
        for a, m, t in zip(cases["acc"], cases["multiplier"], total, strict=True)
    ]
    assert np.mean([r == 1 << (int(t) - 1) for r, t in zip(rest, total, strict=True)]) > 0.9
    cases = float32_ties(rng, 1000)
    scale = np.ldexp(cases["scale_significand"].astype(np.float64), cases["scale_exponent"])
    product = cases["acc"].astype(np.float32) * scale.astype(np.float32)
    assert np.mean(np.abs(product - np.trunc(product)) == 0.5) > 0.2
    cases = float64_ties(rng, 1000)
    for acc, significand, exponent, kind in zip(
        *(cases[k].tolist() for k in ("acc", "scale_significand", "scale_exponent", "kind")),
        strict=True,
    ):
        exact = abs(acc) * significand * Fraction(2) ** exponent
        rounded = abs(acc) * math.ldexp(significand, exponent)
        if kind == 0:
            assert exact.denominator == 2
        elif kind == 1:
            assert Fraction(rounded).denominator == 2
            assert exact.denominator != 2
        elif kind == 2:
            odd = abs(acc) * significand
            assert (odd >> ((odd & -odd).bit_length() - 1)).bit_length() == 54
        else:
            assert Fraction(rounded) != exact
            assert math.log2(rounded).is_integer()


def test_rounding_divide_by_pot_model() -> None:
    """The RoundingDivideByPOT model rounds to nearest with ties away from zero, checked
    against exact fractions (and the ties-up model differs exactly on negative ties)."""
    for x in [*range(-70, 71), INT32_MIN + 1, INT32_MAX, -(2**30) - 2**29, 2**30 + 2**29]:
        for exponent in range(0, 32):
            q = Fraction(x, 1 << exponent)
            magnitude = math.floor(abs(q) + Fraction(1, 2))
            assert _rounding_divide_by_pot(x, exponent) == (-magnitude if q < 0 else magnitude)
            ties_up = math.floor(q + Fraction(1, 2))
            negative_tie = q < 0 and q.denominator == 2
            assert (ties_up != _rounding_divide_by_pot(x, exponent)) == negative_tie


#: Crafted final-shift ties: ``high`` is exactly an odd multiple of ``2**(n-1)`` (the
#: multiplier 2**30 makes ``high = acc / 2`` exactly for even ``acc``), negative ones too.
AWAY_TIES = [  # (acc, shift, double_round, double_round_away)
    (-6, -1, -1, -2),  # -3 / 2 = -1.5
    (6, -1, 2, 2),  # 1.5: both away from zero
    (-2, -1, 0, -1),  # -0.5
    (-10, -2, -1, -1),  # -5 / 4 = -1.25: not a tie
    (-12, -2, -1, -2),  # -6 / 4 = -1.5
    (-4, 0, -2, -2),  # no final shift: nothing to round
    (-(2**31), -31, 0, -1),  # -2**30 / 2**31 = -0.5, the most negative accumulator
    (-(3 << 20), -21, -1, -1),  # -1.5 * 2**20 / 2**21 = -0.75: not a tie
]


@pytest.mark.parametrize("stages", range(len(requant_stage_points("double_round_away")) + 1))
def test_double_round_away_negative_ties(stages: int) -> None:
    """Where the two double roundings differ: negative ties of the final shift."""
    acc, shift, ties_up, away = (np.array(c) for c in zip(*AWAY_TIES, strict=True))
    n = len(acc)
    cases = {"acc": acc, "multiplier": np.full(n, 1 << 30), "shift": shift}
    cases |= {"zero_point": np.zeros(n, dtype=np.int64), "lo": np.full(n, -128)}
    cases |= {"hi": np.full(n, 127)}
    np.testing.assert_array_equal(expected("double_round", cases), ties_up, strict=True)
    np.testing.assert_array_equal(expected("double_round_away", cases), away, strict=True)
    np.testing.assert_array_equal(
        requantizer("double_round_away", stages).run(cases), away, strict=True
    )
    np.testing.assert_array_equal(
        requantizer("double_round", stages).run(cases), ties_up, strict=True
    )


def _quantize_multiplier(scale: float) -> tuple[int, int]:
    """TFLite's QuantizeMultiplier: the Q31 multiplier and shift nearest a double scale."""
    fraction, shift = math.frexp(scale)
    multiplier = _round_half_away(fraction * 2.0**31)
    if multiplier == 1 << 31:
        multiplier, shift = multiplier // 2, shift + 1
    return multiplier, shift


def test_single_round_cannot_replace_float64() -> None:
    """The Q31 multiplier of the same float64 scale requantizes some accumulators differently.

    Two reasons, each shown on hardware: single rounding sends negative ties toward +inf
    where the float64 path rounds them away from zero, and the 31-bit multiplier drops scale
    bits that move a product across a half (``s = 2**-7 * (1 - 2**-35)`` becomes ``2**-7``).
    Realistic scales rarely meet such an accumulator, which is why the two agree on most data.
    """
    cases = [  # (scale, acc, float64 result, single_round result)
        (0.5, -3, -2, -1),  # -1.5: away from zero vs toward +inf
        (0.5 + 2.0**-40, -3, -2, -1),  # -1.5 - 3 * 2**-40, and the multiplier drops 2**-40
        (0.5 - 2.0**-40, 3, 1, 2),  # 1.5 - 3 * 2**-40
        (2.0**-7 * (1 - 2.0**-35), 192, 1, 2),  # 1.5 - 1.5 * 2**-35
        (2.0**-7 * (1 + 2.0**-35), -192, -2, -1),  # -1.5 - 1.5 * 2**-35: both reasons
        (3 * 2.0**-10 * (1 + 2.0**-33), -2560, -8, -7),  # -7.5 * (1 + 2**-33): both reasons
    ]
    scales, accs, float64, single_round = (list(column) for column in zip(*cases, strict=True))
    fields = float64_scale_fields(scales)
    multiplier, shift = (np.array(f) for f in zip(*map(_quantize_multiplier, scales), strict=True))
    n = len(scales)
    common = {"acc": np.array(accs), "zero_point": np.zeros(n, dtype=np.int64)}
    common |= {"lo": np.full(n, -128), "hi": np.full(n, 127)}
    single = Requantizer("single_round").run(common | {"multiplier": multiplier, "shift": shift})
    cases = common | {"scale_significand": fields[0], "scale_exponent": fields[1]}
    result = Requantizer("float64").run(cases)
    np.testing.assert_array_equal(result, expected("float64", cases), strict=True)
    np.testing.assert_array_equal(result, np.array(float64), strict=True)
    np.testing.assert_array_equal(single, np.array(single_round), strict=True)


def test_notes_vectors_tell_double_from_single_rounding() -> None:
    """Three cases where two float32 roundings differ from one exact rounding (16-bit out)."""
    scales = np.array([401 * 2.0**-25, 4359261 * 2.0**-32, 1.1666666], dtype=np.float32)
    significand, exponent = float32_scale_fields(scales)
    cases = {
        "acc": np.array([16777217, 100003, 3]),
        "scale_significand": significand,
        "scale_exponent": exponent,
        "zero_point": np.zeros(3, dtype=np.int64),
        "lo": np.full(3, -(2**15)),
        "hi": np.full(3, 2**15 - 1),
    }
    result = Requantizer("float32", out_bits=16).run(cases)
    np.testing.assert_array_equal(result, np.array([200, 102, 4]), strict=True)
    np.testing.assert_array_equal(result, expected("float32", cases), strict=True)
    exact = np.round(cases["acc"] * scales.astype(np.float64)).astype(np.int64)
    np.testing.assert_array_equal(exact, np.array([201, 101, 3]), strict=True)


@given(
    st.lists(
        st.tuples(
            st.integers(INT32_MIN, INT32_MAX),
            st.integers(0, INT32_MAX),
            st.integers(-31, 30),
            st.integers(-128, 127),
            st.integers(-128, 127),
            st.integers(-128, 127),
        ),
        min_size=1,
        max_size=100,
    ),
    st.sampled_from([(m, k) for m, k in METHOD_STAGES if "multiplier" in SCALE_FIELDS[m]]),
)
@settings(max_examples=60, deadline=None)
def test_integer_methods_hypothesis(
    batch: list[tuple[int, ...]], method_stages: tuple[str, int]
) -> None:
    acc, multiplier, shift, zero_point, a, b = (
        np.array(c, dtype=np.int64) for c in zip(*batch, strict=True)
    )
    cases = {
        "acc": acc,
        "multiplier": multiplier,
        "shift": shift,
        "zero_point": zero_point,
        "lo": np.minimum(a, b),
        "hi": np.maximum(a, b),
    }
    requantizer(*method_stages).check(cases)


@given(
    st.lists(
        st.tuples(
            st.integers(INT32_MIN, INT32_MAX),
            st.floats(2.0**-32, 256.0, exclude_max=True, width=32),
            st.integers(-128, 127),
            st.integers(-128, 127),
            st.integers(-128, 127),
        ),
        min_size=1,
        max_size=100,
    ),
    st.integers(0, len(requant_stage_points("float32"))),
)
@settings(max_examples=60, deadline=None)
def test_float32_hypothesis(batch: list[tuple], stages: int) -> None:
    acc, scale, zero_point, a, b = zip(*batch, strict=True)
    significand, exponent = float32_scale_fields(np.array(scale, dtype=np.float32))
    cases = {
        "acc": np.array(acc, dtype=np.int64),
        "scale_significand": significand,
        "scale_exponent": exponent,
        "zero_point": np.array(zero_point, dtype=np.int64),
        "lo": np.minimum(a, b),
        "hi": np.maximum(a, b),
    }
    requantizer("float32", stages).check(cases)


@given(
    st.lists(
        st.tuples(
            st.integers(INT32_MIN, INT32_MAX),
            st.floats(2.0**-40, 256.0, exclude_max=True),
            st.integers(-128, 127),
            st.integers(-128, 127),
            st.integers(-128, 127),
        ),
        min_size=1,
        max_size=100,
    ),
    st.integers(0, len(requant_stage_points("float64"))),
)
@settings(max_examples=60, deadline=None)
def test_float64_hypothesis(batch: list[tuple], stages: int) -> None:
    acc, scale, zero_point, a, b = zip(*batch, strict=True)
    significand, exponent = float64_scale_fields(scale)
    cases = {
        "acc": np.array(acc, dtype=np.int64),
        "scale_significand": significand,
        "scale_exponent": exponent,
        "zero_point": np.array(zero_point, dtype=np.int64),
        "lo": np.minimum(a, b),
        "hi": np.maximum(a, b),
    }
    requantizer("float64", stages).check(cases)


@pytest.mark.parametrize(("method", "stages"), METHOD_EXTREMES)
@pytest.mark.parametrize(("acc_bits", "out_bits"), [(1, 8), (20, 8), (32, 2), (24, 16)])
def test_widths(method: str, stages: int, acc_bits: int, out_bits: int) -> None:
    rng = np.random.default_rng(acc_bits * 100 + out_bits)
    cases = CASE_MAKERS[method](rng, 3_000, acc_bits=acc_bits, out_bits=out_bits)
    Requantizer(method, acc_bits=acc_bits, out_bits=out_bits, stages=stages).check(cases)


@pytest.mark.parametrize("deepest", [False, True])
def test_narrow_constant_wires(deepest: bool) -> None:
    """Constant wires narrower than their fields are zero- or sign-extended."""
    rng = np.random.default_rng(9)
    for method in ("double_round", "double_round_away", "single_round"):
        narrow = {"shift": 4}
        stages = len(requant_stage_points(method)) if deepest else 0
        pyrtl.reset_working_block()
        acc, shift = pyrtl.Input(32, "acc"), pyrtl.Input(narrow["shift"], "shift")
        multiplier, zero_point = pyrtl.Input(20, "multiplier"), pyrtl.Input(3, "zero_point")
        out = pyrtl.Output(8, "out")
        out <<= make_requantize(
            acc,
            method=method,
            multiplier=multiplier,
            shift=shift,
            zero_point=zero_point,
            stages=stages,
        )
        sim = pyrtl.FastSimulation(tracer=pyrtl.SimulationTrace([out]))
        n = 2000
        cases = {
            "acc": random_accs(rng, n, 32),
            "multiplier": rng.integers(0, 1 << 20, n),
            "shift": rng.integers(-8, 8, n),
            "zero_point": rng.integers(-4, 4, n),
            "lo": np.full(n, -128),
            "hi": np.full(n, 127),
        }
        steps = [
            {
                "acc": int(a) & 0xFFFFFFFF,
                "multiplier": int(m),
                "shift": int(s) & 15,
                "zero_point": int(z) & 7,
            }
            for a, m, s, z in zip(
                *(cases[k] for k in ("acc", "multiplier", "shift", "zero_point")), strict=True
            )
        ]
        result = run_steps(sim, steps, latency=stages)
        np.testing.assert_array_equal(result, expected(method, cases), strict=True)


CONSTANT_BUILDS = [
    (
        "single_round",
        {"multiplier": 1 << 30, "shift": -3, "zero_point": -128, "lo": -128, "hi": 127},
    ),
    ("single_round", {"multiplier": INT32_MAX, "shift": -31}),
    ("single_round", {"multiplier": 1 << 30, "shift": 30, "zero_point": 127, "lo": 127, "hi": 127}),
    ("double_round", {"multiplier": 1 << 30, "shift": -3, "zero_point": 5, "lo": 5, "hi": 127}),
    ("double_round", {"multiplier": INT32_MAX, "shift": -31, "lo": -128, "hi": 0}),
    ("double_round", {"multiplier": 1431655765, "shift": 30}),
    ("double_round", {"multiplier": 0, "shift": 0, "zero_point": 3}),
    ("double_round_away", {"multiplier": 1 << 30, "shift": -3, "zero_point": 5}),
    ("double_round_away", {"multiplier": INT32_MAX, "shift": -31, "lo": -128, "hi": 0}),
    ("double_round_away", {"multiplier": 1431655765, "shift": 30}),
    ("double_round_away", {"multiplier": 1 << 30, "shift": 0, "zero_point": -3}),
    ("float32", {"scale_significand": 1 << 23, "scale_exponent": -55}),  # 2**-32
    ("float32", {"scale_significand": (1 << 24) - 1, "scale_exponent": -16, "zero_point": -128}),
    ("float32", {"scale_significand": 13421773, "scale_exponent": -30, "lo": -3, "hi": 7}),
    ("float32", {"scale_significand": 1 << 23, "scale_exponent": -149}),  # the least normal
    ("float32", {"scale_significand": (1 << 24) - 1, "scale_exponent": 104}),  # the greatest
    ("float64", {"scale_significand": 1 << 52, "scale_exponent": -92}),  # 2**-40
    ("float64", {"scale_significand": (1 << 53) - 1, "scale_exponent": -45, "zero_point": -128}),
    ("float64", {"scale_significand": CARRY_SIGNIFICAND, "scale_exponent": -30, "lo": -3, "hi": 7}),
    ("float64", {"scale_significand": CARRY_SIGNIFICAND, "scale_exponent": -57}),
    ("float64", {"scale_significand": 1 << 52, "scale_exponent": -1074}),  # the least normal
    ("float64", {"scale_significand": (1 << 53) - 1, "scale_exponent": 971}),  # the greatest
]


@pytest.mark.parametrize("deepest", [False, True])
@pytest.mark.parametrize(("method", "constants"), CONSTANT_BUILDS)
def test_constant_configuration(method: str, constants: dict[str, int], deepest: bool) -> None:
    """Integer constants fold into the datapath; results must not change."""
    rng = np.random.default_rng(len(constants))
    cases = CASE_MAKERS[method](rng, 2_000)
    stages = len(requant_stage_points(method)) if deepest else 0
    requantizer = Requantizer(method, constants=constants, stages=stages)
    requantizer.check({k: v for k, v in cases.items() if k not in constants})


@pytest.mark.parametrize(
    "simulator", [pyrtl.Simulation, pyrtl.FastSimulation, pyrtl.CompiledSimulation]
)
@pytest.mark.parametrize(("method", "stages"), METHOD_EXTREMES)
def test_every_simulator(method: str, stages: int, simulator: type) -> None:
    """The products of up to 85 bits and the 64-bit intermediates simulate alike everywhere."""
    rng = np.random.default_rng(7)
    cases, ties = CASE_MAKERS[method](rng, 300), TIE_MAKERS[method](rng, 100)
    Requantizer(method, simulator=simulator, stages=stages).check(
        {name: np.concatenate([cases[name], ties[name]]) for name in cases}
    )


@pytest.mark.parametrize(("method", "stages"), METHOD_STAGES)
def test_rom_constants(method: str, stages: int) -> None:
    """Per-channel constants packed into a ROM, read by channel, feed one requantizer (a
    pipelined one samples each channel's constants with its accumulator)."""
    rng = np.random.default_rng(3)
    channels = 6
    per_channel = CASE_MAKERS[method](rng, channels)
    scale_names = SCALE_FIELDS[method]
    zero_point = int(per_channel["zero_point"][0])
    lo = np.where(np.arange(channels) % 2 == 0, zero_point, -128)
    words = pack_requant_constants(
        method=method,
        **{name: per_channel[name] for name in scale_names},
        zero_point=zero_point,
        lo=lo,
    )
    assert len(words) == channels
    assert all(0 <= w < 1 << requant_word_bits(method) for w in words)

    pyrtl.reset_working_block()
    rom = pyrtl.RomBlock(
        bitwidth=requant_word_bits(method),
        addrwidth=3,
        romdata=words,
        pad_with_zeros=True,
        asynchronous=True,
    )
    channel = pyrtl.Input(3, "channel")
    acc = pyrtl.Input(32, "acc")
    out = pyrtl.Output(8, "out")
    constants = unpack_requant_constants(rom[channel], method=method)
    out <<= make_requantize(acc, method=method, stages=stages, **constants)
    sim = pyrtl.CompiledSimulation(tracer=pyrtl.SimulationTrace([out]))

    n = 3_000
    accs = random_accs(rng, n, 32)
    which = rng.integers(0, channels, n)
    cases = {name: per_channel[name][which] for name in scale_names}
    cases |= {
        "acc": accs,
        "zero_point": np.full(n, zero_point),
        "lo": lo[which],
        "hi": np.full(n, 127),
    }
    steps = [
        {"acc": int(a) & 0xFFFFFFFF, "channel": int(c)} for a, c in zip(accs, which, strict=True)
    ]
    result = run_steps(sim, steps, latency=stages)
    np.testing.assert_array_equal(result, expected(method, cases), strict=True)


SCALE_FIELD_HELPERS = {"float32": float32_scale_fields, "float64": float64_scale_fields}


@pytest.mark.parametrize(("method", "dtype"), [("float32", np.float32), ("float64", np.float64)])
def test_scale_fields(method: str, dtype: type[np.floating]) -> None:
    """The fields give the scale back exactly (Python's exact ldexp/Fraction, not the bits)."""
    p, min_exponent, max_exponent = FLOATS[method]
    info = np.finfo(dtype)
    rng = np.random.default_rng(5)
    edges = [info.smallest_normal, 2.0**-40, np.nextafter(dtype(256), dtype(0)), 1.0, info.max]
    scales = np.concatenate(
        [np.ldexp(rng.random(1000), rng.integers(-40, 9, 1000)).astype(dtype), edges]
    ).astype(dtype)
    scales = scales[scales >= info.smallest_normal]
    significand, exponent = SCALE_FIELD_HELPERS[method](scales)
    assert significand.dtype == exponent.dtype == np.int64
    assert np.all((significand >= 1 << (p - 1)) & (significand < 1 << p))
    assert exponent.min() == min_exponent
    assert exponent.max() == max_exponent
    for scale, m, e in zip(scales.tolist(), significand.tolist(), exponent.tolist(), strict=True):
        assert Fraction(scale) == m * Fraction(2) ** e
    assert SCALE_FIELD_HELPERS[method](dtype(1.0)) == (1 << (p - 1), 1 - p)
    np.testing.assert_array_equal(
        SCALE_FIELD_HELPERS[method]([[0.5, 0.25]])[1], np.array([[-p, -p - 1]]), strict=True
    )


def test_float64_scale_fields_keeps_every_bit() -> None:
    """A float64 scale is not rounded to float32 on the way (unlike float32_scale_fields)."""
    scale = 1 / 3
    assert float64_scale_fields(scale) == (6004799503160661, -54)
    assert float32_scale_fields(scale) == (11184811, -25)


@pytest.mark.parametrize(
    ("method", "bad"),
    [
        *(("float32", bad) for bad in (0.0, -1.0, np.inf, np.nan, 1e-40)),
        *(("float64", bad) for bad in (0.0, -1.0, np.inf, np.nan, 1e-310, -(2.0**-1022))),
    ],
)
def test_scale_fields_rejects(method: str, bad: float) -> None:
    value = float(np.float32(bad) if method == "float32" else np.float64(bad))
    message = f"scales must be positive normal {method} values, not {value!r}"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        SCALE_FIELD_HELPERS[method]([1.0, bad])


def test_word_bits() -> None:
    assert requant_word_bits("single_round") == requant_word_bits("double_round") == 61
    assert requant_word_bits("double_round_away") == 61
    assert requant_word_bits("float32") == 57
    assert requant_word_bits("float32", out_bits=16) == 81
    assert requant_word_bits("float64") == 89
    assert requant_word_bits("float64", out_bits=16) == 113


def test_pack_layout() -> None:
    """Fields from the low bits: multiplier, shift, zero point, lo, hi (two's complement)."""
    (word,) = pack_requant_constants(
        method="single_round", multiplier=5, shift=-1, zero_point=-2, lo=-3, hi=4
    )
    assert word == 5 | (63 << 31) | (254 << 37) | (253 << 45) | (4 << 53)
    words = pack_requant_constants(
        method="float32", scale_significand=[1 << 23, 3 << 22], scale_exponent=-23
    )
    assert words == [
        (1 << 23) | (0x1E9 << 24) | (0x80 << 41) | (0x7F << 49),
        (3 << 22) | (0x1E9 << 24) | (0x80 << 41) | (0x7F << 49),
    ]
    (word,) = pack_requant_constants(
        method="float64", scale_significand=(1 << 53) - 1, scale_exponent=-1074, lo=0
    )
    assert word == ((1 << 53) - 1) | (0xBCE << 53) | (0x00 << 65) | (0x00 << 73) | (0x7F << 81)


# ----------------------------------------------------------------------------------------
# Errors
# ----------------------------------------------------------------------------------------


def _acc(bits: int = 32) -> pyrtl.WireVector:
    pyrtl.reset_working_block()
    return pyrtl.Input(bits, "acc")


INT = {"multiplier": 1 << 30, "shift": 0}
FLOAT = {"scale_significand": 1 << 23, "scale_exponent": -23}


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"method": "fp32"},
            "method must be one of 'single_round', 'double_round', 'double_round_away', "
            "'float32', 'float64', not 'fp32'",
        ),
        (
            {"method": "float32", **FLOAT, "out_bits": 1},
            "out_bits must be an integer from 2 to 16, not 1",
        ),
        (
            {"method": "float32", **FLOAT, "out_bits": 17},
            "out_bits must be an integer from 2 to 16, not 17",
        ),
        ({"method": "single_round", "shift": 0}, "method 'single_round' needs multiplier"),
        ({"method": "double_round", "multiplier": 1}, "method 'double_round' needs shift"),
        ({"method": "float32", **FLOAT, "shift": 0}, "method 'float32' does not use shift"),
        (
            {"method": "single_round", **INT, "scale_exponent": 0},
            "method 'single_round' does not use scale_exponent",
        ),
        ({"method": "float32", "scale_exponent": 0}, "method 'float32' needs scale_significand"),
        (
            {"method": "single_round", "multiplier": 1 << 31, "shift": 0},
            "multiplier must be an integer from 0 to 2147483647, not 2147483648",
        ),
        (
            {"method": "single_round", "multiplier": -1, "shift": 0},
            "multiplier must be an integer from 0 to 2147483647, not -1",
        ),
        (
            {"method": "double_round", "multiplier": 1, "shift": 31},
            "shift must be an integer from -31 to 30, not 31",
        ),
        (
            {"method": "double_round", "multiplier": 1, "shift": -32},
            "shift must be an integer from -31 to 30, not -32",
        ),
        (
            {"method": "float32", "scale_significand": (1 << 23) - 1, "scale_exponent": 0},
            "scale_significand must be an integer from 8388608 to 16777215, not 8388607",
        ),
        (
            {"method": "float32", "scale_significand": 1 << 23, "scale_exponent": 105},
            "scale_exponent must be an integer from -149 to 104, not 105",
        ),
        (
            {"method": "float64", "scale_significand": 1 << 53, "scale_exponent": 0},
            "scale_significand must be an integer from 4503599627370496 to 9007199254740991, "
            "not 9007199254740992",
        ),
        (
            {"method": "float64", "scale_significand": 1 << 52, "scale_exponent": -1075},
            "scale_exponent must be an integer from -1074 to 971, not -1075",
        ),
        ({"method": "float64", **INT}, "method 'float64' does not use multiplier"),
        (
            {"method": "float32", **FLOAT, "zero_point": 128},
            "zero_point must be an integer from -128 to 127, not 128",
        ),
        (
            {"method": "float32", **FLOAT, "out_bits": 4, "lo": -9},
            "lo must be an integer from -8 to 7, not -9",
        ),
        (
            {"method": "float32", **FLOAT, "hi": 128},
            "hi must be an integer from -128 to 127, not 128",
        ),
        (
            {"method": "float32", **FLOAT, "lo": 5, "hi": 4},
            "lo must not exceed hi, not lo=5 and hi=4",
        ),
    ],
)
def test_make_requantize_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        make_requantize(_acc(), **kwargs)


@pytest.mark.parametrize(("method", "most"), [("single_round", 4), ("float32", 9)])
def test_stages_errors(method: str, most: int) -> None:
    constants = INT if method == "single_round" else FLOAT
    with pytest.raises(
        ValueError, match=f"^stages must be an integer from 0 to {most}, not {most + 1}$"
    ):
        make_requantize(_acc(), method=method, **constants, stages=most + 1)
    with pytest.raises(ValueError, match=f"^stages must be an integer from 0 to {most}, not -1$"):
        make_requantize(_acc(), method=method, **constants, stages=-1)
    with pytest.raises(TypeError, match=f"^stages must be an integer from 0 to {most}, not True$"):
        make_requantize(_acc(), method=method, **constants, stages=True)


def test_make_requantize_type_errors() -> None:
    with pytest.raises(TypeError, match=r"^shift must be an integer from -31 to 30, not 1.0$"):
        make_requantize(_acc(), method="double_round", multiplier=1, shift=1.0)
    with pytest.raises(TypeError, match=r"^out_bits must be an integer from 2 to 16, not '8'$"):
        make_requantize(_acc(), method="float32", **FLOAT, out_bits="8")


def test_make_requantize_wire_errors() -> None:
    with pytest.raises(
        ValueError,
        match=r"^acc must be at most 32 bits wide, not 33 "
        r"\(narrow it first, e\.g\. with make_saturate\)$",
    ):
        make_requantize(_acc(33), method="single_round", **INT)
    with pytest.raises(TypeError, match=r"^acc must be a WireVector, not int$"):
        make_requantize(5, method="single_round", **INT)
    acc = _acc()
    with pytest.raises(ValueError, match=r"^multiplier wire must be at most 31 bits wide, not 32$"):
        make_requantize(acc, method="single_round", multiplier=pyrtl.Input(32, "m"), shift=0)
    with pytest.raises(
        ValueError, match=r"^scale_exponent wire must be at most 9 bits wide, not 10$"
    ):
        make_requantize(
            acc, method="float32", scale_significand=1 << 23, scale_exponent=pyrtl.Input(10, "e")
        )
    with pytest.raises(
        ValueError, match=r"^scale_significand wire must be at most 53 bits wide, not 54$"
    ):
        make_requantize(
            acc, method="float64", scale_significand=pyrtl.Input(54, "s"), scale_exponent=-52
        )
    with pytest.raises(ValueError, match=r"^zero_point wire must be at most 4 bits wide, not 8$"):
        make_requantize(acc, method="float32", **FLOAT, out_bits=4, zero_point=pyrtl.Input(8, "z"))


def test_pack_errors() -> None:
    with pytest.raises(ValueError, match=r"^method 'float32' needs scale_exponent$"):
        pack_requant_constants(method="float32", scale_significand=[1 << 23])
    with pytest.raises(ValueError, match=r"^shift must be an integer from -31 to 30, not 31$"):
        pack_requant_constants(method="single_round", multiplier=[1, 2], shift=[0, 31])
    with pytest.raises(
        ValueError, match=r"^lo must not exceed hi, not lo=3 and hi=2 \(channel 1\)$"
    ):
        pack_requant_constants(method="single_round", multiplier=[1, 2], shift=0, lo=3, hi=[5, 2])
    with pytest.raises(
        ValueError,
        match=r"^the constants' shapes do not broadcast together: "
        r"\(2,\), \(3,\), \(\), \(\), \(\)$",
    ):
        pack_requant_constants(method="single_round", multiplier=[1, 2], shift=[0, 0, 0])
    with pytest.raises(ValueError, match=r"^multiplier must be a scalar or 1-D, not 2-D$"):
        pack_requant_constants(method="single_round", multiplier=[[1, 2]], shift=0)
    with pytest.raises(
        TypeError, match=r"^multiplier must be an integer from 0 to 2147483647, not 1.5$"
    ):
        pack_requant_constants(method="single_round", multiplier=[1.5], shift=0)
    pyrtl.reset_working_block()
    with pytest.raises(
        ValueError, match=r"^word must be a 57-bit WireVector for method 'float32', not 61$"
    ):
        unpack_requant_constants(pyrtl.Input(61, "w"), method="float32")
    with pytest.raises(
        ValueError, match=r"^word must be a 89-bit WireVector for method 'float64', not 57$"
    ):
        unpack_requant_constants(pyrtl.Input(57, "w"), method="float64")


def _significant_bits(wire: pyrtl.WireVector, producers: dict) -> int:
    """The width of ``wire`` without the constant zeros a zero extension put on top."""
    net = producers.get(wire)
    top = None if net is None or net.op != "c" else net.args[0]
    if isinstance(top, pyrtl.Const) and top.val == 0:
        return len(wire) - len(top)
    return len(wire)


@pytest.mark.parametrize(
    ("method", "operands"),
    [
        ("single_round", (24, 31)),  # the accumulator times the Q31 multiplier
        ("double_round", (32, 31)),  # the int32 shifted accumulator times the multiplier
        ("double_round_away", (32, 31)),
        ("float32", (24, 24)),  # the rounded 24-bit significand of |acc| times the scale's
        ("float64", (32, 53)),  # |acc| (exact in float64) times the 53-bit significand
    ],
)
@pytest.mark.parametrize("pipelined", [False, True])
def test_one_multiplier_at_the_operands_widths(method, operands, pipelined):
    # No sign extension reaches a multiplier: each multiplies unsigned operands of their
    # real width, so yosys sizes its DSPs by them, not by the product's width (nor does a
    # pipeline register widen them: every cut before "partial", which splits the multiplier).
    stages = requant_stage_points(method).index("partial") if pipelined else 0
    assert _multiplies(method, stages) == [tuple(sorted(operands))]


@pytest.mark.parametrize(
    ("method", "operands"),
    [("single_round", (24, 31)), ("double_round", (32, 31)), ("float32", (24, 24))],
)
def test_partial_cut_splits_into_dsp_pieces(method, operands):
    """With every cut, each multiplier is one 17x17 piece (an 18x18 signed DSP block)."""
    pieces = [[min(17, bits - low) for low in range(0, bits, 17)] for bits in operands]
    expected = sorted(tuple(sorted((a, b))) for a in pieces[0] for b in pieces[1])
    assert sorted(_multiplies(method, len(requant_stage_points(method)))) == expected


def _multiplies(method: str, stages: int) -> list[tuple[int, int]]:
    """The operand widths of every multiplier of a requantizer of a 24-bit accumulator."""
    pyrtl.reset_working_block()
    constants = {name: pyrtl.Input(bits, name) for name, bits in SCALE_FIELDS[method].items()}
    make_requantize(pyrtl.Input(24, "acc"), method=method, stages=stages, **constants)
    block = pyrtl.working_block()
    producers = {dest: net for net in block.logic for dest in net.dests}
    return [
        tuple(sorted(_significant_bits(arg, producers) for arg in net.args))
        for net in block.logic
        if net.op == "*"
    ]


def test_stage_points() -> None:
    assert requant_stage_points("single_round") == ("product", "shifted", "partial", "offset")
    integer = ("product", "shifted", "operand", "high", "partial", "offset")
    assert requant_stage_points("double_round") == integer
    assert requant_stage_points("double_round_away") == integer
    floats = ("product", "significand", "shifted", "rounded", "normalized", "magnitude")
    assert (
        requant_stage_points("float32")
        == requant_stage_points("float64")
        == (
            *floats,
            *("partial", "coarse", "offset"),
        )
    )
    with pytest.raises(ValueError, match=r"^method must be one of .*, not 'fp32'$"):
        requant_stage_points("fp32")


@pytest.mark.parametrize(("method", "stages"), METHOD_STAGES)
def test_latency_is_stages(method: str, stages: int) -> None:
    """Inputs applied in step ``t`` give their result in step ``t + stages``, not before."""
    rng = np.random.default_rng(12)
    cases = CASE_MAKERS[method](rng, 200)
    want = expected(method, cases)
    first, second = 0, int(np.flatnonzero(want != want[0])[0])
    held = {name: np.repeat(column[[first, second]], stages + 1) for name, column in cases.items()}
    out = requantizer(method, stages).run(held, latency=0)  # each step's output as it is
    # The second inputs arrive in step stages + 1.
    assert out[stages] == out[2 * stages] == want[first]
    assert out[2 * stages + 1] == want[second]
