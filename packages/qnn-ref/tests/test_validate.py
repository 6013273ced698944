"""The argument checks: TypeError for a wrong type, ValueError for a wrong value, exact words."""

import numpy as np
import pytest

from qnn_ref._validate import int_in_range, is_int, positive_int, positive_ints, signed_int


def test_is_int() -> None:
    assert [is_int(v) for v in (3, np.int8(3), np.uint64(3), True, np.bool_(True), 3.0, "3")] == [
        True,
        True,
        True,
        False,
        False,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("check", "error", "message"),
    [
        (lambda: positive_int("count", 0), ValueError, "count must be a positive integer, not 0"),
        (
            lambda: positive_int("count", True),
            TypeError,
            "count must be a positive integer, not True",
        ),
        (
            lambda: int_in_range("start", -1, 0),
            ValueError,
            "start must be a non-negative integer, not -1",
        ),
        (
            lambda: int_in_range("depth", 1, 2),
            ValueError,
            "depth must be an integer of at least 2, not 1",
        ),
        (
            lambda: signed_int("zero point", 128, 8),
            ValueError,
            "zero point must be an integer from -128 to 127, not 128",
        ),
        (
            lambda: signed_int("zero point", 1.5, 8),
            TypeError,
            "zero point must be an integer from -128 to 127, not 1.5",
        ),
        (
            lambda: positive_ints("size", (3, 0), 2),
            ValueError,
            r"size must be 2 positive integers, not \(3, 0\)",
        ),
        (
            lambda: positive_ints("size", (3,), 2),
            ValueError,
            r"size must be 2 positive integers, not \(3,\)",
        ),
        (
            lambda: positive_ints("size", (3, 2.0), 2),
            TypeError,
            r"size must be 2 positive integers, not \(3, 2.0\)",
        ),
        (lambda: positive_ints("size", 3, 2), TypeError, "size must be 2 positive integers, not 3"),
    ],
)
def test_messages(check, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{message}$"):
        check()


def test_accepted_values_come_back_as_int() -> None:
    assert positive_int("count", np.int64(5)) == 5
    assert type(positive_int("count", np.int64(5))) is int
    assert signed_int("zero point", -128, 8) == -128
    assert int_in_range("x", 7, 0, 7) == 7
    assert positive_ints("size", np.array([12, 8]), 2) == (12, 8)
