"""Build and run a generated testbench with Verilator or Icarus Verilog.

Both simulators compile the same two files (``testbench.v`` and ``design.v``, see
:func:`~pyrtlnet._verilog.write_testbench`) and run with the testbench directory as the working
directory, where the ``.hex`` stimulus lives. Verilator 5 builds a native executable with
``--binary`` (its ``--timing`` scheduler runs the testbench's delays); Icarus interprets, so it
builds in a second and runs about a thousand times slower: use it for a handful of images, as
an independent second opinion on the same Verilog.
"""

from __future__ import annotations

import dataclasses
import os
import re
import shutil
import subprocess
import time
from pathlib import Path
from typing import Literal

from pyrtlnet._verilog import TESTBENCH_TOP, TestbenchFiles

__all__ = [
    "SIMULATORS",
    "SimulationError",
    "SimulationResult",
    "run_testbench",
    "simulator_available",
]

SIMULATORS: tuple[str, ...] = ("verilator", "iverilog")
Simulator = Literal["verilator", "iverilog"]

_RESULT = re.compile(
    r"^RESULT (?P<status>PASS|FAIL) images=(?P<images>\d+) batches=(?P<batches>\d+) "
    r"mismatches=(?P<mismatches>\d+) cycles=(?P<cycles>\d+) "
    r"batch_cycles_min=(?P<min>\d+) batch_cycles_max=(?P<max>\d+)$",
    re.MULTILINE,
)
_EXECUTABLES = {"verilator": ("verilator",), "iverilog": ("iverilog", "vvp")}


class SimulationError(RuntimeError):
    """A simulator is missing, the build failed, or the run printed no result line."""


@dataclasses.dataclass(frozen=True)
class SimulationResult:
    """What one testbench run reported.

    :param simulator: ``"verilator"`` or ``"iverilog"``.
    :param passed: every check matched and no batch timed out.
    :param images: images in the stimulus.
    :param batches: batches run.
    :param mismatches: read words that differed from the expected word in a cared-for bit.
    :param cycles: clock cycles from each batch's ``start`` to its ``done``, summed.
    :param batch_cycles: (fewest, most) cycles of one batch.
    :param build_seconds: wall time to compile (Verilator: Verilog to C++ to executable).
    :param run_seconds: wall time of the simulation itself.
    :param log: the simulator's standard output (mismatch lines and the result line).
    """

    simulator: str
    passed: bool
    images: int
    batches: int
    mismatches: int
    cycles: int
    batch_cycles: tuple[int, int]
    build_seconds: float
    run_seconds: float
    log: str

    @property
    def images_per_second(self) -> float:
        """Simulated images per wall-clock second of the run (build excluded)."""
        return self.images / self.run_seconds if self.run_seconds > 0 else float("inf")


def simulator_available(simulator: str) -> bool:
    """Whether the executables ``simulator`` needs are on ``PATH``.

    :param simulator: one of :data:`SIMULATORS`.
    """
    if simulator not in _EXECUTABLES:
        raise ValueError(f"simulator must be one of {', '.join(SIMULATORS)}, not {simulator!r}")
    return all(shutil.which(name) for name in _EXECUTABLES[simulator])


def _run(command: list[str], cwd: Path, what: str) -> str:
    """Run ``command`` in ``cwd``; its stdout, or :class:`SimulationError` with its output."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise SimulationError(f"{what} failed: {command[0]} is not installed") from exc
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise SimulationError(f"{what} failed (exit {done.returncode}):\n{tail}")
    return done.stdout


def _build(files: TestbenchFiles, simulator: str, *, vcd: bool, jobs: int) -> list[str]:
    """Compile the testbench; the command that runs it."""
    sources = [files.testbench.name, files.design.name]
    if simulator == "verilator":
        obj_dir = "obj_dir_vcd" if vcd else "obj_dir"
        command = [
            "verilator",
            "--binary",
            "-j",
            str(jobs),
            "-Wno-fatal",
            "-Wno-lint",
            "-Wno-style",
            "--top-module",
            TESTBENCH_TOP,
            "-Mdir",
            obj_dir,
            *(["--trace", "-DVCD"] if vcd else []),
            *sources,
        ]
        _run(command, files.directory, "Verilator build")
        return [str((files.directory / obj_dir / f"V{TESTBENCH_TOP}").resolve())]
    command = [
        "iverilog",
        "-g2005",
        "-s",
        TESTBENCH_TOP,
        "-o",
        "testbench.vvp",
        *(["-DVCD"] if vcd else []),
        *sources,
    ]
    _run(command, files.directory, "Icarus Verilog build")
    return ["vvp", "-n", "testbench.vvp"]


def run_testbench(
    files: TestbenchFiles,
    *,
    simulator: Simulator = "verilator",
    vcd: bool = False,
    jobs: int | None = None,
) -> SimulationResult:
    """Compile and run the testbench in ``files``; parse its result line.

    :param files: from :func:`~pyrtlnet._verilog.write_testbench`.
    :param simulator: ``"verilator"`` (fast, ~20 s build) or ``"iverilog"`` (instant build,
        slow run).
    :param vcd: also dump every signal to ``waveform.vcd`` in the testbench directory (Verilator
        builds with ``--trace``, into its own object directory).
    :param jobs: parallel C++ compile jobs for Verilator; default: all cores.
    :returns: the parsed result; ``passed`` is False on any mismatch or timeout.
    :raises SimulationError: the simulator is missing, did not build, or printed no result.
    """
    if not simulator_available(simulator):
        raise SimulationError(
            f"{simulator} is not installed (needs {', '.join(_EXECUTABLES[simulator])})"
        )
    jobs = jobs if jobs is not None else os.cpu_count() or 1
    if jobs < 1:
        raise ValueError(f"jobs must be a positive integer, not {jobs!r}")
    began = time.perf_counter()
    command = _build(files, simulator, vcd=vcd, jobs=jobs)
    built = time.perf_counter()
    log = _run(command, files.directory, f"{simulator} run")
    finished = time.perf_counter()
    match = _RESULT.search(log)
    if match is None:
        tail = "\n".join(log.strip().splitlines()[-20:])
        raise SimulationError(f"{simulator} run printed no RESULT line:\n{tail}")
    return SimulationResult(
        simulator=simulator,
        passed=match["status"] == "PASS",
        images=int(match["images"]),
        batches=int(match["batches"]),
        mismatches=int(match["mismatches"]),
        cycles=int(match["cycles"]),
        batch_cycles=(int(match["min"]), int(match["max"])),
        build_seconds=built - began,
        run_seconds=finished - built,
        log=log,
    )
