"""The ``pnr`` command of the ``pyrtlnet`` CLI: yosys, nextpnr and a bitstream, with open tools.

``pyrtlnet.cli`` registers it with :func:`add_pnr_command`; it takes the same model and design
options as ``synth`` (:mod:`pyrtlnet._hwcli`), and runs :func:`pyrtlnet.run_pnr`.
"""

import argparse
import json
import math
import sys
from pathlib import Path
from typing import TextIO

from qnn_ref import terminal
from qnn_ref.cliinfer import add_batch_argument, add_model_argument, add_rounding_argument
from qnn_ref.clitools import CommandError, add_command, check_output_file, write_file

from ._axi import build_axi
from ._bytebus import build_byte_bus
from ._design import build_design
from ._hwcli import _ROUNDING_HELP, BATCH_HELP, _describe, add_design_arguments, plan_from_arguments
from ._pnr import TARGETS, TOOLS, PnrError, PnrProgress, PnrReport, run_pnr

__all__ = ["add_pnr_command"]

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
    return [
        terminal.table(["resource", "used", report.device, "share"], rows),
        "",
        f"Fmax: {report.fmax_mhz:.1f} MHz routed (constraint {report.clock_mhz:g} MHz: {verdict})",
        f"at Fmax: {report.images_per_second:,.0f} images/s, {report.latency_us:.2f} us per "
        f"batch of {report.batch_size} ({report.cycles_per_batch:,} cycles from start to done)",
        "tools: " + ", ".join(f"{name} {version}" for name, version in report.tools.items()),
    ]


def _pnr(args: argparse.Namespace, out: TextIO) -> int:
    for path, flag in ((args.json, "--json"), (args.bitstream, "--bitstream")):
        if path is not None:
            check_output_file(path, flag=flag)
    plan = plan_from_arguments(args)
    design = INTERFACES[args.interface](build_design(plan))
    # The default interface goes unsaid: the design's own ports.
    pins = "" if args.interface == "ports" else f", {args.interface} interface,"
    print(f"{_describe(plan)}{pins} on {TARGETS[args.target].device}", file=out, flush=True)
    try:
        report = run_pnr(
            design,
            target=args.target,
            clock_mhz=args.clock,
            bitstream=args.bitstream,
            progress=_report_step,
            tools=args.tools,
        )
    except PnrError as error:
        raise CommandError(str(error)) from None
    print("\n".join(["", *_lines(report)]), file=out, flush=True)
    if args.bitstream is not None:
        print(f"wrote {args.bitstream}", file=out)
    if args.json is not None:
        text = (
            json.dumps(
                {"design": _describe(plan), "interface": args.interface, **report.as_dict()},
                indent=2,
            )
            + "\n"
        )
        write_file(args.json, lambda file: file.write(text.encode()))
        print(f"wrote {args.json}", file=out)
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
    add_model_argument(pnr)
    add_batch_argument(pnr, help=BATCH_HELP)
    add_rounding_argument(pnr, help=_ROUNDING_HELP)
    add_design_arguments(pnr)
    pnr.add_argument(
        "--target",
        choices=tuple(TARGETS),
        default="ecp5-25k",
        help="the FPGA (default %(default)s)",
    )
    pnr.add_argument(
        "--interface",
        choices=tuple(INTERFACES),
        default="ports",
        help="the top-level pins: ports, the design's own memory ports; byte, an 8-bit bus "
        "with strobes (22 pins, fits an iCE40 UP5K); axi, AXI4-Stream and AXI4-Lite "
        "(default %(default)s)",
    )
    pnr.add_argument(
        "--clock",
        type=_clock,
        default=50.0,
        metavar="MHZ",
        help="clock constraint for placement and routing, in MHz (default %(default)g)",
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
    pnr.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")
