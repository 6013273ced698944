"""Design space of the shipped model's hardware: cycles per image against area, Pareto front.

For array sizes from 1x1 up to the per-layer full size and batch sizes 1 and 16, this builds
the pyrtlnet hardware, exports it to Verilog, synthesizes it with yosys (``synth`` for generic
cells, ``synth_xilinx`` for 7-series LUTs, flip-flops and DSP48E1) and takes the cycle count of
one batch from the plan (the documented formula, checked against PyRTL, Verilator and Icarus
by the tests). A configuration is on the Pareto front when no other one is at least as good in
cycles per image, LUTs and DSP48E1 and better in one of them.

Baseline, the original pyrtlnet built here: 193 cycles per image at batch 1, yosys ``synth``
83,897 cells, ``synth_xilinx`` 2,844 LUTs and 170 DSP48E1 (its batch-10 build needed 1,700
DSPs and did not fit the Zynq-7020). Targets: a configuration that fits the Zynq-7020 at batch
16, and one with at most 1/4 of the baseline's DSPs at batch 1 and at most 2x its cycles per
image.

Writes ``docs/pyrtlnet/design_space.csv`` (the table the docs' hardware page shows), the full
figures as JSON beside it, and ``docs/pyrtlnet/design_space.png`` when matplotlib is installed
(``pip install 'pyrtlnet[plot]'``).

Usage: ``hatch run python bench/design_space.py [--only NAME ...] [--flows LIST] [--fresh]``.
yosys takes from about a minute (1x1) to most of an hour (the largest arrays) per configuration
on a busy 2-core machine, so every flow's result is saved to the JSON file as soon as it is
measured and a rerun skips what is already there (``--fresh`` starts over). ``synth_xilinx``
runs first for every configuration, then the slower generic ``synth`` (``--flows
synth_xilinx`` skips it; the generic-cell column is then empty).
"""

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import qnn_ref
from pyrtlnet import PYNQ_Z2, build_design, check_budget, export_verilog, make_plan, run_yosys

DOCS = Path(__file__).resolve().parent.parent / "docs" / "pyrtlnet"

#: The original pyrtlnet, measured here (batch 1).
BASELINE = {"cycles_per_image": 193, "cells": 83_897, "luts": 2_844, "dsp48e1": 170}

#: name -> (architecture, array, batch size). Shared arrays from one multiply-accumulate element
#: to a full hidden-layer row (18 units) and a full batch of 16 rows; per-layer is the largest.
CONFIGS: dict[str, tuple[str, tuple[int, int] | None, int]] = {
    "shared 1x1, B=1": ("shared", (1, 1), 1),
    "shared 1x4, B=1": ("shared", (1, 4), 1),
    "shared 1x16, B=1": ("shared", (1, 16), 1),
    "shared 1x18, B=1": ("shared", (1, 18), 1),
    "per-layer, B=1": ("per-layer", None, 1),
    "shared 1x16, B=16": ("shared", (1, 16), 16),
    "shared 4x16, B=16": ("shared", (4, 16), 16),
    "shared 8x16, B=16": ("shared", (8, 16), 16),
    "shared 16x16, B=16": ("shared", (16, 16), 16),
    "per-layer, B=16": ("per-layer", None, 16),
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
    "fits Zynq-7020",
    "Pareto",
]


def _measure(
    model: qnn_ref.Model, architecture: str, array, batch: int, flows: tuple[str, ...]
) -> dict[str, object]:
    """The figures of one configuration from the yosys ``flows`` (``synth`` gives the
    generic cells, ``synth_xilinx`` everything else but the cycles)."""
    began = time.perf_counter()
    design = build_design(
        make_plan(model, architecture=architecture, array=array, batch_size=batch)
    )
    with tempfile.TemporaryDirectory() as scratch:
        verilog = Path(scratch) / "design.v"
        export_verilog(design, verilog)
        report = run_yosys(verilog, flows=flows)
    figures: dict[str, object] = {
        "cycles_per_batch": design.cycles_per_batch,
        "cycles_per_image": design.cycles_per_batch / batch,
    }
    if report.generic_cells is not None:
        figures["generic_cells"] = report.generic_cells
    xilinx = report.xilinx
    if xilinx is not None:
        figures |= {
            "luts": xilinx["luts"],
            "ffs": xilinx["ffs"],
            "dsp48e1": xilinx["dsp48e1"],
            "bram36": xilinx["bram36"],
            "arrival_ps": xilinx["arrival_ps"],
            "fits": check_budget(report, PYNQ_Z2).fits,
        }
    figures[f"seconds_{'_'.join(flows)}"] = round(time.perf_counter() - began, 1)
    return figures


#: The result key each flow provides, to tell which flows a saved result still lacks.
_FLOW_KEYS = {"synth": "generic_cells", "synth_xilinx": "luts"}


def _pareto(results: dict[str, dict[str, object]]) -> set[str]:
    keys = ("cycles_per_image", "luts", "dsp48e1")
    points = {name: tuple(float(r[k]) for k in keys) for name, r in results.items()}  # type: ignore[arg-type]
    front = set()
    for name, p in points.items():
        dominated = any(
            all(q_i <= p_i for q_i, p_i in zip(q, p, strict=True)) and q != p
            for other, q in points.items()
            if other != name
        )
        if not dominated:
            front.add(name)
    return front


#: Where a point's label may go, in points from the point, tried in this order.
_LABEL_OFFSETS = [(dx, dy) for dy in (2, -18, 14, -30, 26, -42) for dx in (4, -4)]


def _overlap(box, others: list[tuple[float, float, float, float]]) -> float:
    return sum(
        max(0.0, min(box.x1, x1) - max(box.x0, x0)) * max(0.0, min(box.y1, y1) - max(box.y0, y0))
        for x0, y0, x1, y1 in others
    )


def _place_labels(figure, axis, labels: list[tuple[str, float, float]]) -> None:
    """Annotate each point at the first offset where its label covers no label already placed
    and no point (or, failing that, where it covers least), so that labels stay readable."""
    renderer = figure.canvas.get_renderer()
    points = [axis.transData.transform((x, y)) for _, x, y in labels]
    boxes = [(px - 4, py - 4, px + 4, py + 4) for px, py in points]
    for text, x, y in labels:
        best = None  # (overlap, annotation): the candidate kept so far
        for dx, dy in _LABEL_OFFSETS:
            note = axis.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                horizontalalignment="left" if dx > 0 else "right",
            )
            cost = _overlap(note.get_window_extent(renderer), boxes)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note)
            else:
                note.remove()
            if cost == 0:
                break
        box = best[1].get_window_extent(renderer)
        boxes.append((box.x0, box.y0, box.x1, box.y1))


def _plot(results: dict[str, dict[str, object]], front: set[str], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    annotations = []
    for axis, key, label in ((axes[0], "luts", "LUTs"), (axes[1], "dsp48e1", "DSP48E1")):
        labels = []
        for name, r in results.items():
            on_front = name in front
            axis.scatter(
                r["cycles_per_image"],
                r[key],
                marker="o" if on_front else "x",
                color="C0" if r["batch"] == 1 else "C1",
            )
            labels.append((name.replace(", ", "\n"), r["cycles_per_image"], r[key]))
        axis.scatter(BASELINE["cycles_per_image"], BASELINE[key], marker="*", s=120, color="C3")
        labels.append(("original\npyrtlnet", BASELINE["cycles_per_image"], BASELINE[key]))
        if key == "dsp48e1":
            axis.axhline(PYNQ_Z2.dsp48e1, color="grey", linestyle=":", linewidth=1)
            axis.text(
                0.99,
                PYNQ_Z2.dsp48e1 * 1.05,
                f"Zynq-7020: {PYNQ_Z2.dsp48e1} DSP48E1",
                transform=axis.get_yaxis_transform(),
                horizontalalignment="right",
                fontsize=7,
                color="grey",
            )
        axis.set_xscale("log")
        axis.set_yscale("log")
        axis.margins(x=0.2, y=0.1)  # room for the labels of the outermost points
        axis.set_xlabel("cycles per image (log)")
        axis.set_ylabel(f"{label} (synth_xilinx, log)")
        axis.grid(True, which="both", linewidth=0.3)
        annotations.append((axis, labels))
    figure.suptitle(
        "pyrtlnet design space, 144-18-10 model: blue batch 1, orange batch 16, "
        "o Pareto front, x dominated"
    )
    figure.tight_layout()
    for axis, labels in annotations:  # once the layout is final, so pixels stay where they are
        _place_labels(figure, axis, labels)
    figure.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--output", type=Path, default=DOCS, help="directory for csv/json/png")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    parser.add_argument(
        "--flows",
        default="synth_xilinx,synth",
        help="yosys flows to run where a saved result lacks them, in this order "
        "(default %(default)s; synth gives only the generic-cell column and takes longest)",
    )
    args = parser.parse_args()
    flows = tuple(args.flows.split(","))
    unknown = sorted(set(flows) - set(_FLOW_KEYS))
    if unknown:
        parser.error(f"--flows: unknown flow {unknown[0]!r}; choose from {', '.join(_FLOW_KEYS)}")
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    args.output.mkdir(parents=True, exist_ok=True)
    saved = args.output / "design_space.json"
    results: dict[str, dict[str, object]] = {}
    if saved.exists() and not args.fresh:
        results = {n: r for n, r in json.loads(saved.read_text()).items() if n in CONFIGS}
    # One flow at a time over every configuration, so the fast synth_xilinx figures are all
    # in before the slow generic synth starts.
    for flow in flows:
        for name in args.only or CONFIGS:
            architecture, array, batch = CONFIGS[name]
            if _FLOW_KEYS[flow] in results.get(name, {}):
                continue
            measured = _measure(model, architecture, array, batch, (flow,))
            results[name] = results.get(name, {"batch": batch}) | measured
            saved.write_text(json.dumps(results, indent=2) + "\n")
            shown = ", ".join(f"{k} {v}" for k, v in measured.items())
            print(f"{name:20} {flow}: {shown}", flush=True)
    results = {n: r for n, r in results.items() if "luts" in r}
    front = _pareto(results)
    rows = [
        [
            name,
            r["cycles_per_batch"],
            f"{r['cycles_per_image']:.1f}",
            f"{r['luts']:,}",
            f"{r['ffs']:,}",
            r["dsp48e1"],
            f"{r['bram36']:g}",
            f"{r['generic_cells']:,}" if "generic_cells" in r else "",
            "yes" if r["fits"] else "no",
            "yes" if name in front else "",
        ]
        for name, r in results.items()
    ]
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
            "yes",
            "",
        ]
    )
    results = {n: results[n] for n in CONFIGS if n in results}
    with open(args.output / "design_space.csv", "w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(COLUMNS)
        writer.writerows(rows)
    print("\nPareto front (cycles/image, LUTs, DSP48E1):", ", ".join(sorted(front)))
    fits16 = [n for n, r in results.items() if r["batch"] == 16 and r["fits"]]
    frugal = [
        n
        for n, r in results.items()
        if r["batch"] == 1
        and r["dsp48e1"] <= BASELINE["dsp48e1"] / 4
        and r["cycles_per_image"] <= 2 * BASELINE["cycles_per_image"]
    ]
    print("fit the Zynq-7020 at batch 16:", ", ".join(fits16) or "none")
    print("batch 1, <= 1/4 of the baseline's DSPs, <= 2x its cycles:", ", ".join(frugal) or "none")
    if _plot(results, front, args.output / "design_space.png"):
        print(f"plot: {args.output / 'design_space.png'}")
    else:
        print("plot skipped: matplotlib is not installed (pip install 'pyrtlnet[plot]')")


if __name__ == "__main__":
    main()
