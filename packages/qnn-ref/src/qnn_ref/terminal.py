"""Text rendering for the command-line tools: digits, bar charts and tables.

Every function returns a string and prints nothing, so the CLIs of qnn-ref and pyrtlnet decide
where output goes, and tests compare strings. Colour is a parameter; :func:`color_enabled` is
the one rule for choosing it: 24-bit colour and Unicode blocks on a terminal, plain ASCII when
the ``NO_COLOR`` environment variable is set (see https://no-color.org) or output is redirected.
"""

import os
import re
import textwrap
from collections.abc import Sequence
from typing import TextIO

import numpy as np

__all__ = [
    "DEFAULT_WIDTH",
    "bar_chart",
    "color_enabled",
    "render_digit",
    "side_by_side",
    "table",
    "visible_width",
    "width",
]

#: Characters per line assumed when the output is not a terminal (a pipe, a file, a test).
DEFAULT_WIDTH = 80

#: ASCII shades from background to ink, for the plain rendering of a digit.
_RAMP = " .:-=+*#%@"
_ANSI = re.compile(r"\x1b\[[0-9;]*m")
_RESET = "\x1b[0m"
_HIGHLIGHT = "\x1b[38;2;80;220;100m"


def width(stream: TextIO) -> int:
    """Characters per line on ``stream``: ``COLUMNS`` if set, else the terminal's width.

    A stream that is not a terminal gets :data:`DEFAULT_WIDTH`, so piped output does not
    depend on the window it was started from.

    :param stream: Where the output goes, e.g. :data:`sys.stdout`.
    """
    columns = os.environ.get("COLUMNS", "")
    if columns.isdigit() and int(columns) > 0:
        return int(columns)
    isatty = getattr(stream, "isatty", None)
    if isatty and isatty():
        try:
            return os.get_terminal_size(stream.fileno()).columns
        except (OSError, ValueError):
            pass
    return DEFAULT_WIDTH


def color_enabled(stream: TextIO) -> bool:
    """Whether to draw in colour on ``stream``: a terminal, and ``NO_COLOR`` unset or empty.

    :param stream: Where the output goes, e.g. :data:`sys.stdout`.
    """
    if os.environ.get("NO_COLOR", ""):
        return False
    isatty = getattr(stream, "isatty", None)
    return bool(isatty and isatty())


def _grey_levels(image: np.ndarray) -> np.ndarray:
    """``image`` as integer grey levels 0–255 (uint8 as is, floats in [0, 1] scaled)."""
    image = np.asarray(image)
    if image.ndim != 2:
        raise ValueError(f"image must be a 2-D array, not of shape {list(image.shape)}")
    if image.dtype.kind == "f":
        return np.clip(np.rint(image * 255), 0, 255).astype(np.int64)
    if image.dtype == np.uint8:
        return image.astype(np.int64)
    raise ValueError(f"image must be uint8 (0-255) or float (0-1), not {image.dtype}")


def render_digit(image: np.ndarray, *, color: bool = False) -> str:
    """Draw a greyscale image (ink bright, background dark) as terminal text.

    In colour, each character is a Unicode upper half block whose foreground is one pixel and
    whose background is the pixel below it, in 24-bit colour: a 28×28 image takes 28 columns
    and 14 lines. Without colour, each pixel is two ASCII characters from a ten-step ramp
    (``" .:-=+*#%@"``), so a 28×28 image takes 56 columns and 28 lines and stays roughly square.

    :param image: ``[height, width]``, uint8 0–255 or float 0–1.
    :param color: 24-bit colour half blocks if true, plain ASCII if false.
    :returns: The lines of the picture joined by newlines, with no trailing newline.
    :raises ValueError: if ``image`` is not 2-D uint8 or float.
    """
    levels = _grey_levels(image)
    if not color:
        shades = np.array(list(_RAMP))[levels * len(_RAMP) // 256]
        return "\n".join("".join(2 * s for s in row) for row in shades)
    if len(levels) % 2:
        levels = np.vstack([levels, np.zeros((1, levels.shape[1]), np.int64)])
    lines = []
    for top, bottom in zip(levels[0::2], levels[1::2], strict=True):
        cells = (
            f"\x1b[38;2;{t};{t};{t}m\x1b[48;2;{b};{b};{b}m▀"
            for t, b in zip(top, bottom, strict=True)
        )
        lines.append("".join(cells) + _RESET)
    return "\n".join(lines)


def bar_chart(
    values: Sequence[float] | np.ndarray,
    *,
    labels: Sequence[str] | None = None,
    notes: Sequence[str] | None = None,
    highlight: int | None = None,
    width: int = 32,
    color: bool = False,
) -> str:
    """A horizontal bar chart, one line per value, bars measured from the smallest value.

    Bars start at ``min(min(values), 0)`` so negative values (int8 logits) still get a visible
    bar ordered like the values; every line ends with the value itself and its note.

    :param values: The numbers to chart.
    :param labels: One label per value (default: the indices).
    :param notes: One extra text per value, written after the value (e.g. other backends'
        values).
    :param highlight: Index of a bar to mark with ``<`` (and green in colour), e.g. the
        prediction.
    :param width: Length in characters of the longest bar.
    :param color: Unicode blocks (and a green highlight) if true, ``#`` characters if false.
    :returns: The chart's lines joined by newlines, with no trailing newline.
    :raises ValueError: if ``labels`` or ``notes`` has a different length from ``values``.
    """
    values = np.asarray(values, dtype=np.float64)
    count = len(values)
    labels = [str(i) for i in range(count)] if labels is None else list(labels)
    notes = [""] * count if notes is None else list(notes)
    if len(labels) != count or len(notes) != count:
        raise ValueError(
            f"bar chart needs one label and one note per value: {count} values, "
            f"{len(labels)} labels, {len(notes)} notes"
        )
    if count == 0:
        return ""
    low = min(float(values.min()), 0.0)
    span = max(float(values.max()) - low, 1e-12)
    label_width = max(len(label) for label in labels)
    texts = [f"{v:g}" for v in values]
    value_width = max(len(t) for t in texts)
    lines = []
    for i, (value, label, text, note) in enumerate(zip(values, labels, texts, notes, strict=True)):
        length = round((value - low) / span * width)
        bar = ("█" if color else "#") * length
        marked = i == highlight
        if color and marked:
            bar = f"{_HIGHLIGHT}{bar}{_RESET}"
        line = (
            f"{label:>{label_width}} |{bar}{' ' * (width - length)} {text:>{value_width}}"
            f"{' <' if marked else '  '}{' ' + note if note else ''}"
        )
        lines.append(line.rstrip())
    return "\n".join(lines)


def table(
    headers: Sequence[str],
    rows: Sequence[Sequence[object]],
    *,
    align: str = "",
    width: int | None = None,
) -> str:
    """A plain-text table with a header row and a ruler, columns padded to fit.

    :param headers: Column titles.
    :param rows: Cells, converted with :func:`str`.
    :param align: One character per column, ``l`` or ``r``; columns not given are left-aligned
        if their first cell is text, right-aligned if it is a number.
    :param width: Characters per line at most (e.g. :func:`width` of the stream). A wider table
        wraps its left-aligned (text) columns at spaces and after the ``..`` of a range,
        narrowing the widest first but none below its longest word, so a row may take several
        lines; numbers never wrap. ``None``: no limit.
    :returns: The table's lines joined by newlines, with no trailing newline.
    :raises ValueError: if a row has a different number of cells from ``headers``.
    """
    for row in rows:
        if len(row) != len(headers):
            raise ValueError(
                f"table row has {len(row)} cells, not {len(headers)} like the header: {list(row)}"
            )
    cells = [[str(c) for c in row] for row in rows]
    widths = [max([len(h), *(len(r[j]) for r in cells)]) for j, h in enumerate(headers)]
    sides = []
    for j in range(len(headers)):
        if j < len(align):
            sides.append(align[j])
        else:
            first = rows[0][j] if rows else ""
            numeric = isinstance(first, int | float | np.number) and not isinstance(first, bool)
            sides.append("r" if numeric else "l")
    if width is not None:
        _narrow(widths, [list(headers), *cells], sides, width)

    def lines(texts: Sequence[str]) -> list[str]:
        """One row: a line per wrapped line of its tallest cell."""
        parts = [
            _CellWrapper(w).wrap(t) or [""] if side == "l" else [t]
            for t, w, side in zip(texts, widths, sides, strict=True)
        ]
        height = max(len(p) for p in parts)
        parts = [p + [""] * (height - len(p)) for p in parts]
        return [
            "  ".join(
                t.rjust(w) if side == "r" else t.ljust(w)
                for t, w, side in zip(texts, widths, sides, strict=True)
            ).rstrip()
            for texts in zip(*parts, strict=True)
        ]

    ruler = "  ".join("-" * w for w in widths)
    return "\n".join([*lines(headers), ruler, *(line for r in cells for line in lines(r))])


class _CellWrapper(textwrap.TextWrapper):
    """Wraps a table cell at spaces and after the ``..`` of a range (``0.007..0.014``, which
    reads as well split over two lines); never inside a word."""

    wordsep_simple_re = re.compile(r"(\s+|(?<=\.\.))")

    def __init__(self, width: int) -> None:
        super().__init__(width, break_long_words=False, break_on_hyphens=False)

    @classmethod
    def words(cls, text: str) -> list[str]:
        """The pieces a line break may separate."""
        return [w for w in cls.wordsep_simple_re.split(text) if w and not w.isspace()]


def _narrow(widths: list[int], table: list[list[str]], sides: list[str], limit: int) -> None:
    """Narrow the text columns of ``widths`` in place, the widest first, until the table's
    lines (columns two spaces apart) fit in ``limit`` or every text column is down to its
    longest word."""
    floors = [
        max((len(word) for row in table for word in _CellWrapper.words(row[j])), default=1)
        if side == "l"
        else widths[j]
        for j, side in enumerate(sides)
    ]
    total = sum(widths) + 2 * (len(widths) - 1)
    while total > limit:
        narrowable = [j for j in range(len(widths)) if widths[j] > floors[j]]
        if not narrowable:
            return
        widest = max(narrowable, key=lambda j: widths[j])
        widths[widest] -= 1
        total -= 1


def visible_width(text: str) -> int:
    """Width in columns of the widest line of ``text``, ignoring ANSI colour codes."""
    return max((len(_ANSI.sub("", line)) for line in text.split("\n")), default=0)


def side_by_side(blocks: Sequence[str], *, gap: int = 4) -> str:
    """Put multi-line texts next to each other, top-aligned, ``gap`` spaces apart.

    :param blocks: The texts (e.g. :func:`render_digit` pictures), colour codes allowed.
    :param gap: Spaces between neighbouring blocks.
    :returns: The combined lines joined by newlines, trailing spaces removed.
    """
    columns = [block.split("\n") for block in blocks]
    widths = [visible_width(block) for block in blocks]
    height = max((len(c) for c in columns), default=0)
    lines = []
    for i in range(height):
        parts = []
        for column, width in zip(columns, widths, strict=True):
            text = column[i] if i < len(column) else ""
            parts.append(text + " " * (width - len(_ANSI.sub("", text))))
        lines.append((" " * gap).join(parts).rstrip())
    return "\n".join(lines)
