"""pyrtlnet builds dense models only: a convolutional model is refused in one line."""

from pathlib import Path

import numpy as np
import pytest

from pyrtlnet import make_plan
from qnn_ref import Conv2DLayer, DenseLayer, read_model
from qnn_ref.testing import write_model


def frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


def test_make_plan_rejects_a_cnn(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    conv = Conv2DLayer(
        index=0,
        input_shape=(4, 4, 1),
        output_shape=(4, 4, 2),
        kernel=(3, 3),
        stride=(1, 1),
        padding="SAME",
        activation="RELU",
        input_scale=1 / 255,
        input_zero_point=-128,
        output_scale=0.05,
        output_zero_point=-128,
        bias=frozen(np.zeros(2, np.int32)),
        weight_scales=frozen(np.full(2, 0.01, np.float32)),
        per_channel=True,
        weights=frozen(rng.integers(-127, 128, (3, 3, 1, 2)).astype(np.int8)),
    )
    fc = DenseLayer(
        index=1,
        weights=frozen(rng.integers(-127, 128, (32, 10)).astype(np.int8)),
        bias=frozen(np.zeros(10, np.int32)),
        input_scale=0.05,
        input_zero_point=-128,
        weight_scales=frozen(np.full(10, 0.01, np.float32)),
        per_channel=False,
        output_scale=0.1,
        output_zero_point=0,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "cnn.tflite", [conv, fc]))
    for architecture in ("shared", "per-layer"):
        with pytest.raises(
            ValueError,
            match=r"^pyrtlnet runs dense \(FULLY_CONNECTED\) models only; layer 0 is CONV_2D$",
        ):
            make_plan(model, architecture=architecture)


def test_make_plan_refuses_a_path_litert_cannot_run(tmp_path: Path) -> None:
    """A requantization scale of 2024 is beyond XNNPACK (it refuses scales of 256 or more), so
    there is no xnnpack result to match; the builtin path runs it and gets a plan."""
    from ai_edge_litert.interpreter import Interpreter

    from qnn_ref import ModelError

    layer = DenseLayer(
        index=0,
        weights=frozen(np.full((4, 1), 127, np.int8)),
        bias=frozen(np.zeros(1, np.int32)),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=frozen(np.array([2024.1], np.float32)),
        per_channel=False,
        output_scale=1.0,
        output_zero_point=0,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "big-scale.tflite", [layer]))
    with pytest.raises(RuntimeError, match="XNNPACK"):  # the interpreter itself refuses it
        Interpreter(model_path=str(tmp_path / "big-scale.tflite")).allocate_tensors()
    with pytest.raises(ModelError, match=r"layer 0's requantization scale 2024\.1 .*builtin"):
        make_plan(model, rounding="xnnpack")
    assert make_plan(model, rounding="builtin").rounding == "builtin"
