"""The window address generator: the word of every patch element, by counters and adds.

A windowed :class:`~pyrtl_linalg.MatmulJob` reads its ``A`` operand as the patches of
:class:`~pyrtl_linalg.Window` (see :mod:`pyrtl_linalg._window` for the geometry). Walking a
patch in its element order ``(ky, kx, c)`` changes the word address by a few job constants
only, so the generator needs no multiplier: with ``x``, ``y`` the grid column and row of the
element (negative or past the edge inside the padding)::

    move                                    address                  coordinates
    next c, or next kx after the last c     + 1                      x + 1 on a new kx
    next kernel row (after the last kx, c)  + (W - kw)*C + 1         x = x0, y + 1
    the same patch again (next column tile) its patch's first word   x = x0, y = y0
    next window column                      patch + sw*C             x0 + sw
    next window row                         row + sh*W*C             x0 = -left, y0 + sh
    next grid tile                          grid + H*W*C             x0 = -left, y0 = -top

Four address registers hold the element, its patch, its window row and its grid tile; the
job's first element is ``a_base - (top*W + left)*C``. All address arithmetic is modulo
``2**address_bits`` (an address inside the padding may wrap; it is read but never used) and
coordinates are kept modulo ``2**coord_bits`` with ``2**coord_bits > W + left + right`` (and
``H + top + bottom``), so one unsigned compare per axis, ``x < W`` and ``y < H``, tells a grid
element from padding.

A plain job is the window ``Window(1, 1, k, (1, 1))`` over ``m`` one-word grids of ``k``
channels: ``a_base + mt*k + e``, the engine's plain layout. So one generator serves engines
that mix windowed and plain jobs, each job's constants coming from the engine's descriptor ROM.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import pyrtl

from ._control import pick
from ._window import Window

__all__ = ["PatchAddresses", "make_patch_addresses", "patch_fields"]


def _as_window(window: Window | None, k: int) -> Window:
    return Window(1, 1, k, (1, 1)) if window is None else window


def _coord_bits(windows: Sequence[Window | None]) -> int:
    """Width of a coordinate register: ``2**bits`` exceeds every padded grid side."""
    sides = [1]
    for window in windows:
        if window is not None:
            (top, bottom), (left, right) = window.padding
            sides += [window.height + top + bottom, window.width + left + right]
    return max(sides).bit_length()


def patch_fields(
    windows: Sequence[Window | None],
    ks: Sequence[int],
    a_bases: Sequence[int],
    *,
    address_bits: int,
) -> tuple[dict[str, list[int]], dict[str, int]]:
    """The per-job constants of :func:`make_patch_addresses`, for the engine's descriptor ROM.

    :param windows: each job's window, or ``None`` for a plain job of inner dimension ``k``.
    :param ks: each job's ``k`` (used for plain jobs).
    :param a_bases: each job's first ``A`` word.
    :param address_bits: width of the address registers.
    :returns: ``(values, widths)``: a list of one value per job for each field, and the width
        of the fields that are modular (address deltas and coordinates, which may be negative
        and are stored in two's complement).
    """
    bits = _coord_bits(windows)
    address_mask, coord_mask = (1 << address_bits) - 1, (1 << bits) - 1
    table = []
    for window, k, a_base in zip(windows, ks, a_bases, strict=True):
        w = _as_window(window, k)
        (top, _), (left, _) = w.padding
        kw = w.kernel[1]
        sh, sw = w.stride
        channels, width = w.channels, w.width
        table.append(
            {
                "p_origin": (a_base - (top * width + left) * channels) & address_mask,
                "p_row_step": ((width - kw) * channels + 1) & address_mask,
                "p_x_step": sw * channels,
                "p_y_step": sh * width * channels,
                "p_grid_step": w.words,
                "p_c_last": channels - 1,
                "p_kx_last": kw - 1,
                "p_x_first": -left & coord_mask,
                "p_y_first": -top & coord_mask,
                "p_x_last": ((w.out_width - 1) * sw - left) & coord_mask,
                "p_y_last": ((w.out_height - 1) * sh - top) & coord_mask,
                "p_sw": sw,
                "p_sh": sh,
                "p_width": width,
                "p_height": w.height,
            }
        )
    values = {key: [row[key] for row in table] for key in table[0]}
    widths = {"p_origin": address_bits, "p_row_step": address_bits}
    widths |= {key: bits for key in ("p_x_first", "p_y_first", "p_x_last", "p_y_last")}
    return values, widths


@dataclass(frozen=True)
class PatchAddresses:
    """The outputs of :func:`make_patch_addresses`.

    :param address: the register that addresses the memory (the current element's word).
    :param address_next: its next value, for mirror registers of narrower memories.
    :param padding: high when the current element lies in the padding: its word must be
        replaced (the engine uses the zero point).
    """

    address: pyrtl.Register
    address_next: pyrtl.WireVector
    padding: pyrtl.WireVector


def make_patch_addresses(
    rom: Mapping[str, pyrtl.WireVector],
    *,
    reload: pyrtl.WireVector,
    step: pyrtl.WireVector,
    repeat: pyrtl.WireVector,
    advance: pyrtl.WireVector,
    address_bits: int,
    name: str,
) -> PatchAddresses:
    """Build the generator: registers that walk the patches of the current job's window.

    Each control is a 1-bit wire, sampled at the clock edge; the first high one wins:

    * ``reload``: go to element 0 of window position 0 of grid tile 0 (a job begins);
    * ``repeat``: go back to element 0 of the current patch (the next column tile);
    * ``advance``: go to element 0 of the next window position, or of the next grid tile after
      the last position;
    * ``step``: go to the next element of the patch.

    The address is a register and ``padding`` a compare of registers, so a memory addressed by
    ``address`` returns the element's word in the same cycle as its flag (an asynchronous
    read of the register, or PyRTL's synchronous read of it)::

        cycle     0       1        2        3
        control   reload  step     step     advance
        address   .       patch0   patch0+1 patch0+2   (then patch1 in cycle 4)
        padding   .       flag(e0) flag(e1) flag(e2)

    :param rom: the fields of :func:`patch_fields` for the current job (from the engine's ROM).
    :param reload: begin a job.
    :param step: next element.
    :param repeat: current patch again.
    :param advance: next patch.
    :param address_bits: width of the address registers.
    :param name: prefix of the register names.
    :returns: the address register, its next value and the padding flag.
    """
    coord = len(rom["p_x_first"])

    def reg(suffix: str, bits: int) -> pyrtl.Register:
        return pyrtl.Register(bits, name=f"{name}_{suffix}")

    address, patch, row, grid = (reg(s, address_bits) for s in ("addr", "patch", "row", "grid"))
    x, y, x0, y0 = (reg(s, coord) for s in ("x", "y", "x0", "y0"))
    c = reg("c", len(rom["p_c_last"]))
    kx = reg("kx", len(rom["p_kx_last"]))

    c_end = c == rom["p_c_last"]
    kx_end = kx == rom["p_kx_last"]
    row_end = c_end & kx_end
    x_end = x0 == rom["p_x_last"]
    y_end = y0 == rom["p_y_last"]
    next_x, next_y = ~x_end, x_end & ~y_end
    next_grid = x_end & y_end

    # The first word and coordinates of the next patch (for `advance`).
    grid_next = grid + rom["p_grid_step"]
    row_next = pick(grid_next, (next_x, row), (next_y, row + rom["p_y_step"]))
    patch_next = pick(row_next, (next_x, patch + rom["p_x_step"]))
    x0_next = pyrtl.select(next_x, x0 + rom["p_sw"], rom["p_x_first"])
    y0_next = pick(rom["p_y_first"], (next_x, y0), (next_y, y0 + rom["p_sh"]))

    address_next = pick(
        address,
        (reload, rom["p_origin"]),
        (repeat, patch),
        (advance, patch_next),
        (step, pyrtl.select(row_end, address + rom["p_row_step"], address + 1)),
    )
    address.next <<= address_next
    patch.next <<= pick(patch, (reload, rom["p_origin"]), (advance, patch_next))
    row.next <<= pick(row, (reload, rom["p_origin"]), (advance, row_next))
    grid.next <<= pick(grid, (reload, rom["p_origin"]), (advance & next_grid, grid_next))
    x0.next <<= pick(x0, (reload, rom["p_x_first"]), (advance, x0_next))
    y0.next <<= pick(y0, (reload, rom["p_y_first"]), (advance, y0_next))
    restart = reload | repeat | advance
    x.next <<= pick(
        x,
        (reload, rom["p_x_first"]),
        (repeat, x0),
        (advance, x0_next),
        (step & c_end, pyrtl.select(kx_end, x0, x + 1)),
    )
    y.next <<= pick(
        y,
        (reload, rom["p_y_first"]),
        (repeat, y0),
        (advance, y0_next),
        (step & row_end, y + 1),
    )
    c.next <<= pick(c, (restart, 0), (step, pyrtl.select(c_end, 0, c + 1)))
    kx.next <<= pick(kx, (restart, 0), (step & c_end, pyrtl.select(kx_end, 0, kx + 1)))
    padding = ~((x < rom["p_width"]) & (y < rom["p_height"]))
    return PatchAddresses(address, address_next, padding)
