"""Gate-level inference: build the hardware for the shipped model once, run a few images.

Builds one systolic array shared by both layers of the 144-18-10 MNIST model (by default
4x16: four images side by side, sixteen output units at a time), streams test images through
its cycle-by-cycle PyRTL simulation a batch at a time, and checks every layer's int8 output
against LiteRT's golden values. The exit status is 1 if any layer of any image differs.

Run it with ``hatch run python examples/gate_level_inference.py``.
"""

import argparse

import numpy as np

import pyrtlnet
import qnn_ref


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=8, help="test images to run (default 8)")
    parser.add_argument("--batch-size", type=int, default=4, help="images per batch (default 4)")
    args = parser.parse_args()

    model = qnn_ref.read_model(qnn_ref.default_model_path())
    accelerator = pyrtlnet.build(model, batch_size=args.batch_size)  # built once
    engine = accelerator.plan.engines[0]
    widths = "-".join(str(w) for w in accelerator.plan.widths)
    print(
        f"built a {engine.rows}x{engine.cols} array for the {widths} model in "
        f"{accelerator.build_seconds:.1f} s; {accelerator.cycles_per_batch} cycles per batch"
    )

    images, labels = qnn_ref.load_mnist("test")
    result = accelerator.run(images[: args.images])  # every batch through the same simulation
    golden = qnn_ref.golden(model, start=0, count=args.images)  # LiteRT, the xnnpack path

    for i in range(args.images):
        print(
            f"image {i}: label {labels[i]}, hardware predicts {result.predictions[i]}, "
            f"LiteRT {golden.predictions[i]}"
        )
    same = all(
        np.array_equal(ours, theirs)
        for ours, theirs in zip(result.outputs.layers, golden.layers, strict=True)
    )
    verdict = "identical to LiteRT" if same else "MISMATCH with LiteRT"
    print(f"{result.batches} batches, {result.cycles} cycles; every layer {verdict}")
    return 0 if same else 1


if __name__ == "__main__":
    raise SystemExit(main())
