"""A byte-wide host interface around a :class:`~pyrtlnet.Design`: few pins, for a small FPGA.

The design's own ports are as wide as its memories (``in_data`` is ``8 R`` bits, ``R`` the
lanes, plus every address), which on the shipped model's 1x2 array is 47 port bits: more than
the 39 I/O pins of an iCE40 UP5K in its SG48 package. :func:`build_byte_bus` copies the
design's block and puts an 8-bit bus in front of it, with counters inside that do the
addressing, so the top level has 20 port bits and ``clk``, ``rst``, whatever the model:

* ``data_in[8]``, ``wr``: the host writes the input frame one byte per rising edge with ``wr``
  high. A write counter packs every ``R`` bytes into one word of the input memory (byte ``i``
  is lane ``i``) and steps the word address; after the frame's last byte it is back at 0.
* ``start``: high for one edge runs the batch in the input memory (and sets both counters to
  byte 0).
* ``done``: low from the ``start`` edge until the batch's results are readable, then high until
  the next ``start`` (also low after reset, before the first batch).
* ``data_out[8]``, ``rd``: ``data_out`` shows the output frame's current byte; an edge with
  ``rd`` high moves to the next one, which shows right after that edge (first-word
  fall-through, as a FIFO's: the wrapper gives the memories the next byte's word address, so
  their one-cycle read latency is hidden). After the last byte it is back at the first.

Frames. The input frame is the input memory, word after word, each word's ``R`` bytes lowest
first: byte ``R (mt K + f) + i`` is feature ``f`` (int8) of image ``mt R + i``, ``K`` the input
features, ``mt`` the row tile (:func:`byte_bus_input`), ``m_tiles K R`` bytes in all. The output
frame is the prediction memory, one byte per lane (``m_tiles R`` bytes: byte ``mt R + i`` is
the class of image ``mt R + i``), then with ``logits`` the last layer's memory as it is: byte
``m_tiles R + R (mt N + c) + i`` is output ``c`` (int8) of image ``mt R + i``, ``N`` the classes.
Lanes past ``batch_size`` are padding rows; :func:`byte_bus_results` decodes a frame.

Rules. ``wr`` and ``start`` are ignored while a batch runs (the design reads its input memory
then), and ``wr`` in a ``start`` cycle is ignored too. Every strobe is sampled at rising
edges of ``clk``: a host on its own clock (a microcontroller's GPIOs, an FTDI FIFO) brings
each strobe through a synchronizer and an edge detector, so that one host strobe is one
cycle high here.

One batch after an earlier one (``done`` still high), ``R = 1``: bytes ``b0 .. b(n-1)`` in,
results ``r0, r1, ...`` out::

    clk       ^   ^   ^       ^   ^   ^          ^   ^   ^   ^
    wr        ‾‾‾‾‾‾‾‾‾ ... ‾‾|____________________________________
    data_in   b0 |b1 |b2 ...  |
    start     ________________|‾‾‾|________________________________
    done      ‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾|______ cycles ______|‾‾‾‾‾‾‾‾‾‾‾‾
    rd        _____________________________________|‾‾‾‾‾‾‾‾‾‾‾‾|___
    data_out                                   r0   | r1 | r2 | r3

Cost: ``in_bytes + 1 + out_bytes`` bus cycles per batch (the writes, ``start``, the reads)
besides the design's ``cycles_per_batch``: the next frame may be written only after ``done``,
since the input memory is the design's while it runs.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pyrtl

from pyrtl_linalg import pack_a

from ._axi import _bits, _bus_design, _core, _out_words
from ._design import Design, Port, port_table
from ._plan import Plan

__all__ = ["ByteBusDesign", "build_byte_bus", "byte_bus_input", "byte_bus_results"]


@dataclass(frozen=True, eq=False)
class ByteBusDesign:
    """A :class:`~pyrtlnet.Design` behind an 8-bit host bus (see the module), from
    :func:`build_byte_bus`.

    :param design: the wrapped design (its own block is left as it was).
    :param block: the wrapper's block: a copy of the design's logic plus the bus logic.
    :param in_bytes: bytes of an input frame, ``m_tiles * in_features * R``.
    :param out_bytes: bytes of an output frame, ``m_tiles * R * (1 + classes if logits)``.
    :param logits: whether the output frame carries the logits after the predictions.
    :param ports: the top-level ports (besides ``clk`` and ``rst``) by name.
    """

    design: Design
    block: pyrtl.Block
    in_bytes: int
    out_bytes: int
    logits: bool
    ports: Mapping[str, Port]

    @property
    def plan(self) -> Plan:
        """The wrapped design's plan."""
        return self.design.plan


_PORT_DOCS = {
    "data_in": "input frame byte, taken at a rising edge with wr high",
    "wr": "high: write data_in as the next byte of the input frame",
    "start": "high for one cycle: run the batch written",
    "rd": "high: step data_out to the next byte of the output frame",
    "done": "high while the last batch's results are readable",
    "data_out": "the output frame's current byte",
}


def build_byte_bus(design: Design | Plan, *, logits: bool = True) -> ByteBusDesign:
    """Put ``design`` behind an 8-bit data-in bus, an 8-bit data-out bus and the strobes
    ``wr``, ``start``, ``rd`` and ``done``: 20 port bits plus ``clk`` and ``rst`` for any model.

    Latency: none added inside the design; a batch costs ``in_bytes`` write cycles, the
    ``start`` cycle, ``cycles_per_batch`` until ``done``, then ``out_bytes`` read cycles.

    :param design: a design, or a plan to build one from.
    :param logits: send the last layer's int8 outputs after the predictions.
    :returns: the wrapper.
    :raises ValueError: if the model has more than 256 classes (a prediction is one byte).
    """
    design = _bus_design(design, "the byte bus")
    plan = design.plan
    out_words = _out_words(plan, logits)
    block, core = _core(design)
    # The core's inputs are undriven until _wrap drives them: check the block after it.
    with pyrtl.set_working_block(block, no_sanity_check=True):
        _wrap(core, plan=plan, out_words=out_words, logits=logits)
    block.sanity_check()
    return ByteBusDesign(
        design=design,
        block=block,
        in_bytes=plan.memory_words[0] * plan.lanes,
        out_bytes=out_words * plan.lanes,
        logits=logits,
        ports=port_table(block, _PORT_DOCS),
    )


def _step(
    move: pyrtl.WireVector, lane: pyrtl.Register, word: pyrtl.Register, lanes: int, words: int
) -> tuple[pyrtl.WireVector, pyrtl.WireVector]:
    """Next values of a byte counter ``(word, lane)`` that advances when ``move`` is high and
    wraps from byte ``lanes * words - 1`` to 0; returns them without assigning them."""
    last_lane = lane == lanes - 1
    next_word = pyrtl.select(word == words - 1, 0, (word + 1)[: len(word)])
    lane_next = pyrtl.select(move, pyrtl.select(last_lane, 0, (lane + 1)[: len(lane)]), lane)
    word_next = pyrtl.select(move & last_lane, next_word, word)
    return lane_next, word_next


def _wrap(core: dict[str, pyrtl.WireVector], *, plan: Plan, out_words: int, logits: bool) -> None:
    """The bus logic, in the working block, around the ``core`` wires (see the module)."""
    lanes, m_tiles = plan.lanes, plan.m_tiles
    data_in = pyrtl.Input(8, "data_in")
    wr = pyrtl.Input(1, "wr")
    start = pyrtl.Input(1, "start")
    rd = pyrtl.Input(1, "rd")
    done = pyrtl.Output(1, "done")
    data_out = pyrtl.Output(8, "data_out")

    running = pyrtl.Register(1, "bus_running")
    ready = pyrtl.Register(1, "bus_done")
    go = start & ~running
    core["start"] <<= go
    running.next <<= pyrtl.select(go, 1, pyrtl.select(core["done"], 0, running))
    ready.next <<= pyrtl.select(go, 0, pyrtl.select(core["done"], 1, ready))
    done <<= ready

    # Write side: bytes 0 .. R-2 of a word wait in `held` (the newest at the top), the R-th
    # completes the word and writes it.
    lane_bits = _bits(lanes)
    write_lane = pyrtl.Register(lane_bits, "bus_write_lane")
    write_word = pyrtl.Register(len(core["in_addr"]), "bus_write_word")
    store = wr & ~running & ~start
    lane_next, word_next = _step(store, write_lane, write_word, lanes, plan.memory_words[0])
    write_lane.next <<= pyrtl.select(go, 0, lane_next)
    write_word.next <<= pyrtl.select(go, 0, word_next)
    word = data_in
    if lanes > 1:
        held = pyrtl.Register(8 * (lanes - 1), "bus_held")
        shifted = data_in if lanes == 2 else pyrtl.concat(data_in, held[8:])
        held.next <<= pyrtl.select(store, shifted, held)
        word = pyrtl.concat(data_in, held)
    core["in_we"] <<= store & (write_lane == lanes - 1)
    core["in_addr"] <<= write_word
    core["in_data"] <<= word

    # Read side: the memories get the next byte's word address (they register it), so the
    # word of the current byte is on their outputs in its cycle.
    read_lane = pyrtl.Register(lane_bits, "bus_read_lane")
    read_word = pyrtl.Register(_bits(out_words), "bus_read_word")
    lane_next, word_next = _step(rd, read_lane, read_word, lanes, out_words)
    read_lane.next <<= pyrtl.select(go, 0, lane_next)
    address = pyrtl.select(go, 0, word_next)
    read_word.next <<= address
    core["pred_addr"] <<= address[: len(core["pred_addr"])]
    bits = plan.index_bits
    data = core["pred_data"]
    predictions = [data[i * bits : (i + 1) * bits].zero_extended(8) for i in range(lanes)]
    byte = _lane(read_lane, predictions)
    if logits:
        core["out_addr"] <<= (address - m_tiles)[: len(core["out_addr"])]
        outputs = [core["out_data"][8 * i : 8 * i + 8] for i in range(lanes)]
        byte = pyrtl.select(read_word < m_tiles, byte, _lane(read_lane, outputs))
    else:
        core["out_addr"] <<= 0
    data_out <<= byte


def _lane(index: pyrtl.WireVector, values: Sequence[pyrtl.WireVector]) -> pyrtl.WireVector:
    """``values[index]`` (``index`` is below ``len(values)``)."""
    if len(values) == 1:
        return values[0]
    return pyrtl.mux(index, *values, default=pyrtl.Const(0, 8))


def byte_bus_input(bus: ByteBusDesign, q: np.ndarray) -> list[int]:
    """The input frame (the bytes to write, in order) carrying one batch.

    :param bus: the wrapper.
    :param q: int8 ``[b, in_features]``, ``1 <= b <= batch_size``; a short batch is padded by
        repeating its last image.
    :returns: :attr:`ByteBusDesign.in_bytes` bytes (0 .. 255).
    :raises ValueError: if ``q`` is not such an array.
    """
    design = bus.design
    q = design.check_inputs(q)
    if len(q) > design.batch_size:
        raise ValueError(f"a batch holds at most {design.batch_size} images, not {len(q)}")
    padded = np.concatenate([q, np.repeat(q[-1:], design.batch_size - len(q), axis=0)])
    words = pack_a(padded, rows=design.lanes)
    return [(word >> (8 * i)) & 0xFF for word in words for i in range(design.lanes)]


def byte_bus_results(
    bus: ByteBusDesign, frame: Sequence[int]
) -> tuple[np.ndarray, np.ndarray | None]:
    """Decode an output frame read from the bus.

    :param bus: the wrapper.
    :param frame: the :attr:`ByteBusDesign.out_bytes` bytes read after ``done``, in order.
    :returns: the predictions, int64 ``[batch_size]``, and the logits, int8
        ``[batch_size, classes]`` (None when the wrapper sends none).
    :raises ValueError: if the frame has the wrong length.
    """
    if len(frame) != bus.out_bytes:
        raise ValueError(f"an output frame has {bus.out_bytes} bytes, not {len(frame)}")
    plan = bus.plan
    lanes, tiles, batch = plan.lanes, plan.m_tiles, plan.batch_size
    data = np.asarray(frame, np.uint8)
    predictions = data[: tiles * lanes][:batch].astype(np.int64)
    if not bus.logits:
        return predictions, None
    classes = plan.model.num_classes
    tiled = data[tiles * lanes :].view(np.int8).reshape(tiles, classes, lanes)
    logits = tiled.transpose(0, 2, 1).reshape(tiles * lanes, classes)[:batch]
    return predictions, logits
