"""Write convolutional int8 chains as ``.tflite`` files: the part of :func:`write_model` for
:class:`Conv2DLayer`, :class:`DepthwiseConv2DLayer`, :class:`MaxPool2DLayer`,
:class:`AveragePool2DLayer` and a final ``SOFTMAX``.

The graph is what the TFLite converter makes of a Keras CNN: an optional ``QUANTIZE``, a
``RESHAPE`` of a ``[1, h, w]`` image to ``[1, h, w, 1]`` when the input is given as a
2-D image, the compute ops with a ``RESHAPE`` (flatten) before the first FULLY_CONNECTED that
follows a spatial layer, an optional ``SOFTMAX`` (int8, scale 1/256, zero point -128, as
LiteRT requires) and an optional ``DEQUANTIZE``.
"""

import itertools
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ._layers import _WeightedLayer, _WindowLayer
from ._model import DenseLayer
from .testing import _Graph

__all__ = ["write_chain"]

_INT8, _INT32 = schema.TensorType.INT8, schema.TensorType.INT32
_ACTIVATIONS = {
    "NONE": schema.ActivationFunctionType.NONE,
    "RELU": schema.ActivationFunctionType.RELU,
    "RELU6": schema.ActivationFunctionType.RELU6,
}
#: The options class and ``BuiltinOptions`` tag of each convolution and pooling op.
_OPTIONS = {
    "CONV_2D": (schema.Conv2DOptionsT, schema.BuiltinOptions.Conv2DOptions),
    "DEPTHWISE_CONV_2D": (
        schema.DepthwiseConv2DOptionsT,
        schema.BuiltinOptions.DepthwiseConv2DOptions,
    ),
    "MAX_POOL_2D": (schema.Pool2DOptionsT, schema.BuiltinOptions.Pool2DOptions),
    "AVERAGE_POOL_2D": (schema.Pool2DOptionsT, schema.BuiltinOptions.Pool2DOptions),
}


def _shape(layer: DenseLayer | _WindowLayer, *, output: bool) -> tuple[int, ...]:
    return layer.output_shape if output else layer.input_shape


def write_chain(
    path: str | os.PathLike[str],
    layers: Sequence[DenseLayer | _WindowLayer],
    *,
    input_shape: tuple[int, int] | None = None,
    float_input: bool = False,
    float_output: bool = False,
    softmax: bool = False,
) -> Path:
    """Write a chain of dense, convolution and pooling layers (see :func:`write_model`).

    :raises ValueError: if the layers do not chain (shapes, scales and zero points).
    """
    if not layers:
        raise ValueError("a model needs at least one layer")
    for before, after in itertools.pairwise(layers):
        size = np.prod(_shape(before, output=True))
        if (before.output_scale, before.output_zero_point) != (
            after.input_scale,
            after.input_zero_point,
        ) or size != np.prod(_shape(after, output=False)):
            raise ValueError(
                f"layer {after.index} does not take layer {before.index}'s output "
                "(shape, scale and zero point must match)"
            )
        if not isinstance(after, DenseLayer) and _shape(before, output=True) != after.input_shape:
            raise ValueError(
                f"layer {after.index} input shape {after.input_shape} is not layer "
                f"{before.index}'s output shape {_shape(before, output=True)}"
            )
    graph = _Graph()
    first = layers[0]
    image = [1, *(input_shape or _shape(first, output=False))]
    graph_input, current = graph.model_input(
        image, first.input_scale, first.input_zero_point, float_input=float_input
    )
    shape = image
    for i, layer in enumerate(layers):
        wanted = [1, *_shape(layer, output=False)]
        if shape != wanted:
            quant = {"scales": [layer.input_scale], "zero_points": [layer.input_zero_point]}
            reshaped = graph.tensor(f"layer{i}/reshaped", wanted, _INT8, **quant, batched=True)
            new_shape = np.array([-1, *wanted[1:]], "<i4")
            target = graph.tensor(f"layer{i}/shape", [len(wanted)], _INT32, data=new_shape)
            graph.op("RESHAPE", [current, target], reshaped)
            current = reshaped
        shape = [1, *_shape(layer, output=True)]
        if isinstance(layer, DenseLayer):
            current = graph.fully_connected(i, layer, current)
            continue
        output = graph.tensor(
            f"layer{i}/output",
            shape,
            _INT8,
            scales=[layer.output_scale],
            zero_points=[layer.output_zero_point],
            batched=True,
        )
        _add_window_layer(graph, i, layer, current, output)
        current = output
    if softmax:
        probabilities = graph.tensor(
            "softmax", shape, _INT8, scales=[1 / 256], zero_points=[-128], batched=True
        )
        options = schema.SoftmaxOptionsT()
        options.beta = 1.0
        graph.op("SOFTMAX", [current], probabilities, schema.BuiltinOptions.SoftmaxOptions, options)
        current = probabilities
    return graph.write(path, graph_input, current, shape, float_output=float_output)


def _add_window_layer(
    graph: _Graph, i: int, layer: _WindowLayer, current: int, output: int
) -> None:
    """Append the op of one convolution or pooling layer (and its constants) reading ``current``."""
    if isinstance(layer, _WeightedLayer):
        scales = layer.weight_scales if layer.per_channel else layer.weight_scales[:1]
        kernel = np.asarray(layer.weights, np.int8)
        # CONV_2D filters are [out, kh, kw, in]; a DEPTHWISE_CONV_2D filter is [1, kh, kw, c].
        data, axis = (
            (kernel.transpose(3, 0, 1, 2), 0) if layer.op == "CONV_2D" else (kernel[None], 3)
        )
        weights = graph.tensor(
            f"layer{i}/weights", data.shape, _INT8, data=np.ascontiguousarray(data), scales=scales
        )
        graph.tensors[weights].quantization.quantizedDimension = axis
        bias = graph.tensor(
            f"layer{i}/bias",
            [len(layer.bias)],
            _INT32,
            data=np.asarray(layer.bias, "<i4"),
            scales=np.float32(layer.input_scale) * np.asarray(scales, np.float32),
        )
        inputs = [current, weights, bias]
    else:
        inputs = [current]
    if layer.op not in _OPTIONS:
        raise TypeError(f"cannot write a {type(layer).__name__}")
    options_class, kind = _OPTIONS[layer.op]
    options = options_class()
    if layer.op == "DEPTHWISE_CONV_2D":
        options.depthMultiplier = 1
    elif not isinstance(layer, _WeightedLayer):
        options.filterHeight, options.filterWidth = layer.kernel
    options.padding = getattr(schema.Padding, layer.padding)
    options.strideH, options.strideW = layer.stride
    options.fusedActivationFunction = _ACTIVATIONS[layer.activation]
    graph.op(layer.op, inputs, output, kind, options)
