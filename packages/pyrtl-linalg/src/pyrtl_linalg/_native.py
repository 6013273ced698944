"""A PyRTL block compiled to one C function of the whole simulation, written from its netlist.

:class:`pyrtl.CompiledSimulation` keeps every wire in a ``uint64_t`` array in memory, adds
carry logic to every addition, multiplies through a 128-bit ``mulq`` in inline assembly (which
the C compiler cannot fold), and keeps memories in hash tables. That is general, but on a
word-level design it spends several instructions where one would do. :class:`NativeKernel`
writes the same netlist as C a compiler can optimise:

- every wire is a local ``V`` per 64-bit limb (a ``uint64_t``; one limb holds most wires),
  assigned once per cycle in dependency order, so the compiler keeps most of them in machine
  registers;
- each net is one C expression per limb: ``a + b``, ``(a - b) & mask``, ``a * b``, a
  branch-free select, shifts and masks for selections and concatenations; a run of one
  repeated 1-bit wire in a concatenation (a sign extension) is ``-bit & mask``. Sums,
  differences and orderings wider than 64 bits carry from limb to limb; a product of two
  64-bit operands goes through ``unsigned __int128``;
- registers and memories live in one ``struct`` the caller allocates: a register is read into
  a local at the start of a cycle and written at its end, a memory is a plain array indexed by
  its address, a ROM a ``static const`` array.

One call of the compiled ``run`` simulates any number of cycles from a cycle-major buffer of
Input values and writes every Output of every cycle to another, so Python costs nothing per
cycle; it can also simulate several copies of the design at once, one per SIMD lane. The
semantics are PyRTL's: an Output shows its value after the cycle's logic settles, a memory read
sees the contents before the cycle's writes, registers start at their ``reset_value`` (or 0)
and memories at 0.

:func:`unsupported_reason` says why a block is refused (a multiplication of operands wider
than 64 bits), so a caller can fall back to :class:`pyrtl.CompiledSimulation`. Compiled kernels
are kept in :func:`cache_directory` by the hash of their C, so only the first simulation of a
design pays for the C compiler; every kernel object has its own state.
"""

from __future__ import annotations

import ctypes
import functools
import hashlib
import os
import re
import subprocess
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyrtl

from ._validate import is_int

__all__ = [
    "CACHE_VARIABLE",
    "COPIES",
    "NativeKernel",
    "PortLayout",
    "cache_directory",
    "unsupported_reason",
]

#: The numbers of copies a kernel can simulate together (lanes of a GCC vector).
COPIES = (1, 2, 4, 8, 16)

#: The C compiler's command line (before the source and output paths). Measured on the
#: 12,000-net kernel of a 16x16 array: ``-O2`` and ``-O3`` compile two to three times longer
#: and run no faster, as the code is too large for the instruction cache either way; register
#: allocation is most of ``-O1``'s time, and ``-fira-region=one`` (one region for the whole
#: function, not one per loop) takes a quarter of it off. ``-march=native`` picks the vector
#: width of the machine that runs the kernel, which is the one that compiles it.
CFLAGS = (
    "gcc",
    "-O1",
    "-fira-region=one",
    "-march=native",
    "-std=gnu11",
    "-shared",
    "-fPIC",
)


@dataclass(frozen=True)
class PortLayout:
    """Where one port's value sits in a cycle's row of the input or output buffer.

    :param start: index of its least significant 64-bit limb in the row.
    :param limbs: its 64-bit limbs, least significant first: ``ceil(bitwidth / 64)``.
    """

    start: int
    limbs: int


def unsupported_reason(block: pyrtl.Block) -> str | None:
    """Why :class:`NativeKernel` cannot compile ``block``, or ``None`` when it can.

    Every PyRTL op on wires of any width compiles, except a multiplication with an operand
    wider than 64 bits (a product up to 128 bits of two 64-bit operands is fine).
    """
    for net in block.logic:
        if net.op not in _OPS:
            return f"the native kernel has no translation of PyRTL op {net.op!r}"
        if net.op == "*" and max(arg.bitwidth for arg in net.args) > 64:
            wide = max(net.args, key=lambda arg: arg.bitwidth)
            return (
                f"a multiplication of wire {wide.name} of {wide.bitwidth} bits; the native "
                f"kernel multiplies operands of up to 64 bits"
            )
    return None


def check_copies(copies: int) -> int:
    """``copies`` if it is one of :data:`COPIES`.

    :raises ValueError: if it is not.
    """
    if not is_int(copies) or copies not in COPIES:
        raise ValueError(f"copies must be 1, 2, 4, 8 or 16, not {copies!r}")
    return copies


class NativeKernel:
    """``block`` compiled to C: many cycles per call, state in a NumPy buffer.

    With ``copies`` above 1 the kernel simulates that many independent copies of the design
    at once, each with its own registers, memories and Inputs, one in each lane of a SIMD
    vector. With 512-bit vectors, a cycle of eight copies of a 12,000-net design took about
    3.5 times a cycle of one (eight copies of a 1,000-net design about 6 times, as one copy of
    a small design already runs from the instruction cache).

    :param block: the design (not changed); see :func:`unsupported_reason`.
    :param copies: copies simulated together, a power of two from 1 to 16.
    :raises TypeError: if ``block`` is not a :class:`pyrtl.Block`.
    :raises ValueError: for a block :func:`unsupported_reason` refuses, or bad ``copies``.
    :raises RuntimeError: if the C compiler fails (its message included).
    """

    def __init__(self, block: pyrtl.Block, *, copies: int = 1) -> None:
        if not isinstance(block, pyrtl.Block):
            raise TypeError(f"block must be a pyrtl.Block, not {type(block).__name__}")
        check_copies(copies)
        block.sanity_check()
        reason = unsupported_reason(block)
        if reason is not None:
            raise ValueError(reason)
        source = _Writer(block, copies)
        #: The block compiled.
        self.block = block
        #: Copies of the design simulated together.
        self.copies = copies
        #: Each Input's place in a copy's row of the buffer :meth:`run` reads, by name.
        self.inputs: dict[str, PortLayout] = source.inputs
        #: Each Output's place in a copy's row of the buffer :meth:`run` writes, by name.
        self.outputs: dict[str, PortLayout] = source.outputs
        #: 64-bit limbs in one copy's row of the input buffer.
        self.input_limbs = source.input_limbs
        #: 64-bit limbs in one copy's row of the output buffer.
        self.output_limbs = source.output_limbs
        self._library = _load(source.text)
        self._state = np.zeros(-(-self._library.state_size() // 8), np.uint64)
        self._library.initialize(self._state.ctypes.data)
        self._memories = {
            memory: self._library.memory_offset(index)
            for index, memory in enumerate(source.memories)
        }

    @property
    def memories(self) -> list[pyrtl.MemBlock]:
        """The block's read-write memories (not ROMs), which :meth:`memory` exposes."""
        return list(self._memories)

    def memory(self, memory: pyrtl.MemBlock) -> np.ndarray:
        """The live contents of ``memory`` in every copy: ``uint64 [copies, 2**addrwidth,
        limbs]`` (64-bit limbs, least significant first), a view into the kernel's state:
        writing it changes what the next cycle reads.

        :raises KeyError: for a memory that is not a read-write memory of the block.
        """
        offset = self._memories[memory]
        shape = (self.copies, 1 << memory.addrwidth, _limbs(memory.bitwidth))
        words = self._state.view(np.uint8)[offset : offset + 8 * int(np.prod(shape))]
        return words.view(np.uint64).reshape(shape)

    def run(self, stimulus: np.ndarray) -> np.ndarray:
        """Simulate one cycle per row of ``stimulus``.

        :param stimulus: ``uint64 [cycles, copies, input_limbs]``: row ``[c, k]`` holds the
            Inputs of copy ``k`` in cycle ``c`` at their :attr:`inputs` places (bits above an
            Input's width are ignored).
        :returns: ``uint64 [cycles, copies, output_limbs]``: every Output of every cycle.
        :raises ValueError: for a stimulus of another dtype or shape.
        """
        stimulus = np.asarray(stimulus)
        expected = (self.copies, self.input_limbs)
        if stimulus.dtype != np.uint64 or stimulus.ndim != 3 or stimulus.shape[1:] != expected:
            raise ValueError(
                f"stimulus must be uint64 [cycles, {expected[0]}, {expected[1]}], not "
                f"{stimulus.dtype} of shape {list(stimulus.shape)}"
            )
        cycles = len(stimulus)
        # The C reads one limb of every copy as one vector: [cycle, limb, copy].
        packed = np.ascontiguousarray(stimulus.transpose(0, 2, 1))
        response = np.zeros((cycles, self.output_limbs, self.copies), np.uint64)
        if cycles:
            self._library.run(
                self._state.ctypes.data, cycles, packed.ctypes.data, response.ctypes.data
            )
        return response.transpose(0, 2, 1)


# -- C ---------------------------------------------------------------------------------------

#: Ops with a carry (or borrow) from one 64-bit limb to the next.
_CARRIED = set("+-<>")

#: Each op's C, for operands and result of one limb: ``{0}``, ``{1}``, .. name the operands.
_OPS = {
    "w": "{0}",
    "~": "~{0}",
    "&": "{0} & {1}",
    "|": "{0} | {1}",
    "^": "{0} ^ {1}",
    "n": "~({0} & {1})",
    "+": "{0} + {1}",
    "-": "{0} - {1}",
    "*": "{0} * {1}",
    "=": "EQ({0}, {1})",
    "<": "LT({0}, {1})",
    ">": "GT({0}, {1})",
    "x": "MUX({0}, {1}, {2})",
    "c": None,  # _Writer._segments
    "s": None,  # _Writer._segments
    "m": None,  # a memory read, lane by lane
    "r": None,  # a register's next value
    "@": None,  # a memory write, lane by lane
}

#: Ops whose result can have bits above the destination's width in its top limb.
_MASKED = set("~n-")

#: Ops applied limb by limb to operands and result of the same width.
_LIMBWISE = set("w~&|^nx")


def _prelude(lanes: int) -> str:
    """Types and macros: ``V`` holds one 64-bit limb of a wire in each of ``lanes`` lanes.

    With one lane ``V`` is a ``uint64_t``. With more it is a GCC vector, so one C operation
    is one operation on every lane (one SIMD instruction where the machine has them); GCC's
    vector comparisons give -1 or 0 where a 1-bit wire holds 1 or 0, hence the ``& 1``, and
    ``aligned(8)`` lets a ``V`` sit anywhere in a NumPy buffer. ``LANE(x, l)`` is lane ``l``.
    """
    if lanes == 1:
        types = """\
typedef uint64_t V;
#define SPLAT(x) ((V)(x))
#define EQ(a, b) ((V)((a) == (b)))
#define LT(a, b) ((V)((a) < (b)))
#define GT(a, b) ((V)((a) > (b)))
#define MUX(s, a, b) (((b) & -(s)) | ((a) & ((s) - 1)))
#define LANE(x, l) (x)
"""
    else:
        types = """\
typedef uint64_t V __attribute__((vector_size(8 * LANES), aligned(8)));
#define SPLAT(x) ((V){0} + (uint64_t)(x))
#define EQ(a, b) ((V)((a) == (b)) & 1)
#define LT(a, b) ((V)((a) < (b)) & 1)
#define GT(a, b) ((V)((a) > (b)) & 1)
#define MUX(s, a, b) (((b) & -(s)) | ((a) & ((s) - 1)))
#define LANE(x, l) ((x)[l])
"""
    head = "#include <stddef.h>\n#include <stdint.h>\n#include <string.h>\n"
    return f"{head}#define LANES {lanes}\n{types}"


def _limbs(bitwidth: int) -> int:
    return (bitwidth + 63) // 64


def _literal(value: int) -> str:
    return f"SPLAT(UINT64_C({value:#x}))"


def _top_mask(bitwidth: int) -> str | None:
    """The mask of a ``bitwidth``-bit wire's top limb, or ``None`` if it fills the limb."""
    bits = bitwidth % 64
    return f"UINT64_C({(1 << bits) - 1:#x})" if bits else None


class _Writer:
    """The C source of one block, with its port layouts and memory order."""

    def __init__(self, block: pyrtl.Block, lanes: int) -> None:
        self._names: dict[pyrtl.WireVector, str] = {}
        self._block, self._lanes = block, lanes
        self.memories = _memories(block, rom=False)
        self._roms = _memories(block, rom=True)
        self.inputs, self.input_limbs = _layout(block.wirevector_subset(pyrtl.Input))
        self.outputs, self.output_limbs = _layout(block.wirevector_subset(pyrtl.Output))
        self.text = "\n".join(self._lines())

    def _limb(self, wire: pyrtl.WireVector, limb: int) -> str:
        """C for limb ``limb`` of ``wire`` (a ``V``)."""
        if isinstance(wire, pyrtl.Const):
            return _literal((wire.val >> (64 * limb)) & ((1 << 64) - 1))
        name = self._names.get(wire)
        if name is None:
            name = self._names[wire] = f"w{len(self._names)}"
        return f"{name}_{limb}" if _limbs(wire.bitwidth) > 1 else name

    def _limb_or_zero(self, wire: pyrtl.WireVector, limb: int) -> str:
        """Limb ``limb`` of ``wire``, or 0 above its top limb."""
        return self._limb(wire, limb) if limb < _limbs(wire.bitwidth) else "SPLAT(0)"

    def _each_limb(self, wire: pyrtl.WireVector) -> list[str]:
        return [self._limb(wire, limb) for limb in range(_limbs(wire.bitwidth))]

    def _lines(self) -> Iterator[str]:
        block = self._block
        nets = _sorted_nets(block)
        updates = [(net.dests[0], net.args[0]) for net in nets if net.op == "r"]
        registers = [register for register, _ in updates]
        writes = [net for net in nets if net.op == "@"]
        yield _prelude(self._lanes)
        for index, rom in enumerate(self._roms):
            yield from _rom_table(f"rom{index}", rom)
        yield "typedef struct {"
        for register in registers:
            yield from (f"    V {limb};" for limb in self._each_limb(register))
        for index, memory in enumerate(self.memories):
            shape = f"[LANES][{1 << memory.addrwidth}][{_limbs(memory.bitwidth)}]"
            yield f"    uint64_t m{index}{shape};"
        yield "    uint8_t unused;"  # a block without state still has a struct
        yield "} state_t;"
        yield "size_t state_size(void) { return sizeof(state_t); }"
        offsets = ", ".join(f"offsetof(state_t, m{i})" for i in range(len(self.memories)))
        yield f"static const size_t offsets[] = {{{offsets or '0'}}};"
        yield "size_t memory_offset(int index) { return offsets[index]; }"
        yield "void initialize(state_t *s) {"
        yield "    memset(s, 0, sizeof *s);"
        for register in registers:
            for limb, name in enumerate(self._each_limb(register)):
                value = ((register.reset_value or 0) >> (64 * limb)) & ((1 << 64) - 1)
                if value:
                    yield f"    s->{name} = {_literal(value)};"
        yield "}"
        yield "void run(state_t *s, uint64_t cycles, const uint64_t *in, uint64_t *out) {"
        yield f"    for (uint64_t c = 0; c < cycles; c++, in += {self.input_limbs} * LANES, "
        yield f"         out += {self.output_limbs} * LANES) {{"
        yield "        V t;"
        for wire in _by_name(block.wirevector_subset(pyrtl.Input)):
            start = self.inputs[wire.name].start
            names = self._each_limb(wire)
            for limb, name in enumerate(names):
                yield f"        V {name}; memcpy(&{name}, in + {start + limb} * LANES, sizeof t);"
            mask = _top_mask(wire.bitwidth)
            if mask:  # a value wider than its Input must not reach past a memory's end
                yield f"        {names[-1]} &= {mask};"
        for register in registers:
            for name in self._each_limb(register):
                yield f"        const V {name} = s->{name};"
        for net in _combinational_order(nets):
            yield from (f"        {line}" for line in self._net(net))
        for wire in _by_name(block.wirevector_subset(pyrtl.Output)):
            start = self.outputs[wire.name].start
            for limb, name in enumerate(self._each_limb(wire)):
                yield f"        memcpy(out + {start + limb} * LANES, &{name}, sizeof t);"
        for register, value in updates:
            for limb, name in enumerate(self._each_limb(register)):
                yield f"        s->{name} = {self._limb(value, limb)};"
        for net in writes:
            yield from (f"        {line}" for line in self._write(net))
        yield "    }"
        yield "}"

    def _net(self, net: pyrtl.LogicNet) -> Iterator[str]:
        dest = net.dests[0]
        names = self._each_limb(dest)
        if net.op == "m":
            yield from self._read(net, names)
            return
        if net.op in "cs":
            expressions = self._segments(net)
        elif net.op in _LIMBWISE:
            expressions = []
            for limb in range(len(names)):
                args = [self._limb(arg, min(limb, _limbs(arg.bitwidth) - 1)) for arg in net.args]
                if net.op == "x":  # the select is one bit: its limb 0 for every limb
                    args[0] = self._limb(net.args[0], 0)
                expressions.append(_OPS[net.op].format(*args))
        elif net.op == "=":
            pairs = zip(self._each_limb(net.args[0]), self._each_limb(net.args[1]), strict=True)
            expressions = [" & ".join(f"EQ({a}, {b})" for a, b in pairs)]
        elif net.op in _CARRIED and max(_limbs(w.bitwidth) for w in (*net.args, dest)) > 1:
            yield from self._carried(net, names)
            return
        elif net.op == "*" and len(names) > 1:
            yield from self._wide_product(net, names)
            return
        else:
            expressions = [_OPS[net.op].format(*(self._limb(arg, 0) for arg in net.args))]
        mask = _top_mask(dest.bitwidth)
        if net.op in _MASKED and mask:
            expressions[-1] = f"({expressions[-1]}) & {mask}"
        for name, expression in zip(names, expressions, strict=True):
            yield f"const V {name} = {expression};"

    def _carried(self, net: pyrtl.LogicNet, names: list[str]) -> Iterator[str]:
        """``+``, ``-``, ``<`` or ``>`` over several limbs, from the least significant one.

        A limb's carry of a sum ``s = a + b + c`` (``c`` the carry in, 0 or 1) is
        ``s < a``, or ``s == a`` with ``c`` set; a difference's borrow is ``a < b``, or
        ``a == b`` with the borrow in. ``a < b`` over limbs is the lowest limb's ``a < b``,
        overruled by each higher limb where the two differ.
        """
        a, b = net.args
        count = max(_limbs(a.bitwidth), _limbs(b.bitwidth), len(names))
        x = [self._limb_or_zero(a, i) for i in range(count)]
        y = [self._limb_or_zero(b, i) for i in range(count)]
        if net.op in "<>":
            if net.op == ">":
                x, y = y, x
            result = f"LT({x[0]}, {y[0]})"
            for i in range(1, count):
                result = f"(LT({x[i]}, {y[i]}) | (EQ({x[i]}, {y[i]}) & {result}))"
            yield f"const V {names[0]} = {result};"
            return
        carry = None
        for i, name in enumerate(names):
            expression = f"{x[i]} {net.op} {y[i]}" + (f" {net.op} {carry}" if carry else "")
            if i == len(names) - 1:
                mask = _top_mask(net.dests[0].bitwidth)
                if net.op == "-" and mask:
                    expression = f"({expression}) & {mask}"
                yield f"const V {name} = {expression};"
                break
            yield f"const V {name} = {expression};"
            left, right = (name, x[i]) if net.op == "+" else (x[i], y[i])
            out = f"LT({left}, {right})"
            if carry:
                out += f" | (EQ({left}, {right}) & {carry})"
            yield f"const V {name}c = {out};"
            carry = f"{name}c"

    def _wide_product(self, net: pyrtl.LogicNet, names: list[str]) -> Iterator[str]:
        """A product of two operands of up to 64 bits in two limbs, through ``__int128``,
        lane by lane (there is no vector instruction for a 128-bit product)."""
        a, b = (self._limb(arg, 0) for arg in net.args)
        low, high = names
        yield f"V {low}, {high};"
        product = f"(unsigned __int128)LANE({a}, l) * LANE({b}, l)"
        yield (
            f"for (int l = 0; l < LANES; l++) {{ unsigned __int128 p = {product}; "
            f"LANE({low}, l) = (uint64_t)p; LANE({high}, l) = (uint64_t)(p >> 64); }}"
        )

    def _segments(self, net: pyrtl.LogicNet) -> list[str]:
        """A concatenation or selection as pieces of its operands, placed limb by limb.

        Each piece is ``(wire, low bit, length)`` from the least significant end, or a run
        of one repeated 1-bit wire (a sign extension), ``(wire, None, count)``.
        """
        if net.op == "s":
            pieces = [(net.args[0], low, length) for low, length in _index_runs(net.op_param)]
        else:
            pieces = []
            for arg, count in reversed(list(_runs(net.args))):
                pieces.append((arg, None, count) if count > 1 else (arg, 0, arg.bitwidth))
        limbs = [[] for _ in range(_limbs(net.dests[0].bitwidth))]
        position = 0
        for wire, low, length in pieces:
            end = position + length
            while position < end:  # split at destination limb boundaries
                limb, offset = divmod(position, 64)
                take = min(end - position, 64 - offset)
                if low is None:
                    term = f"((SPLAT(0) - {self._limb(wire, 0)}) & UINT64_C({(1 << take) - 1:#x}))"
                else:
                    term = self._bits(wire, low + position - (end - length), take)
                limbs[limb].append(f"({term} << {offset})" if offset else term)
                position += take
        return [" | ".join(terms) if terms else "SPLAT(0)" for terms in limbs]

    def _bits(self, wire: pyrtl.WireVector, low: int, length: int) -> str:
        """Bits ``[low, low + length)`` of ``wire`` (``length`` at most 64), at bit 0."""
        limb, shift = divmod(low, 64)
        term = self._limb(wire, limb)
        if shift:
            term = f"({term} >> {shift})"
        if shift and shift + length > 64:  # the rest comes from the next limb up
            term = f"({term} | ({self._limb(wire, limb + 1)} << {64 - shift}))"
        if low + length < wire.bitwidth and length < 64:
            term = f"({term} & UINT64_C({(1 << length) - 1:#x}))"
        return term

    def _read(self, net: pyrtl.LogicNet, names: list[str]) -> Iterator[str]:
        """A memory or ROM read: each lane reads its own memory (a ROM is shared)."""
        memory, address = net.op_param[1], self._limb(net.args[0], 0)
        if isinstance(memory, pyrtl.RomBlock):
            table = f"rom{self._roms.index(memory)}[LANE({address}, l)]"
        else:
            table = f"s->m{self.memories.index(memory)}[l][LANE({address}, l)]"
        yield f"V {', '.join(names)};"
        assignments = " ".join(f"LANE({name}, l) = {table}[{i}];" for i, name in enumerate(names))
        yield f"for (int l = 0; l < LANES; l++) {{ {assignments} }}"

    def _write(self, net: pyrtl.LogicNet) -> Iterator[str]:
        address, data, enable = net.args
        memory = f"s->m{self.memories.index(net.op_param[1])}"
        where = f"{memory}[l][LANE({self._limb(address, 0)}, l)]"
        stores = " ".join(
            f"{where}[{limb}] = LANE({name}, l);" for limb, name in enumerate(self._each_limb(data))
        )
        enabled = f"LANE({self._limb(enable, 0)}, l)"
        yield f"for (int l = 0; l < LANES; l++) if ({enabled}) {{ {stores} }}"


def _rom_table(name: str, rom: pyrtl.RomBlock) -> Iterator[str]:
    limbs = _limbs(rom.bitwidth)
    yield f"static const uint64_t {name}[][{limbs}] = {{"
    for word in _rom_words(rom):
        parts = ", ".join(f"{(word >> (64 * i)) & ((1 << 64) - 1):#x}" for i in range(limbs))
        yield f"{{{parts}}},"
    yield "};"


def _index_runs(indices: tuple[int, ...]) -> Iterator[tuple[int, int]]:
    """A selection's bit indices as runs of consecutive bits: ``(low, length)``."""
    index = 0
    while index < len(indices):
        low, length = indices[index], 1
        while index + length < len(indices) and indices[index + length] == low + length:
            length += 1
        yield low, length
        index += length


def _runs(args: Iterable[pyrtl.WireVector]) -> Iterator[tuple[pyrtl.WireVector, int]]:
    """Consecutive repeats of the same 1-bit wire grouped: ``(wire, count)``."""
    previous, count = None, 0
    for arg in args:
        if arg is previous and arg.bitwidth == 1:
            count += 1
            continue
        if previous is not None:
            yield previous, count
        previous, count = arg, 1
    if previous is not None:
        yield previous, count


def _layout(ports: Iterable[pyrtl.WireVector]) -> tuple[dict[str, PortLayout], int]:
    """Ports in name order, each at the next free limb."""
    layout, start = {}, 0
    for port in _by_name(ports):
        limbs = (port.bitwidth + 63) // 64
        layout[port.name] = PortLayout(start, limbs)
        start += limbs
    return layout, start


def _by_name(wires: Iterable[pyrtl.WireVector]) -> list[pyrtl.WireVector]:
    return sorted(wires, key=lambda wire: wire.name)


def _memories(block: pyrtl.Block, *, rom: bool) -> list[pyrtl.MemBlock]:
    """The block's memories (or ROMs) in name order, each once."""
    found = {}
    for net in block.logic:
        if net.op in "m@" and isinstance(net.op_param[1], pyrtl.RomBlock) == rom:
            found.setdefault(net.op_param[1], None)
    return sorted(found, key=lambda memory: memory.name)


def _rom_words(rom: pyrtl.RomBlock) -> list[int]:
    """Every address of ``rom``, as PyRTL's simulators read it (missing entries are 0)."""
    words = []
    for address in range(1 << rom.addrwidth):
        if callable(rom.data):
            value = rom.data(address)
        elif isinstance(rom.data, Mapping):  # address -> word, as PyRTL's simulators read it
            value = rom.data.get(address, 0)
        elif address < len(rom.data):
            value = rom.data[address]
        else:
            value = 0
        words.append(int(value) & ((1 << rom.bitwidth) - 1))
    return words


def _sorted_nets(block: pyrtl.Block) -> list[pyrtl.LogicNet]:
    """``block.logic`` (a set) in an order fixed by wire names, so that one design always
    gives the same C, and so finds its compiled kernel in the cache.

    PyRTL names unnamed wires ``tmp<n>`` from a counter shared by every block of the process,
    so the same design built after another has the same temporaries under higher numbers:
    they sort by number (their order of creation), which an offset does not change.
    """

    def name_key(wire: pyrtl.WireVector) -> tuple[int, str | int]:
        number = _TEMPORARY.fullmatch(wire.name)
        return (1, int(number[1])) if number else (0, wire.name)

    def key(net: pyrtl.LogicNet) -> tuple[object, ...]:
        return (net.op, *(name_key(wire) for wire in net.dests or net.args))

    return sorted(block.logic, key=key)


#: The name PyRTL gives an unnamed wire.
_TEMPORARY = re.compile(r"tmp(\d+)")


def _combinational_order(sorted_nets: list[pyrtl.LogicNet]) -> list[pyrtl.LogicNet]:
    """The nets computed within a cycle (not register updates, not memory writes), each after
    the nets its arguments come from; ties in the order of ``sorted_nets``."""
    nets = [net for net in sorted_nets if net.op not in "r@"]
    producer = {net.dests[0]: net for net in nets}
    order, state = [], {}
    for root in nets:  # depth-first, iteratively: netlists are deeper than Python's stack
        if root in state:
            continue
        state[root] = "open"
        stack = [(root, iter(root.args))]
        while stack:
            net, pending = stack[-1]
            for arg in pending:
                source = producer.get(arg)
                if source is not None and source not in state:
                    state[source] = "open"
                    stack.append((source, iter(source.args)))
                    break
            else:
                stack.pop()
                state[net] = "done"
                order.append(net)
    return order


# -- compiling -------------------------------------------------------------------------------


#: The environment variable naming the directory of compiled kernels.
CACHE_VARIABLE = "PYRTL_LINALG_CACHE"


def cache_directory() -> Path:
    """Where compiled kernels are kept: ``$PYRTL_LINALG_CACHE``, else
    ``$XDG_CACHE_HOME/pyrtl-linalg/kernels`` (``~/.cache/..`` by default).

    A kernel is a file named by the hash of its C and of the compiler and machine it was
    compiled for, so a kernel found there is always the one that would be compiled, and a
    second simulation of a design (in another process, or another day) skips the C compiler.
    Delete the directory at any time to reclaim its space.
    """
    chosen = os.environ.get(CACHE_VARIABLE)
    if chosen:
        return Path(chosen)
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base, "pyrtl-linalg", "kernels")


@functools.cache
def _compiler_identity() -> str:
    """The compiler's version and the target it compiles for (``-march=native`` resolves to
    this machine's instruction sets, which its predefined macros list)."""
    commands = [[CFLAGS[0], "--version"], [*CFLAGS[:-2], "-E", "-dM", "-x", "c", "-"]]
    identity = []
    for command in commands:
        try:
            done = subprocess.run(command, input="", capture_output=True, text=True)
        except FileNotFoundError:
            message = f"the native kernel needs a C compiler: {CFLAGS[0]} not found"
            raise RuntimeError(message) from None
        if done.returncode:
            raise RuntimeError(f"{CFLAGS[0]} does not run: {done.stderr.strip()}")
        identity.append(done.stdout)
    return "\n".join(identity)


def _load(source: str) -> ctypes.CDLL:
    """``source`` compiled (or found compiled in :func:`cache_directory`) and loaded."""
    identity = f"{CFLAGS}\n{_compiler_identity()}\n{source}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:32]
    directory = cache_directory()
    library = directory / f"{digest}.so"
    if not library.exists():
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as scratch:
            c_file, partial = Path(scratch, "kernel.c"), Path(scratch, "kernel.so")
            c_file.write_text(source)
            done = subprocess.run(
                [*CFLAGS, str(c_file), "-o", str(partial)], capture_output=True, text=True
            )
            if done.returncode:
                raise RuntimeError(f"the C compiler failed on the kernel: {done.stderr.strip()}")
            partial.replace(library)  # atomic: a concurrent compile of the same C is harmless
    loaded = ctypes.CDLL(str(library))
    word, pointer = ctypes.c_uint64, ctypes.c_void_p
    loaded.state_size.argtypes, loaded.state_size.restype = [], ctypes.c_size_t
    loaded.memory_offset.argtypes, loaded.memory_offset.restype = [ctypes.c_int], ctypes.c_size_t
    loaded.initialize.argtypes, loaded.initialize.restype = [pointer], None
    loaded.run.argtypes, loaded.run.restype = [pointer, word, pointer, pointer], None
    return loaded
