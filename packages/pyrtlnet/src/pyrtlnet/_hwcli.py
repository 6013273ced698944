"""The hardware-flow commands of the ``pyrtlnet`` CLI: ``verilog`` and ``verilate``.

``pyrtlnet.cli`` registers them with :func:`add_hardware_commands` (and ``synth`` from
:mod:`pyrtlnet._synthcli`, which shares the design options defined here); each handler takes
the parsed arguments and the output stream and returns the exit status, as ``pyrtlnet infer``
does.
"""

import argparse
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TextIO

from qnn_ref import Model, golden, read_model
from qnn_ref.cliinfer import (
    add_batch_argument,
    add_image_arguments,
    add_model_argument,
    add_output_arguments,
    add_rounding_argument,
    select_images,
)
from qnn_ref.clitools import (
    CommandError,
    UsageError,
    add_command,
    check_output_directory,
    check_output_file,
    plural,
)

from ._axi import axi_header, build_axi
from ._axi_testbench import (
    AXI_MODULE,
    DEFAULT_STALL,
    AxiResult,
    AxiTestbenchFiles,
    run_axi_testbench,
    write_axi_testbench,
)
from ._design import build_design
from ._plan import (
    ARCHITECTURES,
    DEFAULT_COLS,
    MAX_DEFAULT_ROWS,
    MAX_PROCESSING_ELEMENTS,
    Plan,
    make_plan,
    parse_array,
)
from ._verilator import VERILOG_SIMULATORS, SimulationError, SimulationResult, run_testbench
from ._verilog import TestbenchFiles, write_inference_testbench

__all__ = ["BATCH_HELP", "add_design_arguments", "add_hardware_commands", "plan_from_arguments"]

#: What ``--batch-size`` means for every hardware command (:func:`add_batch_argument`'s help).
BATCH_HELP = "images the hardware runs together, the batch its memories hold (default 1)"

#: What ``--rounding`` means for the hardware.
_ROUNDING_HELP = (
    "the LiteRT kernel path the requantizers reproduce bit for bit (default %(default)s)"
)


def _array(text: str) -> tuple[int, int]:
    """argparse type of ``--array``: ``ROWSxCOLS``, checked against the largest array at once.

    The product is checked here, while parsing, so that ``--array 1x99999`` fails in
    milliseconds rather than after the plan has packed a weight memory for it.
    """
    try:
        rows, cols = parse_array(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None
    if rows * cols > MAX_PROCESSING_ELEMENTS:
        raise argparse.ArgumentTypeError(
            f"array {rows}x{cols} has {rows * cols:,} multiply-accumulate elements, at most "
            f"{MAX_PROCESSING_ELEMENTS:,} are supported; use a smaller array"
        )
    return rows, cols


def add_design_arguments(parser: argparse.ArgumentParser) -> None:
    """Add ``--array`` and ``--architecture``: the hardware configuration options.

    The batch the hardware holds is ``--batch-size``, added by the command with
    :func:`qnn_ref.cliinfer.add_batch_argument` and :data:`BATCH_HELP`.

    :param parser: the (sub)parser.
    """
    parser = parser.add_argument_group("hardware")  # type: ignore[assignment]
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
        plan = make_plan(
            model,
            architecture=args.architecture,
            array=args.array,
            batch_size=args.batch_size or 1,
            rounding=args.rounding,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    rows = plan.engines[0].rows
    if plan.architecture == "shared" and rows > plan.batch_size:
        print(
            f"warning: the {rows}x{plan.engines[0].cols} array has more rows than a batch has "
            f"images ({plan.batch_size}), so {rows - plan.batch_size} of its rows are idle; use "
            f"--batch-size {rows} or --array {plan.batch_size}x{plan.engines[0].cols}",
            file=sys.stderr,
        )
    return plan


def _describe(plan: Plan) -> str:
    """One line naming the model and configuration (also the top comment of ``pyrtlnet.v``)."""
    layers = plan.model.layers
    shapes = (layers[0].input_shape, *(layer.output_shape for layer in layers))
    sizes = "-".join("x".join(map(str, shape)) for shape in shapes)
    if plan.architecture == "shared":
        engine = plan.engines[0]
        arrays = f"one {engine.rows}x{engine.cols} array shared by {len(engine.layers)} layers"
        if plan.reduce_layers:
            arrays += f" and {len(plan.reduce_layers)} window-reduce units for pooling"
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
    design = build_design(plan)
    expected = golden(
        plan.model,
        start=int(selection.indices[0]),
        count=len(selection.indices),
        rounding=plan.rounding,
    )
    files = write_inference_testbench(directory, design, expected, description=_describe(plan))
    return plan, files


def _verilog(args: argparse.Namespace, out: TextIO) -> int:
    check_output_directory(args.output, flag="--output")
    if args.axi:
        return _verilog_axi(args, out)
    plan, files = _write(args, args.output)
    first = args.start_image
    last = first + args.num_images - 1
    hex_files = ", ".join(sorted(p.name for p in files.directory.glob("*.hex")))
    size = files.design.stat().st_size
    lines = [
        _describe(plan),
        f"design:    {files.design} (module pyrtlnet, {size:,} bytes, ports documented at its top)",
        f"           {plan.cycles_per_batch:,} cycles from start to done per batch of "
        f"{plan.batch_size}",
        f"testbench: {files.testbench} (module testbench), {hex_files}",
        f"           test images {first}-{last} in {plural(files.batches, 'batch', 'batches')}; "
        f"expected values: "
        f"qnn-ref golden (LiteRT, {plan.rounding})",
        f"run it:    pyrtlnet verilate (same options), or by hand in {files.directory}:",
        "           verilator --binary -j 2 --top-module testbench testbench.v "
        f"{files.design.name} && obj_dir/Vtestbench",
    ]
    print("\n".join(lines[1:2] if args.quiet else lines), file=out)
    return 0


def _write_axi(
    args: argparse.Namespace, directory: Path, stall: float
) -> tuple[Plan, AxiTestbenchFiles]:
    """Export the AXI wrapper and its C++ testbench (with a too-short and a too-long frame)."""
    selection = select_images(args)
    plan = plan_from_arguments(args)
    axi = build_axi(plan)
    if axi.beat_bits > 64:
        raise UsageError(
            f"the AXI testbench takes at most 8 lanes, not {plan.lanes}; use --batch-size 8 or "
            "an array of at most 8 rows"
        )
    expected = golden(
        plan.model,
        start=int(selection.indices[0]),
        count=len(selection.indices),
        rounding=plan.rounding,
    )
    header = "\n".join([_describe(plan), *axi_header(axi)])
    files = write_axi_testbench(
        directory, axi, expected, stall=stall, malformed=axi.in_beats > 1, header=header
    )
    return plan, files


def _verilog_axi(args: argparse.Namespace, out: TextIO) -> int:
    plan, files = _write_axi(args, args.output, DEFAULT_STALL)
    size = files.design.stat().st_size
    lines = [
        _describe(plan),
        f"design:    {files.design} (module {AXI_MODULE}, {size:,} bytes, AXI4-Stream in and "
        "out, AXI4-Lite registers; register map at its top)",
        f"testbench: {files.directory}/axi_testbench.cpp (Verilator C++), axi_regs.h, "
        "config.txt, frames.txt, expected.txt",
        f"           {plural(files.images, 'test image')} in "
        f"{plural(files.frames, 'frame')} and {files.malformed} malformed; expected values: "
        f"qnn-ref golden (LiteRT, {plan.rounding})",
        f"run it:    pyrtlnet verilate --axi (same options), or by hand in {files.directory}:",
        f"           verilator --cc --exe --build --top-module {AXI_MODULE} -o Vaxi_testbench "
        f"{files.design.name} axi_testbench.cpp && obj_dir/Vaxi_testbench",
    ]
    print("\n".join(lines[1:2] if args.quiet else lines), file=out)
    return 0


def _verilate_axi(args: argparse.Namespace, out: TextIO) -> int:
    if args.simulator != "verilator":
        raise UsageError("--axi runs a Verilator C++ testbench: use --simulator verilator")
    if args.vcd is not None:
        raise UsageError("--vcd is not supported with --axi")
    stall = DEFAULT_STALL if args.stall is None else args.stall
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-") as scratch:
        directory = args.output if args.output is not None else Path(scratch)
        plan, files = _write_axi(args, directory, stall)
        try:
            result = run_axi_testbench(files)
        except SimulationError as error:
            raise CommandError(str(error).splitlines()[0]) from None
    return _report_axi(args, plan, result, stall, out)


def _report_axi(
    args: argparse.Namespace, plan: Plan, result: AxiResult, stall: float, out: TextIO
) -> int:
    """Print the results of an AXI testbench run; 0 if it passed."""
    lines = [
        _describe(plan),
        f"verilator: built in {result.build_seconds:.1f} s, ran "
        f"{plural(result.images, 'image')} ({plural(result.frames, 'frame')} and "
        f"{result.malformed} malformed) through the AXI wrapper in {result.run_seconds:.2f} s, "
        f"{result.images_per_second:,.0f} images/s, {result.cycles:,} cycles; streams stalled "
        f"with probability {stall:g} per cycle",
        f"malformed frames: {result.errors_seen} of {result.malformed} raised their error flag, "
        "which was cleared",
    ]
    lines += [line for line in result.log.splitlines() if line.startswith(("MISMATCH", "TIMEOUT"))]
    lines.append(
        f"result: {'PASS' if result.passed else 'FAIL'}, {result.mismatches:,} failed checks in "
        f"{plural(result.images, 'image')} (every prediction and logit vs qnn-ref, TLAST, "
        "register read-back, error flags)"
    )
    print("\n".join(lines[-1:] if args.quiet else lines), file=out)
    return 0 if result.passed else 1


def _verilate(args: argparse.Namespace, out: TextIO) -> int:
    if args.output is not None:
        check_output_directory(args.output, flag="--output")
    if args.axi:
        return _verilate_axi(args, out)
    if args.stall is not None:
        raise UsageError("--stall needs --axi")
    if args.vcd is not None:
        check_output_file(args.vcd, flag="--vcd")
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-") as scratch:
        directory = args.output if args.output is not None else Path(scratch)
        plan, files = _write(args, directory)
        try:
            result = run_testbench(files, simulator=args.simulator, vcd=args.vcd is not None)
        except SimulationError as error:
            raise CommandError(str(error).splitlines()[0]) from None
        status = _report_verilate(args, plan, result, out)
        if args.vcd is not None:
            shutil.move(files.directory / "waveform.vcd", args.vcd)
            print(f"wrote {args.vcd} (open with: gtkwave {args.vcd})", file=out)
    return status


def _report_verilate(
    args: argparse.Namespace, plan: Plan, result: SimulationResult, out: TextIO
) -> int:
    """Print the results of a testbench run; 0 if it passed."""
    expected_cycles = plan.cycles_per_batch * result.batches
    cycles_ok = result.batch_cycles == (plan.cycles_per_batch, plan.cycles_per_batch)
    lines = [
        _describe(plan),
        f"{args.simulator}: built in {result.build_seconds:.1f} s, ran "
        f"{plural(result.images, 'image')} ({plural(result.batches, 'batch', 'batches')}) in "
        f"{result.run_seconds:.2f} s, "
        f"{result.images_per_second:,.0f} images/s",
        f"cycles: {result.batch_cycles[1]:,} per batch of {plan.batch_size} (start to done), "
        f"{result.cycles / result.images:,.1f} per image, {result.cycles:,} in all; "
        + (
            "equal to the documented formula"
            if cycles_ok
            else f"EXPECTED {plan.cycles_per_batch:,} per batch ({expected_cycles:,} in all)"
        ),
    ]
    lines += [line for line in result.log.splitlines() if line.startswith(("MISMATCH", "TIMEOUT"))]
    passed = result.passed and cycles_ok
    lines.append(
        f"result: {'PASS' if passed else 'FAIL'}, {result.mismatches:,} mismatching words in "
        f"{plural(result.images, 'image')} (every layer's outputs, every prediction and the "
        "design's cycle count vs qnn-ref)"
    )
    print("\n".join(lines[-1:] if args.quiet else lines), file=out)
    return 0 if passed else 1


def add_hardware_commands(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``verilog`` and ``verilate`` sub-commands, each with its handler.

    :param commands: the CLI's ``add_subparsers(dest="command")`` result.
    """
    verilog = add_command(
        commands,
        "verilog",
        _verilog,
        help="write the hardware as Verilog, with a self-checking testbench",
        description="Write the inference hardware for a model and configuration as one Verilog "
        "module (pyrtlnet.v, ports documented at its top) and a testbench (testbench.v and .hex "
        "files) that runs the chosen test images through it and checks every layer's outputs "
        "and every prediction against qnn-ref's golden values.",
    )
    verilate = add_command(
        commands,
        "verilate",
        _verilate,
        help="build and run the Verilog testbench in Verilator or Icarus Verilog",
        description="Write the Verilog and testbench as `pyrtlnet verilog` does, build it with "
        "Verilator (or Icarus Verilog) and run it. Exit status 0 only when every image matches "
        "qnn-ref and every batch takes the documented number of cycles.",
    )
    for parser in (verilog, verilate):
        add_model_argument(parser)
        add_image_arguments(parser, detail=False)
        add_batch_argument(parser, help=BATCH_HELP)
        add_rounding_argument(parser, help=_ROUNDING_HELP)
        add_design_arguments(parser)
        add_output_arguments(parser, dump=False)
    verilog.add_argument(
        "--output",
        type=Path,
        default=Path("pyrtlnet-verilog"),
        metavar="DIR",
        help="directory for pyrtlnet.v, testbench.v and the .hex files (default %(default)s)",
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
        choices=VERILOG_SIMULATORS,
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
    for parser in (verilog, verilate):
        parser.add_argument(
            "--axi",
            action="store_true",
            help=f"the AXI wrapper instead (module {AXI_MODULE}: AXI4-Stream in and out, "
            "AXI4-Lite registers) with a Verilator C++ testbench",
        )
    verilate.add_argument(
        "--stall",
        type=_probability,
        default=None,
        metavar="PROBABILITY",
        help=f"with --axi: chance per cycle that each stream stalls (default {DEFAULT_STALL})",
    )


def _probability(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError(f"must be a probability in [0, 1), not {text!r}")
    return value
