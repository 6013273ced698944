"""Placement and routing with open tools: yosys, nextpnr and the bitstream packers.

:func:`run_pnr` takes a :class:`~pyrtlnet.Design`, bare or behind a host interface that
sets its pins (:func:`~pyrtlnet.build_byte_bus`, :func:`~pyrtlnet.build_axi`), to a routed
FPGA: yosys synthesizes it for the target's family (``synth_ice40`` or ``synth_ecp5``, a JSON
netlist), nextpnr packs, places and routes it against a clock constraint and writes its
``--report`` (utilization and the routed Fmax as JSON), and with ``bitstream`` icepack or
ecppack writes the file a board loads.
From the routed Fmax and the design's exact cycle count the report derives what the chip does:
images per second and microseconds per batch. With ``board`` (:data:`~pyrtlnet.BOARDS`) the
byte-bus design is routed inside the board's top level (its PLL, reset and pins, see
:mod:`pyrtlnet._board`) against the board's pin constraints, written beside the bitstream.

Tools. The ``fpga`` extra (``pip install pyrtlnet[fpga]``) brings the YoWASP builds of yosys
and nextpnr (WebAssembly, no system packages; the first call of each compiles it for a minute,
cached in ``~/.cache/yowasp``). ``tools="auto"`` uses them when installed, else native
``yosys``/``nextpnr-*`` on ``PATH``: YoWASP is preferred because Debian's yosys (0.23) is years
older and Debian has no nextpnr-ecp5. Every report names the tools that ran and their versions.

Block RAM. The yosys script merges every memory with its read registers before the family's
usual script can split them (``synth_commands`` in :mod:`pyrtlnet._synth`, shared with
:func:`pyrtlnet.run_yosys`), so the input memory and the weight ROMs map to block RAM.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Literal

from ._axi import AxiDesign
from ._board import BOARDS, Board, PllConfig, board_pcf, board_top, ice40_pll
from ._bytebus import ByteBusDesign
from ._design import Design
from ._synth import synth_commands

__all__ = [
    "TARGETS",
    "TOOLS",
    "DoesNotFit",
    "PnrError",
    "PnrProgress",
    "PnrReport",
    "Target",
    "find_tools",
    "run_pnr",
]

#: Where :func:`run_pnr` looks for the tools: ``auto`` (YoWASP when installed, else native).
TOOLS: tuple[str, ...] = ("auto", "yowasp", "native")


@dataclasses.dataclass(frozen=True)
class Target:
    """An FPGA :func:`run_pnr` can route for.

    :param name: the name ``--target`` takes.
    :param family: ``"ice40"`` or ``"ecp5"``: which yosys script, nextpnr and packer.
    :param device: the part, as its vendor names it.
    :param package: the package nextpnr places the I/O pins in.
    :param nextpnr_args: nextpnr's device and package options.
    :param yosys_args: extra options of the yosys script (``-dsp``: iCE40 UltraPlus MAC16s).
    """

    name: str
    family: Literal["ice40", "ecp5"]
    device: str
    package: str
    nextpnr_args: tuple[str, ...]
    yosys_args: tuple[str, ...] = ()


#: The targets by name. iCE40 UP5K: 5,280 logic cells, 30 EBR (4 Kb), 8 MAC16, the chip of the
#: iCEBreaker board; its SG48 package has 39 I/O pins. iCE40 HX8K: 7,680 logic cells, 32 EBR,
#: no multipliers, 206 pins. ECP5: 24k / 84k LUT4, 56 / 208 DP16KD (18 Kb), 28 / 156 MULT18X18D.
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target(
            "ice40-up5k", "ice40", "iCE40UP5K", "sg48", ("--up5k", "--package", "sg48"), ("-dsp",)
        ),
        Target("ice40-hx8k", "ice40", "iCE40HX8K", "ct256", ("--hx8k", "--package", "ct256")),
        Target("ecp5-25k", "ecp5", "LFE5U-25F", "CABGA256", ("--25k", "--package", "CABGA256")),
        Target("ecp5-85k", "ecp5", "LFE5U-85F", "CABGA381", ("--85k", "--package", "CABGA381")),
    )
}

_STEPS = ("yosys", "pack", "place", "route", "bitstream")
#: nextpnr log lines that start its next step.
_NEXTPNR_STEPS = (
    ("place", re.compile(r"^Info: (Running|Creating initial) .*plac", re.IGNORECASE)),
    ("route", re.compile(r"^Info: Routing", re.IGNORECASE)),
)
#: File names in the work directory: the YoWASP tools (WebAssembly) see only the directory they
#: run in, so every tool runs there on relative names.
_VERILOG, _NETLIST, _BITSTREAM, _PCF = "design.v", "netlist.json", "bitstream", "board.pcf"
#: A line of nextpnr's "Device utilisation" block: ``Info:   ICESTORM_LC:  6249/ 5280   118%``.
_UTILIZATION = re.compile(r"^Info:\s+(\w+):\s+(\d+)/\s*(\d+)\s+\d+%")


class PnrError(RuntimeError):
    """A tool is missing or failed."""


class DoesNotFit(PnrError):
    """The design needs more of a resource than the device has.

    :param resource: nextpnr's name of the resource (``ICESTORM_LC``, ``DP16KD``, ...).
    :param used: how many the design needs.
    :param available: how many the device has.
    """

    def __init__(self, target: Target, resource: str, used: int, available: int) -> None:
        pins = resource.endswith("_IO")  # SB_IO, TRELLIS_IO: one per port bit, clk and rst
        advice = "choose a target with more I/O pins" if pins else "try a smaller array"
        super().__init__(
            f"the design does not fit the {target.device} ({target.package}): it needs "
            f"{used:,} {resource} of {available:,}; {advice}"
        )
        self.resource, self.used, self.available = resource, used, available


@dataclasses.dataclass(frozen=True)
class PnrProgress:
    """What :func:`run_pnr` is doing, passed to its ``progress`` callback.

    :param step: ``"yosys"``, ``"pack"``, ``"place"``, ``"route"`` or ``"bitstream"``.
    :param seconds: None when the step starts; its wall time when it has finished.
    """

    step: str
    seconds: float | None = None


@dataclasses.dataclass(frozen=True)
class PnrReport:
    """A routed design: what it uses of the device, how fast it runs, what that means for
    inference.

    :param target: the :class:`Target`'s name.
    :param device: the part.
    :param tools: version of each tool that ran, by its name (``yosys``, ``nextpnr-ecp5``, ...).
    :param utilization: nextpnr's ``(used, available)`` by resource, for every resource used.
    :param fmax_mhz: the routed design's highest clock rate (nextpnr's timing analysis).
    :param clock_mhz: the constraint it was placed and routed for.
    :param cycles_per_batch: cycles from ``start`` to ``done`` of a batch.
    :param batch_size: images per batch.
    :param seconds: wall time by step (``yosys``, ``pack``, ``place``, ``route``, ``bitstream``).
    :param bitstream: the file written, or None.
    :param board: the :class:`~pyrtlnet.Board`'s name for a board build, else None.
    :param pll: a board build's PLL setting (its output is :attr:`clock_mhz`), else None.
    :param pcf: a board build's pin constraints written beside the bitstream, or None.
    """

    target: str
    device: str
    tools: Mapping[str, str]
    utilization: Mapping[str, tuple[int, int]]
    fmax_mhz: float
    clock_mhz: float
    cycles_per_batch: int
    batch_size: int
    seconds: Mapping[str, float]
    bitstream: Path | None = None
    board: str | None = None
    pll: PllConfig | None = None
    pcf: Path | None = None

    @property
    def constraint_met(self) -> bool:
        """Whether the routed Fmax reaches the clock constraint."""
        return self.fmax_mhz >= self.clock_mhz

    @property
    def latency_us(self) -> float:
        """Microseconds from ``start`` to ``done`` of one batch at Fmax (loading the inputs and
        reading the results take ``in_words + out_words`` cycles more, host-bound)."""
        return self.cycles_per_batch / self.fmax_mhz

    @property
    def images_per_second(self) -> float:
        """Images per second at Fmax, batch after batch: ``batch_size / latency``."""
        return self.batch_size * self.fmax_mhz * 1e6 / self.cycles_per_batch

    def as_dict(self) -> dict[str, Any]:
        """The report as JSON-serializable values (derived figures included)."""
        return {
            "target": self.target,
            "device": self.device,
            "tools": dict(self.tools),
            "utilization": {k: list(v) for k, v in self.utilization.items()},
            "fmax_mhz": round(self.fmax_mhz, 2),
            "clock_mhz": self.clock_mhz,
            "constraint_met": self.constraint_met,
            "cycles_per_batch": self.cycles_per_batch,
            "batch_size": self.batch_size,
            "images_per_second": round(self.images_per_second, 1),
            "latency_us": round(self.latency_us, 3),
            "seconds": {k: round(v, 2) for k, v in self.seconds.items()},
            "bitstream": None if self.bitstream is None else str(self.bitstream),
            "board": self.board,
            "pll": None if self.pll is None else self.pll.as_dict(),
            "pcf": None if self.pcf is None else str(self.pcf),
        }


def _executable(name: str) -> str | None:
    """``name`` on ``PATH`` or beside the running Python (a virtual environment not activated)."""
    return shutil.which(name) or shutil.which(name, path=str(Path(sys.executable).parent))


def _tool_names(family: str) -> tuple[str, str, str]:
    return ("yosys", f"nextpnr-{family}", "icepack" if family == "ice40" else "ecppack")


def find_tools(family: Literal["ice40", "ecp5"], tools: str = "auto") -> dict[str, str]:
    """The executables of yosys, nextpnr and the packer for ``family``.

    :param family: ``"ice40"`` or ``"ecp5"``.
    :param tools: ``"yowasp"`` (the ``fpga`` extra), ``"native"`` (on ``PATH``) or ``"auto"``
        (YoWASP when all three are installed, else native).
    :returns: path by tool name (``yosys``, ``nextpnr-ecp5``, ``ecppack``, ...).
    :raises ValueError: for an unknown ``tools``.
    :raises PnrError: if a tool is missing.
    """
    if tools not in TOOLS:
        raise ValueError(f"tools must be one of {', '.join(TOOLS)}, not {tools!r}")
    names = _tool_names(family)
    kinds = ("yowasp", "native") if tools == "auto" else (tools,)
    for kind in kinds:
        found = {n: _executable(f"yowasp-{n}" if kind == "yowasp" else n) for n in names}
        if all(found.values()):
            return {n: str(path) for n, path in found.items()}
    if tools == "native":
        missing = ", ".join(n for n, path in found.items() if path is None)
        raise PnrError(f"needs {missing} on PATH")
    extra = "pip install 'pyrtlnet[fpga]'"
    if tools == "yowasp":
        missing = ", ".join(f"yowasp-{n}" for n, path in found.items() if path is None)
        raise PnrError(f"needs {missing}: {extra}")
    raise PnrError(f"needs the open FPGA tools: {extra}, or {', '.join(names)} on PATH")


@cache
def _version(executable: str) -> str:
    """The tool's version, e.g. ``"0.70"`` for yosys, ``"0.11.1"`` for nextpnr (icepack has
    none: ``"unknown"``)."""
    flag = "-V" if Path(executable).name.endswith("yosys") else "--version"
    done = subprocess.run([executable, flag], capture_output=True, text=True, check=False)
    match = re.search(r"(?:Yosys |nextpnr-|Version )(\d+\.\d+[\w.-]*)", done.stdout + done.stderr)
    return match[1] if match else "unknown"


def _described(executable: str) -> str:
    """``"0.70 (yowasp)"``: the version and where the tool came from."""
    kind = "yowasp" if Path(executable).name.startswith("yowasp-") else "native"
    return f"{_version(executable)} ({kind})"


def _run(command: list[str], what: str, log: Path) -> None:
    """Run a tool to completion in ``log``'s directory, its output into ``log``."""
    with log.open("w") as out:
        done = subprocess.run(
            command, stdout=out, stderr=subprocess.STDOUT, cwd=log.parent, check=False
        )
    if done.returncode != 0:
        raise PnrError(f"{what} failed (exit {done.returncode}): {_last_error(log)}")


def _last_error(log: Path) -> str:
    lines = log.read_text(errors="replace").splitlines()
    errors = [line for line in lines if line.startswith("ERROR")]
    return (errors or lines or ["no output"])[-1].strip()


def _yosys(yosys: str, target: Target, top: str, workdir: Path) -> None:
    """Synthesize ``design.v`` into ``netlist.json`` for ``target`` (see the module on block
    RAM), with yosys' statistics of it in ``stat.json``."""
    options = " ".join((f"-top {top}", *target.yosys_args))
    script = "; ".join(
        (
            f"read_verilog {_VERILOG}",
            *synth_commands(f"synth_{target.family}", options, f"-json {_NETLIST}"),
            "tee -q -o stat.json stat -json",
        )
    )
    _run([yosys, "-q", "-p", script], "yosys", workdir / "yosys.log")


def _utilization_in_log(lines: list[str]) -> dict[str, tuple[int, int]]:
    found = {}
    for line in lines:
        match = _UTILIZATION.match(line)
        if match:
            found[match[1]] = (int(match[2]), int(match[3]))
    return found


def _nextpnr(
    nextpnr: str,
    target: Target,
    clock_mhz: float,
    workdir: Path,
    step: Callable[[str], None],
    pcf: bool,
) -> tuple[dict[str, Any], str]:
    """Pack, place and route ``netlist.json`` (with ``pcf``, on the pins ``board.pcf`` sets);
    returns nextpnr's report and the name of its placed-and-routed output."""
    log = workdir / "nextpnr.log"
    routed = "routed.asc" if target.family == "ice40" else "routed.config"
    output = "--asc" if target.family == "ice40" else "--textcfg"
    command = [nextpnr, *target.nextpnr_args, "--json", _NETLIST, "--freq", f"{clock_mhz:g}"]
    command += ["--timing-allow-fail", "--report", "nextpnr.json", output, routed]
    command += ["--pcf", _PCF] if pcf else []
    lines: list[str] = []
    current = "pack"
    step(current)
    with (
        log.open("w") as out,
        subprocess.Popen(
            command,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            text=True,
            errors="replace",
        ) as process,
    ):
        assert process.stdout is not None
        for line in process.stdout:
            out.write(line)
            lines.append(line.rstrip("\n"))
            for name, pattern in _NEXTPNR_STEPS:
                if name != current and pattern.match(line):
                    current = name
                    step(name)
    if process.returncode != 0:
        for resource, (used, available) in _utilization_in_log(lines).items():
            if used > available:
                raise DoesNotFit(target, resource, used, available)
        raise PnrError(f"nextpnr failed (exit {process.returncode}): {_last_error(log)}")
    return json.loads((workdir / "nextpnr.json").read_text()), routed


def _board_build(
    design: Design | ByteBusDesign | AxiDesign, board: str, target: str | None, clock_mhz: float
) -> tuple[Board, PllConfig]:
    """Check a board build's arguments; returns the board and the PLL setting for the clock."""
    if board not in BOARDS:
        raise ValueError(f"unknown board {board!r}; choose from {', '.join(BOARDS)}")
    chosen = BOARDS[board]
    if target is not None and target != chosen.target:
        raise ValueError(
            f"the {chosen.title} carries an {chosen.target}, not an {target}: leave the target out"
        )
    if not isinstance(design, ByteBusDesign):
        raise ValueError(
            f"the {chosen.title}'s pins carry the byte bus: pass the design through "
            f"build_byte_bus (the byte interface), not a {type(design).__name__}"
        )
    return chosen, ice40_pll(chosen.oscillator_mhz, clock_mhz)


def _write_whole(source: Path, dest: Path) -> None:
    """Copy ``source`` to ``dest`` whole or not at all (through a hidden partial file)."""
    partial = dest.with_name(f".{dest.name}.{os.getpid()}.part")
    try:
        shutil.copyfile(source, partial)
        partial.replace(dest)
    finally:
        partial.unlink(missing_ok=True)


def run_pnr(
    design: Design | ByteBusDesign | AxiDesign,
    *,
    target: str | None = None,
    clock_mhz: float,
    board: str | None = None,
    bitstream: str | os.PathLike[str] | None = None,
    progress: Callable[[PnrProgress], None] | None = None,
    workdir: str | os.PathLike[str] | None = None,
    tools: str = "auto",
    top: str = "pyrtlnet",
) -> PnrReport:
    """Synthesize, place and route ``design`` for ``target``, optionally writing a bitstream.

    :param design: from :func:`pyrtlnet.build_design`, or a design behind a host interface
        (:func:`pyrtlnet.build_byte_bus`, :func:`pyrtlnet.build_axi`): its ports are the
        top-level pins.
    :param target: a name of :data:`TARGETS`; with ``board``, the board's FPGA (the default).
    :param clock_mhz: the clock constraint nextpnr places and routes for; the report says
        whether the routed Fmax meets it. With ``board``, the clock asked of the board's PLL:
        the constraint is the closest clock it makes without exceeding this
        (:func:`pyrtlnet.ice40_pll`).
    :param board: a name of :data:`pyrtlnet.BOARDS`: route the byte-bus design inside the
        board's top level on its pins, and write the pin constraints (``.pcf``) beside the
        bitstream.
    :param bitstream: write the bitstream here (icepack's ``.bin`` or ecppack's ``.bit``),
        whole or not at all.
    :param progress: called when each step starts and ends (see :class:`PnrProgress`).
    :param workdir: where the Verilog, netlist, logs and reports go; default: a temporary
        directory.
    :param tools: see :func:`find_tools`.
    :param top: the Verilog module name of the design (a board's top level is
        ``{top}_{board}``).
    :raises ValueError: for an unknown target, board or tools, a clock that is not a positive
        number of MHz or that the board's PLL cannot make, a board with another target or a
        design not behind the byte bus, or a bitstream path in no directory.
    :raises DoesNotFit: if the design needs more of a resource than the device has.
    :raises PnrError: if a tool is missing or fails.
    """
    from ._verilog import export_verilog  # _verilog imports Design from this package too

    valid = isinstance(clock_mhz, int | float) and not isinstance(clock_mhz, bool)
    if not valid or not math.isfinite(clock_mhz) or clock_mhz <= 0:
        raise ValueError(f"the clock must be a positive number of MHz, not {clock_mhz!r}")
    chosen, pll = (None, None) if board is None else _board_build(design, board, target, clock_mhz)
    target = target if chosen is None else chosen.target
    if target not in TARGETS:
        raise ValueError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if bitstream is not None and not Path(bitstream).parent.is_dir():
        raise ValueError(f"no directory {Path(bitstream).parent} to write the bitstream in")
    chip = TARGETS[target]
    constraint = float(clock_mhz) if pll is None else pll.output_mhz
    core = design if isinstance(design, Design) else design.design
    executables = find_tools(chip.family, tools)
    seconds: dict[str, float] = {}
    current: list[tuple[str, float]] = []

    def step(name: str | None) -> None:
        now = time.perf_counter()
        if current:
            done, began = current.pop()
            seconds[done] = now - began
            if progress is not None:
                progress(PnrProgress(done, seconds[done]))
        if name is not None:
            current.append((name, now))
            if progress is not None:
                progress(PnrProgress(name))

    yosys, nextpnr, packer = executables.values()
    ran = dict(list(executables.items())[: 3 if bitstream is not None else 2])
    written = pcf = None
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-pnr-") as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        export_verilog(design.block, where / _VERILOG, module_name=top)
        module = top
        if chosen is not None and pll is not None:
            assert isinstance(design, ByteBusDesign)  # _board_build checked it
            module = f"{top}_{chosen.name}"
            with (where / _VERILOG).open("a") as verilog:
                verilog.write(board_top(design, chosen, pll, core=top))
            (where / _PCF).write_text(board_pcf(chosen))
        step("yosys")
        _yosys(yosys, chip, module, where)
        report, routed = _nextpnr(nextpnr, chip, constraint, where, step, chosen is not None)
        if bitstream is not None:
            step("bitstream")
            _run([packer, routed, _BITSTREAM], Path(packer).name, where / "pack.log")
            written = Path(bitstream)
            if chosen is not None:
                pcf = written.with_suffix(".pcf")
                _write_whole(where / _PCF, pcf)
            _write_whole(where / _BITSTREAM, written)
        step(None)
    return PnrReport(
        target=chip.name,
        device=chip.device,
        tools={name: _described(path) for name, path in ran.items()},
        utilization={
            name: (int(use["used"]), int(use["available"]))
            for name, use in report["utilization"].items()
            if int(use["used"]) > 0
        },
        fmax_mhz=min(float(clock["achieved"]) for clock in report["fmax"].values()),
        clock_mhz=constraint,
        cycles_per_batch=core.cycles_per_batch,
        batch_size=core.batch_size,
        seconds=seconds,
        bitstream=written,
        board=None if chosen is None else chosen.name,
        pll=pll,
        pcf=pcf,
    )
