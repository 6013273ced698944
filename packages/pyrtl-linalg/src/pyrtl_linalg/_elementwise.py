"""Elementwise signed arithmetic on wires: add, ReLU, clamp and saturate.

Every value is a two's complement integer whose width is its wire's bitwidth. Each function
takes either one :class:`pyrtl.WireVector` or a sequence of them (applied elementwise) and
returns the same kind. Results are exact: widths grow where the arithmetic needs it and shrink
only where the value range allows it, so nothing silently wraps.
"""

from collections.abc import Sequence
from typing import overload

import pyrtl

from ._validate import is_int, positive_int, signed_bits, signed_range

__all__ = ["make_add", "make_clamp", "make_relu", "make_saturate"]

Wires = pyrtl.WireVector | Sequence[pyrtl.WireVector]


def _signed_const(value: int) -> pyrtl.Const:
    return pyrtl.Const(int(value), bitwidth=signed_bits(value), signed=True)


def _operand(value: pyrtl.WireVector | int, name: str) -> pyrtl.WireVector:
    """A wire for a signed operand given as a wire or as an integer constant."""
    if isinstance(value, pyrtl.WireVector):
        return value
    if is_int(value):
        return _signed_const(int(value))
    raise TypeError(f"{name} must be a WireVector or an int, not {type(value).__name__}")


def _as_list(x: Wires, name: str) -> list[pyrtl.WireVector] | None:
    """``None`` for a single wire, else the sequence as a list of wires (checked)."""
    if isinstance(x, pyrtl.WireVector):
        return None
    if isinstance(x, Sequence) and not isinstance(x, str):
        items = list(x)
        for i, item in enumerate(items):
            if not isinstance(item, pyrtl.WireVector):
                raise TypeError(f"{name}[{i}] must be a WireVector, not {type(item).__name__}")
        return items
    raise TypeError(
        f"{name} must be a WireVector or a sequence of WireVectors, not {type(x).__name__}"
    )


def _add(a: pyrtl.WireVector, b: pyrtl.WireVector) -> pyrtl.WireVector:
    width = max(len(a), len(b)) + 1
    return (a.sign_extended(width) + b.sign_extended(width)).truncate(width)


@overload
def make_add(a: pyrtl.WireVector, b: pyrtl.WireVector | int) -> pyrtl.WireVector: ...
@overload
def make_add(
    a: Sequence[pyrtl.WireVector], b: Sequence[pyrtl.WireVector] | pyrtl.WireVector | int
) -> list[pyrtl.WireVector]: ...
def make_add(a: Wires, b: Wires | int) -> pyrtl.WireVector | list[pyrtl.WireVector]:
    """Exact signed sum ``a + b``, one bit wider than the wider operand.

    :param a: a signed wire, or a sequence of them.
    :param b: a signed wire or an integer constant added to every element of ``a``, or a
        sequence of wires as long as ``a`` (added elementwise).
    :returns: ``a + b`` with bitwidth ``max(len(a), len(b)) + 1`` (per element).
    """
    a_list = _as_list(a, "a")
    if a_list is None:
        return _add(a, _operand(b, "b"))
    if isinstance(b, pyrtl.WireVector) or is_int(b):
        b_wire = _operand(b, "b")
        return [_add(x, b_wire) for x in a_list]
    b_list = _as_list(b, "b")
    if len(b_list) != len(a_list):
        raise ValueError(f"a and b must have the same length, not {len(a_list)} and {len(b_list)}")
    return [_add(x, y) for x, y in zip(a_list, b_list, strict=True)]


@overload
def make_relu(x: pyrtl.WireVector) -> pyrtl.WireVector: ...
@overload
def make_relu(x: Sequence[pyrtl.WireVector]) -> list[pyrtl.WireVector]: ...
def make_relu(x: Wires) -> pyrtl.WireVector | list[pyrtl.WireVector]:
    """``max(x, 0)`` of a signed value, same bitwidth.

    The result is non-negative but keeps the sign bit (always 0), so it can flow on into
    other signed arithmetic unchanged. To clamp at another floor (a quantized zero point,
    say), use :func:`make_clamp`.

    :param x: a signed wire, or a sequence of them.
    :returns: ``max(x, 0)``, with ``x``'s bitwidth (per element).
    """
    x_list = _as_list(x, "x")
    if x_list is None:
        return pyrtl.select(x[-1], pyrtl.Const(0, bitwidth=len(x)), x)
    return [make_relu(item) for item in x_list]


def _clamp(
    x: pyrtl.WireVector, lo: pyrtl.WireVector, hi: pyrtl.WireVector, width: int
) -> pyrtl.WireVector:
    full = max(len(x), len(lo), len(hi))
    x, lo, hi = (w.sign_extended(full) for w in (x, lo, hi))
    below = pyrtl.signed_lt(x, lo)
    above = pyrtl.signed_lt(hi, x)
    return pyrtl.select(below, lo, pyrtl.select(above, hi, x)).truncate(width)


@overload
def make_clamp(
    x: pyrtl.WireVector, *, lo: pyrtl.WireVector | int, hi: pyrtl.WireVector | int
) -> pyrtl.WireVector: ...
@overload
def make_clamp(
    x: Sequence[pyrtl.WireVector], *, lo: pyrtl.WireVector | int, hi: pyrtl.WireVector | int
) -> list[pyrtl.WireVector]: ...
def make_clamp(
    x: Wires, *, lo: pyrtl.WireVector | int, hi: pyrtl.WireVector | int
) -> pyrtl.WireVector | list[pyrtl.WireVector]:
    """Clamp a signed value to ``[lo, hi]``, narrowed to the bitwidth the bounds need.

    Because the result lies in ``[lo, hi]`` it needs only as many bits as the bounds: with
    integer bounds, the fewest two's complement bits holding both (``lo=-128, hi=127`` gives
    8 bits); with wire bounds, the wider of the two wires. Wire bounds must satisfy
    ``lo <= hi`` at run time (otherwise the result is ``lo``).

    :param x: a signed wire, or a sequence of them.
    :param lo: the lower bound, a signed wire or an integer.
    :param hi: the upper bound, a signed wire or an integer.
    :returns: ``min(max(x, lo), hi)`` (per element).
    """
    if is_int(lo) and is_int(hi) and lo > hi:
        raise ValueError(f"lo must not exceed hi, not lo={lo} and hi={hi}")
    lo_wire, hi_wire = _operand(lo, "lo"), _operand(hi, "hi")
    width = max(len(lo_wire), len(hi_wire))
    x_list = _as_list(x, "x")
    if x_list is None:
        return _clamp(x, lo_wire, hi_wire, width)
    return [_clamp(item, lo_wire, hi_wire, width) for item in x_list]


def _saturate(x: pyrtl.WireVector, bits: int) -> pyrtl.WireVector:
    if len(x) <= bits:
        return x.sign_extended(bits)
    # x fits in `bits` bits exactly when its bits from bits-1 upward are all equal.
    upper = x[bits - 1 :]
    fits = (upper == 0) | (upper == (1 << len(upper)) - 1)
    low, high = signed_range(bits)
    limit = pyrtl.select(
        x[-1],
        pyrtl.Const(low, bitwidth=bits, signed=True),
        pyrtl.Const(high, bitwidth=bits, signed=True),
    )
    return pyrtl.select(fits, x[:bits], limit)


@overload
def make_saturate(x: pyrtl.WireVector, *, bits: int) -> pyrtl.WireVector: ...
@overload
def make_saturate(x: Sequence[pyrtl.WireVector], *, bits: int) -> list[pyrtl.WireVector]: ...
def make_saturate(x: Wires, *, bits: int) -> pyrtl.WireVector | list[pyrtl.WireVector]:
    """Narrow a signed value to ``bits`` bits, saturating instead of wrapping.

    Values outside ``[-2**(bits-1), 2**(bits-1) - 1]`` become the nearest end of that range;
    a value already narrower than ``bits`` is sign-extended. Costs two comparisons of the
    discarded upper bits and two multiplexers, much less than a general :func:`make_clamp`.

    :param x: a signed wire, or a sequence of them.
    :param bits: the result's bitwidth, at least 1.
    :returns: ``x`` saturated to ``bits`` bits (per element).
    """
    bits = positive_int("bits", bits)
    x_list = _as_list(x, "x")
    if x_list is None:
        return _saturate(x, bits)
    return [_saturate(item, bits) for item in x_list]
