"""All 10,000 MNIST test images through the gate-level CNN, checked against LiteRT, on N cores.

Builds the shipped CNN's hardware (the shared array at the given size and batch), simulates it
on the native kernel (:class:`pyrtl_linalg.NativeKernel`, eight copies of the design side by
side) in ``--jobs`` worker processes, and compares every layer's int8 output and every
prediction of every image with the LiteRT interpreter on the same kernel path.
Prints the build time (the workers build their simulators at the same time) apart from the run,
the images/s and design cycles/s of the run, the wall time against the target (5 minutes on 2
cores, issue 10) and the mismatch count (must be 0); exits 1 on any mismatch.

Usage: ``hatch run python bench/cnn_10k.py [--model cnn|PATH] [--array RxC] [--batch-size N]
[--jobs N] [--images N] [--rounding R]``
"""

import argparse
import sys
import time

import pyrtlnet
import qnn_ref
from qnn_ref.cliinfer import model_path

#: Issue 10's target for all 10,000 images at gate level on 2 cores, in seconds.
TARGET_SECONDS = 300.0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=model_path, default="cnn", help="cnn, mlp or a .tflite")
    parser.add_argument("--array", type=pyrtlnet.parse_array, default=(16, 16))
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--images", type=int, default=10_000, help="test images 0..N-1")
    parser.add_argument("--rounding", choices=qnn_ref.ROUNDINGS, default="xnnpack")
    args = parser.parse_args()

    model = qnn_ref.read_model(args.model)
    plan = pyrtlnet.make_plan(
        model, array=args.array, batch_size=args.batch_size, rounding=args.rounding
    )
    began = time.perf_counter()
    expected = qnn_ref.golden(model, start=0, count=args.images, rounding=args.rounding)
    golden_seconds = time.perf_counter() - began

    began = time.perf_counter()
    result = pyrtlnet.run_parallel(plan, expected.input, jobs=args.jobs)
    wall = time.perf_counter() - began
    run = wall - result.build_seconds
    diff = result.outputs.diff(expected)
    wrong = [row.images for row in diff.arrays]
    rows, cols = plan.engines[0].rows, plan.engines[0].cols
    print(
        f"design: {rows}x{cols} shared array, batch {plan.batch_size}, {plan.rounding} rounding; "
        f"{plan.cycles_per_batch:,} cycles per batch "
        f"({plan.cycles_per_batch / plan.batch_size:,.0f} per image), "
        f"array utilization {plan.overall_utilization:.0%}"
    )
    print(f"golden values (qnn-ref LiteRT): {golden_seconds:.1f} s")
    print(
        f"gate level, {result.workers} workers: build {result.build_seconds:.1f} s, run "
        f"{run:.1f} s for {args.images:,} images = {args.images / run:,.0f} images/s "
        f"({result.cycles / run / 1e6:.2f} M design cycles/s in all); wall {wall:.1f} s "
        f"(target {TARGET_SECONDS:.0f} s for 10,000 images on 2 cores)"
    )
    print(f"mismatching images (input, every layer, prediction): {wrong}")
    ok = not any(wrong) and result.cycles == result.batches * plan.cycles_per_batch
    print("PASS" if ok else "FAIL")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
