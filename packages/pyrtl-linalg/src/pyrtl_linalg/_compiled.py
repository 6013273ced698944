"""Run many simulated cycles from NumPy stimulus with one call into a compiled kernel.

The kernel is a :class:`~pyrtl_linalg.NativeKernel` (this package's C, see ``_native.py``) or
PyRTL's own :class:`pyrtl.CompiledSimulation`; what follows is about the latter, which
:meth:`BatchDriver.compile` falls back to for a design the native kernel cannot compile.

:class:`pyrtl.CompiledSimulation` evaluates a design in generated C, millions of cycles per
second for a small design, but its public :meth:`~pyrtl.CompiledSimulation.run` converts every
input value of every cycle in Python (``infer_val_and_bitwidth``, then a loop over 64-bit
limbs) and copies traced values back one cycle at a time. For a design fed a few inputs per
cycle that Python work costs several times the C evaluation. :class:`BatchDriver` builds the
same step-major ``uint64`` input buffer with NumPy and calls the same C function
(``sim_run_all``) once, then hands back any Output of every cycle as a NumPy array.

Operands known before a run need not cost simulated cycles at all:
:meth:`BatchDriver.write_memory` stores words straight into a simulated memory (in the compiled
kernel, through the same C function its write ports call), where feeding them through a write
port costs one evaluation of the whole design per word.

This relies on private attributes of :class:`pyrtl.CompiledSimulation` (the input and output
buffer layouts and the loaded library), so it is only used on the PyRTL releases listed in
:data:`TESTED_PYRTL_VERSIONS`; with any other release, or another simulator, the driver steps
the simulation through its public API instead: same results, same contract, slower.
"""

from __future__ import annotations

import atexit
import ctypes
import functools
import importlib.metadata
import subprocess
import tempfile
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import numpy as np
import pyrtl

from ._native import NativeKernel, check_copies, unsupported_reason
from ._netlist import simplify_for_simulation
from ._simulate import Sim, make_simulation
from ._validate import non_negative_int

__all__ = ["TESTED_PYRTL_VERSIONS", "BatchDriver"]

#: PyRTL releases whose CompiledSimulation internals :class:`BatchDriver` was written for and
#: tested against (``importlib.metadata.version("pyrtl")``).
TESTED_PYRTL_VERSIONS: tuple[str, ...] = ("1.0.3",)

#: The private CompiledSimulation attributes the direct path reads.
_INTERNALS = (
    "_dll",
    "_inputs_metadata",
    "_inputs_array_length",
    "_outputs_metadata",
    "_outputs_array_length",
    "var_names",
)


def _pyrtl_version() -> str | None:
    try:
        return importlib.metadata.version("pyrtl")
    except importlib.metadata.PackageNotFoundError:
        return None


_ALL_ONES = np.uint64(0xFFFF_FFFF_FFFF_FFFF)


def _limbs_of(
    what: str, values: Any, bitwidth: int, at: Callable[[int], str] = "in cycle {}".format
) -> np.ndarray:
    """``values`` of a ``bitwidth``-bit wire as ``uint64 [n, limbs]``, least significant first.

    ``what`` names the wire in error messages (``"input a"``), ``at(i)`` the place of value
    ``i`` (``"in cycle 3"``).

    Accepts what :meth:`BatchDriver.run` documents; negative values become two's complement in
    ``bitwidth`` bits, and anything outside ``[-2**(bitwidth-1), 2**bitwidth)`` is refused, as
    PyRTL's own simulators refuse it.
    """
    limbs = (bitwidth + 63) // 64
    array = np.asarray(values)
    kind = array.dtype.kind
    if array.ndim == 2 and kind == "u":
        return _from_words(what, array, bitwidth, limbs)
    if array.ndim == 1 and kind == "O":
        return _from_ints(what, array, bitwidth, limbs, at)
    if array.ndim == 1 and kind in "iub":
        return _from_numbers(what, array, bitwidth, limbs, at)
    raise ValueError(
        f"{what} needs a 1-D array of integers or a 2-D array of unsigned words, "
        f"not {array.dtype} of shape {list(array.shape)}"
    )


def _from_words(what: str, array: np.ndarray, bitwidth: int, limbs: int) -> np.ndarray:
    """Rows of little-endian unsigned words: reinterpreted as bytes, then as 64-bit limbs."""
    raw = np.ascontiguousarray(array, dtype=array.dtype.newbyteorder("<")).view(np.uint8)
    raw = raw.reshape(len(array), -1)
    if raw.shape[1] > limbs * 8:
        if raw[:, limbs * 8 :].any():
            raise ValueError(f"{what} is given values wider than its {bitwidth} bits")
        raw = raw[:, : limbs * 8]
    padded = np.zeros((len(array), limbs * 8), np.uint8)
    padded[:, : raw.shape[1]] = raw
    result = padded.view("<u8").astype(np.uint64, copy=False)
    top = bitwidth - 64 * (limbs - 1)
    if top < 64 and len(result) and (result[:, -1] >> np.uint64(top)).any():
        raise ValueError(f"{what} is given values wider than its {bitwidth} bits")
    return result


def _from_ints(
    what: str, array: np.ndarray, bitwidth: int, limbs: int, at: Callable[[int], str]
) -> np.ndarray:
    """Python integers, one per cycle (the only form for values that need Python's ints)."""
    low, high = -(1 << (bitwidth - 1)), 1 << bitwidth
    result = np.zeros((len(array), limbs), np.uint64)
    for cycle, value in enumerate(array):
        if isinstance(value, bool) or not isinstance(value, int | np.integer):
            raise ValueError(f"{what} is given {value!r}, not an integer")
        value = int(value)
        if not low <= value < high:
            raise ValueError(_range_message(what, bitwidth, value, at(cycle)))
        value &= high - 1
        for limb in range(limbs):
            result[cycle, limb] = (value >> (64 * limb)) & 0xFFFF_FFFF_FFFF_FFFF
    return result


def _from_numbers(
    what: str, array: np.ndarray, bitwidth: int, limbs: int, at: Callable[[int], str]
) -> np.ndarray:
    """A NumPy integer (or bool) array, one value per cycle."""
    if not len(array):
        return np.zeros((0, limbs), np.uint64)
    low, high = -(1 << (bitwidth - 1)), 1 << bitwidth
    if array.dtype.kind in "ub" and array.dtype.itemsize * 8 <= bitwidth:
        smallest = largest = 0  # every value of the dtype fits
    else:
        smallest, largest = int(array.min()), int(array.max())
    if smallest < low or largest >= high:
        cycle, value = next((c, v) for c, v in enumerate(array.tolist()) if not low <= v < high)
        raise ValueError(_range_message(what, bitwidth, int(value), at(cycle)))
    result = np.empty((len(array), limbs), np.uint64)
    result[:, 0] = array  # in range, so exact; negative values wrap to 64-bit two's complement
    if limbs > 1:
        result[:, 1:] = 0
        if smallest < 0:
            result[array < 0, 1:] = _ALL_ONES  # sign extension
    if smallest < 0 and bitwidth % 64:
        result[:, -1] &= np.uint64((1 << (bitwidth % 64)) - 1)
    return result


def _range_message(what: str, bitwidth: int, value: int, place: str) -> str:
    return (
        f"{what} is {bitwidth} bits wide, but is given {value} {place} "
        f"(allowed: {-(1 << (bitwidth - 1))} to {(1 << bitwidth) - 1})"
    )


#: C that calls the generated C's memory functions over many addresses, so that a NumPy buffer
#: of words goes in or out of a simulated memory with one call from Python, where a call per
#: word (``inspect_mem``, or ``insert`` through ctypes) costs about a microsecond each.
_MEMORY_HELPERS = r"""
#include <stdint.h>
typedef void (*insert_t)(void *memory, uint64_t address, uint64_t value[]);
typedef uint64_t *(*lookup_t)(void *memory, uint64_t address);

void store_words(insert_t insert, void *memory, uint64_t start, uint64_t count,
                 uint64_t limbs, uint64_t words[]) {
    for (uint64_t i = 0; i < count; i++)
        insert(memory, start + i, words + i * limbs);
}

void load_words(lookup_t lookup, void *memory, uint64_t count, uint64_t limbs,
                uint64_t words[]) {
    for (uint64_t i = 0; i < count; i++) {
        const uint64_t *value = lookup(memory, i);
        for (uint64_t j = 0; j < limbs; j++)
            words[i * limbs + j] = value[j];
    }
}
"""


@functools.cache
def _memory_helpers() -> ctypes.CDLL:
    """:data:`_MEMORY_HELPERS` compiled (once per process, in a directory removed at exit)."""
    directory = tempfile.TemporaryDirectory(prefix="pyrtl-linalg-")
    atexit.register(directory.cleanup)
    source, library = Path(directory.name, "memory.c"), Path(directory.name, "memory.so")
    source.write_text(_MEMORY_HELPERS)
    subprocess.run(
        ["gcc", "-O2", "-std=c99", "-shared", "-fPIC", str(source), "-o", str(library)],
        check=True,
        capture_output=True,
    )
    helpers = ctypes.CDLL(str(library))
    word = ctypes.c_uint64
    pointer = ctypes.c_void_p
    helpers.store_words.argtypes = [pointer, pointer, word, word, word, pointer]
    helpers.store_words.restype = None
    helpers.load_words.argtypes = [pointer, pointer, word, word, pointer]
    helpers.load_words.restype = None
    return helpers


def _to_ints(limbs: np.ndarray) -> list[int]:
    """Rows of ``uint64 [n, limbs]`` as Python integers (for the public path)."""
    if limbs.shape[1] == 1:
        return limbs[:, 0].tolist()
    return [sum(int(limb) << (64 * i) for i, limb in enumerate(row)) for row in limbs]


class BatchDriver:
    """Run a simulation for many cycles with stimulus given as NumPy arrays, in one call.

    State (registers, memories) lives in the simulation, so :meth:`run` calls continue where
    the last one stopped and, on a PyRTL simulation, can be mixed with its own ``step``. The
    simulation's tracer is *not* updated by :meth:`run`: read Outputs from what it returns.

    On a :class:`~pyrtl_linalg.NativeKernel` :meth:`run` is one call of its compiled C. On a
    :class:`pyrtl.CompiledSimulation` of a PyRTL release in
    :data:`TESTED_PYRTL_VERSIONS` (:attr:`direct` is ``True``) :meth:`run` calls the compiled
    kernel once per call; otherwise it steps the simulation through its public API (one
    ``step`` per cycle, or one ``run`` when no Output is asked for), which gives the same values
    more slowly.

    :meth:`compile` builds the simulation as well: a native kernel where the design allows.

    :param sim: the simulation to drive.
    :param memories: when ``sim`` simulates a copy of a design (such as
        :func:`simplify_for_simulation` makes), the design's memories mapped to the copy's, so
        that :meth:`write_memory` and :meth:`read_memory` take the design's own.
    """

    def __init__(
        self,
        sim: Sim | NativeKernel,
        *,
        memories: Mapping[pyrtl.MemBlock, pyrtl.MemBlock] | None = None,
    ) -> None:
        if not isinstance(sim, Sim | NativeKernel):
            raise TypeError(
                f"sim must be a PyRTL Simulation, FastSimulation or CompiledSimulation, or a "
                f"NativeKernel, not {type(sim).__name__}"
            )
        self._sim = sim
        self._memory_copies = dict(memories or {})
        #: Copies of the design simulated together (:attr:`NativeKernel.copies`; else 1).
        self.copies = sim.copies if isinstance(sim, NativeKernel) else 1
        block = sim.block
        self._inputs = {w.name: w for w in block.wirevector_subset(pyrtl.Input)}
        self._outputs = {w.name: w for w in block.wirevector_subset(pyrtl.Output)}
        #: ``True`` when :meth:`run` calls compiled C directly, once.
        self.direct = isinstance(sim, NativeKernel) or (
            isinstance(sim, pyrtl.CompiledSimulation)
            and _pyrtl_version() in TESTED_PYRTL_VERSIONS
            and all(hasattr(sim, attribute) for attribute in _INTERNALS)
        )
        if isinstance(sim, pyrtl.CompiledSimulation) and self.direct:
            # A fresh function object (``_dll[name]`` is not cached), so the argument types
            # set here never interfere with the ones CompiledSimulation.run sets on its own.
            self._kernel = sim._dll["sim_run_all"]
            self._kernel.argtypes = [ctypes.c_uint64, ctypes.c_void_p, ctypes.c_void_p]
            self._kernel.restype = None
            # The memory functions of the generated C, called from _memory_helpers():
            # insert(memory, address, value[]) is what a write port calls when enabled,
            # lookup(memory, address) what a read port calls.
            self._insert = ctypes.cast(sim._dll["insert"], ctypes.c_void_p).value
            self._lookup = ctypes.cast(sim._dll["lookup"], ctypes.c_void_p).value
        self._memories = {
            net.op_param[1]
            for net in block.logic_subset("m@")
            if not isinstance(net.op_param[1], pyrtl.RomBlock)
        }

    @classmethod
    def compile(
        cls,
        block: pyrtl.Block,
        *,
        outputs: Iterable[str] = (),
        copies: int = 1,
        native: bool = True,
    ) -> BatchDriver:
        """A driver of a new compiled simulation of ``block``.

        The simulation is a :class:`~pyrtl_linalg.NativeKernel` where ``native`` is set and
        :func:`~pyrtl_linalg.unsupported_reason` allows it, else a
        :class:`pyrtl.CompiledSimulation`. On a tested PyRTL release either is of
        :func:`simplify_for_simulation`'s copy of ``block``: the same values at every Input,
        Output and memory in every cycle, for less C per cycle; the driver's memory methods
        take ``block``'s memories. On any other release it simulates ``block`` itself.

        :param block: the design.
        :param outputs: the Outputs :meth:`run` will be asked for (on the public path a
            CompiledSimulation reports only the Outputs it traces).
        :param copies: copies of the design to simulate together (one of
            :data:`~pyrtl_linalg.COPIES`), on a native kernel; a CompiledSimulation simulates
            one whatever is asked. :attr:`copies` says how many the driver has.
        :param native: ``False`` for a :class:`pyrtl.CompiledSimulation` in any case (PyRTL's
            own compiled simulator, an independent check of the native kernel).
        :returns: the driver; its :attr:`sim` is the simulation.
        :raises ValueError: for a name that is not an Output of ``block``, or bad ``copies``.
        """
        check_copies(copies)
        names = list(outputs)
        ports = {w.name for w in block.wirevector_subset(pyrtl.Output)}
        for name in names:
            if name not in ports:
                raise ValueError(f"the design has no Output named {name!r}")
        simulated, memories = block, None
        if _pyrtl_version() in TESTED_PYRTL_VERSIONS:
            netlist = simplify_for_simulation(block)
            simulated, memories = netlist.block, netlist.memories
        if native and unsupported_reason(simulated) is None:
            return cls(NativeKernel(simulated, copies=copies), memories=memories)
        trace = [simulated.wirevector_by_name[name] for name in names] or None
        sim = make_simulation(simulator="compiled", trace=trace, block=simulated)
        return cls(sim, memories=memories)

    @property
    def sim(self) -> Sim | NativeKernel:
        """The simulation being driven."""
        return self._sim

    @property
    def writes_memories(self) -> bool:
        """``True`` when :meth:`write_memory` can write this simulation's memories: on the
        direct path, and on :class:`pyrtl.Simulation` and :class:`pyrtl.FastSimulation`
        (whose ``inspect_mem`` is the memory itself); not on a CompiledSimulation of another
        PyRTL release."""
        return self.direct or not isinstance(self._sim, pyrtl.CompiledSimulation)

    def run(
        self,
        cycles: int,
        inputs: Mapping[str, Any] | None = None,
        *,
        outputs: Iterable[str] = (),
    ) -> dict[str, np.ndarray]:
        """Simulate ``cycles`` clock cycles.

        Cycle ``c`` of this call sees ``inputs[name][c]`` on Input ``name``, in every copy
        (copies differ by what :meth:`write_memory` stores in each). An Input given
        fewer values than ``cycles`` is 0 in the remaining cycles, and an Input not named is 0
        in every cycle (as :meth:`pyrtl.CompiledSimulation.run` treats a missing value), so a
        pulse is just a short array: ``{"start": [1]}``.

        Each input's values are one of:

        - a 1-D array of integers (any NumPy integer dtype, or Python integers in an object
          array for inputs wider than 64 bits), one per cycle. Negative values mean two's
          complement: a ``b``-bit input accepts ``-2**(b-1)`` to ``2**b - 1``;
        - a 2-D array of unsigned integers, one row per cycle, holding each value as
          little-endian words of the dtype's width: e.g. ``uint8 [n, 16]`` for a 128-bit
          input, byte ``j`` in bits ``[8j, 8j+8)``. This packs wide inputs without Python
          integers.

        :param cycles: clock cycles to simulate.
        :param inputs: values by Input name.
        :param outputs: names of Outputs to return for every cycle. On the public path (see
            :attr:`direct`) a CompiledSimulation can only report wires its tracer records.
        :returns: by Output name, its value in each cycle after that cycle's combinational
            logic settles (what ``sim.inspect`` shows after ``step``): ``uint64 [cycles]`` for
            Outputs up to 64 bits, ``uint64 [cycles, limbs]`` (little-endian 64-bit limbs)
            for wider ones; with :attr:`copies` above 1, an axis of copies after the first
            (``[cycles, copies]``, ``[cycles, copies, limbs]``).
        :raises TypeError: if ``cycles`` is not an integer.
        :raises ValueError: for an unknown name, too many values, or a value that does not
            fit its Input.
        """
        cycles = non_negative_int("cycles", cycles)
        packed: dict[str, np.ndarray] = {}
        for name, values in (inputs or {}).items():
            if name not in self._inputs:
                raise ValueError(f"the design has no Input named {name!r}")
            limbs = _limbs_of(f"input {name}", values, self._inputs[name].bitwidth)
            if len(limbs) > cycles:
                raise ValueError(
                    f"input {name} is given {len(limbs)} values for a run of {cycles} cycles"
                )
            packed[name] = limbs
        wanted = list(outputs)
        for name in wanted:
            if name not in self._outputs:
                raise ValueError(f"the design has no Output named {name!r}")
        if isinstance(self._sim, NativeKernel):
            return self._run_native(cycles, packed, wanted)
        if self.direct:
            return self._run_direct(cycles, packed, wanted)
        return self._run_public(cycles, packed, wanted)

    def _run_native(
        self, cycles: int, packed: dict[str, np.ndarray], wanted: list[str]
    ) -> dict[str, np.ndarray]:
        kernel = self._sim
        stimulus = np.zeros((cycles, kernel.copies, kernel.input_limbs), np.uint64)
        for name, limbs in packed.items():
            place = kernel.inputs[name]
            stimulus[: len(limbs), :, place.start : place.start + place.limbs] = limbs[:, None]
        response = kernel.run(stimulus)
        if kernel.copies == 1:
            response = response[:, 0]
        result = {}
        for name in wanted:
            place = kernel.outputs[name]
            values = response[..., place.start : place.start + place.limbs]
            result[name] = values[..., 0].copy() if place.limbs == 1 else values.copy()
        return result

    def _run_direct(
        self, cycles: int, packed: dict[str, np.ndarray], wanted: list[str]
    ) -> dict[str, np.ndarray]:
        sim = self._sim
        # The layout CompiledSimulation.run fills: cycle-major, each Input's limbs at
        # [start, start + length) of its cycle's row, least significant limb first.
        stimulus = np.zeros((cycles, sim._inputs_array_length), np.uint64)
        for name, limbs in packed.items():
            meta = sim._inputs_metadata[name]
            stimulus[: len(limbs), meta.start : meta.start + meta.length] = limbs
        response = np.zeros((cycles, max(1, sim._outputs_array_length)), np.uint64)
        if cycles:
            self._kernel(cycles, stimulus.ctypes.data, response.ctypes.data)
        result = {}
        for name in wanted:
            meta = sim._outputs_metadata[name]
            values = response[:, meta.start : meta.start + meta.length]
            result[name] = values[:, 0].copy() if meta.length == 1 else values.copy()
        return result

    def _run_public(
        self, cycles: int, packed: dict[str, np.ndarray], wanted: list[str]
    ) -> dict[str, np.ndarray]:
        sim = self._sim
        compiled = isinstance(sim, pyrtl.CompiledSimulation)
        # Simulation and FastSimulation want every Input in every cycle.
        steps: list[dict[str, int]] = [
            {} if compiled else dict.fromkeys(self._inputs, 0) for _ in range(cycles)
        ]
        for name, limbs in packed.items():
            for step, value in zip(steps, _to_ints(limbs), strict=False):
                step[name] = value
        widths = {name: (self._outputs[name].bitwidth + 63) // 64 for name in wanted}
        seen = {name: np.zeros((cycles, widths[name]), np.uint64) for name in wanted}
        if compiled and not wanted:
            if steps:
                sim.run(steps)  # one C call; it records only the first cycle's outputs
        else:
            for cycle, step in enumerate(steps):
                sim.step(step)
                for name in wanted:
                    value = sim.inspect(name)
                    for limb in range(widths[name]):
                        seen[name][cycle, limb] = (value >> (64 * limb)) & 0xFFFF_FFFF_FFFF_FFFF
        return {name: v[:, 0] if widths[name] == 1 else v for name, v in seen.items()}

    def write_memory(
        self, memory: pyrtl.MemBlock, words: Any, *, start: int = 0, copy: int = 0
    ) -> None:
        """Store ``words`` at addresses ``start, start + 1, ..`` of ``memory``, between cycles.

        The next cycle simulated reads the new words, as if a write port had written them in
        the last cycle, but no cycle is simulated: loading ``n`` words through a port costs
        ``n`` evaluations of the whole design, this costs ``n`` stores. Registers, Outputs and
        the cycle count are untouched.

        :param memory: a memory of the simulated block (not a :class:`pyrtl.RomBlock`).
        :param words: one value per address, in any form :meth:`run` accepts for an Input
            of the memory's width (1-D integers, or 2-D little-endian unsigned words per row).
        :param start: the first address written.
        :param copy: the copy of the design whose memory is written (below :attr:`copies`).
        :raises TypeError: if ``start`` is not an integer.
        :raises ValueError: for a memory not in the block, words that do not fit its width,
            or addresses past its end.
        :raises NotImplementedError: if :attr:`writes_memories` is ``False``.
        """
        start = non_negative_int("start", start)
        copy = self._copy(copy)
        memory = self._simulated(memory)
        limbs = _limbs_of(
            f"memory {memory.name}", words, memory.bitwidth, lambda i: f"for address {start + i}"
        )
        if start + len(limbs) > 1 << memory.addrwidth:
            raise ValueError(
                f"memory {memory.name} has {1 << memory.addrwidth} addresses; {len(limbs)} "
                f"words from address {start} do not fit"
            )
        if isinstance(self._sim, NativeKernel):
            self._sim.memory(memory)[copy, start : start + len(limbs)] = limbs
        elif self.direct:
            rows = np.ascontiguousarray(limbs)
            _memory_helpers().store_words(
                self._insert, self._table(memory), start, len(rows), rows.shape[1], rows.ctypes
            )
        elif self.writes_memories:
            view = self._sim.inspect_mem(memory)
            for index, value in enumerate(_to_ints(limbs)):
                view[start + index] = value
        else:
            raise NotImplementedError(
                f"writing a memory of a CompiledSimulation needs PyRTL "
                f"{' or '.join(TESTED_PYRTL_VERSIONS)} (this is {_pyrtl_version()}); load it "
                f"through a write port with run() instead"
            )

    def read_memory(self, memory: pyrtl.MemBlock, count: int, *, copy: int = 0) -> np.ndarray:
        """Addresses ``0 .. count-1`` of ``memory`` (never written: 0).

        :param memory: a memory of the simulated block (not a :class:`pyrtl.RomBlock`, which
            the compiled and fast simulators cannot inspect).
        :param count: how many addresses, from 0.
        :param copy: the copy of the design whose memory is read (below :attr:`copies`).
        :returns: ``uint64 [count]`` for memories up to 64 bits wide, else
            ``uint64 [count, limbs]`` (little-endian 64-bit limbs).
        """
        count = non_negative_int("count", count)
        copy = self._copy(copy)
        memory = self._simulated(memory)
        limbs = (memory.bitwidth + 63) // 64
        if count > 1 << memory.addrwidth:
            raise ValueError(
                f"memory {memory.name} has {1 << memory.addrwidth} addresses, not {count}"
            )
        if isinstance(self._sim, NativeKernel):
            words = self._sim.memory(memory)[copy, :count].copy()
            return words[:, 0] if limbs == 1 else words
        words = np.zeros((count, limbs), np.uint64)
        if self.direct:
            _memory_helpers().load_words(
                self._lookup, self._table(memory), count, limbs, words.ctypes
            )
            return words[:, 0] if limbs == 1 else words
        view = self._sim.inspect_mem(memory)
        for address in range(count):
            value = view.get(address, 0)
            for limb in range(limbs):
                words[address, limb] = (value >> (64 * limb)) & 0xFFFF_FFFF_FFFF_FFFF
        return words[:, 0] if limbs == 1 else words

    def _copy(self, copy: int) -> int:
        copy = non_negative_int("copy", copy)
        if copy >= self.copies:
            raise ValueError(f"copy must be below {self.copies}, the copies simulated, not {copy}")
        return copy

    def _simulated(self, memory: pyrtl.MemBlock) -> pyrtl.MemBlock:
        """``memory``, or its copy in the simulated block, checked."""
        if not isinstance(memory, pyrtl.MemBlock):
            raise TypeError(f"memory must be a pyrtl.MemBlock, not {type(memory).__name__}")
        memory = self._memory_copies.get(memory, memory)
        if memory not in self._memories:
            raise ValueError(f"{memory.name!r} is not a read-write memory of the simulated block")
        return memory

    def _table(self, memory: pyrtl.MemBlock) -> int:
        """The address of the generated C's hash table holding ``memory``."""
        return ctypes.c_void_p.in_dll(self._sim._dll, self._sim.var_names[memory]).value
