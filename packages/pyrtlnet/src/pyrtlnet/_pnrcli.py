"""The ``pnr`` command of the ``pyrtlnet`` CLI: yosys, nextpnr and a bitstream, with open tools.

``pyrtlnet.cli`` registers it with :func:`add_pnr_command`; it takes the same model and design
options as ``synth`` (:func:`~pyrtlnet._synthcli.add_synthesis_arguments`), and runs
:func:`pyrtlnet.run_pnr`. ``--board`` chooses the target and the interface itself.
"""

import argparse
import math
import sys
from pathlib import Path
from typing import TextIO

from qnn_ref import terminal
from qnn_ref.clitools import CommandError, UsageError, add_command, check_output_file

from ._axi import build_axi
from ._board import BOARDS, ice40_pll
from ._bytebus import build_byte_bus
from ._design import build_design
from ._hwcli import _describe, plan_from_arguments
from ._pnr import TARGETS, TOOLS, PnrError, PnrProgress, PnrReport, run_pnr
from ._synthcli import add_synthesis_arguments, write_json_report

__all__ = ["add_pnr_command"]

#: ``--target`` and ``--interface`` when neither they nor ``--board`` are given.
DEFAULT_TARGET, DEFAULT_INTERFACE = "ecp5-25k", "ports"

#: ``--interface``: what the top-level pins are, by name.
INTERFACES = {
    "ports": lambda design: design,  # the design's own memory ports, as wide as its memories
    "byte": build_byte_bus,  # an 8-bit bus with strobes: 22 pins for any model
    "axi": build_axi,  # AXI4-Stream in and out, AXI4-Lite registers
}


def _clock(text: str) -> float:
    """argparse type of ``--clock``: a positive number of MHz."""
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not math.isfinite(value) or value <= 0:
        raise argparse.ArgumentTypeError(
            f"the clock must be a positive number of MHz, not {text!r}"
        )
    return value


def _target_and_interface(args: argparse.Namespace) -> tuple[str, str]:
    """``--target`` and ``--interface``, or the board's; a board asked for others, or for a
    clock its PLL cannot make, is a usage error."""
    if args.board is None:
        return args.target or DEFAULT_TARGET, args.interface or DEFAULT_INTERFACE
    board = BOARDS[args.board]
    if args.target not in (None, board.target):
        raise UsageError(
            f"--board {board.name} builds for the {board.title}'s {board.target}, not "
            f"--target {args.target}: leave --target out"
        )
    if args.interface not in (None, "byte"):
        raise UsageError(
            f"--board {board.name} puts the byte bus on the {board.title}'s pins, not "
            f"--interface {args.interface}: leave --interface out"
        )
    try:
        ice40_pll(board.oscillator_mhz, args.clock)
    except ValueError as error:
        raise UsageError(f"--clock: {error}") from None
    return board.target, "byte"


def _report_step(step: PnrProgress) -> None:
    if step.seconds is None:
        print(f"{step.step} ...", file=sys.stderr, flush=True)
    else:
        print(f"{step.step}: {step.seconds:.1f} s", file=sys.stderr, flush=True)


def _lines(report: PnrReport) -> list[str]:
    """The report as the terminal shows it: a utilization table, then timing and throughput."""
    rows = [
        (name, f"{used:,}", f"{available:,}", f"{100 * used / available:.0f}%")
        for name, (used, available) in report.utilization.items()
    ]
    verdict = "met" if report.constraint_met else "NOT met"
    pll = report.pll
    board: list[str] = []
    on_board: list[str] = []
    if pll is not None:
        clock = pll.output_mhz
        board = [
            f"{BOARDS[str(report.board)].title}: PLL {pll.input_mhz:g} MHz -> {clock:g} MHz "
            f"(asked {pll.requested_mhz:g}; DIVR {pll.divr}, DIVF {pll.divf}, DIVQ {pll.divq}, "
            f"FILTER_RANGE {pll.filter_range})"
        ]
        board_rate = report.batch_size * clock * 1e6 / report.cycles_per_batch
        on_board = [
            f"on the board at {clock:g} MHz: {board_rate:,.0f} images/s, "
            f"{report.cycles_per_batch / clock:.2f} us per batch"
        ]
    return [
        terminal.table(["resource", "used", report.device, "share"], rows),
        "",
        *board,
        f"Fmax: {report.fmax_mhz:.1f} MHz routed (constraint {report.clock_mhz:g} MHz: {verdict})",
        f"at Fmax: {report.images_per_second:,.0f} images/s, {report.latency_us:.2f} us per "
        f"batch of {report.batch_size} ({report.cycles_per_batch:,} cycles from start to done)",
        *on_board,
        "tools: " + ", ".join(f"{name} {version}" for name, version in report.tools.items()),
    ]


def _pnr(args: argparse.Namespace, out: TextIO) -> int:
    target, interface = _target_and_interface(args)
    for path, flag in ((args.json, "--json"), (args.bitstream, "--bitstream")):
        if path is not None:
            check_output_file(path, flag=flag)
    plan = plan_from_arguments(args)
    design = INTERFACES[interface](build_design(plan))
    # The default interface goes unsaid: the design's own ports.
    pins = "" if interface == "ports" else f", {interface} interface,"
    where = TARGETS[target].device if args.board is None else BOARDS[args.board].title
    print(f"{_describe(plan)}{pins} on {where}", file=out, flush=True)
    try:
        report = run_pnr(
            design,
            target=target,
            clock_mhz=args.clock,
            board=args.board,
            bitstream=args.bitstream,
            progress=_report_step,
            tools=args.tools,
        )
    except PnrError as error:
        raise CommandError(str(error)) from None
    print("\n".join(["", *_lines(report)]), file=out, flush=True)
    if report.pll is not None and not report.constraint_met:
        print(
            f"warning: the routed design is slower than the PLL's {report.clock_mhz:g} MHz: the "
            f"bitstream may compute wrong results on the board; rebuild with --clock "
            f"{report.fmax_mhz:.1f} or less",
            file=sys.stderr,
        )
    for written in (report.pcf, report.bitstream):
        if written is not None:
            print(f"wrote {written}", file=out)
    write_json_report(args, plan, {"interface": interface, **report.as_dict()}, out)
    return 0


def add_pnr_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``pnr`` sub-command with its handler.

    :param commands: the CLI's ``add_subparsers(dest="command")`` result.
    """
    pnr = add_command(
        commands,
        "pnr",
        _pnr,
        help="place and route the hardware on an iCE40 or ECP5 FPGA: utilization, Fmax, bitstream",
        description="Export the hardware for a model and configuration, synthesize it with yosys "
        "and place and route it with nextpnr for an FPGA: the device's resources used, the "
        "routed Fmax against the clock constraint, images/s and latency at that Fmax, and "
        "optionally the bitstream (icepack / ecppack). The open tools come with "
        "pip install 'pyrtlnet[fpga]'.",
    )
    add_synthesis_arguments(pnr)
    pnr.add_argument(
        "--target",
        choices=tuple(TARGETS),
        help=f"the FPGA (default {DEFAULT_TARGET}, or the board's)",
    )
    pnr.add_argument(
        "--interface",
        choices=tuple(INTERFACES),
        help="the top-level pins: ports, the design's own memory ports; byte, an 8-bit bus "
        "with strobes (22 pins, fits an iCE40 UP5K); axi, AXI4-Stream and AXI4-Lite "
        f"(default {DEFAULT_INTERFACE}, or byte with --board)",
    )
    pnr.add_argument(
        "--board",
        choices=tuple(BOARDS),
        help="build for a board: its FPGA, the byte bus on its connectors, its PLL making "
        "--clock (or the closest clock below) from its oscillator, a reset until the PLL locks; "
        "writes the pin constraints (.pcf) beside the bitstream",
    )
    pnr.add_argument(
        "--clock",
        type=_clock,
        default=50.0,
        metavar="MHZ",
        help="clock constraint for placement and routing, in MHz; with --board, the clock "
        "asked of its PLL (default %(default)g)",
    )
    pnr.add_argument(
        "--tools",
        choices=TOOLS,
        default="auto",
        help="yowasp: the fpga extra's tools; native: yosys and nextpnr on PATH; auto: YoWASP "
        "when installed (default %(default)s)",
    )
    pnr.add_argument(
        "--bitstream", type=Path, metavar="FILE", help="also write the bitstream to FILE"
    )
