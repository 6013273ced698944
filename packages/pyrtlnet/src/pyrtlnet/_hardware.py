"""Build the PyRTL design a :class:`~pyrtlnet._plan.Plan` describes, in a fresh block.

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

The sink registers each drained column (one cycle: the plan's ``SINK_LATENCY``), reads that
column's requantization constants from a ROM, requantizes the ``R`` accumulators, and writes one
packed word to the next layer's activation memory in the "A" layout, so the next job can read
it. For the last layer it also keeps the columns of the current row tile in registers and, when
the tile's last column arrives, writes the ``R`` argmax indices to the prediction memory.
"""

from dataclasses import dataclass

import pyrtl

from pyrtl_linalg import (
    MatmulJob,
    TiledMatmul,
    float32_scale_fields,
    float64_scale_fields,
    make_argmax,
    make_requantize,
    make_saturate,
    make_tiled_matmul,
    pack_requant_constants,
    requant_word_bits,
    unpack_requant_constants,
)

from ._plan import SINK_LATENCY, EnginePlan, Plan

__all__ = ["Hardware", "build_hardware"]

#: Widest accumulator the requantizers take (LiteRT accumulates in int32).
_ACC_BITS = 32


@dataclass(frozen=True, eq=False)
class Hardware:
    """The built design and the memories the driver reads results from.

    :param block: the block holding the whole design; its top-level ports are ``start``,
        ``in_we``, ``in_addr``, ``in_data``, ``out_addr``, ``pred_addr`` (Inputs) and ``done``,
        ``out_data``, ``pred_data`` (Outputs).
    :param activations: activation memory ``l`` (``0``: the input, ``l``: layer ``l - 1``'s
        output), every one ``lanes * 8`` bits wide in the "A" layout.
    :param predictions: word ``mt`` holds the predictions of images ``mt*lanes .. + lanes - 1``,
        ``plan.index_bits`` bits each, image ``i`` of the tile in the low bits first.
    """

    block: pyrtl.Block
    activations: tuple[pyrtl.MemBlock, ...]
    predictions: pyrtl.MemBlock


def _addr_bits(words: int) -> int:
    return max(1, (words - 1).bit_length())


def _select(index: pyrtl.WireVector, values: list[int]) -> pyrtl.WireVector:
    """The constant ``values[index]`` (a plain constant when all are equal)."""
    if len(set(values)) == 1:
        return pyrtl.Const(values[0])
    return pyrtl.mux(index, *(pyrtl.Const(v) for v in values), default=pyrtl.Const(values[0]))


def _requant_words(plan: Plan, engine: EnginePlan) -> list[int]:
    """The engine's requantization-constant ROM: one word per column of each job, in order."""
    method = plan.requant_method
    words: list[int] = []
    for index in engine.layers:
        layer = plan.model.layers[index]
        lo, hi = layer.activation_range
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
    units = [plan.model.layers[i].units for i in engine.layers]
    # Stage 1 registers the drained column with the addresses it needs, so that every memory
    # in the sink is read and written from registers (synchronous, block-RAM friendly).
    valid = pyrtl.Register(1, name=f"{name}_valid")
    job = pyrtl.Register(max(1, (jobs - 1).bit_length()), name=f"{name}_job")
    m_tile = pyrtl.Register(len(stream.m_tile), name=f"{name}_m_tile")
    column = pyrtl.Register(len(stream.column), name=f"{name}_column")
    widest = max(plan.memory_words[i + 1] for i in engine.layers)
    address = pyrtl.Register(_addr_bits(widest), name=f"{name}_address")
    constants = _requant_words(plan, engine)
    constant_address = pyrtl.Register(_addr_bits(len(constants)), name=f"{name}_constant_address")
    valid.next <<= stream.valid
    job.next <<= stream.job[: len(job)] if jobs > 1 else pyrtl.Const(0)
    m_tile.next <<= stream.m_tile
    column.next <<= stream.column
    row_start = stream.m_tile * _select(stream.job, units) if plan.m_tiles > 1 else 0
    address.next <<= (row_start + stream.column)[: len(address)]
    constant_address.next <<= (_select(stream.job, list(engine.constant_bases)) + stream.column)[
        : len(constant_address)
    ]
    values = []
    for i, wire in enumerate(stream.values):
        reg = pyrtl.Register(len(wire), name=f"{name}_value{i}")
        reg.next <<= wire
        values.append(reg)

    method = plan.requant_method
    rom = pyrtl.RomBlock(
        requant_word_bits(method),
        len(constant_address),
        constants,
        name=f"{name}_constants",
        pad_with_zeros=True,
    )
    fields = unpack_requant_constants(rom[constant_address], method=method)
    outputs = []
    for value in values:
        acc = make_saturate(value, bits=_ACC_BITS) if len(value) > _ACC_BITS else value
        outputs.append(make_requantize(acc, method=method, **fields))
    word = pyrtl.concat_list(outputs)

    for j, index in enumerate(engine.layers):
        enable = valid & (job == j) if jobs > 1 else valid
        memory = activations[index + 1]
        memory[address[: memory.addrwidth]] <<= pyrtl.MemBlock.EnabledWrite(word, enable)
        if index == len(plan.model.layers) - 1:
            _argmax(plan, outputs, enable, column, m_tile, predictions, name)


def _argmax(
    plan: Plan,
    outputs: list[pyrtl.WireVector],
    enable: pyrtl.WireVector,
    column: pyrtl.WireVector,
    m_tile: pyrtl.WireVector,
    predictions: pyrtl.MemBlock,
    name: str,
) -> None:
    """Streaming argmax of the last layer: columns of a row tile arrive in increasing order, so
    the first ``n - 1`` wait in registers and the last one completes every lane's vector."""
    classes = plan.model.num_classes
    held = []
    for c in range(classes - 1):
        regs = []
        for i, out in enumerate(outputs):
            reg = pyrtl.Register(len(out), name=f"{name}_logit{c}_{i}")
            reg.next <<= pyrtl.select(enable & (column == c), out, reg)
            regs.append(reg)
        held.append(regs)
    indices = [
        make_argmax([held[c][i] for c in range(classes - 1)] + [out])
        for i, out in enumerate(outputs)
    ]
    word = pyrtl.concat_list([index.zero_extended(plan.index_bits) for index in indices])
    last = enable & (column == classes - 1)
    predictions[m_tile[: predictions.addrwidth]] <<= pyrtl.MemBlock.EnabledWrite(word, last)


def build_hardware(plan: Plan) -> Hardware:
    """Build the design for ``plan`` in a new :class:`pyrtl.Block` (the working block is left
    as it was).

    :param plan: from :func:`~pyrtlnet._plan.make_plan`.
    :returns: the block and the memories holding results.
    """
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
        out_data = pyrtl.Output(lanes_bits, "out_data")
        out_data <<= activations[-1][out_addr]
        pred_data = pyrtl.Output(predictions.bitwidth, "pred_data")
        pred_data <<= predictions[pred_addr]

        go = start
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
                MatmulJob(
                    m=plan.batch_size,
                    k=plan.model.layers[index].in_features,
                    n=plan.model.layers[index].units,
                    a=activations[index],
                    b=weights,
                    b_base=base,
                    a_zero_point=plan.model.layers[index].input_zero_point,
                    bias=plan.model.layers[index].bias,
                )
                for index, base in zip(engine.layers, engine.weight_bases, strict=True)
            ]
            stream = make_tiled_matmul(
                jobs,
                go,
                rows=engine.rows,
                cols=engine.cols,
                sink_latency=SINK_LATENCY,
                name=f"{name}_mm",
            )
            _sink(plan, engine, stream, activations, predictions, f"{name}_sink")
            go = stream.done
        done = pyrtl.Output(1, "done")
        done <<= go
    return Hardware(block=block, activations=tuple(activations), predictions=predictions)
