"""Every script in examples/ runs with its default arguments, and fails when its check fails.

Each example compares its result with an independent reference and exits 1 on a mismatch. To
see that the check can fail, the second test runs the script with that reference corrupted in
one value (a patch applied in the child process before the script starts).
"""

import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).parents[1] / "examples").glob("*.py"))

#: Python run before each example, in its process, so that the example's check must fail.
SABOTAGE = {
    # The golden LiteRT vectors, with one value of the last layer moved by one.
    "gate_level_inference.py": """
import dataclasses
import qnn_ref

_golden = qnn_ref.golden

def golden(*args, **kwargs):
    g = _golden(*args, **kwargs)
    last = g.layers[-1].copy()
    last[0, 0] = last[0, 0] + 1 if last[0, 0] < 127 else last[0, 0] - 1
    return dataclasses.replace(g, layers=(*g.layers[:-1], last))

qnn_ref.golden = golden
""",
    # The hardware's raw column values read as one more than they are.
    "systolic_matmul.py": """
import pyrtl_linalg

_to_signed = pyrtl_linalg.to_signed
pyrtl_linalg.to_signed = lambda value, bits: _to_signed(value, bits) + 1
""",
}


def _run(script: Path, cwd: Path, *, prelude: str = "") -> subprocess.CompletedProcess[str]:
    code = f"{prelude}\nimport runpy, sys\nsys.argv = [{str(script)!r}]\n"
    code += f"runpy.run_path({str(script)!r}, run_name='__main__')\n"
    return subprocess.run(
        [sys.executable, "-c", code],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_every_example_has_a_sabotage() -> None:
    assert sorted(SABOTAGE) == [p.name for p in EXAMPLES]


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_runs(script: Path, tmp_path: Path) -> None:
    result = _run(script, tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip(), "an example should show what it did"
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_fails_when_its_check_fails(script: Path, tmp_path: Path) -> None:
    result = _run(script, tmp_path, prelude=SABOTAGE[script.name])
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    assert "MISMATCH" in result.stdout or "NO" in result.stdout


@pytest.mark.parametrize("script", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_example_has_help(script: Path) -> None:
    result = subprocess.run(
        [sys.executable, str(script), "--help"],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("usage:")
