"""The ``explore`` command of the ``pyrtlnet`` CLI: a design-space sweep on Dask, cached.

``pyrtlnet.cli`` registers it with :func:`add_explore_command`. It takes the model and rounding
options of ``synth`` and lists where ``synth`` takes one value (``--arrays``, ``--batch-sizes``,
``--architectures``), runs every configuration through every flow on a local Dask cluster (or
the one ``--scheduler`` names), one line per finished point on stderr, and prints the table;
``--output`` gets the CSV, the JSON and the plot.
"""

import argparse
import contextlib
import csv
import io
import json
import logging
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any, TextIO

from qnn_ref import read_model, terminal
from qnn_ref.cliinfer import add_model_argument, add_rounding_argument
from qnn_ref.clitools import (
    CommandError,
    UsageError,
    add_command,
    check_output_directory,
    plural,
    positive_int,
    write_file,
)

from ._explore import (
    DesignPoint,
    ExploreProgress,
    ResultCache,
    default_cache_dir,
    design_grid,
    explore,
    pareto_points,
)
from ._hwcli import _ROUNDING_HELP, _array
from ._parallel import default_jobs
from ._plan import ARCHITECTURES
from ._pnr import TARGETS, PnrError
from ._synth import FLOWS, SynthError
from ._synthcli import _flows

__all__ = ["add_explore_command"]

#: The files ``--output`` gets.
CSV_FILE, JSON_FILE, PLOT_FILE = "explore.csv", "explore.json", "explore.png"

_INSTALL = "pip install 'pyrtlnet[explore]'"


def _list(parse: Callable[[str], Any]) -> Callable[[str], list[Any]]:
    """argparse type of a comma-separated list whose items ``parse`` reads."""

    def parse_list(text: str) -> list[Any]:
        items = [part.strip() for part in text.split(",") if part.strip()]
        if not items:
            raise argparse.ArgumentTypeError(f"must be a comma-separated list, not {text!r}")
        return [parse(item) for item in items]

    return parse_list


def _architecture(text: str) -> str:
    if text not in ARCHITECTURES:
        raise argparse.ArgumentTypeError(
            f"architectures must be a comma-separated subset of {','.join(ARCHITECTURES)}, "
            f"not {text!r}"
        )
    return text


def _target(text: str) -> str:
    if text not in TARGETS:
        raise argparse.ArgumentTypeError(
            f"targets must be a comma-separated subset of {','.join(TARGETS)}, not {text!r}"
        )
    return text


def _clock(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a positive number of MHz, not {text!r}")
    return value


@contextlib.contextmanager
def _client(scheduler: str | None, workers: int) -> Iterator[Any]:
    """A Dask client of the cluster at ``scheduler``, or of a local cluster of ``workers``
    processes (one task each: a flow is one single-threaded tool process), closed on exit."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise CommandError(f"pyrtlnet explore needs Dask: {_INSTALL}") from None
    if scheduler is not None:
        try:
            client = Client(scheduler, timeout="10s")
        except (OSError, TimeoutError, ValueError) as error:
            raise CommandError(
                f"cannot reach a Dask scheduler at {scheduler} ({error}); check the address, "
                "or leave out --scheduler for a local cluster"
            ) from None
        with client:
            yield client
        return
    cluster = LocalCluster(
        n_workers=workers,
        threads_per_worker=1,
        processes=True,
        dashboard_address=":0",  # no fixed port: several sweeps may run side by side
        silence_logs=logging.ERROR,
    )
    with cluster, Client(cluster) as client:
        # Ctrl-C, which the terminal sends to every process of the local cluster, is for the
        # client alone: it cancels the tasks and closes the cluster, where each worker would
        # print a traceback of its own. A Python handler, not SIG_IGN, so the tools a worker
        # starts get the default action back and stop at once.
        client.run(_leave_interrupt_to_client)
        yield client


def _leave_interrupt_to_client() -> None:
    """Run on each worker (in its main thread, where Dask runs its event loop)."""
    signal.signal(signal.SIGINT, _ignore)


def _ignore(signum: int, frame: Any) -> None:
    """A signal handler that does nothing."""


def _report(step: ExploreProgress) -> None:
    point = step.point
    how = "cached" if point.cached else "computed"
    print(
        f"[{step.done}/{step.total}] {point.configuration.name}  {point.flow}  "
        f"{point.seconds:.1f} s  {how}",
        file=sys.stderr,
        flush=True,
    )


def _number(value: float | None, digits: int = 0) -> str:
    return "" if value is None else f"{value:,.{digits}f}"


def _clock_text(point: DesignPoint) -> str:
    if point.clock_mhz is None:
        return ""
    return f"{point.clock_mhz:.1f} {'routed' if point.routed else 'nominal'}"


def _table(points: Sequence[DesignPoint], front: Sequence[bool]) -> str:
    """The points as a table, then one line for each that does not fit its target."""
    rows = [
        (
            p.configuration.name,
            p.flow,
            f"{p.cycles_per_batch:,}",
            _number(p.resource("luts")),
            _number(p.resource("dsps")),
            "does not fit" if p.does_not_fit else _number(p.area),
            _clock_text(p),
            _number(p.images_per_second),
            _number(p.latency_us, 2),
            "yes" if on else "",
        )
        for p, on in zip(points, front, strict=True)
    ]
    headers = ["configuration", "flow", "cycles/batch", "LUTs", "DSPs", "area", "MHz"]
    headers += ["images/s", "latency us", "Pareto"]
    notes = [
        f"{p.configuration.name} on {p.flow}: {p.does_not_fit}" for p in points if p.does_not_fit
    ]
    return "\n".join([terminal.table(headers, rows), *notes])


_CSV_COLUMNS = [
    "configuration",
    "architecture",
    "array",
    "batch_size",
    "rounding",
    "flow",
    "cycles_per_batch",
    "luts",
    "ffs",
    "dsps",
    "brams",
    "area",
    "area_units",
    "clock_mhz",
    "clock",
    "images_per_second",
    "latency_us",
    "pareto",
    "does_not_fit",
    "seconds",
    "cached",
]


def _records(points: Sequence[DesignPoint], front: Sequence[bool]) -> list[dict[str, Any]]:
    return [{**p.as_dict(), "pareto": on} for p, on in zip(points, front, strict=True)]


def _csv_text(records: list[dict[str, Any]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, _CSV_COLUMNS, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    for record in records:
        array = record["array"]
        writer.writerow(
            {**record, "array": "" if array is None else f"{array[0]}x{array[1]}"}
            | {
                k: _number(record[k], 3).replace(",", "")
                for k in ("images_per_second", "latency_us")
            }
        )
    return buffer.getvalue()


def _plot(points: Sequence[DesignPoint], front: Sequence[bool], path: Path, title: str) -> bool:
    """Write the plot; False when matplotlib is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    from ._exploreplot import plot_design_space

    write_file(path, lambda file: plot_design_space(points, front, file, title=title))
    return True


def _explore(args: argparse.Namespace, out: TextIO) -> int:
    check_output_directory(args.output, flag="--output")
    if args.scheduler is not None and args.workers is not None:
        raise UsageError(
            "--workers sizes the local cluster; with --scheduler the cluster's own workers "
            "run the tasks: leave out one of them"
        )
    if args.no_cache and args.cache is not None:
        raise UsageError("--cache and --no-cache contradict each other: leave out one of them")
    flows = [*(args.flows or ([] if args.targets else ["synth_xilinx"])), *args.targets]
    model = read_model(args.model)
    try:
        grid = design_grid(
            arrays=args.arrays,
            batch_sizes=args.batch_sizes,
            architectures=args.architectures,
            rounding=args.rounding,
        )
    except ValueError as error:
        raise UsageError(str(error)) from None
    cache = None if args.no_cache else ResultCache(args.cache or default_cache_dir())
    where = "no cache" if cache is None else f"cache {cache.directory}"
    cluster = (
        args.scheduler or f"a local cluster of {plural(args.workers or default_jobs(), 'worker')}"
    )
    print(
        f"{plural(len(grid), 'configuration')} x {plural(len(flows), 'flow')} on {cluster}; "
        f"{where}",
        file=sys.stderr,
    )
    began = time.perf_counter()
    with _client(args.scheduler, args.workers or default_jobs()) as client:
        try:
            points = explore(
                model,
                grid,
                flows,
                client=client,
                cache=cache,
                clock_mhz=args.clock,
                progress=_report,
            )
        except ValueError as error:
            raise UsageError(str(error)) from None
        except (SynthError, PnrError) as error:
            raise CommandError(str(error).splitlines()[0]) from None
    seconds = time.perf_counter() - began
    front = pareto_points(points)
    records = _records(points, front)
    cached = sum(p.cached for p in points)
    summary = (
        f"{plural(len(points), 'point')}: {cached:,} cached, {len(points) - cached:,} computed, "
        f"in {seconds:.1f} s"
    )
    if args.json:
        print(json.dumps({"points": records}, indent=2), file=out)
    else:
        print(_table(points, front), file=out)
        print(summary, file=out)
    written = _write_outputs(args.output, model.path, points, front, records)
    stream = sys.stderr if args.json else out
    print("wrote " + ", ".join(str(p) for p in written), file=stream)
    return 0


def _write_outputs(
    output: Path,
    model: Path,
    points: Sequence[DesignPoint],
    front: Sequence[bool],
    records: list[dict[str, Any]],
) -> list[Path]:
    """Write the JSON, CSV and (with matplotlib) the plot into ``output``, each whole or not
    at all; returns the files written."""
    output.mkdir(parents=True, exist_ok=True)
    text = json.dumps({"model": str(model), "points": records}, indent=2) + "\n"
    write_file(output / JSON_FILE, lambda file: file.write(text.encode()))
    table = _csv_text(records)
    write_file(output / CSV_FILE, lambda file: file.write(table.encode()))
    written = [output / CSV_FILE, output / JSON_FILE]
    if _plot(points, front, output / PLOT_FILE, f"pyrtlnet design space, {model.name}"):
        written.append(output / PLOT_FILE)
    else:
        print(f"plot skipped: matplotlib is not installed ({_INSTALL})", file=sys.stderr)
    return written


def add_explore_command(commands: "argparse._SubParsersAction[argparse.ArgumentParser]") -> None:
    """Add the ``explore`` sub-command with its handler.

    :param commands: the CLI's ``add_subparsers(dest="command")`` result.
    """
    parser = add_command(
        commands,
        "explore",
        _explore,
        help="sweep array sizes, batch sizes and flows on Dask: area, images/s, Pareto front",
        description="Build the hardware for every combination of --arrays, --batch-sizes and "
        "--architectures, take each through every yosys flow of --flows and every FPGA of "
        "--targets (placed and routed) as a task on a Dask cluster (local by default), and "
        "print cycles, LUTs, DSPs and images/s (at the routed Fmax, or the nominal --clock "
        "after synthesis alone) with the Pareto front of images/s against LUTs + DSPs. Every "
        "result is cached by a hash of the Verilog, the flow, the clock constraint and the tool "
        "versions, so a rerun computes only what changed. --output gets the table (CSV), JSON "
        "and a plot. Needs the explore extra "
        f"({_INSTALL}).",
    )
    add_model_argument(parser)
    add_rounding_argument(parser, help=_ROUNDING_HELP)
    grid = parser.add_argument_group("grid")
    grid.add_argument(
        "--arrays",
        type=_list(_array),
        default=[(1, 1), (1, 4), (1, 16)],
        metavar="LIST",
        help="comma-separated shared-array sizes ROWSxCOLS (default 1x1,1x4,1x16)",
    )
    grid.add_argument(
        "--batch-sizes",
        type=_list(positive_int),
        default=[1],
        metavar="LIST",
        help="comma-separated batch sizes (default 1)",
    )
    grid.add_argument(
        "--architectures",
        type=_list(_architecture),
        default=["shared"],
        metavar="LIST",
        help=f"comma-separated subset of {','.join(ARCHITECTURES)} (default shared; per-layer "
        "takes no array size, one configuration per batch size)",
    )
    grid.add_argument(
        "--flows",
        type=_flows,
        default=None,
        metavar="LIST",
        help=f"comma-separated yosys flows, of {','.join(FLOWS)} (default synth_xilinx, none "
        "when --targets is given)",
    )
    grid.add_argument(
        "--targets",
        type=_list(_target),
        default=[],
        metavar="LIST",
        help=f"comma-separated FPGAs to place and route for, of {','.join(TARGETS)}: utilization, "
        "routed Fmax and images/s at it (needs the fpga extra; minutes per point)",
    )
    grid.add_argument(
        "--clock",
        type=_clock,
        default=100.0,
        metavar="MHZ",
        help="the clock constraint of --targets, and the nominal clock of the yosys flows' "
        "images/s and latency, which give no routed clock rate (default %(default)g MHz)",
    )
    run = parser.add_argument_group("cluster and cache")
    run.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="a running Dask scheduler, e.g. tcp://10.0.0.5:8786, whose workers have pyrtlnet "
        "and the tools (default: a local cluster)",
    )
    run.add_argument(
        "--workers",
        type=positive_int,
        metavar="N",
        help="worker processes of the local cluster (default: one per core)",
    )
    run.add_argument(
        "--cache",
        type=Path,
        metavar="DIR",
        help=f"where results are stored by hash (default {default_cache_dir()})",
    )
    run.add_argument(
        "--no-cache", action="store_true", help="compute every point and store nothing"
    )
    output = parser.add_argument_group("output")
    output.add_argument(
        "--output",
        type=Path,
        default=Path("pyrtlnet-explore"),
        metavar="DIR",
        help=f"directory for {CSV_FILE}, {JSON_FILE} and {PLOT_FILE} (default %(default)s)",
    )
    output.add_argument(
        "--json",
        action="store_true",
        help="print the points as JSON on stdout instead of the table",
    )
