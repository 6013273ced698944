"""Build ``.tflite`` models for tests: by hand (no TensorFlow) or by training (TensorFlow).

Two ways to get a model other than the shipped one, for this and other packages' tests:

* :func:`write_model` writes a model from :class:`~qnn_ref.DenseLayer` values you choose, with
  only the flatbuffer schema that ships with LiteRT. Use it to put a chosen accumulator in front
  of a chosen scale (rounding corner cases), or to get odd shapes in milliseconds.
* :func:`train_ptq_model` trains a small Keras MLP on MNIST and converts it with post-training
  full-integer quantization, as users' models are made. It needs the ``train`` extra
  (TensorFlow and tf-keras), imported only when it is called.
"""

import itertools
import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ._model import DenseLayer

__all__ = ["train_ptq_model", "write_model"]

# Operator versions as the TFLite converter writes them for these int8 ops.
_OPS = {
    "QUANTIZE": (schema.BuiltinOperator.QUANTIZE, 1),
    "RESHAPE": (schema.BuiltinOperator.RESHAPE, 1),
    "FULLY_CONNECTED": (schema.BuiltinOperator.FULLY_CONNECTED, 4),
    "DEQUANTIZE": (schema.BuiltinOperator.DEQUANTIZE, 2),
}


class _Graph:
    """Accumulates tensors, buffers and operators of one subgraph."""

    def __init__(self) -> None:
        self.buffers: list[Any] = [schema.BufferT()]  # buffer 0 is empty by convention
        self.tensors: list[Any] = []
        self.operators: list[Any] = []
        self.codes: list[str] = []

    def tensor(
        self,
        name: str,
        shape: Sequence[int],
        tensor_type: int,
        *,
        data: np.ndarray | None = None,
        scales: Sequence[float] | None = None,
        zero_points: Sequence[int] | None = None,
        batched: bool = False,
    ) -> int:
        buffer = schema.BufferT()
        if data is not None:
            buffer.data = np.frombuffer(np.ascontiguousarray(data).tobytes(), np.uint8)
        self.buffers.append(buffer)
        tensor = schema.TensorT()
        tensor.name = name
        tensor.shape = np.asarray(shape, np.int32)
        if batched:
            tensor.shapeSignature = np.asarray([-1, *shape[1:]], np.int32)
        tensor.type = tensor_type
        tensor.buffer = len(self.buffers) - 1
        if scales is not None:
            quantization = schema.QuantizationParametersT()
            quantization.scale = np.asarray(scales, np.float32)
            quantization.zeroPoint = np.asarray(
                zero_points if zero_points is not None else [0] * len(scales), np.int64
            )
            quantization.quantizedDimension = 0
            tensor.quantization = quantization
        self.tensors.append(tensor)
        return len(self.tensors) - 1

    def op(
        self,
        name: str,
        inputs: Sequence[int],
        output: int,
        options_type: int = 0,
        options: Any = None,
    ) -> None:
        if name not in self.codes:
            self.codes.append(name)
        operator = schema.OperatorT()
        operator.opcodeIndex = self.codes.index(name)
        operator.inputs = np.asarray(inputs, np.int32)
        operator.outputs = np.asarray([output], np.int32)
        operator.builtinOptionsType = options_type
        operator.builtinOptions = options
        self.operators.append(operator)

    def pack(self, first: int, last: int) -> bytes:
        subgraph = schema.SubGraphT()
        subgraph.tensors = self.tensors
        subgraph.inputs = np.asarray([first], np.int32)
        subgraph.outputs = np.asarray([last], np.int32)
        subgraph.operators = self.operators
        subgraph.name = "main"
        model = schema.ModelT()
        model.version = 3
        model.description = "written by qnn_ref.testing.write_model"
        model.buffers = self.buffers
        model.subgraphs = [subgraph]
        model.operatorCodes = []
        for name in self.codes:
            code = schema.OperatorCodeT()
            code.builtinCode, code.version = _OPS[name]
            code.deprecatedBuiltinCode = min(code.builtinCode, 127)
            model.operatorCodes.append(code)
        builder = flatbuffers.Builder(1024)
        builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
        return bytes(builder.Output())


def write_model(
    path: str | os.PathLike[str],
    layers: Sequence[DenseLayer],
    *,
    input_shape: tuple[int, int] | None = None,
    float_input: bool = False,
    float_output: bool = False,
) -> Path:
    """Write a chain of int8 dense layers as a ``.tflite`` file that LiteRT runs.

    The graph is what the TFLite converter makes of a Keras MLP: an optional ``QUANTIZE`` of a
    float32 input, a ``RESHAPE`` of the ``[1, h, w]`` image to ``[1, h * w]`` when
    ``input_shape`` is given, the ``FULLY_CONNECTED`` layers, and an optional ``DEQUANTIZE``.
    :func:`qnn_ref.read_model` of the file gives back ``layers``.

    :param path: The file to write.
    :param layers: The layers; layer ``i + 1``'s input quantization must equal layer ``i``'s
        output quantization. ``index`` is ignored. A layer with ``per_channel=False`` must
        repeat one weight scale.
    :param input_shape: ``(h, w)`` of the image input, or ``None`` for a flat ``[1, n]`` input.
    :param float_input: Take float32 input through a ``QUANTIZE`` op.
    :param float_output: Return float32 output through a ``DEQUANTIZE`` op.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises ValueError: if the layers do not chain or a per-tensor layer has several scales.
    """
    if not layers:
        raise ValueError("a model needs at least one layer")
    for before, after in itertools.pairwise(layers):
        if (before.output_scale, before.output_zero_point) != (
            after.input_scale,
            after.input_zero_point,
        ) or before.units != after.in_features:
            raise ValueError(
                f"layer {after.index} does not take layer {before.index}'s output "
                "(features, scale and zero point must match)"
            )
    for layer in layers:
        if not layer.per_channel and len(set(layer.weight_scales.tolist())) != 1:
            raise ValueError(f"layer {layer.index} is per-tensor but has several weight scales")

    graph = _Graph()
    first = layers[0]
    in_features = first.in_features
    int8, int32, float32 = (
        schema.TensorType.INT8,
        schema.TensorType.INT32,
        schema.TensorType.FLOAT32,
    )
    image = [1, *input_shape] if input_shape is not None else [1, in_features]
    input_q = ([first.input_scale], [first.input_zero_point])
    if float_input:
        graph_input = graph.tensor("input", image, float32, batched=True)
        current = graph.tensor(
            "quantized", image, int8, scales=input_q[0], zero_points=input_q[1], batched=True
        )
        graph.op("QUANTIZE", [graph_input], current)
    else:
        graph_input = current = graph.tensor(
            "input", image, int8, scales=input_q[0], zero_points=input_q[1], batched=True
        )
    if input_shape is not None:
        flat = graph.tensor(
            "flat", [1, in_features], int8, scales=input_q[0], zero_points=input_q[1], batched=True
        )
        new_shape = graph.tensor("new_shape", [2], int32, data=np.array([-1, in_features], "<i4"))
        graph.op("RESHAPE", [current, new_shape], flat)
        current = flat
    for i, layer in enumerate(layers):
        scales = layer.weight_scales if layer.per_channel else layer.weight_scales[:1]
        weights = graph.tensor(
            f"layer{i}/weights",
            [layer.units, layer.in_features],
            int8,
            data=np.ascontiguousarray(np.asarray(layer.weights, np.int8).T),
            scales=scales,
        )
        bias = graph.tensor(
            f"layer{i}/bias",
            [layer.units],
            int32,
            data=np.asarray(layer.bias, "<i4"),
            scales=np.float32(layer.input_scale) * np.asarray(scales, np.float32),
        )
        output = graph.tensor(
            f"layer{i}/output",
            [1, layer.units],
            int8,
            scales=[layer.output_scale],
            zero_points=[layer.output_zero_point],
            batched=True,
        )
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = (
            schema.ActivationFunctionType.RELU if layer.relu else schema.ActivationFunctionType.NONE
        )
        graph.op(
            "FULLY_CONNECTED",
            [current, weights, bias],
            output,
            schema.BuiltinOptions.FullyConnectedOptions,
            options,
        )
        current = output
    if float_output:
        result = graph.tensor("result", [1, layers[-1].units], float32, batched=True)
        graph.op("DEQUANTIZE", [current], result)
        current = result
    path = Path(path)
    path.write_bytes(graph.pack(graph_input, current))
    return path


def train_ptq_model(
    path: str | os.PathLike[str],
    images: np.ndarray,
    labels: np.ndarray,
    *,
    input_shape: tuple[int, int] = (12, 12),
    hidden: Sequence[int] = (18,),
    relu: Sequence[bool] | None = None,
    float_io: bool = False,
    per_channel: bool = True,
    epochs: int = 1,
    seed: int = 0,
) -> Path:
    """Train a small Keras MLP and convert it with post-training full-integer quantization.

    This is how a user's own model typically comes about, and it gives what hand-written models
    do not: realistic weights and scales, chosen by the converter. Training is deliberately
    short (a few seconds on a few thousand images); the models are for testing arithmetic, not
    for accuracy. Needs TensorFlow and tf-keras (the ``train`` extra).

    :param path: The ``.tflite`` file to write.
    :param images: uint8 ``[N, 28, 28]`` MNIST images to train and calibrate on.
    :param labels: ``[N]`` their labels.
    :param input_shape: ``(h, w)`` the images are resized to (by :func:`qnn_ref.preprocess`).
    :param hidden: Units of each hidden layer (0 to many); a 10-unit output layer follows.
    :param relu: Whether each hidden layer has a ReLU (default: all do). The output layer never
        has one.
    :param float_io: Keep float32 input and output (``QUANTIZE`` and ``DEQUANTIZE`` ops at the
        ends) instead of int8.
    :param per_channel: Per-channel weight scales (the converter's default) or one per tensor.
    :param epochs: Training epochs.
    :param seed: Seed of TensorFlow's random state.
    :returns: ``path`` as a :class:`~pathlib.Path`.
    """
    import tensorflow as tf
    import tf_keras as keras

    from ._data import preprocess

    relu = [True] * len(hidden) if relu is None else list(relu)
    if len(relu) != len(hidden):
        raise ValueError(f"relu needs one value per hidden layer ({len(hidden)}), not {len(relu)}")
    x = preprocess(images, input_shape).reshape(-1, *input_shape)
    keras.utils.set_random_seed(seed)
    model = keras.Sequential([keras.Input(input_shape), keras.layers.Flatten()])
    for units, activation in zip(hidden, relu, strict=True):
        model.add(keras.layers.Dense(units, activation="relu" if activation else None))
    model.add(keras.layers.Dense(10))
    model.compile(
        optimizer="adam",
        loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True),
    )
    model.fit(x, np.asarray(labels), epochs=epochs, batch_size=64, verbose=0)

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([x[i : i + 1]] for i in range(min(len(x), 300)))
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    if not float_io:
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    if not per_channel:
        converter._experimental_disable_per_channel = True
    with warnings.catch_warnings():
        # The converter asks for input statistics that a representative dataset makes moot.
        warnings.filterwarnings("ignore", "Statistics for quantized inputs", UserWarning)
        flatbuffer = converter.convert()
    path = Path(path)
    path.write_bytes(flatbuffer)
    return path
