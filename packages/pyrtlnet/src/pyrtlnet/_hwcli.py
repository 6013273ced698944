"""The hardware-flow commands of the ``pyrtlnet`` CLI: ``verilog``, ``verilate`` and ``synth``.

``pyrtlnet.cli`` registers them with :func:`add_hardware_commands`; each handler takes the parsed
arguments and the output stream and returns the exit status, as ``pyrtlnet infer`` does.
"""

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from qnn_ref import ROUNDINGS, Model, default_model_path, golden, read_model, terminal
from qnn_ref.cli import (
    CommandError,
    UsageError,
    add_inference_arguments,
    positive_int,
    select_images,
)

from ._accelerator import Accelerator
from ._plan import ARCHITECTURES, DEFAULT_COLS, MAX_DEFAULT_ROWS, Plan, make_plan, parse_array
from ._synth import FLOWS, PYNQ_Z2, Budget, SynthError, check_budget, run_yosys
from ._verilator import SIMULATORS, SimulationError, run_testbench
from ._verilog import DESIGN_FILE, TestbenchFiles, export_verilog, write_inference_testbench

__all__ = ["BUDGETS", "add_design_arguments", "add_hardware_commands"]

#: Named FPGA budgets for ``pyrtlnet synth --target`` (Xilinx DS190 Zynq-7000 and DS180 7 series).
BUDGETS: dict[str, Budget] = {
    "zynq-7020": PYNQ_Z2,
    "zynq-7010": Budget("Zynq-7010", luts=17_600, ffs=35_200, dsp48e1=80, bram36=60),
    "artix-7-35t": Budget("Artix-7 35T", luts=20_800, ffs=41_600, dsp48e1=90, bram36=50),
}

Handler = Callable[[argparse.Namespace, TextIO], int]


def _array(text: str) -> tuple[int, int]:
    try:
        return parse_array(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--array`` and ``--architecture``: the hardware configuration options.

    If ``parser`` already has qnn-ref's ``--batch-size`` (from
    :func:`qnn_ref.cli.add_inference_arguments`), its help is changed to say what the batch
    means for the hardware.

    :param parser: the (sub)parser.
    """
    for action in parser._actions:
        if action.dest == "batch_size":
            action.help = (
                "images the hardware runs together, the batch its memories hold (default 1)"
            )
    parser.add_argument(
        "--array",
        type=_array,
        default=None,
        metavar="ROWSxCOLS",
        help=f"size of the shared systolic array (default: BATCHx{DEFAULT_COLS}, at most "
        f"{MAX_DEFAULT_ROWS}x{DEFAULT_COLS}); rows process images of a batch side by side, "
        "columns output units",
    )
    parser.add_argument(
        "--architecture",
        choices=ARCHITECTURES,
        default="shared",
        help="shared: one array runs every layer (default); per-layer: one array of batch x "
        "units per layer, as the original pyrtlnet",
    )


def plan_from_arguments(args: argparse.Namespace, model: Model | None = None) -> Plan:
    """The hardware plan that the design options of :func:`add_design_arguments` ask for.

    :param args: parsed options (``--model``, ``--architecture``, ``--array``, ...).
    :param model: the model, if the caller has read ``args.model`` already.
    :returns: the plan.
    :raises UsageError: if the options describe no buildable design (one line, exit 2).
    """
    model = read_model(args.model) if model is None else model
    try:
        return make_plan(
            model,
            architecture=args.architecture,
            array=args.array,
            batch_size=args.batch_size or 1,
            rounding=args.rounding,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None


def _describe(plan: Plan) -> str:
    """One line naming the model and configuration (also the top comment of ``design.v``)."""
    sizes = "-".join(str(w) for w in plan.widths)
    if plan.architecture == "shared":
        engine = plan.engines[0]
        arrays = (
            f"one {engine.rows}x{engine.cols} array shared by {len(plan.engines[0].layers)} layers"
        )
    else:
        arrays = (
            "one array per layer (" + ", ".join(f"{e.rows}x{e.cols}" for e in plan.engines) + ")"
        )
    return (
        f"pyrtlnet design for {plan.model.path.name} ({sizes}): {arrays}, batch {plan.batch_size}, "
        f"{plan.rounding} rounding"
    )


def _write(args: argparse.Namespace, directory: Path) -> tuple[Plan, TestbenchFiles]:
    """Export the design and its testbench for the images ``args`` selects."""
    selection = select_images(args)
    plan = plan_from_arguments(args)
    accelerator = Accelerator(plan, simulator="simulation")
    expected = golden(
        plan.model,
        start=int(selection.indices[0]),
        count=len(selection.indices),
        rounding=plan.rounding,
    )
    files = write_inference_testbench(directory, accelerator, expected, description=_describe(plan))
    return plan, files


def _verilog(args: argparse.Namespace, out: TextIO) -> int:
    plan, files = _write(args, args.output)
    first = args.start_image
    last = first + args.num_images - 1
    hex_files = ", ".join(sorted(p.name for p in files.directory.glob("*.hex")))
    size = files.design.stat().st_size
    lines = [
        _describe(plan),
        f"design:    {files.design} (module pyrtlnet, {size:,} bytes, ports documented at its top)",
        f"           {plan.cycles_per_batch} cycles from start to done per batch of "
        f"{plan.batch_size}",
        f"testbench: {files.testbench} (module testbench), {hex_files}",
        f"           test images {first}-{last} in {files.batches} batches; expected values: "
        f"qnn-ref golden (LiteRT, {plan.rounding})",
        f"run it:    pyrtlnet verilate (same options), or by hand in {files.directory}:",
        "           verilator --binary -j 2 --top-module testbench testbench.v design.v && "
        "obj_dir/Vtestbench",
    ]
    print("\n".join(lines[1:2] if args.quiet else lines), file=out)
    return 0


def _verilate(args: argparse.Namespace, out: TextIO) -> int:
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-") as scratch:
        directory = args.output if args.output is not None else Path(scratch)
        plan, files = _write(args, directory)
        try:
            result = run_testbench(files, simulator=args.simulator, vcd=args.vcd is not None)
        except SimulationError as error:
            raise CommandError(str(error).splitlines()[0]) from None
        if args.vcd is not None:
            shutil.move(files.directory / "waveform.vcd", args.vcd)
    expected_cycles = plan.cycles_per_batch * result.batches
    cycles_ok = result.batch_cycles == (plan.cycles_per_batch, plan.cycles_per_batch)
    lines = [
        _describe(plan),
        f"{args.simulator}: built in {result.build_seconds:.1f} s, ran {result.images} images "
        f"({result.batches} batches) in {result.run_seconds:.2f} s, "
        f"{result.images_per_second:,.0f} images/s",
        f"cycles: {result.batch_cycles[1]} per batch of {plan.batch_size} (start to done), "
        f"{result.cycles / result.images:.1f} per image, {result.cycles} in all; "
        + (
            "equal to the documented formula"
            if cycles_ok
            else f"EXPECTED {plan.cycles_per_batch} per batch ({expected_cycles} in all)"
        ),
    ]
    lines += [line for line in result.log.splitlines() if line.startswith(("MISMATCH", "TIMEOUT"))]
    if args.vcd is not None:
        lines.append(f"waveform: {args.vcd} (open with: gtkwave {args.vcd})")
    passed = result.passed and cycles_ok
    lines.append(
        f"result: {'PASS' if passed else 'FAIL'}, {result.mismatches} mismatching words in "
        f"{result.images} images (every final-layer output and prediction vs qnn-ref)"
    )
    print("\n".join(lines[-1:] if args.quiet else lines), file=out)
    return 0 if passed else 1


def _synth(args: argparse.Namespace, out: TextIO) -> int:
    plan = plan_from_arguments(args)
    budget = BUDGETS[args.target]
    accelerator = Accelerator(plan, simulator="simulation")
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-") as scratch:
        verilog = Path(scratch) / DESIGN_FILE
        export_verilog(accelerator.block, verilog, header=_describe(plan))
        try:
            report = run_yosys(verilog, flows=args.flows)
        except SynthError as error:
            raise CommandError(str(error).splitlines()[0]) from None
    lines = [
        _describe(plan),
        f"cycles: {plan.cycles_per_batch} per batch of {plan.batch_size}, "
        f"{plan.cycles_per_batch / plan.batch_size:.1f} per image",
        "",
        terminal.table(
            ["yosys flow", "cells", "seconds"],
            [(f.flow, f"{f.cells:,}", f"{f.seconds:.1f}") for f in report.flows.values()],
        ),
    ]
    summary: dict[str, object] = {
        "design": _describe(plan),
        "cycles_per_batch": plan.cycles_per_batch,
    }
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
    print("\n".join(lines), file=out)
    if args.json is not None:
        summary["report"] = report.to_json()
        args.json.write_text(json.dumps(summary, indent=2) + "\n")
    return 0


def add_hardware_commands(
    commands: "argparse._SubParsersAction[argparse.ArgumentParser]",
) -> dict[str, Handler]:
    """Add the ``verilog``, ``verilate`` and ``synth`` sub-commands.

    :param commands: the CLI's ``add_subparsers()`` result.
    :returns: the handlers by command name, for the CLI's dispatch table.
    """
    verilog = commands.add_parser(
        "verilog",
        help="write the hardware as Verilog, with a self-checking testbench",
        description="Write the inference hardware for a model and configuration as one Verilog "
        "module (design.v, ports documented at its top) and a testbench (testbench.v and .hex "
        "files) that runs the chosen test images through it and checks every prediction and "
        "final-layer output against qnn-ref's golden values.",
    )
    verilate = commands.add_parser(
        "verilate",
        help="build and run the Verilog testbench in Verilator or Icarus Verilog",
        description="Write the Verilog and testbench as `pyrtlnet verilog` does, build it with "
        "Verilator (or Icarus Verilog) and run it. Exit status 0 only when every image matches "
        "qnn-ref and every batch takes the documented number of cycles.",
    )
    for parser in (verilog, verilate):
        add_inference_arguments(parser, dump=False)
        add_design_arguments(parser)
    verilog.add_argument(
        "--output",
        type=Path,
        default=Path("pyrtlnet-verilog"),
        metavar="DIR",
        help="directory for design.v, testbench.v and the .hex files (default pyrtlnet-verilog)",
    )
    verilate.add_argument(
        "--output",
        type=Path,
        default=None,
        metavar="DIR",
        help="keep the Verilog, testbench and build in DIR (default: a temporary directory)",
    )
    verilate.add_argument(
        "--simulator",
        choices=SIMULATORS,
        default="verilator",
        help="verilator (default; about 20 s to build, then thousands of images/s) or iverilog "
        "(builds at once, runs a few images/s)",
    )
    verilate.add_argument(
        "--vcd",
        type=Path,
        metavar="FILE",
        help="write a waveform of every signal to FILE (view with GTKWave); use few images",
    )

    synth = commands.add_parser(
        "synth",
        help="synthesize the hardware with yosys: cells, LUTs, DSPs, FPGA budget, longest path",
        description="Export the hardware for a model and configuration and synthesize it with "
        "yosys: generic cells (synth), Xilinx 7-series LUTs, flip-flops, DSP48E1 and BRAM "
        "(synth_xilinx) checked against an FPGA budget, iCE40 LUT4, carry and RAM (synth_ice40), "
        "and a longest-path estimate.",
    )
    synth.add_argument(
        "--model",
        type=Path,
        default=default_model_path(),
        metavar="PATH",
        help="the int8 .tflite model (default: the 144-18-10 model shipped with qnn-ref)",
    )
    synth.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help="images per batch the hardware holds (default 1)",
    )
    synth.add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default="xnnpack",
        help="the LiteRT kernel path the requantizers reproduce (default xnnpack)",
    )
    add_design_arguments(synth)
    synth.add_argument(
        "--target",
        choices=tuple(BUDGETS),
        default="zynq-7020",
        help="FPGA budget to check the synth_xilinx figures against (default zynq-7020: "
        "the Pynq-Z2's 53,200 LUTs, 106,400 FFs, 220 DSP48E1, 140 BRAM36)",
    )
    synth.add_argument(
        "--flows",
        type=_flows,
        default=FLOWS,
        metavar="LIST",
        help=f"comma-separated yosys flows to run (default {','.join(FLOWS)})",
    )
    synth.add_argument(
        "--json",
        type=Path,
        metavar="FILE",
        help="also write the report (every flow's cell counts, the budget check) as JSON",
    )
    return {"verilog": _verilog, "verilate": _verilate, "synth": _synth}


def _flows(text: str) -> tuple[str, ...]:
    flows = tuple(part.strip() for part in text.split(",") if part.strip())
    unknown = [f for f in flows if f not in FLOWS]
    if unknown or not flows:
        raise argparse.ArgumentTypeError(
            f"flows must be a comma-separated subset of {','.join(FLOWS)}, not {text!r}"
        )
    return flows
