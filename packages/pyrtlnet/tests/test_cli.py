"""The ``pyrtlnet`` command line: the main command, many images, dumps and errors."""

import re
import subprocess
import sys

import numpy as np
import pytest

import qnn_ref
from pyrtlnet.cli import main


def test_main_command(capsys: pytest.CaptureFixture[str]) -> None:
    """`pyrtlnet infer` with no options: test image 0, three backends, the cycle count."""
    assert main(["infer"]) == 0
    out = capsys.readouterr().out
    assert "MNIST test image 0" in out
    assert re.search(r"^  pyrtl +4 +-12 +-123", out, re.MULTILINE)
    assert re.search(r"^  litert +4 +-12 +-123", out, re.MULTILINE)
    assert re.search(r"^  numpy +4 +-12 +-123", out, re.MULTILINE)
    assert "image 0: label 7; predicted: pyrtl 7 (right), litert 7 (right), numpy 7 (right)" in out
    assert "cycles: 341 per batch of 1 (start to done), 341.0 per image, 341 in all;" in out
    assert out.rstrip().endswith("agreement: PyRTL, LiteRT and NumPy are identical in every layer")


def test_quiet_single_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "--start-image", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "image 1: label 2; predicted 2; 341 cycles",
        "agreement: PyRTL, LiteRT and NumPy are identical in every layer",
    ]


def test_many_images_in_workers_with_dump(
    capsys: pytest.CaptureFixture[str], tmp_path: pytest.TempPathFactory
) -> None:
    dump = tmp_path / "out.npz"
    argv = ["infer", "--start-image", "20", "--num-images", "240", "--array", "1x7"]
    argv += ["--jobs", "2", "--compare", "--dump", str(dump)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "240 MNIST test images (20 to 259), model default.tflite" in out
    assert "litert vs pyrtl: identical in every layer" in out
    assert "numpy vs pyrtl: identical in every layer" in out
    assert "2 worker processes, each built in" in out
    assert out.rstrip().endswith(
        "agreement: PyRTL, LiteRT and NumPy are identical in every layer (240 images, 0 differ)"
    )
    golden = qnn_ref.golden(start=20, count=240)
    with np.load(dump) as data:
        assert sorted(data) == [
            "image_indices",
            "input",
            "labels",
            "layer0",
            "layer1",
            "predictions",
        ]
        np.testing.assert_array_equal(data["layer1"], golden.layers[1], strict=True)
        np.testing.assert_array_equal(data["predictions"], golden.predictions, strict=True)
        np.testing.assert_array_equal(data["image_indices"], np.arange(20, 260), strict=True)


def test_per_layer_with_vcd(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    vcd = tmp_path / "wave.vcd"
    argv = ["infer", "--architecture", "per-layer", "--rounding", "builtin", "--vcd", str(vcd)]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert (
        "hardware: one array per layer (1x18, 1x10), batch 1, builtin (double_round requantizers)"
        in out
    )
    assert "FastSimulation" in out
    assert vcd.read_text().startswith("$timescale")


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["--array", "0x4"],
            2,
            "pyrtlnet infer: error: argument --array: array size must be ROWSxCOLS with "
            "positive integers, like 4x8, not '0x4' (see pyrtlnet infer --help)",
        ),
        (
            ["--array", "3"],
            2,
            "pyrtlnet infer: error: argument --array: array size must be ROWSxCOLS with "
            "positive integers, like 4x8, not '3' (see pyrtlnet infer --help)",
        ),
        (
            ["--num-images", "1000", "--batch-size", "1000", "--array", "1x2"],
            2,
            "pyrtlnet infer: error: batch size 1000 does not fit the input memory: it needs "
            "144000 words, at most 65536; use a smaller batch size or more array rows",
        ),
        (
            ["--architecture", "per-layer", "--array", "2x2"],
            2,
            "pyrtlnet infer: error: the per-layer architecture sizes its arrays itself (batch "
            "size x units); do not give an array size",
        ),
        (
            ["--vcd", "x.vcd", "--simulator", "compiled"],
            2,
            "pyrtlnet infer: error: --vcd needs --simulator fast or simulation "
            "(CompiledSimulation records only the top-level ports)",
        ),
        (
            ["--jobs", "0"],
            2,
            "pyrtlnet infer: error: argument --jobs: must be a positive integer, not '0' "
            "(see pyrtlnet infer --help)",
        ),
        (
            ["--start-image", "10000"],
            2,
            "pyrtlnet infer: error: --start-image 10000 is out of range: the MNIST test set has "
            "images 0 to 9999; choose a smaller --start-image",
        ),
        (
            ["--model", "missing.tflite"],
            1,
            "pyrtlnet infer: error: missing.tflite: no such model file; give the path of a "
            ".tflite file",
        ),
    ],
)
def test_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], status: int, message: str
) -> None:
    assert main(["infer", *argv]) == status
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.splitlines() == [message]


def test_python_dash_m() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "pyrtlnet", "infer", "--quiet", "--start-image", "3"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.startswith("image 3: label 0; predicted 0; 341 cycles")
