import dataclasses
import hashlib
import json
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import qnn_ref
from qnn_ref.testing import require_module, train_in_child


def needs_training() -> None:
    """Skip the calling test (only it: the others here need no TensorFlow) without the extra."""
    require_module("tensorflow_model_optimization", "training needs the train extra")


#: A tiny, fast run: one float and one QAT epoch of an 8x8-input 64-8-10 network.
TINY = {"hidden": (8,), "input_size": (8, 8), "epochs": 1, "qat_epochs": 1, "batch_size": 256}


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, qnn_ref.TrainingFacts]:
    needs_training()
    path = tmp_path_factory.mktemp("train") / "tiny.tflite"
    return path, train_in_child(path, seed=3, **TINY)


def test_tiny_model_is_a_readable_int8_network(tiny):
    path, facts = tiny
    model = qnn_ref.read_model(path)
    assert model.input_shape == (8, 8)
    assert (model.float_input, model.float_output) == (False, False)  # int8 in, int8 out
    assert [layer.units for layer in model.layers] == [8, 10]
    assert [layer.relu for layer in model.layers] == [True, False]
    images, labels = qnn_ref.load_mnist("test")
    outputs = qnn_ref.run_litert(model, qnn_ref.preprocess(images, (8, 8)))
    accuracy = float(np.mean(outputs.predictions == labels))
    assert accuracy > 0.5  # chance is 0.1
    assert facts.int8_accuracy == round(accuracy, 4)


def test_tiny_facts_are_saved_beside_the_model(tiny):
    path, facts = tiny
    saved = json.loads(qnn_ref.facts_path(path).read_text())
    assert saved == json.loads(json.dumps(dataclasses.asdict(facts)))
    data = path.read_bytes()
    assert (facts.model_bytes, facts.model_sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert (facts.layer_sizes, facts.input_size, facts.seed) == ([64, 8, 10], [8, 8], 3)
    assert 0.5 < facts.float_accuracy <= 1
    assert 0.5 < facts.qat_accuracy <= 1


def test_training_is_reproducible(tiny, tmp_path):
    path, _ = tiny
    again = train_in_child(tmp_path / "again.tflite", seed=3, **TINY)
    assert again.model_sha256 == hashlib.sha256(path.read_bytes()).hexdigest()


def test_shipped_model_matches_its_facts():
    path = qnn_ref.default_model_path()
    facts = json.loads(qnn_ref.facts_path(path).read_text())
    data = path.read_bytes()
    assert (facts["model_bytes"], facts["model_sha256"]) == (
        len(data),
        hashlib.sha256(data).hexdigest(),
    )
    model = qnn_ref.read_model(path)
    sizes = [model.in_features, *(layer.units for layer in model.layers)]
    assert (facts["layer_sizes"], facts["input_size"]) == (sizes, list(model.input_shape))
    assert (facts["layer_sizes"], facts["epochs"], facts["qat_epochs"]) == ([144, 18, 10], 10, 2)
    images, labels = qnn_ref.load_mnist("test")
    outputs = qnn_ref.run_litert(model, qnn_ref.preprocess(images, model.input_shape))
    assert facts["int8_accuracy"] == round(float(np.mean(outputs.predictions == labels)), 4)


def test_missing_tensorflow_is_one_clear_line(monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)  # makes `import tensorflow` fail
    message = (
        "training needs TensorFlow (import of tensorflow halted; None in sys.modules); "
        "install it with: pip install 'qnn-ref[train]'"
    )
    with pytest.raises(qnn_ref.TrainingError, match=f"^{re.escape(message)}$"):
        qnn_ref.train(tmp_path / "m.tflite")


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": (18, 0)}, r"^hidden layer size must be a positive integer, not 0$"),
        ({"input_size": (12, 0)}, r"^input size must be 2 positive integers, not \(12, 0\)$"),
        ({"epochs": 0}, r"^epochs must be a positive integer, not 0$"),
        ({"qat_epochs": -1}, r"^QAT epochs must be a non-negative integer, not -1$"),
        ({"batch_size": 0}, r"^batch size must be a positive integer, not 0$"),
    ],
)
def test_train_rejects(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        qnn_ref.train(tmp_path / "m.tflite", **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden": (18, 2.5)}, r"^hidden layer size must be a positive integer, not 2\.5$"),
        ({"epochs": True}, r"^epochs must be a positive integer, not True$"),
    ],
)
def test_train_rejects_the_wrong_type(tmp_path, kwargs, message):
    with pytest.raises(TypeError, match=message):
        qnn_ref.train(tmp_path / "m.tflite", **kwargs)


def test_no_qat_epochs_and_no_hidden_layer(tmp_path):
    needs_training()
    # qat_epochs=0 converts the float model with post-training quantization (per-channel
    # weight scales); hidden=() gives a single FULLY_CONNECTED layer.
    tiny = {**TINY, "hidden": (), "qat_epochs": 0}
    facts = train_in_child(tmp_path / "ptq.tflite", **tiny)
    model = qnn_ref.read_model(tmp_path / "ptq.tflite")
    assert [(layer.in_features, layer.units, layer.relu) for layer in model.layers] == [
        (64, 10, False)
    ]
    assert model.layers[0].per_channel
    assert facts.qat_accuracy == facts.float_accuracy
    assert facts.int8_accuracy > 0.5
