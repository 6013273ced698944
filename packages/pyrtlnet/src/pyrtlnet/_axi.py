"""An AXI wrapper around a :class:`~pyrtlnet.Design`: the bus a Zynq/Pynq processor system drives.

:func:`build_axi` copies the design's block and turns the design's top-level ports into wires
driven and read by three AXI interfaces, the convention of an AXI DMA design (an MM2S channel
feeding the input stream, an S2MM channel taking the output stream, the CPU on AXI4-Lite):

* ``s_axis_*``: AXI4-Stream slave, one input frame per batch (:func:`axi_input_frame`).
* ``m_axis_*``: AXI4-Stream master, one output frame per batch (:func:`axi_output_frame`):
  the predictions, then (``logits=True``) the last layer's int8 outputs.
* ``s_axi_*``: AXI4-Lite slave, the registers of :data:`AXI_REGISTERS`.

Stream format. A beat is ``8 * P`` bits, ``P`` the design's lanes ``R`` rounded up to a power of
two (a width an AXI DMA accepts); byte ``i`` (bits ``[8 i, 8 i + 8)``, little-endian) is lane
``i``, i.e. image ``mt * R + i`` of row tile ``mt``; bytes ``R .. P - 1`` are ignored on input
and zero on output. Input beat ``mt * K + f`` holds input feature ``f`` (int8) of the ``R`` images
of row tile ``mt``, so one frame is ``m_tiles * K`` beats, ``TLAST`` on the last; that is the
input memory's own layout, written one word per accepted beat. Output beat ``mt`` holds the
``R`` predictions of row tile ``mt`` (one unsigned byte each); with logits, beat
``m_tiles + mt * N + c`` holds output ``c`` (int8) of those images. ``TLAST`` marks the frame's
last beat. A frame carries a whole batch: a driver pads a short batch (:func:`axi_input_frame`
repeats the last image). When ``batch_size`` is not a multiple of ``R``, the last row tile's
lanes past it are padding rows, don't-care on output (:func:`axi_output_masks`).

Flow. Writing ``START`` arms the wrapper for one frame (``AUTO_RESTART`` keeps it armed). An
armed wrapper accepts beats (``s_axis_tready``) while the design is not computing; a complete
frame starts the batch; when the design's ``done`` rises the output frame is offered beat by beat
(``m_axis_tvalid``) and the next input frame may already load, since the results are read from
other memories. Either stream may stall at any cycle: a beat moves only on ``tvalid & tready``,
so nothing is dropped or repeated. A frame whose ``TLAST`` comes early sets ``ERR_SHORT``; one
without ``TLAST`` on its last beat sets ``ERR_LONG`` and the rest of it, up to ``TLAST``, is
accepted and discarded. Neither runs a batch, and the wrapper stays armed, ready for the next
frame: a malformed frame never stalls the bus.

Timing of one input beat ``n`` that waits one cycle for ``tvalid`` and a prediction beat held one
cycle by ``tready`` (handshakes at rising edges ``^``)::

    clk             ^   ^   ^   ^   ^   ^
    s_axis_tvalid   ____|‾‾‾‾‾‾‾|________
    s_axis_tready   ‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾‾
    s_axis_tdata        | n     |            accepted at the second edge: in_addr n
    m_axis_tvalid   ________|‾‾‾‾‾‾‾‾‾‾‾|
    m_axis_tready   ____________|‾‾‾|____
    m_axis_tdata            | p0    |        held until the edge where tready is high
"""

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyrtl
import pyrtl.transform

from pyrtl_linalg import pack_a

from ._design import Design, Port, build_design, port_table
from ._plan import Plan

__all__ = [
    "AXI_ADDR_BITS",
    "AXI_REGISTERS",
    "AxiDesign",
    "AxiField",
    "AxiRegister",
    "axi_input_frame",
    "axi_output_frame",
    "axi_output_masks",
    "axi_register",
    "build_axi",
]

#: Width of the AXI4-Lite data bus and of every register.
AXI_DATA_BITS = 32
#: Width of the AXI4-Lite address: the register file spans 64 bytes.
AXI_ADDR_BITS = 6


@dataclass(frozen=True)
class AxiField:
    """A bit field of an AXI4-Lite register.

    :param name: upper-case name.
    :param low: lowest bit.
    :param bits: width.
    :param doc: what it holds, one line.
    """

    name: str
    low: int
    bits: int
    doc: str

    @property
    def mask(self) -> int:
        """The field's bits in the register."""
        return ((1 << self.bits) - 1) << self.low


@dataclass(frozen=True)
class AxiRegister:
    """One 32-bit AXI4-Lite register.

    :param offset: byte address (a multiple of 4).
    :param name: upper-case name.
    :param access: ``"RW"`` (read/write), ``"RO"`` (writes ignored) or ``"RW1C"`` (read; writing
        1 to a bit clears it).
    :param fields: its bit fields, lowest first; unlisted bits read 0.
    :param doc: what it is for, one line.
    """

    offset: int
    name: str
    access: Literal["RW", "RO", "RW1C"]
    fields: tuple[AxiField, ...]
    doc: str

    def field(self, name: str) -> AxiField:
        """The field called ``name``."""
        return next(f for f in self.fields if f.name == name)


def _read_only_value(offset: int, name: str, value: str, doc: str) -> AxiRegister:
    """A read-only register that is one 32-bit value, its field named as the register."""
    return AxiRegister(offset, name, "RO", (AxiField(name, 0, AXI_DATA_BITS, value),), doc)


#: The register map, by offset: the wrapper decodes it, the docs and the testbench read it.
AXI_REGISTERS: tuple[AxiRegister, ...] = (
    AxiRegister(
        0x00,
        "CONTROL",
        "RW",
        (
            AxiField(
                "START", 0, 1, "write 1: accept one input frame and run it; reads 1 while armed"
            ),
            AxiField("AUTO_RESTART", 1, 1, "1: stay armed after every frame (stream many batches)"),
        ),
        "start the accelerator",
    ),
    AxiRegister(
        0x04,
        "STATUS",
        "RW1C",
        (
            AxiField("DONE", 0, 1, "a batch's output frame has been sent (write 1 to clear)"),
            AxiField("IDLE", 1, 1, "read only: no frame loading, running or being sent"),
            AxiField("ERR_SHORT", 2, 1, "a frame ended (TLAST) before its last beat"),
            AxiField("ERR_LONG", 3, 1, "a frame had no TLAST on its last beat"),
        ),
        "sticky flags; the DONE flag also drives the irq output",
    ),
    _read_only_value(
        0x08,
        "CYCLES",
        "cycles from start to done of the last batch (the design's counter)",
        "latency of the last batch, measured by the hardware",
    ),
    _read_only_value(
        0x0C, "BATCHES", "output frames sent since reset (wraps at 2**32)", "batches completed"
    ),
    _read_only_value(0x10, "BATCH_SIZE", "images in one frame", "images per batch"),
    AxiRegister(
        0x14,
        "ARRAY",
        "RO",
        (
            AxiField("ROWS", 0, 16, "rows of the (first) systolic array: the lanes R"),
            AxiField("COLS", 16, 16, "columns of the (first) systolic array"),
        ),
        "array size",
    ),
    _read_only_value(
        0x18, "IN_BEATS", "beats in one input frame: m_tiles * in_features", "input frame length"
    ),
    _read_only_value(
        0x1C,
        "OUT_BEATS",
        "beats in one output frame: m_tiles * (1 + classes if logits)",
        "output frame length",
    ),
    AxiRegister(
        0x20,
        "FORMAT",
        "RO",
        (
            AxiField("LANES", 0, 8, "images per beat R"),
            AxiField("BEAT_BYTES", 8, 8, "bytes per beat P (R rounded up to a power of two)"),
            AxiField("LOGITS", 16, 1, "1: output frames carry the logits after the predictions"),
        ),
        "stream format",
    ),
)


def axi_register(name: str) -> AxiRegister:
    """The register of :data:`AXI_REGISTERS` called ``name``.

    :raises KeyError: if there is none.
    """
    for register in AXI_REGISTERS:
        if register.name == name:
            return register
    raise KeyError(f"no AXI register named {name!r}")


@dataclass(frozen=True, eq=False)
class AxiDesign:
    """A :class:`~pyrtlnet.Design` wrapped in AXI interfaces (see the module), from
    :func:`build_axi`.

    :param design: the wrapped design (its own block is left as it was).
    :param block: the wrapper's block: a copy of the design's logic plus the AXI logic.
    :param beat_bytes: bytes per stream beat ``P``.
    :param in_beats: beats of an input frame.
    :param out_beats: beats of an output frame.
    :param logits: whether output frames carry the logits.
    :param ports: the top-level ports (besides ``clk`` and ``rst``) by name.
    :param registers: the read-only values of the register map, by register name.
    """

    design: Design
    block: pyrtl.Block
    beat_bytes: int
    in_beats: int
    out_beats: int
    logits: bool
    ports: Mapping[str, Port]
    registers: Mapping[str, int]

    @property
    def plan(self) -> Plan:
        """The wrapped design's plan."""
        return self.design.plan

    @property
    def beat_bits(self) -> int:
        """Width of ``s_axis_tdata`` and ``m_axis_tdata``."""
        return 8 * self.beat_bytes


def _beat_bytes(lanes: int) -> int:
    return 1 << max(0, math.ceil(math.log2(lanes)))


def axi_input_frame(axi: AxiDesign, q: np.ndarray) -> list[int]:
    """The input frame (``s_axis_tdata`` of each beat, in order) carrying one batch.

    :param axi: the wrapper.
    :param q: int8 ``[b, in_features]``, ``1 <= b <= batch_size``; a short batch is padded by
        repeating its last image, so every lane of the frame holds a real image.
    :returns: :attr:`AxiDesign.in_beats` words; ``TLAST`` goes with the last.
    :raises ValueError: if ``q`` is not such an array.
    """
    design = axi.design
    q = design.check_inputs(q)
    if len(q) > design.batch_size:
        raise ValueError(f"a batch holds at most {design.batch_size} images, not {len(q)}")
    padded = np.concatenate([q, np.repeat(q[-1:], design.batch_size - len(q), axis=0)])
    return pack_a(padded, rows=design.lanes)


def axi_output_frame(axi: AxiDesign, predictions: np.ndarray, logits: np.ndarray) -> list[int]:
    """The output frame the wrapper sends for a batch with these results.

    :param axi: the wrapper.
    :param predictions: ``[batch_size]`` class indices (a padded batch's, see
        :func:`axi_input_frame`).
    :param logits: int8 ``[batch_size, classes]``: the last layer's outputs; unused when the
        wrapper sends no logits.
    :returns: :attr:`AxiDesign.out_beats` words.
    """
    lanes = axi.design.lanes
    words = pack_a(np.asarray(predictions, np.int64)[:, None], rows=lanes)
    if axi.logits:
        words += pack_a(np.asarray(logits, np.int64), rows=lanes)
    assert len(words) == axi.out_beats
    return words


def axi_output_masks(axi: AxiDesign) -> list[int]:
    """Per output beat, the bits that carry results: all but the lanes of the last row tile
    past ``batch_size`` (when ``batch_size`` is not a multiple of the lanes ``R``), whose
    padding rows the design computes from whatever they hold.

    :param axi: the wrapper.
    :returns: :attr:`AxiDesign.out_beats` masks of :attr:`AxiDesign.beat_bits` bits.
    """
    plan = axi.plan
    full = (1 << axi.beat_bits) - 1
    masks = []
    for beat in range(axi.out_beats):
        tile = beat if beat < plan.m_tiles else (beat - plan.m_tiles) // plan.model.num_classes
        unused = (tile + 1) * plan.lanes - plan.batch_size
        lanes = ((1 << (8 * unused)) - 1) << (8 * (plan.lanes - unused)) if unused > 0 else 0
        masks.append(full & ~lanes)
    return masks


def _bus_design(design: Design | Plan, bus: str) -> Design:
    """The design a bus wrapper takes (built from a plan if need be), checked for what every
    wrapper here assumes: a prediction fits one byte."""
    if isinstance(design, Plan):
        design = build_design(design)
    classes = design.plan.model.num_classes
    if classes > 256:
        raise ValueError(
            f"{bus} sends a prediction per byte, so at most 256 classes, not {classes}"
        )
    return design


def _out_words(plan: Plan, logits: bool) -> int:
    """Result words of a batch on a wrapper's output: per row tile, the predictions' word and,
    with ``logits``, one word per class."""
    return plan.m_tiles * (1 + plan.model.num_classes * logits)


def _core(design: Design) -> tuple[pyrtl.Block, dict[str, pyrtl.WireVector]]:
    """A copy of the design's block whose top-level ports are plain wires ``core_<port>``."""
    block = pyrtl.transform.copy_block(design.block, update_working_block=False)
    sources, destinations = block.net_connections(include_virtual_nodes=False)
    wires = {}
    with pyrtl.set_working_block(block):
        for port in list(block.wirevector_subset((pyrtl.Input, pyrtl.Output))):
            wire = pyrtl.WireVector(port.bitwidth, name=f"core_{port.name}")
            pyrtl.transform.replace_wire_fast(port, wire, wire, sources, destinations, block)
            wires[port.name] = wire
    return block, wires


def _bits(count: int) -> int:
    """Bits of a counter that holds ``0 .. count - 1``."""
    return max(1, (count - 1).bit_length())


def build_axi(design: Design | Plan, *, logits: bool = True) -> AxiDesign:
    """Wrap ``design`` in an AXI4-Stream input, an AXI4-Stream output and AXI4-Lite registers.

    Latency added to a batch: none inside the design; the input frame takes ``in_beats`` cycles
    without stalls, the output frame ``out_beats``, and the next input frame loads while the
    output frame is sent. The AXI4-Lite slave takes a write when ``AWVALID`` and ``WVALID`` are
    both high (``WSTRB`` is ignored: registers are written whole) and answers a read one cycle
    after ``ARVALID``; responses are always OKAY and unknown offsets read 0.

    :param design: a design, or a plan to build one from.
    :param logits: send the last layer's int8 outputs after the predictions.
    :returns: the wrapper.
    :raises ValueError: if the model has more than 256 classes (a prediction is one byte) or
        the design more than 255 lanes.
    """
    design = _bus_design(design, "the AXI output")
    plan = design.plan
    if design.lanes > 255:
        raise ValueError(f"the AXI wrapper supports at most 255 lanes, not {design.lanes}")
    lanes = design.lanes
    beat_bytes = _beat_bytes(lanes)
    beat_bits = 8 * beat_bytes
    in_beats = plan.memory_words[0]
    out_beats = _out_words(plan, logits)
    engine = plan.engines[0]
    constants = {
        "BATCH_SIZE": plan.batch_size,
        "ARRAY": engine.rows | engine.cols << 16,
        "IN_BEATS": in_beats,
        "OUT_BEATS": out_beats,
        "FORMAT": lanes | beat_bytes << 8 | int(logits) << 16,
    }
    block, core = _core(design)
    # The core's inputs are undriven until _wrap drives them: check the block after it.
    with pyrtl.set_working_block(block, no_sanity_check=True):
        _wrap(
            core,
            plan=plan,
            beat_bits=beat_bits,
            in_beats=in_beats,
            out_beats=out_beats,
            logits=logits,
            constants=constants,
        )
    block.sanity_check()
    ports = port_table(block, _PORT_DOCS)
    return AxiDesign(
        design=design,
        block=block,
        beat_bytes=beat_bytes,
        in_beats=in_beats,
        out_beats=out_beats,
        logits=logits,
        ports=ports,
        registers=constants,
    )


_PORT_DOCS = {
    "s_axis_tdata": "input stream data: lane i in byte i",
    "s_axis_tvalid": "input stream valid",
    "s_axis_tready": "input stream ready",
    "s_axis_tlast": "input stream: last beat of a frame",
    "m_axis_tdata": "output stream data: lane i in byte i",
    "m_axis_tvalid": "output stream valid",
    "m_axis_tready": "output stream ready",
    "m_axis_tlast": "output stream: last beat of a frame",
    "s_axi_awaddr": "AXI4-Lite write address (byte offset)",
    "s_axi_awvalid": "AXI4-Lite write address valid",
    "s_axi_awready": "AXI4-Lite write address ready",
    "s_axi_wdata": "AXI4-Lite write data",
    "s_axi_wstrb": "AXI4-Lite write strobes (ignored: registers are written whole)",
    "s_axi_wvalid": "AXI4-Lite write data valid",
    "s_axi_wready": "AXI4-Lite write data ready",
    "s_axi_bresp": "AXI4-Lite write response (always OKAY)",
    "s_axi_bvalid": "AXI4-Lite write response valid",
    "s_axi_bready": "AXI4-Lite write response ready",
    "s_axi_araddr": "AXI4-Lite read address (byte offset)",
    "s_axi_arvalid": "AXI4-Lite read address valid",
    "s_axi_arready": "AXI4-Lite read address ready",
    "s_axi_rdata": "AXI4-Lite read data",
    "s_axi_rresp": "AXI4-Lite read response (always OKAY)",
    "s_axi_rvalid": "AXI4-Lite read data valid",
    "s_axi_rready": "AXI4-Lite read data ready",
    "irq": "high while STATUS.DONE is set (level interrupt)",
}


# Compute states.
_IDLE, _RUN, _SEND = 0, 1, 2


def _wrap(
    core: dict[str, pyrtl.WireVector],
    *,
    plan: Plan,
    beat_bits: int,
    in_beats: int,
    out_beats: int,
    logits: bool,
    constants: Mapping[str, int],
) -> None:
    """The AXI logic, in the working block, around the ``core`` wires (see the module)."""
    lanes, m_tiles = plan.lanes, plan.m_tiles
    # AXI4-Stream slave: the input frame.
    s_tdata = pyrtl.Input(beat_bits, "s_axis_tdata")
    s_tvalid = pyrtl.Input(1, "s_axis_tvalid")
    s_tlast = pyrtl.Input(1, "s_axis_tlast")
    s_tready = pyrtl.Output(1, "s_axis_tready")
    # AXI4-Stream master: the output frame.
    m_tdata = pyrtl.Output(beat_bits, "m_axis_tdata")
    m_tvalid = pyrtl.Output(1, "m_axis_tvalid")
    m_tlast = pyrtl.Output(1, "m_axis_tlast")
    m_tready = pyrtl.Input(1, "m_axis_tready")
    # AXI4-Lite slave.
    awaddr = pyrtl.Input(AXI_ADDR_BITS, "s_axi_awaddr")
    awvalid = pyrtl.Input(1, "s_axi_awvalid")
    awready = pyrtl.Output(1, "s_axi_awready")
    wdata = pyrtl.Input(AXI_DATA_BITS, "s_axi_wdata")
    pyrtl.Input(AXI_DATA_BITS // 8, "s_axi_wstrb")
    wvalid = pyrtl.Input(1, "s_axi_wvalid")
    wready = pyrtl.Output(1, "s_axi_wready")
    bresp = pyrtl.Output(2, "s_axi_bresp")
    bvalid_out = pyrtl.Output(1, "s_axi_bvalid")
    bready = pyrtl.Input(1, "s_axi_bready")
    araddr = pyrtl.Input(AXI_ADDR_BITS, "s_axi_araddr")
    arvalid = pyrtl.Input(1, "s_axi_arvalid")
    arready = pyrtl.Output(1, "s_axi_arready")
    rdata_out = pyrtl.Output(AXI_DATA_BITS, "s_axi_rdata")
    rresp = pyrtl.Output(2, "s_axi_rresp")
    rvalid_out = pyrtl.Output(1, "s_axi_rvalid")
    rready = pyrtl.Input(1, "s_axi_rready")
    irq = pyrtl.Output(1, "irq")

    armed = pyrtl.Register(1, "axi_armed")
    auto = pyrtl.Register(1, "axi_auto_restart")
    discarding = pyrtl.Register(1, "axi_discarding")  # inside the tail of a too-long frame
    full = pyrtl.Register(1, "axi_full")  # a complete frame waits in the input memory
    in_count = pyrtl.Register(_bits(in_beats), "axi_in_count")
    state = pyrtl.Register(2, "axi_state")
    out_count = pyrtl.Register(_bits(out_beats), "axi_out_count")
    done_flag = pyrtl.Register(1, "axi_done")
    err_short = pyrtl.Register(1, "axi_err_short")
    err_long = pyrtl.Register(1, "axi_err_long")
    batches = pyrtl.Register(AXI_DATA_BITS, "axi_batches")
    bvalid = pyrtl.Register(1, "axi_bvalid")
    rvalid = pyrtl.Register(1, "axi_rvalid")
    rdata = pyrtl.Register(AXI_DATA_BITS, "axi_rdata")

    # Input side: the design reads its input memory only while it runs.
    loading = armed & ~full & (state != _RUN)
    s_tready <<= discarding | loading
    take = s_tvalid & (discarding | loading)
    store = take & ~discarding
    last_beat = in_count == in_beats - 1
    frame_done = store & last_beat & s_tlast
    short = store & ~last_beat & s_tlast
    long = store & last_beat & ~s_tlast
    core["in_we"] <<= store
    assert len(in_count) == len(core["in_addr"])
    core["in_addr"] <<= in_count
    core["in_data"] <<= s_tdata[: 8 * lanes]
    in_count.next <<= pyrtl.select(
        store, pyrtl.select(last_beat | s_tlast, 0, (in_count + 1)[: len(in_count)]), in_count
    )
    discarding.next <<= pyrtl.select(discarding, ~(take & s_tlast), long)

    # Compute side: idle -> run (start pulse) -> send the output frame -> idle.
    start = (state == _IDLE) & full
    sent = (state == _SEND) & m_tready & (out_count == out_beats - 1)
    core["start"] <<= start
    full.next <<= pyrtl.select(frame_done, 1, full & ~start)
    state.next <<= pyrtl.select(
        start,
        _RUN,
        pyrtl.select((state == _RUN) & core["done"], _SEND, pyrtl.select(sent, _IDLE, state)),
    )
    move = (state == _SEND) & m_tready
    out_next = pyrtl.select(
        move, pyrtl.select(sent, 0, (out_count + 1)[: len(out_count)]), out_count
    )
    out_count.next <<= out_next
    batches.next <<= pyrtl.select(sent, (batches + 1)[:AXI_DATA_BITS], batches)

    # Output beat: predictions (one byte per lane), then the logits' words as they are. The
    # design registers its read addresses (synchronous, block-RAM reads), so the wrapper gives
    # it the next beat's addresses: the words of beat out_count are readable in its cycle.
    fields = plan.index_bits
    pred_bytes = pyrtl.concat_list(
        [core["pred_data"][i * fields : (i + 1) * fields].zero_extended(8) for i in range(lanes)]
    )
    core["pred_addr"] <<= out_next[: len(core["pred_addr"])]
    beat = pred_bytes
    if logits:
        core["out_addr"] <<= (out_next - m_tiles)[: len(core["out_addr"])]
        beat = pyrtl.select(out_count < m_tiles, pred_bytes, core["out_data"])
    else:
        core["out_addr"] <<= 0
    m_tdata <<= beat.zero_extended(beat_bits)
    m_tvalid <<= state == _SEND
    m_tlast <<= (state == _SEND) & (out_count == out_beats - 1)

    # AXI4-Lite: a write needs address and data together; one outstanding response each way.
    write = awvalid & wvalid & ~bvalid
    awready <<= write
    wready <<= write
    bresp <<= 0
    bvalid.next <<= pyrtl.select(write, 1, bvalid & ~bready)
    bvalid_out <<= bvalid
    control = axi_register("CONTROL")
    status = axi_register("STATUS")

    def written(register: AxiRegister, name: str) -> pyrtl.WireVector:
        low = register.field(name).low
        return write & (awaddr == register.offset) & wdata[low]

    set_start = written(control, "START")
    auto.next <<= pyrtl.select(
        write & (awaddr == control.offset), wdata[control.field("AUTO_RESTART").low], auto
    )
    armed.next <<= pyrtl.select(set_start, 1, pyrtl.select(frame_done, auto, armed))
    # A flag set and cleared in the same cycle stays set: the event is newer than the clear.
    for flag, event, name in (
        (done_flag, sent, "DONE"),
        (err_short, short, "ERR_SHORT"),
        (err_long, long, "ERR_LONG"),
    ):
        flag.next <<= event | (flag & ~written(status, name))
    irq <<= done_flag

    idle = (state == _IDLE) & ~full & ~discarding & (in_count == 0)
    values = {
        "CONTROL": pyrtl.concat(auto, armed),
        "STATUS": pyrtl.concat(err_long, err_short, idle, done_flag),
        "CYCLES": core["cycles"],
        "BATCHES": batches,
        **{name: pyrtl.Const(value, AXI_DATA_BITS) for name, value in constants.items()},
    }
    read = arvalid & ~rvalid
    arready <<= ~rvalid
    word = pyrtl.Const(0, AXI_DATA_BITS)
    for register in AXI_REGISTERS:
        word = pyrtl.select(
            araddr == register.offset, values[register.name].zero_extended(AXI_DATA_BITS), word
        )
    rdata.next <<= pyrtl.select(read, word, rdata)
    rvalid.next <<= pyrtl.select(read, 1, rvalid & ~rready)
    rdata_out <<= rdata
    rvalid_out <<= rvalid
    rresp <<= 0


def axi_header(axi: AxiDesign) -> list[str]:
    """Comment lines for the top of the wrapper's Verilog: stream format and register map."""
    lines = [
        "",
        f"AXI wrapper: {axi.beat_bits}-bit streams, lane i (image mt*R + i, R = "
        f"{axi.design.lanes}) in byte i, little-endian.",
        f"  s_axis: {axi.in_beats} beats per frame (one batch): beat mt*K + f holds input "
        "feature f of row tile mt; TLAST on the last beat",
        f"  m_axis: {axi.out_beats} beats per frame: {axi.plan.m_tiles} of predictions (one "
        "byte each)" + (", then the int8 logits, beat m_tiles + mt*N + c" if axi.logits else ""),
        "  clk, rst: clock, synchronous active-high reset (invert an AXI aresetn)",
        "AXI4-Lite registers (32 bits):",
    ]
    for register in AXI_REGISTERS:
        lines.append(
            f"  0x{register.offset:02x} {register.name} ({register.access}): {register.doc}"
        )
        if len(register.fields) > 1:
            for field in register.fields:
                top = field.low + field.bits - 1
                bits = f"[{top}:{field.low}]" if field.bits > 1 else f"[{field.low}]"
                lines.append(f"       {bits:8}{field.name}: {field.doc}")
    return lines
