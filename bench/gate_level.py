"""Gate-level inference speed: PyRTL's simulation beside Verilator's, on the same design.

1. **PyRTL vs Verilator** (batch 1 and 16, the default design of each): the design is built
   once; PyRTL's simulation (a :class:`pyrtl_linalg.NativeKernel` through
   :class:`pyrtl_linalg.BatchDriver`, with the default eight copies of the design side by side
   and with one) and a Verilated self-checking testbench of the *same* design run the *same*
   test images, alternately, ``--repeats`` times, in one process each. Printed: build time of
   each (the design and a cold compile of its kernel, apart from the rates), the median
   images/s of each, the medians of the per-repeat ratios PyRTL / Verilator (a pair runs back to
   back, so the ratio is steadier than either rate on a shared machine), the median design
   cycles/s (from ``start`` to ``done``, as both count them, summed over copies), and
   mismatches: images whose int8 outputs differ from LiteRT's in any layer (PyRTL), mismatched
   words of the testbench (Verilator). Every mismatch count must be 0.
2. **Other designs** (``--configs``): images/s and cycles/s of the shipped MLP and CNN on
   several architectures, arrays and batch sizes, PyRTL only, each checked against LiteRT;
   the native kernel beside PyRTL's own CompiledSimulation of the same design (cycles/s is the
   figure to compare: the slower rows run a share of the images).
3. **Worker processes** (``--jobs``): the images eight times over through ``run_parallel`` with
   1 and with ``--jobs`` workers; images/s of the wall time, which includes starting the
   workers and their builds (each builds its own simulation; the longest build is printed),
   and of the wall time after the build (the workers build at the same time), with the
   speed-up of each over one worker. Each design's kernel is compiled once beforehand (its
   time printed); the workers find it in the kernel cache (a scratch directory for this run,
   :func:`pyrtl_linalg.cache_directory`), as every run after a design's first does.

Baseline: the original pyrtlnet simulated about 1.5 images/s at batch 1 (recorded; it cannot run
here). Goals: at batch 1 at least 3,000 images/s, at batch 16 at least 10,000, and PyRTL at
least half of Verilator's images/s at both.

Usage: ``hatch run python bench/gate_level.py [--images N] [--repeats R] [--configs]
[--jobs N]``
"""

import argparse
import os
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

import pyrtl_linalg
import pyrtlnet
import qnn_ref

#: (model, architecture, array, batch size, simulator, share of the images) of each
#: configuration of ``--configs``: the native kernel against PyRTL's own CompiledSimulation on
#: the shipped MLP and CNN, and other arrays and batch sizes. The slower rows run a share of the
#: images (cycles/s is the figure to compare).
CONFIGS = [
    ("mlp", "shared", (1, 16), 1, "native", 1),
    ("mlp", "shared", (1, 16), 1, "compiled", 1),
    ("mlp", "shared", (1, 16), 1, "fast", 100),
    ("mlp", "shared", (4, 8), 1, "native", 1),
    ("mlp", "per-layer", None, 1, "native", 1),
    ("mlp", "shared", (16, 18), 16, "native", 1),
    ("mlp", "shared", (16, 18), 16, "compiled", 1),
    ("mlp", "shared", (8, 10), 32, "native", 1),
    ("cnn", "shared", (4, 8), 4, "native", 10),
    ("cnn", "shared", (4, 8), 4, "compiled", 100),
    ("cnn", "shared", (16, 16), 16, "native", 10),
    ("cnn", "shared", (16, 16), 16, "compiled", 100),
]


def _differing_images(outputs: qnn_ref.Outputs, golden: qnn_ref.Outputs) -> int:
    count = len(outputs.predictions)
    differ = outputs.predictions != golden.predictions[:count]
    for ours, theirs in zip(outputs.layers, golden.layers, strict=True):
        differ |= (ours != theirs[:count]).reshape(count, -1).any(1)
    return int(differ.sum())


def _row(values: list[str], widths: list[int]) -> str:
    return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))


def _table(headers: list[str], widths: list[int]) -> None:
    print(_row(headers, widths))
    print(_row(["-" * w for w in widths], widths))


def side_by_side(model: qnn_ref.Model, golden: qnn_ref.Outputs, repeats: int) -> None:
    """Section 1: PyRTL (the default eight copies, and one) and Verilator on the same design
    and images, alternately."""
    headers = ["batch", "array", "PyRTL build s", "Verilator build s", "PyRTL img/s"]
    headers += ["1 copy img/s", "Verilator img/s", "ratio", "ratio 1 copy", "PyRTL Mcyc/s"]
    headers += ["1 copy Mcyc/s", "Verilator Mcyc/s", "mismatches"]
    widths = [5, 5, 13, 17, 11, 12, 15, 5, 12, 12, 13, 16, 10]
    _table(headers, widths)
    for batch in (1, 16):
        began = time.perf_counter()
        design = pyrtlnet.build_design(pyrtlnet.make_plan(model, batch_size=batch))
        accelerators = {"pyrtl": pyrtlnet.Accelerator(design)}
        pyrtl_build = time.perf_counter() - began
        accelerators["one"] = pyrtlnet.Accelerator(design, copies=1)
        with tempfile.TemporaryDirectory(prefix="pyrtlnet-bench-") as scratch:
            files = pyrtlnet.write_inference_testbench(Path(scratch), design, golden)
            verilator_build = None
            rates: dict[str, list[float]] = {"pyrtl": [], "one": [], "verilator": []}
            cycle_rates: dict[str, list[float]] = {"pyrtl": [], "one": [], "verilator": []}
            ratios: dict[str, list[float]] = {"pyrtl": [], "one": []}
            mismatches = set()
            for _ in range(repeats):
                for name, accelerator in accelerators.items():
                    began = time.perf_counter()
                    result = accelerator.run(golden.input)
                    seconds = time.perf_counter() - began
                    mismatches.add(str(_differing_images(result.outputs, golden)))
                    rates[name].append(len(golden.input) / seconds)
                    cycle_rates[name].append(result.cycles / seconds / 1e6)
                verilated = pyrtlnet.run_testbench(files)
                if verilator_build is None:  # later builds find nothing to do
                    verilator_build = verilated.build_seconds
                mismatches.add(str(verilated.mismatches) if verilated.passed else "FAIL")
                rates["verilator"].append(verilated.images_per_second)
                cycle_rates["verilator"].append(verilated.cycles / verilated.run_seconds / 1e6)
                for name in ratios:
                    ratios[name].append(rates[name][-1] / rates["verilator"][-1])
        engine = design.plan.engines[0]
        median = statistics.median
        print(
            _row(
                [
                    str(batch),
                    f"{engine.rows}x{engine.cols}",
                    f"{pyrtl_build:.1f}",
                    f"{verilator_build:.1f}",
                    *(f"{median(rates[name]):,.0f}" for name in ("pyrtl", "one", "verilator")),
                    *(f"{median(ratios[name]):.2f}" for name in ("pyrtl", "one")),
                    *(f"{median(cycle_rates[n]):.2f}" for n in ("pyrtl", "one", "verilator")),
                    ",".join(sorted(mismatches)),
                ],
                widths,
            ),
            flush=True,
        )


def other_designs(models: dict[str, qnn_ref.Model], images: int) -> None:
    """Section 2: PyRTL alone on several models, architectures, arrays, batch sizes and
    simulators, each checked against LiteRT."""
    headers = ["model", "architecture", "array", "batch", "simulator", "copies", "build s"]
    headers += ["images", "images/s", "Mcyc/s", "cycles/batch", "mismatches"]
    widths = [5, 12, 11, 5, 9, 6, 7, 6, 8, 6, 12, 10]
    _table(headers, widths)
    goldens = {name: qnn_ref.golden(model, start=0, count=images) for name, model in models.items()}
    for name, architecture, array, batch, simulator, share in CONFIGS:
        count = max(batch, images // share)
        golden = goldens[name]
        accelerator = pyrtlnet.build(
            models[name],
            architecture=architecture,
            array=array,
            batch_size=batch,
            simulator=simulator,
        )
        began = time.perf_counter()
        result = accelerator.run(golden.input[:count])
        seconds = time.perf_counter() - began
        engines = accelerator.plan.engines
        shape = "+".join(f"{e.rows}x{e.cols}" for e in engines)
        print(
            _row(
                [
                    name,
                    architecture,
                    shape,
                    str(batch),
                    simulator,
                    str(accelerator.copies),
                    f"{accelerator.build_seconds:.1f}",
                    str(count),
                    f"{count / seconds:,.0f}",
                    f"{result.cycles / seconds / 1e6:.2f}",
                    str(accelerator.cycles_per_batch),
                    str(_differing_images(result.outputs, golden)),
                ],
                widths,
            ),
            flush=True,
        )


def workers(model: qnn_ref.Model, golden: qnn_ref.Outputs, jobs: int, times: int = 8) -> None:
    """Section 3: the images ``times`` times over, with one worker process and with ``jobs``.

    Each plan's kernel is compiled once first (``first build s``), as the first run of a
    design does; the workers then find it in the kernel cache, as every later run does.
    """
    expected = qnn_ref.Outputs.concat([golden] * times)
    headers = ["batch", "first build s", "workers", "images", "wall s", "build s", "images/s"]
    headers += ["speed-up", "after build img/s", "speed-up", "mismatches"]
    widths = [5, 13, 7, 6, 6, 7, 8, 8, 17, 8, 10]
    _table(headers, widths)
    for batch in (1, 16):
        plan = pyrtlnet.make_plan(model, batch_size=batch)
        began = time.perf_counter()
        pyrtlnet.Accelerator(pyrtlnet.build_design(plan))
        first_build = time.perf_counter() - began
        single = single_run = None
        for count in sorted({1, jobs}):
            began = time.perf_counter()
            result = pyrtlnet.run_parallel(plan, expected.input, jobs=count)
            wall = time.perf_counter() - began
            rate = len(expected.input) / wall
            run_rate = len(expected.input) / (wall - result.build_seconds)
            single, single_run = single or rate, single_run or run_rate
            print(
                _row(
                    [
                        str(batch),
                        f"{first_build:.1f}",
                        str(result.workers),
                        str(len(expected.input)),
                        f"{wall:.1f}",
                        f"{result.build_seconds:.1f}",
                        f"{rate:,.0f}",
                        f"{rate / single:.2f}x",
                        f"{run_rate:,.0f}",
                        f"{run_rate / single_run:.2f}x",
                        str(_differing_images(result.outputs, expected)),
                    ],
                    widths,
                ),
                flush=True,
            )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=10_000, help="test images 0..N-1")
    parser.add_argument(
        "--repeats", type=int, default=5, help="alternating runs of section 1 (0: skip it)"
    )
    parser.add_argument("--configs", action="store_true", help="also run section 2")
    parser.add_argument(
        "--jobs", type=int, default=0, help="also run section 3 with this many workers"
    )
    args = parser.parse_args()

    # A cold kernel cache for this run (the workers of section 3 inherit it).
    scratch = tempfile.TemporaryDirectory(prefix="pyrtlnet-bench-kernels-")
    os.environ[pyrtl_linalg.CACHE_VARIABLE] = scratch.name
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    golden = qnn_ref.golden(model, start=0, count=args.images)
    print(f"{args.images:,} MNIST test images, xnnpack rounding, {args.repeats} repeats\n")
    if args.repeats:
        side_by_side(model, golden, args.repeats)
    if args.configs:
        print()
        cnn = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
        other_designs({"mlp": model, "cnn": cnn}, args.images)
    if args.jobs:
        print()
        workers(model, golden, args.jobs)
    accuracy = np.mean(golden.predictions == golden.labels)
    print(f"\n(LiteRT accuracy on these images: {accuracy:.2%})")


if __name__ == "__main__":
    main()
