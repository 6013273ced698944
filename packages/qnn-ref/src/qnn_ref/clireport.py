"""What the inference commands print: one image in detail, a summary of many, compare tables.

Every function returns text and prints nothing; each takes the outputs of several backends by
name, the first being the reference the others are compared with (:meth:`qnn_ref.Outputs.diff`).
"""

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from . import terminal
from ._model import Model
from ._numpy import Outputs, OutputsDiff
from .clitools import plural

__all__ = [
    "Selection",
    "agreement_line",
    "prediction_line",
    "report_compare",
    "report_many",
    "report_single",
]

#: Characters per int8 value in the single-image view (``" -128"``).
_VALUE_WIDTH = 5


@dataclass(frozen=True)
class Selection:
    """The test images a command runs on."""

    #: uint8 ``[N, 28, 28]``.
    images: np.ndarray
    #: uint8 ``[N]``.
    labels: np.ndarray
    #: int64 ``[N]``: indices of the images in the MNIST test set.
    indices: np.ndarray

    def describe(self) -> str:
        """``"1 MNIST test image (7)"`` or ``"300 MNIST test images (100 to 399)"``."""
        first, last = int(self.indices[0]), int(self.indices[-1])
        where = f"{first:,}" if first == last else f"{first:,} to {last:,}"
        return f"{plural(len(self.indices), 'MNIST test image')} ({where})"


def _describe_layer(model: Model, i: int) -> str:
    """``layer0 (CONV_2D 3x3/1 SAME 14x14x1 -> 14x14x8 RELU, per-channel weights)``."""
    return f"layer{i} ({model.layers[i].describe()})"


def _format_vector(values: np.ndarray, per_row: int) -> list[str]:
    """int8 values, :data:`_VALUE_WIDTH` columns each, ``per_row`` to a line."""
    text = [f"{int(v):{_VALUE_WIDTH}d}" for v in values]
    return ["".join(text[i : i + per_row]) for i in range(0, len(text), per_row)]


def _dequantized_input(model: Model, q: np.ndarray) -> np.ndarray:
    """The int8 input as the model sees it, as a [h, w] image in [0, 1]."""
    values = (q.astype(np.float64) - model.input_zero_point) * model.input_scale
    return np.clip(values, 0.0, 1.0).reshape(model.input_shape)


def report_single(
    model: Model,
    selection: Selection,
    outputs: Mapping[str, Outputs],
    *,
    color: bool,
    width: int = terminal.DEFAULT_WIDTH,
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
    :param width: Characters per line: rows of int8 values wrap to it (at least one value a
        row). A convolution's ``(height, width, channels)`` output is shown flattened in that
        order, LiteRT's layout.
    :returns: The report's lines, no trailing newline.
    """
    index = int(selection.indices[0])
    names = list(outputs)
    first = outputs[names[0]]
    rows, columns = model.input_shape
    picture = terminal.side_by_side(
        [
            f"MNIST test image {index}\n" + terminal.render_digit(selection.images[0], color=color),
            f"int8 input ({rows}x{columns})\n"
            + terminal.render_digit(_dequantized_input(model, first.input[0]), color=color),
        ]
    )
    lines = [picture, ""]
    name_width = max(len(n) for n in names)
    indent = 2 + name_width + 1  # "  name " in front of every row
    per_row = max(1, (width - indent) // _VALUE_WIDTH)
    mark = " " * (_VALUE_WIDTH - 1) + "^"
    for i in range(len(model.layers) - 1):
        lines.append(f"{_describe_layer(model, i)} int8 outputs:")
        reference = first.layers[i][0].reshape(-1)
        for name in names:
            values = outputs[name].layers[i][0].reshape(-1)
            marks = "".join(mark if d else " " * _VALUE_WIDTH for d in values != reference)
            for j, row in enumerate(_format_vector(values, per_row)):
                lines.append(f"  {name if j == 0 else '':<{name_width}} {row}")
                span = _VALUE_WIDTH * per_row
                row_marks = marks[j * span : (j + 1) * span].rstrip()
                if row_marks:
                    lines.append(f"  {'':<{name_width}} {row_marks}")
        lines.append("")
    last = len(model.layers) - 1
    logits = first.layers[last][0]
    others = names[1:]
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
    lines.append(prediction_line(selection, outputs))
    return "\n".join(lines)


def prediction_line(selection: Selection, outputs: Mapping[str, Outputs]) -> str:
    """``image 0: label 7; predicted: litert 7 (right)``, one entry per backend."""
    label = int(selection.labels[0])
    predictions = ", ".join(
        f"{name} {int(o.predictions[0])} ({'right' if o.predictions[0] == label else 'wrong'})"
        for name, o in outputs.items()
    )
    return f"image {int(selection.indices[0])}: label {label}; predicted: {predictions}"


def _accuracy_line(name: str, predictions: np.ndarray, labels: np.ndarray) -> str:
    right = int(np.sum(predictions == labels))
    return f"{name} accuracy: {right / len(labels):.2%} ({right:,}/{len(labels):,})"


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
    lines = [f"{selection.describe()}, model {model.path.name}"]
    names = list(outputs)
    for name in names:
        line = _accuracy_line(name, outputs[name].predictions, selection.labels)
        if seconds is not None and name in seconds:
            line += f", {count / max(seconds[name], 1e-9):,.0f} images/s"
        lines.append(line)
    for name in names[1:]:
        diff = outputs[names[0]].diff(outputs[name])
        lines.append(
            f"{name} vs {names[0]}: "
            + ("identical in every layer" if diff.identical else f"{diff.values:,} values differ")
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


def _diff_table(diff: OutputsDiff) -> str:
    return terminal.table(
        ["array", "shape", "values differing", "images differing", "max |difference|"],
        [
            (row.name, "x".join(map(str, row.shape)), row.values, row.images, row.largest)
            for row in diff.arrays
        ],
    )


def report_compare(
    selection: Selection, names: tuple[str, str], outputs: tuple[Outputs, Outputs]
) -> str:
    """The per-layer mismatch table and both accuracies of a two-backend comparison.

    :param selection: The images.
    :param names: The two backends' names.
    :param outputs: Their outputs.
    :returns: The report's lines, no trailing newline.
    """
    diff = outputs[0].diff(outputs[1])
    lines = [
        f"{names[1]} vs {names[0]} on {selection.describe()}:",
        _diff_table(diff),
        "",
        *(
            _accuracy_line(n, o.predictions, selection.labels)
            for n, o in zip(names, outputs, strict=True)
        ),
        "result: identical in every layer"
        if diff.identical
        else f"result: MISMATCH ({diff.values:,} values differ)",
    ]
    return "\n".join(lines)


def agreement_line(
    outputs: Mapping[str, Outputs], *, titles: Mapping[str, str] | None = None
) -> str:
    """One line: whether every backend agrees with the first in every layer of every image.

    ``agreement: PyRTL, LiteRT and NumPy are identical in every layer (240 images, 0 differ)``,
    or ``agreement: MISMATCH, images differing from PyRTL in some layer: LiteRT 3, NumPy 0``.

    :param outputs: Two or more backends' outputs, by name; the first is the reference.
    :param titles: How to write each name (default: the name itself).
    """
    names = list(outputs)
    title = {n: n for n in names} | dict(titles or {})
    first = outputs[names[0]]
    differing = {n: int(first.diff(outputs[n]).images.sum()) for n in names[1:]}
    count = len(first.predictions)
    if not any(differing.values()):
        together = f"{', '.join(title[n] for n in names[:-1])} and {title[names[-1]]}"
        images = f" ({count:,} images, 0 differ)" if count > 1 else ""
        return f"agreement: {together} are identical in every layer{images}"
    counts = ", ".join(f"{title[n]} {c:,}" for n, c in differing.items())
    return f"agreement: MISMATCH, images differing from {title[names[0]]} in some layer: {counts}"
