"""Bit-exact references for small int8 networks."""

from ._data import DataError, load_mnist, preprocess
from ._golden import Golden, golden
from ._layers import (
    Activation,
    AveragePool2DLayer,
    Conv2DLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    Padding,
)
from ._litert import make_interpreter, run_litert
from ._model import (
    INT32_RANGE,
    ROUNDINGS,
    SHIPPED_MODELS,
    XNNPACK_MAX_SCALE,
    DenseLayer,
    Model,
    ModelError,
    Rounding,
    default_model_path,
    quantize_multiplier,
    read_model,
    shipped_model_path,
)
from ._numpy import (
    ArrayDiff,
    Outputs,
    OutputsDiff,
    accumulate,
    quantize_input,
    requantize,
    run_layers,
    run_numpy,
)
from ._train import TrainingError, TrainingFacts, facts_path, train

__all__: list[str] = [
    "INT32_RANGE",
    "ROUNDINGS",
    "SHIPPED_MODELS",
    "XNNPACK_MAX_SCALE",
    "Activation",
    "ArrayDiff",
    "AveragePool2DLayer",
    "Conv2DLayer",
    "DataError",
    "DenseLayer",
    "DepthwiseConv2DLayer",
    "Golden",
    "MaxPool2DLayer",
    "Model",
    "ModelError",
    "Outputs",
    "OutputsDiff",
    "Padding",
    "Rounding",
    "TrainingError",
    "TrainingFacts",
    "accumulate",
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
    "shipped_model_path",
    "train",
]
