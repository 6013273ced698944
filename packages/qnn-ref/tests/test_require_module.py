"""``qnn_ref.testing.require_module``: a missing module skips a test, but fails it under CI."""

import pytest

from qnn_ref.testing import require_module


def test_an_installed_module_lets_the_test_run(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "true")
    require_module("numpy", "needs NumPy")  # returns: no skip, no failure


def test_a_missing_module_skips_outside_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("CI", raising=False)
    with pytest.raises(pytest.skip.Exception, match=r"^needs it$"):
        require_module("no_such_module_qnn", "needs it")


def test_a_missing_module_fails_under_ci(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CI", "1")
    with pytest.raises(
        pytest.fail.Exception,
        match=r"^needs it \(no_such_module_qnn is not installed\); CI runs every test$",
    ):
        require_module("no_such_module_qnn", "needs it")
