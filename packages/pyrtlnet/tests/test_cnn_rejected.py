"""A model LiteRT cannot run on a kernel path gets no plan for that path (nothing to match).

The convolutional cases pyrtlnet refuses are in ``test_cnn.py``.
"""

from pathlib import Path

import numpy as np
import pytest

from pyrtlnet import make_plan
from qnn_ref import DenseLayer, read_model
from qnn_ref.testing import write_model


def frozen(array: np.ndarray) -> np.ndarray:
    array = np.ascontiguousarray(array)
    array.flags.writeable = False
    return array


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
