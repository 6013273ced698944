"""Design space of the shipped model's hardware: images/s against area, Pareto front.

For array sizes from 1x1 up to the per-layer full size and batch sizes 1 and 16, this runs
:func:`pyrtlnet.explore` (every configuration through yosys ``synth_xilinx`` for 7-series LUTs,
flip-flops and DSP48E1, and the generic ``synth`` for its cell count, each a task on a local
Dask cluster, cached) and writes the table the docs' hardware page shows. The cycle count of a
batch is the plan's (the documented formula, checked against PyRTL, Verilator and Icarus by the
tests); images/s are at a nominal 100 MHz (synthesis alone gives no routed clock). A
configuration is on the Pareto front when no other one has at most its LUTs + DSP48E1 and at
least its images/s, and is better in one of them.

Baseline, the original pyrtlnet built here: 193 cycles per image at batch 1, yosys ``synth``
83,897 cells, ``synth_xilinx`` 2,844 LUTs and 170 DSP48E1 (its batch-10 build needed 1,700
DSPs and did not fit the Zynq-7020). Targets: a configuration that fits the Zynq-7020 at batch
16, and one with at most 1/4 of the baseline's DSPs at batch 1 and at most 2x its cycles per
image.

Writes ``docs/pyrtlnet/design_space.csv``, the figures as JSON beside it, and
``docs/pyrtlnet/design_space.png`` (matplotlib, the explore extra).

Usage: ``hatch run fpga:python bench/design_space.py [--only NAME ...] [--flows LIST]
[--workers N]``. ``synth_xilinx`` took about 5 minutes for all ten configurations on two
workers of a busy 2-core machine; the generic ``synth`` takes up to most of an hour for the
largest arrays (it turns their memories into flip-flops). Every result goes to explore's
cache as it is measured (``~/.cache/pyrtlnet/explore``), so a rerun, or one after an
interruption, only computes what changed. ``--flows synth_xilinx`` skips the slow generic
``synth`` (the generic-cell column is then empty).
"""

import argparse
import csv
import json
from pathlib import Path

import qnn_ref
from pyrtlnet import (
    PYNQ_Z2,
    Configuration,
    DesignPoint,
    ExploreProgress,
    ResultCache,
    default_cache_dir,
    explore,
    pareto_points,
    plot_design_space,
)
from pyrtlnet._explorecli import _client  # the CLI's local cluster (Ctrl-C stops it cleanly)

DOCS = Path(__file__).resolve().parent.parent / "docs" / "pyrtlnet"

#: The original pyrtlnet, measured here (batch 1).
BASELINE = {"cycles_per_image": 193, "cells": 83_897, "luts": 2_844, "dsp48e1": 170}

#: The nominal clock of the images/s column.
CLOCK_MHZ = 100.0

#: name -> configuration. Shared arrays from one multiply-accumulate element to a full
#: hidden-layer row (18 units) and a full batch of 16 rows; per-layer is the largest.
CONFIGS = {
    c.name: c
    for c in (
        Configuration("shared", (1, 1), 1),
        Configuration("shared", (1, 4), 1),
        Configuration("shared", (1, 16), 1),
        Configuration("shared", (1, 18), 1),
        Configuration("per-layer", None, 1),
        Configuration("shared", (1, 16), 16),
        Configuration("shared", (4, 16), 16),
        Configuration("shared", (8, 16), 16),
        Configuration("shared", (16, 16), 16),
        Configuration("per-layer", None, 16),
    )
}

COLUMNS = [
    "configuration",
    "cycles/batch",
    "cycles/image",
    "LUTs",
    "FFs",
    "DSP48E1",
    "BRAM36",
    "generic cells",
    f"images/s at {CLOCK_MHZ:g} MHz",
    "fits Zynq-7020",
    "Pareto",
]


def _row(point: DesignPoint, generic: DesignPoint | None, on_front: bool) -> list[object]:
    """The table's row for one configuration's synth_xilinx point (and its synth point)."""
    f, batch = point.figures, point.configuration.batch_size
    fits = all(
        used <= available
        for used, available in zip(
            (f["luts"], f["ffs"], f["dsp48e1"], f["bram36"]),
            (PYNQ_Z2.luts, PYNQ_Z2.ffs, PYNQ_Z2.dsp48e1, PYNQ_Z2.bram36),
            strict=True,
        )
    )
    return [
        point.configuration.name,
        point.cycles_per_batch,
        f"{point.cycles_per_batch / batch:.1f}",
        f"{f['luts']:,}",
        f"{f['ffs']:,}",
        f["dsp48e1"],
        f"{f['bram36']:g}",
        "" if generic is None else f"{generic.figures['generic_cells']:,}",
        f"{point.images_per_second:,.0f}",
        "yes" if fits else "no",
        "yes" if on_front else "",
    ]


def write_results(points: list[DesignPoint], output: Path) -> list[str]:
    """Write the CSV, JSON and plot of ``points``; returns the summary lines to print."""
    xilinx = [p for p in points if p.flow == "synth_xilinx"]
    generic = {p.configuration.name: p for p in points if p.flow == "synth"}
    front = pareto_points(xilinx)
    rows = [
        _row(p, generic.get(p.configuration.name), on) for p, on in zip(xilinx, front, strict=True)
    ]
    baseline_speed = CLOCK_MHZ * 1e6 / BASELINE["cycles_per_image"]
    rows.append(
        [
            "original pyrtlnet, B=1",
            BASELINE["cycles_per_image"],
            f"{BASELINE['cycles_per_image']:.1f}",
            f"{BASELINE['luts']:,}",
            "",
            BASELINE["dsp48e1"],
            "",
            f"{BASELINE['cells']:,}",
            f"{baseline_speed:,.0f}",
            "yes",
            "",
        ]
    )
    with open(output / "design_space.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    saved = {p.configuration.name: p.as_dict() for p in points if p.flow == "synth_xilinx"}
    for name, point in generic.items():
        saved.setdefault(name, {})["generic_cells"] = point.figures["generic_cells"]
    (output / "design_space.json").write_text(json.dumps(saved, indent=2) + "\n")
    lines = [
        "Pareto front (images/s against LUTs + DSP48E1): "
        + ", ".join(p.configuration.name for p, on in zip(xilinx, front, strict=True) if on)
    ]
    fits16 = [r[0] for r in rows[:-1] if r[0].endswith("B=16") and r[9] == "yes"]
    frugal = [
        p.configuration.name
        for p in xilinx
        if p.configuration.batch_size == 1
        and p.figures["dsp48e1"] <= BASELINE["dsp48e1"] / 4
        and p.cycles_per_batch <= 2 * BASELINE["cycles_per_image"]
    ]
    lines.append("fit the Zynq-7020 at batch 16: " + (", ".join(fits16) or "none"))
    lines.append(
        "batch 1, <= 1/4 of the baseline's DSPs, <= 2x its cycles: " + (", ".join(frugal) or "none")
    )
    references = {"original\npyrtlnet": ("synth_xilinx", 2_844 + 170, baseline_speed)}
    with open(output / "design_space.png", "wb") as file:
        plot_design_space(
            xilinx,
            front,
            file,
            title=f"pyrtlnet design space, 144-18-10 model, synth_xilinx, {CLOCK_MHZ:g} MHz",
            references=references,
        )
    lines.append(f"plot: {output / 'design_space.png'}")
    return lines


def _report(step: ExploreProgress) -> None:
    p = step.point
    how = "cached" if p.cached else "computed"
    print(f"[{step.done}/{step.total}] {p.configuration.name:20} {p.flow:12} {how}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--output", type=Path, default=DOCS, help="directory for csv/json/png")
    parser.add_argument(
        "--flows",
        default="synth_xilinx,synth",
        help="yosys flows (default %(default)s; synth gives only the generic-cell column and "
        "takes longest)",
    )
    parser.add_argument("--workers", type=int, default=2, help="local Dask workers (default 2)")
    parser.add_argument("--cache", type=Path, default=default_cache_dir(), help="result cache")
    args = parser.parse_args()
    flows = args.flows.split(",")
    if "synth_xilinx" not in flows:
        parser.error("--flows must include synth_xilinx, which every column but one comes from")
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    configs = [CONFIGS[name] for name in args.only or CONFIGS]
    args.output.mkdir(parents=True, exist_ok=True)
    with _client(None, args.workers) as client:
        points = explore(
            model,
            configs,
            flows,
            client=client,
            cache=ResultCache(args.cache),
            clock_mhz=CLOCK_MHZ,
            progress=_report,
        )
    print("\n".join(write_results(points, args.output)))


if __name__ == "__main__":
    main()
