"""The ``verilog``, ``verilate`` and ``synth`` commands, through a parser built like the CLI's."""

import io
import json
import shutil
from pathlib import Path

import pytest

from pyrtlnet._hwcli import add_hardware_commands
from qnn_ref import Model
from qnn_ref.cli import ArgumentParser, run_main


def _run(argv: list[str]) -> tuple[int, str, str]:
    parser = ArgumentParser(prog="pyrtlnet")
    handlers = add_hardware_commands(parser.add_subparsers(dest="command", required=True))
    out, err = io.StringIO(), io.StringIO()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:
        return int(exit_.code or 0), "", ""
    status = run_main(lambda: handlers[args.command](args, out), prog="pyrtlnet", stderr=err)
    return status, out.getvalue(), err.getvalue()


def test_verilog_writes_design_and_testbench(tmp_path: Path) -> None:
    status, out, _ = _run(
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
    design = (tmp_path / "design.v").read_text()
    assert design.startswith("// pyrtlnet design for default.tflite (144-18-10): one 2x4 array")
    assert (
        "module pyrtlnet(clk, rst, in_addr, in_data, in_we, out_addr, pred_addr, start, done,"
        in design
    )
    assert sorted(p.name for p in tmp_path.glob("*.hex")) == [
        "checks_out.hex",
        "checks_pred.hex",
        "writes.hex",
    ]


@pytest.mark.iverilog
@pytest.mark.skipif(shutil.which("iverilog") is None, reason="iverilog is not installed")
def test_verilate_with_icarus_passes(tmp_path: Path) -> None:
    vcd = tmp_path / "run.vcd"
    status, out, err = _run(
        [
            *("verilate", "--simulator", "iverilog", "--num-images", "2", "--start-image", "40"),
            *("--array", "1x8", "--vcd", str(vcd)),
        ]
    )
    assert (status, err) == (0, "")
    assert "cycles: " in out
    assert "equal to the documented formula" in out
    assert out.splitlines()[-1].startswith("result: PASS, 0 mismatching words in 2 images")
    assert vcd.stat().st_size > 0


@pytest.mark.parametrize(
    ("argv", "status", "message"),
    [
        (["synth", "--flows", "synth,vivado"], 2, ""),
        (["verilog", "--array", "0x4"], 2, ""),
        (
            ["verilate", "--architecture", "per-layer", "--array", "2x2"],
            2,
            "pyrtlnet: error: the per-layer architecture sizes its arrays itself",
        ),
        (
            ["verilog", "--start-image", "9999", "--num-images", "2"],
            2,
            "pyrtlnet: error: images 9999 to 10000 are out of range",
        ),
    ],
)
def test_usage_errors(
    argv: list[str], status: int, message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    got, _, err = _run(argv)
    assert got == status
    assert err.startswith(message)
    if not message:  # argparse's own one-line error
        assert "error:" in capsys.readouterr().err


@pytest.mark.yosys
@pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")
def test_synth_generic_flow_json(trained_models: dict[str, Model], tmp_path: Path) -> None:
    report = tmp_path / "report.json"
    model = str(trained_models["8x8-16"].path)
    status, out, _ = _run(
        ["synth", "--model", model, "--array", "1x1", "--flows", "synth", "--json", str(report)]
    )
    assert status == 0
    data = json.loads(report.read_text())
    assert data["design"].startswith("pyrtlnet design for 8x8-16.tflite (64-16-10): one 1x1 array")
    assert data["cycles_per_batch"] > 0
    assert data["report"]["generic_cells"] > 1000
    assert f"{data['report']['generic_cells']:,}" in out
    assert "budget" not in data  # no synth_xilinx flow, no budget check
