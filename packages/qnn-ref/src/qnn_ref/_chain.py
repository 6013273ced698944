"""Read a convolutional int8 ``.tflite`` chain: the ops beyond FULLY_CONNECTED.

:func:`qnn_ref.read_model` hands a model here when its op list holds a convolution, a pooling
or a SOFTMAX op; a chain of FULLY_CONNECTED layers alone keeps the dense reader of ``_model``.
The accepted graph is one chain of compute ops (``CONV_2D``, ``DEPTHWISE_CONV_2D``,
``MAX_POOL_2D``, ``AVERAGE_POOL_2D``, ``FULLY_CONNECTED``) with int8 activations, ``RESHAPE``
anywhere, ``QUANTIZE`` before the first compute op, and a ``SOFTMAX`` and ``DEQUANTIZE`` after
the last. The SOFTMAX is left out of the layers (it does not change the argmax of the logits
before it) and :attr:`Model.softmax_dropped` says so.
"""

import itertools

import numpy as np
from ai_edge_litert import schema_py_generated as schema

from ._layers import (
    AveragePool2DLayer,
    Conv2DLayer,
    DepthwiseConv2DLayer,
    MaxPool2DLayer,
    _WindowLayer,
    output_size,
)
from ._model import _CONVERT, DenseLayer, Model, _Reader

__all__ = ["CHAIN_OPS", "ChainReader"]

COMPUTE_OPS = (
    "CONV_2D",
    "DEPTHWISE_CONV_2D",
    "MAX_POOL_2D",
    "AVERAGE_POOL_2D",
    "FULLY_CONNECTED",
)
#: Ops whose presence makes :func:`qnn_ref.read_model` use this reader.
CHAIN_OPS = frozenset({*COMPUTE_OPS, "SOFTMAX"} - {"FULLY_CONNECTED"})

_SUPPORTED = (
    "qnn-ref reads chains of int8 CONV_2D, DEPTHWISE_CONV_2D, MAX_POOL_2D, AVERAGE_POOL_2D and "
    "FULLY_CONNECTED layers with RESHAPE between them, QUANTIZE/DEQUANTIZE at the ends and an "
    "optional final SOFTMAX"
)
_OPTIONS = {
    "CONV_2D": schema.BuiltinOptions.Conv2DOptions,
    "DEPTHWISE_CONV_2D": schema.BuiltinOptions.DepthwiseConv2DOptions,
    "MAX_POOL_2D": schema.BuiltinOptions.Pool2DOptions,
    "AVERAGE_POOL_2D": schema.BuiltinOptions.Pool2DOptions,
}
_OPTION_NAMES = {
    "CONV_2D": "Conv2DOptions",
    "DEPTHWISE_CONV_2D": "DepthwiseConv2DOptions",
    "MAX_POOL_2D": "Pool2DOptions",
    "AVERAGE_POOL_2D": "Pool2DOptions",
}
_PADDINGS = {schema.Padding.SAME: "SAME", schema.Padding.VALID: "VALID"}


class ChainReader(_Reader):
    """The dense reader extended to convolution and pooling layers and a final SOFTMAX."""

    def model(self) -> Model:
        ops = list(self.graph.operators or [])
        names = [self.op_name(op) for op in ops]
        compute = [j for j, name in enumerate(names) if name in COMPUTE_OPS]
        if not compute:
            self.fail(f"has no compute layer; {_SUPPORTED}")
        first, last = compute[0], compute[-1]
        softmax = [j for j, name in enumerate(names) if name == "SOFTMAX"]
        for j, name in enumerate(names):
            if j < first:
                allowed = {"RESHAPE", "QUANTIZE"}
            elif j < last:
                allowed = {"RESHAPE", *COMPUTE_OPS}
            else:
                allowed = {"RESHAPE", "DEQUANTIZE", "SOFTMAX", *COMPUTE_OPS}
            if name not in allowed or (name == "SOFTMAX" and j != softmax[0]):
                layer = sum(k < j for k in compute)
                where = f"after layer {layer - 1}" if j > last else f"before layer {layer}"
                self.fail(f"op {j} is {name} ({where}), which is not supported; {_SUPPORTED}")
        for j in softmax:
            if any(name not in ("RESHAPE", "DEQUANTIZE") for name in names[j + 1 :]):
                self.fail(
                    f"op {j} is a SOFTMAX followed by {names[j + 1]}, not at the end; {_SUPPORTED}"
                )
        graph_input, float_input, float_output = self.check_chain(
            ops,
            names,
            fix=_SUPPORTED,
            unchained=f"the graph must be one chain: {_SUPPORTED}",
            one_output=True,
        )
        layers = []
        for i, j in enumerate(compute):
            if names[j] == "FULLY_CONNECTED":
                layers.append(self.layer(i, j, ops[j]))
            else:
                layers.append(self.window_layer(i, j, ops[j], names[j]))
        for before, after in itertools.pairwise(layers):
            if _features(before) != _features(after, output=False):
                self.fail(
                    f"layer {after.index} ({names[compute[after.index]]}) takes "
                    f"{_features(after, output=False)} values, layer {before.index} gives "
                    f"{_features(before)}; export the model again"
                )
        head = layers[0]
        if isinstance(head, DenseLayer):
            input_shape = self.input_shape(self.tensors[graph_input], head.in_features)
        else:
            input_shape = head.input_shape[:2]
        return Model(
            path=self.path,
            input_shape=input_shape,
            input_scale=head.input_scale,
            input_zero_point=head.input_zero_point,
            float_input=float_input,
            float_output=float_output,
            layers=tuple(layers),
            softmax_dropped=bool(softmax),
        )

    def window_layer(self, index: int, j: int, op: schema.OperatorT, name: str) -> _WindowLayer:
        """Read one convolution or pooling op into its layer kind, checking every field."""
        where = f"layer {index} ({name}, op {j})"
        inputs = [int(n) for n in op.inputs]
        x, y = self.tensors[inputs[0]], self.tensors[int(op.outputs[0])]
        weighted = name in ("CONV_2D", "DEPTHWISE_CONV_2D")
        w = self.tensors[inputs[1]] if weighted else None
        b = self.tensors[inputs[2]] if weighted and len(inputs) > 2 and inputs[2] >= 0 else None
        self.check_types(where, x, w, y, b)
        options, activation = self.options_and_activation(
            where, op, _OPTIONS[name], _OPTION_NAMES[name]
        )
        if activation not in ("NONE", "RELU", "RELU6"):
            self.fail(
                f"{where} has fused activation {activation}; only NONE, RELU and RELU6 are "
                "supported"
            )
        if weighted and (options.dilationHFactor, options.dilationWFactor) != (1, 1):
            self.fail(
                f"{where} has dilation {options.dilationHFactor}x{options.dilationWFactor}; "
                "only dilation 1 is supported"
            )
        padding = _PADDINGS.get(options.padding)
        if padding is None:
            self.fail(f"{where} has padding {options.padding}; only SAME and VALID are supported")
        stride = (int(options.strideH), int(options.strideW))
        if min(stride) < 1:
            self.fail(f"{where} has stride {stride[0]}x{stride[1]}; export the model again")
        in_shape, out_shape = _image_shape(x), _image_shape(y)
        if in_shape is None or out_shape is None:
            self.fail(
                f"{where} input {list(x.shape)} and output {list(y.shape)} are not batches of "
                "height x width x channels images; export the model again"
            )
        input_scale, input_zero_point = self.per_tensor(x, f"{where} input")
        output_scale, output_zero_point = self.per_tensor(y, f"{where} output")
        common = dict(
            index=index,
            input_shape=in_shape,
            output_shape=out_shape,
            stride=stride,
            padding=padding,
            activation=activation,
            input_scale=input_scale,
            input_zero_point=input_zero_point,
            output_scale=output_scale,
            output_zero_point=output_zero_point,
        )
        if weighted:
            layer = self.weighted_layer(where, name, options, w, b, in_shape, out_shape, common)
        else:
            if (input_scale, input_zero_point) != (output_scale, output_zero_point):
                self.fail(
                    f"{where} output quantization differs from its input's; {_CONVERT} "
                    "(pooling keeps the scale and zero point)"
                )
            kernel = (int(options.filterHeight), int(options.filterWidth))
            if min(kernel) < 1:
                self.fail(f"{where} has a {kernel[0]}x{kernel[1]} window; export the model again")
            if out_shape[2] != in_shape[2]:
                self.fail(f"{where} changes the channel count; export the model again")
            kind = MaxPool2DLayer if name == "MAX_POOL_2D" else AveragePool2DLayer
            layer = kind(kernel=kernel, **common)
        expected = tuple(
            output_size(n, k, s, padding)
            for n, k, s in zip(in_shape[:2], layer.kernel, stride, strict=True)
        )
        if out_shape[:2] != expected:
            self.fail(
                f"{where} output is {out_shape[0]}x{out_shape[1]}, but its window gives "
                f"{expected[0]}x{expected[1]}; export the model again"
            )
        return layer

    def weighted_layer(
        self,
        where: str,
        name: str,
        options: object,
        w: schema.TensorT,
        b: schema.TensorT | None,
        in_shape: tuple[int, int, int],
        out_shape: tuple[int, int, int],
        common: dict,
    ) -> _WindowLayer:
        """The CONV_2D or DEPTHWISE_CONV_2D part of :meth:`window_layer`: weights and bias."""
        if w.sparsity is not None:
            self.fail(f"{where} has sparse weights; export the model with dense weights")
        weights = self.constant(w, np.int8)
        channels = out_shape[2]
        if weights is None or weights.ndim != 4:
            self.fail(f"{where} weights are not a constant 4-D tensor; export the model again")
        if name == "CONV_2D":
            if weights.shape[0] != channels or weights.shape[3] != in_shape[2]:
                self.fail(
                    f"{where} weights of shape {list(weights.shape)} do not map "
                    f"{in_shape[2]} to {channels} channels; export the model again"
                )
            channel_axis = 0
            kernel_weights = np.ascontiguousarray(weights.transpose(1, 2, 3, 0))
        else:
            multiplier = int(options.depthMultiplier)  # type: ignore[attr-defined]
            if channels != in_shape[2] or weights.shape[0] != 1 or weights.shape[3] != channels:
                self.fail(
                    f"{where} has depth multiplier {multiplier} ({in_shape[2]} to {channels} "
                    "channels); only depth multiplier 1 is supported"
                )
            channel_axis = 3
            kernel_weights = np.ascontiguousarray(weights[0])
        kernel_weights.flags.writeable = False
        bias = self.bias(where, b, channels, "")
        scales, zero_points = self.quantization(w)
        if len(scales) not in (1, channels) or (
            len(scales) > 1 and w.quantization.quantizedDimension != channel_axis
        ):
            self.fail(
                f"{where} weights are not quantized per tensor or per output channel; {_CONVERT}"
            )
        if np.any(zero_points != 0):
            self.fail(f"{where} weights have a non-zero zero point; {_CONVERT} (symmetric weights)")
        weight_scales = np.broadcast_to(scales, (channels,)).astype(np.float32)
        weight_scales.flags.writeable = False
        kind = Conv2DLayer if name == "CONV_2D" else DepthwiseConv2DLayer
        return kind(
            kernel=(int(weights.shape[1]), int(weights.shape[2])),
            weights=kernel_weights,
            bias=bias,
            weight_scales=weight_scales,
            per_channel=len(scales) > 1,
            **common,
        )


def _image_shape(tensor: schema.TensorT) -> tuple[int, int, int] | None:
    """``(height, width, channels)`` of a ``[1, h, w, c]`` tensor, else ``None``."""
    shape = [int(n) for n in tensor.shape]
    if len(shape) != 4 or min(shape) < 1:
        return None
    return shape[1], shape[2], shape[3]


def _features(layer: object, *, output: bool = True) -> int:
    """Values per image of a layer's output (or input), whatever its kind."""
    if isinstance(layer, DenseLayer):
        return layer.units if output else layer.in_features
    assert isinstance(layer, _WindowLayer)
    return layer.out_features if output else layer.in_features
