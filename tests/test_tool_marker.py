"""The repository's ``@pytest.mark.tool`` marker (root conftest.py): a skip with its reason on a
machine without the tool, a failure in CI."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

_TESTS = """
import pytest

@pytest.mark.tool("no-such-tool-h1")
def test_needs_a_missing_tool():
    pass

@pytest.mark.tool("sh", "no-such-tool-h1")
def test_needs_two_tools_one_missing():
    pass

@pytest.mark.tool("sh")
def test_needs_a_present_tool():
    pass
"""


def _run(directory: Path, ci: str | None) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "CI"}
    if ci is not None:
        env["CI"] = ci
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-rsfE", "-p", "no:cacheprovider", str(directory)],
        cwd=directory,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A throwaway rootdir with the repository's conftest.py and pytest settings."""
    (tmp_path / "conftest.py").write_text((ROOT / "conftest.py").read_text())
    (tmp_path / "pytest.ini").write_text(
        "[pytest]\naddopts = --strict-markers\nmarkers =\n    tool(*names): external tools\n"
    )
    (tmp_path / "test_tools.py").write_text(_TESTS)
    return tmp_path


@pytest.mark.parametrize("ci", [None, ""])
def test_missing_tool_is_a_skip_with_its_reason(project: Path, ci: str | None) -> None:
    run = _run(project, ci)
    assert run.returncode == 0, run.stdout
    assert "1 passed, 2 skipped" in run.stdout
    assert "needs no-such-tool-h1 (not found on PATH)" in run.stdout


@pytest.mark.parametrize("ci", ["true", "1"])
def test_missing_tool_fails_in_ci(project: Path, ci: str) -> None:
    run = _run(project, ci)
    assert run.returncode == 1, run.stdout
    assert "1 passed, 2 errors" in run.stdout
    assert "needs no-such-tool-h1 (not found on PATH); CI runs every tool test" in run.stdout


def test_marker_without_names_is_a_usage_error(project: Path) -> None:
    (project / "test_tools.py").write_text(
        "import pytest\n\n@pytest.mark.tool\ndef test_nothing():\n    pass\n"
    )
    run = _run(project, None)
    assert run.returncode != 0
    assert "@pytest.mark.tool needs the tools' executable names" in run.stdout + run.stderr


def test_the_root_conftest_imports_none_of_our_packages() -> None:
    text = (ROOT / "conftest.py").read_text()
    imports = [line for line in text.splitlines() if line.startswith(("import ", "from "))]
    # The standard library and pytest only (TensorFlow is imported inside a hook, if installed).
    assert imports == [
        "import importlib.util",
        "import os",
        "import shutil",
        "import sys",
        "from pathlib import Path",
        "import pytest",
    ]
