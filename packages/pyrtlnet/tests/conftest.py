"""Shared fixtures: the shipped model, models of other shapes, all built once per session."""

from collections.abc import Callable
from types import ModuleType

import numpy as np
import pytest

import qnn_ref
from qnn_ref import DenseLayer, Model


@pytest.fixture(scope="session")
def default_model() -> Model:
    """The 144-18-10 model shipped with qnn-ref (per-tensor, quantization-aware trained)."""
    return qnn_ref.read_model(qnn_ref.default_model_path())


@pytest.fixture
def forbid_build(monkeypatch: pytest.MonkeyPatch) -> Callable[..., None]:
    """Call it with CLI modules: their ``build_design`` then fails the test, for the checks of
    a command's arguments that must come before its (slow) hardware build."""

    def no_build(*args: object, **kwargs: object) -> None:
        raise AssertionError("the design was built before the output path was checked")

    def forbid(*modules: ModuleType) -> None:
        for module in modules:
            monkeypatch.setattr(module, "build_design", no_build)

    return forbid


#: Models the tests train with post-training quantization: name -> train_ptq_model keywords.
#: Together they cover 1 to 4 hidden layers, inputs from 8x8 to 28x28, per-channel and
#: per-tensor weights, a hidden layer without ReLU and float input/output.
TRAINED = {
    "8x8-16": {"input_shape": (8, 8), "hidden": (16,), "per_channel": True},
    "16x16-20-12": {
        "input_shape": (16, 16),
        "hidden": (20, 12),
        "relu": (True, False),
        "per_channel": False,
        "float_io": True,
    },
    "10x10-9-7-5-11": {
        "input_shape": (10, 10),
        "hidden": (9, 7, 5, 11),
        "per_channel": True,
    },
    "28x28-24": {"input_shape": (28, 28), "hidden": (24,), "per_channel": False},
}


@pytest.fixture(scope="session")
def trained_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Model]:
    """The :data:`TRAINED` models, trained for one epoch on 3,000 images (needs TensorFlow)."""
    from qnn_ref.testing import require_module, train_ptq_models

    require_module("tensorflow", "training test models needs qnn-ref[train]")

    images, labels = qnn_ref.load_mnist("train")
    specs = {
        name: {**options, "seed": seed} for seed, (name, options) in enumerate(TRAINED.items())
    }
    paths = train_ptq_models(tmp_path_factory.mktemp("models"), specs, images[:3000], labels[:3000])
    return {name: qnn_ref.read_model(path) for name, path in paths.items()}


#: One layer of :func:`_write_model`: weights, bias, weight scales, output scale, output zero point.
Layer = tuple[np.ndarray, np.ndarray, np.ndarray, float, int]


def _write_model(tmp_path_factory: pytest.TempPathFactory, name: str, layers: list[Layer]) -> Model:
    """Write a model for 8x8 images with :func:`qnn_ref.testing.write_model` (no TensorFlow)
    and read it back.

    The input is quantized as LiteRT's MNIST models are (scale 1/255, zero point -128), each
    later layer's input as the previous layer's output; the first layer has per-channel weight
    scales, the others one scale; every layer but the last has a ReLU.
    """
    from qnn_ref.testing import write_model

    scale, zero_point = 1 / 255, -128
    dense = []
    for index, (weights, bias, weight_scales, output_scale, output_zero_point) in enumerate(layers):
        dense.append(
            DenseLayer(
                index=index,
                weights=weights.astype(np.int8),
                bias=bias.astype(np.int32),
                input_scale=scale,
                input_zero_point=zero_point,
                weight_scales=weight_scales.astype(np.float32),
                per_channel=index == 0,
                output_scale=output_scale,
                output_zero_point=output_zero_point,
                relu=index < len(layers) - 1,
            )
        )
        scale, zero_point = output_scale, output_zero_point
    path = tmp_path_factory.mktemp(name) / f"{name}.tflite"
    return qnn_ref.read_model(write_model(path, dense, input_shape=(8, 8)))


@pytest.fixture(scope="session")
def small_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A hand-written 64-16-10 model (8x8 images, per-channel first layer, ReLU then none):
    random weights, small enough for yosys in seconds on a 1x2 array."""
    rng = np.random.default_rng(11)
    layers = [
        (
            rng.integers(-128, 128, (64, 16)),
            rng.integers(-3000, 3000, 16),
            rng.uniform(0.002, 0.01, 16),
            0.05,
            -128,
        ),
        (
            rng.integers(-128, 128, (16, 10)),
            rng.integers(-3000, 3000, 10),
            np.full(10, 0.004),
            0.2,
            5,
        ),
    ]
    return _write_model(tmp_path_factory, "small", layers)


@pytest.fixture(scope="session")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A hand-written 64-12-10 model whose accumulators reach 2**25 and beyond.

    Its biases (up to 2**25, one of -2**31 + 2**22) make ``float32(acc)`` inexact, the case
    where XNNPACK's float32 requantization and exact rounding part, and make the engine's
    output 33 bits wide, so the sink's saturation to int32 is exercised. Per-channel weight
    scales spanning a factor of 8 give every channel its own multiplier and shift.
    """
    rng = np.random.default_rng(5)
    bias0 = rng.integers(-(2**25), 2**25, 12)
    bias0[3] = -(2**31) + 2**22
    layers = [
        (rng.integers(-128, 128, (64, 12)), bias0, rng.uniform(0.0025, 0.02, 12), 16.0, -20),
        (
            rng.integers(-128, 128, (12, 10)),
            rng.integers(-5000, 5000, 10),
            np.full(10, 0.01),
            32.0,
            3,
        ),
    ]
    return _write_model(tmp_path_factory, "wide", layers)
