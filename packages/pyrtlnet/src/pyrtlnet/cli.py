"""Run MNIST test images through gate-level int8 inference hardware simulated in PyRTL.

Commands: `infer` runs images through the simulated hardware; `verilog`, `verilate` and `synth`
export it, run it in a Verilog simulator and report its area; `pnr` places and routes it on an
iCE40 or ECP5 FPGA with open tools (the fpga extra); `explore` sweeps configurations
through yosys on a Dask cluster (the explore extra); `serve` serves a local page where
you draw a digit and watch LiteRT, NumPy and the hardware predict it (the web extra).

`infer` builds the hardware for a model once (one systolic array shared by every layer, or one
array per layer), streams the chosen test images through its cycle-by-cycle simulation and
checks every layer's int8 output against LiteRT's interpreter and the NumPy reference. With no
options it runs the shipped model on test image 0.
"""

import argparse
import math
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import numpy as np

from qnn_ref import Model, Outputs, Rounding, quantize_input, read_model, run_litert, run_numpy
from qnn_ref.cliinfer import OutputFile, add_inference_arguments, run_inference
from qnn_ref.clitools import (
    ArgumentParser,
    UsageError,
    add_command,
    add_version_argument,
    dispatch,
    plural,
    positive_int,
)

from ._accelerator import ACCELERATOR_SIMULATORS, SIMULATOR_CLASSES, Accelerator, InferenceResult
from ._design import build_design
from ._explorecli import add_explore_command
from ._hwcli import BATCH_HELP, add_design_arguments, add_hardware_commands, plan_from_arguments
from ._parallel import default_jobs, run_parallel
from ._plan import Plan
from ._pnrcli import add_pnr_command
from ._servecli import add_serve_command
from ._synthcli import add_synth_command

__all__ = ["main"]

#: A worker process pays for its own build (a second for a small array, ten or more for a large
#: one, which also simulates more images per cycle): give each at least this many batches, so
#: that small runs stay in one process.
_BATCHES_PER_WORKER = 100

_TITLES = {"pyrtl": "PyRTL", "litert": "LiteRT", "numpy": "NumPy"}

#: ``--vcd`` warns before a waveform that may grow past this many bytes.
_LARGE_VCD = 200_000_000


def _describe(plan: Plan, simulator: str) -> str:
    if plan.architecture == "shared":
        engine = plan.engines[0]
        arrays = f"{engine.rows}x{engine.cols} array shared by {len(engine.layers)} layers"
        if plan.reduce_layers:
            arrays += f" and {len(plan.reduce_layers)} window-reduce units"
    else:
        sizes = ", ".join(f"{e.rows}x{e.cols}" for e in plan.engines)
        arrays = f"one array per layer ({sizes})"
    return (
        f"hardware: {arrays}, batch {plan.batch_size}, {plan.rounding} "
        f"({plan.requant_method} requantizers), {SIMULATOR_CLASSES[simulator]}"
    )


def _cycles_line(plan: Plan, result: InferenceResult, build_seconds: float, workers: int) -> str:
    per_image = result.cycles / len(result.predictions)
    where = f"{workers} worker processes, each built in" if workers > 1 else "built in"
    return (
        f"cycles: {plan.cycles_per_batch:,} per batch of {plan.batch_size} (start to done), "
        f"{per_image:,.1f} per image, {result.cycles:,} in all; {where} {build_seconds:.1f} s"
    )


def _layers_line(plan: Plan) -> str:
    """Each layer's cycles per batch and its use of the array (a convolutional model)."""
    parts = []
    for index, layer in enumerate(plan.model.layers):
        share = plan.utilization[index]
        use = "pooling unit" if index in plan.reduce_layers else f"{share:.0%} of the array"
        parts.append(f"{index} {layer.op} {plan.layer_cycles[index]:,} ({use})")
    return f"per layer, cycles per batch: {'; '.join(parts)}"


class _Hardware:
    """The gate-level hardware as one more qnn-ref backend (a streaming one).

    The design is built on the first run, in this process or in each worker, and every image
    streams through it; what the run measured (cycles, build time) stays here for the report.
    With ``vcd``, the waveform streams into a temporary file beside it as the simulation runs,
    renamed to ``vcd`` by :meth:`write_vcd` once the results are printed.
    """

    def __init__(self, plan: Plan, *, simulator: str, jobs: int, vcd: Path | None) -> None:
        self.plan, self.simulator, self.jobs, self.vcd = plan, simulator, jobs, vcd
        self.partial = None if vcd is None else vcd.with_name(f".{vcd.name}.{os.getpid()}.part")
        self.accelerator: Accelerator | None = None
        self.result: InferenceResult | None = None
        self.build_seconds = 0.0
        self.workers = 1

    def run_all(
        self,
        model: Model,
        x: np.ndarray,
        *,
        rounding: Rounding,
        progress: Callable[..., None],
    ) -> Outputs:
        """Run the float32 images ``x`` through the hardware (quantized as LiteRT does)."""
        q = quantize_input(model, x, rounding=rounding)
        batches = math.ceil(len(q) / self.plan.batch_size)
        if self.vcd is None:
            self.workers = max(1, min(self.jobs, batches // _BATCHES_PER_WORKER))
        if self.workers == 1:
            if self.accelerator is None:  # built once, however many runs stream through it
                progress(0, "building the simulator")
                self.accelerator = Accelerator(
                    build_design(self.plan), simulator=self.simulator, trace=self.vcd is not None
                )
                progress(0, "")
            accelerator = self.accelerator
            if self.partial is None:
                self.result = accelerator.run(q, progress=progress)
            else:
                self._warn_if_large(len(q))
                with open(self.partial, "w") as file:
                    self.result = accelerator.run(q, progress=progress, vcd=file)
            self.build_seconds = accelerator.build_seconds
        else:
            plan, simulator, workers = self.plan, self.simulator, self.workers

            def building(ready: int) -> None:
                note = f"building simulators: {ready} of {workers} workers ready"
                progress(0, note if ready < workers else "")

            result = run_parallel(
                plan, q, jobs=workers, simulator=simulator, progress=progress, building=building
            )
            self.result, self.build_seconds = result, result.build_seconds
        return self.result.outputs

    def notes(self, quiet: bool) -> list[str]:
        """The configuration and the measured cycles, printed after the report."""
        assert self.result is not None, "notes asked for before the run"
        if quiet:
            images = plural(len(self.result.predictions), "image")
            return [f"cycles: {self.result.cycles:,} for {images}"]
        lines = [
            _describe(self.plan, self.simulator),
            _cycles_line(self.plan, self.result, self.build_seconds, self.workers),
        ]
        if any(window is not None for window in self.plan.windows):
            lines.append(_layers_line(self.plan))
        return lines

    def _warn_if_large(self, images: int) -> None:
        assert self.accelerator is not None
        size = self.accelerator.estimate_vcd_bytes(images)
        if size > _LARGE_VCD:
            print(
                f"warning: the waveform of {plural(images, 'image')} may grow to "
                f"{size / 1e9:,.1f} GB ({self.accelerator.simulated_cycles(images):,} cycles, "
                "every named wire; less where wires do not change); use fewer --num-images",
                file=sys.stderr,
            )

    def write_vcd(self, path: Path) -> None:
        """Give the waveform written during the run its name (``--vcd``)."""
        assert self.partial is not None, "--vcd not given"
        os.replace(self.partial, path)

    def discard_vcd(self) -> None:
        """Remove the waveform of a run that did not finish (nothing half-written stays)."""
        if self.partial is not None and self.partial.exists():
            self.partial.unlink()


def _infer(args: argparse.Namespace, out: TextIO) -> int:
    model = read_model(args.model)
    simulator = args.simulator or ("fast" if args.vcd else "native")
    if args.vcd is not None and simulator in ("native", "compiled"):
        raise UsageError(
            f"--vcd needs --simulator fast or simulation ({SIMULATOR_CLASSES[simulator]} "
            "records only the top-level ports)"
        )
    plan = plan_from_arguments(args, model)
    hardware = _Hardware(plan, simulator=simulator, jobs=args.jobs or default_jobs(), vcd=args.vcd)
    files = () if args.vcd is None else (OutputFile("--vcd", args.vcd, hardware.write_vcd),)
    try:
        return run_inference(
            args,
            {"pyrtl": hardware, "litert": run_litert, "numpy": run_numpy},
            stdout=out,
            model=model,
            titles=_TITLES,
            tables=args.compare,
            notes=hardware.notes,
            files=files,
        )
    finally:
        hardware.discard_vcd()


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="pyrtlnet",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_argument(parser, "pyrtlnet", "qnn-ref", "pyrtl-linalg", "pyrtl")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    # Every command registers itself here, in the order of the help's command list.
    _add_infer_command(commands)
    add_hardware_commands(commands)
    add_synth_command(commands)
    add_pnr_command(commands)
    add_explore_command(commands)
    _register(commands, add_serve_command(commands))
    return parser


def _register(
    commands: "argparse._SubParsersAction[ArgumentParser]",
    handlers: dict[str, Callable[[argparse.Namespace, TextIO], int]],
) -> None:
    """Dispatch to commands added by a function that returns their handlers by name."""
    for name, handler in handlers.items():
        commands.choices[name].set_defaults(handler=handler)


def _add_infer_command(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    infer = add_command(
        commands,
        "infer",
        _infer,
        help="run test images through the simulated hardware and compare with LiteRT and NumPy",
        description="Build the inference hardware for a model once, run MNIST test images "
        "through its gate-level simulation and compare every layer with LiteRT and NumPy. "
        "Exit status 1 if the hardware disagrees with a reference anywhere.",
    )
    add_inference_arguments(infer, batch_help=BATCH_HELP)
    add_design_arguments(infer)
    infer.add_argument(
        "--simulator",
        choices=ACCELERATOR_SIMULATORS,
        default=None,
        help="simulator of the hardware (default native, the fastest; fast with --vcd)",
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
        help="write a waveform of the run for GTKWave (every named wire, grouped by its name's "
        "prefixes, and clk), streamed as the simulation goes; runs in one process with the "
        "fast simulator, and warns first when the file may be large",
    )
    infer.add_argument(
        "--compare",
        action="store_true",
        help="also print a per-layer mismatch table against each reference",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``pyrtlnet`` command line.

    :param argv: the arguments after the program name (default: :data:`sys.argv`).
    :returns: the exit status: 0 success, 1 failure or mismatch, 2 usage error (also when no
        command is given: the usage and the command list go to stderr).
    """
    return dispatch(_parser(), argv)
