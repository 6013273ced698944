"""The hardware a :class:`~pyrtlnet.Plan` describes: one PyRTL block, its ports and memories.

A :class:`Design` is what the hardware *is*, apart from any simulation of it: the block, the
memories results are read from, the top-level ports (names, widths, directions) and the word
layouts of its inputs, activations and predictions. The simulation driver
(:class:`pyrtlnet.Accelerator`), the Verilog export and testbench
(:func:`pyrtlnet.export_verilog`, :func:`pyrtlnet.write_inference_testbench`) and synthesis
(:func:`pyrtlnet.run_yosys`) all take the same design; building one needs no simulator.

Block diagram (shared architecture; per-layer has one engine and sink per layer, chained by
their ``done``/``start``)::

    in_we/in_addr/in_data ──► act0 ──┐        weight ROM ──┐     requant-constant ROM
                                     ▼                     ▼            │
                     act1 … act(L-1) ─► tiled systolic engine (R x C) ──► drain stream
                         ▲                 (one job per layer)            │ (valid, job,
                         │                                                ▼  m-tile, column,
                         └──────────── sink: register, R requantizers ◄───┘  R accumulators)
                                        │             │
                                        ▼             ▼ (last layer)
                      out_addr ──► act L ──► out_data  streaming argmax ──► pred ──► pred_data

The sink registers each drained column, reads that column's requantization constants from a
ROM (each job's packed for its own method, :func:`pyrtlnet.requant_method`: where an engine's
jobs use two, as on the reference path, each value has one requantizer per method and the
column's job picks the result), requantizes the ``R`` accumulators in a pipeline of
``REQUANT_STAGES`` registers (``1 + REQUANT_STAGES`` cycles in all: the plan's
``SINK_LATENCY``), and writes one packed word to the next layer's activation memory in the
"A" layout, so the next job can read it. For the last layer it also keeps each lane's running
maximum over the current row tile's columns and its index in registers and, when the tile's
last column arrives, writes the ``R`` argmax indices to the prediction memory.

A convolutional model (shared architecture only) adds one window-reduce unit per pooling
layer, reading activation memory ``l`` and writing ``l + 1``, and runs in stages: the engine
pauses after each job a pooling layer follows, the unit starts in the engine's ``done`` cycle,
and the unit's ``done`` continues the engine (a counter of the engine's runs tells which run
a ``done`` ends). A convolution's job reads its input memory through the layer's window, and
its row tile ``mt = t * positions + p`` lands at words ``mt * C_out + c``: the output grid in
NHWC order, the layout the next layer reads (see :doc:`/pyrtlnet/convolution`).

A cycle counter beside the engines measures every batch: the ``cycles`` output holds the number
of cycles from the one that samples ``start`` to the one in which ``done`` is high, so a driver
or testbench reads the latency off the hardware instead of assuming the plan's formula.
"""

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pyrtl

from pyrtl_linalg import (
    MatmulJob,
    TiledMatmul,
    float32_scale_fields,
    float64_scale_fields,
    make_requantize,
    make_tiled_matmul,
    make_window_reduce,
    pack_a,
    pack_requant_constants,
    requant_stage_points,
    requant_word_bits,
    unpack_a,
    unpack_requant_constants,
)
from qnn_ref import Model

from ._plan import (
    REDUCTIONS,
    REQUANT_STAGES,
    SINK_LATENCY,
    EnginePlan,
    Plan,
    matmul_weights,
    requant_method,
)
from ._validate import check_int

__all__ = ["Design", "Port", "build_design"]

#: Widest accumulator the requantizers take: LiteRT accumulates in int32, wrapping, so a wider
#: exact sum (a bias near 2**31 plus the dot product) is truncated to it.
_ACC_BITS = 32


@dataclass(frozen=True)
class Port:
    """One top-level port of a :class:`Design` (besides ``clk`` and ``rst``, which the Verilog
    export adds).

    :param name: the PyRTL wire name, kept in the Verilog.
    :param bits: width.
    :param direction: ``"input"`` or ``"output"``.
    :param doc: what the port carries, one line.
    """

    name: str
    bits: int
    direction: Literal["input", "output"]
    doc: str


def port_table(block: pyrtl.Block, docs: Mapping[str, str]) -> dict[str, Port]:
    """The top-level ports of ``block``, in the order of ``docs`` (port name to its line).

    :param docs: one line for every :class:`pyrtl.Input` and :class:`pyrtl.Output` of ``block``.
    """
    wires = {w.name: w for w in block.wirevector_subset((pyrtl.Input, pyrtl.Output))}
    assert set(wires) == set(docs), "the port table is out of date"
    return {
        name: Port(
            name=name,
            bits=wires[name].bitwidth,
            direction="input" if isinstance(wires[name], pyrtl.Input) else "output",
            doc=doc,
        )
        for name, doc in docs.items()
    }


@dataclass(frozen=True, eq=False)
class Design:
    """The inference hardware for one :class:`~pyrtlnet.Plan`, built with :func:`build_design`.

    Word layouts (``R`` = :attr:`lanes`, ``b`` images of a batch): every activation memory holds
    the "A" layout of :func:`pyrtl_linalg.pack_a`: word ``mt * width + f`` holds value ``f`` of
    images ``mt * R .. mt * R + R - 1``, image ``mt * R + i`` in bits ``[8 i, 8 i + 8)``. The
    prediction memory's word ``mt`` holds the ``R`` argmax indices of row tile ``mt``,
    :attr:`Plan.index_bits` unsigned bits each, image ``mt * R + i`` in the ``i``-th lowest
    field.

    :param plan: what the hardware was built from (memories, ROM contents, cycle count).
    :param block: the block holding the whole design (nothing else is in it).
    :param activations: activation memory ``l`` (``0``: the input, ``l``: layer ``l - 1``'s
        output), in the "A" layout, ``8 * lanes`` bits wide.
    :param predictions: the prediction memory.
    :param ports: the top-level ports by name, in the order they are documented.
    :param build_seconds: seconds spent building the block.
    """

    plan: Plan
    block: pyrtl.Block
    activations: tuple[pyrtl.MemBlock, ...]
    predictions: pyrtl.MemBlock
    ports: Mapping[str, Port]
    build_seconds: float

    @property
    def model(self) -> Model:
        """The model the hardware runs."""
        return self.plan.model

    @property
    def batch_size(self) -> int:
        """Images per batch: the activation memories hold one batch."""
        return self.plan.batch_size

    @property
    def lanes(self) -> int:
        """int8 values per activation word (:attr:`Plan.lanes`)."""
        return self.plan.lanes

    @property
    def cycles_per_batch(self) -> int:
        """Cycles from ``start`` to ``done`` of one batch, as the plan computes them (the
        hardware's ``cycles`` output measures them); a short batch takes as long as a full one."""
        return self.plan.cycles_per_batch

    def _images(self, count: int) -> int:
        return check_int("images in a batch", count, low=1, high=self.batch_size)

    def _values(self, what: str, values: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        """``values`` as an integer array of ``shape`` (its first axis: 1 to a batch)."""
        values = np.asarray(values)
        if (
            values.ndim != len(shape)
            or values.shape[1:] != shape[1:]
            or not np.issubdtype(values.dtype, np.integer)
            or not 1 <= len(values) <= self.batch_size
        ):
            want = ", ".join(["b", *(str(n) for n in shape[1:])])
            raise ValueError(
                f"{what} must be integers of shape [{want}] with 1 <= b <= {self.batch_size}, "
                f"not {values.dtype} of shape {list(values.shape)}"
            )
        return values

    def check_inputs(self, q: np.ndarray) -> np.ndarray:
        """``q`` if it is quantized inputs for this design (see :func:`check_inputs`)."""
        return check_inputs(self.model, q)

    def input_writes(self, q: np.ndarray) -> list[tuple[int, int]]:
        """``(in_addr, in_data)`` writes that load one batch of quantized inputs.

        :param q: int8 ``[b, in_features]`` with ``1 <= b <= batch_size``; only the row tiles
            holding these ``b`` images are written.
        :returns: the writes, in address order.
        :raises ValueError: if ``q`` has another shape or dtype, or more images than a batch.
        """
        q = self.check_inputs(q)
        if len(q) > self.batch_size:
            raise ValueError(f"a batch holds at most {self.batch_size} images, not {len(q)}")
        return list(enumerate(pack_a(q, rows=self.lanes)))

    def activation_words(self, layer: int, y: np.ndarray) -> list[tuple[int, int, int]]:
        """``(address, word, care mask)`` of activation memory ``layer + 1`` holding ``y``.

        :param layer: the layer whose output ``y`` is (``0`` to ``len(model.layers) - 1``).
        :param y: int8 outputs of that layer for a batch of ``b`` images, in LiteRT's shape
            (``[b, H, W, C]`` for a convolution or pooling layer, ``[b, units]`` for
            FULLY_CONNECTED; a grid may also be given flattened, ``[b, H * W * C]``).
        :returns: one triple per word of the ``b`` images' row tiles; lanes past ``b`` have
            mask 0 (they hold whatever the padding rows computed).
        """
        layer = check_int("layer", layer, low=0, high=len(self.model.layers) - 1)
        units = self.model.layers[layer].units
        shape = self.model.layers[layer].output_shape
        y = np.asarray(y)
        if y.ndim == 2 and len(shape) > 1 and y.shape[1] == units:  # a grid given flattened
            y = y.reshape(len(y), *shape)
        y = self._values(f"outputs of layer {layer}", y, (0, *shape)).reshape(len(y), units)
        words = pack_a(np.asarray(y, np.int64), rows=self.lanes)
        result = []
        for address, word in enumerate(words):
            used = min(self.lanes, len(y) - address // units * self.lanes)
            result.append((address, word, (1 << (8 * used)) - 1))
        return result

    def output_words(self, y: np.ndarray) -> list[tuple[int, int, int]]:
        """``(out_addr, word, care mask)`` of the last layer's memory holding ``y`` (read
        through the ``out_addr``/``out_data`` port): :meth:`activation_words` of the last layer.
        """
        return self.activation_words(len(self.model.layers) - 1, y)

    def prediction_words(self, p: np.ndarray) -> list[tuple[int, int, int]]:
        """``(pred_addr, word, care mask)`` of the prediction memory holding ``p``.

        :param p: ``[b]`` predictions of a batch of ``b`` images.
        :returns: one triple per row tile; lanes past ``b`` have mask 0.
        """
        bits, lanes = self.plan.index_bits, self.lanes
        p = self._values("predictions", p, (0,))
        words = pack_a(np.asarray(p, np.int64)[:, None], rows=lanes, bits=bits)
        return [
            (mt, word, (1 << (bits * min(lanes, len(p) - mt * lanes))) - 1)
            for mt, word in enumerate(words)
        ]

    def read_activations(
        self, layer: int, words: Mapping[int, int] | np.ndarray, count: int
    ) -> np.ndarray:
        """Layer ``layer``'s int8 outputs for the first ``count`` images of a batch, from the
        words of its activation memory (the inverse of :meth:`activation_words`).

        :param layer: ``0`` to ``len(model.layers) - 1``.
        :param words: the memory's words by address (a simulator's ``inspect_mem``; missing
            addresses read as 0), or NumPy ``uint64`` words from address 0 (see
            :func:`pyrtl_linalg.unpack_a`).
        :param count: images in the batch.
        :returns: int8 in LiteRT's shape of the layer's output: ``[count, H, W, C]`` for a
            convolution or pooling layer (the grid's words are NHWC order), ``[count, units]``
            for FULLY_CONNECTED.
        """
        layer = check_int("layer", layer, low=0, high=len(self.model.layers) - 1)
        units = self.model.layers[layer].units
        values = unpack_a(words, m=self._images(count), k=units, rows=self.lanes)
        return values.astype(np.int8).reshape(count, *self.model.layers[layer].output_shape)

    def read_predictions(self, words: Mapping[int, int] | np.ndarray, count: int) -> np.ndarray:
        """The predictions of the first ``count`` images of a batch, from the prediction
        memory's words (the inverse of :meth:`prediction_words`).

        :returns: int64 ``[count]``.
        """
        bits = self.plan.index_bits
        m = self._images(count)
        return unpack_a(words, m=m, k=1, rows=self.lanes, bits=bits, signed=False)[:, 0]


def check_inputs(model: Model, q: np.ndarray) -> np.ndarray:
    """``q`` as an int8 ``[N, in_features]`` array if it is quantized inputs for ``model``:
    int8 ``[N, in_features]`` or, flattened here, ``[N, *shape]`` with the first layer's input
    shape (``[N, H, W, C]`` for a convolutional model), ``N >= 1``.

    :raises ValueError: if it is not.
    """
    features = model.in_features
    q = np.asarray(q)
    if q.ndim > 2 and q.shape[1:] == tuple(model.layers[0].input_shape):
        q = q.reshape(len(q), features)
    if q.ndim != 2 or q.shape[1] != features or q.dtype != np.int8 or len(q) == 0:
        raise ValueError(
            f"quantized inputs must be an int8 array of shape [N, {features}] with N >= 1, "
            f"not {q.dtype} of shape {list(q.shape)}"
        )
    return q


def _addr_bits(words: int) -> int:
    return max(1, (words - 1).bit_length())


def _registered(wire: pyrtl.WireVector, name: str) -> pyrtl.Register:
    """``wire`` one cycle later, in a register of its own ``name``: a read address that makes
    its memory's read synchronous (block RAM on an FPGA)."""
    reg = pyrtl.Register(len(wire), name=name)
    reg.next <<= wire
    return reg


def _delayed(wire: pyrtl.WireVector, cycles: int, name: str) -> pyrtl.WireVector:
    """``wire`` ``cycles`` cycles later, through registers ``name_d1`` .. ``name_d<cycles>``."""
    for i in range(1, cycles + 1):
        wire = _registered(wire, f"{name}_d{i}")
    return wire


def _select(index: pyrtl.WireVector, values: list[int], name: str) -> pyrtl.WireVector:
    """The constant ``values[index]`` (a plain constant when all are equal), on a wire of its
    own ``name``: the Verilog then computes it at its own width, not inside a wider sum."""
    if len(set(values)) == 1:
        return pyrtl.Const(values[0])
    selected = pyrtl.mux(index, *(pyrtl.Const(v) for v in values), default=pyrtl.Const(values[0]))
    wire = pyrtl.WireVector(len(selected), name=name)
    wire <<= selected
    return wire


def _requant_words(plan: Plan, engine: EnginePlan) -> list[int]:
    """The engine's requantization-constant ROM: one word per column of each job, in order,
    each packed in its own job's method's layout (:func:`requant_method`)."""
    words: list[int] = []
    for index in engine.layers:
        layer = plan.model.layers[index]
        method = requant_method(layer, plan.rounding)
        lo, hi = layer.output_range(plan.rounding)
        common = {"zero_point": layer.output_zero_point, "lo": lo, "hi": hi}
        if method == "float32":
            significand, exponent = float32_scale_fields(layer.float_scales())
            scale = {"scale_significand": significand, "scale_exponent": exponent}
        elif method == "float64":
            significand, exponent = float64_scale_fields(layer.double_scales())
            scale = {"scale_significand": significand, "scale_exponent": exponent}
        else:
            multiplier, shift = layer.integer_multipliers(plan.rounding)
            scale = {"multiplier": multiplier, "shift": shift}
        words.extend(pack_requant_constants(method=method, **scale, **common))
    return words


def _sink(
    plan: Plan,
    engine: EnginePlan,
    stream: TiledMatmul,
    activations: list[pyrtl.MemBlock],
    predictions: pyrtl.MemBlock,
    name: str,
) -> None:
    """Requantize the engine's drain stream into the next activation memories (see module)."""
    jobs = len(engine.layers)
    # Stage 1 registers the drained column with the addresses it needs, so that every memory
    # in the sink is read and written from registers (synchronous, block-RAM friendly).
    valid = pyrtl.Register(1, name=f"{name}_valid")
    valid.next <<= stream.valid
    job = None  # which layer the column belongs to: only an engine of several jobs needs it
    if jobs > 1:
        job = pyrtl.Register((jobs - 1).bit_length(), name=f"{name}_job")
        job.next <<= stream.job[: len(job)]
    widest = max(plan.memory_words[i + 1] for i in engine.layers)
    address = pyrtl.Register(_addr_bits(widest), name=f"{name}_address")
    constants = _requant_words(plan, engine)
    constant_address = pyrtl.Register(_addr_bits(len(constants)), name=f"{name}_constant_address")
    # A job's result has one column per output channel; row tile mt (an image tile, or for a
    # convolution one window position of one) goes to words mt * units .. mt * units + units - 1:
    # the engine counts that word (TiledMatmul.address), no multiplier here.
    word_address = stream.address
    if len(word_address) > len(address):
        word_address = word_address[: len(address)]
    address.next <<= word_address
    constant_base = _select(stream.job, list(engine.constant_bases), f"{name}_constant_base")
    constant_address.next <<= (constant_base + stream.column)[: len(constant_address)]
    values = []
    for i, wire in enumerate(stream.values):
        reg = pyrtl.Register(len(wire), name=f"{name}_value{i}")
        reg.next <<= wire
        values.append(reg)

    job_methods = [requant_method(plan.model.layers[i], plan.rounding) for i in engine.layers]
    methods = list(dict.fromkeys(job_methods))
    rom = pyrtl.RomBlock(
        max(requant_word_bits(method) for method in methods),
        len(constant_address),
        constants,
        name=f"{name}_constants",
        pad_with_zeros=True,
    )
    constant_word = rom[constant_address]
    # The requantizers take REQUANT_STAGES cycles (pipelined, padded to that latency); the
    # write's enable, address and job follow them through as many registers.
    valid = _delayed(valid, REQUANT_STAGES, f"{name}_valid")
    if job is not None:
        job = _delayed(job, REQUANT_STAGES, f"{name}_job")
    address = _delayed(address, REQUANT_STAGES, f"{name}_address")
    # One requantizer per method per value; where the jobs use several, the job picks one.
    results = [
        _requantizers(
            values, constant_word, method, f"{name}_{method}" if len(methods) > 1 else name
        )
        for method in methods
    ]
    outputs = results[0]
    if len(methods) > 1:
        assert job is not None, "the jobs of one layer share one method"
        chosen = _select(job, [methods.index(m) for m in job_methods], f"{name}_method")
        outputs = [
            pyrtl.mux(chosen, *alternatives, default=alternatives[0])
            for alternatives in zip(*results, strict=True)
        ]
    word = pyrtl.concat_list(outputs)

    for j, index in enumerate(engine.layers):
        enable = valid if job is None else valid & (job == j)
        memory = activations[index + 1]
        memory[address[: memory.addrwidth]] <<= pyrtl.MemBlock.EnabledWrite(word, enable)
        if index == len(plan.model.layers) - 1:
            _argmax(plan, outputs, enable, stream, predictions, name)


def _requantizers(
    values: list[pyrtl.WireVector], constant_word: pyrtl.WireVector, method: str, name: str
) -> list[pyrtl.WireVector]:
    """One ``method`` requantizer per drained value, its constants unpacked from the low bits
    of ``constant_word``, each result ``REQUANT_STAGES`` cycles after its value (pipelined,
    then padded to that latency)."""
    bits = requant_word_bits(method)
    word = constant_word if len(constant_word) == bits else constant_word[:bits]
    fields = unpack_requant_constants(word, method=method)
    stages = min(REQUANT_STAGES, len(requant_stage_points(method)))
    outputs = []
    for i, value in enumerate(values):
        # LiteRT's int32 accumulator wraps: keeping the low 32 bits is that wrap.
        acc = value.truncate(_ACC_BITS) if len(value) > _ACC_BITS else value
        result = make_requantize(acc, method=method, stages=stages, **fields)
        outputs.append(_delayed(result, REQUANT_STAGES - stages, f"{name}_result{i}"))
    return outputs


def _job(
    plan: Plan,
    index: int,
    activations: list[pyrtl.MemBlock],
    weights: pyrtl.MemBlock,
    base: int,
) -> MatmulJob:
    """Layer ``index``'s matrix product: its input memory times its :func:`matmul_weights`;
    a convolution reads its input memory through the layer's window (one patch per row)."""
    layer = plan.model.layers[index]
    b = matmul_weights(layer)
    window = plan.windows[index]
    return MatmulJob(
        m=plan.batch_size,
        k=b.shape[0],
        n=b.shape[1],
        a=activations[index],
        b=weights,
        b_base=base,
        a_zero_point=layer.input_zero_point,
        bias=layer.bias,
        **({} if window is None else {"a_window": window}),
    )


def _stages(
    plan: Plan,
    engine: EnginePlan,
    stream: TiledMatmul,
    start: pyrtl.WireVector,
    engine_start: pyrtl.WireVector,
    activations: list[pyrtl.MemBlock],
    busy: list[pyrtl.WireVector],
) -> pyrtl.WireVector:
    """Chain the engine's runs and one window-reduce unit per pooling layer in layer order,
    each stage started in the cycle its predecessor raises ``done``; returns the last ``done``.

    The engine raises ``done`` after each run (its ``pause_after`` jobs and its last); a
    counter of runs tells which run just ended. Each unit reads activation memory ``l`` and
    writes ``l + 1``; its busy flag joins ``busy``.
    """
    runs = len(engine.segments)
    ends = [stream.done]
    if runs > 1:
        run = pyrtl.Register(max(1, (runs - 1).bit_length()), name="e0_run")
        following = pyrtl.select(run == runs - 1, 0, (run + 1)[: len(run)])
        run.next <<= pyrtl.select(stream.done, following, run)
        ends = [stream.done & (run == r) for r in range(runs)]
    go, starts, next_run = start, [], 0
    for index, layer in enumerate(plan.model.layers):
        if type(layer) in REDUCTIONS:
            window = plan.windows[index]
            assert window is not None
            clamp = layer.output_range(plan.rounding)
            unit = make_window_reduce(
                activations[index],
                activations[index + 1],
                window,
                go,
                op=REDUCTIONS[type(layer)],
                grids=plan.batch_size,
                lanes=plan.lanes,
                clamp=None if clamp == (-128, 127) else clamp,
                name=f"pool{index}",
            )
            go = unit.done
            busy.append(unit.busy)
        elif next_run < runs and index == engine.segments[next_run][0]:
            starts.append(go)
            go = ends[next_run]
            next_run += 1
    either = starts[0]
    for wire in starts[1:]:
        either = either | wire
    engine_start <<= either
    return go


def _argmax(
    plan: Plan,
    outputs: list[pyrtl.WireVector],
    enable: pyrtl.WireVector,
    stream: TiledMatmul,
    predictions: pyrtl.MemBlock,
    name: str,
) -> None:
    """Streaming argmax of the last layer: the columns of a row tile arrive in increasing
    order, so each lane keeps its running maximum and its index in two registers (column 0
    sets them, a later column replaces them only if strictly greater: the lowest index wins
    ties, as in :func:`numpy.argmax`), and the last column decides and writes the prediction.
    One comparator per lane, whatever the number of classes. ``outputs`` and ``enable`` are a
    sink-latency behind the stream, as are the column and row tile delayed here."""
    bits = plan.index_bits
    column = _delayed(stream.column, SINK_LATENCY, f"{name}_column")
    m_tile = stream.m_tile
    last = enable & (column == plan.model.num_classes - 1)
    if len(m_tile) > predictions.addrwidth:
        # A convolution's row tiles count window positions too, so the tag is wider than the
        # prediction address. The last layer's row tiles are the m_tiles image tiles, and only
        # those write: the whole tag takes part.
        last = last & _delayed(m_tile < plan.m_tiles, SINK_LATENCY, f"{name}_in_range")
        m_tile = m_tile[: predictions.addrwidth]
    m_tile = _delayed(m_tile, SINK_LATENCY, f"{name}_m_tile")
    first = column == 0
    indices = []
    for i, out in enumerate(outputs):
        best = pyrtl.Register(len(out), name=f"{name}_best{i}")
        best_index = pyrtl.Register(bits, name=f"{name}_best_index{i}")
        take = first | pyrtl.signed_gt(out, best)
        index = pyrtl.select(take, column[:bits], best_index)
        best.next <<= pyrtl.select(enable & take, out, best)
        best_index.next <<= pyrtl.select(enable, index, best_index)
        indices.append(index)
    predictions[m_tile] <<= pyrtl.MemBlock.EnabledWrite(pyrtl.concat_list(indices), last)


def _cycle_counter(
    start: pyrtl.WireVector, busy: pyrtl.WireVector, done: pyrtl.WireVector, cycles: int
) -> pyrtl.WireVector:
    """Cycles from the one that samples ``start`` (counted as 0) to the one in which ``done`` is
    high, held until the next batch starts.

    ``busy`` is high from the cycle after ``start`` up to and including the ``done`` cycle (the
    engines' own busy flags, OR-ed), so the counter adds only its register and incrementer:
    ``cycles.bit_length()`` bits, the fewest that hold the plan's count (a longer batch wraps,
    and still disagrees with the plan).
    """
    count = pyrtl.Register(max(1, cycles.bit_length()), name="cycle_counter")
    count.next <<= pyrtl.select(
        start & ~busy, 1, pyrtl.select(busy & ~done, (count + 1)[: len(count)], count)
    )
    return count


def build_design(plan: Plan) -> Design:
    """Build the hardware for ``plan`` in a new :class:`pyrtl.Block` (the working block is left
    as it was). No simulator is involved: simulate it with :class:`pyrtlnet.Accelerator`,
    export it with :func:`pyrtlnet.export_verilog`, synthesize it with :func:`pyrtlnet.run_yosys`.

    The top-level ports are ``start``, ``in_we``, ``in_addr``, ``in_data``, ``out_addr``,
    ``pred_addr`` (inputs) and ``done``, ``cycles``, ``out_data``, ``pred_data`` (outputs);
    :attr:`Design.ports` says what each carries and how wide it is.

    :param plan: from :func:`pyrtlnet.make_plan`.
    :returns: the design.
    """
    began = time.perf_counter()
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        lanes_bits = 8 * plan.lanes
        activations = [
            pyrtl.MemBlock(lanes_bits, _addr_bits(words), name=f"act{index}")
            for index, words in enumerate(plan.memory_words)
        ]
        predictions = pyrtl.MemBlock(
            plan.index_bits * plan.lanes, _addr_bits(plan.m_tiles), name="pred"
        )

        start = pyrtl.Input(1, "start")
        in_we = pyrtl.Input(1, "in_we")
        in_addr = pyrtl.Input(activations[0].addrwidth, "in_addr")
        in_data = pyrtl.Input(lanes_bits, "in_data")
        activations[0][in_addr] <<= pyrtl.MemBlock.EnabledWrite(in_data, in_we)
        out_addr = pyrtl.Input(activations[-1].addrwidth, "out_addr")
        pred_addr = pyrtl.Input(predictions.addrwidth, "pred_addr")
        # The host reads through registered addresses, as every other read port does: a
        # synchronous read that yosys maps to block RAM, one cycle of read latency.
        out_data = pyrtl.Output(lanes_bits, "out_data")
        out_data <<= activations[-1][_registered(out_addr, "out_read_addr")]
        pred_data = pyrtl.Output(predictions.bitwidth, "pred_data")
        pred_data <<= predictions[_registered(pred_addr, "pred_read_addr")]

        go = start
        busy = []
        for number, engine in enumerate(plan.engines):
            name = f"e{number}"
            weights = pyrtl.RomBlock(
                8 * engine.cols,
                _addr_bits(len(engine.weight_words)),
                list(engine.weight_words),
                name=f"{name}_weights",
                pad_with_zeros=True,
            )
            jobs = [
                _job(plan, index, activations, weights, base)
                for index, base in zip(engine.layers, engine.weight_bases, strict=True)
            ]
            staged = bool(plan.reduce_layers)
            engine_start = pyrtl.WireVector(1, name=f"{name}_start") if staged else go
            pauses = {"pause_after": engine.pause_after} if engine.pause_after else {}
            stream = make_tiled_matmul(
                jobs,
                engine_start,
                rows=engine.rows,
                cols=engine.cols,
                sink_latency=SINK_LATENCY,
                name=f"{name}_mm",
                **pauses,
            )
            _sink(plan, engine, stream, activations, predictions, f"{name}_sink")
            busy.append(stream.busy)
            if staged:
                go = _stages(plan, engine, stream, go, engine_start, activations, busy)
            else:
                go = stream.done
        done = pyrtl.Output(1, "done")
        done <<= go
        # Engine l + 1 starts in engine l's done cycle, so some engine is busy from the cycle
        # after start through the last done.
        running = busy[0]
        for flag in busy[1:]:
            running = running | flag
        count = _cycle_counter(start, running, go, plan.cycles_per_batch)
        cycles = pyrtl.Output(len(count), "cycles")
        cycles <<= count

    docs = {  # in the order a reader of the Verilog wants them
        "start": "high for one cycle: run the batch held in the input memory",
        "in_we": "write enable of the input memory",
        "in_addr": "write address of the input memory",
        "in_data": "word written to the input memory",
        "out_addr": "read address of the last layer's activation memory",
        "pred_addr": "read address of the prediction memory",
        "done": "high for one cycle when every result is readable",
        "cycles": "cycles from the last start to its done",
        "out_data": "the word at out_addr one clock edge earlier (synchronous read)",
        "pred_data": "the word at pred_addr one clock edge earlier (synchronous read)",
    }
    return Design(
        plan=plan,
        block=block,
        activations=tuple(activations),
        predictions=predictions,
        ports=port_table(block, docs),
        build_seconds=time.perf_counter() - began,
    )
