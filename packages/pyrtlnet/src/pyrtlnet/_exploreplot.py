"""The design-space plot: images per second against area, one panel per flow, Pareto front marked.

Areas of different flows count different cells (7-series LUTs, iCE40 LUT4, generic gates), so
each flow gets its own panel and its own front. An axis is logarithmic where its values span
more than a factor of 10 (a sweep from one multiply-accumulate element to hundreds), linear
otherwise, with plain numbers on the ticks. Labels go where they cover no other label and no
point, tried at a few offsets around each point in turn (see :func:`_place_labels`), so that
dense sweeps stay readable. Needs matplotlib (the ``explore`` extra).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import IO, Any

from ._explore import AREA_UNITS, DesignPoint

__all__ = ["plot_design_space"]

#: Where a point's label may go, in points from the point, tried in this order.
_LABEL_OFFSETS = [(dx, dy) for dy in (2, -18, 14, -30, 26, -42) for dx in (4, -4)]

#: Matplotlib's default colour cycle ``C0``..``C9``, named for the title.
_COLOURS = ("blue", "orange", "green", "red", "purple", "brown", "pink", "grey", "olive", "cyan")

_Box = tuple[float, float, float, float]


def _overlap(box: Any, others: list[_Box]) -> float:
    return sum(
        max(0.0, min(box.x1, x1) - max(box.x0, x0)) * max(0.0, min(box.y1, y1) - max(box.y0, y0))
        for x0, y0, x1, y1 in others
    )


def _place_labels(figure: Any, axis: Any, labels: list[tuple[str, float, float]]) -> None:
    """Annotate each point at the first offset where its label covers no label already placed
    and no point (or, failing that, where it covers least)."""
    renderer = figure.canvas.get_renderer()
    points = [axis.transData.transform((x, y)) for _, x, y in labels]
    boxes: list[_Box] = [(px - 4, py - 4, px + 4, py + 4) for px, py in points]
    for text, x, y in labels:
        best = None  # (overlap, annotation): the candidate kept so far
        for dx, dy in _LABEL_OFFSETS:
            note = axis.annotate(
                text,
                (x, y),
                xytext=(dx, dy),
                textcoords="offset points",
                fontsize=7,
                horizontalalignment="left" if dx > 0 else "right",
            )
            cost = _overlap(note.get_window_extent(renderer), boxes)
            if best is None or cost < best[0]:
                if best is not None:
                    best[1].remove()
                best = (cost, note)
            else:
                note.remove()
            if cost == 0:
                break
        assert best is not None
        box = best[1].get_window_extent(renderer)
        boxes.append((box.x0, box.y0, box.x1, box.y1))


def _scale(axis: Any, set_scale: Any, values: list[Any], *, dense_decades: float) -> str:
    """A logarithmic axis where the (positive) values span more than a factor of 10, else a
    linear one, with plain tick labels (``2,000``, not ``2 x 10^3``); returns ``", log"`` or
    ``""``. Log ticks are at 1, 2 and 5 times powers of ten while the values span at most
    ``dense_decades`` decades, at powers of ten alone beyond (where labels would collide)."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda value, _: f"{value:,.0f}")
    if not values or min(values) <= 0 or max(values) <= 10 * min(values):
        axis.set_major_formatter(plain)
        return ""
    set_scale("log")
    dense = math.log10(max(values) / min(values)) <= dense_decades
    axis.set_major_locator(LogLocator(base=10, subs=(1.0, 2.0, 5.0) if dense else (1.0,)))
    axis.set_major_formatter(plain)
    axis.set_minor_formatter(NullFormatter())
    return ", log"


def _padded(values: Sequence[float], margin: float, *, log: bool) -> tuple[float, float]:
    """Axis limits holding ``values`` with ``margin`` of their span added on each side (of
    their logarithms' span on a log axis); a single value gets a span of 10% of itself."""
    low, high = float(min(values)), float(max(values))
    if log:
        ratio = (high / low) ** margin
        return low / ratio, high * ratio
    span = high - low or abs(high) * 0.1 or 1.0
    # Areas and rates are never negative: the axis need not reach below 0 for the labels.
    bottom = low - margin * span
    return max(bottom, 0.0) if low >= 0 else bottom, high + margin * span


def _round_ticks(low: float, high: float) -> list[float]:
    """Tick places on a linear axis from ``low`` to ``high``: the multiples of the smallest
    step of 1, 2 or 5 times a power of ten that fits at most five times in the span (so two
    to six ticks).

    >>> _round_ticks(0.0, 9_797.0)
    [0.0, 2000.0, 4000.0, 6000.0, 8000.0]
    """
    span = high - low
    power = 10.0 ** math.floor(math.log10(span / 5))
    step = next(m * power for m in (1, 2, 5, 10) if span / (m * power) <= 5)
    digits = max(0, -math.floor(math.log10(step)))  # 0.2 * 3 is 0.6000000000000001
    return [
        round(k * step, digits) for k in range(math.ceil(low / step), math.floor(high / step) + 1)
    ]


def plot_design_space(
    points: Sequence[DesignPoint],
    front: Sequence[bool],
    file: IO[bytes],
    *,
    title: str,
    references: Mapping[str, tuple[str, float, float]] | None = None,
) -> None:
    """Draw images/s against area for every point, one panel per flow, and save it as PNG.

    Front points are filled circles joined by a step line (the best speed for each area
    budget), dominated points crosses; colours tell the batch sizes apart. Designs that do not
    fit their target have no area and are left out.

    :param points: from :func:`~pyrtlnet.explore`.
    :param front: one Pareto flag per point (:func:`~pyrtlnet.pareto_points`).
    :param file: where the PNG goes (a binary file).
    :param title: above the panels.
    :param references: ``label -> (flow, area, images/s)``: points measured elsewhere (e.g. a
        baseline design), drawn as red stars in their flow's panel.
    :raises ImportError: if matplotlib is not installed.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import FixedLocator

    flows = list(dict.fromkeys(p.flow for p in points if p.area is not None))
    batches = sorted({p.configuration.batch_size for p in points})
    figure, axes = plt.subplots(1, len(flows), figsize=(5.5 * len(flows), 4.4), squeeze=False)
    placements = []
    for axis, flow in zip(axes[0], flows, strict=True):
        labels = []
        mine = [
            (p, on)
            for p, on in zip(points, front, strict=True)
            if p.flow == flow and p.area is not None  # a design that does not fit: no area
        ]
        for point, on_front in mine:
            axis.scatter(
                point.area,
                point.images_per_second,
                marker="o" if on_front else "x",
                color=f"C{batches.index(point.configuration.batch_size) % 10}",
                zorder=3,
            )
            name = point.configuration.name.replace(", ", "\n")
            labels.append((name, point.area, point.images_per_second))
        steps = sorted((p.area, p.images_per_second) for p, on in mine if on)
        if steps:
            axis.step(*zip(*steps, strict=True), where="post", color="grey", linewidth=0.8)
        for label, (where, area, speed) in (references or {}).items():
            if where == flow:
                axis.scatter(area, speed, marker="*", s=120, color="C3", zorder=3)
                labels.append((label, area, speed))
        nominal = sorted({p.clock_mhz for p, _ in mine if not p.routed})
        clock = ", ".join(f"{c:g} MHz" for c in nominal) or "the routed Fmax"
        values = [(x, y) for _, x, y in labels]  # the points and the references
        # Side by side, x labels collide sooner than stacked y labels.
        x_log = _scale(axis.xaxis, axis.set_xscale, [v[0] for v in values], dense_decades=1)
        y_log = _scale(axis.yaxis, axis.set_yscale, [v[1] for v in values], dense_decades=2)
        # Room for the labels of the outermost points, set from the values themselves rather
        # than by autoscaling (which once gave a full test session NaN limits).
        x_limits = _padded([v[0] for v in values], 0.25, log=bool(x_log))
        y_limits = _padded([v[1] for v in values], 0.15, log=bool(y_log))
        axis.set_xlim(*x_limits)
        axis.set_ylim(*y_limits)
        # Ticks at fixed places on a linear axis: matplotlib's automatic locator once divided
        # by a NaN step in a long test session and failed the whole plot.
        if not x_log:
            axis.xaxis.set_major_locator(FixedLocator(_round_ticks(*x_limits)))
        if not y_log:
            axis.yaxis.set_major_locator(FixedLocator(_round_ticks(*y_limits)))
        axis.set_xlabel(f"{AREA_UNITS[flow]} ({flow}{x_log})")
        axis.set_ylabel(f"images/s at {clock}{y_log}")
        axis.grid(True, which="both", linewidth=0.3)
        placements.append((axis, labels))
    legend = ", ".join(f"{_COLOURS[i % 10]} batch {b}" for i, b in enumerate(batches))
    figure.suptitle(f"{title}\n{legend}; o Pareto front, x dominated", fontsize=10)
    figure.tight_layout()
    for axis, labels in placements:  # once the layout is final, so pixels stay where they are
        _place_labels(figure, axis, labels)
    figure.savefig(file, format="png", dpi=110)
    plt.close(figure)
