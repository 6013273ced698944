"""BatchDriver against PyRTL's public simulation API, cycle by cycle and bit for bit."""

import numpy as np
import pyrtl
import pytest

from pyrtl_linalg import BatchDriver, NativeKernel, build_matmul
from pyrtl_linalg import _compiled as compiled

MASK64 = (1 << 64) - 1


def wide_design(product_bits: int = 40) -> tuple[pyrtl.Block, list[pyrtl.MemBlock]]:
    """Inputs and Outputs wider than 64 bits, registers, a multiplier of ``product_bits``
    and 7 bits and two memories."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        a = pyrtl.Input(100, "a")
        b = pyrtl.Input(7, "b")
        we = pyrtl.Input(1, "we")
        addr = pyrtl.Input(3, "addr")
        data = pyrtl.Input(128, "data")
        acc = pyrtl.Register(100, "acc")
        acc.next <<= (acc + a)[:100] ^ b.zero_extended(100)
        wide = pyrtl.MemBlock(128, 3, name="wide", asynchronous=True)
        wide[addr] <<= pyrtl.MemBlock.EnabledWrite(data, we)
        narrow = pyrtl.MemBlock(9, 3, name="narrow")
        narrow[addr] <<= pyrtl.MemBlock.EnabledWrite(pyrtl.concat(we, b ^ data[120:127], we), we)
        read = pyrtl.WireVector(128, "read")
        read <<= wide[addr]
        held = pyrtl.Register(9, "held")
        held.next <<= narrow[addr]
        for name, wire in {
            "acc_out": acc,
            "read_out": read,
            "held_out": held,
            "flag_out": a[99] & we,  # combinational: this cycle's inputs
            "prod_out": (a[:product_bits] * b)[: product_bits + 7],
            "data_out": data,
        }.items():
            output = pyrtl.Output(wire.bitwidth, name)
            output <<= wire
    return block, [wide, narrow]


def matmul_design() -> tuple[pyrtl.Block, list[pyrtl.MemBlock]]:
    """A real tiled multiplier: ROM operands, a start pulse, a result memory."""
    rng = np.random.default_rng(3)
    a = rng.integers(-128, 128, (5, 9), dtype=np.int8)
    b = rng.integers(-128, 128, (9, 4), dtype=np.int8)
    design = build_matmul(a, b, rows=2, cols=3, a_zero_point=-3)
    return design.block, [design.result]


DESIGNS = {"wide": wide_design, "matmul": matmul_design}


def wide_product_design() -> tuple[pyrtl.Block, list[pyrtl.MemBlock]]:
    """The wide design with a product of 70-bit operands, which a NativeKernel refuses."""
    return wide_design(product_bits=70)


def random_stimulus(block: pyrtl.Block, cycles: int, seed: int) -> dict[str, list[int]]:
    """Random values for every Input in every cycle, full range, sparse pulses for 1-bit ones."""
    rng = np.random.default_rng(seed)
    stimulus = {}
    for wire in sorted(block.wirevector_subset(pyrtl.Input), key=lambda w: w.name):
        if wire.bitwidth == 1:
            values = (rng.random(cycles) < 0.2).astype(int).tolist()
        else:
            values = [
                int.from_bytes(rng.bytes(16 + wire.bitwidth // 8), "little")
                & ((1 << wire.bitwidth) - 1)
                for _ in range(cycles)
            ]
            values[:2] = [(1 << wire.bitwidth) - 1, 0]  # the extremes
        stimulus[wire.name] = values
    return stimulus


def public_reference(
    block: pyrtl.Block, memories: list[pyrtl.MemBlock], stimulus: dict[str, list[int]], cycles: int
) -> tuple[dict[str, list[int]], list[dict[int, int]]]:
    """Outputs of every cycle and final memories from CompiledSimulation.step, one cycle each."""
    outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
    sim = pyrtl.CompiledSimulation(tracer=pyrtl.SimulationTrace(outputs, block=block), block=block)
    seen: dict[str, list[int]] = {w.name: [] for w in outputs}
    for cycle in range(cycles):
        sim.step({name: values[cycle] for name, values in stimulus.items() if cycle < len(values)})
        for name, values in seen.items():
            values.append(sim.inspect(name))
    contents = [
        {address: sim.inspect_mem(memory)[address] for address in range(1 << memory.addrwidth)}
        for memory in memories
    ]
    return seen, contents


def as_ints(values: np.ndarray) -> list[int]:
    if values.ndim == 1:
        return [int(v) for v in values]
    return [sum(int(limb) << (64 * i) for i, limb in enumerate(row)) for row in values]


def make_sim(kind: str, block: pyrtl.Block) -> pyrtl.Simulation | pyrtl.CompiledSimulation:
    outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
    tracer = pyrtl.SimulationTrace(outputs, block=block)
    simulator = {"compiled": pyrtl.CompiledSimulation, "fast": pyrtl.FastSimulation}[kind]
    return simulator(tracer=tracer, block=block)


def make_driver(kind: str, block: pyrtl.Block) -> BatchDriver:
    """A driver of ``block`` of a :func:`driver_kind`."""
    if kind == "native":
        return BatchDriver(NativeKernel(block))
    return BatchDriver(make_sim("fast" if kind == "public-fast" else "compiled", block))


@pytest.fixture(params=["direct", "public-compiled", "public-fast", "native"])
def driver_kind(request, monkeypatch):
    if request.param == "public-compiled":
        monkeypatch.setattr(compiled, "TESTED_PYRTL_VERSIONS", ("0.0.0",))
    return request.param


@pytest.mark.parametrize("design", DESIGNS)
def test_every_cycle_matches_the_public_path(design, driver_kind):
    block, memories = DESIGNS[design]()
    cycles = 40
    stimulus = random_stimulus(block, cycles, seed=len(design))
    stimulus = {name: values[: cycles - 7 * i] for i, (name, values) in enumerate(stimulus.items())}
    expected, contents = public_reference(block, memories, stimulus, cycles)

    driver = make_driver(driver_kind, block)
    assert driver.direct == (driver_kind in ("direct", "native"))
    arrays = {name: np.array(values, dtype=object) for name, values in stimulus.items()}
    # Two calls: state carries over from one to the next.
    first = driver.run(13, {name: v[:13] for name, v in arrays.items()}, outputs=expected)
    second = driver.run(cycles - 13, {name: v[13:] for name, v in arrays.items()}, outputs=expected)
    for name, values in expected.items():
        assert as_ints(first[name]) + as_ints(second[name]) == values, name
    for memory, content in zip(memories, contents, strict=True):
        words = driver.read_memory(memory, 1 << memory.addrwidth)
        assert as_ints(words) == list(content.values()), memory.name


@pytest.mark.parametrize("design", DESIGNS)
def test_memories_without_outputs(design, driver_kind):
    # With no Output asked for, the public compiled path is a single CompiledSimulation.run.
    block, memories = DESIGNS[design]()
    stimulus = random_stimulus(block, 30, seed=7)
    _, contents = public_reference(block, memories, stimulus, 30)
    driver = make_driver(driver_kind, block)
    assert driver.run(30, {name: np.array(v, dtype=object) for name, v in stimulus.items()}) == {}
    for memory, content in zip(memories, contents, strict=True):
        assert as_ints(driver.read_memory(memory, len(content))) == list(content.values())


def test_mixes_with_step():
    block, _ = wide_design()
    sim = make_sim("compiled", block)
    driver = BatchDriver(sim)
    reference = make_sim("compiled", block)
    for value in (5, 1 << 99, 3):
        reference.step({"a": value})
    driver.run(1, {"a": [5]})
    sim.step({"a": 1 << 99})
    out = driver.run(1, {"a": [3]}, outputs=["acc_out"])
    reference.step({})
    sim.step({})
    assert as_ints(out["acc_out"]) == [5 + (1 << 99)]  # acc before this cycle's add
    assert sim.inspect("acc_out") == reference.inspect("acc_out") == 5 + (1 << 99) + 3


@pytest.mark.parametrize(
    "a",
    [
        np.array([-1, 1 << 99, -(1 << 99), 7] * 3, dtype=object),
        np.array([-1, -(1 << 63), (1 << 63) - 1, 7] * 3, dtype=np.int64),
    ],
    ids=["python-ints", "int64"],
)
def test_input_forms_agree(a):
    # The same 128-bit values as Python ints, as bytes and as 16- or 64-bit words; negative
    # values of the 7-bit and 100-bit inputs as two's complement, as PyRTL reads them.
    block, _ = wide_design()
    rng = np.random.default_rng(11)
    data = rng.integers(0, 256, (12, 16), dtype=np.uint8)
    data_ints = np.array([int.from_bytes(row.tobytes(), "little") for row in data], dtype=object)
    b = np.array([-64, -1, 0, 63, 127, -5, 1, 2, 3, 4, 5, 6], dtype=np.int8)
    names = ["data_out", "prod_out", "acc_out"]
    reference = make_sim("compiled", block)
    expected = []
    for cycle in range(12):
        reference.step({"data": int(data_ints[cycle]), "b": int(b[cycle]), "a": int(a[cycle])})
        expected.append(tuple(reference.inspect(name) for name in names))
    forms = [
        (data_ints, b.astype(object), a.astype(object)),
        (data, b, a),
        (data.view("<u8"), b.astype(np.int64), a),
        (data.view("<u2"), b.astype(np.int16), a),
    ]
    for data_form, b_form, a_form in forms:
        driver = BatchDriver(make_sim("compiled", block))
        out = driver.run(12, {"data": data_form, "b": b_form, "a": a_form}, outputs=names)
        assert list(zip(*(as_ints(out[name]) for name in names), strict=True)) == expected
    assert out["data_out"].shape == (12, 2)
    assert out["data_out"].dtype == np.uint64
    assert out["prod_out"].shape == (12,)
    assert out["prod_out"].dtype == np.uint64


@pytest.mark.parametrize(
    ("inputs", "message"),
    [
        ({"x": [1]}, r"^the design has no Input named 'x'$"),
        ({"b": [0] * 6}, r"^input b is given 6 values for a run of 5 cycles$"),
        (
            {"b": np.array([0, 128])},
            r"^input b is 7 bits wide, but is given 128 in cycle 1 \(allowed: -64 to 127\)$",
        ),
        (
            {"b": np.array([0, 0, -65], np.int8)},
            r"^input b is 7 bits wide, but is given -65 in cycle 2 \(allowed: -64 to 127\)$",
        ),
        (
            {"a": np.array([1 << 100], dtype=object)},
            rf"^input a is 100 bits wide, but is given {1 << 100} in cycle 0 ",
        ),
        ({"a": np.array(["1"], dtype=object)}, r"^input a is given '1', not an integer$"),
        (
            {"a": np.full((1, 2), 1 << 63, np.uint64)},
            r"^input a is given values wider than its 100 bits$",
        ),
        (
            {"data": np.ones((1, 17), np.uint8)},
            r"^input data is given values wider than its 128 bits$",
        ),
        (
            {"data": np.ones((2, 2), np.int64)},
            r"^input data needs a 1-D array of integers or a 2-D array of unsigned words, "
            r"not int64 of shape \[2, 2\]$",
        ),
    ],
)
def test_bad_inputs(inputs, message):
    block, _ = wide_design()
    driver = BatchDriver(make_sim("compiled", block))
    with pytest.raises(ValueError, match=message):
        driver.run(5, inputs)


def test_bad_arguments():
    block, memories = wide_design()
    driver = BatchDriver(make_sim("compiled", block))
    with pytest.raises(ValueError, match=r"^the design has no Output named 'a'$"):
        driver.run(1, outputs=["a"])
    with pytest.raises(ValueError, match=r"^cycles must be a non-negative integer, not -1$"):
        driver.run(-1)
    with pytest.raises(ValueError, match=r"^memory wide has 8 addresses, not 9$"):
        driver.read_memory(memories[0], 9)
    with pytest.raises(TypeError, match=r"^sim must be a PyRTL Simulation, FastSimulation or "):
        BatchDriver(block)
    assert driver.run(0, outputs=["acc_out"])["acc_out"].shape == (0, 2)


def contents_of(sim: pyrtl.Simulation | pyrtl.CompiledSimulation, memory: pyrtl.MemBlock) -> list:
    view = sim.inspect_mem(memory)
    return [view.get(address, 0) for address in range(1 << memory.addrwidth)]


def test_write_memory_is_what_the_memory_then_holds(driver_kind):
    # Reference: PyRTL's public CompiledSimulation given the same words as initial contents.
    block, (wide, narrow) = wide_design()
    rng = np.random.default_rng(5)
    wide_words = rng.integers(0, 256, (8, 16), dtype=np.uint8)  # 128-bit words as bytes
    narrow_words = np.array([-256, 511, 7], np.int16)  # 9 bits: two's complement, top, small
    initial = {
        wide: {a: int.from_bytes(row.tobytes(), "little") for a, row in enumerate(wide_words)},
        narrow: {2: 256, 3: 511, 4: 7},
    }
    stimulus = random_stimulus(block, 30, seed=9)
    outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
    reference = pyrtl.CompiledSimulation(
        tracer=pyrtl.SimulationTrace(outputs, block=block), memory_value_map=initial, block=block
    )
    expected = {w.name: [] for w in outputs}
    for cycle in range(30):
        reference.step({name: values[cycle] for name, values in stimulus.items()})
        for name, values in expected.items():
            values.append(reference.inspect(name))

    driver = make_driver(driver_kind, block)
    assert driver.writes_memories == (driver_kind != "public-compiled")
    if driver_kind == "public-compiled":
        with pytest.raises(NotImplementedError, match=r"^writing a memory of a CompiledSim"):
            driver.write_memory(wide, wide_words)
        return
    driver.write_memory(wide, wide_words)
    driver.write_memory(narrow, narrow_words, start=2)
    arrays = {name: np.array(values, dtype=object) for name, values in stimulus.items()}
    seen = driver.run(30, arrays, outputs=expected)
    for name, values in expected.items():
        assert as_ints(seen[name]) == values, name
    for memory in (wide, narrow):
        assert as_ints(driver.read_memory(memory, 8)) == contents_of(reference, memory)


def test_write_memory_between_runs_is_seen_by_the_next_cycle():
    # Reference: pyrtl.Simulation, whose memories are plain dictionaries (its documented
    # internal state), written by hand between the same two stretches of cycles.
    block, (wide, narrow) = wide_design()
    stimulus = random_stimulus(block, 24, seed=13)
    stimulus["we"] = [0] * 24  # only the direct writes change the memories
    words = [(1 << 127) | 5, 3, (1 << 128) - 1]
    outputs = ["read_out", "held_out", "acc_out"]
    reference = pyrtl.Simulation(
        tracer=pyrtl.SimulationTrace([block.wirevector_by_name[n] for n in outputs], block=block),
        block=block,
    )
    expected = {name: [] for name in outputs}
    for cycle in range(24):
        if cycle == 11:
            reference.memvalue[wide.id].update({4 + i: word for i, word in enumerate(words)})
            reference.memvalue[narrow.id][6] = 300
        reference.step({name: values[cycle] for name, values in stimulus.items()})
        for name, values in expected.items():
            values.append(reference.inspect(name))

    driver = BatchDriver(make_sim("compiled", block))
    assert driver.direct
    arrays = {name: np.array(values, dtype=object) for name, values in stimulus.items()}
    first = driver.run(11, {name: v[:11] for name, v in arrays.items()}, outputs=outputs)
    driver.write_memory(wide, np.array(words, dtype=object), start=4)
    driver.write_memory(narrow, [300], start=6)
    second = driver.run(13, {name: v[11:] for name, v in arrays.items()}, outputs=outputs)
    for name, values in expected.items():
        assert as_ints(first[name]) + as_ints(second[name]) == values, name
    assert as_ints(driver.read_memory(wide, 8)) == contents_of(reference, wide)


def test_bad_memory_writes():
    block, (wide, narrow) = wide_design()
    driver = BatchDriver(make_sim("compiled", block))
    other = pyrtl.MemBlock(8, 2, name="elsewhere", block=pyrtl.Block())
    rom = pyrtl.RomBlock(8, 2, [1, 2, 3, 4], name="rom", block=block)
    with pytest.raises(ValueError, match=r"^'elsewhere' is not a read-write memory of the sim"):
        driver.write_memory(other, [1])
    with pytest.raises(ValueError, match=r"^'rom' is not a read-write memory of the simulat"):
        driver.write_memory(rom, [1])
    with pytest.raises(TypeError, match=r"^memory must be a pyrtl.MemBlock, not str$"):
        driver.write_memory("wide", [1])
    with pytest.raises(ValueError, match=r"^memory wide has 8 addresses; 3 words from address 6 "):
        driver.write_memory(wide, [1, 2, 3], start=6)
    with pytest.raises(
        ValueError,
        match=r"^memory narrow is 9 bits wide, but is given 512 for address 4 \(allowed: -256 ",
    ):
        driver.write_memory(narrow, [0, 512], start=3)
    with pytest.raises(ValueError, match=r"^start must be a non-negative integer, not -1$"):
        driver.write_memory(narrow, [0], start=-1)
    assert as_ints(driver.read_memory(narrow, 8)) == [0] * 8  # nothing written by a refusal


@pytest.mark.parametrize("design", [*DESIGNS, "wide-product"])
@pytest.mark.parametrize("path", ["direct", "public-compiled"])
def test_compile_simulates_the_block(design, path, monkeypatch):
    # On the direct path compile() simulates a simplified copy; the driver still takes the
    # block's own memories and gives every cycle of the public path on the block itself.
    # The simulation is a NativeKernel, except of the 70-bit product: a CompiledSimulation.
    if path == "public-compiled":
        monkeypatch.setattr(compiled, "TESTED_PYRTL_VERSIONS", ("0.0.0",))
    native = design != "wide-product"
    block, memories = (DESIGNS | {"wide-product": wide_product_design})[design]()
    stimulus = random_stimulus(block, 40, seed=21)
    expected, contents = public_reference(block, memories, stimulus, 40)
    driver = BatchDriver.compile(block, outputs=expected)
    assert isinstance(driver.sim, NativeKernel) == native
    assert isinstance(driver.sim, pyrtl.CompiledSimulation) != native
    assert driver.direct == (native or path == "direct")
    assert (driver.sim.block is block) == (path != "direct")
    arrays = {name: np.array(values, dtype=object) for name, values in stimulus.items()}
    seen = driver.run(40, arrays, outputs=expected)
    for name, values in expected.items():
        assert as_ints(seen[name]) == values, name
    for memory, content in zip(memories, contents, strict=True):
        assert as_ints(driver.read_memory(memory, len(content))) == list(content.values())


@pytest.mark.parametrize("design", [wide_design, wide_product_design], ids=["native", "compiled"])
def test_compile_writes_the_blocks_memories(design):
    block, (wide, _) = design()
    driver = BatchDriver.compile(block, outputs=["read_out"])
    assert isinstance(driver.sim, NativeKernel) == (design is wide_design)
    words = [(1 << 127) | 9, 4, 0, (1 << 128) - 1]
    driver.write_memory(wide, np.array(words, dtype=object), start=2)
    addresses = np.arange(8)
    seen = driver.run(8, {"addr": addresses}, outputs=["read_out"])
    assert as_ints(seen["read_out"]) == [0, 0, *words, 0, 0]
    with pytest.raises(ValueError, match=r"^the design has no Output named 'acc'$"):
        BatchDriver.compile(block, outputs=["acc"])
