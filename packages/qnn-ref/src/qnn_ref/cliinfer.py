"""The inference command of ``qnn-ref litert``/``numpy`` and ``pyrtlnet infer``, and its options.

One flow for every backend: read the model, select and preprocess test images, run each
backend with a progress bar, print one image in detail or a summary of many, then write the
files asked for. A backend is a function (:class:`Backend`, e.g. :func:`qnn_ref.run_numpy`) or
an object built once that runs the whole image set itself (:class:`StreamingBackend`, e.g.
pyrtlnet's gate-level hardware); :func:`run_inference` takes any mix of them.

The options are argument groups each command composes (:func:`add_model_argument`,
:func:`add_image_arguments`, :func:`add_batch_argument`, :func:`add_rounding_argument`,
:func:`add_output_arguments`), or all of them at once with :func:`add_inference_arguments`.
"""

import argparse
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Protocol, TextIO, runtime_checkable

import numpy as np
from tqdm import tqdm

from . import terminal
from ._data import load_mnist, preprocess
from ._litert import run_litert
from ._model import ROUNDINGS, SHIPPED_MODELS, Model, Rounding, read_model, shipped_model_path
from ._numpy import Outputs, run_numpy
from .clireport import (
    Selection,
    agreement_line,
    prediction_line,
    report_compare,
    report_many,
    report_single,
)
from .clitools import (
    UsageError,
    check_output_file,
    non_negative_int,
    plural,
    positive_int,
    progress,
    write_file,
)

__all__ = [
    "BACKENDS",
    "Backend",
    "OutputFile",
    "StreamingBackend",
    "add_batch_argument",
    "add_image_arguments",
    "add_inference_arguments",
    "add_model_argument",
    "add_output_arguments",
    "add_rounding_argument",
    "model_path",
    "run_backend",
    "run_inference",
    "select_images",
]

#: Images in the MNIST test set, the set every inference command draws from.
_TEST_IMAGES = 10_000
#: Images per backend call when --batch-size is not given: large enough to be fast, small
#: enough for the progress bar to move.
_DEFAULT_CHUNK = 1000


def model_path(text: str) -> Path:
    """argparse type of ``--model``: a ``.tflite`` path, or the name of a shipped model.

    A file wins over a name: ``--model cnn`` reads ``./cnn`` if such a file exists (a path
    never changes meaning), else the shipped model of that name (:data:`qnn_ref.SHIPPED_MODELS`,
    :func:`qnn_ref.shipped_model_path`).

    :param text: The option's value.
    :returns: The model file.
    :raises argparse.ArgumentTypeError: if ``text`` is neither an existing file nor a name.
    """
    path = Path(text)
    if path.exists():
        return path
    if text in SHIPPED_MODELS:
        return shipped_model_path(text)
    raise argparse.ArgumentTypeError(
        f"{text!r} is neither a file nor a shipped model; give a .tflite path or "
        f"{' or '.join(SHIPPED_MODELS)}"
    )


def add_model_argument(parser: argparse.ArgumentParser) -> None:
    """``--model NAME|PATH``: a shipped model by name or an int8 ``.tflite`` (default ``mlp``).

    See :func:`model_path` for how a value is read.
    """
    parser.add_argument_group("model").add_argument(
        "--model",
        type=model_path,
        default="mlp",
        metavar="NAME|PATH",
        help=f"the int8 .tflite model, or a shipped one: {', '.join(SHIPPED_MODELS)} (default "
        "%(default)s, the 144-18-10 MLP; an existing file of that name wins)",
    )


def add_image_arguments(parser: argparse.ArgumentParser, *, detail: bool = True) -> None:
    """``--start-image N`` and ``--num-images N``: which MNIST test images.

    :param parser: The (sub)parser.
    :param detail: Whether the command shows a single image in detail (the help says so).
    """
    group = parser.add_argument_group("images")
    group.add_argument(
        "--start-image",
        type=non_negative_int,
        default=0,
        metavar="N",
        help=f"index of the first MNIST test image (0-{_TEST_IMAGES - 1}, default %(default)s)",
    )
    group.add_argument(
        "--num-images",
        type=positive_int,
        default=1,
        metavar="N",
        help="how many consecutive test images to run (default %(default)s"
        + ("; one image is shown in detail)" if detail else ")"),
    )


def add_batch_argument(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """``--batch-size N`` (default ``None``): images per backend call, or what ``help`` says.

    :param parser: The (sub)parser.
    :param help: What the batch means for this command (default: images per backend call).
    """
    parser.add_argument_group("batch").add_argument(
        "--batch-size",
        type=positive_int,
        default=None,
        metavar="N",
        help=help or f"images per backend call (default: all, in chunks of {_DEFAULT_CHUNK:,})",
    )


def add_rounding_argument(parser: argparse.ArgumentParser, *, help: str | None = None) -> None:
    """``--rounding {xnnpack,builtin,reference}``: the LiteRT kernel path (default xnnpack).

    :param parser: The (sub)parser.
    :param help: What the path means for this command (default: the path to run or match).
    """
    parser.add_argument_group("rounding").add_argument(
        "--rounding",
        choices=ROUNDINGS,
        default="xnnpack",
        help=help
        or "the LiteRT kernel path to run or to match bit for bit (default %(default)s, what a "
        "default LiteRT Interpreter runs)",
    )


def add_output_arguments(parser: argparse.ArgumentParser, *, dump: bool = True) -> None:
    """``--dump FILE.npz`` (if ``dump``) and ``--quiet``.

    :param parser: The (sub)parser.
    :param dump: Whether to add ``--dump``.
    """
    group = parser.add_argument_group("output")
    if dump:
        group.add_argument(
            "--dump",
            type=Path,
            metavar="FILE.npz",
            help="write the int8 input, every layer's output, predictions, labels and image "
            "indices to FILE.npz (the name is used as given)",
        )
    group.add_argument(
        "--quiet",
        action="store_true",
        help="no progress bar and no per-image details: print only the results",
    )


def add_inference_arguments(
    parser: argparse.ArgumentParser, *, dump: bool = True, batch_help: str | None = None
) -> None:
    """Add every option of the inference commands (the CLI contract).

    ``--model``, ``--start-image``, ``--num-images``, ``--batch-size``, ``--rounding``,
    ``--dump`` (if ``dump``) and ``--quiet``. Counts are validated by argparse; checks that
    need the data set are in :func:`select_images`.

    :param parser: The (sub)parser to add the options to.
    :param dump: Whether to add ``--dump``.
    :param batch_help: What ``--batch-size`` means for this command (see
        :func:`add_batch_argument`).
    """
    add_model_argument(parser)
    add_image_arguments(parser)
    add_batch_argument(parser, help=batch_help)
    add_rounding_argument(parser)
    add_output_arguments(parser, dump=dump)


def select_images(args: argparse.Namespace) -> Selection:
    """Load the test images chosen by ``--start-image`` and ``--num-images``.

    Also checks ``--batch-size`` against the number of images and that ``--dump`` (if the
    command has it) can be written, so every usage error is reported before any work starts.

    :param args: Parsed options from :func:`add_image_arguments` and
        :func:`add_batch_argument`.
    :returns: The images, their labels and their indices.
    :raises UsageError: if an image index is out of range, the batch is larger than the set or
        ``--dump`` cannot be written.
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
    if getattr(args, "dump", None) is not None:
        check_output_file(args.dump, flag="--dump")
    if args.batch_size is not None and args.batch_size > count:
        raise UsageError(
            f"--batch-size {args.batch_size} is larger than the {plural(count, 'image')} "
            f"selected; use --batch-size {count} or less"
        )
    images, labels = load_mnist("test")
    chosen = slice(start, start + count)
    return Selection(images[chosen], labels[chosen], np.arange(start, start + count))


class Backend(Protocol):
    """An inference backend: float32 input batch in, every layer's int8 output out.

    :func:`qnn_ref.run_litert` and :func:`qnn_ref.run_numpy` are backends. ``rounding`` names
    the LiteRT kernel path to run or to match.
    """

    def __call__(self, model: Model, x: np.ndarray, *, rounding: Rounding) -> Outputs:
        """Run ``model`` on ``x`` (float32 ``[N, in_features]``)."""
        ...


@runtime_checkable
class StreamingBackend(Protocol):
    """A backend built once that runs a whole image set itself, reporting progress as it goes.

    pyrtlnet's gate-level hardware is one: building its simulation takes seconds, so it is
    built on the first call and every image streams through it (in worker processes, too).
    """

    def run_all(
        self,
        model: Model,
        x: np.ndarray,
        *,
        rounding: Rounding,
        progress: Callable[..., None],
    ) -> Outputs:
        """Run ``model`` on ``x``; call ``progress(done)`` with the number of images done so
        far, or ``progress(done, note)`` to say beside the bar what takes the time (``""``
        clears it), e.g. while a simulation builds and no image is done yet. Calling it again
        with the same ``done`` redraws the bar, elapsed time included."""
        ...


#: The backends of ``qnn-ref``, by the name the commands use.
BACKENDS: dict[str, Backend] = {"litert": run_litert, "numpy": run_numpy}


@dataclass(frozen=True)
class OutputFile:
    """A file a command writes after printing its results, checked before the run."""

    #: The option that names it, for messages (``--vcd``).
    flag: str
    #: Where it goes.
    path: Path
    #: Writes it (called once, after the results are printed).
    write: Callable[[Path], None]


def run_backend(
    backend: Backend | StreamingBackend,
    model: Model,
    x: np.ndarray,
    *,
    rounding: Rounding,
    batch_size: int | None = None,
    bar: tqdm | None = None,
) -> Outputs:
    """Run a backend over ``x``, advancing a progress bar as images finish.

    A :class:`Backend` is called once per batch; a :class:`StreamingBackend` once with all.

    :param backend: The backend.
    :param model: The model.
    :param x: float32 ``[N, in_features]`` from :func:`qnn_ref.preprocess`.
    :param rounding: The LiteRT kernel path to run or to match.
    :param batch_size: Images per call of a :class:`Backend` (default: chunks of 1,000).
    :param bar: A progress bar from :func:`qnn_ref.clitools.progress`, or ``None``.
    :returns: The outputs of all ``N`` images.
    """

    def advance(done: int, note: str | None = None) -> None:
        if bar is not None:
            if note is not None:
                bar.set_postfix_str(note)  # redraws the bar, elapsed time too
            bar.update(max(0, done - bar.n))

    if isinstance(backend, StreamingBackend):
        return backend.run_all(model, x, rounding=rounding, progress=advance)
    step = batch_size or _DEFAULT_CHUNK
    parts = []
    for start in range(0, len(x), step):
        parts.append(backend(model, x[start : start + step], rounding=rounding))
        advance(start + len(parts[-1].predictions))
    return Outputs.concat(parts)


def run_inference(
    args: argparse.Namespace,
    backends: Mapping[str, Backend | StreamingBackend],
    *,
    stdout: TextIO | None = None,
    model: Model | None = None,
    titles: Mapping[str, str] | None = None,
    tables: bool = False,
    notes: Callable[[bool], list[str]] | None = None,
    files: tuple[OutputFile, ...] = (),
) -> int:
    """The whole inference command: options in, report out (``qnn-ref litert``, ``pyrtlnet infer``).

    Checks the options and output paths, reads the model, selects and preprocesses the images,
    runs every backend (with a progress bar each for many images), prints the report
    (:func:`~qnn_ref.clireport.report_single` for one image,
    :func:`~qnn_ref.clireport.report_many` for several) and, with several backends, whether they
    agree; then writes ``--dump`` (the first backend's outputs) and ``files``, one line each.

    :param args: Parsed options from :func:`add_inference_arguments`.
    :param backends: The backends to run, by name; the first is the reference.
    :param stdout: Where to print (default :data:`sys.stdout`).
    :param model: The model, if the caller has read ``args.model`` already.
    :param titles: How the agreement line writes each backend's name (``{"numpy": "NumPy"}``).
    :param tables: Also print a per-layer mismatch table for each backend after the first.
    :param notes: Lines to print after the report, given whether ``--quiet`` is set (pyrtlnet
        adds the hardware configuration and its cycle count).
    :param files: More files to write after the results (pyrtlnet's ``--vcd``).
    :returns: Exit status 0, or 1 if a backend differs from the first anywhere.
    :raises UsageError: for impossible options (see :func:`select_images`).
    :raises ModelError: if the model cannot be read or is not supported.
    :raises DataError: if the test set is missing or corrupt.
    """
    out = sys.stdout if stdout is None else stdout
    selection = select_images(args)
    for file in files:
        check_output_file(file.path, flag=file.flag)
    model = read_model(args.model) if model is None else model
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
    names = list(results)
    lines = []
    if not many:
        lines.append(
            prediction_line(selection, results)
            if args.quiet
            else report_single(
                model,
                selection,
                results,
                color=terminal.color_enabled(out),
                width=terminal.width(out),
            )
        )
    else:
        lines.append(
            report_many(model, selection, results, seconds=seconds, confusion=not args.quiet)
        )
    if tables:
        for name in names[1:]:
            pair = (results[names[0]], results[name])
            lines += ["", report_compare(selection, (names[0], name), pair)]
    extra = [] if notes is None else notes(args.quiet)
    if extra and not args.quiet:
        lines.append("")
    lines += extra
    agree = all(results[names[0]].diff(results[n]).identical for n in names[1:])
    if len(names) > 1:
        lines.append(agreement_line(results, titles=titles))
    print("\n".join(lines), file=out, flush=True)
    if getattr(args, "dump", None) is not None:
        first = results[names[0]]

        def dump(file: IO[bytes]) -> None:
            first.to_npz(file, labels=selection.labels, image_indices=selection.indices)  # type: ignore[arg-type]

        write_file(args.dump, dump)
        print(f"wrote {args.dump}", file=out)
    for file in files:
        file.write(file.path)
        print(f"wrote {file.path}", file=out)
    return 0 if agree else 1
