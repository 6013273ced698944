"""Train a small MLP on MNIST and convert it to a full-integer int8 ``.tflite``.

Float training first, then quantization-aware fine-tuning with the TensorFlow Model
Optimization Toolkit, so the weights settle where int8 rounding hurts least. TensorFlow is an
optional dependency (the ``train`` extra): it is imported inside :func:`train` only, so
``import qnn_ref`` and every inference path work without it.
"""

import datetime
import hashlib
import importlib.metadata
import json
import os
import platform
import warnings
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ._data import load_mnist, preprocess
from ._litert import run_litert
from ._model import read_model

__all__ = ["TrainingError", "TrainingFacts", "facts_path", "train"]


class TrainingError(RuntimeError):
    """Training cannot run, e.g. because TensorFlow is not installed."""


@dataclass(frozen=True)
class TrainingFacts:
    """What a training run did and how well the result works; saved beside the model as JSON.

    :ivar model_bytes: Size of the ``.tflite`` file.
    :ivar model_sha256: SHA-256 of the ``.tflite`` file, tying these facts to one file.
    :ivar input_size: ``[height, width]`` of the network's input image.
    :ivar layer_sizes: Features at each layer boundary, e.g. ``[144, 18, 10]``.
    :ivar epochs: Float training epochs.
    :ivar qat_epochs: Quantization-aware fine-tuning epochs.
    :ivar batch_size: Training batch size.
    :ivar seed: Random seed of the run.
    :ivar float_accuracy: Test-set accuracy of the float Keras model before QAT.
    :ivar qat_accuracy: Test-set accuracy of the QAT Keras model (fake-quantized, float).
    :ivar int8_accuracy: Test-set accuracy of the converted int8 model under LiteRT's default
        (XNNPACK) kernels: what a user running the ``.tflite`` gets.
    :ivar training_seconds: Wall-clock time of fitting and conversion.
    :ivar versions: Versions of Python and the packages that produced the model.
    :ivar date: When the model was written (UTC, ISO 8601).
    """

    model_bytes: int
    model_sha256: str
    input_size: list[int]
    layer_sizes: list[int]
    epochs: int
    qat_epochs: int
    batch_size: int
    seed: int
    float_accuracy: float
    qat_accuracy: float
    int8_accuracy: float
    training_seconds: float
    versions: dict[str, str]
    date: str


def facts_path(model_path: str | os.PathLike[str]) -> Path:
    """Where the training facts of a model are kept: its path with a ``.json`` suffix."""
    return Path(model_path).with_suffix(".json")


def _import_tensorflow() -> tuple[Any, Any, Any]:
    """Import TensorFlow, tf-keras (Keras 2) and tfmot, whose QAT works on tf-keras models only."""
    # TensorFlow >= 2.16 binds tf.keras to Keras 3 unless this is set before its first import;
    # with it, tf.keras and the tf_keras used here are the same library.
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # TensorFlow's C++ log noise
    try:
        import tensorflow as tf
        import tensorflow_model_optimization as tfmot
        import tf_keras
    except ImportError as error:
        raise TrainingError(
            f"training needs TensorFlow ({error}); install it with: pip install 'qnn-ref[train]'"
        ) from None
    return tf, tf_keras, tfmot


def _versions() -> dict[str, str]:
    versions = {"python": platform.python_version()}
    for dist in ("qnn-ref", "tensorflow", "tf-keras", "tensorflow-model-optimization", "numpy"):
        try:
            versions[dist] = importlib.metadata.version(dist)
        except importlib.metadata.PackageNotFoundError:
            versions[dist] = "not installed"
    return versions


def train(
    output: str | os.PathLike[str],
    *,
    hidden: Sequence[int] = (18,),
    input_size: tuple[int, int] = (12, 12),
    epochs: int = 10,
    qat_epochs: int = 2,
    batch_size: int = 32,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    verbose: int = 0,
) -> TrainingFacts:
    """Train an MNIST MLP, quantize it, and write the int8 ``.tflite`` and its facts.

    The network is ``Flatten -> Dense(h, relu) for h in hidden -> Dense(10)``: a RESHAPE and a
    chain of FULLY_CONNECTED ops in the ``.tflite``, with int8 input ``[1, height, width]`` and
    int8 logits. Its input is :func:`qnn_ref.preprocess` of the images, the same function every
    inference backend uses. The run is reproducible: ``seed`` fixes every random choice
    (initial weights, shuffling) and TensorFlow's deterministic ops are switched on, so the same
    arguments and versions give the same file.

    :param output: Where to write the ``.tflite``; the facts go to :func:`facts_path` of it.
    :param hidden: Sizes of the hidden layers; ``()`` gives a single-layer network.
    :param input_size: ``(height, width)`` the 28×28 images are resized to.
    :param epochs: Float training epochs (at least 1).
    :param qat_epochs: Quantization-aware fine-tuning epochs (0 converts the float model with
        post-training quantization instead).
    :param batch_size: Training batch size.
    :param seed: Random seed.
    :param data_dir: Directory of the MNIST training set (see :func:`qnn_ref.load_mnist`).
    :param verbose: Keras' ``verbose``: 0 silent, 1 its progress bar, 2 one line per epoch.
    :returns: The facts also written to :func:`facts_path` of ``output``.
    :raises TrainingError: if TensorFlow or tfmot is not installed.
    :raises DataError: if the MNIST files are missing or corrupt.
    :raises ValueError: if a size or count is out of range.
    """
    # Validate before the slow imports, so a typo fails at once.
    if not all(isinstance(h, int) and h >= 1 for h in hidden):
        raise ValueError(f"hidden layer sizes must be positive integers, not {list(hidden)!r}")
    if len(input_size) != 2 or min(input_size) < 1:
        raise ValueError(f"input size must be two positive integers, not {input_size!r}")
    if epochs < 1:
        raise ValueError(f"epochs must be at least 1, not {epochs}")
    if qat_epochs < 0:
        raise ValueError(f"QAT epochs must be at least 0, not {qat_epochs}")
    if batch_size < 1:
        raise ValueError(f"batch size must be at least 1, not {batch_size}")
    output = Path(output)
    tf, keras, tfmot = _import_tensorflow()
    train_images, train_labels = load_mnist("train", data_dir)
    test_images, test_labels = load_mnist("test")

    start = datetime.datetime.now(datetime.UTC)
    # A fresh session restarts Keras' layer-name counters: the names end up in the .tflite, so
    # a second run in the same process would otherwise write a different file.
    keras.backend.clear_session()
    keras.utils.set_random_seed(seed)
    tf.config.experimental.enable_op_determinism()

    height, width = input_size
    x_train = preprocess(train_images, input_size).reshape(-1, height, width)
    x_test = preprocess(test_images, input_size).reshape(-1, height, width)
    y_train = train_labels.astype(np.int64)
    y_test = test_labels.astype(np.int64)

    model = keras.Sequential(
        [
            keras.layers.InputLayer(input_shape=(height, width), name="image"),
            keras.layers.Flatten(name="flatten"),
            *(
                keras.layers.Dense(units, activation="relu", name=f"hidden{i}")
                for i, units in enumerate(hidden)
            ),
            keras.layers.Dense(10, name="logits"),
        ],
        name="mlp",
    )

    def fit(net: Any, n_epochs: int) -> float:
        net.compile(
            optimizer=keras.optimizers.Adam(),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        net.fit(x_train, y_train, epochs=n_epochs, batch_size=batch_size, verbose=verbose)
        return float(net.evaluate(x_test, y_test, verbose=0)[1])

    float_accuracy = fit(model, epochs)
    if qat_epochs:
        model = tfmot.quantization.keras.quantize_model(model)
        qat_accuracy = fit(model, qat_epochs)
    else:
        qat_accuracy = float_accuracy

    def representative_dataset() -> Any:
        # Calibration images for post-training quantization (qat_epochs=0); a QAT model
        # already carries its quantization ranges.
        for image in x_train[:1000]:
            yield [image[None]]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = representative_dataset
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    with warnings.catch_warnings():
        # An int8-input QAT model has no separate input statistics; the converter says so.
        warnings.filterwarnings("ignore", message="Statistics for quantized inputs")
        flatbuffer = bytes(converter.convert())
    seconds = (datetime.datetime.now(datetime.UTC) - start).total_seconds()

    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_bytes(flatbuffer)
    int8_accuracy = _int8_accuracy(output, test_images, test_labels)
    facts = TrainingFacts(
        model_bytes=len(flatbuffer),
        model_sha256=hashlib.sha256(flatbuffer).hexdigest(),
        input_size=[height, width],
        layer_sizes=[height * width, *hidden, 10],
        epochs=epochs,
        qat_epochs=qat_epochs,
        batch_size=batch_size,
        seed=seed,
        float_accuracy=round(float_accuracy, 4),
        qat_accuracy=round(qat_accuracy, 4),
        int8_accuracy=round(int8_accuracy, 4),
        training_seconds=round(seconds, 1),
        versions=_versions(),
        date=start.isoformat(timespec="seconds"),
    )
    facts_path(output).write_text(json.dumps(asdict(facts), indent=2) + "\n")
    return facts


def _int8_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the written ``.tflite`` under LiteRT's default kernels, via qnn-ref itself."""
    model = read_model(path)
    with warnings.catch_warnings():
        # LiteRT warns that keeping every tensor is for debugging: qnn-ref's reference needs it.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        outputs = run_litert(model, preprocess(images, model.input_shape))
    return float(np.mean(outputs.predictions == labels))
