"""The output-stationary systolic array: a ``rows x cols`` grid of multiply-accumulate PEs.

This is the bare grid; :func:`pyrtl_linalg.make_tiled_matmul` wraps it with memories, a
controller and a drain stream. Use the grid directly to build a different controller.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import pyrtl

from ._control import delayed
from ._validate import positive_int

__all__ = ["PE_LATENCY", "accumulator_bits", "column_skews", "make_systolic_array"]

#: Register stages inside a PE between its operands and its accumulator: the product register,
#: so that a multiplier (one DSP block) is a path of its own, from registers to a register.
PE_LATENCY = 1


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


def column_skews(rows: int, cols: int, *, min_period: int | None = None) -> list[int]:
    """The delay ``f(j)`` of column ``j`` of :func:`make_systolic_array`, in cycles.

    PE ``(i, j)`` works ``i + f(j)`` cycles after the corner with
    ``f(j) = max(0, j - (min_period - rows))``. Its shadow register holds a tile's sum from
    ``i + f(j) + 1`` cycles after the tile's ``last`` until the next tile's ``last`` plus
    ``i + f(j)``, so the whole of column ``j`` is readable in
    ``[c + rows + f(j), c2 + f(j)]`` (``last`` in cycles ``c`` and ``c2``). The drain reads it
    at ``c + rows + j``, inside that window for every ``f(j) <= j`` with
    ``j - f(j) <= c2 - c - rows``. The full skew ``f(j) = j`` (``min_period = rows``) is the
    classic array; with tiles at least ``min_period`` cycles apart the first
    ``min_period - rows + 1`` columns share one skew of 0: their ``A`` operand is one
    broadcast wire and their ``B`` operands need no delay registers. A one-row array fed
    tiles at least ``cols`` cycles apart has no skew registers at all.

    >>> column_skews(1, 4), column_skews(1, 4, min_period=4), column_skews(2, 5, min_period=4)
    ([0, 1, 2, 3], [0, 0, 0, 0], [0, 0, 0, 1, 2])

    :param rows: rows of the array.
    :param cols: columns of the array.
    :param min_period: the fewest cycles between two rises of ``last``, at least ``rows``
        (default ``rows``: any spacing the drain allows).
    :returns: ``f(0), ..., f(cols - 1)``.
    """
    rows = positive_int("array rows", rows)
    cols = positive_int("array cols", cols)
    min_period = rows if min_period is None else positive_int("min_period", min_period)
    if min_period < rows:
        raise ValueError(f"min_period must be at least the {rows} rows, not {min_period}")
    return [max(0, j - (min_period - rows)) for j in range(cols)]


def make_systolic_array(
    a: Sequence[pyrtl.WireVector],
    b: Sequence[pyrtl.WireVector],
    *,
    first: pyrtl.WireVector,
    last: pyrtl.WireVector,
    drain: pyrtl.WireVector,
    acc_bits: int,
    min_period: int | None = None,
    name: str = "sa",
) -> list[pyrtl.WireVector]:
    """Build a ``len(a) x len(b)`` output-stationary array of multiply-accumulate PEs.

    Each cycle the caller presents one element ``kk`` of a dot product at the array's corner:
    ``a[i]`` (``A[i, kk]``, the left edge of row ``i``) and ``b[j]`` (``B[kk, j]``, the top edge
    of column ``j``), with ``first``/``last`` high when ``kk`` is the first/last element of a
    tile. The array skews the edges itself (row ``i`` delayed ``i`` cycles, column ``j``
    delayed ``f(j)``, see :func:`column_skews`), so PE ``(i, j)`` multiplies
    ``A[i, kk] * B[kk, j]`` ``i + f(j)`` cycles after the corner. With the default
    ``f(j) = j`` (``min_period = rows``)::

        cycle:   c      c+1    c+2    c+3
        row 0:   a00    a01    a02    .        a[i] travels right, one PE per cycle
        row 1:   .      a10    a11    a12      b[j] travels down, one PE per cycle
        col 1:   .      b01    b11    b21

    Columns with equal skew share one ``a`` wire instead of a forwarding register.

    A PE registers its product and adds it to its accumulator in the next cycle
    (:data:`PE_LATENCY` ``= 1``, the flags delayed to match): the multiplier and the adder are
    two register-to-register paths. It restarts its accumulator when the ``first`` flag
    reaches the product and copies the finished sum into its shadow register when ``last``
    does, so a new tile can stream in back to back while the shadow registers of the previous
    one are read out::

        cycle:      t            t+1                           t+2
        PE (i, j):  p <= a * b   acc <= acc + p                shadow holds the sum
                                 shadow <= acc + p (if last)
                    (t = c + i + f(j) for the element at the corner in cycle c)

    Widths: operands are signed and travel at their own width (every ``a`` wire ``a_bits``
    wide, every ``b`` wire ``b_bits``; for zero-point-shifted int8 activations and int8
    weights 9 and 8), through delay and forwarding registers of that width. Each PE
    multiplies them into an exact ``a_bits + b_bits``-bit signed product (17 bits: one
    DSP48E1, whose multiplier is 25x18) and sign-extends only that product to ``acc_bits``
    for the accumulator. Products and sums are kept modulo ``2**acc_bits``, which is exact
    when ``acc_bits`` comes from :func:`accumulator_bits` (it may then be narrower than
    ``a_bits + b_bits`` for ``k = 1``: the operands' real ranges keep the product in it).

    Timing: if ``last`` is high in cycle ``c`` and the next ``last`` in cycle
    ``c2 >= c + min_period``, column ``j``'s results are returned (for ``drain == j``) in
    every cycle of ``[c + rows + f(j) + PE_LATENCY, c2 + f(j) + PE_LATENCY]``, which always
    holds ``c + rows + PE_LATENCY + j``.

    :param a: ``rows`` signed operands entering the left edge, all of one width.
    :param b: ``cols`` signed operands entering the top edge, all of one width.
    :param first: 1 when this cycle's element is the first of a tile.
    :param last: 1 when this cycle's element is the last of a tile (may coincide with first).
    :param drain: index of the column whose shadow registers are returned.
    :param acc_bits: accumulator width.
    :param min_period: the fewest cycles between two rises of ``last`` the caller promises, at
        least ``rows`` (default ``rows``); see :func:`column_skews`.
    :param name: prefix of the registers' names.
    :returns: ``rows`` wires: the finished sums of column ``drain``, ``acc_bits`` wide, two's
        complement.
    """
    rows, cols = len(a), len(b)
    if rows < 1 or cols < 1:
        raise ValueError(f"the array needs at least one row and one column, not {rows}x{cols}")
    acc_bits = positive_int("acc_bits", acc_bits)
    skews = column_skews(rows, cols, min_period=min_period)
    for edge, wires in (("a", a), ("b", b)):
        for wire in wires:
            if len(wire) != len(wires[0]):
                raise ValueError(
                    f"operand {wire.name} is {len(wire)} bits wide, not {len(wires[0])} "
                    f"like {edge}[0]"
                )
    if 1 << len(drain) < cols:
        raise ValueError(f"drain is {len(drain)} bits wide, too narrow to select {cols} columns")
    # One delay line of flags serves the whole grid: PE (i, j) accumulates with the flags of
    # i + f(j) + PE_LATENCY cycles ago.
    firsts = [first]
    lasts = [last]
    for stage in range(rows - 1 + skews[-1] + PE_LATENCY):
        f = pyrtl.Register(1, name=f"{name}_first_d{stage + 1}")
        f.next <<= firsts[-1]
        firsts.append(f)
        la = pyrtl.Register(1, name=f"{name}_last_d{stage + 1}")
        la.next <<= lasts[-1]
        lasts.append(la)
    a_in = [delayed(a[i], i, f"{name}_a{i}") for i in range(rows)]
    b_in = [delayed(b[j], skews[j], f"{name}_b{j}") for j in range(cols)]
    shadows: list[list[pyrtl.WireVector]] = [[] for _ in range(rows)]
    for i in range(rows):
        for j in range(cols):
            pe = f"{name}_pe{i}_{j}"
            a_here, b_here = a_in[i], b_in[j]
            if j + 1 < cols and skews[j + 1] > skews[j]:
                a_in[i] = pyrtl.Register(len(a_here), name=f"{pe}_a")
                a_in[i].next <<= a_here
            if i + 1 < rows:
                b_in[j] = pyrtl.Register(len(b_here), name=f"{pe}_b")
                b_in[j].next <<= b_here
            product = pyrtl.Register(len(a_here) + len(b_here), name=f"{pe}_product")
            product.next <<= pyrtl.signed_mult(a_here, b_here)
            addend = _widened(product, acc_bits)
            acc = pyrtl.Register(acc_bits, name=f"{pe}_acc")
            delay = i + skews[j] + PE_LATENCY
            total = pyrtl.select(firsts[delay], addend, (acc + addend)[:acc_bits])
            acc.next <<= total
            shadow = pyrtl.Register(acc_bits, name=f"{pe}_shadow")
            shadow.next <<= pyrtl.select(lasts[delay], total, shadow)
            shadows[i].append(shadow)
    if cols == 1:
        return [row[0] for row in shadows]
    return [pyrtl.mux(drain, *row, default=row[0]) for row in shadows]


def _widened(product: pyrtl.WireVector, acc_bits: int) -> pyrtl.WireVector:
    """A signed product, ``acc_bits`` wide.

    The exact product of ``a * b`` has ``len(a) + len(b)`` bits: the low bits of the unsigned
    product of the operands sign-extended to that width (the multiplier a synthesis tool sees,
    since PyRTL's Verilog has no ``signed``), and the product register holds exactly those.
    Only then is it sign-extended to the accumulator (or truncated, where the caller's ranges
    allow).
    """
    if len(product) >= acc_bits:
        return product[:acc_bits]
    return product.sign_extended(acc_bits)
