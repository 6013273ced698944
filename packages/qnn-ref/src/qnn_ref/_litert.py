"""The LiteRT reference: run a model in the interpreter, on a named kernel path.

The same ``.tflite`` file gives int8 outputs that differ by ±1 here and there depending on how
the interpreter is created, so a "LiteRT result" only means something once the path is named:

``"xnnpack"``
    ``Interpreter(model_path)``: the XNNPACK delegate, what users actually run.
``"builtin"``
    ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: the optimized builtin kernels.
``"reference"``
    ``OpResolverType.BUILTIN_REF``: the reference kernels.

Every path is created with ``experimental_preserve_all_tensors=True``; without it the arena
reuses the memory of intermediate tensors and the layer outputs read back as garbage.
"""

import warnings
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from ._model import Model, ModelError, Rounding, check_rounding
from ._numpy import Outputs, quantize_input

__all__ = ["make_interpreter", "run_litert"]

_RESOLVERS = {
    "xnnpack": OpResolverType.AUTO,
    "builtin": OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    "reference": OpResolverType.BUILTIN_REF,
}


def make_interpreter(model: Model, *, rounding: Rounding = "xnnpack") -> Interpreter:
    """A LiteRT interpreter for ``model`` on the kernel path ``rounding``, every tensor kept.

    :param model: The model (the interpreter loads :attr:`Model.path`).
    :param rounding: The kernel path.
    :returns: The interpreter, tensors not yet allocated.
    :raises ModelError: if LiteRT cannot load the file.
    """
    resolver = _RESOLVERS[check_rounding(rounding)]
    try:
        with warnings.catch_warnings():
            # LiteRT warns that preserving all tensors is for debugging: it is what we need.
            warnings.filterwarnings("ignore", ".*experimental_preserve_all_tensors", UserWarning)
            return Interpreter(
                model_path=str(model.path),
                experimental_op_resolver_type=resolver,
                experimental_preserve_all_tensors=True,
            )
    except ValueError as error:
        first_line = str(error).strip().splitlines()[0] if str(error).strip() else "no reason"
        raise ModelError(
            f"{model.path}: LiteRT cannot load the model ({first_line}); export the model again"
        ) from None


def _fully_connected_ops(interpreter: Interpreter, model: Model) -> list[dict[str, Any]]:
    """The interpreter's FULLY_CONNECTED ops in execution order.

    Delegate nodes (XNNPACK wraps each op in one) are skipped: the original ops stay in the op
    list, and with all tensors preserved their output tensors hold the delegate's results.
    """
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] == "FULLY_CONNECTED"]
    if len(ops) != len(model.layers):
        raise ModelError(
            f"{model.path}: LiteRT reports {len(ops)} FULLY_CONNECTED ops, the model file "
            f"{len(model.layers)}; read the model again"
        )
    return ops


def run_litert(
    model: Model,
    x: np.ndarray,
    *,
    rounding: Rounding = "xnnpack",
    batch_size: int | None = None,
) -> Outputs:
    """Run a float32 input batch through the LiteRT interpreter and read every layer's output.

    A model with float input gets ``x`` as it is (its ``QUANTIZE`` op quantizes it); a model
    with int8 input gets :func:`qnn_ref.quantize_input` of it, the one rule every backend uses.
    The input tensor is resized to the batch, so one ``invoke`` runs ``batch_size`` images.

    :param model: The model.
    :param x: float32 ``[N, in_features]``, e.g. from :func:`qnn_ref.preprocess`.
    :param rounding: The kernel path (see the module documentation).
    :param batch_size: Images per ``invoke``; ``None`` runs all ``N`` at once.
    :returns: The first layer's int8 input, every layer's int8 output (read from the
        interpreter's tensors) and the predictions.
    :raises ValueError: if ``x`` has the wrong shape, ``rounding`` is not a kernel path or
        ``batch_size`` is not a positive integer.
    """
    rounding = check_rounding(rounding)
    q = quantize_input(model, x, rounding=rounding)  # also validates x
    count = len(q)
    if batch_size is None:
        batch_size = max(count, 1)
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, not {batch_size!r}")
    feed = np.asarray(x, dtype=np.float32) if model.float_input else q

    interpreter = make_interpreter(model, rounding=rounding)
    input_detail = interpreter.get_input_details()[0]
    image_shape = [int(n) for n in input_detail["shape"][1:]]
    fc_ops = _fully_connected_ops(interpreter, model)
    first_input = int(fc_ops[0]["inputs"][0])
    inputs = np.empty((count, model.in_features), np.int8)
    layers = [np.empty((count, layer.units), np.int8) for layer in model.layers]
    allocated = None
    for start in range(0, count, batch_size):
        chunk = feed[start : start + batch_size]
        if len(chunk) != allocated:
            interpreter.resize_tensor_input(input_detail["index"], [len(chunk), *image_shape])
            interpreter.allocate_tensors()
            allocated = len(chunk)
        interpreter.set_tensor(input_detail["index"], chunk.reshape(len(chunk), *image_shape))
        interpreter.invoke()
        stop = start + len(chunk)
        inputs[start:stop] = interpreter.get_tensor(first_input).reshape(len(chunk), -1)
        for layer, op in zip(layers, fc_ops, strict=True):
            layer[start:stop] = interpreter.get_tensor(int(op["outputs"][0]))
    predictions = np.argmax(layers[-1], axis=1).astype(np.int64)
    return Outputs(input=inputs, layers=tuple(layers), predictions=predictions)
