"""Requantization: scale a signed accumulator down to a narrow integer, exactly as integer
kernels do it, in five variants.

Each variant computes ``clamp(round(acc * scale) + zero_point, lo, hi)`` but rounds the way a
particular, widely deployed integer kernel rounds, bit for bit:

``"single_round"``
    ``(acc * multiplier + 2**(t-1)) >> t`` with ``t = 31 - shift``: one rounding of the exact
    product, ties toward +inf (the multiplier form of ``scale = multiplier * 2**(shift-31)``).
``"double_round"``
    gemmlowp's two-step form: ``h = SaturatingRoundingDoublingHighMul(acc << max(shift, 0),
    multiplier)``, i.e. ``floor(a * multiplier / 2**31 + 1/2)`` on the int32 ``a``, then a
    rounding right shift of ``h`` by ``max(-shift, 0)`` with ties toward +inf.
``"double_round_away"``
    the same, except that the final rounding shift sends ties away from zero (gemmlowp's
    ``RoundingDivideByPOT``), as LiteRT's depthwise kernels and reference convolutions do.
``"float32"``
    ``rint(float32(acc) * s)`` for a float32 scale ``s`` (round to nearest even at each of
    the three steps), built from integer parts only: no floating-point unit.
``"float64"``
    ``round(float64(acc) * s)`` for a float64 scale ``s``: the product rounded to nearest
    even in float64, then to an integer with ties away from zero (C's ``round``). Same
    datapath as ``"float32"`` with a 53-bit significand (``float64(acc)`` is exact).

All five are combinational by default; ``stages=k`` registers the datapath at its first ``k``
cut points (:func:`requant_stage_points`), for a latency of exactly ``k`` cycles and a shorter
critical path. Each configuration constant may be a Python integer (built as a constant, the
cheapest form) or a wire, so that one requantizer can serve many channels by reading their
constants from a ROM (:func:`pack_requant_constants` and :func:`unpack_requant_constants`).
"""

from typing import Final, NamedTuple

import numpy as np
import numpy.typing as npt
import pyrtl

from ._elementwise import make_add, make_clamp, make_saturate
from ._validate import int_in_range, signed_range

__all__ = [
    "REQUANT_METHODS",
    "float32_scale_fields",
    "float64_scale_fields",
    "make_requantize",
    "pack_requant_constants",
    "requant_stage_points",
    "requant_word_bits",
    "unpack_requant_constants",
]

REQUANT_METHODS: Final = (
    "single_round",
    "double_round",
    "double_round_away",
    "float32",
    "float64",
)

MAX_ACC_BITS: Final = 32

#: The cut points of each method's datapath, in the order ``stages`` enables them (see
#: :func:`requant_stage_points`).
_FLOAT_POINTS: Final = (
    "product",
    "significand",
    "shifted",
    "rounded",
    "normalized",
    "magnitude",
    "partial",
    "coarse",
    "offset",
)
_STAGE_POINTS: Final = {
    "single_round": ("product", "shifted", "partial", "offset"),
    "double_round": ("product", "shifted", "operand", "high", "partial", "offset"),
    "double_round_away": ("product", "shifted", "operand", "high", "partial", "offset"),
    "float32": _FLOAT_POINTS,
    "float64": _FLOAT_POINTS,
}

_Value = pyrtl.WireVector | int


class _Pipeline:
    """The registers of one requantizer: at the enabled cut points, and the delays that bring
    a value computed before the first cut (the accumulator, a constant) to where it is used.

    Python integers and constant wires pass every cut unchanged: they need no register.
    """

    def __init__(self, enabled: tuple[str, ...]) -> None:
        self.enabled = frozenset(enabled)
        self.depth = 0  # registers passed so far
        self._delays: dict[int, list[pyrtl.WireVector]] = {}

    def cut(self, point: str, *values: _Value) -> tuple[_Value, ...]:
        """``values`` one register later if ``point`` is enabled, else unchanged.

        Every value crossing ``point`` that is used after it must go through here, except
        values from before the first cut, which :meth:`late` delays.
        """
        if point not in self.enabled:
            return values
        self.depth += 1
        return tuple(_registered(value) for value in values)

    def late(self, value: _Value) -> _Value:
        """A value from before the first cut, delayed by every register passed so far (one
        chain per value, shared by its uses)."""
        if isinstance(value, int | pyrtl.Const):
            return value
        chain = self._delays.setdefault(id(value), [value])
        while len(chain) <= self.depth:
            chain.append(_registered(chain[-1]))
        return chain[self.depth]


def _registered(value: _Value) -> _Value:
    if isinstance(value, int | pyrtl.Const):
        return value
    register = pyrtl.Register(len(value))
    register.next <<= value
    return register


class _Float(NamedTuple):
    """A binary floating-point format a float method computes in, and its final rounding."""

    #: Significand bits p, hidden bit included: a positive normal value is
    #: ``significand * 2**exponent`` with ``2**(p-1) <= significand < 2**p``.
    significand_bits: int
    #: The exponent of the least and of the greatest positive normal value in that form.
    min_exponent: int
    max_exponent: int
    #: The exponent field's width (two's complement).
    exponent_bits: int
    #: The final rounding to an integer: ties away from zero, else ties to even.
    ties_away: bool
    #: Whether a positive value outside int32 also takes the int32 conversion (x86 gives
    #: INT32_MIN) and the int32 zero-point addition (it wraps); negative ones always do.
    #: XNNPACK clamps positive values in float first, the reference kernels do not.
    wraps_positive: bool


_FLOATS: Final = {
    "float32": _Float(24, -149, 104, 9, ties_away=False, wraps_positive=False),  # XNNPACK: rint
    "float64": _Float(53, -1074, 971, 12, ties_away=True, wraps_positive=True),  # reference
}


class _Field(NamedTuple):
    """One configuration constant: its range, and its width as a wire or in a ROM word
    (two's complement where ``lo < 0``)."""

    name: str
    lo: int
    hi: int
    bits: int


def _fields(method: str, out_bits: int) -> tuple[_Field, ...]:
    """The constants ``method`` takes, in ROM word order (first field in the low bits)."""
    if method in _FLOATS:
        fmt = _FLOATS[method]
        p = fmt.significand_bits
        scale = (
            _Field("scale_significand", 2 ** (p - 1), 2**p - 1, p),
            _Field("scale_exponent", fmt.min_exponent, fmt.max_exponent, fmt.exponent_bits),
        )
    else:
        scale = (_Field("multiplier", 0, 2**31 - 1, 31), _Field("shift", -31, 30, 6))
    low, high = signed_range(out_bits)
    return (
        *scale,
        _Field("zero_point", low, high, out_bits),
        _Field("lo", low, high, out_bits),
        _Field("hi", low, high, out_bits),
    )


def _check_config(method: object, out_bits: object) -> None:
    if method not in REQUANT_METHODS:
        names = ", ".join(repr(name) for name in REQUANT_METHODS)
        raise ValueError(f"method must be one of {names}, not {method!r}")
    int_in_range("out_bits", out_bits, 2, 16)


def _check_presence(method: str, given: dict[str, object]) -> None:
    """Every scale constant ``method`` needs is given, and none it does not use."""
    needed = {field.name for field in _fields(method, 8)[:2]}
    for name, value in given.items():
        if name in needed and value is None:
            raise ValueError(f"method {method!r} needs {name}")
        if name not in needed and value is not None:
            raise ValueError(f"method {method!r} does not use {name}")


def _constant_wire(field: _Field, value: pyrtl.WireVector | int) -> pyrtl.WireVector | int:
    """Check one constant; integers stay integers (so the datapath can fold them)."""
    if isinstance(value, pyrtl.WireVector):
        if len(value) > field.bits:
            raise ValueError(
                f"{field.name} wire must be at most {field.bits} bits wide, not {len(value)}"
            )
        return value
    return int_in_range(field.name, value, field.lo, field.hi)


def _signed_wire(value: pyrtl.WireVector | int, bits: int) -> pyrtl.WireVector:
    """A signed constant or wire as a ``bits``-bit two's complement wire."""
    if isinstance(value, int):
        return pyrtl.Const(value, bitwidth=bits, signed=True)
    return value.sign_extended(bits)


def _unsigned_wire(value: pyrtl.WireVector | int, bits: int) -> pyrtl.WireVector:
    if isinstance(value, int):
        return pyrtl.Const(value, bitwidth=bits)
    return value.zero_extended(bits)


def _rounding_shift(x: pyrtl.WireVector, amount: pyrtl.WireVector | int) -> pyrtl.WireVector:
    """``floor(x / 2**amount + 1/2)`` for signed ``x`` and ``amount >= 0``.

    Appending one fraction bit turns it into ``floor((2x >> amount) + 1) / 2``, which is
    exact for every ``amount`` including 0 and needs no adder of a variable rounding constant.
    """
    doubled = pyrtl.concat(x, pyrtl.Const(0, bitwidth=1))
    shifted = pyrtl.shift_right_arithmetic(doubled, amount)
    return (shifted.zero_extended(len(shifted) + 1) + 1).truncate(len(shifted))[1:]


#: The widest unsigned operands of one DSP multiplier: an 18x18 signed multiplier (ECP5's
#: MULT18X18D) multiplies 17-bit unsigned values. The ``"partial"`` cut splits a multiplier
#: into such pieces so that each is one DSP block with a register behind it.
_DSP_BITS: Final = 17


def _product(
    x: pyrtl.WireVector, u: pyrtl.WireVector, pipe: _Pipeline, *live: _Value
) -> tuple[_Value, ...]:
    """``(x * u, *live)`` for unsigned ``x`` and ``u``: the product is ``len(x) + len(u)``
    bits, ``live`` are the values that cross the multiplier with it.

    One multiplier, unless the ``"partial"`` cut is enabled: then the product is the sum of
    the partial products of ``_DSP_BITS``-bit pieces of ``x`` and ``u``, registered at that
    cut (with ``live``) before the adder tree that sums them, so that no carry chain follows
    a DSP block in the same cycle.
    """
    width = len(x) + len(u)
    if "partial" not in pipe.enabled:
        return ((x * u).truncate(width), *live)
    x_pieces = [(x[i : i + _DSP_BITS], i) for i in range(0, len(x), _DSP_BITS)]
    u_pieces = [(u[j : j + _DSP_BITS], j) for j in range(0, len(u), _DSP_BITS)]
    pieces = [((a * b).truncate(len(a) + len(b)), i + j) for a, i in x_pieces for b, j in u_pieces]
    registered = pipe.cut("partial", *(piece for piece, _ in pieces), *live)
    terms = [
        pyrtl.concat(piece, pyrtl.Const(0, bitwidth=offset)) if offset else piece
        for piece, (_, offset) in zip(registered[: len(pieces)], pieces, strict=True)
    ]
    while len(terms) > 1:  # a balanced adder tree
        pairs = [(terms[i] + terms[i + 1]) for i in range(0, len(terms) - 1, 2)]
        terms = pairs + terms[len(pairs) * 2 :]
    total = terms[0]  # exact: below 2**width, whatever carries the adders kept
    total = total.truncate(width) if len(total) >= width else total.zero_extended(width)
    return (total, *registered[len(pieces) :])


def _signed_times_unsigned(
    x: pyrtl.WireVector, u: pyrtl.WireVector, pipe: _Pipeline
) -> pyrtl.WireVector:
    """The exact product of a signed ``x`` and an unsigned ``u``, ``len(x) + len(u)`` bits.

    The multiplier is ``len(x) x len(u)`` unsigned, the operands' real widths (24x31 for a
    24-bit accumulator and a Q31 multiplier), not the product's width: read as
    unsigned, a negative ``x`` is ``x + 2**len(x)``, so ``x * u`` is that unsigned product
    minus ``u * 2**len(x)``, one subtraction of ``u`` from the product's top ``len(u)`` bits.
    The ``"product"`` cut registers the unsigned product, before that subtraction.
    """
    n, w = len(x), len(u)
    correction = pyrtl.select(x[-1], u, pyrtl.Const(0, bitwidth=w))
    unsigned, correction = _product(x, u, pipe, correction)
    unsigned, correction = pipe.cut("product", unsigned, correction)
    top = unsigned[n:].zero_extended(w + 1) - correction.zero_extended(w + 1)
    return pyrtl.concat(top.truncate(w), unsigned[:n])


def _single_round(
    acc: pyrtl.WireVector,
    multiplier: pyrtl.WireVector | int,
    shift: pyrtl.WireVector | int,
    pipe: _Pipeline,
) -> pyrtl.WireVector:
    if isinstance(shift, int):
        total_shift: pyrtl.WireVector | int = 31 - shift
    else:
        total_shift = (pyrtl.Const(31, bitwidth=8) - shift.sign_extended(8)).truncate(6)
    # acc * multiplier with multiplier >= 0: len(acc) + 31 bits, signed.
    product = _signed_times_unsigned(acc, _unsigned_wire(multiplier, 31), pipe)
    return _rounding_shift(product, pipe.late(total_shift))


def _double_round(
    acc: pyrtl.WireVector,
    multiplier: pyrtl.WireVector | int,
    shift: pyrtl.WireVector | int,
    pipe: _Pipeline,
    *,
    ties_away: bool,
) -> pyrtl.WireVector:
    left: pyrtl.WireVector | int
    right: pyrtl.WireVector | int
    if isinstance(shift, int):
        left, right = max(shift, 0), max(-shift, 0)
    else:
        shift = shift.sign_extended(8)
        negative = shift[-1]
        left = pyrtl.select(negative, pyrtl.Const(0, bitwidth=5), shift.truncate(5))
        negated = (pyrtl.Const(0, bitwidth=8) - shift).truncate(6)
        right = pyrtl.select(negative, negated, pyrtl.Const(0, bitwidth=6))
    # The int32 left shift wraps like the kernels' int32 arithmetic.
    a = acc.sign_extended(32)
    if not isinstance(left, int):
        a = pyrtl.shift_left_logical(a, left)
    elif left > 0:
        a = pyrtl.concat(a[: 32 - left], pyrtl.Const(0, bitwidth=left))
    (a,) = pipe.cut("operand", a)
    # SaturatingRoundingDoublingHighMul(a, m) = floor((a * m + 2**30) / 2**31) exactly; its
    # saturating case (a = m = -2**31) cannot arise because the multiplier is non-negative.
    product = _signed_times_unsigned(a, pipe.late(_unsigned_wire(multiplier, 31)), pipe)
    nudged = (product.sign_extended(64) + (1 << 30)).truncate(64)
    (high,) = pipe.cut("high", nudged[31:63])
    right = pipe.late(right)
    if ties_away:
        high = _toward_zero_on_ties(high, right)
    return _rounding_shift(high, right)


def _toward_zero_on_ties(x: pyrtl.WireVector, amount: pyrtl.WireVector | int) -> pyrtl.WireVector:
    """``x - 1`` where ``x < 0`` and ``amount >= 1``, else ``x``: turns the ties-up
    :func:`_rounding_shift` into gemmlowp's ``RoundingDivideByPOT`` (ties away from zero).

    For ``x < 0`` and ``n >= 1``, ``floor((x - 1) / 2**n + 1/2)`` is ``round(x / 2**n)`` with
    ties away: ``x / 2**n - 1/2`` is a multiple of ``2**-n``, and for such a ``y``,
    ``ceil(y) = floor(y + 1 - 2**-n)``. With ``n = 0`` there is nothing to round: ``x`` stays.
    The decrement cannot wrap: the doubling high multiply of a non-negative multiplier
    below ``2**31`` is at least ``-2**31 + 1``.
    """
    if isinstance(amount, int):
        if amount == 0:
            return x
        borrow = x[-1]
    else:
        borrow = x[-1] & (amount != 0)
    return (x - borrow.zero_extended(len(x))).truncate(len(x))


def _normalize(
    x: pyrtl.WireVector, pipe: _Pipeline, *live: _Value
) -> tuple[pyrtl.WireVector, pyrtl.WireVector, *tuple[_Value, ...]]:
    """Shift a 32-bit unsigned ``x`` left until bit 31 is set: ``(x << lz, lz, *live)``.

    Five stages test whether the top 16, 8, 4, 2, 1 bits are zero and shift by that much if
    so; the five decisions are the bits of the leading-zero count ``lz`` (31 for ``x == 0``).
    The ``"coarse"`` cut registers the value after the first two (``live`` crosses it too).
    """
    decisions: list[_Value] = []
    for step in (16, 8, 4, 2, 1):
        if step == 4:
            x, *carried = pipe.cut("coarse", x, *decisions, *live)
            decisions, live = carried[:2], tuple(carried[2:])
        zero = x[32 - step :] == 0
        x = pyrtl.select(zero, pyrtl.concat(x[: 32 - step], pyrtl.Const(0, bitwidth=step)), x)
        decisions.append(zero)
    return (x, pyrtl.concat(*decisions), *live)


def _shift_right_sticky(
    x: pyrtl.WireVector, amount: pyrtl.WireVector
) -> tuple[pyrtl.WireVector, pyrtl.WireVector]:
    """``(x >> amount, whether any 1 bit was shifted out)`` for unsigned ``x``."""
    sticky = pyrtl.Const(0, bitwidth=1)
    for i in range(len(amount)):
        step = 1 << i
        if step >= len(x):
            lost, moved = x != 0, pyrtl.Const(0, bitwidth=len(x))
        else:
            lost, moved = x[:step] != 0, x[step:].zero_extended(len(x))
        sticky = sticky | (amount[i] & lost)
        x = pyrtl.select(amount[i], moved, x)
    return x, sticky


def _round_bits(
    x: pyrtl.WireVector, low: int, bits: int
) -> tuple[pyrtl.WireVector, pyrtl.WireVector, pyrtl.WireVector]:
    """Split ``x`` for rounding ``x[low:low+bits]`` by the bits below ``low``.

    :returns: ``(kept, guard, sticky)``; see :func:`_round_increment`.
    """
    return x[low : low + bits], x[low - 1], x[: low - 1] != 0


def _round_increment(
    kept: pyrtl.WireVector, guard: pyrtl.WireVector, sticky: pyrtl.WireVector, *, ties_away: bool
) -> pyrtl.WireVector:
    """``kept`` rounded to nearest by the dropped bits (their top bit ``guard``, the OR of the
    rest ``sticky``): up above one half; at exactly one half away from zero (``kept`` is a
    magnitude) or to even. One bit wider than ``kept``."""
    up = guard if ties_away else guard & (sticky | kept[0])
    return kept + up


def _float_scale(
    acc: pyrtl.WireVector,
    significand: pyrtl.WireVector | int,
    exponent: pyrtl.WireVector | int,
    zero_point: pyrtl.WireVector | int,
    out_bits: int,
    fmt: _Float,
    pipe: _Pipeline,
) -> pyrtl.WireVector:
    """``round(fl(fl(acc) * significand * 2**exponent))`` saturated to ``out_bits + 2`` bits.

    ``fl`` rounds to ``fmt``'s p-bit significand, nearest even (exponent range unbounded:
    subnormal or infinite products cannot change the result); ``round`` goes to the nearest
    integer with ``fmt``'s ties. Only magnitudes below ``2**out_bits`` need to be exact:
    anything larger saturates, and after adding a zero point and clamping to ``out_bits``
    bits gives the same result.

    Except where the kernels' int32 arithmetic leaves int32: a rounded value ``y`` outside
    int32 converts to INT32_MIN (x86), and ``y + zero_point`` wraps. Both turn a value of
    the zero point's sign (zero counting as positive) past the limit into one of the other
    sign: the saturated result's sign flips. Exactly when ``y >= 2**31 - zero_point`` for
    ``y > 0`` and ``y <= -2**31 - zero_point - 1`` for ``y < 0``; positive ``y`` only if
    ``fmt.wraps_positive``.
    """
    p = fmt.significand_bits
    negative = acc[-1]
    # 0 - acc rather than ~acc + 1: the same bits, and Verilog lint sees no width mismatch.
    negated_acc = (pyrtl.Const(0, bitwidth=len(acc)) - acc).truncate(len(acc))
    magnitude = pyrtl.select(negative, negated_acc, acc).zero_extended(32)
    acc_zero = acc == 0
    magnitude, negative, acc_zero = pipe.cut("magnitude", magnitude, negative, acc_zero)
    normalized, lz, negative, acc_zero = _normalize(magnitude, pipe, negative, acc_zero)
    normalized, lz, negative, acc_zero = pipe.cut("normalized", normalized, lz, negative, acc_zero)
    if p < 32:
        # fl(|acc|) = a * 2**(32 - p - lz + carry_a): round the normalized value to p bits.
        a_rounded = _round_increment(*_round_bits(normalized, 32 - p, p), ties_away=False)
        carry_a = a_rounded[p]
        # On carry the value is exactly 2**p = 2**(p-1) * 2: renormalize to keep p bits.
        a = pyrtl.concat(a_rounded[p - 1] | carry_a, a_rounded[: p - 1])
    else:
        a, carry_a = normalized, pyrtl.Const(0, bitwidth=1)  # fl(|acc|) = |acc| exactly
    a, lz, carry_a, negative, acc_zero = pipe.cut("significand", a, lz, carry_a, negative, acc_zero)
    # The exact product of the two normalized significands, len(a) + p bits with one of the
    # top two set (PyRTL's product is 2 * max(len(a), p) bits wide): round it to p bits at one
    # of two positions, b * 2**(len(a) - 1 + top).
    product, lz, carry_a, negative, acc_zero = _product(
        a, pipe.late(_unsigned_wire(significand, p)), pipe, lz, carry_a, negative, acc_zero
    )
    product, lz, carry_a, negative, acc_zero = pipe.cut(
        "product", product, lz, carry_a, negative, acc_zero
    )
    top = product[-1]
    rounding = [_round_bits(product, len(a) - 1 + t, p) for t in (1, 0)]
    kept, guard, sticky = (pyrtl.select(top, hi, lo) for hi, lo in zip(*rounding, strict=True))
    b = _round_increment(kept, guard, sticky, ties_away=False)  # 2**p is exact: no renormalizing
    # The rounded product is b * 2**-r with r = lz - carry_a - top - exponent - 31. With b in
    # [2**(p-1), 2**p]: r < first saturates (|x| >= 2**out_bits), r > p + 1 rounds to 0
    # (|x| <= 2**-2; at r = p + 1 the tie b = 2**p needs the shifter), and the out_bits + 2
    # positions between need a rounding shifter. d = r - first.
    first = p - out_bits
    d_bits = fmt.exponent_bits + 1
    if isinstance(exponent, int):
        offset = pyrtl.Const(-exponent - 31 - first, bitwidth=d_bits, signed=True)
    else:
        offset = (
            pyrtl.Const(-31 - first, bitwidth=d_bits, signed=True) - exponent.sign_extended(d_bits)
        ).truncate(d_bits)
    d = (lz.zero_extended(d_bits) + pipe.late(offset)).truncate(d_bits)
    d = (d - carry_a.zero_extended(d_bits)).truncate(d_bits)
    d = (d - top.zero_extended(d_bits)).truncate(d_bits)
    b, d, negative, acc_zero = pipe.cut("rounded", b, d, negative, acc_zero)
    saturated = d[-1]
    underflow = pyrtl.signed_lt(pyrtl.Const(out_bits + 1, bitwidth=d_bits, signed=True), d)
    # Shift b >> first - 1 statically, the remaining d with a sticky bit; the last bit
    # shifted is the guard of the final rounding.
    coarse, fine_sticky = _shift_right_sticky(b[first - 1 :], d.truncate(5))
    sticky = (b[: first - 1] != 0) | fine_sticky
    rounded = _round_increment(coarse[1:], coarse[0], sticky, ties_away=fmt.ties_away)
    rounded = rounded.truncate(out_bits + 1)  # enough where not saturated (the only use)
    zero = underflow | acc_zero
    flip = _int32_flip(negative, b, d, pipe.late(zero_point), out_bits, fmt)
    rounded, zero, saturated, negative, flip = pipe.cut(
        "shifted", rounded, zero, saturated, negative, flip
    )
    magnitude_out = pyrtl.select(
        zero,
        pyrtl.Const(0, bitwidth=out_bits + 1),
        pyrtl.select(
            saturated,
            pyrtl.Const(1 << out_bits, bitwidth=out_bits + 1),
            rounded,
        ),
    ).zero_extended(out_bits + 2)
    negated = (pyrtl.Const(0, bitwidth=out_bits + 2) - magnitude_out).truncate(out_bits + 2)
    return pyrtl.select(negative ^ flip, negated, magnitude_out)


def _int32_flip(
    negative: pyrtl.WireVector,
    b: pyrtl.WireVector,
    d: pyrtl.WireVector,
    zero_point: pyrtl.WireVector | int,
    out_bits: int,
    fmt: _Float,
) -> pyrtl.WireVector:
    """Whether the int32 conversion or zero-point addition flips the sign (see
    :func:`_float_scale`), from the rounded product ``b * 2**-r``, ``d = r - (p - out_bits)``.

    With ``b`` in ``[2**(p-1), 2**p]``: ``r <= p - 32`` puts ``|x| >= 2**31`` (always past the
    limit), ``r >= p - 30`` below ``2**30`` (never, as ``|zero_point| < 2**15``); at
    ``r = p - 31`` the rounded magnitude ``m`` (32 bits) decides: ``m + z' >= 2**31`` with
    ``z' = zero_point`` if it is non-negative, else ``~zero_point = |zero_point| - 1``.
    """
    p = fmt.significand_bits
    z = _signed_wire(zero_point, out_bits)
    z_negative = z[-1]
    adjusted = pyrtl.select(z_negative, ~z, z).zero_extended(32)
    if p > 31:  # round b * 2**(31 - p) to an integer, ties away (exact ties of float64)
        half = pyrtl.Const(1 << (p - 32), bitwidth=p + 1)
        m = (b + half).truncate(p + 1)[p - 31 :].zero_extended(32)
    else:  # already an integer
        m = pyrtl.concat(b, pyrtl.Const(0, bitwidth=31 - p)).truncate(32)
    edge = (m + adjusted)[31]
    limit = pyrtl.Const(out_bits - 31, bitwidth=len(d), signed=True)
    past = pyrtl.signed_lt(d, limit) | ((d == limit) & edge)
    same_sign = pyrtl.select(
        negative, z_negative, ~z_negative & pyrtl.Const(int(fmt.wraps_positive), bitwidth=1)
    )
    return past & same_sign


def make_requantize(
    acc: pyrtl.WireVector,
    *,
    method: str,
    multiplier: pyrtl.WireVector | int | None = None,
    shift: pyrtl.WireVector | int | None = None,
    scale_significand: pyrtl.WireVector | int | None = None,
    scale_exponent: pyrtl.WireVector | int | None = None,
    zero_point: pyrtl.WireVector | int = 0,
    lo: pyrtl.WireVector | int | None = None,
    hi: pyrtl.WireVector | int | None = None,
    out_bits: int = 8,
    stages: int = 0,
) -> pyrtl.WireVector:
    """Requantize a signed accumulator: scale, round, add ``zero_point``, clamp to ``[lo, hi]``.

    Combinational with ``stages=0``; ``stages=k`` registers the datapath at the first ``k``
    of :func:`requant_stage_points` ``(method)``, so the result of the ``acc`` and constants
    seen in cycle ``t`` appears in cycle ``t + k`` (latency ``k`` cycles, one result per
    cycle). Only data is pipelined: a caller delays its own valid flag and write address by
    ``k`` registers to match. Constant wires are sampled with ``acc``, in the same cycle, and
    carried along where a later stage needs them; the result is bit for bit the same for
    every ``k``. With ``stages=2`` and ``"float32"`` (the ``"product"`` and ``"significand"``
    cuts)::

        cycle:          t                  t + 1                    t + 2
        acc, consts ──► |acc|, normalize,  24x24 multiply  ──reg──► round, shift, + zero
                        round to 24 bits ──reg──►                   point, clamp ──► result

    The scale is ``multiplier * 2**(shift - 31)`` for the three integer methods and
    ``scale_significand * 2**scale_exponent`` for the float methods (a float32 value, see
    :func:`float32_scale_fields`, or a float64 value, see :func:`float64_scale_fields`).
    ``"single_round"`` rounds the exact product once, ties up; ``"double_round"`` rounds
    twice as gemmlowp does (``"double_round_away"`` with the second rounding's ties away
    from zero); ``"float32"`` computes ``rint(fl32(fl32(acc) * scale))`` with
    float32 rounding ``fl32`` and ties to even; ``"float64"`` computes
    ``round(fl64(acc * scale))`` with float64 rounding ``fl64`` and ties away from zero
    (the requantization page of the docs gives the exact formulas and the datapath).
    Where a C kernel's int32 arithmetic leaves int32, the result is the kernel's on x86, not
    the exact formula: the double rounding methods' left shift and zero-point addition wrap; the
    float methods convert a rounded value outside int32 to INT32_MIN, as x86's conversion
    instructions do, and add the zero point in int32, wrapping (``"float32"`` only below
    ``-2**31``: XNNPACK clamps larger values first); ``"single_round"`` is exact.

    Every constant may be a Python integer or a wire holding it: unsigned for the multiplier
    and significand, two's complement for the others, at most as wide as given below (the
    widths :func:`pack_requant_constants` packs). Integer constants are range-checked here; a
    wire's value must be in the same range at run time, or the result is unspecified.

    :param acc: the signed accumulator, 1 to 32 bits. Narrow a wider one first, e.g. with
        :func:`make_saturate` (``bits=32``), after checking that its range allows it.
    :param method: ``"single_round"``, ``"double_round"``, ``"double_round_away"``,
        ``"float32"`` or ``"float64"``.
    :param multiplier: integer methods: the multiplier, 0 to ``2**31 - 1`` (31 bits unsigned).
    :param shift: integer methods: the power-of-two exponent, -31 to 30 (6 bits signed).
    :param scale_significand: float methods: the significand, hidden bit included:
        ``"float32"`` ``2**23`` to ``2**24 - 1`` (24 bits unsigned), ``"float64"``
        ``2**52`` to ``2**53 - 1`` (53 bits unsigned).
    :param scale_exponent: float methods: the exponent, ``"float32"`` -149 to 104 (9 bits
        signed), ``"float64"`` -1074 to 971 (12 bits signed): every positive normal scale.
    :param zero_point: added after rounding; an ``out_bits``-bit signed value.
    :param lo: the clamp's lower end (default the most negative ``out_bits``-bit value).
    :param hi: the clamp's upper end (default the most positive ``out_bits``-bit value).
    :param out_bits: the result's bitwidth, 2 to 16.
    :param stages: registers in the datapath, 0 to ``len(requant_stage_points(method))``:
        the latency in cycles.
    :returns: the requantized value, an ``out_bits``-bit two's complement wire.
    """
    _check_config(method, out_bits)
    points = _STAGE_POINTS[method]
    stages = int_in_range("stages", stages, 0, len(points))
    if not isinstance(acc, pyrtl.WireVector):
        raise TypeError(f"acc must be a WireVector, not {type(acc).__name__}")
    if len(acc) > MAX_ACC_BITS:
        raise ValueError(
            f"acc must be at most {MAX_ACC_BITS} bits wide, not {len(acc)} "
            "(narrow it first, e.g. with make_saturate)"
        )
    _check_presence(
        method,
        {
            "multiplier": multiplier,
            "shift": shift,
            "scale_significand": scale_significand,
            "scale_exponent": scale_exponent,
        },
    )
    fields = _fields(method, out_bits)
    if lo is None:
        lo = fields[3].lo
    if hi is None:
        hi = fields[4].hi
    scale = (scale_significand, scale_exponent) if method in _FLOATS else (multiplier, shift)
    first, second, zero_point, lo, hi = (
        _constant_wire(field, value)
        for field, value in zip(fields, (*scale, zero_point, lo, hi), strict=True)
    )
    if isinstance(lo, int) and isinstance(hi, int) and lo > hi:
        raise ValueError(f"lo must not exceed hi, not lo={lo} and hi={hi}")
    pipe = _Pipeline(points[:stages])
    if method in ("double_round", "double_round_away"):
        # The kernels add the zero point to the int32 result in int32: the sum wraps, and
        # saturating the wrapped sum gives the exact clamp below.
        (scaled,) = pipe.cut(
            "shifted",
            _double_round(acc, first, second, pipe, ties_away=method == "double_round_away"),
        )
        total = (scaled + _signed_wire(pipe.late(zero_point), 32)).truncate(32)
        shifted = make_saturate(total, bits=out_bits + 2)
    else:
        if method == "single_round":
            rounded = make_saturate(_single_round(acc, first, second, pipe), bits=out_bits + 2)
            (scaled,) = pipe.cut("shifted", rounded)
        else:
            fmt = _FLOATS[method]
            scaled = _float_scale(acc, first, second, zero_point, out_bits, fmt, pipe)
        # |scaled| <= 2**out_bits and any saturated value stays beyond [lo, hi] after adding
        # a zero point of out_bits bits, so the clamp below gives the exact result.
        shifted = make_add(scaled, _signed_wire(pipe.late(zero_point), out_bits))
    (shifted,) = pipe.cut("offset", shifted)
    assert pipe.depth == stages, "every enabled cut is on the datapath"
    low, high = (_signed_wire(pipe.late(end), out_bits) for end in (lo, hi))
    return make_clamp(shifted, lo=low, hi=high)


def requant_stage_points(method: str) -> tuple[str, ...]:
    """Where :func:`make_requantize` puts its registers, in the order ``stages`` adds them.

    ``stages=k`` enables the first ``k``. In this order the routed clock rate on an ECP5
    rises with every cut added (``bench/requant_fmax.py``; the docs' requantization page has
    the figures), the last few each placed on the critical path the depth before left. What
    each registers, in datapath order:

    ``"magnitude"`` (float methods)
        ``|acc|``, before the leading-zero counter;
    ``"coarse"`` (float methods)
        the normalizing shift halfway, after its 16- and 8-position steps;
    ``"normalized"`` (float methods)
        the normalized ``|acc|`` and its leading-zero count, before rounding it;
    ``"significand"`` (float methods)
        the rounded significand of ``|acc|``, the multiplier's operand;
    ``"operand"`` (the double rounding methods)
        the int32 left-shifted accumulator, the multiplier's operand;
    ``"partial"``
        the multiplier's partial products of 17-bit pieces (each one 18x18 DSP block, such
        as ECP5's MULT18X18D), before the adders that sum them;
    ``"product"``
        the multiplier's unsigned product, before its sign correction and rounding;
    ``"high"`` (the double rounding methods)
        the doubling high multiply's result, before the final shift;
    ``"rounded"`` (float methods)
        the product rounded to the format's significand, with its exponent;
    ``"shifted"``
        the value rounded to an integer, before the zero point;
    ``"offset"``
        the value plus the zero point, before the clamp.

    :param method: as for :func:`make_requantize`.
    :returns: the cut points' names; their number is the largest ``stages``.
    """
    _check_config(method, 8)
    return _STAGE_POINTS[method]


def _scale_fields(scales: npt.ArrayLike, dtype: type[np.floating]) -> tuple[np.ndarray, np.ndarray]:
    """Significands (hidden bit included) and exponents of positive normal ``dtype`` values."""
    info = np.finfo(dtype)
    values = np.asarray(scales, dtype=dtype)
    bits = values.view(np.int32 if info.bits == 32 else np.int64).astype(np.int64)
    biased = (bits >> info.nmant) & ((1 << info.nexp) - 1)
    bad = (bits < 0) | (biased == 0) | (biased == (1 << info.nexp) - 1)
    if np.any(bad):
        raise ValueError(
            f"scales must be positive normal {info.dtype} values, "
            f"not {float(values[bad].flat[0])!r}"
        )
    significands = (bits & ((1 << info.nmant) - 1)) | (1 << info.nmant)
    exponents = biased + (info.minexp - 1 - info.nmant)
    return significands, exponents


def float32_scale_fields(scales: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split float32 scales into the integer fields the ``"float32"`` requantizer takes.

    ``scale == significand * 2.0**exponent`` exactly, with the significand's hidden bit
    included (``2**23 <= significand < 2**24``). Scales are converted to float32 first (round
    to nearest), since the hardware multiplies by the float32 value.

    :param scales: positive normal float32 values (any shape).
    :returns: ``(significands, exponents)``, int64 arrays of the same shape.
    """
    return _scale_fields(scales, np.float32)


def float64_scale_fields(scales: npt.ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    """Split float64 scales into the integer fields the ``"float64"`` requantizer takes.

    ``scale == significand * 2.0**exponent`` exactly, with the significand's hidden bit
    included (``2**52 <= significand < 2**53``).

    :param scales: positive normal float64 values (any shape).
    :returns: ``(significands, exponents)``, int64 arrays of the same shape.
    """
    return _scale_fields(scales, np.float64)


def requant_word_bits(method: str, *, out_bits: int = 8) -> int:
    """The width of one ROM word of :func:`pack_requant_constants`.

    :param method: as for :func:`make_requantize`.
    :param out_bits: as for :func:`make_requantize`.
    :returns: 37 + 3 * out_bits for the integer methods, 33 + 3 * out_bits for ``"float32"``,
        65 + 3 * out_bits for ``"float64"``.
    """
    _check_config(method, out_bits)
    return sum(field.bits for field in _fields(method, out_bits))


def pack_requant_constants(
    *,
    method: str,
    multiplier: npt.ArrayLike | None = None,
    shift: npt.ArrayLike | None = None,
    scale_significand: npt.ArrayLike | None = None,
    scale_exponent: npt.ArrayLike | None = None,
    zero_point: npt.ArrayLike = 0,
    lo: npt.ArrayLike | None = None,
    hi: npt.ArrayLike | None = None,
    out_bits: int = 8,
) -> list[int]:
    """Pack per-channel requantization constants into ROM words, one word per channel.

    Arguments broadcast against each other (a per-layer zero point next to per-channel
    multipliers, say) to one 1-D sequence of channels. Each word holds the method's fields
    in the order multiplier/significand, shift/exponent, zero point, lo, hi, the first in the
    low bits, signed fields in two's complement; :func:`unpack_requant_constants` takes them
    apart again. Use the words as a :class:`pyrtl.RomBlock`'s ``romdata``::

        words = pack_requant_constants(method="single_round", multiplier=m, shift=s)
        rom = pyrtl.RomBlock(requant_word_bits("single_round"), addrwidth, words)
        y = make_requantize(acc, method="single_round",
                            **unpack_requant_constants(rom[channel], method="single_round"))

    :param method: as for :func:`make_requantize`.
    :param multiplier: integer methods: one multiplier per channel.
    :param shift: integer methods: one shift per channel.
    :param scale_significand: float methods: see :func:`float32_scale_fields` and
        :func:`float64_scale_fields`.
    :param scale_exponent: float methods: as for ``scale_significand``.
    :param zero_point: the output zero point(s).
    :param lo: the clamp's lower end(s) (default the most negative ``out_bits``-bit value).
    :param hi: the clamp's upper end(s) (default the most positive ``out_bits``-bit value).
    :param out_bits: as for :func:`make_requantize`.
    :returns: the words as Python integers, ``requant_word_bits(method)`` bits each.
    """
    _check_config(method, out_bits)
    scale_values = {
        "multiplier": multiplier,
        "shift": shift,
        "scale_significand": scale_significand,
        "scale_exponent": scale_exponent,
    }
    _check_presence(method, scale_values)
    fields = _fields(method, out_bits)
    values = [scale_values[field.name] for field in fields[:2]]
    values += [zero_point, fields[3].lo if lo is None else lo, fields[4].hi if hi is None else hi]
    try:
        arrays = np.broadcast_arrays(*(np.atleast_1d(np.asarray(v)) for v in values))
    except ValueError:
        shapes = ", ".join(str(np.shape(v)) for v in values)
        raise ValueError(f"the constants' shapes do not broadcast together: {shapes}") from None
    words = [0] * arrays[0].size
    offset = 0
    for field, array in zip(fields, arrays, strict=True):
        if array.ndim != 1:
            raise ValueError(f"{field.name} must be a scalar or 1-D, not {array.ndim}-D")
        for channel, value in enumerate(array.tolist()):
            int_in_range(field.name, value, field.lo, field.hi)
            words[channel] |= (value & ((1 << field.bits) - 1)) << offset
        offset += field.bits
    for channel, (low, high) in enumerate(zip(arrays[3].tolist(), arrays[4].tolist(), strict=True)):
        if low > high:
            raise ValueError(
                f"lo must not exceed hi, not lo={low} and hi={high} (channel {channel})"
            )
    return words


def unpack_requant_constants(
    word: pyrtl.WireVector, *, method: str, out_bits: int = 8
) -> dict[str, pyrtl.WireVector]:
    """Slice a word of :func:`pack_requant_constants` into :func:`make_requantize`'s keywords.

    :param word: a wire carrying one packed word (e.g. a :class:`pyrtl.RomBlock` read).
    :param method: the method the word was packed for.
    :param out_bits: the ``out_bits`` the word was packed for.
    :returns: ``{name: wire}`` for ``make_requantize(acc, method=method, out_bits=out_bits,
        **constants)``.
    """
    bits = requant_word_bits(method, out_bits=out_bits)
    if not isinstance(word, pyrtl.WireVector) or len(word) != bits:
        width = len(word) if isinstance(word, pyrtl.WireVector) else type(word).__name__
        raise ValueError(f"word must be a {bits}-bit WireVector for method {method!r}, not {width}")
    constants = {}
    offset = 0
    for field in _fields(method, out_bits):
        constants[field.name] = word[offset : offset + field.bits]
        offset += field.bits
    return constants
