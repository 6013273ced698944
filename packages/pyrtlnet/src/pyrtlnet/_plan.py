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
"""

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, get_args

from pyrtl_linalg import pack_b, tiled_matmul_cycles
from qnn_ref import ROUNDINGS, DenseLayer, Model, Rounding

from ._validate import check_choice, check_positive

__all__ = [
    "ARCHITECTURES",
    "DEFAULT_ARRAY",
    "DEFAULT_COLS",
    "MAX_DEFAULT_ROWS",
    "MAX_MEMORY_WORDS",
    "MAX_PROCESSING_ELEMENTS",
    "ROUNDING_REQUANT_METHODS",
    "SINK_LATENCY",
    "Architecture",
    "EnginePlan",
    "Plan",
    "default_array",
    "make_plan",
    "parse_array",
]

#: How the layers share hardware.
Architecture = Literal["shared", "per-layer"]

#: ``"shared"``: one systolic array of a configurable size runs every layer, one job per layer;
#: ``"per-layer"``: one full-size array per layer (``batch x units``), as the original pyrtlnet.
ARCHITECTURES: tuple[Architecture, ...] = get_args(Architecture)

#: The pyrtl-linalg requantization method (one of :data:`pyrtl_linalg.REQUANT_METHODS`) that
#: reproduces each LiteRT kernel path bit for bit.
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

#: Register stages between the array's drain stream and the activation memory it writes: one
#: (the drained column is registered, then requantized and written in the next cycle).
SINK_LATENCY = 1

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
    """

    rows: int
    cols: int
    layers: tuple[int, ...]
    weight_bases: tuple[int, ...]
    weight_words: tuple[int, ...]
    constant_bases: tuple[int, ...]


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

    @property
    def requant_method(self) -> str:
        """The pyrtl-linalg requantization method for :attr:`rounding`."""
        return ROUNDING_REQUANT_METHODS[self.rounding]

    @property
    def widths(self) -> tuple[int, ...]:
        """Length of each activation vector: the model input, then every layer's units."""
        return (self.model.in_features, *(layer.units for layer in self.model.layers))

    @property
    def index_bits(self) -> int:
        """Bits of one prediction (an index into the last layer's units)."""
        return max(1, (self.model.num_classes - 1).bit_length())


def _engine(model: Model, layers: Sequence[int], *, rows: int, cols: int) -> EnginePlan:
    weight_bases, constant_bases, words = [], [], []
    constants = 0
    for index in layers:
        layer = model.layers[index]
        weight_bases.append(len(words))
        words.extend(pack_b(layer.weights, cols=cols))
        constant_bases.append(constants)
        constants += layer.units
    return EnginePlan(
        rows=rows,
        cols=cols,
        layers=tuple(layers),
        weight_bases=tuple(weight_bases),
        weight_words=tuple(words),
        constant_bases=tuple(constant_bases),
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
    tiles of period ``P_l = max(k_l, R, C)`` for layer ``l`` (``B`` batch, ``R x C`` array)::

        shared:     cycles = 1 + sum_l ((T_l - 1) * P_l + k_l + R + C)
        per-layer:  cycles = sum_l (1 + k_l + B + n_l)        (R = B, C = n_l, T_l = 1)

    :param model: the model, from :func:`qnn_ref.read_model`.
    :param architecture: one of :data:`ARCHITECTURES`.
    :param array: ``(rows, cols)`` of the shared array; ``None`` for per-layer (whose arrays are
        ``batch_size x units``) and, for shared, :func:`default_array`.
    :param batch_size: images per batch.
    :param rounding: the LiteRT kernel path to reproduce (:data:`qnn_ref.ROUNDINGS`).
    :returns: the plan.
    :raises TypeError: for a batch size or array size that is not an integer, an architecture
        or rounding that is not a string, an array that is not a pair.
    :raises ValueError: for a model with a layer other than FULLY_CONNECTED (a convolution
        or pooling), an unknown architecture or rounding, a non-positive array size or
        batch size, an array given for per-layer, an array or batch too large for the memories.
    :raises qnn_ref.ModelError: if LiteRT cannot run the model on the ``rounding`` path
        (:meth:`qnn_ref.Model.check_rounding`).
    """
    check_choice("rounding", rounding, ROUNDINGS)
    check_choice("architecture", architecture, ARCHITECTURES)
    for layer in model.layers:
        if not isinstance(layer, DenseLayer):
            raise ValueError(
                "pyrtlnet runs dense (FULLY_CONNECTED) models only; "
                f"layer {layer.index} is {layer.op}"
            )
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
        engines = (_engine(model, list(indices), rows=rows, cols=cols),)
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
    layers = model.layers
    cycles = sum(
        tiled_matmul_cycles(
            [(batch_size, layers[i].in_features, layers[i].units) for i in engine.layers],
            rows=engine.rows,
            cols=engine.cols,
            sink_latency=SINK_LATENCY,
        )
        for engine in engines
    )
    return Plan(
        model=model,
        architecture=architecture,  # type: ignore[arg-type]
        batch_size=batch_size,
        rounding=rounding,
        engines=engines,
        lanes=lanes,
        m_tiles=m_tiles,
        memory_words=memory_words,
        cycles_per_batch=cycles,
    )
