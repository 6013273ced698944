"""The one place pyrtlnet checks integers and choices: wrong type TypeError, wrong value
ValueError, the same exact message."""

import re

import numpy as np
import pytest

from pyrtlnet._validate import check_choice, check_int, check_positive


@pytest.mark.parametrize(
    ("value", "error", "message"),
    [
        (0, ValueError, "rows must be a positive integer, not 0"),
        (-3, ValueError, "rows must be a positive integer, not -3"),
        (1.0, TypeError, "rows must be a positive integer, not 1.0"),
        ("2", TypeError, "rows must be a positive integer, not '2'"),
        (False, TypeError, "rows must be a positive integer, not False"),
        (np.bool_(True), TypeError, "rows must be a positive integer, not np.True_"),
    ],
)
def test_positive_rejects(value: object, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        check_positive("rows", value)


def test_positive_accepts_numpy_integers() -> None:
    assert check_positive("rows", np.uint16(7)) == 7
    assert type(check_positive("rows", np.int64(7))) is int


@pytest.mark.parametrize(
    ("kwargs", "value", "message"),
    [
        ({"low": 0}, -1, "layer must be an integer of at least 0, not -1"),
        ({"low": 0, "high": 3}, 4, "layer must be an integer in [0, 3], not 4"),
        ({"low": -128, "high": 127}, -129, "layer must be an integer in [-128, 127], not -129"),
    ],
)
def test_int_ranges(kwargs: dict[str, int], value: int, message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_int("layer", value, **kwargs)
    assert check_int("layer", kwargs["low"], **kwargs) == kwargs["low"]
    if "high" in kwargs:
        assert check_int("layer", kwargs["high"], **kwargs) == kwargs["high"]


def test_choice() -> None:
    assert check_choice("simulator", "fast", ("compiled", "fast")) == "fast"
    message = "simulator must be one of compiled, fast, not 'slow'"
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        check_choice("simulator", "slow", ("compiled", "fast"))
    with pytest.raises(TypeError, match=r"^simulator must be one of compiled, fast, not 1$"):
        check_choice("simulator", 1, ("compiled", "fast"))
