"""From a qnn-ref model to a hardware plan: which engine runs which layer, what each memory holds.

The plan is pure Python and NumPy: it fixes the architecture, the array size, the batch the
memories are built for, the contents of every ROM, the depth of every activation memory and the
exact cycle count of one batch, before a single wire exists. :func:`pyrtlnet.build_design` then
builds exactly what the plan says, and :class:`pyrtlnet.Accelerator` streams batches through it.

Memory layouts are pyrtl-linalg's tiled-matmul layouts (:func:`pyrtl_linalg.pack_a`,
:func:`pyrtl_linalg.pack_b`) (see :doc:`/pyrtlnet/architecture`):

* activations ("A" layout): word ``mt * k + kk`` of a layer's input memory holds the ``lanes``
  int8 values ``x[mt * lanes + i, kk]``, value ``i`` in bits ``[8 i, 8 i + 8)``;
* weights ("B" layout): word ``b_base + nt * k + kk`` of an engine's weight ROM holds the
  ``cols`` int8 values ``W[kk, nt * cols + j]`` (zero past the layer's units).

A convolutional model keeps the same two layouts. Each image's ``H x W x C`` activation is a
*grid* (:class:`pyrtl_linalg.Window`): value ``(y, x, c)`` is feature ``(y * W + x) * C + c``,
LiteRT's NHWC order, which is also the flat vector a following FULLY_CONNECTED reads. A
convolution is a matrix product of every window's patch (``kh * kw * C_in`` values, order
``(ky, kx, c)``) by the filters reshaped to ``kh * kw * C_in x C_out``, run on the shared array
as a windowed job; a pooling layer runs on a window-reduce unit of its own between two segments
of the engine's jobs (see :doc:`/pyrtlnet/architecture`).
"""

import itertools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np

from pyrtl_linalg import Window, pack_b, tiled_matmul_cycles, window_reduce_cycles, window_rows
from qnn_ref import (
    ROUNDINGS,
    AveragePool2DLayer,
    Conv2DLayer,
    DenseLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    Model,
    Rounding,
)

from ._validate import check_choice, check_positive

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARRAY",
    "DEFAULT_COLS",
    "MATMUL_LAYERS",
    "MAX_DEFAULT_ROWS",
    "MAX_MEMORY_WORDS",
    "MAX_PROCESSING_ELEMENTS",
    "REDUCTIONS",
    "ROUNDING_REQUANT_METHODS",
    "SINK_LATENCY",
    "Architecture",
    "EnginePlan",
    "Layer",
    "Plan",
    "default_array",
    "job_shape",
    "layer_window",
    "make_plan",
    "matmul_weights",
    "parse_array",
    "requant_method",
]

#: How the layers share hardware.
Architecture = Literal["shared", "per-layer"]

#: ``"shared"``: one systolic array of a configurable size runs every layer, one job per layer;
#: ``"per-layer"``: one full-size array per layer (``batch x units``), as the original pyrtlnet.
ARCHITECTURES: tuple[Architecture, ...] = get_args(Architecture)

#: The pyrtl-linalg requantization method (one of :data:`pyrtl_linalg.REQUANT_METHODS`) that
#: reproduces each LiteRT kernel path's FULLY_CONNECTED bit for bit (and every layer on
#: ``xnnpack``, and CONV_2D on ``builtin``); :func:`requant_method` gives any layer's.
ROUNDING_REQUANT_METHODS: dict[Rounding, str] = {
    "xnnpack": "float32",
    "builtin": "double_round",
    "reference": "float64",
}

#: Columns of the shared array when no size is given.
DEFAULT_COLS = 16

#: Rows of the shared array when no size is given: one per image of a batch, up to this many.
MAX_DEFAULT_ROWS = 16


def default_array(batch_size: int) -> tuple[int, int]:
    """The shared array's size when none is given: ``(min(batch_size, 16), 16)``.

    One row per image of a batch lets the whole batch share every weight read (up to 16 rows);
    16 columns tile any layer.

    :param batch_size: images per batch.
    :returns: ``(rows, cols)``.
    """
    return (min(batch_size, MAX_DEFAULT_ROWS), DEFAULT_COLS)


#: The shared array's size at batch size 1, :func:`default_array` ``(1)``.
DEFAULT_ARRAY = default_array(1)

#: Register stages inside the sink's requantizers: every cut point of the float methods'
#: datapaths (:func:`pyrtl_linalg.requant_stage_points`); a method with fewer cut points has its
#: results delayed to match, so the cycle count does not depend on the rounding.
REQUANT_STAGES = 9

#: Register stages between the array's drain stream and the activation memory it writes: the
#: drained column's register, then the :data:`REQUANT_STAGES` of the requantizers.
SINK_LATENCY = 1 + REQUANT_STAGES

#: Largest on-chip activation memory, in words (a 16-bit address): a batch whose activations
#: need more does not fit.
MAX_MEMORY_WORDS = 1 << 16

#: Largest array (rows times columns of multiply-accumulate elements) pyrtlnet builds; larger
#: ones take minutes to compile for simulation and fit no FPGA this project targets.
MAX_PROCESSING_ELEMENTS = 1024


def parse_array(text: str) -> tuple[int, int]:
    """Parse an array size written ``ROWSxCOLS`` (as ``--array`` takes it), e.g. ``"4x8"``.

    :param text: the size.
    :returns: ``(rows, cols)``.
    :raises ValueError: if ``text`` is not two positive integers joined by ``x``.
    """
    parts = text.lower().split("x")
    if len(parts) == 2 and all(p.strip().isdigit() for p in parts):
        rows, cols = (int(p) for p in parts)
        if rows > 0 and cols > 0:
            return rows, cols
    raise ValueError(f"array size must be ROWSxCOLS with positive integers, like 4x8, not {text!r}")


#: A layer of a model: one LiteRT compute op.
Layer = DenseLayer | Conv2DLayer | DepthwiseConv2DLayer | MaxPool2DLayer | AveragePool2DLayer

#: The layer kinds that run as a job on a systolic array (a matrix product each).
MATMUL_LAYERS = (DenseLayer, Conv2DLayer, DepthwiseConv2DLayer)

#: The layer kinds that run on a window-reduce unit, and the reduction each computes.
REDUCTIONS: dict[type, str] = {MaxPool2DLayer: "max", AveragePool2DLayer: "mean"}


def layer_window(layer: Layer) -> Window | None:
    """The sliding window of a convolution or pooling layer over its input grid (``None`` for
    FULLY_CONNECTED): the layer's input shape, kernel, stride and TensorFlow padding.

    :param layer: a layer of a :class:`qnn_ref.Model`.
    """
    if isinstance(layer, DenseLayer):
        return None
    height, width, channels = layer.input_shape
    window = Window(height, width, channels, layer.kernel, layer.stride, layer.padding_amounts)
    assert (window.out_height, window.out_width) == layer.output_shape[:2], "window geometry"
    return window


def matmul_weights(layer: DenseLayer | Conv2DLayer | DepthwiseConv2DLayer) -> np.ndarray:
    """The ``k x n`` matrix ``B`` a layer's job multiplies by, int8.

    FULLY_CONNECTED: its weights. CONV_2D: the filters ``(kh, kw, C_in, C_out)`` reshaped to
    ``kh * kw * C_in x C_out``, rows in the patch order ``(ky, kx, c)``. DEPTHWISE_CONV_2D: the
    block-diagonal ``kh * kw * C x C`` matrix whose column ``c`` holds channel ``c``'s filter
    in the rows of channel ``c`` and zeros elsewhere, so that every other channel of the patch
    contributes nothing: correct on the same array, but only one multiply in ``C`` is useful
    (see :attr:`Plan.utilization`).
    """
    if isinstance(layer, DenseLayer):
        return layer.weights
    if isinstance(layer, Conv2DLayer):
        return layer.weights.reshape(-1, layer.weights.shape[3])
    kh, kw, channels = layer.weights.shape
    diagonal = np.zeros((kh * kw, channels, channels), np.int8)
    diagonal[:, np.arange(channels), np.arange(channels)] = layer.weights.reshape(kh * kw, -1)
    return diagonal.reshape(kh * kw * channels, channels)


def _macs(layer: Layer) -> int:
    """Useful multiply-accumulates of one image."""
    if isinstance(layer, DenseLayer):
        return layer.in_features * layer.units
    return layer.macs


@dataclass(frozen=True, eq=False)
class EnginePlan:
    """One physical systolic array and the sequence of layers (jobs) it runs per batch.

    :param rows: physical rows (images of a batch processed side by side).
    :param cols: physical columns (output units processed side by side).
    :param layers: the model layers this engine runs, in order, one job each.
    :param weight_bases: first word of each job's weights in :attr:`weight_words`.
    :param weight_words: the engine's weight ROM, every job's weights in the "B" layout.
    :param constant_bases: first word of each job's per-column constants in the engine's
        requantization-constant ROM (address ``constant_bases[job] + n`` for column ``n``).
    :param pause_after: the jobs after which the engine stops (raising ``done``) while a
        window-reduce unit runs a pooling layer, and continues at the next ``start``.
    """

    rows: int
    cols: int
    layers: tuple[int, ...]
    weight_bases: tuple[int, ...]
    weight_words: tuple[int, ...]
    constant_bases: tuple[int, ...]
    pause_after: tuple[int, ...] = ()

    @property
    def segments(self) -> tuple[tuple[int, ...], ...]:
        """The layers of each run between pauses, in order."""
        cuts = [0, *(job + 1 for job in self.pause_after), len(self.layers)]
        return tuple(self.layers[a:b] for a, b in itertools.pairwise(cuts))


@dataclass(frozen=True, eq=False)
class Plan:
    """Everything about the hardware for one model and configuration, decided before building.

    :param model: the model.
    :param architecture: ``"shared"`` or ``"per-layer"``.
    :param batch_size: images per batch (the memories hold one batch).
    :param rounding: the LiteRT kernel path the requantizers reproduce.
    :param engines: one engine (shared) or one per layer (per-layer).
    :param lanes: int8 values per activation word: the rows of every engine.
    :param m_tiles: row tiles of a batch, ``ceil(batch_size / lanes)``.
    :param memory_words: depth of activation memory ``l`` (``l = 0``: the input; ``l = L``: the
        last layer's output), ``m_tiles * width``.
    :param cycles_per_batch: clock cycles from the cycle that samples ``start`` (cycle 0) to the
        cycle in which ``done`` is high; see :func:`make_plan` for the formula.
    :param windows: per layer, the window of a convolution or pooling layer over its input
        grid, ``None`` for FULLY_CONNECTED.
    :param layer_cycles: per layer, its share of :attr:`cycles_per_batch` (they add up to it):
        a job's tiles and drain, the cycle that starts each run of the engine counted with
        its first job; a pooling layer's whole pass.
    """

    model: Model
    architecture: Architecture
    batch_size: int
    rounding: Rounding
    engines: tuple[EnginePlan, ...]
    lanes: int
    m_tiles: int
    memory_words: tuple[int, ...]
    cycles_per_batch: int
    windows: tuple[Window | None, ...]
    layer_cycles: tuple[int, ...]

    @property
    def requant_methods(self) -> tuple[str, ...]:
        """The pyrtl-linalg requantization methods of the layers (:func:`requant_method`),
        each once, in layer order."""
        methods = (
            requant_method(layer, self.rounding)
            for layer in self.model.layers
            if isinstance(layer, MATMUL_LAYERS)
        )
        return tuple(dict.fromkeys(methods))

    @property
    def requant_method(self) -> str:
        """:attr:`requant_methods` for a reader: their names joined by ``" and "``."""
        return " and ".join(self.requant_methods)

    @property
    def widths(self) -> tuple[int, ...]:
        """Length of each activation vector: the model input, then every layer's output, each
        flattened (``H * W * C`` for a grid)."""
        return (self.model.in_features, *(layer.units for layer in self.model.layers))

    @property
    def index_bits(self) -> int:
        """Bits of one prediction (an index into the last layer's units)."""
        return max(1, (self.model.num_classes - 1).bit_length())

    @property
    def reduce_layers(self) -> tuple[int, ...]:
        """The pooling layers, each run by a window-reduce unit of its own."""
        return tuple(i for i, layer in enumerate(self.model.layers) if type(layer) in REDUCTIONS)

    @property
    def utilization(self) -> tuple[float, ...]:
        """Per layer, the fraction of the array's multiply-accumulate slots doing useful work
        while the layer runs: ``B * MACs per image / (R * C * layer cycles)``. A pooling layer
        leaves the array idle (0); a depthwise convolution uses at most ``1 / C`` of it (its
        block-diagonal weights, :func:`matmul_weights`)."""
        engine_of = {index: e for e in self.engines for index in e.layers}
        result = []
        for index, layer in enumerate(self.model.layers):
            engine = engine_of.get(index)
            if engine is None:
                result.append(0.0)
                continue
            slots = engine.rows * engine.cols * self.layer_cycles[index]
            result.append(self.batch_size * _macs(layer) / slots)
        return tuple(result)

    @property
    def overall_utilization(self) -> float:
        """The fraction of every array's multiply-accumulate slots doing useful work over a
        whole batch: ``B * MACs per image / (PEs * cycles_per_batch)``."""
        elements = sum(e.rows * e.cols for e in self.engines)
        macs = sum(_macs(layer) for layer in self.model.layers)
        return self.batch_size * macs / (elements * self.cycles_per_batch)


def _engine(
    model: Model, layers: Sequence[int], *, rows: int, cols: int, pause_after: Sequence[int] = ()
) -> EnginePlan:
    weight_bases, constant_bases, words = [], [], []
    constants = 0
    for index in layers:
        layer = model.layers[index]
        b = matmul_weights(layer)
        weight_bases.append(len(words))
        words.extend(pack_b(b, cols=cols))
        constant_bases.append(constants)
        constants += b.shape[1]
    return EnginePlan(
        rows=rows,
        cols=cols,
        layers=tuple(layers),
        weight_bases=tuple(weight_bases),
        weight_words=tuple(words),
        constant_bases=tuple(constant_bases),
        pause_after=tuple(pause_after),
    )


def job_shape(layer: Layer, *, batch_size: int, rows: int) -> tuple[int, int, int]:
    """``(m, k, n)`` of a layer's job as the tiled-matmul cycle model counts it.

    FULLY_CONNECTED: ``(B, in_features, units)``. A convolution over a window of ``P``
    positions and ``K = kh * kw * C_in`` patch values runs ``ceil(B / R) * P`` row tiles (row
    tile ``t * P + p``: position ``p`` of the ``R`` images of grid tile ``t``), which the model
    counts as ``(ceil(B / R) * R * P, K, C_out)`` (:func:`pyrtl_linalg.window_rows`).
    """
    window = layer_window(layer)
    b = matmul_weights(layer)  # type: ignore[arg-type]
    if window is None:
        return (batch_size, b.shape[0], b.shape[1])
    return (window_rows(batch_size, rows, window), window.size, b.shape[1])


def requant_method(
    layer: DenseLayer | Conv2DLayer | DepthwiseConv2DLayer, rounding: Rounding
) -> str:
    """The pyrtl-linalg requantization method that reproduces ``layer`` on ``rounding``.

    XNNPACK scales every layer in float32 (``"float32"``). The reference FULLY_CONNECTED
    scales in double precision (``"float64"``); the builtin one, and the builtin CONV_2D,
    round twice with the final shift's ties toward +inf (``"double_round"``). The builtin
    DEPTHWISE_CONV_2D and both reference convolutions round twice with those ties away from
    zero, gemmlowp's ``RoundingDivideByPOT`` (``"double_round_away"``), all from the
    multiplier of the double-precision scale (:meth:`qnn_ref.Conv2DLayer.integer_multipliers`).

    :param layer: a FULLY_CONNECTED or convolution layer.
    :param rounding: the LiteRT kernel path (:data:`qnn_ref.ROUNDINGS`).
    :returns: one of :data:`pyrtl_linalg.REQUANT_METHODS`.
    """
    if rounding == "xnnpack" or isinstance(layer, DenseLayer):
        return ROUNDING_REQUANT_METHODS[rounding]
    if rounding == "builtin" and isinstance(layer, Conv2DLayer):
        return "double_round"
    return "double_round_away"


def _check_convolutional(model: Model, architecture: str) -> None:
    """Refuse, in one line naming the layer, what pyrtlnet does not build for a CNN."""
    spatial = [layer for layer in model.layers if not isinstance(layer, DenseLayer)]
    if not spatial:
        return
    first = spatial[0]
    if architecture == "per-layer":
        raise ValueError(
            "the per-layer architecture is not offered for convolutional models "
            f"(layer {first.index} is {first.op}); use the shared architecture"
        )
    last = model.layers[-1]
    if not isinstance(last, DenseLayer):
        raise ValueError(
            f"the last layer must be FULLY_CONNECTED (its outputs are the class scores the "
            f"streaming argmax reads), not {last.op} (layer {last.index})"
        )


def make_plan(
    model: Model,
    *,
    architecture: str = "shared",
    array: tuple[int, int] | None = None,
    batch_size: int = 1,
    rounding: str = "xnnpack",
) -> Plan:
    """Plan the hardware for ``model``.

    The cycle count of one batch is pyrtl-linalg's exact tiled-matmul cycle model with a sink
    latency of :data:`SINK_LATENCY`, and nothing else: loading the input memory happens before
    ``start``, requantization and the streaming argmax keep pace with the drain, and ``done``
    rises in the cycle the last prediction is readable. With ``T_l = ceil(B/R) * ceil(n_l/C)``
    tiles of period ``P_l = max(k_l, R, C)`` for layer ``l`` (``B`` batch, ``R x C`` array,
    ``L =`` :data:`pyrtl_linalg.PIPELINE_LATENCY` ``= 3`` cycles of the engine's pipeline
    registers, ``Q = REQUANT_STAGES``)::

        shared:     cycles = 1 + sum_l ((T_l - 1) * P_l + k_l + R + C + L + Q)
        per-layer:  cycles = sum_l (1 + k_l + B + n_l + L + Q)      (R = B, C = n_l, T_l = 1)

    The default design (the shipped 144-18-10 MLP on a 1x16 array, batch 1):
    ``1 + (144 + 144 + 1 + 16 + 3 + 9) + (18 + 1 + 16 + 3 + 9) = 365`` cycles.

    A convolutional model (shared only) runs in stages, each starting in the cycle in which the
    previous one raises ``done``, so the batch takes the sum of the stages. The engine runs its
    jobs in runs (:attr:`EnginePlan.segments`), pausing after each job a pooling layer follows;
    a run takes ``1 + sum_l ((T_l - 1) * P_l + k_l + R + C + L + Q)`` over its jobs, where a
    convolution over ``Q_l`` window positions with patches of ``k_l = kh * kw * C_in`` values
    (``C_in = C_out`` for a depthwise one) has ``T_l = ceil(B/R) * Q_l * ceil(n_l/C)`` tiles
    (:func:`job_shape`). A pooling layer over ``Q_l`` positions of a ``kh x kw`` window on
    ``C_l`` channels takes :func:`pyrtl_linalg.window_reduce_cycles` ``= 4 + ceil(B/R) * Q_l *
    C_l * kh * kw`` (one word read per window element, then four cycles to the memory)::

        cnn:  cycles = sum over runs s of (1 + sum_{l in s} ((T_l - 1) * P_l + k_l + R + C + L + Q))
                     + sum over pooling layers l of (4 + ceil(B/R) * Q_l * C_l * kh_l * kw_l)

    The shipped CNN on a 16x16 array at batch 16: conv ``1 + 195 * 16 + 9 + 32 + 3 + 9 = 3174``,
    pool ``4 + 49 * 8 * 4 = 1572``, conv ``1 + 48 * 72 + 72 + 32 + 3 + 9 = 3573``, pool
    ``4 + 16 * 16 * 4 = 1028``, FC ``1 + 256 + 32 + 3 + 9 = 301``: 9,648 cycles.

    :attr:`Plan.layer_cycles` splits the count by layer, :attr:`Plan.utilization` gives each
    layer's share of useful multiply-accumulates.

    :param model: the model, from :func:`qnn_ref.read_model`.
    :param architecture: one of :data:`ARCHITECTURES`.
    :param array: ``(rows, cols)`` of the shared array; ``None`` for per-layer (whose arrays are
        ``batch_size x units``) and, for shared, :func:`default_array`.
    :param batch_size: images per batch.
    :param rounding: the LiteRT kernel path to reproduce (:data:`qnn_ref.ROUNDINGS`).
    :returns: the plan.
    :raises TypeError: for a batch size or array size that is not an integer, an architecture
        or rounding that is not a string, an array that is not a pair.
    :raises ValueError: for a convolutional model with the per-layer architecture or with a
        last layer other than FULLY_CONNECTED; an unknown
        architecture or rounding, a non-positive array size or batch size, an array given for
        per-layer, an array or batch too large for the memories.
    :raises qnn_ref.ModelError: if LiteRT cannot run the model on the ``rounding`` path
        (:meth:`qnn_ref.Model.check_rounding`).
    """
    check_choice("rounding", rounding, ROUNDINGS)
    check_choice("architecture", architecture, ARCHITECTURES)
    _check_convolutional(model, architecture)
    # Where LiteRT cannot run the model on this path there is nothing to be bit-exact with.
    model.check_rounding(rounding)
    batch_size = check_positive("batch size", batch_size)
    indices = range(len(model.layers))
    if architecture == "per-layer":
        if array is not None:
            raise ValueError(
                "the per-layer architecture sizes its arrays itself (batch size x units); "
                "do not give an array size"
            )
        lanes = batch_size
        engines = tuple(
            _engine(model, [i], rows=batch_size, cols=model.layers[i].units) for i in indices
        )
    else:
        if array is None:
            array = default_array(batch_size)
        if not isinstance(array, tuple | list):
            raise TypeError(f"array must be a (rows, cols) pair, not {array!r}")
        if len(array) != 2:
            raise ValueError(f"array must be a (rows, cols) pair, not {array!r}")
        rows = check_positive("array rows", array[0])
        cols = check_positive("array cols", array[1])
        lanes = rows
        jobs = [i for i in indices if isinstance(model.layers[i], MATMUL_LAYERS)]
        # A pooling layer after job j: the engine pauses there (a pooling layer first or
        # straight after another needs no pause: its unit starts on the previous one's done).
        pause_after = sorted(
            {
                jobs.index(i - 1)
                for i in indices
                if type(model.layers[i]) in REDUCTIONS and i > 0 and i - 1 in jobs
            }
            - {len(jobs) - 1}
        )
        engines = (_engine(model, jobs, rows=rows, cols=cols, pause_after=pause_after),)
    elements = sum(e.rows * e.cols for e in engines)
    if elements > MAX_PROCESSING_ELEMENTS:
        raise ValueError(
            f"the arrays would have {elements} multiply-accumulate elements, at most "
            f"{MAX_PROCESSING_ELEMENTS} are supported; use a smaller array or batch size"
        )
    m_tiles = math.ceil(batch_size / lanes)
    widths = (model.in_features, *(layer.units for layer in model.layers))
    memory_words = tuple(m_tiles * width for width in widths)
    for index, words in enumerate(memory_words):
        if words > MAX_MEMORY_WORDS:
            what = "input memory" if index == 0 else f"output memory of layer {index - 1}"
            raise ValueError(
                f"batch size {batch_size} does not fit the {what}: it needs {words} words, at "
                f"most {MAX_MEMORY_WORDS}; use a smaller batch size or more array rows"
            )
    windows = tuple(layer_window(layer) for layer in model.layers)
    layer_cycles = _layer_cycles(model, engines, windows, batch_size=batch_size, lanes=lanes)
    return Plan(
        model=model,
        architecture=architecture,  # type: ignore[arg-type]
        batch_size=batch_size,
        rounding=rounding,
        engines=engines,
        lanes=lanes,
        m_tiles=m_tiles,
        memory_words=memory_words,
        cycles_per_batch=sum(layer_cycles),
        windows=windows,
        layer_cycles=layer_cycles,
    )


def _layer_cycles(
    model: Model,
    engines: Sequence[EnginePlan],
    windows: Sequence[Window | None],
    *,
    batch_size: int,
    lanes: int,
) -> tuple[int, ...]:
    """Every layer's share of a batch's cycles (see :attr:`Plan.layer_cycles`)."""
    cycles = [0] * len(model.layers)
    for engine in engines:
        for segment in engine.segments:
            shapes = [
                job_shape(model.layers[i], batch_size=batch_size, rows=engine.rows) for i in segment
            ]
            for index, shape in zip(segment, shapes, strict=True):
                # One job alone takes 1 + its own share: the 1 is the cycle sampling start.
                cycles[index] = tiled_matmul_cycles(
                    [shape], rows=engine.rows, cols=engine.cols, sink_latency=SINK_LATENCY
                ) - (index != segment[0])
            total = tiled_matmul_cycles(
                shapes, rows=engine.rows, cols=engine.cols, sink_latency=SINK_LATENCY
            )
            assert sum(cycles[i] for i in segment) == total, "jobs of a run add up"
    for index, layer in enumerate(model.layers):
        if type(layer) in REDUCTIONS:
            window = windows[index]
            assert window is not None
            cycles[index] = window_reduce_cycles(window, grids=batch_size, lanes=lanes)
    return tuple(cycles)
