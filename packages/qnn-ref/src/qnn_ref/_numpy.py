"""The integer NumPy reference: a dense int8 network, bit-exact with a named LiteRT kernel path.

Every step is vectorized over the batch (one matrix product per layer, no loop over images or
neurons), computes the kernels' int32 accumulators exactly, and requantizes with the arithmetic
of the kernel path named by ``rounding`` (see :doc:`/int8-inference` for the formulas):

``"xnnpack"``
    ``rint_half_even(float32(acc) * float32_scale)``, the XNNPACK delegate a default
    ``Interpreter`` runs.
``"builtin"``
    gemmlowp-style double rounding with TFLite's integer multiplier and shift, the optimized
    builtin kernels.
``"reference"``
    ``round_half_away(acc * scale)`` in double precision, the reference kernels.
"""

import functools
import math
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import numpy as np

from ._conv import run_window_layer
from ._model import DenseLayer, Model, Rounding, check_rounding

__all__ = [
    "ArrayDiff",
    "Outputs",
    "OutputsDiff",
    "accumulate",
    "quantize_input",
    "requantize",
    "run_layers",
    "run_numpy",
]


@dataclass(frozen=True, eq=False)
class Outputs:
    """What every inference backend returns for a batch of ``N`` images."""

    #: int8 ``[N, in_features]``: the quantized, flattened input of the first layer.
    input: np.ndarray
    #: One int8 ``[N, units]`` array per layer: its output after requantization and activation.
    layers: tuple[np.ndarray, ...]
    #: int64 ``[N]``: argmax of the last layer's int8 output; ties go to the lowest index.
    predictions: np.ndarray

    def to_npz(
        self,
        path: str | os.PathLike[str],
        *,
        labels: np.ndarray,
        image_indices: np.ndarray,
    ) -> None:
        """Write the outputs as an ``.npz`` file (the CLIs' ``--dump`` format).

        The keys are ``input``, ``layer0`` … ``layer{L-1}``, ``predictions``, ``labels`` and
        ``image_indices``.

        :param path: The file to write.
        :param labels: ``[N]`` true labels of the images.
        :param image_indices: ``[N]`` indices of the images in their data set.
        :raises ValueError: if ``labels`` or ``image_indices`` is not of length ``N``.
        """
        count = len(self.predictions)
        for name, values in (("labels", labels), ("image_indices", image_indices)):
            if np.shape(values) != (count,):
                shape = list(np.shape(values))
                raise ValueError(f"{name} must have shape [{count}] like the outputs, not {shape}")
        arrays = {f"layer{i}": layer for i, layer in enumerate(self.layers)}
        np.savez(
            path,
            input=self.input,
            **arrays,
            predictions=self.predictions,
            labels=np.asarray(labels),
            image_indices=np.asarray(image_indices),
        )

    @classmethod
    def concat(cls, parts: Sequence["Outputs"]) -> "Outputs":
        """Join the outputs of consecutive batches into one, in order.

        :param parts: The outputs of each batch, at least one, all of the same model.
        :returns: The outputs of every image of ``parts``.
        :raises ValueError: if ``parts`` is empty or the parts have different layer counts.
        """
        if not parts:
            raise ValueError("Outputs.concat needs at least one part")
        return cls(
            input=np.concatenate([p.input for p in parts]),
            layers=tuple(
                np.concatenate(layer) for layer in zip(*(p.layers for p in parts), strict=True)
            ),
            predictions=np.concatenate([p.predictions for p in parts]),
        )

    def diff(self, other: "Outputs") -> "OutputsDiff":
        """Where these outputs and ``other`` (the same images through another backend) differ.

        :param other: Outputs of the same model for the same ``N`` images.
        :returns: One :class:`ArrayDiff` per array (``input``, ``layer0`` …, ``predictions``)
            and the mask of images that differ anywhere.
        :raises ValueError: if the two have different layer counts or shapes.
        """
        if len(self.layers) != len(other.layers):
            raise ValueError(
                f"cannot compare outputs of {len(self.layers)} and {len(other.layers)} layers"
            )
        layers = zip(self.layers, other.layers, strict=True)
        pairs = [
            ("input", self.input, other.input),
            *((f"layer{i}", a, b) for i, (a, b) in enumerate(layers)),
            ("predictions", self.predictions[:, None], other.predictions[:, None]),
        ]
        arrays = []
        images = np.zeros(len(self.predictions), bool)
        for name, a, b in pairs:
            if a.shape != b.shape:
                raise ValueError(
                    f"cannot compare {name} of shape {list(a.shape)} with {list(b.shape)}"
                )
            differ = a != b
            per_image = differ.reshape(len(differ), math.prod(differ.shape[1:])).any(axis=1)
            images |= per_image
            largest = np.abs(a.astype(np.int64) - b.astype(np.int64)).max(initial=0)
            shape = tuple(a.shape) if name != "predictions" else (len(a),)
            arrays.append(
                ArrayDiff(name, shape, int(differ.sum()), int(per_image.sum()), int(largest))
            )
        return OutputsDiff(arrays=tuple(arrays), images=images)


class ArrayDiff(NamedTuple):
    """How one array of two backends' :class:`Outputs` differs (a row of ``qnn-ref compare``)."""

    #: ``input``, ``layer0`` … ``layer{L-1}`` or ``predictions``.
    name: str
    #: The array's shape, ``(N, features)`` (``(N,)`` for the predictions).
    shape: tuple[int, ...]
    #: Values that differ.
    values: int
    #: Images with at least one differing value.
    images: int
    #: The largest absolute difference (0 when identical).
    largest: int


@dataclass(frozen=True, eq=False)
class OutputsDiff:
    """The result of :meth:`Outputs.diff`: per-array counts and the differing images."""

    #: One row per array, in the order input, layers, predictions.
    arrays: tuple[ArrayDiff, ...]
    #: bool ``[N]``: the images that differ in any array.
    images: np.ndarray

    @property
    def values(self) -> int:
        """Differing values in all arrays together."""
        return sum(row.values for row in self.arrays)

    @property
    def identical(self) -> bool:
        """Whether every value of every array agrees."""
        return not self.images.any()


def _round_half_away(x: np.ndarray) -> np.ndarray:
    """C's ``round``: to the nearest integer, ties away from zero, exactly (no ``+ 0.5``)."""
    whole = np.trunc(x)
    fraction = x - whole  # exact, with the sign of x
    whole += fraction >= 0.5
    whole -= fraction <= -0.5
    return whole


def _builtin_tail(shape: tuple[int, int], batch_size: int | None) -> np.ndarray | None:
    """Which elements the builtin ``QUANTIZE`` kernel quantizes outside its vector loop.

    Its loop takes 8 values of the flattened input tensor at a time; the ``size % 8`` values
    left at the end of each ``invoke`` (of ``batch_size`` images) take the scalar code.

    :returns: A boolean mask of ``shape``, or ``None`` if every value takes the vector loop.
    """
    count, features = shape
    batch = max(count if batch_size is None else batch_size, 1)
    if batch * features % 8 == 0 and count % batch * features % 8 == 0:
        return None
    row = np.arange(count)[:, None]
    start = row // batch * batch
    size = np.minimum(batch, count - start) * features
    position = (row - start) * features + np.arange(features)[None, :]
    return position >= size - size % 8


def quantize_input(
    model: Model,
    x: np.ndarray,
    *,
    rounding: Rounding = "xnnpack",
    batch_size: int | None = None,
) -> np.ndarray:
    """Quantize a float32 input batch to the first layer's int8 input.

    For a model with float input this reproduces the path's ``QUANTIZE`` op exactly:

    * XNNPACK: ``rint_half_even(x * float32(1 / s)) + z`` in float32;
    * builtin: the same for groups of 8 values of the input tensor, but the last
      ``size % 8`` values of each ``invoke`` take a scalar loop,
      ``round_half_away(double(x) / s) + z``;
    * reference: ``round_half_away(float32(x / s)) + z``.

    They differ only at exact ties, which a bilinear resize can produce. A model with int8
    input has no ``QUANTIZE`` op; every backend then quantizes with the XNNPACK rule, whatever
    ``rounding`` says, so all backends see the same int8 image.

    :param model: The model.
    :param x: float32 ``[N, in_features]``, e.g. from :func:`qnn_ref.preprocess`.
    :param rounding: The kernel path whose ``QUANTIZE`` op to reproduce.
    :param batch_size: Images per LiteRT ``invoke`` to match (``None``: all ``N`` at once);
        only the builtin path's rounding depends on it.
    :returns: int8 ``[N, in_features]``, saturated to ``[-128, 127]``.
    :raises ValueError: if ``x`` is not a float array of shape ``[N, in_features]`` or
        ``rounding`` is not a kernel path.
    :raises ModelError: if LiteRT cannot run the model on that path
        (:meth:`Model.check_rounding`).
    """
    rounding = model.check_rounding(rounding)
    return _quantize(model, _checked_input(model, x), rounding, batch_size).astype(np.int8)


def _checked_input(model: Model, x: np.ndarray) -> np.ndarray:
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[1] != model.in_features or x.dtype.kind != "f":
        raise ValueError(
            f"input must be a float array of shape [N, {model.in_features}], not {x.dtype} "
            f"of shape {list(x.shape)}"
        )
    return x


def _quantize(
    model: Model, x: np.ndarray, rounding: Rounding, batch_size: int | None
) -> np.ndarray:
    """:func:`quantize_input` before the int8 cast: float32 integers in ``[-128, 127]``."""
    scale = np.float32(model.input_scale)
    if model.float_input and rounding == "reference":
        q = _round_half_away(np.divide(x, scale, dtype=np.float32))
    else:
        q = np.multiply(x, np.float32(1) / scale, dtype=np.float32)
        np.rint(q, out=q)  # ties to even
        if model.float_input and rounding == "builtin":
            tail = _builtin_tail(x.shape, batch_size)
            if tail is not None:
                scalar = _round_half_away(x[tail].astype(np.float64) / np.float64(scale))
                q[tail] = scalar.astype(np.float32)
    # The zero point and the clamp bounds are small integers: exact in float32.
    q += np.float32(model.input_zero_point)
    return np.clip(q, -128, 127, out=q)


@dataclass(frozen=True, eq=False)
class _Constants:
    """A layer's constants in the form the NumPy arithmetic uses, derived once per layer."""

    weights: np.ndarray  # float32 or float64: exact for the BLAS product (see _accumulate)
    offset: np.ndarray  # int64: bias - z_in * column sums of the weights
    scales: np.ndarray  # xnnpack: float32 scales; reference: float64 scales; builtin: unused
    multipliers: np.ndarray  # builtin: M
    left: np.ndarray  # builtin: left shift
    right: np.ndarray  # builtin: right shift
    nudge: np.ndarray  # builtin: 2**(right - 1), or 0


@functools.lru_cache(maxsize=64)
def _constants(layer: DenseLayer, rounding: Rounding) -> _Constants:
    # float32 holds every partial sum of the product exactly while it stays within 2**24.
    dtype = np.float32 if layer.in_features * 128 * 128 <= 2**24 else np.float64
    scales = layer.float_scales() if rounding == "xnnpack" else layer.double_scales()
    multipliers, shift = layer.integer_multipliers(rounding)
    right = np.maximum(-shift, 0)
    column_sums = layer.weights.astype(np.int64).sum(axis=0)
    return _Constants(
        weights=layer.weights.astype(dtype),
        offset=layer.bias - layer.input_zero_point * column_sums,
        scales=scales,
        multipliers=multipliers,
        left=np.maximum(shift, 0),
        right=right,
        nudge=(np.int64(1) << right) >> 1,
    )


def _wrap_int32(x: np.ndarray) -> np.ndarray:
    """``x`` modulo ``2**32`` as a signed value (in int64): what C's int32 arithmetic gives on
    overflow on every platform LiteRT runs on (two's complement wrap-around)."""
    return x.astype(np.int32).astype(np.int64)


def requantize(layer: DenseLayer, acc: np.ndarray, *, rounding: Rounding = "xnnpack") -> np.ndarray:
    """Scale int32 accumulators to the layer's int8 output, as the kernel path ``rounding`` does.

    Every kernel works in int32, and where a value leaves int32 this follows the kernel, not
    the exact arithmetic (see :doc:`/int8-inference`, "Where the arithmetic leaves int32"):

    * accumulators outside int32 wrap around (modulo ``2**32``) first, on every path;
    * ``"builtin"``: ``acc << shift`` (a scale of 1 or more) wraps, and so does adding the
      output zero point to the scaled value;
    * ``"reference"``: a rounded product outside int32 becomes ``INT32_MIN`` (x86's
      double-to-int32 conversion), and adding the output zero point wraps;
    * ``"xnnpack"``: a scaled value at or below ``-2**31`` becomes ``INT32_MIN`` and adding a
      negative zero point wraps (larger values are clamped in float32 first).

    :param layer: The layer whose scales, zero point and activation to apply.
    :param acc: Integer ``[N, units]`` accumulators, bias included (e.g. from
        :func:`accumulate`, or the exact sums, which wrap to int32 here).
    :param rounding: The kernel path to reproduce.
    :returns: int8 ``[N, units]``, after the output zero point and the activation clamp.
    """
    acc = _wrap_int32(np.asarray(acc, dtype=np.int64))
    c = _constants(layer, check_rounding(rounding))
    low, high = layer.output_range(rounding)
    # Every step after the first writes in place into a fresh array (never into ``acc``).
    if rounding == "xnnpack":
        scaled = acc.astype(np.float32)
        scaled *= c.scales
        np.rint(scaled, out=scaled)
        if layer.output_zero_point < 0:
            # XNNPACK clamps only from above in float32, converts (INT32_MIN for anything at
            # or below -2**31) and adds the zero point in int32: below -2**31 that wraps to
            # a large positive value. (Nearer -2**31 float32 has no values that could wrap.)
            scaled[scaled <= -(2.0**31)] = 2.0**31
        # Exact in float32 (small integers); the clamp saturates everything else.
        scaled += layer.output_zero_point
        return np.clip(scaled, low, high, out=scaled).astype(np.int8)
    if rounding == "reference":
        rounded = _round_half_away(acc.astype(np.float64) * c.scales)
        # cvttsd2si, x86's conversion, turns every double outside int32 into INT32_MIN (the
        # "integer indefinite" value); -2**31 itself is INT32_MIN too.
        rounded[np.abs(rounded) >= 2.0**31] = -(2.0**31)
        scaled = rounded.astype(np.int64)
    else:
        # SaturatingRoundingDoublingHighMul(a, M) with a = acc << left in int32 (it wraps) is
        # floor(a * M / 2**31 + 1/2) (it cannot saturate: M < 2**31), then a right shift
        # rounding ties toward +inf, which LiteRT computes without overflow.
        scaled = _wrap_int32(np.left_shift(acc, c.left)) if c.left.any() else acc.copy()
        scaled *= c.multipliers
        scaled += np.int64(1) << 30
        scaled >>= 31
        scaled += c.nudge
        scaled >>= c.right
    scaled += layer.output_zero_point
    return np.clip(_wrap_int32(scaled), low, high).astype(np.int8)


def _accumulate(x: np.ndarray, constants: _Constants) -> np.ndarray:
    """A layer's accumulators ``(x - z_in) @ weights + bias``, exactly (not wrapped), as int64.

    The input zero point is folded into the bias (``offset = bias - z_in * sum_k weights``), so
    the product runs on the int8 values themselves. NumPy's integer matrix product is a plain
    loop, several times slower than BLAS, so the product runs in floating-point BLAS. That is
    exact, not an approximation: every operand and every partial sum is an integer of magnitude
    at most ``in_features * 128 * 128``; float32 represents all of them exactly while that is
    at most ``2**24`` (up to 1,024 features; ``_constants`` picks float32 only then, else
    float64, exact far beyond any real layer), so no addition rounds, in whatever order BLAS
    adds.

    :param x: ``[N, in_features]`` int8 values, as int8 or as exact integers in the weights'
        float type.
    """
    weights = constants.weights
    acc = (np.asarray(x, dtype=weights.dtype) @ weights).astype(np.int64)
    acc += constants.offset
    return acc


def run_layers(model: Model, q: np.ndarray, *, rounding: Rounding = "xnnpack") -> Outputs:
    """Run the dense layers on an already quantized int8 input batch.

    :param model: The model.
    :param q: int8 ``[N, in_features]``, e.g. from :func:`quantize_input`.
    :param rounding: The kernel path whose requantization to reproduce.
    :returns: The input, every layer's int8 output and the predictions.
    :raises ValueError: if ``q`` is not an int8 array of shape ``[N, in_features]`` or
        ``rounding`` is not a kernel path.
    :raises ModelError: if LiteRT cannot run the model on that path
        (:meth:`Model.check_rounding`).
    """
    rounding = model.check_rounding(rounding)
    q = _checked_int8(q, model.in_features)
    return _run(model, q, q, rounding)


def _checked_int8(q: np.ndarray, in_features: int) -> np.ndarray:
    q = np.asarray(q)
    if q.ndim != 2 or q.shape[1] != in_features or q.dtype != np.int8:
        raise ValueError(
            f"quantized input must be an int8 array of shape [N, {in_features}], not "
            f"{q.dtype} of shape {list(q.shape)}"
        )
    return q


def accumulate(layer: DenseLayer, q: np.ndarray) -> np.ndarray:
    """A layer's int32 accumulators for an int8 input batch, as every LiteRT kernel has them.

    ``acc[n, c] = sum_k weights[k, c] * (q[n, k] - z_in) + bias[c]``, computed exactly and then
    wrapped to int32 (modulo ``2**32``): the kernels add in int32, and however they order
    the additions, wrapping int32 sums give the exact sum modulo ``2**32``.
    :meth:`DenseLayer.accumulator_range` says whether a layer can wrap at all.

    :param layer: The layer.
    :param q: int8 ``[N, in_features]``: the layer's input.
    :returns: int32 ``[N, units]``.
    :raises ValueError: if ``q`` is not an int8 array of shape ``[N, in_features]``.
    """
    q = _checked_int8(q, layer.in_features)
    return _accumulate(q, _constants(layer, "reference")).astype(np.int32)


def _run(model: Model, q: np.ndarray, first: np.ndarray, rounding: Rounding) -> Outputs:
    """Run the layers; ``first`` is ``q`` itself or its values in float32 (saving a cast)."""
    outputs = []
    x = first
    for layer in model.layers:
        if isinstance(layer, DenseLayer):
            x = x.reshape(len(x), layer.in_features)  # [N, H, W, C] flattened, as RESHAPE does
            x = requantize(layer, _accumulate(x, _constants(layer, rounding)), rounding=rounding)
        else:
            x = run_window_layer(layer, x.astype(np.int8, copy=False), rounding=rounding)
        outputs.append(x)
    # First maximum: lowest index wins.
    predictions = np.argmax(x.reshape(len(x), model.num_classes), axis=1).astype(np.int64)
    q = q.reshape(len(q), *model.layers[0].input_shape)  # dense: [N, in_features] as it is
    return Outputs(input=q, layers=tuple(outputs), predictions=predictions)


def run_numpy(
    model: Model,
    x: np.ndarray,
    *,
    rounding: Rounding = "xnnpack",
    batch_size: int | None = None,
) -> Outputs:
    """Run the model on a float32 input batch with the integer NumPy reference.

    :param model: The model.
    :param x: float32 ``[N, in_features]``, e.g. from :func:`qnn_ref.preprocess`.
    :param rounding: The LiteRT kernel path to match bit for bit: ``"xnnpack"`` (the default
        ``Interpreter``), ``"builtin"`` or ``"reference"``.
    :param batch_size: The LiteRT batch size to match (see :func:`quantize_input`); the NumPy
        computation itself always runs the whole batch at once.
    :returns: The quantized input, every layer's int8 output and the predictions.
    :raises ValueError: if ``x`` has the wrong shape or ``rounding`` is not a kernel path.
    :raises ModelError: if LiteRT cannot run the model on that path
        (:meth:`Model.check_rounding`).
    """
    rounding = model.check_rounding(rounding)
    first = _quantize(model, _checked_input(model, x), rounding, batch_size)
    return _run(model, first.astype(np.int8), first, rounding)
