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

LiteRT's C++ code writes ``INFO: Created TensorFlow Lite XNNPACK delegate for CPU.`` straight to
file descriptor 2 when the delegate is applied; :func:`run_litert` keeps that line off the
terminal and passes anything else the native code writes there through.
"""

import contextlib
import os
import sys
import tempfile
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
from ai_edge_litert.interpreter import Interpreter, OpResolverType

from ._model import Model, ModelError, Rounding, check_rounding
from ._numpy import Outputs, quantize_input

__all__ = ["make_interpreter", "run_litert"]

#: What LiteRT's native code prints on every XNNPACK interpreter: information, not a problem.
_DELEGATE_NOTICE = "INFO: Created TensorFlow Lite XNNPACK delegate for CPU."

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


@contextlib.contextmanager
def _native_stderr_without_notice() -> Iterator[None]:
    """Capture file descriptor 2 for the block; re-emit all of it but the delegate notice.

    The notice comes from C++, below :data:`sys.stderr`, so only redirecting the descriptor
    itself (``dup2`` onto a temporary file) catches it. Real errors and warnings, from the
    native code or from Python, are written back to descriptor 2 when the block ends.
    """
    try:
        saved = os.dup(2)
    except OSError:  # no descriptor 2 at all: nothing to keep clean
        yield
        return
    with tempfile.TemporaryFile() as capture:
        sys.stderr.flush()
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            lines = capture.read().splitlines(keepends=True)
            kept = b"".join(line for line in lines if line.strip() != _DELEGATE_NOTICE.encode())
            if kept:
                os.write(2, kept)


def _compute_ops(interpreter: Interpreter, model: Model) -> list[dict[str, Any]]:
    """The interpreter's compute ops (one per layer of ``model``) in execution order.

    Delegate nodes (XNNPACK wraps each op in one) are skipped: the original ops stay in the op
    list, and with all tensors preserved their output tensors hold the delegate's results.
    """
    kinds = {layer.op for layer in model.layers}
    ops = [op for op in interpreter._get_ops_details() if op["op_name"] in kinds]
    if [op["op_name"] for op in ops] != [layer.op for layer in model.layers]:
        raise ModelError(
            f"{model.path}: LiteRT reports {len(ops)} compute ops, the model file "
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

    with _native_stderr_without_notice():
        return _invoke(make_interpreter(model, rounding=rounding), model, feed, q, batch_size)


def _invoke(
    interpreter: Interpreter, model: Model, feed: np.ndarray, q: np.ndarray, batch_size: int
) -> Outputs:
    """Run ``feed`` through ``interpreter`` ``batch_size`` images at a time, every layer read."""
    count = len(q)
    input_detail = interpreter.get_input_details()[0]
    image_shape = [int(n) for n in input_detail["shape"][1:]]
    fc_ops = _compute_ops(interpreter, model)
    first_input = int(fc_ops[0]["inputs"][0])
    input_shape = model.layers[0].input_shape  # LiteRT's per-image shape; dense: (in_features,)
    inputs = np.empty((count, *input_shape), np.int8)
    layers = [np.empty((count, *layer.output_shape), np.int8) for layer in model.layers]
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
        inputs[start:stop] = interpreter.get_tensor(first_input).reshape(len(chunk), *input_shape)
        for layer, op in zip(layers, fc_ops, strict=True):
            layer[start:stop] = interpreter.get_tensor(int(op["outputs"][0]))
    logits = layers[-1].reshape(count, model.num_classes)
    predictions = np.argmax(logits, axis=1).astype(np.int64)
    return Outputs(input=inputs, layers=tuple(layers), predictions=predictions)
