"""The output-stationary systolic array: a ``rows x cols`` grid of multiply-accumulate PEs.

This is the bare grid; :func:`pyrtl_linalg.make_tiled_matmul` wraps it with memories, a
controller and a drain stream. Use the grid directly to build a different controller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyrtl

__all__ = ["accumulator_bits", "make_systolic_array"]


def accumulator_bits(k: int, *, bits: int = 8) -> int:
    """Accumulator width of a ``k``-term dot product of zero-point-shifted operands.

    ``a - a_zero_point`` lies in ``[-(2**bits - 1), 2**bits - 1]`` (``bits + 1`` bits) and ``b``
    in ``[-2**(bits-1), 2**(bits-1) - 1]``, so one product has magnitude below
    ``2**(2*bits - 1)`` and the sum of ``k`` of them below ``2**(2*bits - 1 + ceil(log2 k))``:
    ``2*bits + ceil(log2 k)`` signed bits hold every possible sum, with no overflow.

    :param k: number of terms (the inner dimension).
    :param bits: operand width.
    :returns: ``2*bits + ceil(log2(k))``.
    """
    return 2 * bits + math.ceil(math.log2(k))


def _delayed(wire: pyrtl.WireVector, cycles: int, name: str) -> pyrtl.WireVector:
    for stage in range(cycles):
        reg = pyrtl.Register(len(wire), name=f"{name}_d{stage + 1}")
        reg.next <<= wire
        wire = reg
    return wire


def make_systolic_array(
    a: Sequence[pyrtl.WireVector],
    b: Sequence[pyrtl.WireVector],
    *,
    first: pyrtl.WireVector,
    last: pyrtl.WireVector,
    drain: pyrtl.WireVector,
    acc_bits: int,
    name: str = "sa",
) -> list[pyrtl.WireVector]:
    """Build a ``len(a) x len(b)`` output-stationary array of multiply-accumulate PEs.

    Each cycle the caller presents one element ``kk`` of a dot product at the array's corner:
    ``a[i]`` (``A[i, kk]``, the left edge of row ``i``) and ``b[j]`` (``B[kk, j]``, the top edge
    of column ``j``), with ``first``/``last`` high when ``kk`` is the first/last element of a
    tile. The array skews the edges itself (row ``i`` delayed ``i`` cycles, column ``j``
    delayed ``j``), so PE ``(i, j)`` multiplies ``A[i, kk] * B[kk, j]`` ``i + j`` cycles after
    the corner::

        cycle:   c      c+1    c+2    c+3
        row 0:   a00    a01    a02    .        a[i] travels right, one PE per cycle
        row 1:   .      a10    a11    a12      b[j] travels down, one PE per cycle
        col 1:   .      b01    b11    b21

    A PE restarts its accumulator when the ``first`` flag reaches it and copies the finished
    sum into its shadow register when ``last`` does, so a new tile can stream in back to back
    while the shadow registers of the previous one are read out. Operands are signed and must
    already be ``acc_bits`` wide (sign-extended): products and sums are kept modulo
    ``2**acc_bits``, which is exact when ``acc_bits`` comes from :func:`accumulator_bits`.

    Timing: if ``last`` is high in cycle ``c`` and the next ``last`` in cycle ``c2``, column
    ``j``'s results are returned (for ``drain == j``) in every cycle of
    ``[c + rows + j, c2 + j]``; the window is never empty when ``c2 - c >= rows``.

    :param a: ``rows`` signed operands entering the left edge, ``acc_bits`` wide.
    :param b: ``cols`` signed operands entering the top edge, ``acc_bits`` wide.
    :param first: 1 when this cycle's element is the first of a tile.
    :param last: 1 when this cycle's element is the last of a tile (may coincide with first).
    :param drain: index of the column whose shadow registers are returned.
    :param acc_bits: accumulator width.
    :param name: prefix of the registers' names.
    :returns: ``rows`` wires: the finished sums of column ``drain``, two's complement.
    """
    rows, cols = len(a), len(b)
    if rows < 1 or cols < 1:
        raise ValueError(f"the array needs at least one row and one column, not {rows}x{cols}")
    for wire in (*a, *b):
        if len(wire) != acc_bits:
            raise ValueError(f"operand {wire.name} is {len(wire)} bits wide, not {acc_bits}")
    if 1 << len(drain) < cols:
        raise ValueError(f"drain is {len(drain)} bits wide, too narrow to select {cols} columns")
    # One delay line of flags serves the whole grid: PE (i, j) sees the flags of i + j cycles ago.
    firsts = [first]
    lasts = [last]
    for stage in range(rows + cols - 2):
        f = pyrtl.Register(1, name=f"{name}_first_d{stage + 1}")
        f.next <<= firsts[-1]
        firsts.append(f)
        la = pyrtl.Register(1, name=f"{name}_last_d{stage + 1}")
        la.next <<= lasts[-1]
        lasts.append(la)
    a_in = [_delayed(a[i], i, f"{name}_a{i}") for i in range(rows)]
    b_in = [_delayed(b[j], j, f"{name}_b{j}") for j in range(cols)]
    shadows: list[list[pyrtl.WireVector]] = [[] for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            pe = f"{name}_pe{i}_{j}"
            a_here, b_here = a_in[i], b_in[j]
            if j + 1 < cols:
                a_in[i] = pyrtl.Register(acc_bits, name=f"{pe}_a")
                a_in[i].next <<= a_here
            if i + 1 < rows:
                b_in[j] = pyrtl.Register(acc_bits, name=f"{pe}_b")
                b_in[j].next <<= b_here
            product = (a_here * b_here)[:acc_bits]
            acc = pyrtl.Register(acc_bits, name=f"{pe}_acc")
            total = pyrtl.select(firsts[i + j], product, (acc + product)[:acc_bits])
            acc.next <<= total
            shadow = pyrtl.Register(acc_bits, name=f"{pe}_shadow")
            shadow.next <<= pyrtl.select(lasts[i + j], total, shadow)
            shadows[i].append(shadow)
    if cols == 1:
        return [row[0] for row in shadows]
    return [pyrtl.mux(drain, *row, default=row[0]) for row in shadows]
