"""Golden vectors: a reference run over MNIST test images, for other packages' tests.

A hardware implementation is checked by comparing its int8 values with these, layer by layer
and image by image (``np.testing.assert_array_equal(actual, golden.layers[i], strict=True)``).
"""

import os
from dataclasses import dataclass
from typing import Literal

import numpy as np

from ._data import load_mnist, preprocess
from ._litert import run_litert
from ._model import Model, Rounding, check_rounding, default_model_path, read_model
from ._numpy import Outputs, run_numpy
from ._validate import int_in_range, positive_int

__all__ = ["Golden", "golden"]

#: MNIST test-set size: image indices run from 0 to ``_TEST_IMAGES - 1``.
_TEST_IMAGES = 10_000


@dataclass(frozen=True, eq=False)
class Golden(Outputs):
    """:class:`~qnn_ref.Outputs` of a reference run, with the images' labels and indices."""

    #: uint8 ``[N]``: the true digit of every image.
    labels: np.ndarray
    #: int64 ``[N]``: the index of every image in the MNIST test set.
    image_indices: np.ndarray

    def to_npz(
        self,
        path: str | os.PathLike[str],
        *,
        labels: np.ndarray | None = None,
        image_indices: np.ndarray | None = None,
    ) -> None:
        """Write the golden vectors as an ``.npz`` file (the ``--dump`` format).

        :param path: The file to write.
        :param labels: Defaults to :attr:`labels`.
        :param image_indices: Defaults to :attr:`image_indices`.
        """
        super().to_npz(
            path,
            labels=self.labels if labels is None else labels,
            image_indices=self.image_indices if image_indices is None else image_indices,
        )


def golden(
    model: Model | str | os.PathLike[str] | None = None,
    *,
    start: int = 0,
    count: int = 1,
    rounding: Rounding = "xnnpack",
    backend: Literal["litert", "numpy"] = "litert",
) -> Golden:
    """Run MNIST test images ``start`` to ``start + count - 1`` through a reference backend.

    :param model: A model, the path of a ``.tflite`` file, or ``None`` for the shipped model.
    :param start: Index of the first test image.
    :param count: Number of images.
    :param rounding: The LiteRT kernel path to run or to match (``"xnnpack"``, ``"builtin"``,
        ``"reference"``).
    :param backend: ``"litert"`` (the interpreter) or ``"numpy"`` (the integer reference; the
        two agree bit for bit).
    :returns: The quantized inputs, every layer's int8 outputs, predictions, labels and
        image indices.
    :raises TypeError: if ``start`` or ``count`` is not an integer.
    :raises ValueError: if the image range is outside the test set or an option is unknown.
    :raises ModelError: if the model cannot be read.
    """
    check_rounding(rounding)
    if backend not in ("litert", "numpy"):
        raise ValueError(f"backend must be 'litert' or 'numpy', not {backend!r}")
    start = int_in_range("start", start, 0)
    count = positive_int("count", count)
    if start + count > _TEST_IMAGES:
        raise ValueError(
            f"images {start} to {start + count - 1} are outside the MNIST test set "
            f"(indices 0 to {_TEST_IMAGES - 1})"
        )
    if not isinstance(model, Model):
        model = read_model(default_model_path() if model is None else model)
    images, labels = load_mnist("test")
    x = preprocess(images[start : start + count], model.input_shape)
    run = run_litert if backend == "litert" else run_numpy
    outputs = run(model, x, rounding=rounding)
    return Golden(
        input=outputs.input,
        layers=outputs.layers,
        predictions=outputs.predictions,
        labels=labels[start : start + count],
        image_indices=np.arange(start, start + count, dtype=np.int64),
    )
