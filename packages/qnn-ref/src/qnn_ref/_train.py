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
import math
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
from ._validate import int_in_range, positive_int, positive_ints

__all__ = [
    "CNN_CHANNELS",
    "CNN_INPUT_SIZE",
    "CNN_KERNELS",
    "TrainingError",
    "TrainingFacts",
    "facts_path",
    "train",
]

#: Default output channels of the CNN's convolutions (the shipped CNN's).
CNN_CHANNELS = (8, 16)
#: Default kernel size of each of the CNN's convolutions.
CNN_KERNELS = (3, 3)
#: Default input size of the CNN: 28x28 halved, where the bilinear resize is an exact 2x2 mean.
CNN_INPUT_SIZE = (14, 14)


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
    :ivar architecture: ``"mlp"`` or ``"cnn"``; for a CNN, :attr:`layer_sizes` counts the values
        of each compute layer's output image.
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
    #: ``"mlp"`` or ``"cnn"`` (see :func:`train`).
    architecture: str = "mlp"


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
    hidden: Sequence[int] | None = None,
    architecture: str = "mlp",
    conv_channels: Sequence[int] = CNN_CHANNELS,
    kernel_sizes: Sequence[int] = CNN_KERNELS,
    pooling: str = "max",
    input_size: tuple[int, int] | None = None,
    epochs: int = 10,
    qat_epochs: int = 2,
    batch_size: int = 32,
    seed: int = 0,
    data_dir: str | os.PathLike[str] | None = None,
    verbose: int = 0,
) -> TrainingFacts:
    """Train an MNIST MLP or CNN, quantize it, and write the int8 ``.tflite`` and its facts.

    The MLP is ``Flatten -> Dense(h, relu) for h in hidden -> Dense(10)``: a RESHAPE and a
    chain of FULLY_CONNECTED ops in the ``.tflite``, with int8 input ``[1, height, width]`` and
    int8 logits. Its input is :func:`qnn_ref.preprocess` of the images, the same function every
    inference backend uses. The run is reproducible: ``seed`` fixes every random choice
    (initial weights, shuffling) and TensorFlow's deterministic ops are switched on, so the same
    arguments and versions give the same file.

    :param output: Where to write the ``.tflite``; the facts go to :func:`facts_path` of it.
    :param hidden: Sizes of the hidden dense layers; ``()`` gives a single-layer network.
        ``None``: ``(18,)`` for the MLP, ``()`` for the CNN.
    :param architecture: ``"mlp"``, or ``"cnn"``: an ``[h, w, 1]`` input, then for each of
        ``conv_channels`` a ``Conv2D(c, k, padding="same", relu)`` followed by a 2x2 pooling
        of stride 2 with SAME padding (unless ``pooling`` is ``"none"``), then ``Flatten``,
        the hidden dense layers and ``Dense(10)``: CONV_2D, MAX_POOL_2D, RESHAPE and
        FULLY_CONNECTED ops in the ``.tflite``, whose int8 input is
        ``[1, h, w, 1]``.
        Both train with Adam at 1e-3; the CNN's QAT fine-tunes at 1e-4.
    :param conv_channels: Output channels of each convolution of the CNN.
    :param kernel_sizes: Square kernel size of each convolution of the CNN (one per
        ``conv_channels``).
    :param pooling: ``"max"`` or ``"none"``: the CNN's pooling after each convolution.
        (Average pooling is not offered: tfmot's QAT follows it with a requantizing
        ``QUANTIZE`` op, which qnn-ref does not read.)
    :param input_size: ``(height, width)`` the 28×28 images are resized to; ``None``:
        ``(12, 12)`` for the MLP, :data:`CNN_INPUT_SIZE` for the CNN.
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
    :raises TypeError: if a size or count is not an integer.
    :raises ValueError: if a size or count is out of range.
    """
    # Validate before the slow imports, so a typo fails at once.
    if architecture not in ("mlp", "cnn"):
        raise ValueError(f"architecture must be mlp or cnn, not {architecture!r}")
    if hidden is None:
        hidden = (18,) if architecture == "mlp" else ()
    if input_size is None:
        input_size = (12, 12) if architecture == "mlp" else CNN_INPUT_SIZE
    hidden = tuple(positive_int("hidden layer size", h) for h in hidden)
    input_size = positive_ints("input size", input_size, 2)
    if architecture == "cnn":
        conv_channels, kernel_sizes = _check_cnn(conv_channels, kernel_sizes, pooling, input_size)
    epochs = positive_int("epochs", epochs)
    qat_epochs = int_in_range("QAT epochs", qat_epochs, 0)
    batch_size = positive_int("batch size", batch_size)
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
    if architecture == "cnn":  # one channel: [N, h, w, 1]
        x_train, x_test = x_train[..., None], x_test[..., None]
    y_train = train_labels.astype(np.int64)
    y_test = test_labels.astype(np.int64)

    if architecture == "cnn":
        model = _cnn(keras, (height, width), conv_channels, kernel_sizes, pooling, hidden)
    else:
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

    def fit(net: Any, n_epochs: int, learning_rate: Any = 1e-3) -> float:
        net.compile(
            optimizer=keras.optimizers.Adam(learning_rate),
            loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
            metrics=["accuracy"],
        )
        net.fit(x_train, y_train, epochs=n_epochs, batch_size=batch_size, verbose=verbose)
        return float(net.evaluate(x_test, y_test, verbose=0)[1])

    float_accuracy = fit(model, epochs)
    if qat_epochs:
        model = tfmot.quantization.keras.quantize_model(model)
        # The CNN fine-tunes at a tenth of the float rate: at the full rate QAT lost 0.3 to
        # 0.5 points of the float CNN's test accuracy (measured), the MLP none.
        qat_accuracy = fit(model, qat_epochs, 1e-4 if architecture == "cnn" else 1e-3)
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
        layer_sizes=_layer_sizes(output),
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
        architecture=architecture,
    )
    facts_path(output).write_text(json.dumps(asdict(facts), indent=2) + "\n")
    return facts


def _check_cnn(
    channels: Sequence[int], kernels: Sequence[int], pooling: str, input_size: tuple[int, ...]
) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """Validate the CNN arguments of :func:`train`; returns the channels and kernel sizes."""
    channels = tuple(positive_int("conv channel count", c) for c in channels)
    if not channels:
        raise ValueError("a CNN needs at least one convolution: give its conv channels")
    kernels = positive_ints("kernel sizes", kernels, len(channels))
    # Not "average": tfmot's QAT requantizes an AveragePooling2D output with a QUANTIZE op of
    # its own, which qnn-ref does not read.
    if pooling not in ("max", "none"):
        raise ValueError(f"pooling must be max or none, not {pooling!r}")
    if pooling != "none" and min(input_size) < 2 ** len(channels):
        raise ValueError(
            f"an input of {input_size[0]}x{input_size[1]} is too small for "
            f"{len(channels)} 2x2 poolings; give a larger input size or fewer convolutions"
        )
    return channels, kernels


def _cnn(
    keras: Any,
    size: tuple[int, int],
    channels: Sequence[int],
    kernels: Sequence[int],
    pooling: str,
    hidden: Sequence[int],
) -> Any:
    """The Keras CNN of :func:`train`: convolutions with pooling, then dense layers."""
    # The input is [h, w, 1] itself: a Keras Reshape layer would convert to SHAPE,
    # STRIDED_SLICE and PACK ops computing the batch size, which are not a chain.
    layers = [keras.layers.InputLayer(input_shape=(*size, 1), name="image")]
    for i, (count, kernel) in enumerate(zip(channels, kernels, strict=True)):
        layers.append(
            keras.layers.Conv2D(count, kernel, padding="same", activation="relu", name=f"conv{i}")
        )
        if pooling != "none":
            # SAME: an odd size keeps its last row and column (7x7 pools to 4x4, not 3x3).
            layers.append(keras.layers.MaxPooling2D(2, padding="same", name=f"pool{i}"))
    layers.append(keras.layers.Flatten(name="flatten"))
    layers.extend(
        keras.layers.Dense(units, activation="relu", name=f"hidden{i}")
        for i, units in enumerate(hidden)
    )
    layers.append(keras.layers.Dense(10, name="logits"))
    return keras.Sequential(layers, name="cnn")


def _layer_sizes(path: Path) -> list[int]:
    """Values per image at each layer boundary of the written model, input first."""
    model = read_model(path)
    return [model.in_features, *(math.prod(layer.output_shape) for layer in model.layers)]


def _int8_accuracy(path: Path, images: np.ndarray, labels: np.ndarray) -> float:
    """Accuracy of the written ``.tflite`` under LiteRT's default kernels, via qnn-ref itself."""
    model = read_model(path)
    with warnings.catch_warnings():
        # LiteRT warns that keeping every tensor is for debugging: qnn-ref's reference needs it.
        warnings.filterwarnings("ignore", message=".*experimental_preserve_all_tensors")
        outputs = run_litert(model, preprocess(images, model.input_shape))
    return float(np.mean(outputs.predictions == labels))
