"""All 10,000 MNIST test images through the AXI wrapper in Verilator, against the bare design.

The AXI run exports ``pyrtlnet_axi`` with its Verilator C++ testbench (streams with random
``tvalid``/``tready`` stalls, registers read back, a too-short and a too-long frame), which
checks every prediction and logit of every image against qnn-ref's LiteRT golden values. The
bare run is ``pyrtlnet.run_testbench`` on the same design (a Verilog testbench loading the input
memory directly and checking every layer's outputs). Each executable runs ``--repeats`` times;
medians of the run time (build excluded) are printed, with images/s and simulated cycles per
image. Exits 1 unless every run passed.

Usage: ``hatch run python bench/axi_verilator.py [--batch-size N] [--array RxC]
[--stall P ...] [--images N] [--repeats K]``
"""

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

import pyrtlnet
import qnn_ref
from pyrtlnet import build_axi, run_axi_testbench, write_axi_testbench


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--array", type=pyrtlnet.parse_array, default=None)
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--rounding", choices=qnn_ref.ROUNDINGS, default="xnnpack")
    parser.add_argument("--images", type=int, default=10_000, help="test images 0..N-1")
    parser.add_argument("--stall", type=float, nargs="+", default=[0.0, 0.05])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    model = qnn_ref.read_model(qnn_ref.default_model_path())
    plan = pyrtlnet.make_plan(
        model, array=args.array, batch_size=args.batch_size, rounding=args.rounding
    )
    design = pyrtlnet.build_design(plan)
    axi = build_axi(design)
    expected = qnn_ref.golden(model, start=0, count=args.images, rounding=args.rounding)
    engines = ", ".join(f"{e.rows}x{e.cols}" for e in plan.engines)
    print(
        f"design: {plan.architecture} ({engines}), batch {plan.batch_size}, {plan.rounding} "
        f"rounding; {plan.cycles_per_batch} cycles per batch; AXI: {axi.beat_bits}-bit beats, "
        f"{axi.in_beats} in / {axi.out_beats} out per frame"
    )
    ok = True
    rows = []
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-axi-") as scratch:
        files = pyrtlnet.write_inference_testbench(Path(scratch) / "bare", design, expected)
        runs = [pyrtlnet.run_testbench(files) for _ in range(args.repeats)]
        ok &= all(r.passed for r in runs)
        seconds = statistics.median(r.run_seconds for r in runs)
        cycles = runs[0].cycles  # start to done only: loading is not counted by this bench
        rows.append(("bare design (Verilog testbench)", seconds, cycles, runs[0].build_seconds))
        for stall in args.stall:
            began = time.perf_counter()
            files = write_axi_testbench(
                Path(scratch) / f"axi{stall}", axi, expected, stall=stall, malformed=True
            )
            write_seconds = time.perf_counter() - began
            results = [run_axi_testbench(files) for _ in range(args.repeats)]
            ok &= all(r.passed and r.mismatches == 0 for r in results)
            seconds = statistics.median(r.run_seconds for r in results)
            rows.append(
                (
                    f"AXI wrapper, stall {stall:g} (C++ testbench)",
                    seconds,
                    results[0].cycles,
                    results[0].build_seconds,
                )
            )
            print(f"AXI stall {stall:g}: files written in {write_seconds:.1f} s; {results[0].log}")
    bare = rows[0][1]
    print(f"{args.images:,} images, median of {args.repeats} runs:")
    for name, seconds, cycles, build in rows:
        print(
            f"  {name:44} {seconds:6.2f} s  {args.images / seconds:9,.0f} images/s  "
            f"({bare / seconds:4.2f}x bare)  {cycles / args.images:7.1f} cycles/image  "
            f"build {build:.0f} s"
        )
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
