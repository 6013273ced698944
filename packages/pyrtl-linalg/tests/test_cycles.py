"""The cycle model: hand-checked values, its closed form, and its argument checks.

That the model equals the simulated hardware is checked where the hardware is simulated
(test_tiled.py, test_simulate.py).
"""

import doctest
import itertools
import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    FEED_LATENCY,
    PE_LATENCY,
    PIPELINE_LATENCY,
    TileSlot,
    Window,
    _cycles,
    tile_period,
    tile_schedule,
    tiled_matmul_cycles,
    window_rows,
)


def test_two_by_two_by_hand():
    # start (cycle 0), k = 2 feed cycles (1, 2), 3 cycles in the pipeline registers (the read
    # words, the edge operands, the products), then the result reaches the far corner and
    # drains in rows + cols - 1 = 3 more cycles: done in cycle 9.
    assert (FEED_LATENCY, PE_LATENCY, PIPELINE_LATENCY) == (2, 1, 3)
    assert tiled_matmul_cycles([(2, 2, 2)], rows=2, cols=2) == 9


def test_schedule_by_hand():
    # 3x5 @ 5x3 on a 2x2 array: 2 row tiles x 2 column tiles, period max(5, 2, 2) = 5.
    # A tile's column 0 drains rows + 3 cycles after its last element is read.
    slots = tile_schedule([(3, 5, 3)], rows=2, cols=2)
    assert slots == [
        TileSlot(0, 0, 0, 1, 5, 10, 11),
        TileSlot(0, 0, 1, 6, 10, 15, 16),
        TileSlot(0, 1, 0, 11, 15, 20, 21),
        TileSlot(0, 1, 1, 16, 20, 25, 26),
    ]
    assert tiled_matmul_cycles([(3, 5, 3)], rows=2, cols=2) == 27


def test_period_stalls_only_when_needed():
    assert tile_period(144, rows=4, cols=18) == 144
    assert tile_period(10, rows=4, cols=18) == 18
    assert tile_period(3, rows=5, cols=2) == 5


def test_second_job_waits_for_drain_and_sink():
    slots = tile_schedule([(1, 3, 2), (1, 2, 1)], rows=1, cols=2, sink_latency=2)
    first_job_drained = slots[0].drain_end
    assert slots[1].feed_start == first_job_drained + 1 + 2


shape = st.tuples(st.integers(1, 40), st.integers(1, 300), st.integers(1, 40))


@settings(max_examples=100, deadline=None)
@given(
    shapes=st.lists(shape, min_size=1, max_size=4),
    rows=st.integers(1, 32),
    cols=st.integers(1, 32),
    sink_latency=st.integers(0, 5),
)
def test_closed_form(shapes, rows, cols, sink_latency):
    gap = rows + cols - 1 + PIPELINE_LATENCY + sink_latency
    expected = 1 + sum(
        (math.ceil(m / rows) * math.ceil(n / cols) - 1) * max(k, rows, cols) + k + gap
        for m, k, n in shapes
    )
    got = tiled_matmul_cycles(shapes, rows=rows, cols=cols, sink_latency=sink_latency)
    assert got == expected
    slots = tile_schedule(shapes, rows=rows, cols=cols, sink_latency=sink_latency)
    # Tiles never overlap in the feed, and drains never overlap each other.
    for before, after in itertools.pairwise(slots):
        assert after.feed_start > before.feed_end
        assert after.drain_start > before.drain_end


def test_utilization_when_k_is_large():
    m, k, n, rows, cols = 16, 144, 18, 4, 6
    cycles = tiled_matmul_cycles([(m, k, n)], rows=rows, cols=cols)
    assert m * k * n / (rows * cols * cycles) >= 0.9


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"rows": 0, "cols": 1}, ValueError, "array rows must be a positive integer, not 0"),
        ({"rows": 1, "cols": 2.0}, TypeError, "array cols must be a positive integer, not 2.0"),
        ({"rows": True, "cols": 1}, TypeError, "array rows must be a positive integer, not True"),
        (
            {"rows": 1, "cols": 1, "sink_latency": -1},
            ValueError,
            "sink_latency must be a non-negative integer, not -1",
        ),
        (
            {"rows": 1, "cols": 1, "sink_latency": "1"},
            TypeError,
            "sink_latency must be a non-negative integer, not '1'",
        ),
    ],
)
def test_bad_array(kwargs, error, message):
    with pytest.raises(error, match=rf"^{message}$"):
        tiled_matmul_cycles([(1, 1, 1)], **kwargs)


def test_bad_shapes():
    with pytest.raises(ValueError, match=r"^job 1 k must be a positive integer, not 0$"):
        tiled_matmul_cycles([(1, 1, 1), (2, 0, 2)], rows=1, cols=1)
    with pytest.raises(ValueError, match=r"^shapes must hold at least one job$"):
        tiled_matmul_cycles([], rows=1, cols=1)


def test_windowed_job_by_hand():
    # 3 grids of 4x4x2 on a 2x3 array: 2 grid tiles; a 3x3 "valid" window has 4 positions, so
    # 8 row tiles (window_rows = 16) of 2 column tiles for n = 5, k = 3*3*2 = 18 = the period:
    # 1 + (16 - 1) * 18 + 18 + (2 + 3 - 1 + 3) = 296 cycles; row tile 5 is position 1 of grid
    # tile 1.
    window = Window(4, 4, 2, (3, 3))
    shape = (window_rows(3, 2, window), window.size, 5)
    assert shape == (16, 18, 5)
    assert tiled_matmul_cycles([shape], rows=2, cols=3) == 296
    slots = tile_schedule([shape], rows=2, cols=3)
    assert [(slot.m_tile, slot.n_tile) for slot in slots[10:12]] == [(5, 0), (5, 1)]


def test_doctests():
    assert doctest.testmod(_cycles, raise_on_error=False).failed == 0
