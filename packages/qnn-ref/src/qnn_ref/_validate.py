"""Checks of the integers public functions take, one wording for each rule.

A value of the wrong type raises :class:`TypeError`, a value of the right type outside what is
allowed :class:`ValueError`; both messages say what was expected and what was given, the same
way everywhere (``"count must be a positive integer, not 0"``), so callers and tests can match
them exactly. Python and NumPy integers count as integers; ``bool`` does not (``True`` as a
count is a mistake, not a 1).
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["int_in_range", "is_int", "positive_int", "positive_ints", "signed_int"]


def is_int(value: object) -> bool:
    """Whether ``value`` is a Python or NumPy integer (not a ``bool``)."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def int_in_range(name: str, value: object, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer from ``low`` to ``high`` (no upper limit if
    ``high`` is ``None``).

    :param name: What the message calls the value, e.g. ``"start"``.
    :raises TypeError: if ``value`` is not an integer.
    :raises ValueError: if it is out of range.
    """
    if high is not None:
        expected = f"an integer from {low} to {high}"
    elif low == 0:
        expected = "a non-negative integer"
    elif low == 1:
        expected = "a positive integer"
    else:
        expected = f"an integer of at least {low}"
    if not is_int(value):
        raise TypeError(f"{name} must be {expected}, not {value!r}")
    number = int(value)  # type: ignore[call-overload]
    if number < low or (high is not None and number > high):
        raise ValueError(f"{name} must be {expected}, not {value!r}")
    return number


def positive_int(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer of at least 1 (see :func:`int_in_range`)."""
    return int_in_range(name, value, 1)


def signed_int(name: str, value: object, bits: int) -> int:
    """``value`` as an ``int`` if a ``bits``-bit two's complement integer holds it: from
    ``-2**(bits-1)`` to ``2**(bits-1) - 1`` (see :func:`int_in_range`)."""
    return int_in_range(name, value, -(1 << (bits - 1)), (1 << (bits - 1)) - 1)


def positive_ints(name: str, values: object, count: int) -> tuple[int, ...]:
    """``values`` as a tuple of ``int`` if it is a sequence of ``count`` positive integers.

    :raises TypeError: if ``values`` is not a sequence of integers.
    :raises ValueError: if it has another length or a value below 1.
    """
    expected = f"{count} positive integers"
    if not isinstance(values, Sequence | np.ndarray) or not all(is_int(v) for v in values):
        raise TypeError(f"{name} must be {expected}, not {values!r}")
    if len(values) != count or min(values) < 1:
        raise ValueError(f"{name} must be {expected}, not {values!r}")
    return tuple(int(v) for v in values)
