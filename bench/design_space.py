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

Usage: ``hatch run python bench/design_space.py [--only NAME ...] [--fresh]``. yosys takes from
about a minute (1x1) to most of an hour (the largest arrays) per configuration on a busy 2-core
machine, so every result is saved to the JSON file as soon as it is measured and a rerun skips
the configurations already there (``--fresh`` starts over).
"""

import argparse
import csv
import json
import tempfile
import time
from pathlib import Path

import pyrtlnet
import qnn_ref
from pyrtlnet._synth import PYNQ_Z2, check_budget, run_yosys
from pyrtlnet._verilog import export_verilog

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


def _measure(model: qnn_ref.Model, architecture: str, array, batch: int) -> dict[str, object]:
    began = time.perf_counter()
    accelerator = pyrtlnet.build(
        model, architecture=architecture, array=array, batch_size=batch, simulator="simulation"
    )
    with tempfile.TemporaryDirectory() as scratch:
        verilog = Path(scratch) / "design.v"
        export_verilog(accelerator.block, verilog)
        report = run_yosys(verilog, flows=("synth", "synth_xilinx"))
    xilinx = report.xilinx
    assert xilinx is not None
    return {
        "cycles_per_batch": accelerator.cycles_per_batch,
        "cycles_per_image": accelerator.cycles_per_batch / batch,
        "luts": xilinx["luts"],
        "ffs": xilinx["ffs"],
        "dsp48e1": xilinx["dsp48e1"],
        "bram36": xilinx["bram36"],
        "generic_cells": report.generic_cells,
        "arrival_ps": xilinx["arrival_ps"],
        "fits": check_budget(report, PYNQ_Z2).fits,
        "seconds": round(time.perf_counter() - began, 1),
    }


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


def _plot(results: dict[str, dict[str, object]], front: set[str], path: Path) -> bool:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return False
    figure, axes = plt.subplots(1, 2, figsize=(11, 4.2))
    for axis, key, label in ((axes[0], "luts", "LUTs"), (axes[1], "dsp48e1", "DSP48E1")):
        for name, r in results.items():
            on_front = name in front
            axis.scatter(
                r["cycles_per_image"],
                r[key],
                marker="o" if on_front else "x",
                color="C0" if r["batch"] == 1 else "C1",
            )
            axis.annotate(
                name.replace(", ", "\n"),
                (r["cycles_per_image"], r[key]),
                xytext=(4, -8 if r["batch"] == 16 else 2),
                textcoords="offset points",
                fontsize=7,
            )
        axis.scatter(BASELINE["cycles_per_image"], BASELINE[key], marker="*", s=120, color="C3")
        axis.annotate(
            "original pyrtlnet", (BASELINE["cycles_per_image"], BASELINE[key]), fontsize=7
        )
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
        axis.set_xlabel("cycles per image (log)")
        axis.set_ylabel(f"{label} (synth_xilinx, log)")
        axis.grid(True, which="both", linewidth=0.3)
    figure.suptitle(
        "pyrtlnet design space, 144-18-10 model: blue batch 1, orange batch 16, "
        "o Pareto front, x dominated"
    )
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    return True


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="*", choices=list(CONFIGS), help="configurations to run")
    parser.add_argument("--output", type=Path, default=DOCS, help="directory for csv/json/png")
    parser.add_argument("--fresh", action="store_true", help="ignore earlier results")
    args = parser.parse_args()
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    args.output.mkdir(parents=True, exist_ok=True)
    saved = args.output / "design_space.json"
    results: dict[str, dict[str, object]] = {}
    if saved.exists() and not args.fresh:
        results = {n: r for n, r in json.loads(saved.read_text()).items() if n in CONFIGS}
    for name in args.only or CONFIGS:
        architecture, array, batch = CONFIGS[name]
        if name in results:
            continue
        results[name] = {"batch": batch, **_measure(model, architecture, array, batch)}
        saved.write_text(json.dumps(results, indent=2) + "\n")
        r = results[name]
        print(
            f"{name:20} {r['cycles_per_image']:8.1f} cycles/image  {r['luts']:>7,} LUTs  "
            f"{r['ffs']:>7,} FFs  {r['dsp48e1']:>4} DSP  {r['generic_cells']:>8,} cells  "
            f"({r['seconds']} s)",
            flush=True,
        )
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
            f"{r['generic_cells']:,}",
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
