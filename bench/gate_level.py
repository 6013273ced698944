"""Gate-level inference speed: images/s of the simulated pyrtlnet hardware, and the 10k run.

For several architectures, array sizes and batch sizes this builds the hardware for the shipped
model once (build time reported separately), streams MNIST test images through its simulation,
and reports images/s, cycles per batch and per image, and the number of images whose int8
outputs differ from qnn-ref's LiteRT golden vectors in any layer (must be 0). Then it runs all
10,000 test images with ``--jobs`` worker processes and reports the wall time.

Baseline: the original pyrtlnet simulated about 1.5 images/s at batch 1 and 1.2 images/s at
batch 10 on this machine (recorded figures; it cannot run here). Targets: at least 100x that at
equal batch size in one process, and the 10,000 images bit-exact in under 2 minutes on 2 cores.

Usage: ``hatch run python bench/gate_level.py [--images N] [--jobs N] [--skip-10k]``
"""

import argparse
import time

import numpy as np

import pyrtlnet
import qnn_ref

#: Recorded images/s of the original pyrtlnet by batch size.
BASELINE = {1: 1.5, 10: 1.2}

#: (architecture, array, batch size, simulator) of each configuration measured.
CONFIGS = [
    ("shared", (1, 16), 1, "compiled"),
    ("shared", (1, 18), 1, "compiled"),
    ("shared", (4, 8), 1, "compiled"),
    ("per-layer", None, 1, "compiled"),
    ("shared", (1, 16), 1, "fast"),
    ("shared", (10, 18), 10, "compiled"),
    ("per-layer", None, 10, "compiled"),
    ("shared", (16, 18), 16, "compiled"),
    ("shared", (16, 18), 64, "compiled"),
]

#: Configurations of the 10,000-image runs: the CLI's default (batch 1 on a 1x16 array), and
#: a batched one whose simulator builds quickly.
FULL_RUNS = [
    {"architecture": "shared", "array": (1, 16), "batch_size": 1},
    {"architecture": "shared", "array": (8, 10), "batch_size": 32},
]


def _differing_images(outputs: qnn_ref.Outputs, golden: qnn_ref.Outputs) -> int:
    differ = outputs.predictions != golden.predictions
    for ours, theirs in zip(outputs.layers, golden.layers, strict=True):
        differ |= (ours != theirs).any(1)
    return int(differ.sum())


def _row(values: list[str], widths: list[int]) -> str:
    return "  ".join(v.rjust(w) for v, w in zip(values, widths, strict=True))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000, help="images per configuration")
    parser.add_argument("--jobs", type=int, default=pyrtlnet.default_jobs())
    parser.add_argument("--skip-10k", action="store_true", help="skip the 10,000-image run")
    args = parser.parse_args()

    model = qnn_ref.read_model(qnn_ref.default_model_path())
    golden = qnn_ref.golden(model, start=0, count=10_000)
    headers = [
        "architecture",
        "array",
        "batch",
        "simulator",
        "build s",
        "images",
        "images/s",
        "cycles/batch",
        "cycles/image",
        "mismatches",
        "x baseline",
    ]
    widths = [12, 11, 5, 9, 7, 6, 8, 12, 12, 10, 10]
    print(_row(headers, widths))
    for architecture, array, batch, simulator in CONFIGS:
        count = args.images if simulator == "compiled" else max(batch, args.images // 50)
        accelerator = pyrtlnet.build(
            model, architecture=architecture, array=array, batch_size=batch, simulator=simulator
        )
        began = time.perf_counter()
        result = accelerator.run(golden.input[:count])
        seconds = time.perf_counter() - began
        subset = qnn_ref.Outputs(
            input=golden.input[:count],
            layers=tuple(layer[:count] for layer in golden.layers),
            predictions=golden.predictions[:count],
        )
        rate = count / seconds
        engines = accelerator.plan.engines
        shape = (
            "x".join(map(str, array)) if array else "+".join(f"{e.rows}x{e.cols}" for e in engines)
        )
        ratio = f"{rate / BASELINE[batch]:,.0f}x" if batch in BASELINE else "-"
        print(
            _row(
                [
                    architecture,
                    shape,
                    str(batch),
                    simulator,
                    f"{accelerator.build_seconds:.1f}",
                    str(count),
                    f"{rate:,.0f}",
                    str(accelerator.cycles_per_batch),
                    f"{accelerator.cycles_per_batch / batch:.1f}",
                    str(_differing_images(result.outputs, subset)),
                    ratio,
                ],
                widths,
            ),
            flush=True,
        )

    if args.skip_10k:
        return
    print()
    for options in FULL_RUNS:
        began = time.perf_counter()
        result = pyrtlnet.run_parallel(model, golden.input, jobs=args.jobs, **options)
        seconds = time.perf_counter() - began
        mismatched = _differing_images(result.outputs, golden)
        array = "x".join(map(str, options["array"]))
        print(
            f"10,000 images, {options['architecture']} {array} array, batch "
            f"{options['batch_size']}, {result.workers} worker processes: {seconds:.1f} s wall "
            f"({10_000 / seconds:,.0f} images/s, worker build {result.build_seconds:.1f} s), "
            f"{mismatched} images differ from LiteRT; accuracy "
            f"{np.mean(result.predictions == golden.labels):.2%}",
            flush=True,
        )


if __name__ == "__main__":
    main()
