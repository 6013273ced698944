"""WireMatrix2D: a 2-D matrix of signed PyRTL wires with a valid flag."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyrtl

from ._validate import positive_int, signed_range

__all__ = ["WireMatrix2D", "to_signed"]


def to_signed(values: np.ndarray | int, bits: int) -> np.ndarray:
    """Read unsigned ``bits``-bit words as two's complement integers.

    >>> to_signed([0, 127, 128, 255], 8)
    array([   0,  127, -128,   -1])

    :param values: unsigned integers below ``2**bits``.
    :param bits: their width.
    :returns: an int64 array of the same shape (an object array when ``bits > 63``).
    """
    if bits <= 63:  # every value fits an int64, and so does the arithmetic
        array = np.asarray(values).astype(np.int64)
        return np.where(array >= 1 << (bits - 1), array - (1 << bits), array)
    array = np.asarray(values, dtype=object)
    return np.where(array >= 1 << (bits - 1), array - (1 << bits), array)


class WireMatrix2D:
    """A ``rows x cols`` matrix of signed ``bits``-bit wires, plus ``valid``.

    Values are two's complement; ``bits`` is part of the type (every element has exactly that
    width). ``valid`` says the producer drives a meaningful matrix this cycle. There is no
    ``ready``: nothing in this package can stall (every engine runs a fixed schedule), so a
    consumer must take a valid matrix in the cycle it is valid. Unlike
    :class:`pyrtl.rtllib.matrix.Matrix` this class does no arithmetic: it is a typed bundle of
    wires for clocked, streaming designs, with the conversions to and from NumPy that tests and
    testbenches need.

    >>> import numpy as np, pyrtl
    >>> pyrtl.reset_working_block()
    >>> m = WireMatrix2D.from_numpy(np.array([[1, -2], [3, 4]]), bits=8)
    >>> out = m.to_outputs("m")
    >>> sim = pyrtl.Simulation()
    >>> sim.step()
    >>> out.to_numpy(sim)
    array([[ 1, -2],
           [ 3,  4]])

    :param wires: ``rows`` sequences of ``cols`` wires, each ``bits`` wide.
    :param bits: width of every element.
    :param valid: 1-bit valid wire (default: always valid).
    """

    def __init__(
        self,
        wires: Sequence[Sequence[pyrtl.WireVector]],
        *,
        bits: int,
        valid: pyrtl.WireVector | int = 1,
    ) -> None:
        bits = positive_int("bits", bits)
        grid = [list(row) for row in wires]
        if not grid or not grid[0] or any(len(row) != len(grid[0]) for row in grid):
            raise ValueError("wires must be a non-empty rectangle of rows of equal length")
        for i, row in enumerate(grid):
            for j, wire in enumerate(row):
                if len(wire) != bits:
                    raise ValueError(f"element ({i}, {j}) is {len(wire)} bits wide, not {bits}")
        self._wires = grid
        self.bits = bits
        self.valid = pyrtl.as_wires(valid, bitwidth=1)

    @property
    def shape(self) -> tuple[int, int]:
        """``(rows, cols)``."""
        return len(self._wires), len(self._wires[0])

    def __getitem__(self, index: tuple[int, int]) -> pyrtl.WireVector:
        i, j = index
        return self._wires[i][j]

    def row(self, i: int) -> list[pyrtl.WireVector]:
        """The wires of row ``i``."""
        return list(self._wires[i])

    def column(self, j: int) -> list[pyrtl.WireVector]:
        """The wires of column ``j``."""
        return [row[j] for row in self._wires]

    def packed_row(self, i: int) -> pyrtl.WireVector:
        """Row ``i`` as one word, element ``j`` in bits ``[j*bits, (j+1)*bits)``."""
        return pyrtl.concat_list(self.row(i))

    @classmethod
    def from_numpy(cls, values: np.ndarray, *, bits: int) -> WireMatrix2D:
        """Constant wires holding a 2-D integer array (always valid).

        :param values: 2-D integers within the ``bits``-bit signed range.
        :param bits: element width.
        :returns: the matrix.
        """
        values = np.asarray(values)
        if values.ndim != 2 or not np.issubdtype(values.dtype, np.integer):
            raise ValueError(
                f"values must be a 2-D integer array, not {values.dtype} of shape {values.shape}"
            )
        low, high = signed_range(positive_int("bits", bits))
        if values.min() < low or values.max() > high:
            raise ValueError(f"values must be in the {bits}-bit signed range [{low}, {high}]")
        mask = (1 << bits) - 1
        return cls(
            [[pyrtl.Const(int(v) & mask, bitwidth=bits) for v in row] for row in values],
            bits=bits,
        )

    @classmethod
    def from_inputs(cls, shape: tuple[int, int], *, bits: int, name: str) -> WireMatrix2D:
        """Input ports ``{name}_{i}_{j}``, with ``{name}_valid`` as an Input.

        :param shape: ``(rows, cols)``.
        :param bits: element width.
        :param name: prefix of the ports' names.
        :returns: the matrix.
        """
        rows, cols = shape
        return cls(
            [[pyrtl.Input(bits, f"{name}_{i}_{j}") for j in range(cols)] for i in range(rows)],
            bits=bits,
            valid=pyrtl.Input(1, f"{name}_valid"),
        )

    @classmethod
    def from_memory(
        cls,
        memory: pyrtl.MemBlock,
        shape: tuple[int, int],
        *,
        bits: int,
        address: pyrtl.WireVector | int = 0,
    ) -> WireMatrix2D:
        """Read a matrix stored one packed row per word at ``address + i``.

        Uses one read port per row (give a :class:`pyrtl.MemBlock` enough ``max_read_ports``).
        Row ``i``'s element ``j`` is in bits ``[j*bits, (j+1)*bits)`` of its word.

        :param memory: a :class:`pyrtl.MemBlock` or :class:`pyrtl.RomBlock` at least
            ``cols * bits`` wide.
        :param shape: ``(rows, cols)``.
        :param bits: element width.
        :param address: address of row 0: a constant, or a wire (then ``address + i`` is
            computed, so ``memory`` must be asynchronous when ``rows > 1``).
        :returns: the matrix (always valid: memory reads are combinational).
        """
        rows, cols = shape
        if memory.bitwidth < cols * bits:
            raise ValueError(
                f"memory {memory.name!r} is {memory.bitwidth} bits wide, "
                f"too narrow for {cols} values of {bits} bits"
            )
        if isinstance(address, int):
            words = [memory[pyrtl.Const(address + i, memory.addrwidth)] for i in range(rows)]
        else:  # computed addresses need an asynchronous memory
            words = [memory[(address + i)[: memory.addrwidth]] for i in range(rows)]
        return cls(
            [[word[j * bits : (j + 1) * bits] for j in range(cols)] for word in words], bits=bits
        )

    def to_outputs(self, name: str) -> WireMatrix2D:
        """Drive Output ports ``{name}_{i}_{j}`` and ``{name}_valid`` from this matrix.

        CompiledSimulation can only observe Outputs, so call this on what a test reads.

        :param name: prefix of the ports' names.
        :returns: the matrix of Outputs (with the Output ``{name}_valid``).
        """
        rows, cols = self.shape
        outputs = [
            [pyrtl.Output(self.bits, f"{name}_{i}_{j}") for j in range(cols)] for i in range(rows)
        ]
        for i in range(rows):
            for j in range(cols):
                outputs[i][j] <<= self._wires[i][j]
        valid = pyrtl.Output(1, f"{name}_valid")
        valid <<= self.valid
        return WireMatrix2D(outputs, bits=self.bits, valid=valid)

    def to_numpy(
        self,
        source: pyrtl.Simulation
        | pyrtl.FastSimulation
        | pyrtl.CompiledSimulation
        | pyrtl.SimulationTrace,
        *,
        cycle: int = -1,
    ) -> np.ndarray:
        """The signed values of the matrix in a simulation.

        :param source: a simulation (its latest cycle is read) or a
            :class:`pyrtl.SimulationTrace` (cycle ``cycle`` is read). The elements must be
            named wires the source records (with CompiledSimulation: Outputs, see
            :meth:`to_outputs`).
        :param cycle: which cycle of a trace to read (default: the last).
        :returns: int64 array of shape :attr:`shape`.
        """
        if isinstance(source, pyrtl.SimulationTrace):

            def read(wire: pyrtl.WireVector) -> int:
                return source.trace[wire.name][cycle]

        else:

            def read(wire: pyrtl.WireVector) -> int:
                return source.inspect(wire.name)

        return to_signed([[read(w) for w in row] for row in self._wires], self.bits)
