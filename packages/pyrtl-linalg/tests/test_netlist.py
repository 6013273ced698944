"""simplify_for_simulation against the block it copies, cycle by cycle, in two simulators."""

import numpy as np
import pyrtl
import pytest

from pyrtl_linalg import SimulationNetlist, build_matmul, simplify_for_simulation


def runs_design() -> pyrtl.Block:
    """Sign extensions (within a limb, across limbs, of 1 bit), runs of other bits (at the
    end, in the middle, longer than a limb, of a constant), chained slices, registers with
    reset values and a memory."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        x = {n: pyrtl.Input(n, f"x{n}") for n in (1, 7, 8, 63, 64, 70)}
        bit = pyrtl.Input(1, "bit")
        wires = {f"sx{n}_{m}": x[n].sign_extended(m) for n, m in [(1, 5), (7, 16), (8, 9)]}
        wires |= {f"sx{n}_{m}": x[n].sign_extended(m) for n, m in [(63, 130), (64, 70), (70, 140)]}
        wires["run_end"] = pyrtl.concat(x[8], bit, bit, bit)
        wires["run_middle"] = pyrtl.concat(x[7], bit, bit, x[8][3])
        wires["run_long"] = pyrtl.concat(*([bit] * 100), x[1])
        wires["not_sign"] = pyrtl.concat(x[8][6], x[8][6], x[8])  # bit 6, not the sign bit
        zero = pyrtl.Const(0, 1)
        wires["const_run"] = pyrtl.concat(zero, zero, zero, x[7])
        wires["chain"] = x[70][3:60][2:50][1:30][::2]
        total = pyrtl.Register(24, "total_reg", reset_value=0x123456)
        total.next <<= (total + x[8].sign_extended(24))[:24]
        wires["total"] = total
        held = pyrtl.Register(140, "held_reg", reset_value=(1 << 139) | 5)
        held.next <<= wires["sx70_140"]
        wires["held"] = held
        memory = pyrtl.MemBlock(16, 3, name="memory", asynchronous=True)
        memory[x[7][:3]] <<= pyrtl.MemBlock.EnabledWrite(x[7].sign_extended(16), bit)
        read = pyrtl.WireVector(16, "read_word")
        read <<= memory[x[8][:3]]
        wires["read"] = read
        for name, wire in wires.items():
            output = pyrtl.Output(wire.bitwidth, name)
            output <<= wire
    return block


def matmul_design() -> pyrtl.Block:
    """A tiled multiplier with signed operands, a zero point and a bias."""
    rng = np.random.default_rng(4)
    a = rng.integers(-128, 128, (5, 9), dtype=np.int8)
    b = rng.integers(-128, 128, (9, 4), dtype=np.int8)
    bias = rng.integers(-(2**31), 2**31, 4).astype(np.int32)
    return build_matmul(a, b, rows=2, cols=3, a_zero_point=-128, bias=bias).block


DESIGNS = {"runs": runs_design, "matmul": matmul_design}


def random_stimulus(block: pyrtl.Block, cycles: int, seed: int) -> list[dict[str, int]]:
    """Random values of every Input in every cycle, the extremes first."""
    rng = np.random.default_rng(seed)
    inputs = sorted(block.wirevector_subset(pyrtl.Input), key=lambda w: w.name)
    steps = []
    for cycle in range(cycles):
        step = {}
        for wire in inputs:
            top = (1 << wire.bitwidth) - 1
            extremes = [top, 0, 1 << (wire.bitwidth - 1), top >> 1]
            random = int.from_bytes(rng.bytes(9 + wire.bitwidth // 8), "little") & top
            step[wire.name] = extremes[cycle] if cycle < len(extremes) else random
        if "start" in step:
            step["start"] = int(cycle == 2)
        steps.append(step)
    return steps


def simulate(block: pyrtl.Block, kind: str, steps: list[dict[str, int]]) -> tuple[dict, dict]:
    """Every Output in every cycle, then every memory's words, by name."""
    outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
    simulator = {"fast": pyrtl.FastSimulation, "compiled": pyrtl.CompiledSimulation}[kind]
    sim = simulator(tracer=pyrtl.SimulationTrace(outputs, block=block), block=block)
    seen = {w.name: [] for w in outputs}
    for step in steps:
        sim.step(step)
        for name, values in seen.items():
            values.append(sim.inspect(name))
    memories = {
        net.op_param[1]
        for net in block.logic_subset("m@")
        if not isinstance(net.op_param[1], pyrtl.RomBlock)
    }
    words = {}
    for memory in memories:
        view = sim.inspect_mem(memory)
        words[memory.name] = [view.get(a, 0) for a in range(1 << memory.addrwidth)]
    return seen, words


@pytest.mark.parametrize("kind", ["fast", "compiled"])
@pytest.mark.parametrize("design", DESIGNS)
def test_every_cycle_matches_the_original(design, kind):
    block = DESIGNS[design]()
    steps = random_stimulus(block, 60, seed=len(design))
    expected = simulate(block, kind, steps)
    netlist = simplify_for_simulation(block)
    assert simulate(netlist.block, kind, steps) == expected


def test_the_original_is_untouched():
    block = runs_design()
    before = {(net.op, net.op_param, net.args, net.dests) for net in block.logic}
    wires = set(block.wirevector_set)
    simplify_for_simulation(block)
    assert {(net.op, net.op_param, net.args, net.dests) for net in block.logic} == before
    assert block.wirevector_set == wires


def test_runs_and_slice_chains_are_gone():
    block = runs_design()
    netlist = simplify_for_simulation(block)
    assert isinstance(netlist, SimulationNetlist)

    def runs(b: pyrtl.Block) -> int:
        return sum(
            1
            for net in b.logic_subset("c")
            for first, second in zip(net.args, net.args[1:], strict=False)
            if first is second and len(first) == 1
        )

    def chains(b: pyrtl.Block) -> int:
        producers = {net.dests[0]: net for net in b.logic if net.dests}
        return sum(
            1
            for net in b.logic_subset("s")
            if net.args[0] in producers and producers[net.args[0]].op == "s"
        )

    assert runs(block) > 0
    assert chains(block) > 0
    assert runs(netlist.block) == 0
    assert chains(netlist.block) == 0


def test_names_and_memories_are_kept():
    block = runs_design()
    netlist = simplify_for_simulation(block)
    for kind in (pyrtl.Input, pyrtl.Output, pyrtl.Register):
        names = {w.name for w in block.wirevector_subset(kind)}
        assert {w.name for w in netlist.block.wirevector_subset(kind)} == names
    (memory,) = {net.op_param[1] for net in block.logic_subset("m@")}
    copy = netlist.memories[memory]
    assert copy is not memory
    assert (copy.name, copy.bitwidth, copy.addrwidth) == ("memory", 16, 3)
    assert copy in {net.op_param[1] for net in netlist.block.logic_subset("m@")}
    assert netlist.block.wirevector_by_name["held_reg"].reset_value == (1 << 139) | 5


def test_not_a_block():
    with pytest.raises(TypeError, match=r"^block must be a pyrtl.Block, not str$"):
        simplify_for_simulation("block")
