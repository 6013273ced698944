"""Checks of the values public functions take: one message per rule, one rule per function.

A value of the wrong type raises :class:`TypeError`, a value of the right type outside what is
allowed raises :class:`ValueError`; both say what was expected and what was given, in the same
words (``"array rows must be a positive integer, not 0"``), so callers and tests can match the
message exactly. NumPy integers count as integers, booleans do not.
"""

from collections.abc import Sequence

import numpy as np

__all__ = ["check_choice", "check_int", "check_positive"]


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool | np.bool_)


def check_int(name: str, value: object, *, low: int, high: int | None = None) -> int:
    """``value`` as an ``int`` if it is an integer in ``[low, high]`` (no upper bound if
    ``high`` is None).

    :param name: how the message calls the value, e.g. ``"array rows"``.
    :raises TypeError: if ``value`` is not an integer.
    :raises ValueError: if it is out of range.
    """
    if high is None:
        what = "a positive integer" if low == 1 else f"an integer of at least {low}"
    else:
        what = f"an integer in [{low}, {high}]"
    if not _is_int(value):
        raise TypeError(f"{name} must be {what}, not {value!r}")
    if value < low or (high is not None and value > high):  # type: ignore[operator]
        raise ValueError(f"{name} must be {what}, not {value!r}")
    return int(value)  # type: ignore[call-overload]


def check_positive(name: str, value: object) -> int:
    """``value`` as an ``int`` if it is an integer of at least 1.

    :raises TypeError: if ``value`` is not an integer.
    :raises ValueError: if it is below 1.
    """
    return check_int(name, value, low=1)


def check_choice(name: str, value: object, choices: Sequence[str]) -> str:
    """``value`` if it is one of the strings ``choices``.

    :raises TypeError: if ``value`` is not a string.
    :raises ValueError: if it is not one of ``choices``.
    """
    message = f"{name} must be one of {', '.join(choices)}, not {value!r}"
    if not isinstance(value, str):
        raise TypeError(message)
    if value not in choices:
        raise ValueError(message)
    return value
