"""The ``synth`` command of the ``pyrtlnet`` CLI: yosys area, FPGA budget and longest path.

``pyrtlnet.cli`` registers it with :func:`add_synth_command`; it takes the same model and
design options as ``verilog`` and ``verilate`` (:mod:`pyrtlnet._hwcli`). ``pnr`` shares its
options and its JSON report (:func:`add_synthesis_arguments`, :func:`write_json_report`).
"""

import argparse
import json
import sys
import tempfile
from pathlib import Path
from typing import Any, TextIO

from qnn_ref import terminal
from qnn_ref.cliinfer import add_batch_argument, add_model_argument, add_rounding_argument
from qnn_ref.clitools import CommandError, add_command, check_output_file, write_file

from ._design import build_design
from ._hwcli import _ROUNDING_HELP, BATCH_HELP, _describe, add_design_arguments, plan_from_arguments
from ._plan import Plan
from ._synth import (
    FLOWS,
    PYNQ_Z2,
    Budget,
    SynthError,
    SynthProgress,
    check_budget,
    estimate_synthesis,
    run_yosys,
)
from ._verilog import DESIGN_FILE, export_verilog

__all__ = ["BUDGETS", "add_synth_command", "add_synthesis_arguments", "write_json_report"]

#: Named FPGA budgets for ``pyrtlnet synth --target`` (Xilinx DS190 Zynq-7000 and DS180 7 series).
BUDGETS: dict[str, Budget] = {
    "zynq-7020": PYNQ_Z2,
    "zynq-7010": Budget("Zynq-7010", luts=17_600, ffs=35_200, dsp48e1=80, bram36=60),
    "artix-7-35t": Budget("Artix-7 35T", luts=20_800, ffs=41_600, dsp48e1=90, bram36=50),
}


def add_synthesis_arguments(parser: argparse.ArgumentParser) -> None:
    """The options of the commands that synthesize a design: the model, its batch and
    rounding, the design's array and architecture, and ``--json FILE``."""
    add_model_argument(parser)
    add_batch_argument(parser, help=BATCH_HELP)
    add_rounding_argument(parser, help=_ROUNDING_HELP)
    add_design_arguments(parser)
    parser.add_argument("--json", type=Path, metavar="FILE", help="also write the report as JSON")


def write_json_report(
    args: argparse.Namespace, plan: Plan, report: dict[str, Any], out: TextIO
) -> None:
    """With ``--json FILE``, write the design's description and ``report`` to ``FILE`` (whole
    or not at all) and say so on ``out``."""
    if args.json is None:
        return
    text = json.dumps({"design": _describe(plan), **report}, indent=2) + "\n"
    write_file(args.json, lambda file: file.write(text.encode()))
    print(f"wrote {args.json}", file=out)


def _synth(args: argparse.Namespace, out: TextIO) -> int:
    if args.json is not None:
        check_output_file(args.json, flag="--json")
    plan = plan_from_arguments(args)
    budget = BUDGETS[args.target]
    design = build_design(plan)
    estimate = estimate_synthesis(design)
    if estimate.large:
        print(
            f"warning: a large design for yosys ({estimate.processing_elements} "
            f"multiply-accumulate elements, {estimate.logic_bits:,} bits of logic, "
            f"{estimate.memory_bits:,} memory bits): expect tens of minutes or more",
            file=sys.stderr,
        )

    def report_flow(step: SynthProgress) -> None:
        if step.result is None:
            print(f"yosys {step.flow} ({step.index}/{step.count}) ...", file=sys.stderr)
        else:
            print(f"yosys {step.flow}: {step.result.seconds:.1f} s", file=sys.stderr)

    with tempfile.TemporaryDirectory(prefix="pyrtlnet-") as scratch:
        verilog = Path(scratch) / DESIGN_FILE
        export_verilog(design, verilog, header=_describe(plan))
        try:
            report = run_yosys(verilog, flows=args.flows, progress=report_flow)
        except SynthError as error:
            raise CommandError(str(error).splitlines()[0]) from None
    lines = [
        _describe(plan),
        f"cycles: {plan.cycles_per_batch:,} per batch of {plan.batch_size}, "
        f"{plan.cycles_per_batch / plan.batch_size:.1f} per image",
        "",
        terminal.table(
            ["yosys flow", "cells", "seconds"],
            [(f.flow, f"{f.cells:,}", f"{f.seconds:.1f}") for f in report.flows.values()],
        ),
    ]
    summary: dict[str, object] = {"cycles_per_batch": plan.cycles_per_batch}
    if report.xilinx is not None:
        check = check_budget(report, budget)
        rows = [
            (name, f"{used:,g}", f"{available:,}", f"{100 * used / available:.1f}%")
            for name, used, available in check.rows
        ]
        rows.append(("CARRY4", f"{report.xilinx['carry4']:,g}", "", ""))
        lines += ["", terminal.table(["synth_xilinx", "used", budget.name, "share"], rows)]
        verdict = "fits" if check.fits else "does NOT fit"
        lines.append(f"budget: the design {verdict} the {budget.name}")
        summary["budget"] = check.to_json()
    if report.ice40 is not None:
        ice = report.ice40
        lines += [
            "",
            f"synth_ice40: {ice['lut4']:,} LUT4, {ice['carry']:,} SB_CARRY, {ice['ffs']:,} "
            f"flip-flops, {ice['ram']} SB_RAM40_4K, {ice['mac16']} SB_MAC16",
        ]
    if report.logic_depth is not None:
        lines.append(f"longest combinational path: {report.logic_depth} gates (synth, ltp -noff)")
    arrival = None if report.xilinx is None else report.xilinx["arrival_ps"]
    if arrival:
        lines.append(
            f"longest path estimate: {arrival / 1000:.2f} ns latest arrival (synth_xilinx, sta on "
            f"the cells' delays, no routing): about {1e6 / arrival:.0f} MHz at best"
        )
    print("\n".join(lines), file=out, flush=True)
    write_json_report(args, plan, {**summary, "report": report.to_json()}, out)
    return 0


def add_synth_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``synth`` sub-command with its handler.

    :param commands: the CLI's ``add_subparsers(dest="command")`` result.
    """
    synth = add_command(
        commands,
        "synth",
        _synth,
        help="synthesize the hardware with yosys: cells, LUTs, DSPs, FPGA budget, longest path",
        description="Export the hardware for a model and configuration and synthesize it with "
        "yosys: generic cells (synth), Xilinx 7-series LUTs, flip-flops, DSP48E1 and BRAM "
        "(synth_xilinx) checked against an FPGA budget, iCE40 LUT4, carry and RAM (synth_ice40), "
        "and a longest-path estimate.",
    )
    add_synthesis_arguments(synth)
    synth.add_argument(
        "--target",
        choices=tuple(BUDGETS),
        default="zynq-7020",
        help="FPGA budget to check the synth_xilinx figures against (default %(default)s: "
        "the Pynq-Z2's 53,200 LUTs, 106,400 FFs, 220 DSP48E1, 140 BRAM36)",
    )
    synth.add_argument(
        "--flows",
        type=_flows,
        default=FLOWS,
        metavar="LIST",
        help=f"comma-separated yosys flows to run (default {','.join(FLOWS)})",
    )


def _flows(text: str) -> tuple[str, ...]:
    flows = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [f for f in flows if f not in FLOWS]
    if unknown or not flows:
        raise argparse.ArgumentTypeError(
            f"flows must be a comma-separated subset of {','.join(FLOWS)}, not {text!r}"
        )
    return flows
