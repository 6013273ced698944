"""Design-space exploration: many configurations, each through one flow, as Dask tasks, cached.

A *design point* is one configuration of the hardware (architecture, array, batch size,
rounding) taken through one flow: a yosys flow of :data:`~pyrtlnet.FLOWS`, or placement and
routing for an FPGA of :data:`~pyrtlnet.TARGETS`. Its figures are what hardware people choose
by: area (LUTs + DSPs) against throughput, images per second from the exact cycle count of a
batch (the plan's formula, which the simulations check) at a clock: the routed Fmax after
placement and routing, a stated nominal clock after synthesis alone.

Each flow run takes from seconds to an hour, so every one is a task on a
:class:`distributed.Client` (a local cluster, or any cluster a scheduler address reaches), and
every result is stored in a :class:`ResultCache` under a key that hashes what decides it: the
Verilog text (with PyRTL's numbered temporaries renumbered in order of appearance, since their
numbers depend on what else the process built before), the flow, the clock constraint of a
routed flow, and the tool versions the cluster's workers report. A rerun computes only what
changed; a changed tool version or design misses the cache by construction.

The client builds every design and its Verilog (a second or so each) and hashes it. A yosys
task takes the Verilog; a routing task takes the model file's bytes and the configuration and
builds the same design on its worker (:func:`~pyrtlnet.run_pnr` takes a design, and the build
is seconds against the minutes of routing). Workers return their reports to the client, which
writes the cache: they need pyrtlnet and the tools, no shared file system.
"""

from __future__ import annotations

import dataclasses
import hashlib
import io
import itertools
import json
import os
import re
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from qnn_ref import Model

from ._design import build_design
from ._plan import ARCHITECTURES, Plan, make_plan
from ._pnr import TARGETS, DoesNotFit, _version, find_tools, run_pnr
from ._synth import FLOWS, SynthError, run_yosys
from ._validate import check_choice, check_positive
from ._verilog import export_verilog

if TYPE_CHECKING:
    from distributed import Client

__all__ = [
    "AREA_UNITS",
    "EXPLORE_FLOWS",
    "Configuration",
    "DesignPoint",
    "ExploreProgress",
    "ResultCache",
    "default_cache_dir",
    "design_grid",
    "explore",
    "pareto_front",
    "pareto_points",
]

#: PyRTL builds into one working block per process: one build at a time, also where a worker
#: runs tasks in threads or shares the client's process.
_BUILDING = threading.Lock()

#: Bump when the stored record changes shape, or the flows' yosys scripts change what they
#: measure (2: the synth flows merge memories with their read registers, as pnr does): old
#: entries then miss instead of misreading.
_CACHE_SCHEMA = 2

#: Every flow :func:`explore` runs: the yosys flows, then the place-and-route targets.
EXPLORE_FLOWS: tuple[str, ...] = (*FLOWS, *TARGETS)

#: Per yosys flow or FPGA family, the names of its LUTs, flip-flops, DSPs and block RAMs in a
#: point's figures (``None``: not counted apart; nextpnr's iCE40 logic cell holds a LUT4 and a
#: flip-flop).
_CELLS: dict[str, dict[str, str | None]] = {
    "synth_xilinx": {"luts": "luts", "ffs": "ffs", "dsps": "dsp48e1", "brams": "bram36"},
    "synth_ice40": {"luts": "lut4", "ffs": "ffs", "dsps": "mac16", "brams": "ram"},
    "synth": {"luts": None, "ffs": None, "dsps": None, "brams": None},
    "ice40": {"luts": "ICESTORM_LC", "ffs": None, "dsps": "ICESTORM_DSP", "brams": "ICESTORM_RAM"},
    "ecp5": {"luts": "TRELLIS_COMB", "ffs": "TRELLIS_FF", "dsps": "MULT18X18D", "brams": "DP16KD"},
}


def _cells(flow: str) -> dict[str, str | None]:
    return _CELLS[TARGETS[flow].family if flow in TARGETS else flow]


#: What a point's :attr:`DesignPoint.area` counts, by flow.
AREA_UNITS: dict[str, str] = {
    "synth_xilinx": "LUTs + DSP48E1",
    "synth_ice40": "LUT4 + SB_MAC16",
    "synth": "generic cells",
} | {name: f"{_cells(name)['luts']} + {_cells(name)['dsps']}" for name in TARGETS}


@dataclasses.dataclass(frozen=True)
class Configuration:
    """One hardware configuration, the arguments of :func:`~pyrtlnet.make_plan`.

    :param architecture: ``"shared"`` or ``"per-layer"``.
    :param array: ``(rows, cols)`` of the shared array; ``None`` for per-layer.
    :param batch_size: images per batch.
    :param rounding: the LiteRT kernel path the requantizers reproduce.
    """

    architecture: str
    array: tuple[int, int] | None
    batch_size: int
    rounding: str = "xnnpack"

    @property
    def name(self) -> str:
        """``"shared 1x4, B=1"``, ``"per-layer, B=16"``; the rounding when not ``xnnpack``."""
        array = "" if self.array is None else f" {self.array[0]}x{self.array[1]}"
        rounding = "" if self.rounding == "xnnpack" else f", {self.rounding}"
        return f"{self.architecture}{array}, B={self.batch_size}{rounding}"


def design_grid(
    *,
    arrays: Iterable[tuple[int, int]],
    batch_sizes: Iterable[int],
    architectures: Iterable[str] = ("shared",),
    rounding: str = "xnnpack",
) -> list[Configuration]:
    """Every combination of the given options, in the order given (batch size outermost).

    A per-layer architecture has no array of its own choosing (each layer's is batch x units),
    so it contributes one configuration per batch size.

    :param arrays: shared-array sizes ``(rows, cols)``.
    :param batch_sizes: images per batch.
    :param architectures: a subset of :data:`~pyrtlnet.ARCHITECTURES`.
    :param rounding: the LiteRT kernel path.
    :raises ValueError: for an unknown architecture, a size that is not positive, or an empty
        grid.
    """
    arrays, batch_sizes, architectures = list(arrays), list(batch_sizes), list(architectures)
    for architecture in architectures:
        check_choice("architecture", architecture, ARCHITECTURES)
    for rows, cols in arrays:
        check_positive("array rows", rows)
        check_positive("array columns", cols)
    for batch in batch_sizes:
        check_positive("batch size", batch)
    grid = []
    for batch in batch_sizes:
        for architecture in architectures:
            sizes: list[tuple[int, int] | None] = [None] if architecture != "shared" else arrays
            grid += [Configuration(architecture, a, batch, rounding) for a in sizes]
    if not grid:
        raise ValueError("the grid is empty: give at least one array size and one batch size")
    return list(dict.fromkeys(grid))


def default_cache_dir() -> Path:
    """``$XDG_CACHE_HOME/pyrtlnet/explore``, by default ``~/.cache/pyrtlnet/explore``."""
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "pyrtlnet" / "explore"


class ResultCache:
    """Flow results stored as one JSON file per key in a directory.

    A file is written whole or not at all (a temporary file beside it, then renamed), so an
    interrupted run leaves only complete entries; an unreadable entry counts as a miss.

    :param directory: created on the first store.
    """

    def __init__(self, directory: str | os.PathLike[str]) -> None:
        self.directory = Path(directory)

    def _path(self, key: str) -> Path:
        return self.directory / f"{key}.json"

    def load(self, key: str) -> dict[str, Any] | None:
        """The record stored under ``key``, or None."""
        try:
            record = json.loads(self._path(key).read_text())
        except (OSError, ValueError):
            return None
        return record if isinstance(record, dict) and record.get("key") == key else None

    def store(self, key: str, record: Mapping[str, Any]) -> None:
        """Store ``record`` (JSON-serializable) under ``key``."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key)
        partial = path.with_name(f".{path.name}.{os.getpid()}.part")
        try:
            partial.write_text(json.dumps({**record, "key": key}, indent=1) + "\n")
            os.replace(partial, path)
        except BaseException:
            partial.unlink(missing_ok=True)
            raise


#: Names PyRTL numbers from a process-wide counter: ``tmp123``, ``const_45_7``.
_NUMBERED = re.compile(r"\b(tmp|const_)(\d+)")


def canonical_verilog(text: str) -> str:
    """``text`` with PyRTL's numbered names renumbered in order of first appearance.

    PyRTL numbers its temporaries and constants from counters that run for the whole process,
    so the same design built after another one exports with other numbers; renumbered, equal
    designs give equal text (and equal cache keys), the Verilog still meaning the same.
    """
    numbers: dict[str, str] = {}

    def renumber(match: re.Match[str]) -> str:
        return numbers.setdefault(match[0], f"{match[1]}{len(numbers)}")

    return _NUMBERED.sub(renumber, text)


def tool_versions(flows: Sequence[str]) -> dict[str, dict[str, str]]:
    """The versions of the tools each flow runs, as they report themselves.

    A yosys flow runs ``yosys`` from ``PATH`` (as :func:`~pyrtlnet.run_yosys` does, its
    ``yosys -V`` line); a target runs what :func:`~pyrtlnet.find_tools` finds (YoWASP or
    native yosys and nextpnr; the packer writes no figures and is left out). :func:`explore`
    asks a worker, so these are the versions on the machines that run the flows.

    :param flows: names of :data:`EXPLORE_FLOWS`.
    :returns: tool name -> version, by flow.
    :raises SynthError: if yosys is not installed (for a yosys flow).
    :raises PnrError: if a target's tools are not installed.
    """
    versions = {}
    for flow in flows:
        if flow in TARGETS:
            found = find_tools(TARGETS[flow].family)
            versions[flow] = {
                name: f"{_version(path)} ({'yowasp' if 'yowasp' in Path(path).name else 'native'})"
                for name, path in list(found.items())[:2]
            }
            continue
        if shutil.which("yosys") is None:
            raise SynthError("yosys is not installed")
        done = subprocess.run(["yosys", "-V"], capture_output=True, text=True, check=False)
        versions[flow] = {"yosys": done.stdout.strip() or done.stderr.strip()}
    return versions


def evaluate(verilog: str, flow: str) -> dict[str, Any]:
    """Run one yosys flow on one design's Verilog: a task of :func:`explore`.

    :param verilog: the design's Verilog text (module ``pyrtlnet``).
    :param flow: one of :data:`~pyrtlnet.FLOWS`.
    :returns: ``{"report": SynthReport.to_json(), "seconds": wall time}``.
    :raises SynthError: if yosys fails.
    """
    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-explore-") as scratch:
        source = Path(scratch) / "design.v"
        source.write_text(verilog)
        report = run_yosys(source, flows=(flow,), workdir=scratch)
    return {"report": report.to_json(), "seconds": time.perf_counter() - began}


def evaluate_pnr(
    model: bytes, config: Configuration, target: str, clock_mhz: float
) -> dict[str, Any]:
    """Build one configuration and place and route it for ``target``: a task of :func:`explore`.

    :param model: the ``.tflite`` file's bytes (the worker may have no copy of the file).
    :param config: the configuration.
    :param target: a name of :data:`~pyrtlnet.TARGETS`.
    :param clock_mhz: the clock constraint.
    :returns: ``{"report": PnrReport.as_dict(), "seconds": wall time}``, or, for a design
        larger than the device, ``{"does_not_fit": message, "seconds": ...}``.
    :raises PnrError: if a tool is missing or fails.
    """
    from qnn_ref import read_model

    began = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-explore-") as scratch:
        path = Path(scratch) / "model.tflite"
        path.write_bytes(model)
        with _BUILDING:
            design = build_design(_plan(read_model(path), config))
        try:
            result = {"report": run_pnr(design, target=target, clock_mhz=clock_mhz).as_dict()}
        except DoesNotFit as error:
            result = {"does_not_fit": str(error)}
    return result | {"seconds": time.perf_counter() - began}


def _plan(model: Model, config: Configuration) -> Plan:
    return make_plan(
        model,
        architecture=config.architecture,
        array=config.array,
        batch_size=config.batch_size,
        rounding=config.rounding,
    )


def _cache_key(verilog: str, flow: str, clock_mhz: float, tools: Mapping[str, str]) -> str:
    identity = {
        "schema": _CACHE_SCHEMA,
        "verilog": hashlib.sha256(verilog.encode()).hexdigest(),
        "flow": flow,
        "clock_mhz": clock_mhz if flow in TARGETS else None,  # synthesis takes no clock
        "tools": dict(sorted(tools.items())),
    }
    return hashlib.sha256(json.dumps(identity, sort_keys=True).encode()).hexdigest()


@dataclasses.dataclass(frozen=True)
class DesignPoint:
    """One configuration through one flow: its cycles, area and throughput.

    :param configuration: the hardware configuration.
    :param flow: the flow that measured it (a name of :data:`EXPLORE_FLOWS`).
    :param cycles_per_batch: cycles from ``start`` to ``done`` for one batch (the plan's).
    :param figures: the flow's own figures: :attr:`SynthReport.xilinx` or ``.ice40``, the
        generic cells and logic depth of ``synth``, or a routed target's utilization (used
        cells by nextpnr's names) with ``fmax_mhz`` and ``constraint_met``.
    :param area: LUTs + DSPs in the flow's cells (:data:`AREA_UNITS`); None if the design
        does not fit the target.
    :param clock_mhz: the clock the throughput is computed at: the routed Fmax of a target, the
        nominal clock given to :func:`explore` for synthesis alone (whose cell-delay estimate
        says little about a routed design); None if the design does not fit.
    :param seconds: how long the flow ran (when it was computed, also for a cached result).
    :param cached: whether the result came from the cache.
    :param tools: the tool versions that produced it.
    :param key: its cache key.
    :param does_not_fit: for a design larger than the target, nextpnr's verdict in one line.
    """

    configuration: Configuration
    flow: str
    cycles_per_batch: int
    figures: Mapping[str, Any]
    area: float | None
    clock_mhz: float | None
    seconds: float
    cached: bool
    tools: Mapping[str, str]
    key: str
    does_not_fit: str | None = None

    @property
    def routed(self) -> bool:
        """Whether the clock is a routed Fmax (not a nominal one)."""
        return self.flow in TARGETS

    def resource(self, kind: str) -> float | None:
        """The flow's count of ``"luts"``, ``"ffs"``, ``"dsps"`` or ``"brams"`` (None if the
        flow does not count them apart, or the design does not fit)."""
        name = _cells(self.flow)[kind]
        if name is None or self.does_not_fit is not None:
            return None
        return self.figures.get(name, 0)  # nextpnr lists only the resources used

    @property
    def images_per_second(self) -> float | None:
        """``clock * batch_size / cycles_per_batch``: one batch after another, no gaps."""
        if self.clock_mhz is None:
            return None
        return self.clock_mhz * 1e6 * self.configuration.batch_size / self.cycles_per_batch

    @property
    def latency_us(self) -> float | None:
        """Microseconds from ``start`` to ``done`` of one batch at :attr:`clock_mhz`."""
        return None if self.clock_mhz is None else self.cycles_per_batch / self.clock_mhz

    def as_dict(self) -> dict[str, Any]:
        """A JSON-serializable form: the configuration's fields, the figures and rates."""
        config = self.configuration
        return {
            "configuration": config.name,
            "architecture": config.architecture,
            "array": None if config.array is None else list(config.array),
            "batch_size": config.batch_size,
            "rounding": config.rounding,
            "flow": self.flow,
            "cycles_per_batch": self.cycles_per_batch,
            "area": self.area,
            "area_units": AREA_UNITS[self.flow],
            **{kind: self.resource(kind) for kind in ("luts", "ffs", "dsps", "brams")},
            "clock_mhz": self.clock_mhz,
            "clock": "routed Fmax" if self.routed else "nominal",
            "images_per_second": self.images_per_second,
            "latency_us": self.latency_us,
            "does_not_fit": self.does_not_fit,
            "seconds": round(self.seconds, 2),
            "cached": self.cached,
            "tools": dict(self.tools),
            "key": self.key,
            "figures": dict(self.figures),
        }


@dataclasses.dataclass(frozen=True)
class ExploreProgress:
    """Passed to :func:`explore`'s ``progress`` callback as each point is known.

    :param point: the point just finished (or found in the cache).
    :param done: points known so far, this one included.
    :param total: points in the sweep.
    """

    point: DesignPoint
    done: int
    total: int


def _figures(flow: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """A flow's figures from its stored record (see :attr:`DesignPoint.figures`)."""
    report = record.get("report")
    if report is None:  # a target the design does not fit
        return {}
    if flow in TARGETS:
        used = {name: pair[0] for name, pair in report["utilization"].items()}
        return used | {k: report[k] for k in ("fmax_mhz", "constraint_met")}
    if flow == "synth":
        return {k: report[k] for k in ("generic_cells", "logic_depth")}
    return dict(report["xilinx" if flow == "synth_xilinx" else "ice40"])


def _point(
    config: Configuration,
    flow: str,
    plan: Plan,
    record: Mapping[str, Any],
    *,
    clock_mhz: float,
    cached: bool,
) -> DesignPoint:
    figures = _figures(flow, record)
    cells = _cells(flow)
    if record.get("does_not_fit") is not None:
        area = clock = None
    elif flow == "synth":
        area, clock = float(figures["generic_cells"]), clock_mhz
    else:
        area = float(figures.get(cells["luts"], 0) + figures.get(cells["dsps"], 0))
        clock = figures["fmax_mhz"] if flow in TARGETS else clock_mhz
    return DesignPoint(
        configuration=config,
        flow=flow,
        cycles_per_batch=plan.cycles_per_batch,
        figures=figures,
        area=area,
        clock_mhz=clock,
        seconds=record["seconds"],
        cached=cached,
        tools=record["tools"],
        key=record["key"],
        does_not_fit=record.get("does_not_fit"),
    )


def explore(
    model: Model,
    configurations: Sequence[Configuration],
    flows: Sequence[str],
    *,
    client: Client,
    cache: ResultCache | None = None,
    clock_mhz: float = 100.0,
    progress: Callable[[ExploreProgress], None] | None = None,
) -> list[DesignPoint]:
    """Take every configuration through every flow, as tasks on ``client``'s cluster.

    Designs are built and exported here, one at a time (the client's memory holds one PyRTL
    block at once); the tasks go to the workers as soon as each design is hashed, and their
    results are stored in ``cache`` as they come back, so an interrupted sweep keeps what it
    finished. Equal designs (same Verilog, flow and tools) run once.

    :param model: the model every configuration is built for.
    :param configurations: from :func:`design_grid`, or any list.
    :param flows: names of :data:`EXPLORE_FLOWS`: yosys flows and place-and-route targets.
    :param client: a :class:`distributed.Client`; its workers need pyrtlnet and the tools.
    :param cache: where results are looked up and stored; None: computed every time.
    :param clock_mhz: the clock constraint of the targets, and the nominal clock of the yosys
        flows' images/s and latency.
    :param progress: called once per point, in the order the points become known.
    :returns: the points, configuration by configuration, flow by flow (the order given).
    :raises ValueError: for an unknown flow, a clock that is not positive, or a configuration
        :func:`~pyrtlnet.make_plan` rejects (the message names it).
    :raises SynthError: if yosys is missing or fails on a worker.
    :raises PnrError: if a target's tools are missing or fail (a design too large for the
        device is a point, see :attr:`DesignPoint.does_not_fit`).
    """
    from distributed import Future, as_completed

    for flow in flows:
        check_choice("flow", flow, EXPLORE_FLOWS)
    if not 0 < clock_mhz < float("inf"):
        raise ValueError(f"the clock must be a positive number of MHz, not {clock_mhz!r}")
    plans = {}
    for config in configurations:
        try:
            plans[config] = _plan(model, config)
        except ValueError as error:
            raise ValueError(f"{config.name}: {error}") from None
    tools = client.submit(tool_versions, list(flows), pure=False).result()
    model_bytes = Path(model.path).read_bytes() if set(flows) & set(TARGETS) else b""
    total = len(configurations) * len(flows)
    points: dict[tuple[Configuration, str], DesignPoint] = {}

    def finish(config: Configuration, flow: str, record: Mapping[str, Any], cached: bool) -> None:
        point = _point(config, flow, plans[config], record, clock_mhz=clock_mhz, cached=cached)
        points[config, flow] = point
        if progress is not None:
            progress(ExploreProgress(point, len(points), total))

    # Tasks by cache key (their Dask key too, so equal designs run once) -> points waiting.
    waiting: dict[str, list[tuple[Configuration, str]]] = {}
    futures: dict[str, Future] = {}
    running = as_completed()
    try:
        for config in configurations:
            verilog = _export(plans[config])
            for flow in flows:
                key = _cache_key(verilog, flow, clock_mhz, tools[flow])
                record = None if cache is None else cache.load(key)
                if record is not None:
                    finish(config, flow, record, cached=True)
                    continue
                if key not in futures:
                    task, args = (
                        (evaluate_pnr, (model_bytes, config, flow, clock_mhz))
                        if flow in TARGETS
                        else (evaluate, (verilog, flow))
                    )
                    futures[key] = client.submit(task, *args, key=f"explore-{key}")
                    running.add(futures[key])
                waiting.setdefault(key, []).append((config, flow))
        for future in running:
            key = future.key.removeprefix("explore-")
            flow = waiting[key][0][1]
            record = {**future.result(), "tools": tools[flow], "key": key}
            if cache is not None:
                cache.store(key, record)
            for config, flow in waiting.pop(key):
                finish(config, flow, record, cached=False)
    finally:
        client.cancel(list(futures.values()))
    return [points[config, flow] for config in configurations for flow in flows]


def _export(plan: Plan) -> str:
    """The canonical Verilog of the design ``plan`` describes."""
    buffer = io.StringIO()
    with _BUILDING:
        export_verilog(build_design(plan), buffer)
    return canonical_verilog(buffer.getvalue())


def pareto_front(points: Sequence[tuple[float, float]]) -> list[bool]:
    """Which ``(area, speed)`` points no other point dominates (smaller area, higher speed).

    A point is dominated when another has at most its area and at least its speed and is
    strictly better in one of the two; equal points do not dominate each other. Sorted by
    area, one pass keeps the fastest points of each area whose speed beats every speed at a
    smaller area: ``O(n log n)``.

    :param points: ``(area, speed)`` pairs.
    :returns: one flag per point, in the order given.
    """
    order = sorted(range(len(points)), key=lambda i: (points[i][0], -points[i][1]))
    front = [False] * len(points)
    best = float("-inf")  # the highest speed at a strictly smaller area
    for _, same_area in itertools.groupby(order, key=lambda i: points[i][0]):
        indices = list(same_area)
        top = points[indices[0]][1]
        for i in indices:
            front[i] = points[i][1] == top and top > best
        best = max(best, top)
    return front


def pareto_points(points: Sequence[DesignPoint]) -> list[bool]:
    """Which points are on the Pareto front of images/s against area *within their flow*
    (areas of different flows count different cells and do not compare); a design that does
    not fit its target is on no front.

    :param points: from :func:`explore`.
    :returns: one flag per point, in the order given.
    """
    front = [False] * len(points)
    for flow in dict.fromkeys(p.flow for p in points):
        mine = [i for i, p in enumerate(points) if p.flow == flow and p.area is not None]
        flags = pareto_front([(points[i].area, points[i].images_per_second) for i in mine])  # type: ignore[misc]
        for i, flag in zip(mine, flags, strict=True):
            front[i] = flag
    return front
