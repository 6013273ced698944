"""NativeKernel against PyRTL's FastSimulation, cycle by cycle and bit for bit."""

import operator
import re
from collections.abc import Callable
from typing import ClassVar

import numpy as np
import pyrtl
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pyrtl_linalg import (
    CACHE_VARIABLE,
    COPIES,
    BatchDriver,
    NativeKernel,
    PortLayout,
    build_matmul,
    simplify_for_simulation,
    unsupported_reason,
)
from pyrtl_linalg import _native as native

MASK64 = (1 << 64) - 1

#: Widths of one limb, its edges first: every operand of a multiplication.
NARROW = st.one_of(st.sampled_from([1, 2, 32, 33, 63, 64]), st.integers(1, 64))
#: Widths of several limbs, for every other op.
WIDE = st.one_of(st.sampled_from([65, 127, 128, 129, 192, 200]), st.integers(65, 200))


class RandomDesign:
    """A random netlist of every PyRTL op, built one drawn choice at a time (so hypothesis
    shrinks it): Inputs, Registers, memories and ROMs first, then ops on a growing pool of
    wires, each new wire an Output, then register updates and memory writes."""

    def __init__(self, data: st.DataObject) -> None:
        self.data = data
        self.block = pyrtl.Block()
        self.pool: list[pyrtl.WireVector] = []
        self.memories: list[pyrtl.MemBlock] = []
        with pyrtl.set_working_block(self.block):
            self._build()

    def draw(self, strategy: st.SearchStrategy):
        return self.data.draw(strategy)

    def width(self) -> int:
        return self.draw(st.one_of(NARROW, WIDE))

    def pick(self) -> pyrtl.WireVector:
        # An index, not sampled_from(pool): hypothesis compares the elements it samples, and
        # == on wires builds logic.
        return self.pool[self.draw(st.integers(0, len(self.pool) - 1))]

    def fit(self, wire: pyrtl.WireVector, width: int) -> pyrtl.WireVector:
        """``wire`` made ``width`` bits: a window of it, or a zero or sign extension."""
        if len(wire) > width:
            low = self.draw(st.integers(0, len(wire) - width))
            return wire[low : low + width]
        if len(wire) < width:
            return (
                wire.sign_extended(width) if self.draw(st.booleans()) else wire.zero_extended(width)
            )
        return wire

    def _build(self) -> None:
        for index in range(self.draw(st.integers(1, 4))):
            self.pool.append(pyrtl.Input(self.width(), f"in{index}"))
        width = self.width()
        self.pool.append(pyrtl.Const(self.draw(st.integers(0, (1 << width) - 1)), width))
        registers = []
        for index in range(self.draw(st.integers(0, 3))):
            width = self.width()
            reset = self.draw(st.none() | st.integers(-(1 << (width - 1)), (1 << width) - 1))
            registers.append(pyrtl.Register(width, f"reg{index}", reset_value=reset))
        self.pool += registers
        produced = list(registers)
        writes = []
        for index in range(self.draw(st.integers(0, 2))):
            memory = pyrtl.MemBlock(
                self.draw(st.one_of(NARROW, st.integers(65, 130))),
                self.draw(st.integers(1, 3)),
                name=f"mem{index}",
                asynchronous=True,
                max_read_ports=None,
            )
            address = self.fit(self.pick(), memory.addrwidth)
            writes.append((memory, address))  # read back in the cycle it is written
            produced.append(self.read_port(memory, address))
            self.memories.append(memory)
        self.roms = [self._rom(index) for index in range(self.draw(st.integers(0, 1)))]
        self.pool += produced
        for _ in range(self.draw(st.integers(1, 20))):
            op = self.draw(st.sampled_from(sorted(self.OPS)))
            wire = self.OPS[op](self)
            if len(wire) > 256:  # keep concatenations of concatenations in bounds
                wire = wire[:256]
            produced.append(wire)
            self.pool.append(wire)
        for register in registers:
            register.next <<= self.fit(self.pick(), len(register))
        for memory, address in writes:
            data, enable = self.fit(self.pick(), memory.bitwidth), self.fit(self.pick(), 1)
            memory[address] <<= pyrtl.MemBlock.EnabledWrite(data, enable)
        for index, wire in enumerate(produced):
            output = pyrtl.Output(len(wire), f"out{index}")
            output <<= wire

    def _rom(self, index: int) -> pyrtl.RomBlock:
        width, addrwidth = self.draw(st.integers(1, 100)), self.draw(st.integers(1, 3))
        if self.draw(st.booleans()):  # a function of the address
            scale, offset = self.draw(st.integers(0, MASK64)), self.draw(st.integers(0, MASK64))
            data = lambda address: (address * scale + offset) % (1 << width)  # noqa: E731
        else:  # a list, padded with zeros to every address
            words = st.integers(0, (1 << width) - 1)
            data = self.draw(st.lists(words, max_size=(1 << addrwidth) - 1))
        rom = pyrtl.RomBlock(
            width,
            addrwidth,
            data,
            name=f"rom{index}",
            asynchronous=True,
            pad_with_zeros=True,
            max_read_ports=None,
        )
        self.memories.append(rom)
        return rom

    # -- ops: each returns a new wire from the pool's --------------------------------------

    def bitwise(self, function: Callable) -> pyrtl.WireVector:
        return function(self.pick(), self.pick())

    def arithmetic(self, function: Callable, widths: st.SearchStrategy) -> pyrtl.WireVector:
        """``function`` of two operands of widths drawn from ``widths`` (PyRTL zero-extends
        the narrower)."""
        left = self.fit(self.pick(), self.draw(widths))
        right = self.fit(self.pick(), self.draw(widths))
        return function(left, right)

    def wire(self) -> pyrtl.WireVector:
        source = self.pick()
        copy = pyrtl.WireVector(len(source))
        copy <<= source
        return copy

    def mux(self) -> pyrtl.WireVector:
        return pyrtl.select(self.fit(self.pick(), 1), self.pick(), self.pick())

    def concat(self) -> pyrtl.WireVector:
        parts = [self.pick() for _ in range(self.draw(st.integers(1, 4)))]
        if self.draw(st.booleans()):  # a run of one repeated bit: a sign extension
            bit = self.fit(self.pick(), 1)
            parts.insert(
                self.draw(st.integers(0, len(parts))), [bit] * self.draw(st.integers(2, 70))
            )
            parts = [p for part in parts for p in (part if isinstance(part, list) else [part])]
        return pyrtl.concat(*parts)

    def select(self) -> pyrtl.WireVector:
        source = self.pick()
        kind = self.draw(st.sampled_from(["indices", "reversed", "slice", "bits"]))
        if kind == "reversed":
            return source[::-1]
        if kind == "slice":
            start = self.draw(st.integers(0, len(source) - 1))
            stop = self.draw(st.integers(start + 1, len(source)))
            return source[start : stop : self.draw(st.integers(1, 3))]
        if kind == "bits":
            low, high = self.draw(st.integers(0, len(source) - 1)), len(source) - 1
            return pyrtl.concat(source[high], source[low], source[high])
        # Any index tuple (repeated, out of order), as a netlist can hold it.
        indices = self.draw(st.lists(st.integers(0, len(source) - 1), min_size=1, max_size=140))
        dest = pyrtl.WireVector(len(indices))
        self.block.add_net(pyrtl.LogicNet("s", tuple(indices), (source,), (dest,)))
        return dest

    def read(self) -> pyrtl.WireVector:
        if not self.memories:
            return ~self.pick()
        memory = self.memories[self.draw(st.integers(0, len(self.memories) - 1))]
        return self.read_port(memory, self.fit(self.pick(), memory.addrwidth))

    def read_port(self, memory: pyrtl.MemBlock, address: pyrtl.WireVector) -> pyrtl.WireVector:
        word = pyrtl.WireVector(memory.bitwidth)  # a wire, not the _MemIndexed
        word <<= memory[address]
        return word

    OPS: ClassVar[dict[str, Callable]] = {
        "w": wire,
        "~": lambda self: ~self.pick(),
        "&": lambda self: self.bitwise(operator.and_),
        "|": lambda self: self.bitwise(operator.or_),
        "^": lambda self: self.bitwise(operator.xor),
        "n": lambda self: self.bitwise(pyrtl.WireVector.nand),
        "+": lambda self: self.arithmetic(operator.add, NARROW | WIDE),
        "-": lambda self: self.arithmetic(operator.sub, NARROW | WIDE),
        "*": lambda self: self.arithmetic(operator.mul, NARROW),  # a product of up to 128
        "<": lambda self: self.arithmetic(operator.lt, NARROW | WIDE),
        ">": lambda self: self.arithmetic(operator.gt, NARROW | WIDE),
        "=": lambda self: self.bitwise(operator.eq),
        "x": mux,
        "c": concat,
        "s": select,
        "m": read,
    }


def random_steps(block: pyrtl.Block, cycles: int, seed: int) -> list[dict[str, int]]:
    """Every Input's value in each cycle: the extremes and random values."""
    rng = np.random.default_rng(seed)
    steps = [{} for _ in range(cycles)]
    for wire in sorted(block.wirevector_subset(pyrtl.Input), key=lambda w: w.name):
        top = (1 << wire.bitwidth) - 1
        for step in steps:
            choice = rng.integers(6)
            random = int.from_bytes(rng.bytes(wire.bitwidth // 8 + 1), "little") & top
            step[wire.name] = [0, top, 1 << (wire.bitwidth - 1), random, random, random][choice]
    return steps


def golden(
    block: pyrtl.Block, steps: list[dict[str, int]], memories: list[pyrtl.MemBlock] = ()
) -> tuple[dict[str, list[int]], list[list[int]]]:
    """Every Output in every cycle and the final memory words, from FastSimulation."""
    outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
    sim = pyrtl.FastSimulation(tracer=pyrtl.SimulationTrace(outputs, block=block), block=block)
    seen = {w.name: [] for w in outputs}
    for step in steps:
        sim.step(step)
        for name, values in seen.items():
            values.append(sim.inspect(name))
    words = []
    for memory in memories:
        view = sim.inspect_mem(memory)
        words.append([view.get(a, 0) for a in range(1 << memory.addrwidth)])
    return seen, words


def to_limbs(value: int, limbs: int) -> list[int]:
    return [(value >> (64 * limb)) & MASK64 for limb in range(limbs)]


def from_limbs(limbs: np.ndarray) -> int:
    return sum(int(limb) << (64 * i) for i, limb in enumerate(limbs))


def run_kernel(
    kernel: NativeKernel, steps: list[list[dict[str, int]]]
) -> list[dict[str, list[int]]]:
    """``steps[copy][cycle]`` through ``kernel``: every Output of every cycle, by copy."""
    cycles = len(steps[0])
    stimulus = np.zeros((cycles, kernel.copies, kernel.input_limbs), np.uint64)
    for copy, copy_steps in enumerate(steps):
        for cycle, step in enumerate(copy_steps):
            for name, value in step.items():
                place = kernel.inputs[name]
                stimulus[cycle, copy, place.start : place.start + place.limbs] = to_limbs(
                    value, place.limbs
                )
    response = kernel.run(stimulus)
    assert response.shape == (cycles, kernel.copies, kernel.output_limbs)
    assert response.dtype == np.uint64
    return [
        {
            name: [
                from_limbs(row[place.start : place.start + place.limbs])
                for row in response[:, copy]
            ]
            for name, place in kernel.outputs.items()
        }
        for copy in range(kernel.copies)
    ]


def assert_matches_fast_simulation(
    block: pyrtl.Block, memories: list[pyrtl.MemBlock], copies: int, cycles: int, seed: int
) -> None:
    """Each copy of ``block`` in a kernel, fed its own stimulus, against its own FastSimulation."""
    steps = [random_steps(block, cycles, seed + copy) for copy in range(copies)]
    kernel = NativeKernel(block, copies=copies)
    seen = run_kernel(kernel, steps)
    for copy in range(copies):
        expected, words = golden(block, steps[copy], memories)
        assert seen[copy] == expected, f"copy {copy}"
        for memory, content in zip(memories, words, strict=True):
            actual = [from_limbs(word) for word in kernel.memory(memory)[copy]]
            assert actual == content, f"{memory.name} of copy {copy}"


@pytest.fixture(scope="module")
def scratch_kernel_cache(tmp_path_factory):
    """A kernel cache of its own for designs drawn at random, which no other run will draw
    again: they need not pile up in the test session's cache."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(CACHE_VARIABLE, str(tmp_path_factory.mktemp("kernels")))
        yield


@settings(
    max_examples=80,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(st.data())
def test_random_netlists_match_fast_simulation(scratch_kernel_cache, data):
    design = RandomDesign(data)
    design.block.sanity_check()
    assert unsupported_reason(design.block) is None
    copies = data.draw(st.sampled_from(COPIES), label="copies")
    memories = [m for m in design.memories if not isinstance(m, pyrtl.RomBlock)]
    seed = data.draw(st.integers(0, 2**32 - 1), label="seed")
    assert_matches_fast_simulation(design.block, memories, copies, cycles=12, seed=seed)


def boundary_design() -> pyrtl.Block:
    """Selections and concatenations at the offsets around limb boundaries, and sums,
    differences, orderings and products whose carries cross them."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        x, y = pyrtl.Input(200, "x"), pyrtl.Input(130, "y")
        bit = pyrtl.Input(1, "bit")
        wires = {}
        for low in (0, 1, 62, 63, 64, 65, 127, 128):
            for length in (1, 2, 63, 64, 65, 66):
                if low + length <= 200:
                    wires[f"s{low}_{length}"] = x[low : low + length]
        for length in (1, 63, 64, 65):
            wires[f"c{length}"] = pyrtl.concat(y, x[:length], y)
            wires[f"r{length}"] = pyrtl.concat(x[:3], *[bit] * length, x[:length])
        for width in (64, 65, 128, 129, 130):
            left, right = x[:width], y[: width - 1].sign_extended(width)
            wires |= {f"add{width}": left + right, f"sub{width}": left - right}
            wires |= {f"lt{width}": left < right, f"gt{width}": left > right}
        wires["product"] = x[:64] * y[:64]
        for name, wire in wires.items():
            output = pyrtl.Output(len(wire), name)
            output <<= wire
    return block


@pytest.mark.parametrize("copies", [1, 8])
def test_limb_boundaries_match_fast_simulation(copies):
    assert_matches_fast_simulation(boundary_design(), [], copies, cycles=40, seed=copies)


def memory_design() -> tuple[pyrtl.Block, pyrtl.MemBlock, pyrtl.MemBlock]:
    """Two memories (one of two limbs) written from Inputs and read at the written address,
    and a counter with a negative reset value."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        addr, we = pyrtl.Input(3, "addr"), pyrtl.Input(1, "we")
        data = pyrtl.Input(100, "data")
        wide = pyrtl.MemBlock(100, 3, name="wide", asynchronous=True)
        narrow = pyrtl.MemBlock(7, 3, name="narrow", asynchronous=True)
        wide[addr] <<= pyrtl.MemBlock.EnabledWrite(data, we)
        narrow[addr] <<= pyrtl.MemBlock.EnabledWrite(data[93:], we)
        count = pyrtl.Register(5, "count", reset_value=-2)
        count.next <<= count + 1
        for name, wire in {"word": wide[addr], "low": narrow[addr], "counted": count}.items():
            output = pyrtl.Output(len(wire), name)
            output <<= wire
    return block, wide, narrow


def test_a_read_of_the_address_written_sees_the_old_word():
    block, wide, narrow = memory_design()
    words = [5, (1 << 99) | 3, 9, 4]
    steps = [
        {"addr": 2, "we": 1, "data": words[0]},
        {"addr": 2, "we": 1, "data": words[1]},
        {"addr": 2, "we": 0, "data": words[2]},
        {"addr": 2, "we": 1, "data": words[3]},
        {"addr": 2, "we": 0, "data": 0},
    ]
    other = [{**step, "addr": 6} for step in steps]  # a second copy, another address
    kernel = NativeKernel(block, copies=2)
    seen = run_kernel(kernel, [steps, other])
    for copy, copy_steps in enumerate([steps, other]):
        assert seen[copy]["word"] == [0, words[0], words[1], words[1], words[3]]
        assert seen[copy]["counted"] == [30, 31, 0, 1, 2]  # -2 in 5 bits, then counting
        assert seen[copy] == golden(block, copy_steps)[0]
    assert kernel.memory(wide)[:, :, 0].tolist() == [[0, 0, 4, 0, 0, 0, 0, 0], [0] * 6 + [4, 0]]
    assert kernel.memory(narrow)[1, 6].tolist() == [words[3] >> 93]


def matmul_block() -> pyrtl.Block:
    """A real tiled multiplier: ROM operands, a zero point, a bias, a result memory (a shape
    whose tiles divide neither matrix)."""
    rng = np.random.default_rng(5)
    a = rng.integers(-128, 128, (7, 5), dtype=np.int8)
    b = rng.integers(-128, 128, (5, 6), dtype=np.int8)
    bias = rng.integers(-(2**20), 2**20, 6).astype(np.int32)
    return build_matmul(a, b, rows=3, cols=4, a_zero_point=17, bias=bias).block


@pytest.mark.parametrize("copies", [1, 4])
@pytest.mark.parametrize("simplified", [False, True], ids=["block", "simplified"])
def test_matmul_matches_fast_simulation(simplified, copies):
    block = matmul_block()
    if simplified:
        block = simplify_for_simulation(block).block
    memories = list({net.op_param[1] for net in block.logic_subset("@")})
    assert len(memories) == 1  # the result memory
    assert_matches_fast_simulation(block, memories, copies, cycles=60, seed=copies)


def arithmetic_block(op: str, width: int) -> pyrtl.Block:
    """One net of ``op`` on two ``width``-bit Inputs (as PyRTL builds it), to an Output."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        x, y = pyrtl.Input(width, "x"), pyrtl.Input(width, "y")
        result = {"+": operator.add, "<": operator.lt, "*": operator.mul}[op](x, y)
        output = pyrtl.Output(len(result), "out")
        output <<= result
    return block


def test_only_products_of_operands_above_64_bits_are_refused():
    message = (
        "a multiplication of wire x of 65 bits; the native kernel multiplies operands of up "
        "to 64 bits"
    )
    assert unsupported_reason(arithmetic_block("*", 65)) == message
    with pytest.raises(ValueError, match=rf"^{message}$"):
        NativeKernel(arithmetic_block("*", 65))
    for op, width in [("*", 64), ("+", 65), ("+", 200), ("<", 100)]:
        assert unsupported_reason(arithmetic_block(op, width)) is None, (op, width)


def test_an_op_without_a_translation_is_refused(monkeypatch):
    block = arithmetic_block("*", 8)
    monkeypatch.delitem(native._OPS, "*")
    message = "the native kernel has no translation of PyRTL op '*'"
    assert unsupported_reason(block) == message
    with pytest.raises(ValueError, match=rf"^{message.replace('*', '[*]')}$"):
        NativeKernel(block)


@pytest.mark.parametrize("copies", [0, 3, 32, 2.0, True])
def test_bad_copies(copies):
    block, _, _ = memory_design()
    message = rf"^copies must be 1, 2, 4, 8 or 16, not {copies!r}$"
    with pytest.raises(ValueError, match=message):
        NativeKernel(block, copies=copies)
    with pytest.raises(ValueError, match=message):
        BatchDriver.compile(block, copies=copies)


def test_not_a_block():
    with pytest.raises(TypeError, match=r"^block must be a pyrtl.Block, not str$"):
        NativeKernel("block")


def test_port_layouts_are_in_name_order():
    block, _, _ = memory_design()
    kernel = NativeKernel(block, copies=2)
    assert kernel.inputs == {
        "addr": PortLayout(0, 1),
        "data": PortLayout(1, 2),
        "we": PortLayout(3, 1),
    }
    assert kernel.outputs == {
        "counted": PortLayout(0, 1),
        "low": PortLayout(1, 1),
        "word": PortLayout(2, 2),
    }
    assert (kernel.input_limbs, kernel.output_limbs, kernel.copies) == (4, 4, 2)
    assert kernel.block is block
    assert kernel.run(np.zeros((0, 2, 4), np.uint64)).shape == (0, 2, 4)


def test_bits_above_an_inputs_width_are_ignored():
    # addr is 3 bits: 8 + 5 is address 5, not a write past the memory's end.
    block, wide, _ = memory_design()
    kernel = NativeKernel(block)
    stimulus = np.zeros((2, 1, 4), np.uint64)
    stimulus[0, 0, :] = [8 + 5, 77, 1 << 40, 1 + 2]  # addr, data (2 limbs), we
    stimulus[1, 0, 0] = (1 << 63) | 5
    response = kernel.run(stimulus)
    assert response[1, 0, 2].tolist() == 77  # word, read at address 5
    assert kernel.memory(wide)[0, 5].tolist() == [77, (1 << 40) & ((1 << 36) - 1)]
    assert not np.delete(kernel.memory(wide)[0], 5, axis=0).any()


@pytest.mark.parametrize(
    "stimulus",
    [np.zeros((3, 1, 4), np.int64), np.zeros((3, 2, 4), np.uint64), np.zeros((3, 4), np.uint64)],
)
def test_a_stimulus_of_another_shape_or_dtype_is_refused(stimulus):
    kernel = NativeKernel(memory_design()[0])
    shape = list(stimulus.shape)
    message = f"stimulus must be uint64 [cycles, 1, 4], not {stimulus.dtype} of shape {shape}"
    with pytest.raises(ValueError, match=rf"^{re.escape(message)}$"):
        kernel.run(stimulus)


def test_memory_is_a_live_view_of_one_copy():
    block, wide, narrow = memory_design()
    with pyrtl.set_working_block(block):
        rom = pyrtl.RomBlock(4, 2, [1, 2, 3], name="rom", asynchronous=True, pad_with_zeros=True)
        output = pyrtl.Output(4, "rom_word")
        output <<= rom[block.wirevector_by_name["addr"][:2]]
    kernel = NativeKernel(block, copies=4)
    assert kernel.memories == [narrow, wide]
    view = kernel.memory(wide)
    assert view.shape == (4, 8, 2)
    assert view.dtype == np.uint64
    assert kernel.memory(narrow).shape == (4, 8, 1)
    view[2, 5] = [7, 1 << 35]  # copy 2 only, a word of two limbs
    stimulus = np.zeros((2, 4, kernel.input_limbs), np.uint64)
    stimulus[:, :, kernel.inputs["addr"].start] = [[5, 3, 5, 2], [1, 1, 1, 1]]
    response = kernel.run(stimulus)
    word = kernel.outputs["word"].start
    assert response[0, :, word : word + 2].tolist() == [[0, 0], [0, 0], [7, 1 << 35], [0, 0]]
    # ROM words 1, 2, 3, then a zero: the same in every copy.
    assert response[:, :, kernel.outputs["rom_word"].start].tolist() == [[2, 0, 2, 3], [2] * 4]
    with pytest.raises(KeyError):
        kernel.memory(rom)


def test_dictionary_rom_data_reads_as_pyrtl_reads_it():
    # PyRTL's three simulators read a dict of address -> word (pad_with_zeros fills the rest).
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        address = pyrtl.Input(3, "address")
        rom = pyrtl.RomBlock(8, 3, {0: 5, 6: 9}, asynchronous=True, pad_with_zeros=True)
        output = pyrtl.Output(8, "word")
        output <<= rom[address]
    steps = [{"address": a} for a in range(8)]
    assert run_kernel(NativeKernel(block), [steps]) == [golden(block, steps)[0]]


def test_kernels_of_one_block_share_the_library_not_the_state(monkeypatch):
    block, wide, _ = memory_design()
    first = NativeKernel(block)
    # The second kernel is the same C: loaded from the first one's library, not compiled.
    monkeypatch.setattr(native, "subprocess", None)
    second = NativeKernel(block)
    steps = [{"addr": 1, "we": 1, "data": 77}] * 3
    assert run_kernel(first, [steps])[0]["counted"] == [30, 31, 0]
    assert first.memory(wide)[0, 1].tolist() == [77, 0]
    assert not second.memory(wide).any()
    idle = [{"addr": 1, "we": 0, "data": 0}]
    assert run_kernel(second, [idle])[0] == {"counted": [30], "low": [0], "word": [0]}
    assert run_kernel(first, [idle])[0] == {"counted": [1], "low": [0], "word": [77]}


def test_a_design_built_again_later_finds_its_kernel(monkeypatch):
    # The same design built after another (PyRTL's temporaries then have higher numbers) is
    # the same C, so its kernel comes from the cache: no compiler is run for it.
    first = NativeKernel(matmul_block())
    build_matmul(np.ones((3, 2), np.int8), np.ones((2, 2), np.int8), rows=1, cols=2)
    monkeypatch.setattr(native, "subprocess", None)
    again = NativeKernel(matmul_block())
    assert again._library._name == first._library._name


def test_batch_driver_copies_have_their_own_memories():
    # Reference: one FastSimulation per copy, started with that copy's memory contents.
    block, wide, narrow = memory_design()
    driver = BatchDriver.compile(block, outputs=["word"], copies=4)
    assert isinstance(driver.sim, NativeKernel)
    assert driver.copies == driver.sim.copies == 4
    contents = {copy: {a: (copy << 98) | (a * 1000 + copy) for a in range(8)} for copy in (1, 3)}
    for copy, words in contents.items():
        driver.write_memory(wide, np.array(list(words.values()), dtype=object), copy=copy)
    driver.write_memory(narrow, [-1, 5], start=6, copy=2)
    assert driver.read_memory(narrow, 8, copy=2).tolist() == [0] * 6 + [127, 5]
    assert driver.read_memory(narrow, 8, copy=1).tolist() == [0] * 8
    steps = random_steps(block, 20, seed=8)
    inputs = {name: np.array([s[name] for s in steps], dtype=object) for name in steps[0]}
    seen = driver.run(20, inputs, outputs=["word", "low", "counted"])
    assert seen["word"].shape == (20, 4, 2)
    assert seen["low"].shape == seen["counted"].shape == (20, 4)
    for copy in range(4):
        memory_value_map = {
            wide: contents.get(copy, {}),
            narrow: {6: 127, 7: 5} if copy == 2 else {},
        }
        outputs = [block.wirevector_by_name[n] for n in ("word", "low", "counted")]
        sim = pyrtl.FastSimulation(
            tracer=pyrtl.SimulationTrace(outputs, block=block),
            memory_value_map=memory_value_map,
            block=block,
        )
        expected = {name: [] for name in seen}
        for step in steps:
            sim.step(step)
            for name, values in expected.items():
                values.append(sim.inspect(name))
        assert [from_limbs(row) for row in seen["word"][:, copy]] == expected["word"], copy
        assert seen["low"][:, copy].tolist() == expected["low"], copy
        assert seen["counted"][:, copy].tolist() == expected["counted"], copy
        words = driver.read_memory(wide, 8, copy=copy)
        assert [from_limbs(row) for row in words] == contents_of(sim, wide), copy


def contents_of(sim: pyrtl.FastSimulation, memory: pyrtl.MemBlock) -> list[int]:
    view = sim.inspect_mem(memory)
    return [view.get(address, 0) for address in range(1 << memory.addrwidth)]


def test_batch_driver_refuses_a_copy_it_does_not_simulate():
    block, wide, _ = memory_design()
    driver = BatchDriver(NativeKernel(block, copies=4))
    assert driver.direct
    message = r"^copy must be below 4, the copies simulated, not 4$"
    with pytest.raises(ValueError, match=message):
        driver.write_memory(wide, [1], copy=4)
    with pytest.raises(ValueError, match=message):
        driver.read_memory(wide, 1, copy=4)
    with pytest.raises(ValueError, match=r"^copy must be a non-negative integer, not -1$"):
        driver.read_memory(wide, 1, copy=-1)
    assert driver.read_memory(wide, 8, copy=3).shape == (8, 2)
    single = BatchDriver(NativeKernel(block))
    assert single.copies == 1
    assert single.run(3, outputs=["word", "low"])["low"].shape == (3,)
    assert single.run(3, outputs=["word"])["word"].shape == (3, 2)
    with pytest.raises(ValueError, match=r"^copy must be below 1, the copies simulated, not 1$"):
        single.read_memory(wide, 1, copy=1)
