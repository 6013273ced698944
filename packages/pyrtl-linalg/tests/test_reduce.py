"""The windowed reduction unit against Window.reduce: random windows, reruns, extremes, errors."""

import doctest
import math
import re
import subprocess

import numpy as np
import pyrtl
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    Window,
    _reduce,
    make_simulation,
    make_window_reduce,
    pack_a,
    unpack_a,
    window_reduce_cycles,
)
from pyrtl_linalg._reduce import _divisor, _reciprocals, _round_divide


class Unit:
    """A reduction unit reading a source memory that Inputs can load (so a rerun can use new
    data) and writing a dest memory the test inspects."""

    def __init__(self, window, *, op, grids, lanes, bits=8, simulator="fast", **options):
        self.window, self.op, self.grids, self.lanes, self.bits = window, op, grids, lanes, bits
        self.clamp = options.get("clamp")
        self.source_base = options.get("source_base", 0)
        self.dest_base = options.get("dest_base", 0)
        tiles = math.ceil(grids / lanes)
        source_words = self.source_base + tiles * window.words
        dest_words = self.dest_base + tiles * window.positions * window.channels
        pyrtl.reset_working_block()
        self.source = pyrtl.MemBlock(
            lanes * bits,
            max(1, (source_words - 1).bit_length()),
            name="source",
            asynchronous=options.pop("asynchronous", False),
        )
        self.dest = pyrtl.MemBlock(
            lanes * bits, max(1, (dest_words - 1).bit_length()), name="dest", asynchronous=True
        )
        we = pyrtl.Input(1, "we")
        waddr = pyrtl.Input(self.source.addrwidth, "waddr")
        wdata = pyrtl.Input(lanes * bits, "wdata")
        self.source[waddr] <<= pyrtl.MemBlock.EnabledWrite(wdata, we)
        start = pyrtl.Input(1, "start")
        unit = make_window_reduce(
            self.source,
            self.dest,
            window,
            start,
            op=op,
            grids=grids,
            lanes=lanes,
            bits=bits,
            **options,
        )
        outputs = []
        for key in ("done", "busy"):
            outputs.append(pyrtl.Output(1, f"o_{key}"))
            outputs[-1] <<= getattr(unit, key)
        self.sim = make_simulation(simulator=simulator, trace=outputs)
        self.idle = {"we": 0, "waddr": 0, "wdata": 0, "start": 0}

    def load(self, grids):
        words = pack_a(grids.reshape(len(grids), -1), rows=self.lanes, bits=self.bits)
        for address, word in enumerate(words, start=self.source_base):
            self.sim.step(self.idle | {"we": 1, "waddr": address, "wdata": word})

    def run(self):
        """Pulse start; return the cycle index of done (busy checked on the way)."""
        self.sim.step(self.idle | {"start": 1})
        assert not self.sim.inspect("o_busy")
        cycle = 0
        while not self.sim.inspect("o_done"):
            cycle += 1
            self.sim.step(self.idle)
            assert self.sim.inspect("o_busy")
            assert cycle < 100_000
        self.sim.step(self.idle)
        assert not self.sim.inspect("o_busy")
        assert not self.sim.inspect("o_done")
        return cycle

    def results(self):
        words = self.sim.inspect_mem(self.dest)
        base = self.dest_base
        shifted = {address - base: word for address, word in words.items() if address >= base}
        w = self.window
        flat = unpack_a(
            shifted, m=self.grids, k=w.positions * w.channels, rows=self.lanes, bits=self.bits
        )
        return flat.reshape(self.grids, w.out_height, w.out_width, w.channels)

    def expected(self, grids):
        reduced = self.window.reduce(grids, self.op)
        return reduced if self.clamp is None else np.clip(reduced, *self.clamp)

    def check(self, grids):
        self.load(grids)
        assert self.run() == window_reduce_cycles(self.window, self.grids, self.lanes)
        np.testing.assert_array_equal(self.results(), self.expected(grids), strict=True)


@st.composite
def windows(draw):
    height, width = draw(st.integers(1, 8)), draw(st.integers(1, 8))
    channels = draw(st.integers(1, 4))
    kernel = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    stride = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    mode = draw(st.sampled_from(["valid", "same", "arbitrary"]))
    try:
        if mode == "arbitrary":
            padding = tuple(
                (draw(st.integers(0, k - 1)), draw(st.integers(0, k - 1))) for k in kernel
            )
            return Window(height, width, channels, kernel, stride, padding)
        return Window.from_mode(height, width, channels, kernel, stride, mode)
    except ValueError:  # the window does not fit the grid
        assume(False)


@settings(max_examples=100, deadline=None)
@given(
    window=windows(),
    op=st.sampled_from(["max", "mean"]),
    grids=st.integers(1, 5),
    lanes=st.integers(1, 3),
    clamp=st.none() | st.tuples(st.integers(-128, 127), st.integers(-128, 127)).map(sorted),
    bases=st.tuples(st.integers(0, 9), st.integers(0, 9)),
    asynchronous=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
)
def test_against_numpy(window, op, grids, lanes, clamp, bases, asynchronous, seed):
    rng = np.random.default_rng(seed)
    unit = Unit(
        window,
        op=op,
        grids=grids,
        lanes=lanes,
        clamp=None if clamp is None else tuple(clamp),
        source_base=bases[0],
        dest_base=bases[1],
        asynchronous=asynchronous,
    )
    shape = (grids, window.height, window.width, window.channels)
    unit.check(rng.integers(-128, 128, shape))


def test_rerun_with_new_data_and_compiled_simulator():
    window = Window.from_mode(5, 6, 3, (3, 2), (2, 1), "same")
    rng = np.random.default_rng(1)
    unit = Unit(window, op="mean", grids=4, lanes=3, clamp=(-20, 90), simulator="compiled")
    for _ in range(2):  # no reset, no rebuild
        unit.check(rng.integers(-128, 128, (4, 5, 6, 3)))


@pytest.mark.parametrize("op", ["max", "mean"])
@pytest.mark.parametrize("bits", [4, 8, 12])
@pytest.mark.parametrize("end", [0, 1])
def test_extremes(op, bits, end):
    # 3x3 same windows: sums of 4, 6 and 9 values at both ends of the accumulator's range.
    value = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1)[end]
    window = Window.from_mode(4, 5, 2, (3, 3), (1, 1), "same")
    unit = Unit(window, op=op, grids=2, lanes=2, bits=bits)
    unit.check(np.full((2, 4, 5, 2), value))


def test_rom_source():
    window = Window.from_mode(5, 4, 2, (2, 3), (2, 2), "same")
    grids = np.random.default_rng(2).integers(-128, 128, (3, 5, 4, 2))
    pyrtl.reset_working_block()
    words = pack_a(grids.reshape(3, -1), rows=2)
    source = pyrtl.RomBlock(16, 7, words, name="grids", pad_with_zeros=True)
    dest = pyrtl.MemBlock(16, 5, name="dest", asynchronous=True)
    unit = make_window_reduce(
        source, dest, window, pyrtl.Input(1, "start"), op="max", grids=3, lanes=2
    )
    done = pyrtl.Output(1, "done")
    done <<= unit.done
    sim = make_simulation(simulator="fast", trace=[done])
    cycles = window_reduce_cycles(window, 3, 2)
    for cycle in range(cycles + 1):
        sim.step({"start": int(cycle == 0)})
        assert sim.inspect("done") == (cycle == cycles)
    got = unpack_a(sim.inspect_mem(dest), m=3, k=window.positions * 2, rows=2)
    expected = window.reduce(grids, "max").reshape(3, -1)
    np.testing.assert_array_equal(got, expected, strict=True)


def test_doctests():
    assert doctest.testmod(_reduce, raise_on_error=False).failed == 0


@pytest.mark.parametrize("value", [-128, 127])
def test_clamp_binds(value):
    window = Window(3, 3, 1, (2, 2))
    unit = Unit(window, op="max", grids=1, lanes=1, clamp=(-5, 7))
    unit.load(np.full((1, 3, 3, 1), value))
    unit.run()
    np.testing.assert_array_equal(
        unit.results(), np.full((1, 2, 2, 1), -5 if value < 0 else 7), strict=True
    )


def test_cycle_formula():
    window = Window(4, 4, 2, (2, 2), (2, 2))
    assert window_reduce_cycles(window, grids=3, lanes=2) == 4 + 2 * 4 * 2 * 4
    assert window_reduce_cycles(window, grids=4, lanes=2) == 4 + 2 * 4 * 2 * 4
    assert window_reduce_cycles(window, grids=5, lanes=2) == 4 + 3 * 4 * 2 * 4


@pytest.mark.parametrize("max_count", [1, 2, 4, 9, 16, 25, 49, 64])
def test_reciprocals_exact_for_every_sum(max_count):
    """The arithmetic of the divider, in NumPy, for every sum of n int8 values, n <= max_count."""
    shift, multipliers = _reciprocals(max_count, 8)
    for n in range(1, max_count + 1):
        sums = np.arange(-128 * n, 127 * n + 1, dtype=np.int64)
        quotient = ((np.abs(sums) + n // 2) * multipliers[n]) >> shift
        expected = np.sign(sums) * ((np.abs(sums) + n // 2) // n)
        np.testing.assert_array_equal(np.sign(sums) * quotient, expected, strict=True)


def test_round_divide_hardware_exhaustive():
    """The divider as built: every sum of n int8 values for every n of a 3x3 window."""
    max_count = 9
    pyrtl.reset_working_block()
    total = pyrtl.Input(12, "total")
    count = pyrtl.Input(4, "count")
    out = pyrtl.Output(8, "out")
    out <<= _round_divide(total, _divisor(count, max_count=max_count, bits=8), 8)
    sim = make_simulation(simulator="fast", trace=[out])
    mismatches = []
    for n in range(1, max_count + 1):
        for s in range(-128 * n, 127 * n + 1):
            sim.step({"total": s & 0xFFF, "count": n})
            got = sim.inspect("out")
            got -= 256 if got >= 128 else 0
            expected = int(np.sign(s)) * ((abs(s) + n // 2) // n)
            if got != expected:
                mismatches.append((s, n, got, expected))
    assert mismatches == []


@pytest.fixture
def memories():
    pyrtl.reset_working_block()
    return (
        pyrtl.MemBlock(16, 6, name="src"),
        pyrtl.MemBlock(16, 3, name="dst"),
        pyrtl.Input(1, "start"),
    )


WINDOW = Window(3, 3, 2, (2, 2))  # 18 source words and 8 results per tile


@pytest.mark.parametrize(
    ("change", "error", "message"),
    [
        ({"window": (3, 3)}, TypeError, "window must be a Window, not tuple"),
        ({"op": "min"}, ValueError, "op must be 'max' or 'mean', not 'min'"),
        ({"grids": 0}, ValueError, "grids must be a positive integer, not 0"),
        ({"lanes": 2.0}, TypeError, "lanes must be a positive integer, not 2.0"),
        ({"bits": 4}, ValueError, "source memory 'src' is 16 bits wide, not 8 (lanes * bits)"),
        ({"clamp": 5}, ValueError, "clamp must be a pair (lo, hi) or None, not 5"),
        (
            {"clamp": (-129, 0)},
            ValueError,
            "clamp lo must be an integer from -128 to 127, not -129",
        ),
        ({"clamp": (3, 2)}, ValueError, "clamp lo must not exceed hi, not (3, 2)"),
        ({"source_base": -1}, ValueError, "source_base must be a non-negative integer, not -1"),
        ({"source_base": 47}, ValueError, "source needs words 47..64 but memory 'src' has 64"),
        ({"grids": 3}, ValueError, "dest needs words 0..15 but memory 'dst' has 8"),
        ({"dest_base": 1}, ValueError, "dest needs words 1..8 but memory 'dst' has 8"),
        (
            {"window": Window(1, 3, 1, (1, 1), padding=((1, 0), (0, 0)))},
            ValueError,
            "window position 0 covers only padding: every position of a reduced window must "
            "cover at least one grid position (use less padding)",
        ),
    ],
)
def test_errors(memories, change, error, message):
    source, dest, start = memories
    kwargs = {"window": WINDOW, "op": "max", "grids": 2, "lanes": 2} | change
    window = kwargs.pop("window")
    with pytest.raises(error, match=f"^{re.escape(message)}$"):
        make_window_reduce(source, dest, window, start, **kwargs)


def test_memory_and_start_errors(memories):
    source, dest, start = memories
    rom = pyrtl.RomBlock(16, 3, [0] * 8, name="rom")
    kwargs = {"op": "max", "grids": 2, "lanes": 2}
    with pytest.raises(TypeError, match=r"^dest must be a writable MemBlock, not a RomBlock$"):
        make_window_reduce(source, rom, WINDOW, start, **kwargs)
    with pytest.raises(TypeError, match=r"^source must be a MemBlock, not list$"):
        make_window_reduce([], dest, WINDOW, start, **kwargs)
    with pytest.raises(ValueError, match=r"^start must be 1 bit wide, not 2$"):
        make_window_reduce(source, dest, WINDOW, pyrtl.Input(2, "wide"), **kwargs)
    with pytest.raises(TypeError, match=r"^window must be a Window, not NoneType$"):
        window_reduce_cycles(None, 1, 1)


@pytest.mark.tool("iverilog", "vvp")
def test_icarus_matches_pyrtl(tmp_path):
    """The exported Verilog, run in Icarus, gives PyRTL's outputs cycle for cycle, and those
    read back NumPy's results."""
    window = Window.from_mode(5, 4, 3, (3, 3), (2, 1), "same")
    grids = np.random.default_rng(5).integers(-128, 128, (2, 5, 4, 3))
    unit = Unit(window, op="mean", grids=2, lanes=2, clamp=(-100, 50), simulator="simulation")
    raddr = pyrtl.Input(unit.dest.addrwidth, "raddr")
    word = pyrtl.Register(unit.dest.bitwidth, "word")  # every Output a register (see below)
    word.next <<= unit.dest[raddr]
    o_word = pyrtl.Output(unit.dest.bitwidth, "o_word")
    o_word <<= word
    idle = unit.idle | {"raddr": 0}
    words = pack_a(grids.reshape(2, -1), rows=2)
    steps = [idle | {"we": 1, "waddr": a, "wdata": w} for a, w in enumerate(words)]
    steps += [idle | {"start": 1}] + [idle] * window_reduce_cycles(window, 2, 2)
    outputs = window.positions * window.channels
    steps += [idle | {"raddr": a} for a in range(outputs)] + [idle]
    sim = pyrtl.Simulation(tracer=pyrtl.SimulationTrace())
    expected = []
    for inputs in steps:
        sim.step(inputs)
        expected.append([sim.inspect(name) for name in ("o_done", "o_busy", "o_word")])
    read_back = unpack_a([word for _, _, word in expected[-outputs:]], m=2, k=outputs, rows=2)
    np.testing.assert_array_equal(read_back, unit.expected(grids).reshape(2, outputs), strict=True)

    with open(tmp_path / "design.v", "w") as file:
        pyrtl.output_to_verilog(file, module_name="toplevel")
    with open(tmp_path / "tb.v", "w") as file:
        pyrtl.output_verilog_testbench(
            file,
            sim.tracer,
            toplevel_include="design.v",
            vcd=None,
            cmd='$display("%0d %0d %0d", o_done, o_busy, o_word);',
        )
    subprocess.run(["iverilog", "-o", "tb", "tb.v"], cwd=tmp_path, check=True)
    run = subprocess.run(["vvp", "-n", "tb"], cwd=tmp_path, check=True, capture_output=True)
    got = [[int(v) for v in line.split()] for line in run.stdout.decode().splitlines()]
    # Icarus prints each cycle's registers after that cycle's clock edge: PyRTL's next cycle.
    assert got[: len(steps) - 1] == expected[1:]
