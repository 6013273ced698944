"""Bit-exact references for small int8 networks."""

from ._data import DataError, load_mnist, preprocess
from ._golden import Golden, golden
from ._litert import make_interpreter, run_litert
from ._model import (
    ROUNDINGS,
    DenseLayer,
    Model,
    ModelError,
    Rounding,
    default_model_path,
    quantize_multiplier,
    read_model,
)
from ._numpy import Outputs, quantize_input, requantize, run_layers, run_numpy
from ._train import TrainingError, TrainingFacts, facts_path, train

__all__: list[str] = [
    "ROUNDINGS",
    "DataError",
    "DenseLayer",
    "Golden",
    "Model",
    "ModelError",
    "Outputs",
    "Rounding",
    "TrainingError",
    "TrainingFacts",
    "default_model_path",
    "facts_path",
    "golden",
    "load_mnist",
    "make_interpreter",
    "preprocess",
    "quantize_input",
    "quantize_multiplier",
    "read_model",
    "requantize",
    "run_layers",
    "run_litert",
    "run_numpy",
    "train",
]
