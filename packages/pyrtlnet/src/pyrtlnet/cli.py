"""Run MNIST test images through gate-level int8 inference hardware simulated in PyRTL.

Commands: `infer` runs images through the simulated hardware; `verilog`, `verilate` and `synth`
export it, run it in a Verilog simulator and report its area.

`infer` builds the hardware for a model once (one systolic array shared by every layer, or one
array per layer), streams the chosen test images through its cycle-by-cycle simulation and
checks every layer's int8 output against the NumPy reference (and LiteRT's interpreter for one
image or with --compare). With no options it runs the shipped model on test image 0.
"""

import argparse
import math
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

from pyrtl_linalg import SIMULATORS
from qnn_ref import Outputs, preprocess, quantize_input, read_model, run_litert, run_numpy, terminal
from qnn_ref.cli import (
    ArgumentParser,
    UsageError,
    add_inference_arguments,
    positive_int,
    progress,
    report_compare,
    report_many,
    report_single,
    run_main,
    select_images,
)

from ._accelerator import Accelerator, InferenceResult
from ._hwcli import add_design_arguments, add_hardware_commands, plan_from_arguments
from ._parallel import default_jobs, run_parallel
from ._plan import Plan

__all__ = ["main"]

#: A worker process pays for its own build (a second for a small array, ten or more for a large
#: one, which also simulates more images per cycle): give each at least this many batches, so
#: that small runs stay in one process.
_BATCHES_PER_WORKER = 100

_TITLES = {"litert": "LiteRT", "numpy": "NumPy"}


def _describe(plan: Plan, simulator: str) -> str:
    if plan.architecture == "shared":
        engine = plan.engines[0]
        arrays = f"{engine.rows}x{engine.cols} array shared by {len(plan.model.layers)} layers"
    else:
        sizes = ", ".join(f"{e.rows}x{e.cols}" for e in plan.engines)
        arrays = f"one array per layer ({sizes})"
    return (
        f"hardware: {arrays}, batch {plan.batch_size}, {plan.rounding} "
        f"({plan.requant_method} requantizers), {SIMULATORS[simulator].__name__}"
    )


def _cycles_line(plan: Plan, result: InferenceResult, build_seconds: float, workers: int) -> str:
    per_image = result.cycles / len(result.predictions)
    where = f"{workers} worker processes, each built in" if workers > 1 else "built in"
    return (
        f"cycles: {plan.cycles_per_batch} per batch of {plan.batch_size} (start to done), "
        f"{per_image:.1f} per image, {result.cycles} in all; {where} {build_seconds:.1f} s"
    )


def _differing_images(a: Outputs, b: Outputs) -> int:
    differ = (a.input != b.input).any(1) | (a.predictions != b.predictions)
    for x, y in zip(a.layers, b.layers, strict=True):
        differ |= (x != y).any(1)
    return int(differ.sum())


def _infer(args: argparse.Namespace, out: TextIO) -> int:
    selection = select_images(args)
    model = read_model(args.model)
    simulator = args.simulator or ("fast" if args.vcd else "compiled")
    if args.vcd is not None and simulator == "compiled":
        raise UsageError(
            "--vcd needs --simulator fast or simulation (CompiledSimulation records only the "
            "top-level ports)"
        )
    plan = plan_from_arguments(args, model)
    x = preprocess(selection.images, model.input_shape)
    q = quantize_input(model, x, rounding=plan.rounding)
    many = len(q) > 1
    batches = math.ceil(len(q) / plan.batch_size)
    workers = 1
    if args.vcd is None:
        jobs = args.jobs or default_jobs()
        workers = max(1, min(jobs, batches // _BATCHES_PER_WORKER))

    with progress(len(q), desc="pyrtl", quiet=args.quiet or not many) as bar:

        def advance(done: int) -> None:
            bar.update(done - bar.n)

        if workers == 1:
            accelerator = Accelerator(plan, simulator=simulator, trace=args.vcd is not None)
            began = time.perf_counter()
            result = accelerator.run(q, progress=advance)
            seconds = time.perf_counter() - began
            build_seconds = accelerator.build_seconds
            if args.vcd is not None:
                accelerator.write_vcd(args.vcd)
        else:
            began = time.perf_counter()
            result = run_parallel(
                model,
                q,
                jobs=workers,
                progress=advance,
                architecture=plan.architecture,
                array=args.array,
                batch_size=plan.batch_size,
                rounding=plan.rounding,
                simulator=simulator,
            )
            seconds = time.perf_counter() - began
            build_seconds = result.build_seconds

    results: dict[str, Outputs] = {"pyrtl": result.outputs}
    if not many or args.compare:
        results["litert"] = run_litert(model, x, rounding=plan.rounding)
    results["numpy"] = run_numpy(model, x, rounding=plan.rounding)
    if args.dump is not None:
        result.outputs.to_npz(args.dump, labels=selection.labels, image_indices=selection.indices)

    references = [name for name in results if name != "pyrtl"]
    differing = {name: _differing_images(result.outputs, results[name]) for name in references}
    lines = []
    if not many and args.quiet:
        lines.append(
            f"image {int(selection.indices[0])}: label {int(selection.labels[0])}; predicted "
            f"{int(result.predictions[0])}; {result.cycles} cycles"
        )
    elif not many:
        lines.append(report_single(model, selection, results, color=terminal.color_enabled(out)))
    else:
        lines.append(
            report_many(
                model,
                selection,
                results,
                seconds={"pyrtl": seconds},
                confusion=not args.quiet,
            )
        )
        if args.compare:
            for name in references:
                lines += [
                    "",
                    report_compare(selection, ("pyrtl", name), (results["pyrtl"], results[name])),
                ]
    if not args.quiet:
        lines += ["", _describe(plan, simulator)]
        lines.append(_cycles_line(plan, result, build_seconds, workers))
    agree = not any(differing.values())
    names = ["PyRTL", *(_TITLES[name] for name in references)]
    if agree:
        together = f"{', '.join(names[:-1])} and {names[-1]}"
        count = f" ({len(q)} images, 0 differ)" if many else ""
        lines.append(f"agreement: {together} are identical in every layer{count}")
    else:
        counts = ", ".join(f"{n} {c}" for n, c in differing.items())
        lines.append(f"agreement: MISMATCH, images differing from PyRTL in some layer: {counts}")
    print("\n".join(lines), file=out)
    return 0 if agree else 1


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="pyrtlnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    infer = commands.add_parser(
        "infer",
        help="run test images through the simulated hardware and compare with LiteRT and NumPy",
        description="Build the inference hardware for a model once, run MNIST test images "
        "through its gate-level simulation and compare every layer with the references. "
        "Exit status 1 if the hardware disagrees with a reference anywhere.",
    )
    add_inference_arguments(infer)
    add_design_arguments(infer)
    infer.add_argument(
        "--simulator",
        choices=tuple(SIMULATORS),
        default=None,
        help="PyRTL simulator (default compiled, the fastest; fast with --vcd)",
    )
    infer.add_argument(
        "--jobs",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"worker processes, each building its own simulator once (default: all cores; "
        f"at most one per {_BATCHES_PER_WORKER} batches)",
    )
    infer.add_argument(
        "--vcd",
        type=Path,
        metavar="FILE",
        help="write a waveform of the whole run (every named wire, every cycle) for GTKWave; "
        "runs in one process with the fast simulator",
    )
    infer.add_argument(
        "--compare",
        action="store_true",
        help="also run LiteRT for many images and show per-layer mismatch tables",
    )
    _COMMANDS.update(add_hardware_commands(commands))
    return parser


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {"infer": _infer}


def main(argv: list[str] | None = None) -> int:
    """Run the ``pyrtlnet`` command line.

    :param argv: the arguments after the program name (default: :data:`sys.argv`).
    :returns: the exit status: 0 success, 1 failure or mismatch, 2 usage error.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already reported
        return int(exit_.code or 0)
    command = _COMMANDS[args.command]
    return run_main(lambda: command(args, sys.stdout), prog=f"pyrtlnet {args.command}")
