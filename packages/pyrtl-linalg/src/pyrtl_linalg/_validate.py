"""Argument checks shared by every public function of the package, with one wording each.

A value of the wrong type raises :class:`TypeError`, a value of the right type outside its
range :class:`ValueError`; both say what was expected and what was given, e.g.
``array rows must be a positive integer, not 0``. Integers are Python or NumPy integers,
never ``bool`` (``True`` as a width is a mistake, not a 1).
"""

from __future__ import annotations

import numpy as np

__all__ = [
    "int_in_range",
    "is_int",
    "non_negative_int",
    "positive_int",
    "signed_bits",
    "signed_int",
    "signed_range",
]


def is_int(value: object) -> bool:
    """True for Python and NumPy integers, but not ``bool``."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _integer(name: str, value: object, expected: str) -> int:
    if not is_int(value):
        raise TypeError(f"{name} must be {expected}, not {value!r}")
    return int(value)  # type: ignore[arg-type]


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer of at least 1.

    :raises TypeError: not an integer.
    :raises ValueError: below 1.
    """
    expected = "a positive integer"
    number = _integer(name, value, expected)
    if number < 1:
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return number


def non_negative_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer of at least 0.

    :raises TypeError: not an integer.
    :raises ValueError: negative.
    """
    expected = "a non-negative integer"
    number = _integer(name, value, expected)
    if number < 0:
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return number


def int_in_range(name: str, value: object, lo: int, hi: int) -> int:
    """``value`` as an ``int`` if it is an integer in ``[lo, hi]``.

    :raises TypeError: not an integer.
    :raises ValueError: outside ``[lo, hi]``.
    """
    expected = f"an integer from {lo} to {hi}"
    number = _integer(name, value, expected)
    if not lo <= number <= hi:
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return number


def signed_range(bits: int) -> tuple[int, int]:
    """``(-2**(bits-1), 2**(bits-1) - 1)``: the values of a ``bits``-bit two's complement
    number."""
    return -(1 << (bits - 1)), (1 << (bits - 1)) - 1


def signed_int(name: str, value: object, bits: int) -> int:
    """``value`` as an ``int`` if it is a ``bits``-bit two's complement integer.

    :raises TypeError: not an integer.
    :raises ValueError: outside :func:`signed_range`.
    """
    return int_in_range(name, value, *signed_range(bits))


def signed_bits(*values: int) -> int:
    """The fewest two's complement bits that hold every one of ``values`` (at least 1).

    >>> signed_bits(-128, 127), signed_bits(128), signed_bits(0), signed_bits(-1)
    (8, 9, 1, 1)
    """
    return max(1, *((v if v >= 0 else ~v).bit_length() + 1 for v in map(int, values)))
