"""Windowed jobs: patches of grids streamed into the engine, against NumPy's patch matrices.

Each case is a chain of jobs on one engine: job 0 reads grids (or a matrix) from an input
memory, every later job reads what a test-side sink wrote from the previous job's stream (its
low 8 bits, at ``m_tile * n + column``), so a windowed job after another one only computes the
right thing if the result layout is the grid layout the next window reads. The expected values
come from :meth:`Window.patches` and NumPy products; the cycles and the stream's tags from the
cycle model (:func:`tile_schedule` with :func:`window_rows`), segment by segment when the engine
pauses.
"""

import itertools
import math
from dataclasses import dataclass

import numpy as np
import pyrtl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    MatmulJob,
    Window,
    make_simulation,
    make_tiled_matmul,
    pack_a,
    pack_b,
    tile_schedule,
    tiled_matmul_cycles,
    unpack_a,
    window_rows,
)


def wrap(x, bits=8):
    """What the test sink stores: the low `bits` bits, read back as signed."""
    return (x + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


def addr_bits(words):
    return max(1, (words - 1).bit_length())


@dataclass
class Spec:
    """One job of a chain: ``k`` inputs per row (or the window), ``n`` outputs."""

    k: int
    n: int
    window: Window | None = None
    zero_point: int = 0
    bias: np.ndarray | None = None

    def shape(self, m, rows):
        if self.window is None:
            return (m, self.k, self.n)
        return (window_rows(m, rows, self.window), self.window.size, self.n)

    def out_words(self, m, rows):
        """Values per row of the result: one grid of ``positions x n`` for a windowed job."""
        return self.n * (1 if self.window is None else self.window.positions)


class Engine:
    """A chain of jobs on one engine with its memories, sink and simulator."""

    def __init__(self, m, specs, bs, *, rows, cols, sink_latency=0, pause_after=(), sim="fast"):
        self.m, self.specs, self.bs = m, specs, bs
        self.rows, self.cols, self.sink_latency = rows, cols, sink_latency
        pyrtl.reset_working_block()
        first = specs[0].window
        in_words = math.ceil(m / rows) * (specs[0].k if first is None else first.words)
        self.source = pyrtl.MemBlock(rows * 8, addr_bits(in_words), name="source")  # synchronous
        we, waddr = pyrtl.Input(1, "we"), pyrtl.Input(self.source.addrwidth, "waddr")
        wdata = pyrtl.Input(rows * 8, "wdata")
        self.source[waddr] <<= pyrtl.MemBlock.EnabledWrite(wdata, we)
        b_words, b_bases = [], []
        for b in bs:
            b_bases.append(len(b_words))
            b_words += pack_b(b, cols=cols)
        b_rom = pyrtl.RomBlock(cols * 8, addr_bits(len(b_words)), b_words, pad_with_zeros=True)
        self.outs = []  # full-width result memory of each job
        acts = []  # 8-bit copy of each result, read by the next job
        for index, spec in enumerate(specs):
            words = math.ceil(m / rows) * spec.out_words(m, rows)
            acts.append(pyrtl.MemBlock(rows * 8, addr_bits(words), f"act{index}", True))
        jobs = [
            MatmulJob(
                m,
                spec.k,
                spec.n,
                self.source if index == 0 else acts[index - 1],
                b_rom,
                b_base=base,
                a_zero_point=spec.zero_point,
                bias=spec.bias,
                a_window=spec.window,
            )
            for index, (spec, base) in enumerate(zip(specs, b_bases, strict=True))
        ]
        start = pyrtl.Input(1, "start")
        self.engine = e = make_tiled_matmul(
            jobs,
            start,
            rows=rows,
            cols=cols,
            sink_latency=sink_latency,
            pause_after=pause_after,
        )
        for index, spec in enumerate(specs):
            mem = acts[index]
            sink = [
                (e.m_tile * spec.n + e.column)[: mem.addrwidth],
                pyrtl.concat_list([v[:8] for v in e.values]),
                e.valid & (e.job == index),
            ]
            for _ in range(sink_latency):
                stage = [pyrtl.Register(len(wire)) for wire in sink]
                for reg, wire in zip(stage, sink, strict=True):
                    reg.next <<= wire
                sink = stage
            mem[sink[0]] <<= pyrtl.MemBlock.EnabledWrite(sink[1], sink[2])
            out = pyrtl.MemBlock(rows * e.value_bits, mem.addrwidth, f"out{index}", True)
            out[(e.m_tile * spec.n + e.column)[: mem.addrwidth]] <<= pyrtl.MemBlock.EnabledWrite(
                pyrtl.concat_list(list(e.values)), e.valid & (e.job == index)
            )
            self.outs.append(out)
        outputs = []
        for key in ("done", "busy", "valid", "job", "m_tile", "column", "address"):
            wire = getattr(e, key)
            outputs.append(pyrtl.Output(len(wire), f"o_{key}"))
            outputs[-1] <<= wire
        self.sim = make_simulation(simulator=sim, trace=outputs)
        self.idle = {"we": 0, "waddr": 0, "wdata": 0, "start": 0}

    def load(self, source):
        for address, word in enumerate(pack_a(source.reshape(self.m, -1), rows=self.rows)):
            self.sim.step(self.idle | {"we": 1, "waddr": address, "wdata": word})

    def run(self):
        """Pulse start; return the cycles to done and [(cycle, job, m_tile, column)]."""
        self.sim.step(self.idle | {"start": 1})
        stream, cycle = [], 0
        while not self.sim.inspect("o_done"):
            cycle += 1
            self.sim.step(self.idle)
            assert self.sim.inspect("o_busy")
            if self.sim.inspect("o_valid"):
                tags = [self.sim.inspect(f"o_{key}") for key in ("job", "m_tile", "column")]
                stream.append((cycle, *tags))
                # The counted word of the column in the result's A layout.
                job, m_tile, column = tags
                assert self.sim.inspect("o_address") == m_tile * self.specs[job].n + column
            assert cycle < 100_000
        return cycle, stream

    def results(self):
        return [
            unpack_a(
                self.sim.inspect_mem(out),
                m=self.m,
                k=spec.out_words(self.m, self.rows),
                rows=self.rows,
                bits=self.engine.value_bits,
            )
            for out, spec in zip(self.outs, self.specs, strict=True)
        ]

    def expected(self, source):
        """Each job's result, ``[m, positions * n]``, from NumPy."""
        results, a = [], source
        for spec, b in zip(self.specs, self.bs, strict=True):
            if spec.window is not None:
                grids = a.reshape(self.m, spec.window.height, spec.window.width, -1)
                a = spec.window.patches(grids, fill=spec.zero_point)
            bias = 0 if spec.bias is None else spec.bias
            c = (a.reshape(self.m, -1, spec.k) - spec.zero_point) @ b + bias
            results.append(c.reshape(self.m, -1))
            a = wrap(c)
        return results

    def segment(self, jobs):
        """Cycles and stream of a run of `jobs` alone, from the cycle model."""
        slots = tile_schedule(
            [self.specs[j].shape(self.m, self.rows) for j in jobs],
            rows=self.rows,
            cols=self.cols,
            sink_latency=self.sink_latency,
        )
        stream = [
            (slot.drain_start + j, jobs[slot.job], slot.m_tile, slot.n_tile * self.cols + j)
            for slot in slots
            for j in range(self.cols)
            if slot.n_tile * self.cols + j < self.specs[jobs[slot.job]].n
        ]
        cycles = tiled_matmul_cycles(
            [self.specs[j].shape(self.m, self.rows) for j in jobs],
            rows=self.rows,
            cols=self.cols,
            sink_latency=self.sink_latency,
        )
        return cycles, stream


def segments(jobs, pause_after):
    cuts = sorted(set(pause_after) | {jobs - 1})
    return [list(range(a + 1, b + 1)) for a, b in itertools.pairwise([-1, *cuts])]


def check(engine, source, pause_after=(), runs=1):
    for run in range(runs):
        engine.load(source[run])
        for jobs in segments(len(engine.specs), pause_after):
            cycles, stream = engine.run()
            assert (cycles, stream) == engine.segment(jobs), f"run {run}, jobs {jobs}"
        for got, expected in zip(engine.results(), engine.expected(source[run]), strict=True):
            np.testing.assert_array_equal(got, expected, strict=True)


@st.composite
def windows(draw):
    height, width = draw(st.integers(1, 5)), draw(st.integers(1, 5))
    channels = draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    mode = draw(st.sampled_from(["valid", "same", "arbitrary"]))
    if mode == "arbitrary":
        padding = tuple((draw(st.integers(0, 2)), draw(st.integers(0, 2))) for _ in range(2))
        assume(kernel[0] <= height + sum(padding[0]) and kernel[1] <= width + sum(padding[1]))
        return Window(height, width, channels, kernel, stride, padding)
    assume(mode == "same" or (kernel[0] <= height and kernel[1] <= width))
    return Window.from_mode(height, width, channels, kernel, stride, mode)


@settings(max_examples=25, deadline=None)
@given(
    window=windows(),
    m=st.integers(1, 3),
    n=st.tuples(st.integers(1, 4), st.integers(1, 3)),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    zero_points=st.tuples(st.integers(-128, 127), st.integers(-128, 127)),
    bias=st.booleans(),
    pause=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_window_then_dense(window, m, n, rows, cols, zero_points, bias, pause, seed):
    # A correlation over random windows, then a dense job over its flattened output grids.
    rng = np.random.default_rng(seed)
    k1 = window.positions * n[0]
    bs = [rng.integers(-128, 128, (window.size, n[0])), rng.integers(-128, 128, (k1, n[1]))]
    biases = [rng.integers(-(2**16), 2**16, (size,)) if bias else None for size in n]
    specs = [
        Spec(window.size, n[0], window, zero_points[0], biases[0]),
        Spec(k1, n[1], None, zero_points[1], biases[1]),
    ]
    pause_after = (0,) if pause else ()
    engine = Engine(m, specs, bs, rows=rows, cols=cols, pause_after=pause_after)
    grids = rng.integers(-128, 128, (m, window.height, window.width, window.channels))
    check(engine, [grids], pause_after)


@pytest.mark.parametrize(("sim", "sink_latency"), [("fast", 2), ("compiled", 0)])
def test_dense_window_window_with_pauses(sim, sink_latency):
    # A dense job whose rows are 3x4x2 grids, a 2x2 "same" window over them, a 3x3 window of
    # stride 2 with uneven padding over that; paused after every job, run twice with new data
    # (the second run starts again at job 0), on a 2x3 array.
    rng = np.random.default_rng(11)
    first = Window.from_mode(3, 4, 2, (2, 2), (1, 1), "same")
    second = Window(3, 4, 3, (3, 3), (2, 2), ((1, 0), (2, 1)))
    specs = [
        Spec(5, first.words, None, -3, rng.integers(-500, 500, (first.words,))),
        Spec(first.size, 3, first, 7),
        Spec(second.size, 2, second, -128, rng.integers(-500, 500, (2,))),
    ]
    bs = [rng.integers(-128, 128, (spec.k, spec.n)) for spec in specs]
    engine = Engine(3, specs, bs, rows=2, cols=3, sink_latency=sink_latency, pause_after=(0, 1))
    check(engine, [rng.integers(-128, 128, (3, 5)) for _ in range(2)], (0, 1), runs=2)


def test_pauses_without_windows():
    # Plain jobs only (no address generator is built): paused after job 0 of 3, run twice.
    rng = np.random.default_rng(12)
    specs = [Spec(6, 5, zero_point=4), Spec(5, 7), Spec(7, 2, bias=np.array([3, -9]))]
    bs = [rng.integers(-128, 128, (spec.k, spec.n)) for spec in specs]
    engine = Engine(5, specs, bs, rows=2, cols=2, sink_latency=1, pause_after=(0,))
    registers = {reg.name for reg in pyrtl.working_block().wirevector_subset(pyrtl.Register)}
    assert {"tmm_a_addr", "tmm_a_tile"} <= registers
    assert "tmm_a_patch" not in registers
    check(engine, [rng.integers(-128, 128, (5, 6)) for _ in range(2)], (0,), runs=2)


def test_model_of_a_windowed_job():
    # 2 grids on 3 rows are one grid tile; a 3x3 "valid" window over 4x4 has 4 positions,
    # so 4 row tiles of 3 rows: the plain job (12, 9, n).
    window = Window(4, 4, 1, (3, 3))
    assert window_rows(2, 3, window) == 12
    assert window_rows(4, 3, window) == 24
    with pytest.raises(TypeError, match=r"^window must be a Window, not tuple$"):
        window_rows(2, 3, (3, 3))
    with pytest.raises(ValueError, match=r"^m must be a positive integer, not 0$"):
        window_rows(0, 3, window)


@pytest.fixture
def memories():
    pyrtl.reset_working_block()
    a = pyrtl.MemBlock(16, 5, name="amem")
    b = pyrtl.MemBlock(24, 4, name="bmem")
    return a, b, pyrtl.Input(1, "start")


WINDOW = Window(4, 4, 1, (2, 2))  # 16 words, patches of 4


@pytest.mark.parametrize(
    ("job", "kwargs", "error", "message"),
    [
        (
            {"k": 5},
            {},
            ValueError,
            "job 0 k is 5 but its window's patches hold 4 values: set k to window.size",
        ),
        (
            {"a_window": ((2, 2),)},
            {},
            TypeError,
            "job 0 a_window must be a Window or None, not tuple",
        ),
        # 3 grids on 2 rows: 2 grid tiles of 16 words from word 1, one past the 32 words.
        (
            {"m": 3, "a_base": 1},
            {},
            ValueError,
            "job 0 a needs words 1..32 but memory 'amem' has 32",
        ),
        (
            {},
            {"pause_after": (1,)},
            ValueError,
            "pause_after index must be an integer from 0 to 0, not 1",
        ),
        ({}, {"pause_after": 0}, TypeError, "pause_after must be a sequence of job indices, not 0"),
    ],
)
def test_bad_windowed_jobs(memories, job, kwargs, error, message):
    a, b, start = memories
    fields = {"m": 2, "k": 4, "n": 3, "a": a, "b": b, "a_window": WINDOW} | job
    with pytest.raises(error, match=rf"^{message}$"):
        make_tiled_matmul([MatmulJob(**fields)], start, rows=2, cols=3, **kwargs)
