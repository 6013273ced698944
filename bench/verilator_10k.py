"""All 10,000 MNIST test images through the Verilated pyrtlnet design, checked against qnn-ref.

The design is exported to Verilog with a self-checking testbench that reads every image and
every expected activation of every layer and prediction (qnn-ref's LiteRT golden values) from
``$readmemh`` files, so the whole test set runs inside one Verilator executable with no Python
in the loop; the testbench also checks the design's cycle counter every batch. Prints the
build time, the run time, images/s and the mismatch count (must be 0); exits 1 on any mismatch
or cycle-count difference.

Usage: ``hatch run python bench/verilator_10k.py [--model mlp|cnn|PATH] [--array RxC]
[--architecture A] [--batch-size N] [--rounding R] [--simulator verilator|iverilog] [--keep DIR]``
"""

import argparse
import sys
import tempfile
import time
from pathlib import Path

import pyrtlnet
import qnn_ref
from qnn_ref.cliinfer import model_path


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=model_path, default="mlp", help="mlp, cnn or a .tflite")
    parser.add_argument("--array", type=pyrtlnet.parse_array, default=None)
    parser.add_argument("--architecture", choices=pyrtlnet.ARCHITECTURES, default="shared")
    parser.add_argument("--batch-size", type=int, default=1)
    parser.add_argument("--rounding", choices=qnn_ref.ROUNDINGS, default="xnnpack")
    parser.add_argument("--images", type=int, default=10_000, help="test images 0..N-1")
    parser.add_argument("--simulator", choices=pyrtlnet.VERILOG_SIMULATORS, default="verilator")
    parser.add_argument("--keep", type=Path, help="keep the testbench and build in this directory")
    args = parser.parse_args()

    model = qnn_ref.read_model(args.model)
    plan = pyrtlnet.make_plan(
        model,
        architecture=args.architecture,
        array=args.array,
        batch_size=args.batch_size,
        rounding=args.rounding,
    )
    design = pyrtlnet.build_design(plan)  # no simulator: the Verilog is all we run
    began = time.perf_counter()
    expected = qnn_ref.golden(model, start=0, count=args.images, rounding=args.rounding)
    golden_seconds = time.perf_counter() - began
    with tempfile.TemporaryDirectory(prefix="pyrtlnet-10k-") as scratch:
        directory = args.keep or Path(scratch)
        began = time.perf_counter()
        files = pyrtlnet.write_inference_testbench(directory, design, expected)
        write_seconds = time.perf_counter() - began
        result = pyrtlnet.run_testbench(files, simulator=args.simulator)
    cycles_ok = result.batch_cycles == (plan.cycles_per_batch, plan.cycles_per_batch)
    engines = ", ".join(f"{e.rows}x{e.cols}" for e in plan.engines)
    print(
        f"design: {args.architecture} ({engines}), batch {plan.batch_size}, {plan.rounding} "
        f"rounding; {plan.cycles_per_batch} cycles per batch"
    )
    print(f"golden values (qnn-ref LiteRT): {golden_seconds:.1f} s; files: {write_seconds:.1f} s")
    print(
        f"{args.simulator}: build {result.build_seconds:.1f} s, run {result.run_seconds:.2f} s for "
        f"{result.images:,} images = {result.images_per_second:,.0f} images/s "
        f"({result.cycles / result.run_seconds / 1e6:.2f} M design cycles/s)"
    )
    print(
        f"mismatches: {result.mismatches} (every layer's outputs, every prediction, the design's "
        f"cycle counter); cycles per "
        f"batch {result.batch_cycles[0]}-{result.batch_cycles[1]}, formula {plan.cycles_per_batch}"
    )
    ok = result.passed and cycles_ok
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
