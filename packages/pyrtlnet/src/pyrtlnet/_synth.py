"""yosys area and timing reports for exported Verilog, and a check against an FPGA's budget.

Three yosys flows, one yosys process each, all on the same flattened module:

- ``synth``: technology-independent gates (``$_AND_``, ``$_DFF_P_``, ...). Its cell count is the
  portable size figure; ``ltp -noff`` gives the longest combinational path in gates.
- ``synth_xilinx``: 7-series cells (LUT1..LUT6, FDRE.., CARRY4, DSP48E1, RAMB36E1/18E1, LUT
  RAMs). Reading the cells' timing from yosys' own ``cells_sim.v`` (``read_verilog -lib
  -specify``) lets ``sta`` report the latest arrival time in picoseconds: an estimate of the
  critical path from the cells' delays alone (no routing, so a real design is slower; cells
  without timing arcs, such as LUT RAMs in yosys 0.23, count as zero delay). ``-abc9``, which
  would carry the same timing through mapping, aborts in yosys 0.23 on designs with LUT RAMs.
- ``synth_ice40``: LUT4, SB_CARRY, SB_DFF.., SB_RAM40_4K, SB_MAC16.

Block RAM. Every memory of the design is read from a registered address. Where that register
also drives other logic (a shared address sliced for several memories, the next address's
adder), yosys' ``opt_dff`` can give its bits different enable and reset signals; ``memory_dff``
then finds no single flip-flop to merge into the read port and the memory falls back to LUT
RAM, or to flip-flops and logic. Every flow here, and :func:`pyrtlnet.run_pnr`'s, therefore
runs ``memory_dff`` straight after ``proc``, while every register is still one plain flip-flop,
then the rest of its usual script (:func:`synth_commands`).

yosys takes minutes to hours on the larger designs (the 16x16 array at batch 16 took over 40
minutes for the three flows on a 2-core machine), so :func:`run_yosys` reports each flow as it
starts and ends through a ``progress`` callback, and :func:`estimate_synthesis` sizes a design
before any yosys runs, for a caller to warn on.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import pyrtl

from ._design import Design

__all__ = [
    "FLOWS",
    "LARGE_SYNTHESIS",
    "PYNQ_Z2",
    "Budget",
    "BudgetCheck",
    "FlowResult",
    "SynthError",
    "SynthEstimate",
    "SynthProgress",
    "SynthReport",
    "check_budget",
    "estimate_synthesis",
    "run_yosys",
]

FLOWS: tuple[str, ...] = ("synth", "synth_xilinx", "synth_ice40")

#: Each flow's options and the reports run after it.
_FLOW_COMMANDS = {
    "synth": (
        "-flatten -top {top}",
        ("tee -q -o {stat} stat -json", "tee -q -o {depth} ltp -noff"),
    ),
    "synth_xilinx": (
        "-flatten -top {top}",
        (
            "tee -q -o {stat} stat -json",
            "read_verilog -lib -specify +/xilinx/cells_sim.v",
            "tee -q -o {depth} sta",
        ),
    ),
    "synth_ice40": ("-top {top}", ("tee -q -o {stat} stat -json",)),
}
#: The step of each yosys script that runs its first ``opt`` (in yosys 0.23 and 0.70 alike):
#: :func:`synth_commands` merges the read registers into the memories before it.
_FIRST_OPT = {
    "synth": "coarse",
    "synth_xilinx": "prepare",
    "synth_ice40": "coarse",
    "synth_ecp5": "coarse",
}
_LTP = re.compile(r"Longest topological path in \S+ \(length=(\d+)\)")
_STA = re.compile(r"Latest arrival time in '[^']*' is (\d+)")

# Slice LUTs each 7-series LUT RAM / shift register occupies (UG474), counted into "LUTs" as
# Vivado's utilization report does.
_XILINX_LUTRAM = {
    "RAM32X1S": 1,
    "RAM64X1S": 1,
    "RAM128X1S": 2,
    "RAM256X1S": 4,
    "RAM32X1D": 2,
    "RAM64X1D": 2,
    "RAM128X1D": 4,
    "RAM32M": 4,
    "RAM64M": 4,
    "SRL16E": 1,
    "SRLC32E": 1,
}
_XILINX_FF = ("FDRE", "FDSE", "FDCE", "FDPE", "LDCE", "LDPE")


class SynthError(RuntimeError):
    """yosys is missing, failed, or printed no statistics."""


@dataclasses.dataclass(frozen=True)
class FlowResult:
    """One yosys flow's outcome.

    :param flow: ``"synth"``, ``"synth_xilinx"`` or ``"synth_ice40"``.
    :param cells: every cell yosys counts, I/O buffers included.
    :param cell_types: cell count by cell type.
    :param seconds: wall time of the yosys run.
    :param depth: ``synth``: longest combinational path in gates (``ltp -noff``);
        ``synth_xilinx``: latest arrival time in ps (``sta``, cell delays only); ``synth_ice40``:
        None.
    """

    flow: str
    cells: int
    cell_types: Mapping[str, int]
    seconds: float
    depth: int | None

    def count(self, *types: str, prefix: str = "") -> int:
        """Cells of the given types, or whose type starts with ``prefix``."""
        return sum(
            n for t, n in self.cell_types.items() if t in types or (prefix and t.startswith(prefix))
        )


@dataclasses.dataclass(frozen=True)
class SynthReport:
    """The figures hardware people choose a configuration by, from up to three flows.

    Each property is None when its flow was not run.

    :param flows: results by flow name.
    """

    flows: Mapping[str, FlowResult]

    @property
    def generic_cells(self) -> int | None:
        """Cells after the generic ``synth`` (the portable size figure)."""
        flow = self.flows.get("synth")
        return None if flow is None else flow.cells

    @property
    def logic_depth(self) -> int | None:
        """Gates on the longest combinational path of the generic netlist."""
        flow = self.flows.get("synth")
        return None if flow is None else flow.depth

    @property
    def xilinx(self) -> dict[str, float] | None:
        """7-series resources: LUTs (logic + LUT RAM), LUT RAM LUTs, FFs, DSP48E1, BRAM36
        (a RAMB18E1 counts 1/2), CARRY4, and the ``sta`` arrival time in ps."""
        flow = self.flows.get("synth_xilinx")
        if flow is None:
            return None
        lutram = sum(n * flow.count(t) for t, n in _XILINX_LUTRAM.items())
        return {
            "luts": flow.count(prefix="LUT") + lutram,
            "lutram_luts": lutram,
            "ffs": flow.count(*_XILINX_FF),
            "dsp48e1": flow.count("DSP48E1"),
            "bram36": flow.count("RAMB36E1") + flow.count("RAMB18E1") / 2,
            "carry4": flow.count("CARRY4"),
            "arrival_ps": flow.depth,
        }

    @property
    def ice40(self) -> dict[str, int] | None:
        """iCE40 resources: LUT4, SB_CARRY, flip-flops, SB_RAM40_4K, SB_MAC16."""
        flow = self.flows.get("synth_ice40")
        if flow is None:
            return None
        return {
            "lut4": flow.count("SB_LUT4"),
            "carry": flow.count("SB_CARRY"),
            "ffs": flow.count(prefix="SB_DFF"),
            "ram": flow.count("SB_RAM40_4K"),
            "mac16": flow.count("SB_MAC16"),
        }

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable summary plus every flow's cell counts."""
        return {
            "generic_cells": self.generic_cells,
            "logic_depth": self.logic_depth,
            "xilinx": self.xilinx,
            "ice40": self.ice40,
            "flows": {
                name: {
                    "cells": f.cells,
                    "seconds": round(f.seconds, 2),
                    "depth": f.depth,
                    "cell_types": dict(f.cell_types),
                }
                for name, f in self.flows.items()
            },
        }


@dataclasses.dataclass(frozen=True)
class Budget:
    """An FPGA's resources, in the units of :attr:`SynthReport.xilinx`.

    :param name: shown in reports.
    :param luts: slice LUTs.
    :param ffs: slice flip-flops.
    :param dsp48e1: DSP48E1 slices.
    :param bram36: 36 Kb block RAMs.
    """

    name: str
    luts: int
    ffs: int
    dsp48e1: int
    bram36: int


#: The default target: the Zynq-7020 (XC7Z020) on the Pynq-Z2 board.
PYNQ_Z2 = Budget("Zynq-7020 (Pynq-Z2)", luts=53_200, ffs=106_400, dsp48e1=220, bram36=140)


@dataclasses.dataclass(frozen=True)
class BudgetCheck:
    """How a design's 7-series resources compare with a :class:`Budget`.

    :param budget: the target.
    :param rows: ``(resource, used, available)`` for LUTs, FFs, DSP48E1 and BRAM36.
    """

    budget: Budget
    rows: tuple[tuple[str, float, int], ...]

    @property
    def fits(self) -> bool:
        """Every resource within its budget."""
        return all(used <= available for _, used, available in self.rows)

    def to_json(self) -> dict[str, Any]:
        """A JSON-serializable form."""
        return {
            "target": self.budget.name,
            "fits": self.fits,
            "resources": {
                name: {"used": used, "available": available} for name, used, available in self.rows
            },
        }


def check_budget(report: SynthReport, budget: Budget = PYNQ_Z2) -> BudgetCheck:
    """Compare the ``synth_xilinx`` figures of ``report`` with ``budget``.

    :param report: must include the ``synth_xilinx`` flow.
    :param budget: the target; default :data:`PYNQ_Z2`.
    """
    xilinx = report.xilinx
    if xilinx is None:
        raise ValueError("a budget check needs the synth_xilinx flow")
    rows = (
        ("LUTs", xilinx["luts"], budget.luts),
        ("FFs", xilinx["ffs"], budget.ffs),
        ("DSP48E1", xilinx["dsp48e1"], budget.dsp48e1),
        ("BRAM36", xilinx["bram36"], budget.bram36),
    )
    return BudgetCheck(budget=budget, rows=rows)


def _stat(path: Path) -> tuple[int, dict[str, int]]:
    """Total cells and cells by type from a ``stat -json`` file."""
    try:
        stats = json.loads(path.read_text())["design"]
    except (OSError, ValueError, KeyError) as exc:
        raise SynthError(f"yosys wrote no statistics to {path}") from exc
    return int(stats["num_cells"]), {k: int(v) for k, v in stats["num_cells_by_type"].items()}


#: :attr:`SynthEstimate.size` above which yosys takes many minutes: the 4x16 array at batch 16
#: (size 43,402) took about 5.5 minutes for ``synth`` and ``synth_xilinx`` here, the 16x16
#: array at batch 16 (128,676) over 40 minutes for all three flows; the default 1x16 design
#: (9,935) takes 2 to 4 minutes for all three.
LARGE_SYNTHESIS = 30_000


@dataclasses.dataclass(frozen=True)
class SynthEstimate:
    """How much work a design is for yosys, measured on the PyRTL block before synthesis.

    :param logic_bits: bits of every PyRTL net's result (adders, multipliers, multiplexers,
        registers, ...): what yosys turns into gates.
    :param memory_bits: bits of the writable memories, which yosys maps to LUT RAM, block RAM
        or flip-flops.
    :param processing_elements: multiply-accumulate elements of every array.
    """

    logic_bits: int
    memory_bits: int
    processing_elements: int

    @property
    def size(self) -> int:
        """``logic_bits + memory_bits // 3``: yosys' run time grows about linearly with it
        (fitted on the design-space runs, where a memory bit cost a third of a logic bit)."""
        return self.logic_bits + self.memory_bits // 3

    @property
    def large(self) -> bool:
        """Whether :attr:`size` exceeds :data:`LARGE_SYNTHESIS`."""
        return self.size > LARGE_SYNTHESIS


def estimate_synthesis(design: Design) -> SynthEstimate:
    """Size ``design`` for yosys (see :class:`SynthEstimate`), in well under a second.

    :param design: from :func:`pyrtlnet.build_design`.
    """
    block = design.block
    memories = [m for m in block.memblock_by_name.values() if not isinstance(m, pyrtl.RomBlock)]
    return SynthEstimate(
        logic_bits=sum(net.dests[0].bitwidth for net in block.logic if net.dests),
        memory_bits=sum(m.bitwidth << m.addrwidth for m in memories),
        processing_elements=sum(e.rows * e.cols for e in design.plan.engines),
    )


@dataclasses.dataclass(frozen=True)
class SynthProgress:
    """What :func:`run_yosys` is doing, passed to its ``progress`` callback.

    :param flow: the flow (one of :data:`FLOWS`).
    :param index: its position among the flows run, from 1.
    :param count: how many flows run.
    :param result: None when the flow starts; its result when it has finished
        (:attr:`FlowResult.seconds` says how long it took).
    """

    flow: str
    index: int
    count: int
    result: FlowResult | None = None


def synth_commands(script: str, options: str, tail: str = "") -> tuple[str, ...]:
    """yosys commands that run ``script`` (``synth_xilinx``, ``synth_ice40``, ...) with the
    design's memories merged with their read registers first (see the module on block RAM).

    :param script: a yosys synthesis script with a step in ``_FIRST_OPT``.
    :param options: its options (``-top pyrtlnet -flatten``).
    :param tail: options of its last run only (``-json netlist.json``).
    :returns: the commands, for ``yosys -p "; ".join(...)``.
    """
    step = _FIRST_OPT[script]
    return (
        f"{script} {options} -run begin:{step}",
        "proc",
        "opt_clean",
        "memory_dff",
        f"{script} {options} -run {step}: {tail}".rstrip(),
    )


def _run_flow(verilog: Path, flow: str, top: str, workdir: Path) -> FlowResult:
    stat_file, depth_file = workdir / f"{flow}.json", workdir / f"{flow}.depth.txt"
    options, reports = _FLOW_COMMANDS[flow]
    commands = [f'read_verilog "{verilog}"', *synth_commands(flow, options.format(top=top))]
    commands += [c.format(stat=stat_file, depth=depth_file) for c in reports]
    began = time.perf_counter()
    done = subprocess.run(
        ["yosys", "-q", "-p", "; ".join(commands)], capture_output=True, text=True, check=False
    )
    seconds = time.perf_counter() - began
    if done.returncode != 0:
        tail = "\n".join((done.stdout + done.stderr).strip().splitlines()[-20:])
        raise SynthError(f"yosys {flow} failed (exit {done.returncode}):\n{tail}")
    cells, types = _stat(stat_file)
    depth = None
    if depth_file.exists():
        match = (_LTP if flow == "synth" else _STA).search(depth_file.read_text())
        depth = None if match is None else int(match[1])
    return FlowResult(flow=flow, cells=cells, cell_types=types, seconds=seconds, depth=depth)


def run_yosys(
    design: Design | str | os.PathLike[str],
    *,
    top: str = "pyrtlnet",
    flows: Sequence[str] = FLOWS,
    workdir: str | os.PathLike[str] | None = None,
    progress: Callable[[SynthProgress], None] | None = None,
) -> SynthReport:
    """Synthesize a design with each of ``flows`` (one yosys process each, in turn).

    :param design: a :class:`~pyrtlnet.Design` (exported with
        :func:`~pyrtlnet.export_verilog` into ``workdir``), or a Verilog file.
    :param top: the top module (the module name a Design is exported with).
    :param flows: a subset of :data:`FLOWS`, run in this order.
    :param workdir: where the Verilog and yosys' statistics go; default: a temporary directory.
    :param progress: called when each flow starts and when it ends (see :class:`SynthProgress`).
    :raises SynthError: yosys is not installed or failed.
    :raises ValueError: for an unknown flow or a Verilog file that does not exist.
    """
    from ._verilog import export_verilog  # _verilog imports this package's Design too

    unknown = [f for f in flows if f not in FLOWS]
    if unknown:
        raise ValueError(f"unknown yosys flow {unknown[0]!r}; choose from {', '.join(FLOWS)}")
    if shutil.which("yosys") is None:
        raise SynthError("yosys is not installed")
    source = None if isinstance(design, Design) else Path(design).resolve()
    if source is not None and not source.is_file():
        raise ValueError(f"no Verilog file at {source}")
    with tempfile.TemporaryDirectory() as tmp:
        where = Path(workdir) if workdir is not None else Path(tmp)
        where.mkdir(parents=True, exist_ok=True)
        if source is None:
            source = (where / f"{top}.v").resolve()
            export_verilog(design, source, module_name=top)
        results = {}
        for index, flow in enumerate(flows, start=1):
            if progress is not None:
                progress(SynthProgress(flow, index, len(flows)))
            results[flow] = _run_flow(source, flow, top, where)
            if progress is not None:
                progress(SynthProgress(flow, index, len(flows), results[flow]))
    return SynthReport(flows=results)
