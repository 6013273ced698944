"""Build ``.tflite`` models for tests: by hand (no TensorFlow) or by training (TensorFlow).

Two ways to get a model other than the shipped one, for this and other packages' tests:

* :func:`write_model` writes a model from :class:`~qnn_ref.DenseLayer` values you choose, with
  only the flatbuffer schema that ships with LiteRT. Use it to put a chosen accumulator in front
  of a chosen scale (rounding corner cases), or to get odd shapes in milliseconds.
* :func:`train_ptq_model` trains a small Keras MLP on MNIST and converts it with post-training
  full-integer quantization, as users' models are made. It needs the ``train`` extra
  (TensorFlow and tf-keras), imported only when it is called.

:func:`random_layers` (with :func:`random_conv_layer`, :func:`pool_layer` and
:func:`random_dense_layer` for one layer) draws layers with random weights for
:func:`write_model`, scaled so that their outputs spread over the int8 range.
"""

import importlib.util
import itertools
import json
import os
import subprocess
import sys
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import flatbuffers
import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ._layers import (
    AveragePool2DLayer,
    Conv2DLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    Padding,
    output_size,
)
from ._model import DenseLayer
from ._train import TrainingFacts
from ._validate import signed_int

__all__ = [
    "frozen",
    "pool_layer",
    "random_conv_layer",
    "random_dense_layer",
    "random_layers",
    "require_module",
    "train_in_child",
    "train_ptq_model",
    "train_ptq_models",
    "write_model",
]

# Operator versions as the TFLite converter writes them for these int8 ops.
_OPS = {
    "QUANTIZE": (schema.BuiltinOperator.QUANTIZE, 1),
    "RESHAPE": (schema.BuiltinOperator.RESHAPE, 1),
    "FULLY_CONNECTED": (schema.BuiltinOperator.FULLY_CONNECTED, 4),
    "DEQUANTIZE": (schema.BuiltinOperator.DEQUANTIZE, 2),
    "CONV_2D": (schema.BuiltinOperator.CONV_2D, 3),
    "DEPTHWISE_CONV_2D": (schema.BuiltinOperator.DEPTHWISE_CONV_2D, 3),
    "MAX_POOL_2D": (schema.BuiltinOperator.MAX_POOL_2D, 2),
    "AVERAGE_POOL_2D": (schema.BuiltinOperator.AVERAGE_POOL_2D, 2),
    "SOFTMAX": (schema.BuiltinOperator.SOFTMAX, 2),
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

    def model_input(
        self, image: Sequence[int], scale: float, zero_point: int, *, float_input: bool
    ) -> tuple[int, int]:
        """The graph input (float32 through a ``QUANTIZE`` if ``float_input``) and its int8 view.

        :returns: ``(graph input, int8 tensor the first op reads)``.
        """
        quant = {"scales": [scale], "zero_points": [zero_point]}
        int8 = schema.TensorType.INT8
        if not float_input:
            graph_input = self.tensor("input", image, int8, **quant, batched=True)
            return graph_input, graph_input
        graph_input = self.tensor("input", image, schema.TensorType.FLOAT32, batched=True)
        quantized = self.tensor("quantized", image, int8, **quant, batched=True)
        self.op("QUANTIZE", [graph_input], quantized)
        return graph_input, quantized

    def fully_connected(self, i: int, layer: DenseLayer, current: int) -> int:
        """Append layer ``i``'s ``FULLY_CONNECTED`` op reading ``current``; return its output.

        The bias scales are the float32 products ``s_in * s_w``, as the converter writes them,
        except a per-tensor layer's ``bias_scale`` when it has one.
        """
        int8, int32 = schema.TensorType.INT8, schema.TensorType.INT32
        scales = layer.weight_scales if layer.per_channel else layer.weight_scales[:1]
        bias_scales = np.float32(layer.input_scale) * np.asarray(scales, np.float32)
        if layer.bias_scale is not None and not layer.per_channel:
            bias_scales = np.array([layer.bias_scale], np.float32)
        weights = self.tensor(
            f"layer{i}/weights",
            [layer.units, layer.in_features],
            int8,
            data=np.ascontiguousarray(np.asarray(layer.weights, np.int8).T),
            scales=scales,
        )
        bias = self.tensor(
            f"layer{i}/bias",
            [layer.units],
            int32,
            data=np.asarray(layer.bias, "<i4"),
            scales=bias_scales,
        )
        output = self.tensor(
            f"layer{i}/output",
            [1, layer.units],
            int8,
            scales=[layer.output_scale],
            zero_points=[layer.output_zero_point],
            batched=True,
        )
        options = schema.FullyConnectedOptionsT()
        options.fusedActivationFunction = getattr(schema.ActivationFunctionType, layer.activation)
        self.op(
            "FULLY_CONNECTED",
            [current, weights, bias],
            output,
            schema.BuiltinOptions.FullyConnectedOptions,
            options,
        )
        return output

    def write(
        self,
        path: str | os.PathLike[str],
        graph_input: int,
        current: int,
        shape: Sequence[int],
        *,
        float_output: bool,
    ) -> Path:
        """End the graph at ``current`` (float32 through a ``DEQUANTIZE`` if ``float_output``)
        and write it to ``path``."""
        if float_output:
            result = self.tensor("result", shape, schema.TensorType.FLOAT32, batched=True)
            self.op("DEQUANTIZE", [current], result)
            current = result
        path = Path(path)
        path.write_bytes(self.pack(graph_input, current))
        return path

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
    softmax: bool = False,
) -> Path:
    """Write a chain of int8 dense layers as a ``.tflite`` file that LiteRT runs.

    A chain with convolution or pooling layers (:class:`~qnn_ref.Conv2DLayer`,
    :class:`~qnn_ref.DepthwiseConv2DLayer`, :class:`~qnn_ref.MaxPool2DLayer`,
    :class:`~qnn_ref.AveragePool2DLayer`), or with ``softmax=True``, is written as the
    converter writes a Keras CNN: a ``RESHAPE`` wherever the next layer's input shape differs
    (a 2-D ``input_shape`` to ``[h, w, 1]``, a feature map flattened for FULLY_CONNECTED),
    and a final int8 ``SOFTMAX`` when ``softmax`` is set.

    The graph is what the TFLite converter makes of a Keras MLP: an optional ``QUANTIZE`` of a
    float32 input, a ``RESHAPE`` of the ``[1, h, w]`` image to ``[1, h * w]`` when
    ``input_shape`` is given, the ``FULLY_CONNECTED`` layers, and an optional ``DEQUANTIZE``.
    :func:`qnn_ref.read_model` of the file gives back ``layers``.

    :param path: The file to write.
    :param layers: The layers; layer ``i + 1``'s input quantization must equal layer ``i``'s
        output quantization. ``index`` is ignored. A layer with ``per_channel=False`` must
        repeat one weight scale. The bias scales are the float32 products ``s_in * s_w``, as
        the TFLite converter writes them, except that a per-tensor layer's ``bias_scale`` is
        written as given (to craft a file LiteRT's bias-scale check refuses).
    :param input_shape: ``(h, w)`` of the image input, or ``None`` for a flat ``[1, n]`` input.
    :param float_input: Take float32 input through a ``QUANTIZE`` op.
    :param float_output: Return float32 output through a ``DEQUANTIZE`` op.
    :param softmax: End in a ``SOFTMAX`` op (that :func:`qnn_ref.read_model` leaves out).
    :returns: ``path`` as a :class:`~pathlib.Path`.
    :raises ValueError: if the layers do not chain, a per-tensor layer has several scales or
        a zero point is not an int8 value.
    :raises TypeError: if a zero point is not an integer.
    """
    if softmax or not all(isinstance(layer, DenseLayer) for layer in layers):
        from ._chain_writer import write_chain  # it builds on _Graph of this module

        return write_chain(
            path,
            layers,
            input_shape=input_shape,
            float_input=float_input,
            float_output=float_output,
            softmax=softmax,
        )
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
        for role in ("input", "output"):
            signed_int(
                f"layer {layer.index} {role} zero point", getattr(layer, f"{role}_zero_point"), 8
            )
        if not layer.per_channel and len(set(layer.weight_scales.tolist())) != 1:
            raise ValueError(f"layer {layer.index} is per-tensor but has several weight scales")

    graph = _Graph()
    first = layers[0]
    in_features = first.in_features
    image = [1, *input_shape] if input_shape is not None else [1, in_features]
    graph_input, current = graph.model_input(
        image, first.input_scale, first.input_zero_point, float_input=float_input
    )
    if input_shape is not None:
        flat = graph.tensor(
            "flat",
            [1, in_features],
            schema.TensorType.INT8,
            scales=[first.input_scale],
            zero_points=[first.input_zero_point],
            batched=True,
        )
        new_shape = graph.tensor(
            "new_shape", [2], schema.TensorType.INT32, data=np.array([-1, in_features], "<i4")
        )
        graph.op("RESHAPE", [current, new_shape], flat)
        current = flat
    for i, layer in enumerate(layers):
        current = graph.fully_connected(i, layer, current)
    return graph.write(path, graph_input, current, [1, layers[-1].units], float_output=float_output)


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


def train_ptq_models(
    directory: str | os.PathLike[str],
    specs: Mapping[str, Mapping[str, Any]],
    images: np.ndarray,
    labels: np.ndarray,
) -> dict[str, Path]:
    """Train several models with :func:`train_ptq_model`, all in one child process.

    TensorFlow's native libraries have crashed (a segmentation fault in its import or in
    ``fit``) inside a test process that had already loaded many PyRTL ``CompiledSimulation``
    libraries. A child process keeps TensorFlow out of the caller's process altogether, so a
    test session can train its models at any point; one child for all the models pays for one
    TensorFlow import.

    :param directory: Where to write ``NAME.tflite`` for each model (and the training data).
    :param specs: ``name -> keyword arguments of train_ptq_model`` (JSON-serializable values).
    :param images: uint8 ``[N, 28, 28]`` images to train and calibrate every model on.
    :param labels: ``[N]`` their labels.
    :returns: ``name -> path`` of each model written.
    :raises RuntimeError: if training fails; the message ends with the child's last error line.
    """
    directory = Path(directory)
    np.savez(directory / "training-data.npz", images=images, labels=labels)
    (directory / "training-specs.json").write_text(
        json.dumps({k: dict(v) for k, v in specs.items()})
    )
    code = f"from qnn_ref.testing import _train_from_files; _train_from_files({str(directory)!r})"
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or [f"exit status {child.returncode}"]
        raise RuntimeError(f"training the test models failed: {lines[-1]}")
    return {name: directory / f"{name}.tflite" for name in specs}


def train_in_child(path: str | os.PathLike[str], **kwargs: Any) -> TrainingFacts:
    """:func:`qnn_ref.train` in a child process (see :func:`train_ptq_models` for why).

    :param path: The ``.tflite`` to write (its facts go beside it, as ``train`` writes them).
    :param kwargs: ``train``'s keyword arguments (their ``repr`` must rebuild them).
    :returns: The facts ``train`` returned in the child.
    :raises RuntimeError: if training fails; the message ends with the child's last error line.
    """
    arguments = ", ".join([repr(str(path)), *(f"{k}={v!r}" for k, v in kwargs.items())])
    code = (
        "import dataclasses, json, qnn_ref; "
        f"print(json.dumps(dataclasses.asdict(qnn_ref.train({arguments}))))"
    )
    child = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=False
    )
    if child.returncode != 0:
        lines = child.stderr.strip().splitlines() or [f"exit status {child.returncode}"]
        raise RuntimeError(f"training failed in the child process: {lines[-1]}")
    return TrainingFacts(**json.loads(child.stdout.strip().splitlines()[-1]))


def _train_from_files(directory: str) -> None:
    """The child process of :func:`train_ptq_models`."""
    data = np.load(Path(directory) / "training-data.npz")
    specs = json.loads((Path(directory) / "training-specs.json").read_text())
    for name, options in specs.items():
        if "input_shape" in options:
            options["input_shape"] = tuple(options["input_shape"])
        train_ptq_model(
            Path(directory) / f"{name}.tflite", data["images"], data["labels"], **options
        )


def require_module(name: str, reason: str) -> None:
    """Skip the calling test (or fixture) when the module ``name`` is not installed; when the
    environment variable ``CI`` is set, fail it instead, so that CI never passes with the
    TensorFlow tests silently skipped (the root conftest does the same for external tools).

    :param name: The module, e.g. ``"tensorflow"``.
    :param reason: What needs it, e.g. ``"training needs the train extra"``.
    """
    import pytest

    if importlib.util.find_spec(name) is not None:
        return
    if os.environ.get("CI"):
        pytest.fail(f"{reason} ({name} is not installed); CI runs every test", pytrace=False)
    pytest.skip(reason)


# --- random layers ----------------------------------------------------------------------------

#: Quantization of the first layer's input: MNIST pixels in [0, 1] as int8.
_PIXELS = (1 / 255, -128)


def frozen(array: np.ndarray) -> np.ndarray:
    """A read-only contiguous copy of ``array``, as the layer dataclasses hold their arrays."""
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def _window(
    input_shape: tuple[int, int, int], kernel: int, stride: int, padding: Padding, channels: int
) -> dict[str, Any]:
    """The geometry fields of a windowed layer over an ``(h, w, c)`` input."""
    height, width, _ = input_shape
    return {
        "input_shape": input_shape,
        "kernel": (kernel, kernel),
        "stride": (stride, stride),
        "padding": padding,
        "output_shape": (
            output_size(height, kernel, stride, padding),
            output_size(width, kernel, stride, padding),
            channels,
        ),
    }


def random_conv_layer(
    rng: np.random.Generator,
    input_shape: tuple[int, int, int],
    channels: int = 0,
    *,
    kernel: int = 3,
    stride: int = 1,
    padding: Padding = "SAME",
    activation: str = "NONE",
    q_in: tuple[float, int] = (0.02, -5),
    q_out: tuple[float, int] = (0.05, 3),
    per_channel: bool = True,
    depthwise: bool = False,
    index: int = 0,
) -> Conv2DLayer | DepthwiseConv2DLayer:
    """A CONV_2D (or, with ``depthwise``, a DEPTHWISE_CONV_2D of multiplier 1) layer with
    random int8 weights and int32 biases.

    The weight scales put a typical accumulator (``sqrt(taps)`` terms of about 60 x 70) at
    about 100 output steps, so the outputs use the int8 range instead of saturating; per-channel
    scales vary by up to 50% around that, a per-tensor one once.

    :param rng: where the weights come from.
    :param input_shape: ``(height, width, channels)`` of the input.
    :param channels: output channels (ignored when ``depthwise``: the input's).
    :param kernel: square kernel side.
    :param stride: stride in both directions.
    :param padding: ``"SAME"`` or ``"VALID"``.
    :param activation: fused activation, ``"NONE"``, ``"RELU"`` or ``"RELU6"``.
    :param q_in: ``(scale, zero_point)`` of the input.
    :param q_out: ``(scale, zero_point)`` of the output.
    :param per_channel: one weight scale per output channel, or one for the tensor.
    :param depthwise: a depthwise layer.
    :param index: the layer's index in its model.
    """
    out_channels = input_shape[2] if depthwise else channels
    taps = kernel * kernel * (1 if depthwise else input_shape[2])
    typical = q_out[0] * 100 / (q_in[0] * 60 * 70 * np.sqrt(taps))
    if per_channel:
        scales = rng.uniform(0.5, 1.5, out_channels) * typical
    else:
        scales = np.full(out_channels, typical * rng.uniform(0.5, 1.5))
    shape = (kernel, kernel, input_shape[2]) + (() if depthwise else (channels,))
    weights = rng.integers(-127, 128, shape)
    kind = DepthwiseConv2DLayer if depthwise else Conv2DLayer
    return kind(
        index=index,
        **_window(input_shape, kernel, stride, padding, out_channels),
        activation=activation,
        input_scale=q_in[0],
        input_zero_point=q_in[1],
        output_scale=q_out[0],
        output_zero_point=q_out[1],
        bias=frozen(rng.integers(-3000, 3000, out_channels).astype(np.int32)),
        weight_scales=frozen(np.asarray(scales, np.float32)),
        per_channel=per_channel,
        weights=frozen(weights.astype(np.int8)),
    )


def pool_layer(
    kind: type[MaxPool2DLayer] | type[AveragePool2DLayer],
    input_shape: tuple[int, int, int],
    q: tuple[float, int],
    *,
    kernel: int = 2,
    stride: int = 2,
    padding: Padding = "VALID",
    activation: str = "NONE",
    index: int = 0,
) -> MaxPool2DLayer | AveragePool2DLayer:
    """A MAX_POOL_2D or AVERAGE_POOL_2D layer; pooling keeps the quantization ``q``."""
    return kind(
        index=index,
        **_window(input_shape, kernel, stride, padding, input_shape[2]),
        activation=activation,
        input_scale=q[0],
        input_zero_point=q[1],
        output_scale=q[0],
        output_zero_point=q[1],
    )


def random_dense_layer(
    rng: np.random.Generator,
    in_features: int,
    units: int,
    q_in: tuple[float, int] = _PIXELS,
    index: int = 0,
) -> DenseLayer:
    """A FULLY_CONNECTED layer with random int8 weights, a per-tensor weight scale sized like
    :func:`random_conv_layer`'s, output quantization ``(0.1, -7)`` and no activation."""
    return DenseLayer(
        index=index,
        weights=frozen(rng.integers(-127, 128, (in_features, units)).astype(np.int8)),
        bias=frozen(rng.integers(-3000, 3000, units).astype(np.int32)),
        input_scale=q_in[0],
        input_zero_point=q_in[1],
        weight_scales=frozen(
            np.full(units, 0.1 / (q_in[0] * 70 * np.sqrt(in_features)), np.float32)
        ),
        per_channel=False,
        output_scale=0.1,
        output_zero_point=-7,
        relu=False,
    )


def random_layers(
    rng: np.random.Generator,
    specs: Sequence[tuple[str, Mapping[str, Any]]],
    input_shape: tuple[int, int, int],
) -> list[Any]:
    """A chain of random layers, each reading the previous one's output, for
    :func:`write_model`.

    Each spec is ``(kind, options)``: ``"conv"`` and ``"depthwise"`` take the keyword arguments
    of :func:`random_conv_layer` (``channels`` for ``"conv"``; ``q_out`` defaults to
    ``(0.05 + 0.01 i, 3 - 2 i)`` for layer ``i``), ``"max"`` and ``"average"`` those of
    :func:`pool_layer`, ``"dense"`` takes ``units``. The first layer reads MNIST-like pixels
    (scale 1/255, zero point -128).

    >>> [type(layer).__name__ for layer in random_layers(
    ...     np.random.default_rng(0), [("conv", {"channels": 2}), ("max", {}),
    ...     ("dense", {"units": 3})], (6, 6, 1))]
    ['Conv2DLayer', 'MaxPool2DLayer', 'DenseLayer']

    :param rng: where the weights come from.
    :param specs: the layers, first to last.
    :param input_shape: ``(height, width, channels)`` of the first layer's input.
    """
    layers: list[Any] = []
    shape: tuple[int, ...] = input_shape
    q = _PIXELS
    for index, (kind, options) in enumerate(specs):
        options = dict(options)
        if kind == "dense":
            layer = random_dense_layer(rng, int(np.prod(shape)), q_in=q, index=index, **options)
            q = (layer.output_scale, layer.output_zero_point)
        elif kind in ("max", "average"):
            pool = MaxPool2DLayer if kind == "max" else AveragePool2DLayer
            layer = pool_layer(pool, shape, q, index=index, **options)
        elif kind in ("conv", "depthwise"):
            q_out = options.pop("q_out", (0.05 + 0.01 * index, 3 - 2 * index))
            layer = random_conv_layer(
                rng,
                shape,
                q_in=q,
                q_out=q_out,
                index=index,
                depthwise=kind == "depthwise",
                **options,
            )
            q = q_out
        else:
            raise ValueError(
                f"unknown layer kind {kind!r}: use conv, depthwise, max, average or dense"
            )
        layers.append(layer)
        shape = layer.output_shape
    return layers
