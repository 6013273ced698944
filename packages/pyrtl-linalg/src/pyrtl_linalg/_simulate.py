"""Simulation helpers: pick PyRTL's fastest simulator, and multiply NumPy matrices in hardware."""

from __future__ import annotations

import math
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyrtl

from ._cycles import tiled_matmul_cycles
from ._tiled import MatmulJob, TiledMatmul, make_tiled_matmul, pack_a, pack_b, unpack_a
from ._validate import positive_int, signed_int, signed_range

__all__ = ["SIMULATORS", "MatmulDesign", "build_matmul", "make_simulation", "simulate_matmul"]

SimulatorName = Literal["compiled", "fast", "simulation"]
#: PyRTL's simulators by the names this package uses, fastest first.
SIMULATORS: dict[str, type] = {
    "compiled": pyrtl.CompiledSimulation,
    "fast": pyrtl.FastSimulation,
    "simulation": pyrtl.Simulation,
}
Sim = pyrtl.Simulation | pyrtl.FastSimulation | pyrtl.CompiledSimulation


def make_simulation(
    *,
    simulator: SimulatorName | None = None,
    trace: Sequence[pyrtl.WireVector] | None = None,
    memory_value_map: Mapping[pyrtl.MemBlock, Mapping[int, int]] | None = None,
    block: pyrtl.Block | None = None,
) -> Sim:
    """Build a simulator for ``block``: the named one, or the fastest that builds.

    With ``simulator=None`` this tries :class:`pyrtl.CompiledSimulation` (tens of thousands
    of cycles per second whatever the design's size) and falls back to
    :class:`pyrtl.FastSimulation` when it cannot be built (no C compiler, or a platform it
    does not support).

    CompiledSimulation can only observe :class:`pyrtl.Input` and :class:`pyrtl.Output` wires
    (and wires driving an Output): attach Outputs to what you want to read.

    :param simulator: ``"compiled"``, ``"fast"``, ``"simulation"`` or ``None`` (fastest).
    :param trace: wires to record every cycle (for waveforms); ``None`` records as little as
        the simulator allows, which is fastest.
    :param memory_value_map: initial contents of memories.
    :param block: the design (default: the working block).
    :returns: the simulator, ready to step.
    """
    if simulator is not None and simulator not in SIMULATORS:
        raise ValueError(
            f"simulator must be one of {', '.join(SIMULATORS)} or None, not {simulator!r}"
        )
    block = pyrtl.working_block(block)
    memories = dict(memory_value_map or {})
    if simulator is None:
        try:
            return make_simulation(
                simulator="compiled", trace=trace, memory_value_map=memories, block=block
            )
        except (OSError, subprocess.CalledProcessError, pyrtl.PyrtlError):
            simulator = "fast"
    if trace is None and simulator == "compiled":
        # CompiledSimulation cannot run without a tracer: give it the smallest one.
        outputs = sorted(block.wirevector_subset(pyrtl.Output), key=lambda w: w.name)
        trace = outputs[:1] or sorted(block.wirevector_subset(pyrtl.Input), key=lambda w: w.name)
    tracer = None if trace is None else pyrtl.SimulationTrace(list(trace), block=block)
    return SIMULATORS[simulator](tracer=tracer, memory_value_map=memories, block=block)


def _check_matrix(name: str, value: object, bits: int) -> np.ndarray:
    if not isinstance(value, np.ndarray):
        raise TypeError(f"{name} must be a NumPy array, not {type(value).__name__}")
    if not np.issubdtype(value.dtype, np.integer):
        raise TypeError(f"{name} must have an integer dtype, not {value.dtype}")
    if value.ndim != 2:
        raise ValueError(f"{name} must be 2-D, not {value.ndim}-D with shape {value.shape}")
    if 0 in value.shape:
        raise ValueError(f"{name} must not be empty, but has shape {value.shape}")
    low, high = signed_range(bits)
    if value.min() < low or value.max() > high:
        raise ValueError(
            f"{name} holds values in [{value.min()}, {value.max()}], outside the {bits}-bit "
            f"signed range [{low}, {high}]"
        )
    return value


@dataclass(frozen=True)
class MatmulDesign:
    """A one-job tiled multiplier in its own block: operands in ROMs, results in a memory.

    :param block: the block holding the design (the working block is left alone).
    :param engine: the :class:`~pyrtl_linalg.TiledMatmul`; its ``start`` is an Input named
        ``"start"``, and its ``done``, ``valid`` and ``values`` (concatenated, row 0 in the
        least significant bits) drive Outputs of those names.
    :param result: the asynchronous memory the result stream is written to, in the A layout
        of :func:`~pyrtl_linalg.pack_a` with ``k = n`` (read it with
        :func:`~pyrtl_linalg.unpack_a` and ``bits=engine.value_bits``).
    """

    block: pyrtl.Block
    engine: TiledMatmul
    result: pyrtl.MemBlock


def build_matmul(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rows: int,
    cols: int,
    a_zero_point: int = 0,
    bias: np.ndarray | None = None,
    bits: int = 8,
) -> MatmulDesign:
    """Build the hardware of ``(a - a_zero_point) @ b + bias`` on a ``rows x cols`` array.

    The design :func:`simulate_matmul` simulates, for callers that want to drive or time it
    themselves. Arguments are checked as :func:`simulate_matmul` checks them.

    :returns: the block, the engine and the result memory.
    """
    rows = positive_int("rows", rows)
    cols = positive_int("cols", cols)
    bits = positive_int("bits", bits)
    a = _check_matrix("a", a, bits)
    b = _check_matrix("b", b, bits)
    if a.shape[1] != b.shape[0]:
        raise ValueError(
            f"a has {a.shape[1]} columns but b has {b.shape[0]} rows (shapes {a.shape} and "
            f"{b.shape})"
        )
    a_zero_point = signed_int("a_zero_point", a_zero_point, bits)
    (m, k), n = a.shape, b.shape[1]
    if bias is not None:
        if not isinstance(bias, np.ndarray) or not np.issubdtype(bias.dtype, np.integer):
            raise TypeError("bias must be a NumPy array of integers or None")
        if bias.shape != (n,):
            raise ValueError(f"bias must have shape ({n},) to match b, not {bias.shape}")

    block = pyrtl.Block()
    with pyrtl.set_working_block(block, no_sanity_check=True):
        a_words = pack_a(a, rows=rows, bits=bits)
        b_words = pack_b(b, cols=cols, bits=bits)
        a_rom = pyrtl.RomBlock(
            rows * bits,
            max(1, (len(a_words) - 1).bit_length()),
            a_words,
            name="a",
            pad_with_zeros=True,
        )
        b_rom = pyrtl.RomBlock(
            cols * bits,
            max(1, (len(b_words) - 1).bit_length()),
            b_words,
            name="b",
            pad_with_zeros=True,
        )
        start = pyrtl.Input(1, "start")
        engine = make_tiled_matmul(
            [MatmulJob(m, k, n, a_rom, b_rom, a_zero_point=int(a_zero_point), bias=bias)],
            start,
            rows=rows,
            cols=cols,
            bits=bits,
        )
        result_mem = pyrtl.MemBlock(
            rows * engine.value_bits,
            max(1, (math.ceil(m / rows) * n - 1).bit_length()),
            name="result",
            asynchronous=True,
        )
        address = engine.address[: result_mem.addrwidth]  # m_tile * n + column
        result_mem[address] <<= pyrtl.MemBlock.EnabledWrite(
            pyrtl.concat_list(list(engine.values)), engine.valid
        )
        # Ports a compiled simulation (which sees only ports) can watch the engine through.
        for name, wire in {
            "done": engine.done,
            "valid": engine.valid,
            "values": pyrtl.concat_list(list(engine.values)),
        }.items():
            output = pyrtl.Output(wire.bitwidth, name)
            output <<= wire
    return MatmulDesign(block, engine, result_mem)


def simulate_matmul(
    a: np.ndarray,
    b: np.ndarray,
    *,
    rows: int,
    cols: int,
    a_zero_point: int = 0,
    bias: np.ndarray | None = None,
    bits: int = 8,
    simulator: SimulatorName | None = None,
) -> tuple[np.ndarray, int]:
    """Compute ``(a - a_zero_point) @ b + bias`` on a ``rows x cols`` systolic array.

    Builds a :func:`~pyrtl_linalg.make_tiled_matmul` design in a private block (the working
    block is left alone) with the operands in ROMs and the result stream written to a memory,
    simulates it from ``start`` to ``done``, and reads the result back.

    >>> import numpy as np
    >>> a = np.array([[1, 2], [3, 4]], dtype=np.int8)
    >>> b = np.array([[5, 6], [7, 8]], dtype=np.int8)
    >>> result, cycles = simulate_matmul(a, b, rows=2, cols=2, simulator="fast")
    >>> result
    array([[19, 22],
           [43, 50]])
    >>> cycles
    9

    :param a: signed integers of shape ``(m, k)`` within ``bits`` bits.
    :param b: signed integers of shape ``(k, n)`` within ``bits`` bits.
    :param rows: physical rows of the array.
    :param cols: physical columns of the array.
    :param a_zero_point: subtracted from every value of ``a`` (within ``bits`` bits).
    :param bias: integers of shape ``(n,)`` added to every row, or ``None``.
    :param bits: operand width.
    :param simulator: see :func:`make_simulation` (``None``: the fastest that builds).
    :returns: the product of shape ``(m, n)`` (int64; an object array only if its values need
        more than 63 bits), and the cycles from ``start`` to ``done``
        (equal to :func:`~pyrtl_linalg.tiled_matmul_cycles`).
    """
    if simulator is not None and simulator not in SIMULATORS:
        raise ValueError(
            f"simulator must be one of {', '.join(SIMULATORS)} or None, not {simulator!r}"
        )
    design = build_matmul(
        a, b, rows=rows, cols=cols, a_zero_point=a_zero_point, bias=bias, bits=bits
    )
    block, engine, result_mem = design.block, design.engine, design.result
    (m, k), n = np.shape(a), np.shape(b)[1]
    with pyrtl.set_working_block(block, no_sanity_check=True):
        # `cycles` counts from start until done and then holds, so it can be read at leisure.
        seen = pyrtl.Register(1, "done_seen")
        seen.next <<= seen | engine.done
        cycles = pyrtl.Register(32, "cycles")
        cycles.next <<= pyrtl.select(seen | engine.done, cycles, cycles + 1)
        cycles_out = pyrtl.Output(32, "cycles_out")
        cycles_out <<= cycles
        done_out = pyrtl.Output(1, "done_out")
        done_out <<= seen | engine.done
    sim = make_simulation(simulator=simulator, trace=[cycles_out, done_out], block=block)

    expected = tiled_matmul_cycles([(m, k, n)], rows=rows, cols=cols)
    # CompiledSimulation reads a missing input as 0, and packs each given one in Python.
    idle = {} if isinstance(sim, pyrtl.CompiledSimulation) else {"start": 0}
    _run(sim, [{"start": 1}] + [idle] * expected)
    while not sim.inspect("done_out"):  # only if the model were wrong: keep going, bounded
        if sim.inspect("cycles_out") > 4 * expected + 1000:
            raise RuntimeError("the multiplier never raised done")
        _run(sim, [idle] * expected)
    result = unpack_a(sim.inspect_mem(result_mem), m=m, k=n, rows=rows, bits=engine.value_bits)
    return result, int(sim.inspect("cycles_out"))


def _run(sim: Sim, inputs: list[dict[str, int]]) -> None:
    """Step through ``inputs``; the last step's Outputs are then readable with ``inspect``."""
    if isinstance(sim, pyrtl.CompiledSimulation):
        # One C call for all but the last step; `run` records only one step's outputs.
        if len(inputs) > 1:
            sim.run(inputs[:-1])
        sim.step(inputs[-1])
    else:
        for step in inputs:
            sim.step(step)
