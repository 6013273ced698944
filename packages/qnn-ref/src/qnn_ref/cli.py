"""Train a small int8 MNIST network and run it bit-exactly in LiteRT and in NumPy.

Commands: `train` a model, run it with `litert` or `numpy`, `compare` two backends layer by
layer, and show a model's layers and quantization with `info`. Inference runs on the MNIST test
set shipped with qnn-ref, with the shipped 144-18-10 model unless --model says otherwise.
"""

import argparse
import json
import textwrap
from collections import Counter
from pathlib import Path
from typing import TextIO

import numpy as np

from . import terminal
from ._data import preprocess
from ._model import ROUNDINGS, Rounding, read_model
from ._train import CNN_CHANNELS, CNN_INPUT_SIZE, CNN_KERNELS, facts_path
from .cliinfer import (
    BACKENDS,
    add_batch_argument,
    add_image_arguments,
    add_inference_arguments,
    add_model_argument,
    add_output_arguments,
    add_rounding_argument,
    model_path,
    run_backend,
    run_inference,
    select_images,
)
from .clireport import report_compare
from .clitools import (
    ArgumentParser,
    UsageError,
    add_command,
    add_version_argument,
    check_output_file,
    dispatch,
    non_negative_int,
    positive_int,
    progress,
)

__all__ = ["main"]


def _parse_hidden(text: str) -> tuple[int, ...]:
    if not text.strip():
        return ()
    try:
        return tuple(positive_int(part) for part in text.split(","))
    except argparse.ArgumentTypeError:
        raise argparse.ArgumentTypeError(
            f"must be comma-separated positive layer sizes such as 18 or 64,32, not {text!r}"
        ) from None


def _parse_size(text: str) -> tuple[int, int]:
    parts = text.lower().split("x")
    try:
        sizes = [positive_int(part) for part in parts]
    except argparse.ArgumentTypeError:
        sizes = []
    if len(sizes) not in (1, 2):
        raise argparse.ArgumentTypeError(
            f"must be a positive size such as 12 (12x12) or 12x16 (height x width), not {text!r}"
        )
    return (sizes[0], sizes[-1])


def _parse_backends(text: str) -> list[tuple[str, Rounding | None]]:
    """``litert,numpy`` or ``litert:builtin,numpy``: two backends, each with an optional path."""
    specs: list[tuple[str, Rounding | None]] = []
    for part in text.split(","):
        name, colon, rounding = part.strip().partition(":")
        if name not in BACKENDS or (colon and rounding not in ROUNDINGS):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a backend: use {' or '.join(BACKENDS)}, optionally with "
                f":{'|'.join(ROUNDINGS)}"
            )
        specs.append((name, rounding or None))  # type: ignore[arg-type]
    if len(specs) != 2:
        raise argparse.ArgumentTypeError(
            f"must name two backends, such as litert,numpy, not {text!r}"
        )
    if specs[0] == specs[1]:
        raise argparse.ArgumentTypeError(
            f"names the same backend twice ({text!r}); compare two different backends or "
            "kernel paths, such as litert,numpy or litert:builtin,litert"
        )
    return specs


def _inference(args: argparse.Namespace, out: TextIO) -> int:
    return run_inference(args, {args.command: BACKENDS[args.command]}, stdout=out)


def _train(args: argparse.Namespace, out: TextIO) -> int:
    from ._train import train  # keeps TensorFlow's import out of every other command

    check_output_file(args.output, flag="--output")
    cnn = {"conv_channels": args.conv_channels, "kernel_sizes": args.kernel_sizes}
    cnn = {key: value for key, value in cnn.items() if value is not None}
    if args.pooling is not None:
        cnn["pooling"] = args.pooling
    if args.architecture != "cnn" and cnn:
        flags = ", ".join("--" + key.replace("_", "-") for key in cnn)
        raise UsageError(f"{flags} shape a CNN; add --architecture cnn or leave them out")
    try:
        facts = train(
            args.output,
            hidden=args.hidden,
            architecture=args.architecture,
            **cnn,
            input_size=args.input_size,
            epochs=args.epochs,
            qat_epochs=args.qat_epochs,
            seed=args.seed,
            data_dir=args.data_dir,
            verbose=0 if args.quiet else 1,
        )
    except ValueError as error:  # sizes that do not fit together, checked before training
        raise UsageError(str(error)) from None
    sizes = "-".join(map(str, facts.layer_sizes))
    print(
        f"float accuracy: {facts.float_accuracy:.2%}\n"
        f"int8 accuracy: {facts.int8_accuracy:.2%} (LiteRT, xnnpack)\n"
        f"wrote {args.output} ({sizes}, {facts.model_bytes:,} bytes, "
        f"trained in {facts.training_seconds:.0f} s) and {facts_path(args.output)}",
        file=out,
    )
    return 0


def _compare(args: argparse.Namespace, out: TextIO) -> int:
    labels = [f"{name}:{rounding or args.rounding}" for name, rounding in args.backends]
    if labels[0] == labels[1]:
        raise UsageError(
            f"--backends names {labels[0]} twice (--rounding {args.rounding}); compare two "
            "different backends or kernel paths"
        )
    selection = select_images(args)
    model = read_model(args.model)
    x = preprocess(selection.images, model.input_shape)
    results = []
    for (name, _), label in zip(args.backends, labels, strict=True):
        with progress(len(x), desc=label, quiet=args.quiet or len(x) == 1) as bar:
            rounding = label.partition(":")[2]
            results.append(
                run_backend(
                    BACKENDS[name],
                    model,
                    x,
                    rounding=rounding,  # type: ignore[arg-type]
                    batch_size=args.batch_size,
                    bar=bar,
                )
            )
    print(report_compare(selection, (labels[0], labels[1]), (results[0], results[1])), file=out)
    return 0 if results[0].diff(results[1]).identical else 1


def _info(args: argparse.Namespace, out: TextIO) -> int:
    try:  # the positional MODEL has no argparse type (see _add_info)
        path = args.model if isinstance(args.model, Path) else model_path(args.model)
    except argparse.ArgumentTypeError as error:
        raise UsageError(str(error)) from None
    model = read_model(path)
    height, width = model.input_shape
    io = f"{'float32' if model.float_input else 'int8'} in, "
    io += f"{'float32' if model.float_output else 'int8'} out"
    kinds = Counter(layer.op for layer in model.layers)
    lines = [
        f"{model.path} ({model.path.stat().st_size:,} bytes): "
        f"{', '.join(f'{count} {op}' for op, count in kinds.items())} "
        f"{'layer' if len(model.layers) == 1 else 'layers'}, input {height}x{width}, {io}",
        f"input: scale {model.input_scale:.9g}, zero point {model.input_zero_point}",
    ]
    if model.softmax_dropped:
        lines.append(
            "SOFTMAX left out: the model's output is the int8 logits of the last layer, before "
            "the file's final softmax (the same argmax)"
        )
    lines.append("")
    rows = []
    for layer in model.layers:
        scales = getattr(layer, "weight_scales", None)
        if scales is None:  # pooling: no weights
            weight_scale = ""
        elif layer.per_channel:
            weight_scale = f"{scales.min():.6g}..{scales.max():.6g} per channel"
        else:
            weight_scale = f"{scales[0]:.6g}"
        rows.append(
            [
                f"layer{layer.index}",
                layer.describe(),
                f"{layer.input_scale:.6g}",
                layer.input_zero_point,
                weight_scale,
                f"{layer.output_scale:.6g}",
                layer.output_zero_point,
            ]
        )
    lines.append(
        terminal.table(
            ["layer", "operation", "in scale", "in zp", "weight scale", "out scale", "out zp"],
            rows,
            align="llrrlrr",
            width=terminal.width(out),
        )
    )
    lines += [
        "",
        textwrap.fill(
            "requantization multipliers (builtin and reference: the integer M of scale = "
            "M * 2**(shift - 31); xnnpack: the float32 scale itself) and int32 overflow (output "
            "channels whose accumulator or requantization can leave int32 for some input):",
            terminal.width(out),
        ),
    ]
    rows = []
    for layer in model.layers:
        if not hasattr(layer, "integer_multipliers"):  # pooling: no requantization
            continue
        xnn = layer.float_scales()
        for rounding in ("builtin", "reference", "xnnpack"):
            m, shift = layer.integer_multipliers(rounding)
            if rounding == "xnnpack":
                multiplier, exponent = _span(xnn, fmt=".9g"), ""
            else:
                multiplier, exponent = _span(m), _span(shift)
            rows.append(
                [f"layer{layer.index}", rounding, multiplier, exponent, _overflow(layer, rounding)]
            )
    lines.append(
        terminal.table(
            ["layer", "path", "multiplier", "shift", "int32 overflow"],
            rows,
            align="llrrl",
            width=terminal.width(out),
        )
    )
    facts = facts_path(model.path)
    if facts.is_file():
        lines += ["", f"training facts ({facts.name}):"]
        for key, value in json.loads(facts.read_text()).items():
            if isinstance(value, dict):
                value = ", ".join(f"{k} {v}" for k, v in value.items())
            lines.append(f"  {key}: {value}")
    print("\n".join(lines), file=out)
    return 0


def _overflow(layer: object, rounding: Rounding) -> str:
    """``none``, ``RISK: 3 of 18 channels`` or ``not checked`` (a layer kind without the bound)."""
    check = getattr(layer, "int32_overflow", None)
    if check is None:
        return "not checked"
    flagged = check(rounding)
    if not flagged.any():
        return "none"
    return f"RISK: {int(flagged.sum())} of {len(flagged)} channels"


def _span(values: np.ndarray, *, fmt: str = "d") -> str:
    """One value if all channels agree, else ``min..max``."""
    low, high = values.min(), values.max()
    if fmt == "d":
        low, high = int(low), int(high)
    return f"{low:{fmt}}" if low == high else f"{low:{fmt}}..{high:{fmt}}"


def _parser() -> ArgumentParser:
    parser = ArgumentParser(
        prog="qnn-ref",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_version_argument(parser, "qnn-ref")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    for add in (_add_train, _add_inference, _add_compare, _add_info):
        add(commands)
    return parser


def _add_train(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    train = add_command(
        commands,
        "train",
        _train,
        help="train a model and write it as an int8 .tflite (needs qnn-ref[train])",
        description="Train an MNIST MLP or CNN (float epochs, then quantization-aware "
        "fine-tuning) and write a full-integer int8 .tflite plus a JSON file of training facts.",
    )
    train.add_argument(
        "--architecture",
        choices=("mlp", "cnn"),
        default="mlp",
        help="mlp: dense layers (default); cnn: for each --conv-channels a 'same' convolution "
        "with ReLU and a 2x2 pooling, then the dense layers",
    )
    train.add_argument(
        "--hidden",
        type=_parse_hidden,
        default=None,
        metavar="SIZES",
        help="hidden dense layer sizes, comma-separated (default 18 for mlp, none for cnn; "
        "e.g. 64,32)",
    )
    train.add_argument(
        "--input-size",
        type=_parse_size,
        default=None,
        metavar="N|HxW",
        help=f"size the 28x28 images are resized to (default 12x12 for mlp, "
        f"{'x'.join(map(str, CNN_INPUT_SIZE))} for cnn)",
    )
    cnn = train.add_argument_group("cnn (with --architecture cnn)")
    cnn.add_argument(
        "--conv-channels",
        type=_parse_hidden,
        default=None,
        metavar="SIZES",
        help=f"output channels of each convolution, comma-separated (default "
        f"{','.join(map(str, CNN_CHANNELS))})",
    )
    cnn.add_argument(
        "--kernel-sizes",
        type=_parse_hidden,
        default=None,
        metavar="SIZES",
        help=f"square kernel size of each convolution, one per --conv-channels (default "
        f"{','.join(map(str, CNN_KERNELS))})",
    )
    cnn.add_argument(
        "--pooling",
        choices=("max", "none"),
        default=None,
        help="the pooling after each convolution (default max)",
    )
    train.add_argument(
        "--epochs",
        type=positive_int,
        default=10,
        metavar="N",
        help="float epochs (default %(default)s)",
    )
    train.add_argument(
        "--qat-epochs",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="quantization-aware fine-tuning epochs (default %(default)s; 0: post-training "
        "quantization)",
    )
    train.add_argument(
        "--seed",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="random seed (default %(default)s)",
    )
    train.add_argument(
        "--output",
        type=Path,
        default=Path("model.tflite"),
        metavar="PATH",
        help="the .tflite to write, its facts go beside it as .json (default %(default)s)",
    )
    train.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="directory of train-*-ubyte.gz (default: data/mnist found above the current "
        "directory or the qnn_ref package)",
    )
    train.add_argument("--quiet", action="store_true", help="no Keras progress bar")


def _add_inference(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    for name, helptext in (
        ("litert", "run the model in the LiteRT interpreter on the chosen kernel path"),
        ("numpy", "run the model with the integer NumPy reference matching the chosen path"),
    ):
        add_inference_arguments(add_command(commands, name, _inference, help=helptext))


def _add_compare(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    compare = add_command(
        commands,
        "compare",
        _compare,
        help="run two backends and count mismatches per layer (exit 1 on any)",
        description="Run two backends on the same images and count differing values in the "
        "input and every layer. Exit status 1 if anything differs.",
    )
    add_model_argument(compare)
    add_image_arguments(compare, detail=False)
    add_batch_argument(compare)
    add_rounding_argument(compare)
    add_output_arguments(compare, dump=False)
    compare.add_argument(
        "--backends",
        type=_parse_backends,
        default=_parse_backends("litert,numpy"),
        metavar="A,B",
        help="the two backends (default litert,numpy); NAME:PATH overrides --rounding for one, "
        "e.g. litert:builtin,numpy",
    )


def _add_info(commands: "argparse._SubParsersAction[ArgumentParser]") -> None:
    info = add_command(
        commands,
        "info",
        _info,
        help="show a model's layers, shapes, scales, zero points and multipliers",
    )
    add_model_argument(info)
    info.add_argument(  # no type: argparse would turn the SUPPRESS default into a path
        "model",
        nargs="?",
        default=argparse.SUPPRESS,
        metavar="MODEL",
        help="the same as --model PATH",
    )


def main(argv: list[str] | None = None) -> int:
    """Run the ``qnn-ref`` command line.

    :param argv: The arguments after the program name (default: :data:`sys.argv`).
    :returns: The exit status: 0 success, 1 failure or mismatch, 2 usage error (also when no
        command is given: the usage and the command list go to stderr).
    """
    return dispatch(_parser(), argv)
