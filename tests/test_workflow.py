"""The README's workflow end to end, through the console entry points a user runs.

Train a small model with ``qnn-ref train``, then check it with ``qnn-ref compare`` (LiteRT
against NumPy) and ``pyrtlnet infer --compare`` (the gate-level hardware against both): a model
nobody shipped must go through every backend with identical bits.
"""

import subprocess
import sys
from pathlib import Path

from qnn_ref.testing import require_module


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )


def test_train_then_compare_every_backend(tmp_path: Path) -> None:
    require_module("tensorflow", "training needs the qnn-ref[train] extra")
    trained = _run(
        "qnn_ref",
        "train",
        "--hidden",
        "12,8",
        "--input-size",
        "10",
        "--epochs",
        "1",
        "--qat-epochs",
        "1",
        "--quiet",
        "--output",
        "small.tflite",
        "--data-dir",
        str(Path(__file__).parents[1] / "data" / "mnist"),
        cwd=tmp_path,
    )
    assert trained.returncode == 0, trained.stderr
    model = tmp_path / "small.tflite"
    assert model.is_file()
    assert (tmp_path / "small.json").is_file()

    compared = _run(
        "qnn_ref", "compare", "--model", str(model), "--num-images", "300", cwd=tmp_path
    )
    assert compared.returncode == 0, compared.stdout + compared.stderr

    inferred = _run(
        "pyrtlnet",
        "infer",
        "--model",
        str(model),
        "--num-images",
        "60",
        "--batch-size",
        "4",
        "--array",
        "3x5",
        "--compare",
        "--jobs",
        "1",
        "--quiet",
        cwd=tmp_path,
    )
    assert inferred.returncode == 0, inferred.stdout + inferred.stderr
    assert "agreement: PyRTL, LiteRT and NumPy are identical in every layer" in inferred.stdout
    assert inferred.stderr == ""
