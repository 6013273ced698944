"""Build and run a generated testbench with Verilator or Icarus Verilog.

Both simulators compile the same two files (``testbench.v`` and ``pyrtlnet.v``, see
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
from collections.abc import Callable
from pathlib import Path
from subprocess import CompletedProcess
from typing import Literal, Protocol, get_args

from ._validate import check_choice, check_positive
from ._verilog import TESTBENCH_TOP, TestbenchFiles

__all__ = [
    "VERILOG_SIMULATORS",
    "SimulationError",
    "SimulationResult",
    "run_testbench",
    "simulator_available",
]

#: A Verilog simulator a testbench runs in.
Simulator = Literal["verilator", "iverilog"]

#: The Verilog simulators :func:`run_testbench` can use (distinct from PyRTL's simulators,
#: :data:`pyrtl_linalg.SIMULATORS`).
VERILOG_SIMULATORS: tuple[Simulator, ...] = get_args(Simulator)

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

    :param simulator: one of :data:`VERILOG_SIMULATORS`.
    """
    check_choice("simulator", simulator, VERILOG_SIMULATORS)
    return all(shutil.which(name) for name in _EXECUTABLES[simulator])


def _run(command: list[str], cwd: Path, what: str, *, check: bool = True) -> CompletedProcess[str]:
    """Run ``command`` in ``cwd``; :class:`SimulationError` with its output if it is missing or,
    with ``check``, exits non-zero."""
    try:
        done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, check=False)
    except FileNotFoundError as exc:
        raise SimulationError(f"{what} failed: {command[0]} is not installed") from exc
    if check and done.returncode != 0:
        raise SimulationError(f"{what} failed (exit {done.returncode}):\n{_tail(done)}")
    return done


def _tail(done: CompletedProcess[str]) -> str:
    """The last 20 lines a command printed, for an error message."""
    return "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])


@dataclasses.dataclass(frozen=True)
class _Run:
    """A testbench built and run: its result line, output, exit status and the two wall times."""

    match: re.Match[str]
    log: str
    returncode: int
    build_seconds: float
    run_seconds: float


class _Written(Protocol):
    """Files of a testbench: :class:`~pyrtlnet._verilog.TestbenchFiles` or the AXI one's."""

    @property
    def directory(self) -> Path:
        """Where it builds and runs."""
        ...


def _build_and_run(
    simulator: Simulator,
    files: _Written,
    build: Callable[[int], list[str]],
    result: re.Pattern[str],
    *,
    jobs: int | None,
    what: str,
    check: bool = True,
) -> _Run:
    """Build a testbench with ``build(jobs)``, run the command it returns in its directory and
    find the ``result`` line in its output; shared by :func:`run_testbench` and the AXI
    testbench.

    :param check: a non-zero exit of the run is an error (else the caller judges
        :attr:`_Run.returncode`).
    :raises SimulationError: the simulator is missing, did not build, or printed no result.
    """
    if not simulator_available(simulator):
        raise SimulationError(
            f"{simulator} is not installed (needs {', '.join(_EXECUTABLES[simulator])})"
        )
    jobs = check_positive("jobs", jobs if jobs is not None else os.cpu_count() or 1)
    began = time.perf_counter()
    command = build(jobs)
    built = time.perf_counter()
    done = _run(command, files.directory, what, check=check)
    finished = time.perf_counter()
    match = result.search(done.stdout)
    if match is None:
        raise SimulationError(f"{what} printed no RESULT line:\n{_tail(done)}")
    return _Run(match, done.stdout, done.returncode, built - began, finished - built)


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
    run = _build_and_run(
        simulator,
        files,
        lambda jobs: _build(files, simulator, vcd=vcd, jobs=jobs),
        _RESULT,
        jobs=jobs,
        what=f"{simulator} run",
    )
    match = run.match
    return SimulationResult(
        simulator=simulator,
        passed=match["status"] == "PASS",
        images=int(match["images"]),
        batches=int(match["batches"]),
        mismatches=int(match["mismatches"]),
        cycles=int(match["cycles"]),
        batch_cycles=(int(match["min"]), int(match["max"])),
        build_seconds=run.build_seconds,
        run_seconds=run.run_seconds,
        log=run.log,
    )
