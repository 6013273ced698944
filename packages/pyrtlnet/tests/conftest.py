"""Shared fixtures: the shipped model, models of other shapes, all built once per session."""

from pathlib import Path

import numpy as np
import pytest

import qnn_ref
from qnn_ref import DenseLayer, Model


@pytest.fixture(scope="session")
def default_model() -> Model:
    """The 144-18-10 model shipped with qnn-ref (per-tensor, quantization-aware trained)."""
    return qnn_ref.read_model(qnn_ref.default_model_path())


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
    pytest.importorskip("tensorflow", reason="training test models needs qnn-ref[train]")
    from qnn_ref.testing import train_ptq_model

    images, labels = qnn_ref.load_mnist("train")
    directory: Path = tmp_path_factory.mktemp("models")
    return {
        name: qnn_ref.read_model(
            train_ptq_model(
                directory / f"{name}.tflite",
                images[:3000],
                labels[:3000],
                seed=seed,
                **options,
            )
        )
        for seed, (name, options) in enumerate(TRAINED.items())
    }


@pytest.fixture(scope="session")
def wide_model(tmp_path_factory: pytest.TempPathFactory) -> Model:
    """A hand-written 64-12-10 model whose accumulators reach 2**25 and beyond.

    Its biases (up to 2**25, one of -2**31 + 2**22) make ``float32(acc)`` inexact, the case
    where XNNPACK's float32 requantization and exact rounding part, and make the engine's
    output 33 bits wide, so the sink's saturation to int32 is exercised. Per-channel weight
    scales spanning a factor of 8 give every channel its own multiplier and shift.
    """
    from qnn_ref.testing import write_model

    rng = np.random.default_rng(5)
    bias0 = rng.integers(-(2**25), 2**25, 12).astype(np.int32)
    bias0[3] = -(2**31) + 2**22
    layers = [
        DenseLayer(
            index=0,
            weights=rng.integers(-128, 128, (64, 12)).astype(np.int8),
            bias=bias0,
            input_scale=1 / 255,
            input_zero_point=-128,
            weight_scales=rng.uniform(0.0025, 0.02, 12).astype(np.float32),
            per_channel=True,
            output_scale=16.0,
            output_zero_point=-20,
            relu=True,
        ),
        DenseLayer(
            index=1,
            weights=rng.integers(-128, 128, (12, 10)).astype(np.int8),
            bias=rng.integers(-5000, 5000, 10).astype(np.int32),
            input_scale=16.0,
            input_zero_point=-20,
            weight_scales=np.full(10, 0.01, np.float32),
            per_channel=False,
            output_scale=32.0,
            output_zero_point=3,
            relu=False,
        ),
    ]
    path = tmp_path_factory.mktemp("wide") / "wide.tflite"
    return qnn_ref.read_model(write_model(path, layers, input_shape=(8, 8)))
