"""The tiled engine: job chains through a test-side sink, reruns, the stream, extremes, errors."""

import math

import numpy as np
import pyrtl
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    MatmulJob,
    make_simulation,
    make_tiled_matmul,
    pack_a,
    pack_b,
    tile_schedule,
    tiled_matmul_cycles,
    unpack_a,
)

Z = (-128, 127)  # the zero points of the two jobs: both ends of the int8 range


def wrap(x, bits=8):
    """What the test sink stores: the low `bits` bits, read back as signed."""
    return (x + (1 << (bits - 1))) % (1 << bits) - (1 << (bits - 1))


class Chain:
    """Two jobs, C1 = (A1 - z1) @ B1 + bias1 and C2 = (wrap(C1) - z2) @ B2 + bias2.

    A test-side sink writes job 0's stream (low 8 bits of each value, `sink_latency` register
    stages late) into the memory job 1 reads as A, so job 1 only computes the right thing if
    the engine waits for it. Job 1's stream goes to a result memory. A1 sits in a MemBlock
    loaded through a write port driven by Inputs (so a rerun can use new data), B1 and B2 in
    one RomBlock at two bases.
    """

    def __init__(self, shape, b1, b2, biases, *, rows, cols, sink_latency, simulator):
        m, k, n1, n2 = self.shape = shape
        self.rows, self.cols, self.sink_latency = rows, cols, sink_latency
        self.b1, self.b2, self.biases = b1, b2, biases
        pyrtl.reset_working_block()
        a_mem = pyrtl.MemBlock(rows * 8, 8, name="a1")
        we, waddr = pyrtl.Input(1, "we"), pyrtl.Input(8, "waddr")
        a_mem[waddr] <<= pyrtl.MemBlock.EnabledWrite(pyrtl.Input(rows * 8, "wdata"), we)
        b_words = pack_b(b1, cols=cols) + pack_b(b2, cols=cols)
        b_rom = pyrtl.RomBlock(cols * 8, 8, b_words, name="b", pad_with_zeros=True)
        act = pyrtl.MemBlock(rows * 8, 7, name="act", asynchronous=True)  # narrower: own address
        jobs = [
            MatmulJob(m, k, n1, a_mem, b_rom, a_zero_point=Z[0], bias=biases[0]),
            MatmulJob(
                m,
                n1,
                n2,
                act,
                b_rom,
                b_base=math.ceil(n1 / cols) * k,
                a_zero_point=Z[1],
                bias=biases[1],
            ),
        ]
        self.engine = e = make_tiled_matmul(
            jobs, pyrtl.Input(1, "start"), rows=rows, cols=cols, sink_latency=sink_latency
        )
        sink = [
            (e.m_tile * n1 + e.column)[:7],
            pyrtl.concat_list([v[:8] for v in e.values]),
            e.valid & (e.job == 0),
        ]
        for _ in range(sink_latency):
            stage = [pyrtl.Register(len(wire)) for wire in sink]
            for reg, wire in zip(stage, sink, strict=True):
                reg.next <<= wire
            sink = stage
        act[sink[0]] <<= pyrtl.MemBlock.EnabledWrite(sink[1], sink[2])
        self.result = pyrtl.MemBlock(rows * e.value_bits, 8, name="result", asynchronous=True)
        self.result[(e.m_tile * n2 + e.column)[:8]] <<= pyrtl.MemBlock.EnabledWrite(
            pyrtl.concat_list(list(e.values)), e.valid & (e.job == 1)
        )
        outputs = []
        for key in ("done", "busy", "valid", "job", "m_tile", "column"):
            wire = getattr(e, key)
            outputs.append(pyrtl.Output(len(wire), f"o_{key}"))
            outputs[-1] <<= wire
        self.sim = make_simulation(simulator=simulator, trace=outputs)
        self.idle = {"we": 0, "waddr": 0, "wdata": 0, "start": 0}

    def load(self, a1):
        for address, word in enumerate(pack_a(a1, rows=self.rows)):
            self.sim.step(self.idle | {"we": 1, "waddr": address, "wdata": word})

    def run(self, *, hold_start=False):
        """Pulse start (or hold it high: ignored while busy); return the cycles to done and
        [(cycle, job, m_tile, column)] of the stream."""
        self.sim.step(self.idle | {"start": 1})
        stream, cycle = [], 0
        while not self.sim.inspect("o_done"):
            cycle += 1
            self.sim.step(self.idle | {"start": int(hold_start)})
            assert self.sim.inspect("o_busy")
            if self.sim.inspect("o_valid"):
                tags = [self.sim.inspect(f"o_{key}") for key in ("job", "m_tile", "column")]
                stream.append((cycle, *tags))
            assert cycle < 100_000
        return cycle, stream

    def results(self):
        m, _, _, n2 = self.shape
        words = self.sim.inspect_mem(self.result)
        return unpack_a(words, m=m, k=n2, rows=self.rows, bits=self.engine.value_bits)

    def expected(self, a1):
        bias1, bias2 = (0 if bias is None else bias for bias in self.biases)
        return (wrap((a1 - Z[0]) @ self.b1 + bias1) - Z[1]) @ self.b2 + bias2

    def expected_stream(self):
        m, k, n1, n2 = self.shape
        slots = tile_schedule(
            [(m, k, n1), (m, n1, n2)],
            rows=self.rows,
            cols=self.cols,
            sink_latency=self.sink_latency,
        )
        return [
            (slot.drain_start + j, slot.job, slot.m_tile, slot.n_tile * self.cols + j)
            for slot in slots
            for j in range(self.cols)
            if slot.n_tile * self.cols + j < (n1, n2)[slot.job]
        ]


def check_chain(shape, rows, cols, sink_latency, bias, seed, simulator):
    rng = np.random.default_rng(seed)
    m, k, n1, n2 = shape
    b1 = rng.integers(-128, 128, (k, n1))
    b2 = rng.integers(-128, 128, (n1, n2))
    biases = [rng.integers(-(2**20), 2**20, (n,)) if bias else None for n in (n1, n2)]
    chain = Chain(
        shape,
        b1,
        b2,
        biases,
        rows=rows,
        cols=cols,
        sink_latency=sink_latency,
        simulator=simulator,
    )
    expected_cycles = tiled_matmul_cycles(
        [(m, k, n1), (m, n1, n2)], rows=rows, cols=cols, sink_latency=sink_latency
    )
    for run in range(2):  # the second run has new data, with no reset and no rebuild
        a1 = rng.integers(-128, 128, (m, k))
        chain.load(a1)
        cycles, stream = chain.run(hold_start=run == 1)
        assert cycles == expected_cycles, f"run {run}"
        assert stream == chain.expected_stream(), f"run {run}"
        np.testing.assert_array_equal(chain.results(), chain.expected(a1), strict=True)


@settings(max_examples=40, deadline=None)
@given(
    shape=st.tuples(st.integers(1, 7), st.integers(1, 9), st.integers(1, 7), st.integers(1, 5)),
    rows=st.integers(1, 4),
    cols=st.integers(1, 4),
    sink_latency=st.integers(0, 2),
    bias=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_chain_rerun_and_stream(shape, rows, cols, sink_latency, bias, seed):
    check_chain(shape, rows, cols, sink_latency, bias, seed, "fast")


@pytest.mark.parametrize("simulator", ["compiled", "simulation"])
def test_chain_other_simulators(simulator):
    check_chain((5, 6, 7, 3), 2, 3, 1, True, 7, simulator)


@pytest.mark.parametrize(
    ("a_value", "zero_point", "b_value"), [(-128, 127, -128), (127, -128, -128), (127, -128, 127)]
)
def test_accumulators_at_their_limit(a_value, zero_point, b_value):
    # k = 64: |sum| = 64 * 255 * 128 = 2**21 - 2**13, just inside accumulator_bits(64) = 22.
    m, k, n, rows, cols = 3, 64, 3, 2, 2
    pyrtl.reset_working_block()
    a = np.full((m, k), a_value)
    b = np.full((k, n), b_value)
    a_rom = pyrtl.RomBlock(rows * 8, 8, pack_a(a, rows=rows), pad_with_zeros=True)
    b_rom = pyrtl.RomBlock(cols * 8, 8, pack_b(b, cols=cols), pad_with_zeros=True)
    bias = np.array([-(2**31), 2**31 - 1, 0])
    engine = make_tiled_matmul(
        [MatmulJob(m, k, n, a_rom, b_rom, a_zero_point=zero_point, bias=bias)],
        pyrtl.Input(1, "start"),
        rows=rows,
        cols=cols,
    )
    assert (engine.acc_bits, engine.value_bits) == (22, 33)
    assert (engine.output.shape, engine.output.bits) == ((rows, 1), 33)
    outputs = {}
    for key, wire in [
        ("valid", engine.valid),
        ("m_tile", engine.m_tile),
        ("column", engine.column),
    ]:
        outputs[key] = pyrtl.Output(len(wire), f"o_{key}")
        outputs[key] <<= wire
    for i, wire in enumerate(engine.values):
        outputs[i] = pyrtl.Output(len(wire), f"o_{i}")
        outputs[i] <<= wire
    sim = make_simulation(simulator="fast", trace=list(outputs.values()))
    got = np.zeros((math.ceil(m / rows) * rows, n), dtype=np.int64)
    for cycle in range(tiled_matmul_cycles([(m, k, n)], rows=rows, cols=cols) + 1):
        sim.step({"start": int(cycle == 0)})
        if sim.inspect("o_valid"):
            mt, column = sim.inspect("o_m_tile"), sim.inspect("o_column")
            for i in range(rows):
                got[mt * rows + i, column] = sim.inspect(f"o_{i}")
    got = np.where(got >= 2**32, got - 2**33, got)[:m]
    expected = (a - zero_point) @ b + bias
    np.testing.assert_array_equal(got, expected, strict=True)


def test_packing_round_trip():
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (7, 5))
    words = pack_a(a, rows=3)
    assert len(words) == 3 * 5
    np.testing.assert_array_equal(unpack_a(words, m=7, k=5, rows=3), a, strict=True)
    np.testing.assert_array_equal(
        unpack_a(dict(enumerate(pack_b(a, cols=4))), m=5, k=7, rows=4), a.T, strict=True
    )


def test_unpack_signed_and_unsigned():
    rng = np.random.default_rng(4)
    indices = rng.integers(0, 16, (7, 3))  # 4-bit unsigned fields, half of them >= 8
    words = [int(w) for w in pack_a(indices, rows=3, bits=4)]
    unsigned = unpack_a(words, m=7, k=3, rows=3, bits=4, signed=False)
    np.testing.assert_array_equal(unsigned, indices, strict=True)
    signed = unpack_a(words, m=7, k=3, rows=3, bits=4)
    np.testing.assert_array_equal(
        signed, np.where(indices >= 8, indices - 16, indices), strict=True
    )


@pytest.mark.parametrize(
    ("zero_point", "rows", "k", "multiply", "skews"),
    [(-128, 1, 16, 17, 0), (0, 1, 16, 16, 0), (5, 1, 2, 17, 0), (5, 2, 2, 17, 1), (5, 4, 2, 17, 6)],
)
def test_engine_operand_widths_and_skew(zero_point, rows, k, multiply, skews):
    # A zero point makes A - z 9 bits wide (8 without), B stays 8: one 17x17 (16x16) multiply
    # per PE. Tiles are max(k, rows, cols) cycles apart, so columns 0 .. that - rows share
    # skew 0: a one-row array never needs B delays; 2x4 with k = 2 delays column 3 by 1, and
    # 4x4 has the classic skew 0 + 1 + 2 + 3.
    pyrtl.reset_working_block()
    a = pyrtl.RomBlock(rows * 8, 6, [0], pad_with_zeros=True)
    b = pyrtl.RomBlock(32, 6, [0], pad_with_zeros=True)
    make_tiled_matmul(
        [MatmulJob(3, k, 4, a, b, a_zero_point=zero_point)],
        pyrtl.Input(1, "s"),
        rows=rows,
        cols=4,
    )
    block = pyrtl.working_block()
    multiplies = [tuple(len(arg) for arg in net.args) for net in block.logic if net.op == "*"]
    assert multiplies == [(multiply, multiply)] * (rows * 4)
    delays = [r for r in block.wirevector_subset(pyrtl.Register) if "_sa_b" in r.name]
    assert len(delays) == skews
    assert {len(r) for r in delays} <= {8}


@pytest.fixture
def memories():
    pyrtl.reset_working_block()
    a = pyrtl.MemBlock(16, 4, name="amem")
    b = pyrtl.MemBlock(24, 4, name="bmem")
    return a, b, pyrtl.Input(1, "start")


@pytest.mark.parametrize(
    ("job", "kwargs", "message"),
    [
        ({}, {"rows": 0}, "array rows must be a positive integer, not 0"),
        ({}, {"cols": -3}, "array cols must be a positive integer, not -3"),
        ({}, {"sink_latency": -1}, "sink_latency must be a non-negative integer, not -1"),
        ({"m": 0}, {}, "job 0 m must be a positive integer, not 0"),
        (
            {"a_zero_point": 128},
            {},
            "job 0 a_zero_point must be an integer from -128 to 127, not 128",
        ),
        ({"k": 9, "n": 6}, {}, "job 0 b needs words 0..17 but memory 'bmem' has 16"),
        ({"a_base": 1, "k": 8, "m": 4}, {}, "job 0 a needs words 1..16 but memory 'amem' has 16"),
        ({}, {"rows": 3}, "job 0 a memory 'amem' is 16 bits wide, not 24"),
        (
            {"bias": np.zeros(2, dtype=np.int32)},
            {},
            r"job 0 bias must be integers of shape \(3,\), not int32 of shape \(2,\)",
        ),
    ],
)
def test_bad_arguments(memories, job, kwargs, message):
    a, b, start = memories
    fields = {"m": 2, "k": 4, "n": 3, "a": a, "b": b} | job
    with pytest.raises(ValueError, match=rf"^{message}$"):
        make_tiled_matmul([MatmulJob(**fields)], start, **({"rows": 2, "cols": 3} | kwargs))


def test_no_jobs(memories):
    with pytest.raises(ValueError, match=r"^jobs must hold at least one MatmulJob$"):
        make_tiled_matmul([], memories[2], rows=1, cols=1)


def test_two_engines_in_one_design():
    # One array per layer: engines with different names share a block and a start signal,
    # each computes its own product (checked against NumPy) in its own number of cycles.
    pyrtl.reset_working_block()
    rng = np.random.default_rng(5)
    start = pyrtl.Input(1, "start")
    cases, done = [], []
    for index, (rows, cols) in enumerate([(2, 3), (1, 1)]):
        a = rng.integers(-128, 128, (3, 4))
        b = rng.integers(-128, 128, (4, 2))
        a_rom = pyrtl.RomBlock(rows * 8, 4, pack_a(a, rows=rows), pad_with_zeros=True)
        b_rom = pyrtl.RomBlock(cols * 8, 4, pack_b(b, cols=cols), pad_with_zeros=True)
        engine = make_tiled_matmul(
            [MatmulJob(3, 4, 2, a_rom, b_rom, a_zero_point=index - 3)],
            start,
            rows=rows,
            cols=cols,
            name=f"e{index}",
        )
        result = pyrtl.MemBlock(rows * engine.value_bits, 4, name=f"r{index}", asynchronous=True)
        result[(engine.m_tile * 2 + engine.column)[:4]] <<= pyrtl.MemBlock.EnabledWrite(
            pyrtl.concat_list(list(engine.values)), engine.valid
        )
        done.append(pyrtl.Output(1, f"done{index}"))
        done[-1] <<= engine.done
        cycles = tiled_matmul_cycles([(3, 4, 2)], rows=rows, cols=cols)
        cases.append((rows, engine.value_bits, result, (a - (index - 3)) @ b, cycles))
    sim = make_simulation(simulator="fast", trace=done)
    for cycle in range(max(case[-1] for case in cases) + 1):
        sim.step({"start": int(cycle == 0)})
    for index, (rows, bits, result, expected, cycles) in enumerate(cases):
        assert sim.tracer.trace[f"done{index}"].index(1) == cycles
        got = unpack_a(sim.inspect_mem(result), m=3, k=2, rows=rows, bits=bits)
        np.testing.assert_array_equal(got, expected, strict=True)


@pytest.mark.parametrize(
    ("jobs", "m", "named"), [(1, 2, set()), (2, 2, {"job"}), (1, 3, {"m_tile"})]
)
def test_constant_tags_have_no_wires(jobs, m, named):
    # A tag that cannot change is a constant 0, not a register and a named wire that a sink
    # ignoring it would leave unread (Verilator's UNUSEDSIGNAL): one job, one row tile (m <= 2).
    pyrtl.reset_working_block()
    a = pyrtl.RomBlock(16, 4, [0], pad_with_zeros=True)
    b = pyrtl.RomBlock(8, 4, [0], pad_with_zeros=True)
    engine = make_tiled_matmul(
        [MatmulJob(m, 2, 2, a, b)] * jobs, pyrtl.Input(1, "start"), rows=2, cols=1
    )
    names = set(pyrtl.working_block().wirevector_by_name)
    for key, suffix in (("job", "job"), ("m_tile", "mt")):
        wire = getattr(engine, key)
        assert (f"tmm_out_{key}" in names) == (key in named)
        assert (f"tmm_drain_{suffix}" in names) == (key in named)
        assert isinstance(wire, pyrtl.Const) == (key not in named)
        if key not in named:
            assert wire.val == 0
