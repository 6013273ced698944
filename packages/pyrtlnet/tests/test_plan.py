"""Planning: configuration checks with exact messages, memory sizes and ROM contents."""

import pickle
import re

import numpy as np
import pytest

import pyrtlnet
import qnn_ref
from pyrtl_linalg import unpack_a
from qnn_ref import Model


@pytest.mark.parametrize(
    ("text", "expected"), [("4x8", (4, 8)), ("1X1", (1, 1)), (" 16x18", (16, 18))]
)
def test_parse_array(text: str, expected: tuple[int, int]) -> None:
    assert pyrtlnet.parse_array(text) == expected


@pytest.mark.parametrize("text", ["0x4", "4x0", "4", "4x", "x4", "-1x4", "4x4x4", "ax4", ""])
def test_parse_array_rejects(text: str) -> None:
    with pytest.raises(
        ValueError,
        match=rf"^array size must be ROWSxCOLS with positive integers, like 4x8, not {text!r}$",
    ):
        pyrtlnet.parse_array(text)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            {"architecture": "pipelined"},
            "architecture must be one of shared, per-layer, not 'pipelined'",
        ),
        ({"rounding": "fast"}, "rounding must be one of xnnpack, builtin, reference, not 'fast'"),
        ({"batch_size": 0}, "batch size must be a positive integer, not 0"),
        ({"array": (0, 4)}, "array rows must be a positive integer, not 0"),
        ({"array": (4, -2)}, "array cols must be a positive integer, not -2"),
        ({"array": (4, 4, 4)}, "array must be a (rows, cols) pair, not (4, 4, 4)"),
        (
            {"architecture": "per-layer", "array": (2, 2)},
            "the per-layer architecture sizes its arrays itself (batch size x units); "
            "do not give an array size",
        ),
        (
            {"batch_size": 500, "array": (1, 8)},
            "batch size 500 does not fit the input memory: it needs 72000 words, at most 65536; "
            "use a smaller batch size or more array rows",
        ),
        (
            {"array": (64, 65)},
            "the arrays would have 4160 multiply-accumulate elements, at most 1024 are "
            "supported; use a smaller array or batch size",
        ),
        (
            {"architecture": "per-layer", "batch_size": 200},
            "the arrays would have 5600 multiply-accumulate elements, at most 1024 are "
            "supported; use a smaller array or batch size",
        ),
    ],
)
def test_make_plan_errors(default_model: Model, kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{re.escape(message)}$"):
        pyrtlnet.make_plan(default_model, **kwargs)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"array": "4x4"}, "array must be a (rows, cols) pair, not '4x4'"),
        ({"batch_size": "4"}, "batch size must be a positive integer, not '4'"),
        ({"batch_size": True}, "batch size must be a positive integer, not True"),
        ({"batch_size": 2.0}, "batch size must be a positive integer, not 2.0"),
        ({"array": (4, None)}, "array cols must be a positive integer, not None"),
        ({"rounding": None}, "rounding must be one of xnnpack, builtin, reference, not None"),
        ({"architecture": 1}, "architecture must be one of shared, per-layer, not 1"),
    ],
)
def test_make_plan_type_errors(
    default_model: Model, kwargs: dict[str, object], message: str
) -> None:
    with pytest.raises(TypeError, match=f"^{re.escape(message)}$"):
        pyrtlnet.make_plan(default_model, **kwargs)


def test_numpy_integers_are_integers(default_model: Model) -> None:
    plan = pyrtlnet.make_plan(
        default_model, array=(np.int64(2), np.uint8(3)), batch_size=np.int32(5)
    )
    assert (plan.engines[0].rows, plan.engines[0].cols, plan.batch_size) == (2, 3, 5)
    assert type(plan.batch_size) is int


def test_plan_pickles(default_model: Model) -> None:
    """Worker processes receive the plan itself (run_parallel pickles it)."""
    plan = pyrtlnet.make_plan(default_model, array=(2, 3), batch_size=3, rounding="builtin")
    back = pickle.loads(pickle.dumps(plan))
    assert back.engines[0].weight_words == plan.engines[0].weight_words
    assert (back.cycles_per_batch, back.rounding, back.model.path) == (
        plan.cycles_per_batch,
        plan.rounding,
        plan.model.path,
    )
    np.testing.assert_array_equal(
        back.model.layers[1].weights, default_model.layers[1].weights, strict=True
    )


def test_shared_plan(default_model: Model) -> None:
    plan = pyrtlnet.make_plan(default_model, array=(3, 5), batch_size=7, rounding="builtin")
    assert plan.requant_method == "double_round"
    assert plan.lanes == 3
    assert plan.m_tiles == 3
    assert plan.memory_words == (3 * 144, 3 * 18, 3 * 10)
    (engine,) = plan.engines
    assert (engine.rows, engine.cols, engine.layers) == (3, 5, (0, 1))
    # Layer 0 has ceil(18/5) = 4 column tiles of 144 words, then layer 1's 2 tiles of 18.
    assert engine.weight_bases == (0, 4 * 144)
    assert len(engine.weight_words) == 4 * 144 + 2 * 18
    assert engine.constant_bases == (0, 18)
    # The weight ROM is the B layout: column tile nt of layer 1 read back as W.T rows.
    words = engine.weight_words[4 * 144 :]
    w = default_model.layers[1].weights
    back = unpack_a(words, m=10, k=18, rows=5)  # the B layout is the A layout of W.T
    np.testing.assert_array_equal(back, w.T.astype(np.int64), strict=True)


def test_per_layer_plan(default_model: Model) -> None:
    plan = pyrtlnet.make_plan(default_model, architecture="per-layer", batch_size=4)
    assert [(e.rows, e.cols, e.layers) for e in plan.engines] == [(4, 18, (0,)), (4, 10, (1,))]
    assert plan.lanes == 4
    assert plan.m_tiles == 1
    assert plan.memory_words == (144, 18, 10)


@pytest.mark.parametrize(("batch_size", "array"), [(1, (1, 16)), (7, (7, 16)), (40, (16, 16))])
def test_default_array(default_model: Model, batch_size: int, array: tuple[int, int]) -> None:
    """One row per image of a batch (at most 16), 16 columns."""
    assert pyrtlnet.default_array(batch_size) == array
    plan = pyrtlnet.make_plan(default_model, batch_size=batch_size)
    assert (plan.engines[0].rows, plan.engines[0].cols) == array
    assert (plan.rounding, plan.requant_method) == ("xnnpack", "float32")
    assert pyrtlnet.DEFAULT_ARRAY == (1, 16)


def test_every_rounding_has_a_pyrtl_linalg_requantizer() -> None:
    import pyrtl_linalg

    assert set(pyrtlnet.ROUNDING_REQUANT_METHODS) == set(qnn_ref.ROUNDINGS)
    assert set(pyrtlnet.ROUNDING_REQUANT_METHODS.values()) <= set(pyrtl_linalg.REQUANT_METHODS)
