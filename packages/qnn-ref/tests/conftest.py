"""Session-scoped models and data shared by the qnn-ref tests.

``ptq_models`` trains and converts small MLPs of several shapes once per session (a few seconds
each, in one child process) with :func:`qnn_ref.testing.train_ptq_models`; tests that need
hand-chosen weights and scales write them with :func:`qnn_ref.testing.write_model`, which
needs no TensorFlow.
"""

from pathlib import Path

import numpy as np
import pytest

from qnn_ref import Model, default_model_path, load_mnist, preprocess, read_model
from qnn_ref.testing import require_module, train_ptq_models

#: name -> keyword arguments of train_ptq_model: input sizes 8x8 to 28x28, 1 to 4 hidden layers,
#: int8 and float32 I/O, per-channel and per-tensor weights, a hidden layer without ReLU.
PTQ_MODELS = {
    "8x8-12-int8": dict(input_shape=(8, 8), hidden=(12,)),
    "16x16-32-16-float": dict(input_shape=(16, 16), hidden=(32, 16), float_io=True),
    "28x28-32-24-16-12-linear": dict(
        input_shape=(28, 28), hidden=(32, 24, 16, 12), relu=(True, False, True, True)
    ),
    "12x12-18-per-tensor-float": dict(hidden=(18,), float_io=True, per_channel=False),
    "10x10-linear-only": dict(input_shape=(10, 10), hidden=()),
}


@pytest.fixture(scope="session")
def mnist_test() -> tuple[np.ndarray, np.ndarray]:
    """The 10,000 MNIST test images and labels."""
    return load_mnist("test")


@pytest.fixture(scope="session")
def default_model() -> Model:
    """The model shipped with qnn-ref."""
    return read_model(default_model_path())


@pytest.fixture(scope="session")
def ptq_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """Small post-training-quantized MLPs of every shape in ``PTQ_MODELS``."""
    require_module("tensorflow", "building test models needs the train extra")
    images, labels = load_mnist("train")
    paths = train_ptq_models(
        tmp_path_factory.mktemp("ptq"), PTQ_MODELS, images[:3000], labels[:3000]
    )
    return {name: read_model(path) for name, path in paths.items()}


@pytest.fixture(scope="session")
def test_inputs(mnist_test: tuple[np.ndarray, np.ndarray]):
    """``size -> float32 [10000, h*w]``: the preprocessed test set, computed once per size."""
    cache: dict[tuple[int, int], np.ndarray] = {}

    def inputs(size: tuple[int, int]) -> np.ndarray:
        if size not in cache:
            cache[size] = preprocess(mnist_test[0], size)
        return cache[size]

    return inputs


@pytest.fixture
def model_file(tmp_path: Path) -> Path:
    """A copy of the shipped model's bytes, for tests that corrupt it."""
    path = tmp_path / "model.tflite"
    path.write_bytes(default_model_path().read_bytes())
    return path
