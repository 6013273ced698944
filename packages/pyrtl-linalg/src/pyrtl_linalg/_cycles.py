"""The exact cycle model of the tiled systolic matrix multiplier, in pure Python.

The hardware in :mod:`pyrtl_linalg._tiled` is fully deterministic: which tile is in the array in
which cycle depends only on the job shapes, the array size and the sink latency. This module
computes that schedule without building anything, so callers can size buffers, quote latencies
and check the simulation against it (the tests do, for every case they simulate).

Shapes are ``(m, k, n)`` of plain products. A job that reads its ``A`` operand as the patches
of a :class:`~pyrtl_linalg.Window` runs exactly like a plain job of
:func:`window_rows` rows: pass ``(window_rows(m, rows, window), window.size, n)``. A run of an
engine with pauses is the sum of the runs of its segments.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from ._systolic import PE_LATENCY
from ._validate import non_negative_int, positive_int
from ._window import Window

__all__ = [
    "FEED_LATENCY",
    "PIPELINE_LATENCY",
    "TileSlot",
    "tile_period",
    "tile_schedule",
    "tiled_matmul_cycles",
    "window_rows",
]

#: Register stages of the engine between reading a tile element (its addresses in the address
#: registers) and the element entering the array's corner: the memories' read words (block RAM
#: outputs end in a register), then the edge operands after the operand select and the
#: zero-point subtraction.
FEED_LATENCY = 2

#: Cycles a result spends in pipeline registers on its way from the memories to the drain,
#: beyond the array's own ``rows - 1`` cycles of travel: :data:`FEED_LATENCY` plus the PE's
#: product register (:data:`~pyrtl_linalg.PE_LATENCY`).
PIPELINE_LATENCY = FEED_LATENCY + PE_LATENCY


@dataclass(frozen=True)
class TileSlot:
    """When one output tile of one job occupies the array (all cycles counted from ``start``).

    :param job: index of the job in the sequence.
    :param m_tile: row tile (rows ``m_tile*rows ...`` of the job's result).
    :param n_tile: column tile (columns ``n_tile*cols ...`` of the job's result).
    :param feed_start: cycle in which element ``k = 0`` of the tile is read (its addresses are
        in the engine's address registers); it enters the array's corner
        :data:`FEED_LATENCY` cycles later.
    :param feed_end: cycle in which element ``k = K-1`` is read.
    :param drain_start: cycle in which the tile's column 0 is on the output stream.
    :param drain_end: cycle in which its last physical column (``cols - 1``) is on the stream.
    """

    job: int
    m_tile: int
    n_tile: int
    feed_start: int
    feed_end: int
    drain_start: int
    drain_end: int


def tile_period(k: int, *, rows: int, cols: int) -> int:
    """Cycles between the starts of two consecutive tiles of one job: ``max(k, rows, cols)``.

    ``k`` cycles stream a tile's operands; the drain of a tile's results takes ``cols`` cycles
    (one column per cycle) and must finish before the next tile's results replace them; and
    row 0 of the array finishes a tile ``rows - 1`` cycles before the last row, so its shadow
    register may only be overwritten ``rows`` cycles after it was filled.

    :param k: the inner dimension of the job.
    :param rows: physical rows of the array.
    :param cols: physical columns of the array.
    :returns: the period in cycles.
    """
    return max(k, rows, cols)


def window_rows(m: int, rows: int, window: Window) -> int:
    """The ``m`` of the plain job a windowed job is timed as: ``ceil(m/rows) * rows *
    window.positions``.

    A windowed job over ``m`` grids has ``ceil(m/rows)`` grid tiles of ``window.positions`` row
    tiles each (one per window position), every row tile full: that many rows of ``rows``.

    >>> window_rows(3, 2, Window(4, 4, 1, (3, 3)))  # 2 grid tiles x 4 positions x 2 rows
    16

    :param m: grids the job reads.
    :param rows: physical rows of the array.
    :param window: the job's window.
    :returns: the rows to pass as ``m`` to :func:`tiled_matmul_cycles` or
        :func:`tile_schedule`.
    """
    m = positive_int("m", m)
    rows = positive_int("array rows", rows)
    if not isinstance(window, Window):
        raise TypeError(f"window must be a Window, not {type(window).__name__}")
    return math.ceil(m / rows) * rows * window.positions


def tile_schedule(
    shapes: Sequence[tuple[int, int, int]], *, rows: int, cols: int, sink_latency: int = 0
) -> list[TileSlot]:
    """The schedule of every tile of every job, in the order the hardware runs them.

    Jobs run in order; inside a job the row tiles are the outer loop and the column tiles the
    inner loop. Cycle 0 is the cycle in which ``start`` is sampled high; the first tile's
    feed starts in cycle 1. A tile's last element is read in ``feed_end``, reaches the corner
    :data:`FEED_LATENCY` cycles later, the last row ``rows - 1`` cycles after that and its
    accumulator :data:`~pyrtl_linalg.PE_LATENCY` cycles after that, so column 0 drains in
    ``feed_end + rows + L`` (``L =`` :data:`PIPELINE_LATENCY`), one column per cycle::

        cycle:   f       f+1     f+2     f+3      f+4 ...           (rows = 1, L = 3)
        read     e(K-1)  .       .       .
        corner   .       .       e(K-1)  .                          (FEED_LATENCY = 2)
        product  .       .       .       p(K-1)                     (PE_LATENCY = 1)
        drain    .       .       .       .        col 0, col 1, ...

    :param shapes: ``(m, k, n)`` of each job (``(m, k) @ (k, n)``).
    :param rows: physical rows of the array.
    :param cols: physical columns of the array.
    :param sink_latency: register stages between the drained output and the memory the next
        job reads (0: the caller writes a drained column in the cycle it appears).
    :returns: one :class:`TileSlot` per tile.
    """
    rows = positive_int("array rows", rows)
    cols = positive_int("array cols", cols)
    sink_latency = non_negative_int("sink_latency", sink_latency)
    gap = rows + cols - 1 + PIPELINE_LATENCY + sink_latency
    slots: list[TileSlot] = []
    cycle = 1
    for job, (m, k, n) in enumerate(shapes):
        for name, value in (("m", m), ("k", k), ("n", n)):
            positive_int(f"job {job} {name}", value)
        period = tile_period(k, rows=rows, cols=cols)
        tiles = [(mt, nt) for mt in range(math.ceil(m / rows)) for nt in range(math.ceil(n / cols))]
        for index, (mt, nt) in enumerate(tiles):
            feed_end = cycle + k - 1
            drain_start = feed_end + rows + PIPELINE_LATENCY
            slots.append(
                TileSlot(job, mt, nt, cycle, feed_end, drain_start, drain_start + cols - 1)
            )
            cycle = feed_end + 1 + (period - k if index + 1 < len(tiles) else gap)
    return slots


def tiled_matmul_cycles(
    shapes: Sequence[tuple[int, int, int]], *, rows: int, cols: int, sink_latency: int = 0
) -> int:
    """Exact cycles from ``start`` (cycle 0) to ``done`` for a sequence of jobs.

    With ``T_j = ceil(m_j/rows) * ceil(n_j/cols)`` tiles, period
    ``P_j = max(k_j, rows, cols)`` and gap ``G = rows + cols - 1 + L + sink_latency``
    (``L =`` :data:`PIPELINE_LATENCY` ``= 3``)::

        cycles = 1 + sum over jobs j of ((T_j - 1) * P_j + k_j + G)

    The ``1`` is the cycle that samples ``start``; ``(T_j - 1) * P_j + k_j`` cycles stream the
    job's tiles; ``G`` cycles let the last tile's results pass the pipeline registers (``L``
    cycles), travel to the far corner (``rows - 1`` cycles), drain (``cols`` cycles) and reach
    the sink (``sink_latency``).

    :param shapes: ``(m, k, n)`` of each job.
    :param rows: physical rows of the array.
    :param cols: physical columns of the array.
    :param sink_latency: see :func:`tile_schedule`.
    :returns: the cycle in which ``done`` is high, counting the ``start`` cycle as 0.
    """
    slots = tile_schedule(shapes, rows=rows, cols=cols, sink_latency=sink_latency)
    if not slots:
        raise ValueError("shapes must hold at least one job")
    return slots[-1].feed_end + rows + cols + PIPELINE_LATENCY + sink_latency
