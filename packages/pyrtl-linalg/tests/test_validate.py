"""The shared argument checks: TypeError for the wrong type, ValueError for the wrong value."""

import doctest

import numpy as np
import pytest

from pyrtl_linalg import _validate
from pyrtl_linalg._validate import (
    int_in_range,
    non_negative_int,
    positive_int,
    signed_bits,
    signed_int,
    signed_range,
)


def test_doctests():
    assert doctest.testmod(_validate, raise_on_error=False).failed == 0


def test_accepted_values_come_back_as_int():
    assert positive_int("n", np.int16(3)) == 3
    assert type(positive_int("n", np.int16(3))) is int
    assert non_negative_int("n", 0) == 0
    assert int_in_range("n", -31, -31, 30) == -31
    assert signed_int("z", 127, 8) == 127


@pytest.mark.parametrize(
    ("check", "error", "message"),
    [
        (lambda: positive_int("rows", 0), ValueError, "rows must be a positive integer, not 0"),
        (
            lambda: positive_int("rows", True),
            TypeError,
            "rows must be a positive integer, not True",
        ),
        (lambda: positive_int("rows", 2.0), TypeError, "rows must be a positive integer, not 2.0"),
        (
            lambda: non_negative_int("sink_latency", -1),
            ValueError,
            "sink_latency must be a non-negative integer, not -1",
        ),
        (
            lambda: non_negative_int("sink_latency", None),
            TypeError,
            "sink_latency must be a non-negative integer, not None",
        ),
        (
            lambda: int_in_range("shift", 31, -31, 30),
            ValueError,
            "shift must be an integer from -31 to 30, not 31",
        ),
        (
            lambda: signed_int("zero_point", -129, 8),
            ValueError,
            "zero_point must be an integer from -128 to 127, not -129",
        ),
        (
            lambda: signed_int("zero_point", "1", 8),
            TypeError,
            "zero_point must be an integer from -128 to 127, not '1'",
        ),
    ],
)
def test_errors(check, error, message):
    with pytest.raises(error, match=rf"^{message}$"):
        check()


@pytest.mark.parametrize("bits", [1, 2, 8, 33])
def test_signed_range_and_bits_agree_at_the_extremes(bits):
    low, high = signed_range(bits)
    assert (low, high) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    assert signed_bits(low, high) == bits
    assert signed_bits(low - 1) == signed_bits(high + 1) == bits + 1
