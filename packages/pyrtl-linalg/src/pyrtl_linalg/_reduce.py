"""A windowed reduction unit: the maximum or the rounded mean of every window of grids in memory.

The unit walks a :class:`~pyrtl_linalg.Window` over grids stored in a memory (the layout of
:mod:`pyrtl_linalg._window`, ``lanes`` grids per word) and writes one reduced value per window
position and channel to another memory, in the same layout: the ``out_height x out_width x
channels`` result grids can be read by a following windowed job or as a flat matrix. It
computes exactly :meth:`Window.reduce <pyrtl_linalg.Window.reduce>`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Final, Literal

import pyrtl

from ._control import counter_bits, pick
from ._elementwise import make_clamp
from ._validate import non_negative_int, positive_int, signed_bits, signed_int, signed_range
from ._window import Window

__all__ = ["REDUCE_OPS", "WindowReduce", "make_window_reduce", "window_reduce_cycles"]

#: The reductions :func:`make_window_reduce` builds.
REDUCE_OPS: Final = ("max", "mean")

#: Cycles from the read of a window's last word to the cycle its result can be read back:
#: one to register the word read (a block RAM's slow output ends in a register), one to
#: finish the running maximum or sum, one to divide and clamp it into the output register,
#: one to write it.
_LATENCY: Final = 4


@dataclass(frozen=True, eq=False)
class WindowReduce:
    """The handshake of :func:`make_window_reduce`.

    :param start: the caller's start wire (sampled while idle).
    :param done: high for one cycle once every result is written and can be read.
    :param busy: high from the cycle after ``start`` up to and including the ``done`` cycle.
    """

    start: pyrtl.WireVector
    done: pyrtl.WireVector
    busy: pyrtl.WireVector


def window_reduce_cycles(window: Window, grids: int, lanes: int) -> int:
    """Cycles of :func:`make_window_reduce`, from ``start`` (cycle 0) to ``done``.

    ``4 + ceil(grids / lanes) * positions * channels * kh * kw``: one word read per cycle for
    every window element of every output (padding elements included, so the time per output is
    the same everywhere), then four cycles for the last result to reach the memory.

    >>> window_reduce_cycles(Window(4, 4, 2, (2, 2), (2, 2)), grids=3, lanes=2)
    68

    :param window: the window geometry.
    :param grids: grids to reduce.
    :param lanes: grids per memory word.
    :returns: the cycle index at which ``done`` is high.
    """
    _check_window(window)
    tiles = math.ceil(positive_int("grids", grids) / positive_int("lanes", lanes))
    return _LATENCY + tiles * window.positions * window.channels * math.prod(window.kernel)


def _check_window(window: object) -> Window:
    if not isinstance(window, Window):
        raise TypeError(f"window must be a Window, not {type(window).__name__}")
    return window


def _check_memory(role: str, memory: object, width: int, base: object, words: int) -> int:
    """The checked base address of ``words`` words of ``width`` bits in ``memory``."""
    if not isinstance(memory, pyrtl.MemBlock):
        raise TypeError(f"{role} must be a MemBlock, not {type(memory).__name__}")
    if memory.bitwidth != width:
        raise ValueError(
            f"{role} memory {memory.name!r} is {memory.bitwidth} bits wide, not {width} "
            "(lanes * bits)"
        )
    base = non_negative_int(f"{role}_base", base)
    end = base + words
    if end > 1 << memory.addrwidth:
        raise ValueError(
            f"{role} needs words {base}..{end - 1} but memory {memory.name!r} has "
            f"{1 << memory.addrwidth}"
        )
    return base


def _check_clamp(clamp: object, bits: int) -> tuple[int, int] | None:
    if clamp is None:
        return None
    if not isinstance(clamp, tuple | list) or len(clamp) != 2:
        raise ValueError(f"clamp must be a pair (lo, hi) or None, not {clamp!r}")
    lo = signed_int("clamp lo", clamp[0], bits)
    hi = signed_int("clamp hi", clamp[1], bits)
    if lo > hi:
        raise ValueError(f"clamp lo must not exceed hi, not ({lo}, {hi})")
    return lo, hi


def _reciprocals(max_count: int, bits: int) -> tuple[int, list[int]]:
    """The shift ``k`` and the multipliers ``R[n] = ceil(2**k / n)`` (``R[0] = 0``) that divide
    every ``x`` up to ``max_count * 2**(bits-1) + max_count // 2`` exactly: ``x // n ==
    (x * R[n]) >> k`` for ``1 <= n <= max_count`` (see :func:`_round_divide`)."""
    x_max = (max_count << (bits - 1)) + max_count // 2
    shift = (x_max * (max_count - 1)).bit_length()
    return shift, [0] + [-(-(1 << shift) // n) for n in range(1, max_count + 1)]


@dataclass(frozen=True)
class _Divisor:
    """What :func:`_round_divide` needs of a count ``n``, shared by every lane."""

    half: pyrtl.WireVector  # n // 2
    multiplier: pyrtl.WireVector  # R[n] of _reciprocals
    shift: int  # k of _reciprocals


def _divisor(count: pyrtl.WireVector | int, *, max_count: int, bits: int) -> _Divisor:
    """The divisor ``count`` (``1 <= count <= max_count``): constants for an integer, a ROM of
    the multipliers indexed by a wire."""
    shift, multipliers = _reciprocals(max_count, bits)
    if isinstance(count, int):
        return _Divisor(pyrtl.Const(count // 2), pyrtl.Const(multipliers[count]), shift)
    rom = pyrtl.RomBlock(
        multipliers[1].bit_length(), len(count), multipliers, asynchronous=True, pad_with_zeros=True
    )
    half = count[1:] if len(count) > 1 else pyrtl.Const(0)
    return _Divisor(half, rom[count], shift)


def _round_divide(total: pyrtl.WireVector, divisor: _Divisor, bits: int) -> pyrtl.WireVector:
    """``total / n`` rounded half away from zero, for a ``total`` of ``n`` signed ``bits``-bit
    values, as a ``bits``-bit signed wire.

    The magnitude ``x = |total| + n // 2`` is divided by one multiplication by ``R =
    ceil(2**k / n)`` and a shift by ``k``; the sign is put back after. Why it is exact: write
    ``R * n = 2**k + e`` with ``0 <= e < n`` and ``x = q * n + r`` with ``0 <= r < n``; then
    ``x * R / 2**k = q + (r + x * e / 2**k) / n``, whose floor is ``q`` whenever ``x * e <
    2**k``. :func:`_reciprocals` picks the smallest ``k`` with ``2**k > x_max * (max_count -
    1)``, which bounds every ``x * e``. For int8 values and ``n <= 9`` that is ``k = 14``: an
    11-bit magnitude times a 15-bit multiplier. The tests check every ``(total, n)`` pair.
    """
    negative = total[-1]
    magnitude = pyrtl.select(negative, (~total + 1)[: len(total)], total)
    product = (magnitude + divisor.half) * divisor.multiplier
    quotient = product[divisor.shift :][:bits]  # at most 2**(bits-1): bits unsigned bits
    return pyrtl.select(negative, (~quotient + 1)[:bits], quotient)


def make_window_reduce(
    source: pyrtl.MemBlock,
    dest: pyrtl.MemBlock,
    window: Window,
    start: pyrtl.WireVector,
    *,
    op: Literal["max", "mean"],
    grids: int,
    lanes: int,
    bits: int = 8,
    clamp: tuple[int, int] | None = None,
    source_base: int = 0,
    dest_base: int = 0,
    name: str = "wr",
) -> WindowReduce:
    """Build a unit that reduces each channel of ``grids`` grids over every ``window`` position.

    ``op="max"`` keeps the largest value of the grid positions under the window; ``op="mean"``
    divides their sum by how many there are, rounding half away from zero. Padding positions
    take no part in either (:meth:`Window.reduce <pyrtl_linalg.Window.reduce>` is the
    reference). With ``clamp=(lo, hi)`` each result is then clamped to ``[lo, hi]``.

    Layout: ``source`` and ``dest`` words are ``lanes * bits`` wide; lane ``i`` (bits ``[i *
    bits, (i + 1) * bits)``, two's complement) of grid tile ``t`` holds grid ``t * lanes + i``
    (lanes past ``grids`` are computed and written like the others, from whatever the source
    holds). Source word ``source_base + t * window.words + (y * width + x) * channels + c`` is
    value ``(y, x, c)``; the result of window position ``p`` (row-major over ``out_height x
    out_width``) and channel ``c`` goes to dest word ``dest_base + (t * positions + p) *
    channels + c``.

    Schedule: outputs are produced in dest address order (tile, position, channel); each reads
    the ``kh * kw`` words of its window, one per cycle, row by row, padding included (those
    reads are ignored), so the unit takes :func:`window_reduce_cycles` ``= 4 + tiles *
    positions * channels * kh * kw`` cycles. For a ``2 x 2`` window (``K = 4`` reads per
    output, element ``j`` of output ``o`` read in cycle ``o * K + j + 1``; each word is
    registered, then added to the running maximum or sum)::

        cycle:    0    1    2    3    4    5    6    7    8    9    ...  E    E+1  E+2  E+3  E+4
        start:    1
        read:          o0e0 o0e1 o0e2 o0e3 o1e0 o1e1 o1e2 o1e3           last
        word:               o0e0 o0e1 o0e2 o0e3 o1e0 o1e1 o1e2 o1e3           last
        acc:                                    o0                                  last
        out reg:                                     o0                                  last
        in dest:                                          o0                                  last
        done:                                                                                 1

    A result is in its dest word from cycle ``(o + 1) * K + 4`` on; ``done`` (cycle ``E + 4``)
    is the first cycle in which all of them are. ``start`` is sampled while idle; the unit
    then runs once and is idle again after ``done``, ready to be started again (new memory
    contents, no reset, no rebuild).

    Widths: a maximum stays ``bits`` wide. A sum of up to ``n = kh * kw`` values needs
    ``signed_bits(n * lo, n * hi)`` bits (12 for int8 and a 3x3 window). The mean divides
    without a divider: one multiplication of ``|sum| + n // 2`` by a constant ``ceil(2**k /
    n)`` and a shift by ``k``, with ``k`` chosen so that this is the exact quotient for every
    sum the window can produce. When padding makes ``n`` vary from window to window, a counter
    counts the grid positions of each window and a small ROM holds the ``n`` multipliers.

    Ports: one read port on ``source`` addressed straight from a register and read into a
    register, so synchronous memories work (and map to block RAM); one write port on ``dest``
    with address, data and enable from registers. Everything is word-level, for fast
    simulation.

    :param source: the memory holding the grids (a :class:`pyrtl.MemBlock` or
        :class:`pyrtl.RomBlock`).
    :param dest: the memory the results are written to (a :class:`pyrtl.MemBlock`).
    :param window: the window and the grid it moves over; every window position must cover at
        least one grid position.
    :param start: 1-bit start signal.
    :param op: ``"max"`` or ``"mean"``.
    :param grids: number of grids (at least 1), ``ceil(grids / lanes)`` tiles.
    :param lanes: grids per memory word.
    :param bits: width of one value, signed.
    :param clamp: ``(lo, hi)`` bounds of the results, both ``bits``-bit signed, or ``None``.
    :param source_base: address of the first source word.
    :param dest_base: address of the first dest word.
    :param name: prefix of the unit's wire names.
    :returns: the handshake.
    """
    window = _check_window(window)
    if op not in REDUCE_OPS:
        raise ValueError(f"op must be 'max' or 'mean', not {op!r}")
    grids = positive_int("grids", grids)
    lanes = positive_int("lanes", lanes)
    bits = positive_int("bits", bits)
    if not isinstance(start, pyrtl.WireVector):
        raise TypeError(f"start must be a WireVector, not {type(start).__name__}")
    if len(start) != 1:
        raise ValueError(f"start must be 1 bit wide, not {len(start)}")
    clamp = _check_clamp(clamp, bits)
    counts = [int(n) for n in window.counts()]
    if min(counts) == 0:
        raise ValueError(
            f"window position {counts.index(0)} covers only padding: every position of a "
            "reduced window must cover at least one grid position (use less padding)"
        )
    if isinstance(dest, pyrtl.RomBlock):
        raise TypeError("dest must be a writable MemBlock, not a RomBlock")
    tiles = math.ceil(grids / lanes)
    source_base = _check_memory("source", source, lanes * bits, source_base, tiles * window.words)
    outputs = tiles * window.positions * window.channels
    dest_base = _check_memory("dest", dest, lanes * bits, dest_base, outputs)

    height, width, channels = window.height, window.width, window.channels
    (kh, kw), (sh, sw) = window.kernel, window.stride
    (top, bottom), (left, right) = window.padding
    last_x, last_y = (window.out_width - 1) * sw, (window.out_height - 1) * sh

    # Counters of the word read this cycle: kernel column and row, channel, window origin in
    # padded coordinates (x0, y0), grid tile.
    busy = pyrtl.Register(1, name=f"{name}_running")
    reading = pyrtl.Register(1, name=f"{name}_reading")
    kx = pyrtl.Register(counter_bits(kw - 1), name=f"{name}_kx")
    ky = pyrtl.Register(counter_bits(kh - 1), name=f"{name}_ky")
    ch = pyrtl.Register(counter_bits(channels - 1), name=f"{name}_ch")
    x0 = pyrtl.Register(counter_bits(last_x), name=f"{name}_x0")
    y0 = pyrtl.Register(counter_bits(last_y), name=f"{name}_y0")
    tile = pyrtl.Register(counter_bits(tiles - 1), name=f"{name}_tile")

    go = ~busy & start
    row_end = reading & (kx == kw - 1)
    step = row_end & (ky == kh - 1)  # the last word of a window
    ch_end = ch == channels - 1
    x_end = x0 == last_x
    y_end = y0 == last_y
    next_ch = step & ~ch_end
    next_x = step & ch_end & ~x_end
    next_y = step & ch_end & x_end & ~y_end
    next_tile = step & ch_end & x_end & y_end
    last = next_tile & (tile == tiles - 1)

    reading.next <<= go | (reading & ~last)
    kx.next <<= pick(kx, (go, 0), (row_end, 0), (reading, kx + 1))
    ky.next <<= pick(ky, (go, 0), (step, 0), (row_end, ky + 1))
    ch.next <<= pick(ch, (go, 0), (next_ch, ch + 1), (step, 0))
    x0.next <<= pick(x0, (go, 0), (next_x, x0 + sw), (step & ch_end, 0))
    y0.next <<= pick(y0, (go, 0), (next_y, y0 + sh), (step & ch_end & x_end, 0))
    tile.next <<= pick(tile, (go, 0), (next_tile, tile + 1))

    # Addresses, modulo the memory size (a padding word's address may wrap; it is not used).
    # `chan` holds the address of the window's first word for this channel; each step below
    # is the distance from the current word to the next one in that order.
    mask = (1 << source.addrwidth) - 1

    def const(value: int) -> pyrtl.Const:
        return pyrtl.Const(value & mask, bitwidth=source.addrwidth)

    origin = source_base - (top * width + left) * channels
    to_next_x = sw * channels - (channels - 1)
    to_next_y = sh * width * channels - (last_x * channels + channels - 1)
    to_next_tile = window.words - ((last_y * width + last_x) * channels + channels - 1)
    addr = pyrtl.Register(source.addrwidth, name=f"{name}_addr")
    chan = pyrtl.Register(source.addrwidth, name=f"{name}_chan")
    # The steps get wires of their own names, so that the Verilog adds two values of one width
    # instead of inlining the multiplexers into a wider sum.
    chan_step = pyrtl.WireVector(source.addrwidth, name=f"{name}_chan_step")
    chan_step <<= pyrtl.select(
        next_y,
        const(to_next_y),
        pick(const(to_next_tile), (next_ch, const(1)), (next_x, const(to_next_x))),
    )
    new_chan = (chan + chan_step)[: source.addrwidth]
    word_step = pyrtl.WireVector(source.addrwidth, name=f"{name}_word_step")
    word_step <<= pyrtl.select(row_end, const((width - kw + 1) * channels), const(channels))
    addr.next <<= pick(addr, (go, const(origin)), (step, new_chan), (reading, addr + word_step))
    chan.next <<= pick(chan, (go, const(origin)), (step, new_chan))

    # Whether the word read is inside the grid: padded coordinates against the padding.
    y, x = y0 + ky, x0 + kx
    in_grid: pyrtl.WireVector = pyrtl.Const(1, bitwidth=1)
    for pad, test in ((top, y >= top), (bottom, y < top + height)):
        in_grid = in_grid & test if pad else in_grid
    for pad, test in ((left, x >= left), (right, x < left + width)):
        in_grid = in_grid & test if pad else in_grid

    # Running maximum or sum per lane, from the registered word and the flags of its read: a
    # window's result is in `acc` two cycles after its last word was read, with its number of
    # grid positions in `count`.
    word = pyrtl.Register(source.bitwidth, name=f"{name}_word")
    word.next <<= source[addr]
    first = pyrtl.Register(1, name=f"{name}_first")
    first.next <<= (kx == 0) & (ky == 0)
    inside = in_grid
    if not isinstance(in_grid, pyrtl.Const):  # a window with padding
        inside = pyrtl.Register(1, name=f"{name}_inside")
        inside.next <<= in_grid
    low, high = signed_range(bits)
    max_count = kh * kw
    acc_bits = bits if op == "max" else signed_bits(max_count * low, max_count * high)
    count: pyrtl.WireVector | int = counts[0]
    if op == "mean" and len(set(counts)) > 1:
        count = pyrtl.Register(counter_bits(max_count), name=f"{name}_count")
        count.next <<= pyrtl.select(first, inside, count + inside)
    divisor = _divisor(count, max_count=max_count, bits=bits) if op == "mean" else None
    results = []
    for lane in range(lanes):
        value = word[lane * bits : (lane + 1) * bits].sign_extended(acc_bits)
        acc = pyrtl.Register(acc_bits, name=f"{name}_acc{lane}")
        if op == "max":
            value = pyrtl.select(inside, value, pyrtl.Const(low, bitwidth=bits, signed=True))
            combined = pyrtl.select(pyrtl.signed_lt(acc, value), value, acc)
            result = acc
        else:
            value = pyrtl.select(inside, value, pyrtl.Const(0, bitwidth=acc_bits))
            combined = (acc + value)[:acc_bits]
            result = _round_divide(acc, divisor, bits)
        acc.next <<= pyrtl.select(first, value, combined)
        if clamp is not None and clamp != (low, high):
            result = make_clamp(result, lo=clamp[0], hi=clamp[1]).sign_extended(bits)
        results.append(result)

    # Output register and write port, then `done` once the last write has landed.
    step_read = pyrtl.Register(1, name=f"{name}_step_read")
    step_read.next <<= step
    total_valid = pyrtl.Register(1, name=f"{name}_total_valid")
    total_valid.next <<= step_read
    out_valid = pyrtl.Register(1, name=f"{name}_out_valid")
    out_valid.next <<= total_valid
    out_data = pyrtl.Register(lanes * bits, name=f"{name}_out_data")
    out_data.next <<= pyrtl.concat_list(results)
    out_addr = pyrtl.Register(dest.addrwidth, name=f"{name}_out_addr")
    out_addr.next <<= pick(out_addr, (go, dest_base), (out_valid, out_addr + 1))
    dest[out_addr] <<= pyrtl.MemBlock.EnabledWrite(out_data, out_valid)
    flush = last
    for stage in range(_LATENCY):
        reg = pyrtl.Register(1, name=f"{name}_flush{stage}")
        reg.next <<= flush
        flush = reg

    busy.next <<= go | (busy & ~flush)

    def named(wire: pyrtl.WireVector, suffix: str) -> pyrtl.WireVector:
        out = pyrtl.WireVector(len(wire), name=f"{name}_{suffix}")
        out <<= wire
        return out

    return WindowReduce(start=start, done=named(flush, "done"), busy=named(busy, "busy"))
