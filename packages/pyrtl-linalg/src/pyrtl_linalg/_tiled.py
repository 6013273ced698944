"""A tiled matrix-multiply engine: a sequence of jobs on one systolic array.

The engine streams operand tiles from the caller's memories through one
:func:`~pyrtl_linalg.make_systolic_array` grid and streams finished result columns out. The
schedule is fixed at build time and given exactly by :mod:`pyrtl_linalg._cycles`.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyrtl

from ._control import counter_bits, delayed, pick
from ._cycles import FEED_LATENCY, PIPELINE_LATENCY, tile_period
from ._matrix import WireMatrix2D, to_signed
from ._patches import make_patch_addresses, patch_fields
from ._systolic import PE_LATENCY, accumulator_bits, make_systolic_array
from ._validate import int_in_range, non_negative_int, positive_int, signed_bits, signed_int
from ._window import Window

__all__ = ["MatmulJob", "TiledMatmul", "make_tiled_matmul", "pack_a", "pack_b", "unpack_a"]

Memory = pyrtl.MemBlock  # RomBlock is a subclass


@dataclass(frozen=True, eq=False)
class MatmulJob:
    """One product ``C = (A - a_zero_point) @ B + bias`` of shape ``(m, k) @ (k, n)``.

    The operands live in PyRTL memories, packed so that one word feeds a whole array edge:

    * ``a`` word ``a_base + mt*k + kk`` holds ``A[mt*rows + i, kk]`` for ``i < rows``, value ``i``
      in bits ``[i*bits, (i+1)*bits)`` (rows past ``m`` are don't-care);
    * ``b`` word ``b_base + nt*k + kk`` holds ``B[kk, nt*cols + j]`` for ``j < cols``, packed the
      same way (columns past ``n`` are don't-care).

    With an ``a_window``, ``A`` is the patch matrix of ``m`` grids (:class:`~pyrtl_linalg.Window`):
    ``a`` word ``a_base + t*window.words + (y*W + x)*C + c`` holds value ``(y, x, c)`` of grid
    ``t*rows + i`` in lane ``i`` (:func:`pack_a` of the grids reshaped to ``(m, window.words)``),
    ``k`` must be ``window.size``, and the job has ``ceil(m/rows) * window.positions`` row tiles:
    row tile ``mt = t*positions + p`` multiplies window position ``p`` of grid tile ``t``. An
    element in the padding enters the array as ``0`` (it reads as ``a_zero_point``). A sink that
    writes column ``j`` of row tile ``mt`` at ``mt*n + j`` lays the result out as ``m`` grids of
    ``out_height x out_width x n``, packed as this job read its own: the layout of a following
    windowed job's ``A``. For the cycle model the job counts as
    :func:`~pyrtl_linalg.window_rows` rows.

    :param m: rows of ``A`` and of the result (grids, with an ``a_window``).
    :param k: the inner dimension.
    :param n: columns of ``B`` and of the result.
    :param a: memory holding ``A`` (a :class:`pyrtl.MemBlock` or :class:`pyrtl.RomBlock`,
        ``rows * bits`` wide).
    :param b: memory holding ``B`` (``cols * bits`` wide).
    :param a_base: address of ``A``'s first word.
    :param b_base: address of ``B``'s first word.
    :param a_zero_point: subtracted from every ``A`` value, a ``bits``-bit signed integer.
    :param bias: integers of shape ``(n,)`` added to each result column, or ``None``.
    :param a_window: read ``A`` as the patches of this window over ``m`` grids, or ``None``
        for a plain matrix.
    """

    m: int
    k: int
    n: int
    a: Memory
    b: Memory
    a_base: int = 0
    b_base: int = 0
    a_zero_point: int = 0
    bias: np.ndarray | None = None
    a_window: Window | None = None


def _row_tiles(job: MatmulJob, rows: int) -> int:
    """Row tiles of a job: ``ceil(m/rows)``, times the window positions of a windowed job."""
    tiles = math.ceil(job.m / rows)
    return tiles if job.a_window is None else tiles * job.a_window.positions


@dataclass(frozen=True, eq=False)
class TiledMatmul:
    """The handshake and the output stream of :func:`make_tiled_matmul`.

    In each cycle with ``valid`` high the stream carries one result column: ``values[i]`` is
    ``C[m_tile*rows + i, column]`` of job ``job`` (rows past ``m`` hold garbage), a signed
    ``value_bits``-bit two's complement number. Columns come in increasing order, one per cycle
    while a tile drains.

    :param start: the caller's start wire (sampled while idle).
    :param done: high for one cycle when every job of the run (of the segment, with
        ``pause_after``) has drained, plus ``sink_latency``.
    :param busy: high from the cycle after ``start`` up to and including the ``done`` cycle.
    :param valid: a result column is on the stream.
    :param job: index of the job the column belongs to (an unnamed constant 0 in an engine of
        one job).
    :param m_tile: row tile of the column (an unnamed constant 0 when every job has one row
        tile).
    :param column: the column's index in the job's result (``0 <= column < n``).
    :param address: ``m_tile * n + column``, the column's word in the ``A`` layout of the job's
        result (:class:`MatmulJob`), counted by the engine (no multiplier); the same wire as
        ``column`` when every job has one row tile.
    :param values: ``rows`` signed results.
    :param value_bits: width of each of ``values``.
    :param acc_bits: accumulator width of the array.
    """

    start: pyrtl.WireVector
    done: pyrtl.WireVector
    busy: pyrtl.WireVector
    valid: pyrtl.WireVector
    job: pyrtl.WireVector
    m_tile: pyrtl.WireVector
    column: pyrtl.WireVector
    address: pyrtl.WireVector
    values: tuple[pyrtl.WireVector, ...]
    value_bits: int
    acc_bits: int

    @property
    def output(self) -> WireMatrix2D:
        """The stream's values as a ``rows x 1`` :class:`~pyrtl_linalg.WireMatrix2D` with
        ``valid``."""
        return WireMatrix2D([[v] for v in self.values], bits=self.value_bits, valid=self.valid)


def _check_job(index: int, job: MatmulJob, rows: int, cols: int, bits: int) -> np.ndarray | None:
    if not isinstance(job, MatmulJob):
        raise TypeError(f"job {index} must be a MatmulJob, not {type(job).__name__}")
    for field in ("m", "k", "n"):
        positive_int(f"job {index} {field}", getattr(job, field))
    a_words = job.k
    if job.a_window is not None:
        if not isinstance(job.a_window, Window):
            raise TypeError(
                f"job {index} a_window must be a Window or None, not {type(job.a_window).__name__}"
            )
        if job.k != job.a_window.size:
            raise ValueError(
                f"job {index} k is {job.k} but its window's patches hold {job.a_window.size} "
                "values: set k to window.size"
            )
        a_words = job.a_window.words
    for field, mem, width, words in (
        ("a", job.a, rows * bits, math.ceil(job.m / rows) * a_words),
        ("b", job.b, cols * bits, math.ceil(job.n / cols) * job.k),
    ):
        if not isinstance(mem, pyrtl.MemBlock):
            raise TypeError(
                f"job {index} {field} must be a MemBlock or RomBlock, not {type(mem).__name__}"
            )
        if mem.bitwidth != width:
            raise ValueError(
                f"job {index} {field} memory {mem.name!r} is {mem.bitwidth} bits wide, not {width}"
            )
        base = non_negative_int(f"job {index} {field}_base", getattr(job, f"{field}_base"))
        end = base + words
        if end > 1 << mem.addrwidth:
            raise ValueError(
                f"job {index} {field} needs words {base}..{end - 1} but memory {mem.name!r} "
                f"has {1 << mem.addrwidth}"
            )
    signed_int(f"job {index} a_zero_point", job.a_zero_point, bits)
    if job.bias is None:
        return None
    bias = np.asarray(job.bias)
    if bias.shape != (job.n,) or not np.issubdtype(bias.dtype, np.integer):
        raise ValueError(
            f"job {index} bias must be integers of shape ({job.n},), "
            f"not {bias.dtype} of shape {bias.shape}"
        )
    return bias.astype(object)


def _read_operand(
    memories: list[Memory],
    address: pyrtl.Register,
    address_next: pyrtl.WireVector,
    select: pyrtl.WireVector,
    name: str,
) -> pyrtl.WireVector:
    """One read port per memory, each addressed straight from a register (so synchronous
    memories work; narrower memories get a mirror register of their own width), each word
    through ``FEED_LATENCY - 1`` registers of its own, then the ``select``-ed word (the select
    delayed to match). A block RAM's slow clock-to-output thus ends in a register, and the
    select is a path of its own."""
    data = []
    for index, memory in enumerate(memories):
        port = address
        if memory.addrwidth != len(address):
            port = pyrtl.Register(memory.addrwidth, name=f"{name}{index}_addr")
            port.next <<= address_next[: memory.addrwidth]
        data.append(delayed(memory[port], FEED_LATENCY - 1, f"{name}{index}_word"))
    if len(data) == 1:
        return data[0]
    chosen = delayed(select, FEED_LATENCY - 1, f"{name}_sel")
    return pyrtl.mux(chosen, *data, default=data[0])


def make_tiled_matmul(
    jobs: Sequence[MatmulJob],
    start: pyrtl.WireVector,
    *,
    rows: int,
    cols: int,
    bits: int = 8,
    sink_latency: int = 0,
    pause_after: Sequence[int] = (),
    name: str = "tmm",
) -> TiledMatmul:
    """Build an engine that computes a fixed sequence of matrix products on one array.

    When ``start`` is high while the engine is idle, it runs every job in order and raises
    ``done`` for one cycle, then is idle again: pulse ``start`` again to rerun (with new
    memory contents), with no reset and no rebuild. Each job is cut into
    ``ceil(m/rows) * ceil(n/cols)`` output tiles (row tiles outer, column tiles inner); a tile
    streams its ``k`` operand words (one ``A`` and one ``B`` word per cycle) through a
    ``rows x cols`` :func:`~pyrtl_linalg.make_systolic_array`. Tiles of a job follow each
    other every ``max(k, rows, cols)`` cycles: the results of one tile drain (one column per
    cycle, on the output stream) while the next tile computes. A job starts only after the
    previous one fully drained plus ``sink_latency`` cycles, so a job may read what the
    caller's sink wrote from an earlier job's stream. The cycle count is
    :func:`~pyrtl_linalg.tiled_matmul_cycles`.

    Pauses: after each job listed in ``pause_after`` the engine raises ``done`` (once the job
    drained, plus ``sink_latency``) and is idle, keeping its place; the next ``start`` runs
    the following jobs up to the next pause or the end, after which the next ``start`` begins
    again at job 0. Each such segment behaves exactly as a fresh run of its jobs alone, so it
    takes :func:`~pyrtl_linalg.tiled_matmul_cycles` of the segment's shapes. Between segments
    the caller may run other hardware on what the segment wrote.

    Windows: a job with an ``a_window`` reads its ``A`` tiles as patches of grids
    (:class:`MatmulJob`) through an incremental address generator (counters and adds of job
    constants, no multiplier), with the same schedule as a plain job of
    :func:`~pyrtl_linalg.window_rows` rows. Engines without windowed jobs do not build it.

    Widths: ``A - a_zero_point`` enters the array as a ``bits + 1``-bit signed value (``bits``
    when no job has a zero point) and ``B`` as a ``bits``-bit one, so each PE's product has
    ``2*bits + 1`` bits (17 for int8: one DSP48E1) and only that product is widened to the
    accumulators, :func:`~pyrtl_linalg.accumulator_bits` of the largest ``k``
    (``2*bits + ceil(log2 k)``). With a bias the output values are one bit wider than the
    larger of that and the bias's own signed width. No result can overflow.

    Skew: tiles are never closer than the smallest :func:`~pyrtl_linalg.tile_period` of the
    jobs, which is at least ``cols``, and the array is told so (``min_period``, see
    :func:`~pyrtl_linalg.column_skews`): the first ``period - rows + 1`` columns need no
    delay registers, so a one-row array has none at all.

    The engine owns one read port on each distinct memory it reads (per operand role). Their
    addresses come straight from registers, so synchronous (``asynchronous=False``) memories
    work. Everything is word-level, for fast simulation.

    Pipeline: every word read goes through a register of its own, the selected and
    zero-point-shifted edge operands through another (:data:`~pyrtl_linalg.FEED_LATENCY`
    ``= 2``), and each PE registers its product (:data:`~pyrtl_linalg.PE_LATENCY` ``= 1``); the
    controller's conditions (tile ends, waiting) are registers too. A block RAM's output, the
    operand select and subtraction, the multiplier and the accumulator are each a
    register-to-register path, for a clock of 100 MHz and more on an ECP5. It costs
    :data:`~pyrtl_linalg.PIPELINE_LATENCY` ``= 3`` cycles per job, in the gap after its last
    tile, and no throughput.

    :param jobs: the products to compute, in order (at least one).
    :param start: 1-bit start signal.
    :param rows: physical rows of the array (rows of a result tile).
    :param cols: physical columns (columns of a result tile).
    :param bits: operand width; operands are signed ``bits``-bit integers.
    :param sink_latency: extra cycles the caller's sink needs between a drained column and the
        moment the next job may read it (0: written in the cycle it is on the stream).
    :param pause_after: indices of the jobs after which the engine stops and raises ``done``
        (the last job always ends a run).
    :param name: prefix of the engine's wire names.
    :returns: the handshake and output stream.
    """
    rows = positive_int("array rows", rows)
    cols = positive_int("array cols", cols)
    bits = positive_int("bits", bits)
    sink_latency = non_negative_int("sink_latency", sink_latency)
    if len(jobs) == 0:
        raise ValueError("jobs must hold at least one MatmulJob")
    if len(start) != 1:
        raise ValueError(f"start must be 1 bit wide, not {len(start)}")
    biases = [_check_job(index, job, rows, cols, bits) for index, job in enumerate(jobs)]
    if isinstance(pause_after, str | bytes) or not isinstance(pause_after, Sequence):
        raise TypeError(f"pause_after must be a sequence of job indices, not {pause_after!r}")
    pauses = {int_in_range("pause_after index", i, 0, len(jobs) - 1) for i in pause_after}
    windowed = any(job.a_window is not None for job in jobs)

    acc_bits = accumulator_bits(max(job.k for job in jobs), bits=bits)
    gap = rows + cols - 1 + PIPELINE_LATENCY + sink_latency
    a_mems = list(dict.fromkeys(job.a for job in jobs))
    b_mems = list(dict.fromkeys(job.b for job in jobs))
    bias_bases, bias_words = [], []
    for job, bias in zip(jobs, biases, strict=True):
        bias_bases.append(len(bias_words))
        bias_words.extend(bias if bias is not None else [0] * job.n)
    has_bias = any(bias is not None for bias in biases)

    # The job descriptors live in a ROM indexed by the job register, so the controller's size
    # does not grow with the number of jobs.
    fields = {
        "k_m1": [job.k - 1 for job in jobs],
        "wait": [tile_period(job.k, rows=rows, cols=cols) - job.k for job in jobs],
        "nt_m1": [math.ceil(job.n / cols) - 1 for job in jobs],
        "mt_m1": [_row_tiles(job, rows) - 1 for job in jobs],
        "a_base": [job.a_base for job in jobs],
        "b_base": [job.b_base for job in jobs],
        "zp": [job.a_zero_point & ((1 << bits) - 1) for job in jobs],
        "a_sel": [a_mems.index(job.a) for job in jobs],
        "b_sel": [b_mems.index(job.b) for job in jobs],
        "n": [job.n for job in jobs],
        "bias_base": bias_bases,
    }
    fixed = {"zp": bits}  # two's complement: keep the sign bit
    a_width = max(mem.addrwidth for mem in a_mems)
    if pauses - {len(jobs) - 1}:
        fields["pause"] = [int(index in pauses) for index in range(len(jobs))]
    if windowed:
        window_fields, window_widths = patch_fields(
            [job.a_window for job in jobs],
            [job.k for job in jobs],
            fields.pop("a_base"),
            address_bits=a_width,
        )
        fields |= window_fields
        fixed |= window_widths
    widths = {key: fixed.get(key, counter_bits(max(values))) for key, values in fields.items()}
    words = []
    for index in range(len(jobs)):
        word, offset = 0, 0
        for key, values in fields.items():
            word |= values[index] << offset
            offset += widths[key]
        words.append(word)
    job_bits = counter_bits(len(jobs) - 1)
    job = pyrtl.Register(job_bits, name=f"{name}_job")
    descriptor = pyrtl.RomBlock(
        sum(widths.values()), job_bits, words, name=f"{name}_jobs", pad_with_zeros=True
    )[job]
    rom: dict[str, pyrtl.WireVector] = {}
    offset = 0
    for key in fields:
        rom[key] = descriptor[offset : offset + widths[key]]
        offset += widths[key]

    # Feed controller.
    busy = pyrtl.Register(1, name=f"{name}_running")
    fin = pyrtl.Register(1, name=f"{name}_fin")
    load = pyrtl.Register(1, name=f"{name}_load")
    wait = pyrtl.Register(counter_bits(max(gap, *fields["wait"])), name=f"{name}_wait")
    kk = pyrtl.Register(widths["k_m1"], name=f"{name}_kk")
    nt = pyrtl.Register(widths["nt_m1"], name=f"{name}_nt")
    mt = pyrtl.Register(widths["mt_m1"], name=f"{name}_mt")
    ncol = pyrtl.Register(counter_bits(max(fields["n"]) + cols), name=f"{name}_ncol")
    b_addr = pyrtl.Register(max(mem.addrwidth for mem in b_mems), name=f"{name}_b_addr")

    # The controller's conditions start from registers: `waiting` is `wait != 0` and the
    # three ends `kk == k_m1`, `nt == nt_m1`, `mt == mt_m1`, each computed from the next value
    # of what it tests. The ends compare with the current job's descriptor: it changes only
    # at a job's end, after which the engine waits at least one cycle (the gap) with kk, nt
    # and mt at 0, and in that cycle they are compared with the new job's fields.
    waiting = pyrtl.Register(1, name=f"{name}_waiting")
    k_end = pyrtl.Register(1, name=f"{name}_k_end")
    nt_end = pyrtl.Register(1, name=f"{name}_nt_end")
    mt_end = pyrtl.Register(1, name=f"{name}_mt_end")
    idle = ~busy
    go = idle & start
    feeding = busy & ~fin & ~waiting
    tile_end = feeding & k_end
    next_n = tile_end & ~nt_end
    next_m = tile_end & nt_end & ~mt_end
    job_end = tile_end & nt_end & mt_end
    last_job = job == len(jobs) - 1
    stop = last_job | rom["pause"] if "pause" in rom else last_job
    done = busy & fin & ~waiting
    reload = go | load

    if windowed:
        patches = make_patch_addresses(
            rom,
            reload=reload,
            step=feeding & ~tile_end,
            repeat=next_n,
            advance=next_m,
            address_bits=a_width,
            name=f"{name}_a",
        )
        a_addr, a_next = patches.address, patches.address_next
    else:
        a_addr = pyrtl.Register(a_width, name=f"{name}_a_addr")
        a_tile = pyrtl.Register(a_width, name=f"{name}_a_tile")
        a_next = pick(a_addr, (reload, rom["a_base"]), (next_n, a_tile), (feeding, a_addr + 1))
        a_addr.next <<= a_next
        a_tile.next <<= pick(a_tile, (reload, rom["a_base"]), (next_m, a_addr + 1))
    b_next = pick(b_addr, (reload, rom["b_base"]), (next_m, rom["b_base"]), (feeding, b_addr + 1))
    b_addr.next <<= b_next
    kk_next = pick(kk, (tile_end, 0), (feeding, kk + 1))
    nt_next = pick(nt, (next_n, nt + 1), (tile_end, 0))
    mt_next = pick(mt, (next_m, mt + 1), (job_end, 0))
    wait_next = pick(wait, (job_end, gap), (tile_end, rom["wait"]), (waiting, wait - 1))
    for counter, counter_next, end, last in (
        (kk, kk_next, k_end, rom["k_m1"]),
        (nt, nt_next, nt_end, rom["nt_m1"]),
        (mt, mt_next, mt_end, rom["mt_m1"]),
    ):
        counter.next <<= counter_next
        end.next <<= counter_next == last
    wait.next <<= wait_next
    waiting.next <<= wait_next != 0
    ncol.next <<= pick(ncol, (next_n, ncol + cols), (tile_end, 0))
    job.next <<= pick(job, (job_end & ~last_job, job + 1), (job_end, 0))
    busy.next <<= pick(busy, (go, 1), (done, 0))
    fin.next <<= pick(fin, (job_end & stop, 1), (done, 0))
    load.next <<= job_end & ~stop

    # Edges: read one packed word per operand and subtract the zero point, in FEED_LATENCY
    # register stages (the read words, then the edge operands); the descriptor fields used
    # past the first stage are delayed with the data, since the next job's descriptor may
    # already be in place. The operands enter the array at their own width (bits + 1 and
    # bits); each PE widens only its product.
    a_word = _read_operand(a_mems, a_addr, a_next, rom["a_sel"], f"{name}_a")
    b_word = _read_operand(b_mems, b_addr, b_next, rom["b_sel"], f"{name}_b")
    a_edge = [a_word[i * bits : (i + 1) * bits] for i in range(rows)]
    if any(fields["zp"]):
        zero_point = delayed(rom["zp"], FEED_LATENCY - 1, f"{name}_zp").sign_extended(bits + 1)
        a_edge = [(value.sign_extended(bits + 1) - zero_point)[: bits + 1] for value in a_edge]
    if windowed:
        # An element in the padding enters the array as 0 (it reads as the zero point).
        padding = delayed(patches.padding, FEED_LATENCY - 1, f"{name}_padding")
        a_edge = [pyrtl.select(padding, 0, value) for value in a_edge]
    a_edge = [delayed(value, 1, f"{name}_a_edge{i}") for i, value in enumerate(a_edge)]
    b_edge = [
        delayed(b_word[j * bits : (j + 1) * bits], 1, f"{name}_b_edge{j}") for j in range(cols)
    ]
    # The flags reach the corner with their elements.
    first = delayed(feeding & (kk == 0), FEED_LATENCY, f"{name}_first")
    last = delayed(tile_end, FEED_LATENCY, f"{name}_last")

    # Drain controller: a tile's column 0 is complete `rows + PE_LATENCY` cycles after its last
    # element entered the corner, FEED_LATENCY cycles after its read.
    min_period = min(tile_period(job.k, rows=rows, cols=cols) for job in jobs)
    drain_col = pyrtl.Register(counter_bits(cols - 1), name=f"{name}_drain_col")
    results = make_systolic_array(
        a_edge,
        b_edge,
        first=first,
        last=last,
        drain=drain_col,
        acc_bits=acc_bits,
        min_period=min_period,
        name=f"{name}_sa",
    )
    # A tag that cannot change (one job; one row tile in every job) is a constant, so that
    # no register or named wire is left unread (Verilator's UNUSEDSIGNAL) when the sink
    # ignores it.
    tags = {"ncol": ncol, "n": rom["n"]}
    if len(jobs) > 1:
        tags["job"] = job
    if any(fields["mt_m1"]):
        tags["mt"] = mt
        # The row tile's first word in the result's A layout, mt * n, kept by adding n.
        result_words = max(_row_tiles(j, rows) * j.n + cols for j in jobs)
        row = pyrtl.Register(counter_bits(result_words), name=f"{name}_row")
        row.next <<= pick(row, (next_m, row + rom["n"]), (job_end, 0))
        tags["address"] = (row + ncol)[: len(row)]
    if has_bias:
        tags["bias"] = (rom["bias_base"] + ncol)[: counter_bits(len(bias_words) - 1)]
    # The tags of a tile change at its tile_end and are drained `hold` cycles later. They
    # wait in `pending`, captured `early` cycles after tile_end (through delay registers only
    # where tiles come closer than `hold`): the next tile's capture, a period later, must not
    # come before the drain has read them.
    hold = rows - 1 + FEED_LATENCY + PE_LATENCY
    early = max(0, hold - min_period)
    capture = delayed(tile_end, early, f"{name}_capture")
    pending = {}
    for key, wire in tags.items():
        early_wire = delayed(wire, early, f"{name}_tag_{key}")
        pending[key] = pyrtl.Register(len(wire), name=f"{name}_pending_{key}")
        pending[key].next <<= pyrtl.select(capture, early_wire, pending[key])
    tags = pending
    pulse = delayed(capture, hold - early, f"{name}_drain_go")
    active = pyrtl.Register(1, name=f"{name}_drain_active")
    active.next <<= pulse | (active & (drain_col != cols - 1))
    drain_col.next <<= pick(drain_col, (pulse, 0), (active, drain_col + 1))
    drained = {}
    for key, wire in tags.items():
        drained[key] = pyrtl.Register(len(wire), name=f"{name}_drain_{key}")
        if key in ("ncol", "address", "bias"):
            drained[key].next <<= pick(drained[key], (pulse, wire), (active, drained[key] + 1))
        else:
            drained[key].next <<= pyrtl.select(pulse, wire, drained[key])

    value_bits = acc_bits
    if has_bias:
        bias_bits = signed_bits(*bias_words)
        value_bits = max(acc_bits, bias_bits) + 1
        mask = (1 << bias_bits) - 1
        bias_rom = pyrtl.RomBlock(
            bias_bits,
            len(drained["bias"]),
            [int(word) & mask for word in bias_words],
            name=f"{name}_bias",
            pad_with_zeros=True,
        )
        bias = bias_rom[drained["bias"]].sign_extended(value_bits)
        results = [(result.sign_extended(value_bits) + bias)[:value_bits] for result in results]

    def named(wire: pyrtl.WireVector, suffix: str) -> pyrtl.WireVector:
        out = pyrtl.WireVector(len(wire), name=f"{name}_{suffix}")
        out <<= wire
        return out

    column = named(drained["ncol"], "out_column")
    return TiledMatmul(
        start=start,
        done=named(done, "done"),
        busy=named(busy, "busy"),
        valid=named(active & (drained["ncol"] < drained["n"]), "valid"),
        job=named(drained["job"], "out_job") if "job" in drained else pyrtl.Const(0),
        m_tile=named(drained["mt"], "out_m_tile") if "mt" in drained else pyrtl.Const(0),
        column=column,
        address=named(drained["address"], "out_address") if "address" in drained else column,
        values=tuple(named(result, f"out{i}") for i, result in enumerate(results)),
        value_bits=value_bits,
        acc_bits=acc_bits,
    )


def pack_a(a: np.ndarray, *, rows: int, bits: int = 8) -> list[int]:
    """Pack a matrix into the ``A`` layout of :class:`MatmulJob` (``a_base = 0``).

    Word ``mt*k + kk`` holds ``a[mt*rows + i, kk]`` for ``i < rows`` in bits
    ``[i*bits, (i+1)*bits)``, two's complement; rows past the matrix are zero.

    >>> [hex(w) for w in pack_a(np.array([[1, 2], [-1, 4], [5, 6]]), rows=2)]
    ['0xff01', '0x402', '0x5', '0x6']

    :param a: signed integers of shape ``(m, k)``.
    :param rows: physical rows of the array.
    :param bits: width of one value.
    :returns: ``ceil(m/rows) * k`` unsigned words, ready for a ROM or ``memory_value_map``.
    """
    a = np.asarray(a)
    m, k = a.shape
    tiles = math.ceil(m / rows)
    padded = np.zeros((tiles * rows, k), dtype=object)
    padded[:m] = a.astype(object) & ((1 << bits) - 1)
    shifts = np.array([1 << (i * bits) for i in range(rows)], dtype=object)
    words = (padded.reshape(tiles, rows, k) * shifts[None, :, None]).sum(axis=1)
    return [int(word) for word in words.reshape(-1)]


def pack_b(b: np.ndarray, *, cols: int, bits: int = 8) -> list[int]:
    """Pack a matrix into the ``B`` layout of :class:`MatmulJob` (``b_base = 0``).

    Word ``nt*k + kk`` holds ``b[kk, nt*cols + j]`` for ``j < cols`` in bits
    ``[j*bits, (j+1)*bits)``; columns past the matrix are zero. (This is the ``A`` layout of
    ``b.T``.)

    :param b: signed integers of shape ``(k, n)``.
    :param cols: physical columns of the array.
    :param bits: width of one value.
    :returns: ``ceil(n/cols) * k`` unsigned words.
    """
    return pack_a(np.asarray(b).T, rows=cols, bits=bits)


def unpack_a(
    words: Sequence[int] | Mapping[int, int] | np.ndarray,
    *,
    m: int,
    k: int,
    rows: int,
    bits: int = 8,
    signed: bool = True,
) -> np.ndarray:
    """Read a matrix back from the ``A`` layout: the inverse of :func:`pack_a`.

    The drained result stream, written at ``m_tile*n + column``, is in this layout too
    (``k = n``, ``bits = value_bits``). Fields are two's complement by default; unsigned
    fields (indices, say) read with ``signed=False``.

    >>> unpack_a([0xFF01, 0x402, 0x5, 0x6], m=3, k=2, rows=2)
    array([[ 1,  2],
           [-1,  4],
           [ 5,  6]])
    >>> unpack_a([0xFF01, 0x402, 0x5, 0x6], m=3, k=2, rows=2, signed=False)
    array([[  1,   2],
           [255,   4],
           [  5,   6]])

    :param words: the words from address 0 on, as a sequence or a mapping from address to
        word (missing addresses read as 0, as from ``inspect_mem``), or as a NumPy array of
        ``uint64`` words ``[n]`` or 64-bit limbs ``[n, limbs]``, least significant first (as
        :meth:`BatchDriver.read_memory` returns them; addresses past ``n`` read as 0), which
        is unpacked without Python integers.
    :param m: rows of the matrix.
    :param k: columns of the matrix.
    :param rows: values per word (the array's rows).
    :param bits: width of one value.
    :param signed: read each field as two's complement (``True``) or as an unsigned integer.
    :returns: int64 array of shape ``(m, k)`` (object array when ``bits > 63``).
    """
    tiles = math.ceil(m / rows)
    if isinstance(words, np.ndarray) and words.dtype == np.uint64 and bits <= 63:
        values = _unpack_limbs(words, tiles * k, rows * bits, bits)
        values = values.reshape(tiles, k, rows).transpose(0, 2, 1).reshape(tiles * rows, k)[:m]
        return to_signed(values, bits) if signed else values
    get = words.get if isinstance(words, Mapping) else words.__getitem__
    if isinstance(words, Mapping):
        packed = [[get(t * k + kk, 0) for kk in range(k)] for t in range(tiles)]
    else:
        packed = [[get(t * k + kk) for kk in range(k)] for t in range(tiles)]
    packed_array = np.array(packed, dtype=object).reshape(tiles, 1, k)
    shifts = np.array([i * bits for i in range(rows)], dtype=object).reshape(1, rows, 1)
    values = ((packed_array >> shifts) & ((1 << bits) - 1)).reshape(tiles * rows, k)[:m]
    if signed:
        return to_signed(values, bits)
    return values.astype(np.int64) if bits <= 63 else values


def _unpack_limbs(words: np.ndarray, count: int, width: int, bits: int) -> np.ndarray:
    """The low ``width`` bits of the first ``count`` words (``uint64 [n]`` or ``[n, limbs]``;
    missing words are 0) as ``width // bits`` unsigned ``bits``-bit fields each, least
    significant first: ``int64 [count, width // bits]``."""
    limbs = words.reshape(len(words), -1)[:count]
    padded = np.zeros((count, limbs.shape[1]), "<u8")
    padded[: len(limbs)] = limbs
    bit_rows = np.unpackbits(padded.view(np.uint8), axis=1, bitorder="little")
    fields = bit_rows[:, :width].reshape(count, width // bits, bits).astype(np.int64)
    return fields @ (np.int64(1) << np.arange(bits, dtype=np.int64))
