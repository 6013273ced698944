"""The ``pyrtlnet`` command line: the main command, many images, dumps and errors."""

import importlib.metadata
import os
import re
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

import pyrtlnet._hwcli
import pyrtlnet.cli
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
    assert "cycles: 365 per batch of 1 (start to done), 365.0 per image, 365 in all;" in out
    assert out.rstrip().endswith("agreement: PyRTL, LiteRT and NumPy are identical in every layer")


def test_quiet_single_image(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "--start-image", "1", "--quiet"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "image 1: label 2; predicted: pyrtl 2 (right), litert 2 (right), numpy 2 (right)",
        "cycles: 365 for 1 image",
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
    assert out.endswith(
        "agreement: PyRTL, LiteRT and NumPy are identical in every layer (240 images, 0 differ)\n"
        f"wrote {dump}\n"
    )
    assert re.search(r"^litert vs pyrtl on 240 MNIST test images \(20 to 259\):$", out, re.M)
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
    assert out.endswith(f"\nwrote {vcd}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["wave.vcd"]  # no .part left


def test_vcd_warns_before_a_large_waveform(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import pyrtlnet.cli

    monkeypatch.setattr(pyrtlnet.cli, "_LARGE_VCD", 1000)
    vcd = tmp_path / "wave.vcd"
    assert main(["infer", "--num-images", "2", "--quiet", "--vcd", str(vcd)]) == 0
    err = capsys.readouterr().err
    assert re.fullmatch(
        r"warning: the waveform of 2 images may grow to \d+\.\d GB \(([\d,]+) cycles, every "
        r"named wire; less where wires do not change\); use fewer --num-images\n",
        err,
    ), err
    cycles = int(re.search(r"\(([\d,]+) cycles", err)[1].replace(",", ""))
    assert vcd.read_text().count("\n0!\n") == cycles
    monkeypatch.setattr(pyrtlnet.cli, "_LARGE_VCD", 10**12)
    assert main(["infer", "--num-images", "2", "--quiet", "--vcd", str(vcd)]) == 0
    assert capsys.readouterr().err == ""


def test_failed_run_leaves_no_vcd(
    capsys: pytest.CaptureFixture[str], tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args, **kwargs):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("pyrtlnet.cli.run_numpy", broken)
    vcd = tmp_path / "wave.vcd"
    assert main(["infer", "--quiet", "--vcd", str(vcd)]) == 1
    assert list(tmp_path.iterdir()) == []


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
            ["--vcd", "x.vcd", "--simulator", "native"],
            2,
            "pyrtlnet infer: error: --vcd needs --simulator fast or simulation "
            "(NativeKernel records only the top-level ports)",
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
            2,
            "pyrtlnet infer: error: argument --model: 'missing.tflite' is neither a file nor a "
            "shipped model; give a .tflite path or mlp or cnn (see pyrtlnet infer --help)",
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
    assert result.stdout.splitlines() == [
        "image 3: label 0; predicted: pyrtl 0 (right), litert 0 (right), numpy 0 (right)",
        "cycles: 365 for 1 image",
        "agreement: PyRTL, LiteRT and NumPy are identical in every layer",
    ]
    assert result.stderr == ""  # not even LiteRT's XNNPACK notice


def test_many_images_run_litert_too(capsys: pytest.CaptureFixture[str]) -> None:
    """The README's example reports accuracy and any mismatch against LiteRT without --compare."""
    argv = ["infer", "--num-images", "40", "--batch-size", "8", "--array", "8x8", "--quiet"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert re.search(r"^litert accuracy: \d+\.\d\d% \(\d+/40\), ", out, re.MULTILINE)
    assert "litert vs pyrtl: identical in every layer" in out
    assert " vs pyrtl on " not in out  # the per-layer tables come only with --compare


def test_no_command_prints_usage_and_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith("usage: pyrtlnet [-h] [--version] COMMAND ...\n")
    for command in ("infer", "verilog", "verilate", "synth", "pnr", "explore"):
        assert re.search(rf"^    {command} ", captured.err, re.MULTILINE), command


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["--version"]) == 0
    versions = {d: importlib.metadata.version(d) for d in ("pyrtlnet", "qnn-ref", "pyrtl")}
    out = capsys.readouterr().out
    assert out.startswith(f"pyrtlnet {versions['pyrtlnet']} (qnn-ref {versions['qnn-ref']}, ")
    assert out.endswith(f", pyrtl {versions['pyrtl']})\n")


def test_unknown_option_points_at_the_command_help(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["infer", "--arrays", "2x2"]) == 2
    assert capsys.readouterr().err == (
        "pyrtlnet infer: error: unrecognized arguments: --arrays 2x2 (see pyrtlnet infer --help)\n"
    )


def test_array_size_is_checked_while_parsing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """``--array 1x99999`` fails before the model is read or any plan is made."""

    def no_plan(*args: object, **kwargs: object) -> None:
        raise AssertionError("a plan was made for an impossible array")

    monkeypatch.setattr(pyrtlnet._hwcli, "make_plan", no_plan)
    monkeypatch.setattr(pyrtlnet._hwcli, "read_model", no_plan)
    monkeypatch.setattr(pyrtlnet.cli, "read_model", no_plan)
    assert main(["infer", "--array", "1x99999"]) == 2
    assert capsys.readouterr().err == (
        "pyrtlnet infer: error: argument --array: array 1x99999 has 99,999 multiply-accumulate "
        "elements, at most 1,024 are supported; use a smaller array (see pyrtlnet infer --help)\n"
    )


def test_more_rows_than_images_warns(capsys: pytest.CaptureFixture[str]) -> None:
    argv = ["infer", "--quiet", "--batch-size", "2", "--num-images", "2", "--array", "4x8"]
    assert main(argv) == 0
    assert capsys.readouterr().err == (
        "warning: the 4x8 array has more rows than a batch has images (2), so 2 of its rows are "
        "idle; use --batch-size 4 or --array 2x8\n"
    )


@pytest.mark.parametrize("flag", ["--dump", "--vcd"])
def test_unwritable_output_is_rejected_before_the_build(
    capsys: pytest.CaptureFixture[str],
    forbid_build: Callable[..., None],
    tmp_path: Path,
    flag: str,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    forbid_build(pyrtlnet.cli)
    path = blocker / "out"
    assert main(["infer", flag, str(path)]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == (
        f"pyrtlnet infer: error: {flag} {path}: {blocker} is not a directory; choose another path\n"
    )


def test_closed_stdout_ends_quietly() -> None:
    """``pyrtlnet infer | head -1`` once the reader has gone: no message, no traceback."""
    read, write = os.pipe()
    os.close(read)
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pyrtlnet", "infer", "--quiet"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


def test_ctrl_c_is_one_line_and_leaves_no_dump(tmp_path: Path) -> None:
    """SIGINT during a long single-process run: exit 130, one line, no half-written file."""
    dump = tmp_path / "out.npz"
    argv = ["infer", "--num-images", "5000", "--simulator", "fast", "--jobs", "1"]
    argv += ["--array", "2x16", "--dump", str(dump)]  # 2 rows at batch 1: a warning to wait for
    # `python -m pyrtlnet` with Ctrl-C raising KeyboardInterrupt as in a terminal's foreground
    # job, also where the tests were started in the background (SIGINT inherited ignored).
    foreground = (
        "import runpy, signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
        "sys.argv[0] = 'pyrtlnet'; runpy.run_module('pyrtlnet', run_name='__main__')"
    )
    run = subprocess.Popen(
        [sys.executable, "-c", foreground, *argv],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert run.stderr is not None
    first = run.stderr.readline()  # printed once the plan is made, inside the command
    assert first.startswith("warning: the 2x16 array has more rows than a batch has images")
    run.send_signal(signal.SIGINT)
    out, err = run.communicate(timeout=60)
    assert (run.returncode, out, err) == (130, "", "pyrtlnet infer: error: interrupted\n")
    assert list(tmp_path.iterdir()) == []
