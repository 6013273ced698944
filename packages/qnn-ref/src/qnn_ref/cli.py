"""Train a small int8 MNIST network and run it bit-exactly in LiteRT and in NumPy.

Commands: `train` a model, run it with `litert` or `numpy`, `compare` two backends layer by
layer, and show a model's layers and quantization with `info`. Inference runs on the MNIST test
set shipped with qnn-ref, with the shipped 144-18-10 model unless --model says otherwise.
"""

import argparse
import json
import sys
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import NoReturn, Protocol, TextIO

import numpy as np
from tqdm import tqdm

from . import terminal
from ._data import DataError, load_mnist, preprocess
from ._litert import run_litert
from ._model import ROUNDINGS, Model, ModelError, Rounding, default_model_path, read_model
from ._numpy import Outputs, run_numpy
from ._train import TrainingError, facts_path

__all__ = [
    "BACKENDS",
    "ArgumentParser",
    "Backend",
    "CommandError",
    "Selection",
    "UsageError",
    "add_inference_arguments",
    "concatenate",
    "main",
    "mismatches",
    "non_negative_int",
    "positive_int",
    "progress",
    "report_compare",
    "report_many",
    "report_single",
    "run_backend",
    "run_inference",
    "run_main",
    "select_images",
]

#: Images in the MNIST test set, the set every inference command draws from.
_TEST_IMAGES = 10_000
#: Images per backend call when --batch-size is not given: large enough to be fast, small
#: enough for the progress bar to move.
_DEFAULT_CHUNK = 1000
#: int8 values per line in the single-image view (5 columns each).
_PER_ROW = 16


class UsageError(Exception):
    """The command line asks for something impossible; the CLI exits with status 2.

    The message is one line saying what is wrong and what to do.
    """


class CommandError(Exception):
    """The command was valid but failed; the CLI exits with status 1.

    The message is one line saying what is wrong and what to do.
    """


class ArgumentParser(argparse.ArgumentParser):
    """An :class:`argparse.ArgumentParser` whose errors are one line on stderr, exit status 2.

    argparse normally prints the usage before the error; the CLI contract is one line saying
    what is wrong and what to do, so this prints ``prog: error: message (see prog --help)``.
    Sub-parsers made with ``add_subparsers`` inherit the behaviour.
    """

    def error(self, message: str) -> NoReturn:
        """Print ``message`` as one line and exit with status 2."""
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def _int_at_least(text: str, minimum: int, kind: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = minimum - 1
    if value < minimum:
        raise argparse.ArgumentTypeError(f"must be a {kind} integer, not {text!r}")
    return value


def positive_int(text: str) -> int:
    """argparse type: an integer of at least 1."""
    return _int_at_least(text, 1, "positive")


def non_negative_int(text: str) -> int:
    """argparse type: an integer of at least 0."""
    return _int_at_least(text, 0, "non-negative")


def add_inference_arguments(parser: argparse.ArgumentParser, *, dump: bool = True) -> None:
    """Add the inference options every backend's CLI shares (the CLI contract).

    ``--model PATH`` (default: the shipped model), ``--start-image N``, ``--num-images N``,
    ``--batch-size N``, ``--rounding {xnnpack,builtin,reference}``, ``--dump FILE.npz`` (if
    ``dump``) and ``--quiet``. Counts are validated by argparse (:func:`positive_int`,
    :func:`non_negative_int`); checks that need the data set are in :func:`select_images`.

    :param parser: The (sub)parser to add the options to.
    :param dump: Whether to add ``--dump``.
    """
    parser.add_argument(
        "--model",
        type=Path,
        default=default_model_path(),
        metavar="PATH",
        help="the int8 .tflite model (default: the 144-18-10 model shipped with qnn-ref)",
    )
    parser.add_argument(
        "--start-image",
        type=non_negative_int,
        default=0,
        metavar="N",
        help="index of the first MNIST test image (0-9999, default 0)",
    )
    parser.add_argument(
        "--num-images",
        type=positive_int,
        default=1,
        metavar="N",
        help="how many consecutive test images to run (default 1: show that image in detail)",
    )
    parser.add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=f"images per backend call (default: all, in chunks of {_DEFAULT_CHUNK})",
    )
    parser.add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default="xnnpack",
        help="the LiteRT kernel path to run or to match bit for bit (default xnnpack, what a "
        "default LiteRT Interpreter runs)",
    )
    if dump:
        parser.add_argument(
            "--dump",
            type=Path,
            metavar="FILE.npz",
            help="write the int8 input, every layer's output, predictions, labels and image "
            "indices to FILE.npz",
        )
    parser.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no per-image details: print only the results",
    )


@dataclass(frozen=True)
class Selection:
    """The test images a command runs on."""

    #: uint8 ``[N, 28, 28]``.
    images: np.ndarray
    #: uint8 ``[N]``.
    labels: np.ndarray
    #: int64 ``[N]``: indices of the images in the MNIST test set.
    indices: np.ndarray


def select_images(args: argparse.Namespace) -> Selection:
    """Load the test images chosen by ``--start-image`` and ``--num-images``.

    Also checks ``--batch-size`` against the number of images and that the directory of
    ``--dump`` exists, so every usage error is reported before any work starts.

    :param args: Parsed options from :func:`add_inference_arguments`.
    :returns: The images, their labels and their indices.
    :raises UsageError: if an image index is out of range, the batch is larger than the set or
        the ``--dump`` directory does not exist.
    :raises DataError: if the shipped test set is missing or corrupt.
    """
    start, count = args.start_image, args.num_images
    last = _TEST_IMAGES - 1
    if start > last:
        raise UsageError(
            f"--start-image {start} is out of range: the MNIST test set has images 0 to {last}; "
            "choose a smaller --start-image"
        )
    if start + count > _TEST_IMAGES:
        raise UsageError(
            f"images {start} to {start + count - 1} are out of range: the MNIST test set has "
            f"images 0 to {last}; use --num-images {_TEST_IMAGES - start} or less"
        )
    dump = getattr(args, "dump", None)
    if dump is not None and not dump.parent.is_dir():
        raise UsageError(
            f"--dump {dump}: directory {dump.parent} does not exist; create it or choose "
            "another path"
        )
    if args.batch_size is not None and args.batch_size > count:
        raise UsageError(
            f"--batch-size {args.batch_size} is larger than the {count} images selected; "
            f"use --batch-size {count} or less"
        )
    images, labels = load_mnist("test")
    chosen = slice(start, start + count)
    return Selection(images[chosen], labels[chosen], np.arange(start, start + count))


class Backend(Protocol):
    """An inference backend: float32 input batch in, every layer's int8 output out.

    :func:`qnn_ref.run_litert` and :func:`qnn_ref.run_numpy` are backends; pyrtlnet adds its
    gate-level simulation. ``rounding`` names the LiteRT kernel path to run or to match.
    """

    def __call__(self, model: Model, x: np.ndarray, *, rounding: Rounding) -> Outputs:
        """Run ``model`` on ``x`` (float32 ``[N, in_features]``)."""
        ...


#: The backends of ``qnn-ref``, by the name the commands use.
BACKENDS: dict[str, Backend] = {"litert": run_litert, "numpy": run_numpy}


def progress(total: int, *, desc: str, quiet: bool) -> tqdm:
    """A progress bar over ``total`` images on stderr (so results on stdout stay clean).

    The bar is drawn only when stderr is a terminal, so logs and pipes get no bar debris.

    :param total: Number of images.
    :param desc: Text in front of the bar, e.g. the backend's name.
    :param quiet: Hide the bar (it still counts).
    """
    return tqdm(
        total=total,
        desc=desc,
        unit="image",
        file=sys.stderr,
        disable=True if quiet else None,
        leave=False,
    )


def concatenate(parts: Sequence[Outputs]) -> Outputs:
    """Join the outputs of consecutive batches into one :class:`~qnn_ref.Outputs`."""
    return Outputs(
        input=np.concatenate([p.input for p in parts]),
        layers=tuple(
            np.concatenate(layer) for layer in zip(*(p.layers for p in parts), strict=True)
        ),
        predictions=np.concatenate([p.predictions for p in parts]),
    )


def run_backend(
    backend: Backend,
    model: Model,
    x: np.ndarray,
    *,
    rounding: Rounding,
    batch_size: int | None = None,
    bar: tqdm | None = None,
) -> Outputs:
    """Run a backend over ``x`` in batches, advancing a progress bar after each batch.

    :param backend: The backend.
    :param model: The model.
    :param x: float32 ``[N, in_features]`` from :func:`qnn_ref.preprocess`.
    :param rounding: The LiteRT kernel path to run or to match.
    :param batch_size: Images per call (default: chunks of 1,000).
    :param bar: A progress bar from :func:`progress`, or ``None``.
    :returns: The outputs of all ``N`` images.
    """
    step = batch_size or _DEFAULT_CHUNK
    parts = []
    for start in range(0, len(x), step):
        parts.append(backend(model, x[start : start + step], rounding=rounding))
        if bar is not None:
            bar.update(len(parts[-1].predictions))
    return parts[0] if len(parts) == 1 else concatenate(parts)


def _describe_layer(model: Model, i: int) -> str:
    layer = model.layers[i]
    activation = ", ReLU" if layer.relu else ""
    return f"layer{i} (FULLY_CONNECTED {layer.in_features} -> {layer.units}{activation})"


def _format_vector(values: np.ndarray) -> list[str]:
    """int8 values, 5 columns each, :data:`_PER_ROW` to a line."""
    text = [f"{int(v):5d}" for v in values]
    return ["".join(text[i : i + _PER_ROW]) for i in range(0, len(text), _PER_ROW)]


def _dequantized_input(model: Model, q: np.ndarray) -> np.ndarray:
    """The int8 input as the model sees it, as a [h, w] image in [0, 1]."""
    values = (q.astype(np.float64) - model.input_zero_point) * model.input_scale
    return np.clip(values, 0.0, 1.0).reshape(model.input_shape)


def report_single(
    model: Model, selection: Selection, outputs: Mapping[str, Outputs], *, color: bool
) -> str:
    """The detailed view of one image, with several backends' results side by side.

    The 28×28 image and the int8 input the network sees, every layer's int8 outputs (one row
    per backend, ``^`` under values where a backend differs from the first), the logits of the
    first backend as a bar chart annotated with the others' values, and each prediction.

    :param model: The model that was run.
    :param selection: One image.
    :param outputs: Each backend's outputs for the image, by backend name; the first is the
        reference the others are compared with.
    :param color: Colour pictures (see :func:`qnn_ref.terminal.color_enabled`).
    :returns: The report's lines, no trailing newline.
    """
    index = int(selection.indices[0])
    names = list(outputs)
    first = outputs[names[0]]
    height, width = model.input_shape
    picture = terminal.side_by_side(
        [
            f"MNIST test image {index}\n" + terminal.render_digit(selection.images[0], color=color),
            f"int8 input ({height}x{width})\n"
            + terminal.render_digit(_dequantized_input(model, first.input[0]), color=color),
        ]
    )
    lines = [picture, ""]
    name_width = max(len(n) for n in names)
    for i in range(len(model.layers) - 1):
        lines.append(f"{_describe_layer(model, i)} int8 outputs:")
        reference = first.layers[i][0]
        for name in names:
            values = outputs[name].layers[i][0]
            marks = "".join("    ^" if d else "     " for d in values != reference)
            for j, row in enumerate(_format_vector(values)):
                lines.append(f"  {name if j == 0 else '':<{name_width}} {row}")
                row_marks = marks[j * 5 * _PER_ROW : (j + 1) * 5 * _PER_ROW].rstrip()
                if row_marks:
                    lines.append(f"  {'':<{name_width}} {row_marks}")
        lines.append("")
    last = len(model.layers) - 1
    logits = first.layers[last][0]
    others = [n for n in names if n != names[0]]
    notes = [
        "  ".join(
            f"{n} {int(outputs[n].layers[last][0][c]):4d}"
            + (" (differs)" if outputs[n].layers[last][0][c] != logits[c] else "")
            for n in others
        )
        for c in range(model.num_classes)
    ]
    lines.append(f"{_describe_layer(model, last)} int8 logits ({names[0]}):")
    lines.append(
        terminal.bar_chart(
            logits,
            notes=notes if others else None,
            highlight=int(first.predictions[0]),
            color=color,
        )
    )
    lines.append("")
    lines.append(_prediction_line(selection, outputs))
    return "\n".join(lines)


def _prediction_line(selection: Selection, outputs: Mapping[str, Outputs]) -> str:
    label = int(selection.labels[0])
    predictions = ", ".join(
        f"{name} {int(o.predictions[0])} ({'right' if o.predictions[0] == label else 'wrong'})"
        for name, o in outputs.items()
    )
    return f"image {int(selection.indices[0])}: label {label}; predicted: {predictions}"


def _accuracy_line(name: str, predictions: np.ndarray, labels: np.ndarray) -> str:
    right = int(np.sum(predictions == labels))
    return f"{name} accuracy: {right / len(labels):.2%} ({right}/{len(labels)})"


def report_many(
    model: Model,
    selection: Selection,
    outputs: Mapping[str, Outputs],
    *,
    seconds: Mapping[str, float] | None = None,
    confusion: bool = True,
) -> str:
    """The summary of a run over many images: accuracy, agreement and confusion counts.

    :param model: The model that was run.
    :param selection: The images.
    :param outputs: Each backend's outputs, by name; the first is the reference the others are
        compared with, and its confusion counts are shown.
    :param seconds: Wall-clock time of each backend, to report images per second.
    :param confusion: Whether to include the confusion counts.
    :returns: The report's lines, no trailing newline.
    """
    count = len(selection.labels)
    first_index, last_index = int(selection.indices[0]), int(selection.indices[-1])
    lines = [f"{count} MNIST test images ({first_index} to {last_index}), model {model.path.name}"]
    names = list(outputs)
    for name in names:
        line = _accuracy_line(name, outputs[name].predictions, selection.labels)
        if seconds is not None and name in seconds:
            line += f", {count / max(seconds[name], 1e-9):,.0f} images/s"
        lines.append(line)
    for name in names[1:]:
        rows = mismatches(outputs[names[0]], outputs[name])
        differing = sum(r[2] for r in rows)
        lines.append(
            f"{name} vs {names[0]}: "
            + ("identical in every layer" if not differing else f"{differing} values differ")
        )
    if confusion:
        predictions = outputs[names[0]].predictions
        classes = max(model.num_classes, 10)  # MNIST labels are 0-9 whatever the model says
        counts = np.zeros((classes, classes), np.int64)
        np.add.at(counts, (selection.labels.astype(np.int64), predictions), 1)
        lines.append("")
        lines.append(f"confusion counts ({names[0]}; rows: label, columns: prediction):")
        lines.append(
            terminal.table(
                ["", *(str(c) for c in range(classes))],
                [[str(r), *counts[r].tolist()] for r in range(classes)],
                align="r" * (classes + 1),
            )
        )
    return "\n".join(lines)


def mismatches(a: Outputs, b: Outputs) -> list[tuple[str, str, int, int, int]]:
    """Where two backends' outputs differ, array by array.

    :param a: One backend's outputs.
    :param b: Another's, for the same images and model.
    :returns: One row per array (``input``, ``layer0`` …, ``predictions``): name, shape,
        number of differing values, number of images with any difference, and the largest
        absolute difference.
    """
    pairs = [
        ("input", a.input, b.input),
        *((f"layer{i}", x, y) for i, (x, y) in enumerate(zip(a.layers, b.layers, strict=True))),
        ("predictions", a.predictions[:, None], b.predictions[:, None]),
    ]
    rows = []
    for name, x, y in pairs:
        differ = x != y
        largest = int(np.max(np.abs(x.astype(np.int64) - y.astype(np.int64)), initial=0))
        rows.append(
            (
                name,
                "x".join(map(str, x.shape)),
                int(differ.sum()),
                int(differ.any(1).sum()),
                largest,
            )
        )
    return rows


def report_compare(
    selection: Selection, names: tuple[str, str], outputs: tuple[Outputs, Outputs]
) -> str:
    """The per-layer mismatch table and both accuracies of a two-backend comparison.

    :param selection: The images.
    :param names: The two backends' names.
    :param outputs: Their outputs.
    :returns: The report's lines, no trailing newline.
    """
    rows = mismatches(*outputs)
    lines = [
        f"{names[1]} vs {names[0]} on {len(selection.labels)} MNIST test images "
        f"({int(selection.indices[0])} to {int(selection.indices[-1])}):",
        terminal.table(
            ["array", "shape", "values differing", "images differing", "max |difference|"],
            rows,
        ),
        "",
        *(
            _accuracy_line(n, o.predictions, selection.labels)
            for n, o in zip(names, outputs, strict=True)
        ),
    ]
    differing = sum(r[2] for r in rows)
    lines.append(
        "result: identical in every layer"
        if not differing
        else f"result: MISMATCH ({differing} values differ)"
    )
    return "\n".join(lines)


def run_inference(
    args: argparse.Namespace,
    backends: Mapping[str, Backend],
    *,
    stdout: TextIO | None = None,
) -> int:
    """The whole inference command: options in, report out (``qnn-ref litert``, ``pyrtlnet infer``).

    Reads the model, selects and preprocesses the images, runs every backend (with a progress
    bar per backend for many images), prints :func:`report_single` for one image or
    :func:`report_many` for several, and writes ``--dump`` from the first backend's outputs.

    :param args: Parsed options from :func:`add_inference_arguments`.
    :param backends: The backends to run, by name; the first is the reference.
    :param stdout: Where to print (default :data:`sys.stdout`).
    :returns: Exit status 0.
    :raises UsageError: for impossible options (see :func:`select_images`).
    :raises ModelError: if the model cannot be read or is not supported.
    :raises DataError: if the test set is missing or corrupt.
    """
    out = sys.stdout if stdout is None else stdout
    selection = select_images(args)
    model = read_model(args.model)
    x = preprocess(selection.images, model.input_shape)
    many = len(x) > 1
    results: dict[str, Outputs] = {}
    seconds: dict[str, float] = {}
    for name, backend in backends.items():
        with progress(len(x), desc=name, quiet=args.quiet or not many) as bar:
            start = time.perf_counter()
            results[name] = run_backend(
                backend, model, x, rounding=args.rounding, batch_size=args.batch_size, bar=bar
            )
            seconds[name] = time.perf_counter() - start
    if getattr(args, "dump", None) is not None:
        first = results[next(iter(results))]
        first.to_npz(args.dump, labels=selection.labels, image_indices=selection.indices)
    if not many:
        if args.quiet:
            print(_prediction_line(selection, results), file=out)
        else:
            print(
                report_single(model, selection, results, color=terminal.color_enabled(out)),
                file=out,
            )
    else:
        print(
            report_many(model, selection, results, seconds=seconds, confusion=not args.quiet),
            file=out,
        )
    return 0


def run_main(fn: Callable[[], int], *, prog: str, stderr: TextIO | None = None) -> int:
    """Run a command, turning expected errors into one line on stderr and an exit status.

    :class:`UsageError` exits with 2; :class:`CommandError`, :class:`~qnn_ref.ModelError`,
    :class:`~qnn_ref.DataError`, :class:`~qnn_ref.TrainingError` and :class:`OSError` (e.g. an
    unwritable ``--dump`` path) with 1; Ctrl-C with 130. Anything else is a bug and keeps its
    traceback.

    :param fn: The command; returns its exit status.
    :param prog: The program name in front of the message, e.g. ``"qnn-ref litert"``.
    :param stderr: Where the message goes (default :data:`sys.stderr`).
    :returns: The exit status.
    """
    err = sys.stderr if stderr is None else stderr
    try:
        with warnings.catch_warnings():
            # LiteRT warns on every interpreter that keeps all tensors; the references must.
            warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
            return fn()
    except UsageError as error:
        status, message = 2, str(error)
    except (CommandError, ModelError, DataError, TrainingError) as error:
        status, message = 1, str(error)
    except OSError as error:
        target = f"{error.filename}: " if error.filename else ""
        status, message = 1, f"{target}{error.strerror or error}; check the path and permissions"
    except KeyboardInterrupt:
        status, message = 130, "interrupted"
    one_line = " ".join(line.strip() for line in message.splitlines() if line.strip())
    print(f"{prog}: error: {one_line}", file=err)
    return status


# --- the qnn-ref commands ---------------------------------------------------------------------


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
        name, _, rounding = part.strip().partition(":")
        if name not in BACKENDS or (rounding and rounding not in ROUNDINGS):
            raise argparse.ArgumentTypeError(
                f"{part!r} is not a backend: use {' or '.join(BACKENDS)}, optionally with "
                f":{'|'.join(ROUNDINGS)}"
            )
        specs.append((name, rounding or None))  # type: ignore[arg-type]
    if len(specs) != 2:
        raise argparse.ArgumentTypeError(
            f"must name two backends, such as litert,numpy, not {text!r}"
        )
    return specs


def _train(args: argparse.Namespace, out: TextIO) -> int:
    from ._train import train  # keeps TensorFlow's import out of every other command

    facts = train(
        args.output,
        hidden=args.hidden,
        input_size=args.input_size,
        epochs=args.epochs,
        qat_epochs=args.qat_epochs,
        seed=args.seed,
        data_dir=args.data_dir,
        verbose=0 if args.quiet else 1,
    )
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
    selection = select_images(args)
    model = read_model(args.model)
    x = preprocess(selection.images, model.input_shape)
    names, results = [], []
    for name, rounding in args.backends:
        rounding = rounding or args.rounding
        label = f"{name}:{rounding}"
        with progress(len(x), desc=label, quiet=args.quiet or len(x) == 1) as bar:
            results.append(
                run_backend(
                    BACKENDS[name],
                    model,
                    x,
                    rounding=rounding,
                    batch_size=args.batch_size,
                    bar=bar,
                )
            )
        names.append(label)
    print(report_compare(selection, (names[0], names[1]), (results[0], results[1])), file=out)
    differing = sum(row[2] for row in mismatches(results[0], results[1]))
    return 1 if differing else 0


def _info(args: argparse.Namespace, out: TextIO) -> int:
    model = read_model(args.model)
    height, width = model.input_shape
    io = f"{'float32' if model.float_input else 'int8'} in, "
    io += f"{'float32' if model.float_output else 'int8'} out"
    lines = [
        f"{model.path} ({model.path.stat().st_size:,} bytes): {len(model.layers)} "
        f"FULLY_CONNECTED layers, input {height}x{width}, {io}",
        f"input: scale {model.input_scale:.9g}, zero point {model.input_zero_point}",
        "",
    ]
    rows = []
    for layer in model.layers:
        scales = layer.weight_scales
        weight_scale = (
            f"{scales.min():.6g}..{scales.max():.6g} per channel"
            if layer.per_channel
            else f"{scales[0]:.6g}"
        )
        rows.append(
            [
                f"layer{layer.index}",
                f"{layer.in_features} -> {layer.units}",
                "ReLU" if layer.relu else "none",
                f"{layer.input_scale:.6g}",
                layer.input_zero_point,
                weight_scale,
                f"{layer.output_scale:.6g}",
                layer.output_zero_point,
            ]
        )
    lines.append(
        terminal.table(
            [
                "layer",
                "shape",
                "activation",
                "in scale",
                "in zp",
                "weight scale",
                "out scale",
                "out zp",
            ],
            rows,
            align="lllrrlrr",
        )
    )
    lines += ["", "requantization multipliers (scale = M * 2**(shift - 31)):"]
    rows = []
    for layer in model.layers:
        xnn = layer.float_scales()
        for rounding in ("builtin", "reference"):
            m, shift = layer.integer_multipliers(rounding)
            rows.append([f"layer{layer.index}", rounding, _span(m), _span(shift), ""])
        rows.append([f"layer{layer.index}", "xnnpack", "", "", _span(xnn, fmt=".9g")])
    lines.append(
        terminal.table(["layer", "path", "M", "shift", "float32 scale"], rows, align="llrrr")
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
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train = commands.add_parser(
        "train",
        help="train a model and write it as an int8 .tflite (needs qnn-ref[train])",
        description="Train an MNIST MLP (float epochs, then quantization-aware fine-tuning) "
        "and write a full-integer int8 .tflite plus a JSON file of training facts.",
    )
    train.add_argument(
        "--hidden",
        type=_parse_hidden,
        default=(18,),
        metavar="SIZES",
        help="hidden layer sizes, comma-separated (default 18; e.g. 64,32)",
    )
    train.add_argument(
        "--input-size",
        type=_parse_size,
        default=(12, 12),
        metavar="N|HxW",
        help="size the 28x28 images are resized to (default 12, i.e. 12x12)",
    )
    train.add_argument(
        "--epochs", type=positive_int, default=10, metavar="N", help="float epochs (default 10)"
    )
    train.add_argument(
        "--qat-epochs",
        type=non_negative_int,
        default=2,
        metavar="N",
        help="quantization-aware fine-tuning epochs (default 2; 0: post-training quantization)",
    )
    train.add_argument(
        "--seed", type=non_negative_int, default=0, metavar="N", help="random seed (default 0)"
    )
    train.add_argument(
        "--output",
        type=Path,
        default=Path("model.tflite"),
        metavar="PATH",
        help="the .tflite to write, its facts go beside it as .json (default ./model.tflite)",
    )
    train.add_argument(
        "--data-dir",
        type=Path,
        metavar="DIR",
        help="directory of train-*-ubyte.gz (default: data/mnist found above the current "
        "directory or the qnn_ref package)",
    )
    train.add_argument("--quiet", action="store_true", help="no Keras progress bar")

    for name, helptext in (
        ("litert", "run the model in the LiteRT interpreter on the chosen kernel path"),
        ("numpy", "run the model with the integer NumPy reference matching the chosen path"),
    ):
        sub = commands.add_parser(
            name, help=helptext, description=helptext[0].upper() + helptext[1:] + "."
        )
        add_inference_arguments(sub)

    compare = commands.add_parser(
        "compare",
        help="run two backends and count mismatches per layer (exit 1 on any)",
        description="Run two backends on the same images and count differing values in the "
        "input and every layer. Exit status 1 if anything differs.",
    )
    add_inference_arguments(compare, dump=False)
    compare.add_argument(
        "--backends",
        type=_parse_backends,
        default=_parse_backends("litert,numpy"),
        metavar="A,B",
        help="the two backends (default litert,numpy); NAME:PATH overrides --rounding for one, "
        "e.g. litert:builtin,numpy",
    )

    info = commands.add_parser(
        "info",
        help="show a model's layers, shapes, scales, zero points and multipliers",
        description="Show a model's layers, shapes, scales, zero points and multipliers.",
    )
    info.add_argument(
        "model",
        type=Path,
        nargs="?",
        default=default_model_path(),
        metavar="MODEL",
        help="the .tflite model (default: the shipped model)",
    )
    return parser


_COMMANDS: dict[str, Callable[[argparse.Namespace, TextIO], int]] = {
    "train": _train,
    "compare": _compare,
    "info": _info,
}


def main(argv: list[str] | None = None) -> int:
    """Run the ``qnn-ref`` command line.

    :param argv: The arguments after the program name (default: :data:`sys.argv`).
    :returns: The exit status: 0 success, 1 failure or mismatch, 2 usage error.
    """
    try:
        args = _parser().parse_args(argv)
    except SystemExit as exit_:  # --help, or a usage error argparse already reported
        return int(exit_.code or 0)
    out = sys.stdout

    def command() -> int:
        if args.command in BACKENDS:
            return run_inference(args, {args.command: BACKENDS[args.command]}, stdout=out)
        return _COMMANDS[args.command](args, out)

    return run_main(command, prog=f"qnn-ref {args.command}")
