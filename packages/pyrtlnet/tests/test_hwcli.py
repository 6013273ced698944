"""The ``verilog``, ``verilate`` and ``synth`` commands, through the ``pyrtlnet`` CLI."""

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest

import pyrtlnet._hwcli
import pyrtlnet._synthcli
from pyrtlnet.cli import main
from qnn_ref import Model


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str]):  # type: ignore[no-untyped-def]
    def run(argv: list[str]) -> tuple[int, str, str]:
        status = main(argv)
        captured = capsys.readouterr()
        return status, captured.out, captured.err

    return run


def test_verilog_writes_design_and_testbench(cli, tmp_path: Path) -> None:
    status, out, _ = cli(
        [
            "verilog",
            "--num-images",
            "5",
            "--batch-size",
            "2",
            "--array",
            "2x4",
            "--output",
            str(tmp_path),
        ]
    )
    assert status == 0
    assert "test images 0-4 in 3 batches" in out
    design = (tmp_path / "pyrtlnet.v").read_text()  # named after its module
    assert design.startswith("// pyrtlnet design for default.tflite (144-18-10): one 2x4 array")
    assert re.search(r"^module pyrtlnet\b", design, re.MULTILINE)
    for port in ("clk", "rst", "in_addr", "in_data", "in_we", "start", "done"):  # the handshake
        assert re.search(rf"\b(input|output)\b[^;]*\b{port}\b", design), port
    hex_files = {p.name for p in tmp_path.glob("*.hex")}
    assert {"writes.hex", "checks_out.hex", "checks_pred.hex"} <= hex_files


@pytest.mark.tool("iverilog", "vvp")
def test_verilate_with_icarus_passes(cli, tmp_path: Path) -> None:
    vcd = tmp_path / "run.vcd"
    status, out, err = cli(
        [
            *("verilate", "--simulator", "iverilog", "--num-images", "2", "--start-image", "40"),
            *("--array", "1x8", "--vcd", str(vcd)),
        ]
    )
    assert (status, err) == (0, "")
    assert "cycles: " in out
    assert "equal to the documented formula" in out
    assert out.splitlines()[-2].startswith("result: PASS, 0 mismatching words in 2 images")
    assert out.splitlines()[-1] == f"wrote {vcd} (open with: gtkwave {vcd})"
    assert vcd.stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (
            ["synth", "--flows", "synth,vivado"],
            2,
            "pyrtlnet synth: error: argument --flows: flows must be a comma-separated subset of ",
        ),
        (
            ["verilog", "--array", "0x4"],
            2,
            "pyrtlnet verilog: error: argument --array: array size must be ROWSxCOLS",
        ),
        (
            ["verilate", "--architecture", "per-layer", "--array", "2x2"],
            2,
            "pyrtlnet verilate: error: the per-layer architecture sizes its arrays itself",
        ),
        (
            ["verilog", "--start-image", "9999", "--num-images", "2"],
            2,
            "pyrtlnet verilog: error: images 9999 to 10000 are out of range",
        ),
    ],
)
def test_usage_errors(cli, argv: list[str], status: int, message: str) -> None:
    got, out, err = cli(argv)
    assert (got, out) == (status, "")
    assert err.startswith(message)
    assert err.count("\n") == 1


@pytest.mark.parametrize("command", ["infer", "verilog", "verilate", "synth"])
def test_a_model_the_hardware_does_not_run_is_one_line(cli, tmp_path: Path, command: str) -> None:
    """The shipped CNN runs on the shared array only: per-layer is exit 2, one line, no traceback.

    2, not 1: nothing failed, the command line asked for a design this hardware does not have;
    the fix is another ``--architecture``.
    """
    argv = [command, "--model", "cnn", "--architecture", "per-layer"]
    if command == "verilog":
        argv += ["--output", str(tmp_path / "v")]
    got, out, err = cli(argv)
    assert (got, out) == (2, "")
    assert err == (
        f"pyrtlnet {command}: error: the per-layer architecture is not offered for "
        "convolutional models (layer 0 is CONV_2D); use the shared architecture\n"
    )
    assert not (tmp_path / "v").exists()


@pytest.mark.parametrize(
    ("argv", "flag", "what"),
    [
        (["verilog", "--output", "{file}/design"], "--output", "{file} is not a directory"),
        (["verilate", "--output", "{file}"], "--output", "{file} is not a directory"),
        (["verilate", "--vcd", "{file}/run.vcd"], "--vcd", "{file} is not a directory"),
        (["synth", "--json", "{dir}"], "--json", "is a directory; give a file name"),
    ],
)
def test_unwritable_output_is_rejected_before_the_work(
    cli,
    forbid_build: Callable[..., None],
    tmp_path: Path,
    argv: list[str],
    flag: str,
    what: str,
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    forbid_build(pyrtlnet._hwcli, pyrtlnet._synthcli)
    argv = [a.format(file=blocker, dir=tmp_path) for a in argv]
    status, out, err = cli(argv)
    assert (status, out) == (2, "")
    path = argv[argv.index(flag) + 1]
    assert err.startswith(f"pyrtlnet {argv[0]}: error: {flag} {path}: ")
    assert what.format(file=blocker) in err
    assert err.count("\n") == 1


def test_verilog_help_fits_the_command(cli) -> None:
    status, out, _ = cli(["verilog", "--help"])
    assert status == 0
    text = " ".join(out.split())  # argparse wraps the help to the terminal
    assert "--num-images N how many consecutive test images to run (default 1) " in text
    assert "--batch-size N images the hardware runs together, the batch its memories hold" in text


def test_one_batch_is_singular(cli, tmp_path: Path) -> None:
    status, out, _ = cli(["verilog", "--output", str(tmp_path)])
    assert status == 0
    assert "test images 0-0 in 1 batch; " in out


@pytest.mark.tool("yosys")
def test_synth_generic_flow_json(cli, trained_models: dict[str, Model], tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    model = str(trained_models["8x8-16"].path)
    status, out, _ = cli(
        ["synth", "--model", model, "--array", "1x1", "--flows", "synth", "--json", str(report)]
    )
    assert status == 0
    data = json.loads(report.read_text())
    assert data["design"].startswith("pyrtlnet design for 8x8-16.tflite (64-16-10): one 1x1 array")
    assert data["cycles_per_batch"] > 0
    assert data["report"]["generic_cells"] > 1000
    assert f"{data['report']['generic_cells']:,}" in out
    assert "budget" not in data  # no synth_xilinx flow, no budget check
