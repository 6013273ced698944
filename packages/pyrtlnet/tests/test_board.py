"""Board builds: the iCE40 PLL setting against icestorm's ``icepll``, the iCEBreaker's pins,
and its top level in Icarus Verilog, driven by a host that knows nothing of its clock."""

import json
import math
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

import pyrtlnet
import qnn_ref
from pyrtlnet import (
    BOARDS,
    PllConfig,
    board_pcf,
    board_top,
    build_byte_bus,
    byte_bus_input,
    byte_bus_results,
    export_verilog,
    ice40_pll,
)
from pyrtlnet.cli import main
from qnn_ref import Model

ICEBREAKER = BOARDS["icebreaker"]


def _icepll(input_mhz: float, output_mhz: float) -> tuple[float, tuple[int, int, int, int]]:
    """icepll's achieved clock and its DIVR, DIVF, DIVQ, FILTER_RANGE for a request."""
    # The fpga extra installs it beside the Python running the tests.
    icepll = shutil.which("yowasp-icepll", path=str(Path(sys.executable).parent))
    text = subprocess.run(
        [icepll or "yowasp-icepll", "-i", f"{input_mhz:g}", "-o", f"{output_mhz:.6f}", "-p"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    achieved = float(re.search(r"F_PLLOUT:\s+([\d.]+) MHz \(achieved\)", text)[1])
    fields = [int(re.search(rf"^{name}:\s+(\d+)", text, re.M)[1]) for name in _FIELDS]
    return achieved, (fields[0], fields[1], fields[2], fields[3])


_FIELDS = ("DIVR", "DIVF", "DIVQ", "FILTER_RANGE")


def _fields(pll: PllConfig) -> tuple[int, int, int, int]:
    return pll.divr, pll.divf, pll.divq, pll.filter_range


@pytest.mark.tool("yowasp-icepll")
@pytest.mark.parametrize(
    ("input_mhz", "requests"),
    [
        (12, (16.2, 20, 21.5, 33.3, 50, 100, 200, 275)),
        (25, (16.5, 36, 50, 100, 150)),
        (100, (17, 60, 125)),
    ],
)
def test_pll_matches_icepll(input_mhz: float, requests: tuple[float, ...]) -> None:
    for request in requests:
        pll = ice40_pll(input_mhz, request)
        assert pll.output_mhz <= request
        assert 533 <= pll.vco_mhz <= 1066
        assert 10 <= pll.pfd_mhz <= 133
        # icepll asked for the clock chosen finds it, with the same dividers and filter.
        achieved, fields = _icepll(input_mhz, pll.output_mhz)
        assert achieved == pytest.approx(pll.output_mhz, abs=1e-3)
        assert fields == _fields(pll)
        # icepll's own choice (the closest, above or below) is ours whenever it is not above
        # the request; when it is above, ours is the next one down.
        achieved, fields = _icepll(input_mhz, request)
        if achieved <= request:
            assert fields == _fields(pll)
        else:
            assert pll.output_mhz < request < achieved


def test_pll_setting_for_the_icebreaker() -> None:
    pll = ice40_pll(12, 20)
    assert _fields(pll) == (0, 52, 5, 1)
    assert (pll.pfd_mhz, pll.vco_mhz, pll.output_mhz) == (12, 636, 19.875)
    assert pll.as_dict()["output_mhz"] == 19.875
    assert pll.as_dict()["requested_mhz"] == 20


@pytest.mark.parametrize(
    ("input_mhz", "output_mhz", "message"),
    [
        (12, 300, r"^the iCE40 PLL's output from 12 MHz is 16.125 to 275 MHz, not 300 MHz$"),
        (12, 16.1, r"^the iCE40 PLL's output from 12 MHz is 16.125 to 275 MHz, not 16.1 MHz$"),
        (12, 15, r"^the iCE40 PLL's output from 12 MHz is 16.125 to 275 MHz, not 15 MHz$"),
        (
            12,
            math.nan,
            r"^the iCE40 PLL's output from 12 MHz is 16.125 to 275 MHz, not nan MHz$",
        ),
        (8, 20, r"^the iCE40 PLL takes a 10 to 133 MHz reference, not 8 MHz$"),
    ],
)
def test_pll_out_of_range(input_mhz: float, output_mhz: float, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        ice40_pll(input_mhz, output_mhz)


def test_icebreaker_pins() -> None:
    pins = ICEBREAKER.pin_map
    assert len(set(pins.values())) == len(pins)  # no package pin twice
    assert pins["clk_in"] == 35  # the 12 MHz oscillator, on the PLL's input pad
    bus = {f"data_in[{i}]" for i in range(8)} | {f"data_out[{i}]" for i in range(8)}
    assert bus | {"wr", "start", "rd", "done"} <= set(pins)
    pcf = board_pcf(ICEBREAKER)
    constrained = dict(re.findall(r"^set_io (\S+)\s+(\d+)", pcf, re.M))
    assert {name: int(pin) for name, pin in constrained.items()} == dict(pins)


def test_board_top_ports_are_the_pins(small_model: Model) -> None:
    bus = build_byte_bus(pyrtlnet.make_plan(small_model, array=(1, 2)))
    text = board_top(bus, ICEBREAKER, ice40_pll(12, 20), core="pyrtlnet")
    header = re.search(r"module pyrtlnet_icebreaker \((.*?)\);", text, re.S)[1]
    ports = {}
    for direction, width, name in re.findall(r"(input|output) (\[7:0\] )?(\w+)", header):
        bits = [f"{name}[{i}]" for i in range(8)] if width else [name]
        ports.update(dict.fromkeys(bits, direction))
    assert set(ports) == set(ICEBREAKER.pin_map)
    assert ".DIVF(7'd52)" in text


#: A PLL that passes its input through and locks after 2 us: enough for the wrapper's logic.
PLL_MODEL = """
`timescale 1ns/1ps
module SB_PLL40_PAD #(
    parameter FEEDBACK_PATH = "SIMPLE",
    parameter [3:0] DIVR = 0, parameter [6:0] DIVF = 0, parameter [2:0] DIVQ = 0,
    parameter [2:0] FILTER_RANGE = 0
) (input PACKAGEPIN, output PLLOUTGLOBAL, output reg LOCK, input RESETB, input BYPASS);
    assign PLLOUTGLOBAL = PACKAGEPIN;
    initial begin LOCK = 0; #2000 LOCK = 1; end
endmodule
"""

#: The host: a microcontroller with no view of the FPGA's clock, each GPIO change 420 ns
#: after the last (over 8 cycles of the 50.3 ns design clock), reading done and data_out
#: after a wait. It writes each batch's frame, starts it, waits for done and reads the results.
HOST = """
`timescale 1ns/1ps
module host;
  reg clk_in = 0, button_n = 1, wr = 0, start = 0, rd = 0;
  reg [7:0] data_in = 0;
  wire led_red_n, led_green_n, done;
  wire [7:0] data_out;
  pyrtlnet_icebreaker board(.clk_in(clk_in), .button_n(button_n), .led_red_n(led_red_n),
    .led_green_n(led_green_n), .data_in(data_in), .wr(wr), .start(start), .rd(rd),
    .done(done), .data_out(data_out));
  always #25.1572 clk_in = !clk_in;  // 19.875 MHz, the PLL's output (the model passes it on)
  reg [7:0] frames [0:{frame_bytes}];
  integer batch, i, out;
  initial begin
    $readmemh("in.hex", frames);
    out = $fopen("out.txt");
    #1000 $fdisplay(out, "reset %0d done %0d", !led_red_n, done);
    #7000 $fdisplay(out, "reset %0d done %0d", !led_red_n, done);
    for (batch = 0; batch < {batches}; batch = batch + 1) begin
      for (i = 0; i < {in_bytes}; i = i + 1) begin
        data_in = frames[batch * {in_bytes} + i];
        wr = 1;
        #420 wr = 0;
        #420;
      end
      start = 1;
      #420 start = 0;
      #420;
      while (!done) #420;
      for (i = 0; i < {out_bytes}; i = i + 1) begin
        $fdisplay(out, "%02x", data_out);
        rd = 1;
        #420 rd = 0;
        #420;
      end
    end
    $fclose(out);
    $finish;
  end
endmodule
"""


@pytest.mark.tool("iverilog", "vvp")
def test_board_top_in_icarus(small_model: Model, tmp_path: Path) -> None:
    """The top level a board build routes (PLL, reset, synchronizers), in Icarus with a PLL
    model: two batches through slow, asynchronous strobes give the NumPy reference's results."""
    bus = build_byte_bus(pyrtlnet.make_plan(small_model, array=(1, 2)))
    golden = qnn_ref.golden(small_model, count=2, rounding=bus.plan.rounding, backend="numpy")
    frames = [byte for q in golden.input for byte in byte_bus_input(bus, q[None])]
    (tmp_path / "in.hex").write_text("".join(f"{byte:02x}\n" for byte in frames))
    sizes = {"batches": 2, "in_bytes": bus.in_bytes, "out_bytes": bus.out_bytes}
    (tmp_path / "host.v").write_text(HOST.format(frame_bytes=len(frames) - 1, **sizes))
    export_verilog(bus.block, tmp_path / "pyrtlnet.v")
    (tmp_path / "top.v").write_text(board_top(bus, ICEBREAKER, ice40_pll(12, 20), core="pyrtlnet"))
    (tmp_path / "pll.v").write_text(PLL_MODEL)
    run = {"cwd": tmp_path, "check": True, "capture_output": True}
    sources = ["host.v", "top.v", "pll.v", "pyrtlnet.v"]
    subprocess.run(["iverilog", "-g2012", "-s", "host", "-o", "sim", *sources], **run)
    subprocess.run(["vvp", "-n", "sim"], **run)
    lines = (tmp_path / "out.txt").read_text().splitlines()
    # In reset until the PLL has locked (at 2 us) and 64 cycles have passed; no batch run yet.
    assert lines[:2] == ["reset 1 done 0", "reset 0 done 0"]
    for batch in range(2):
        record = lines[2 + batch * bus.out_bytes : 2 + (batch + 1) * bus.out_bytes]
        predictions, logits = byte_bus_results(bus, [int(byte, 16) for byte in record])
        np.testing.assert_array_equal(predictions, golden.predictions[batch : batch + 1])
        np.testing.assert_array_equal(logits, golden.layers[-1][batch : batch + 1], strict=True)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--target", "ecp5-25k"],
            "pyrtlnet pnr: error: --board icebreaker builds for the iCEBreaker's ice40-up5k, "
            "not --target ecp5-25k: leave --target out\n",
        ),
        (
            ["--interface", "axi"],
            "pyrtlnet pnr: error: --board icebreaker puts the byte bus on the iCEBreaker's pins, "
            "not --interface axi: leave --interface out\n",
        ),
        (
            ["--clock", "300"],
            "pyrtlnet pnr: error: --clock: the iCE40 PLL's output from 12 MHz is 16.125 to "
            "275 MHz, not 300 MHz\n",
        ),
    ],
)
def test_cli_board_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["pnr", "--board", "icebreaker", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == message


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (
            {"board": "icebreaker", "target": "ecp5-85k"},
            r"^the iCEBreaker carries an ice40-up5k, not an ecp5-85k: leave the target out$",
        ),
        ({"board": "ulx3s"}, r"^unknown board 'ulx3s'; choose from icebreaker$"),
        (
            {"board": "icebreaker", "clock_mhz": 400},
            r"^the iCE40 PLL's output from 12 MHz is 16.125 to 275 MHz, not 400 MHz$",
        ),
    ],
)
def test_run_pnr_board_errors(small_model: Model, options: dict, message: str) -> None:
    bus = build_byte_bus(pyrtlnet.make_plan(small_model, array=(1, 2)))
    with pytest.raises(ValueError, match=message):
        pyrtlnet.run_pnr(bus, **{"clock_mhz": 20, **options})


def test_run_pnr_board_needs_the_byte_bus(small_model: Model) -> None:
    design = pyrtlnet.build_design(pyrtlnet.make_plan(small_model, array=(1, 2)))
    message = (
        r"^the iCEBreaker's pins carry the byte bus: pass the design through build_byte_bus "
        r"\(the byte interface\), not a Design$"
    )
    with pytest.raises(ValueError, match=message):
        pyrtlnet.run_pnr(design, board="icebreaker", clock_mhz=20)


def test_cli_board_build_says_the_pll_and_warns_when_slower(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """``--board`` routes the byte bus for the board's FPGA at the PLL's clock; a routed Fmax
    below that clock is a warning, since the bitstream would be run at it."""
    calls = []

    def fake_pnr(design: object, **options: object) -> pyrtlnet.PnrReport:
        calls.append((design, options))
        pll = ice40_pll(12, float(options["clock_mhz"]))
        return pyrtlnet.PnrReport(
            target="ice40-up5k",
            device="iCE40UP5K",
            tools={"yosys": "0.70 (yowasp)"},
            utilization={"ICESTORM_PLL": (1, 1)},
            fmax_mhz=18.5,
            clock_mhz=pll.output_mhz,
            cycles_per_batch=795,
            batch_size=1,
            seconds={},
            bitstream=tmp_path / "mlp.bin",
            board="icebreaker",
            pll=pll,
            pcf=tmp_path / "mlp.pcf",
        )

    monkeypatch.setattr("pyrtlnet._pnrcli.run_pnr", fake_pnr)
    argv = ["pnr", "--board", "icebreaker", "--array", "1x2", "--clock", "20"]
    report = tmp_path / "report.json"
    assert main([*argv, "--bitstream", str(tmp_path / "mlp.bin"), "--json", str(report)]) == 0
    [(design, options)] = calls
    assert type(design) is pyrtlnet.ByteBusDesign
    assert (options["target"], options["board"], options["clock_mhz"]) == (
        "ice40-up5k",
        "icebreaker",
        20.0,
    )
    captured = capsys.readouterr()
    assert "byte interface, on iCEBreaker\n" in captured.out
    assert (
        "iCEBreaker: PLL 12 MHz -> 19.875 MHz (asked 20; DIVR 0, DIVF 52, DIVQ 5, FILTER_RANGE 1)"
        in captured.out
    )
    assert "on the board at 19.875 MHz: 25,000 images/s, 40.00 us per batch\n" in captured.out
    assert f"wrote {tmp_path / 'mlp.pcf'}\nwrote {tmp_path / 'mlp.bin'}\n" in captured.out
    assert captured.err.endswith(
        "warning: the routed design is slower than the PLL's 19.875 MHz: the bitstream may "
        "compute wrong results on the board; rebuild with --clock 18.5 or less\n"
    )
    assert json.loads(report.read_text())["pll"]["output_mhz"] == 19.875
