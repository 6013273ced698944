"""NumPy against LiteRT, bit for bit, on every kernel path, every layer and many models.

Besides MNIST through trained models, crafted models put chosen accumulators in front of
chosen scales: values where the candidate formulas for a path disagree. They pin down how each
path derives its constants (float32 or double products), not just that the common case agrees.
"""

import dataclasses
import re
from pathlib import Path

import numpy as np
import pytest

from qnn_ref import (
    ROUNDINGS,
    DenseLayer,
    Model,
    ModelError,
    Outputs,
    make_interpreter,
    quantize_multiplier,
    read_model,
    run_litert,
    run_numpy,
)
from qnn_ref.testing import write_model

ZERO_INPUT = np.zeros((1, 1), np.float32)


def assert_same(actual: Outputs, expected: Outputs) -> None:
    np.testing.assert_array_equal(actual.input, expected.input, strict=True)
    assert len(actual.layers) == len(expected.layers)
    for got, want in zip(actual.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)
    np.testing.assert_array_equal(actual.predictions, expected.predictions, strict=True)


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_default_model_all_test_images(default_model: Model, test_inputs, rounding: str) -> None:
    x = test_inputs(default_model.input_shape)
    assert len(x) == 10_000
    assert_same(
        run_numpy(default_model, x, rounding=rounding),
        run_litert(default_model, x, rounding=rounding),
    )


def test_paths_really_differ(default_model: Model, test_inputs) -> None:
    """The same file gives different int8 logits on different paths: naming the path matters."""
    x = test_inputs(default_model.input_shape)
    xnnpack, builtin = (run_litert(default_model, x, rounding=r).layers[-1] for r in ROUNDINGS[:2])
    differing = np.any(xnnpack != builtin, axis=1).sum()
    assert 50 < differing < 2000
    assert np.abs(xnnpack.astype(int) - builtin).max() == 1


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_ptq_models(ptq_models: dict[str, Model], test_inputs, rounding: str) -> None:
    for name, model in ptq_models.items():
        x = test_inputs(model.input_shape)[:5000]
        expected = run_litert(model, x, rounding=rounding)
        assert_same(run_numpy(model, x, rounding=rounding), expected)
        assert np.mean(expected.predictions == np.argmax(expected.layers[-1], axis=1)) == 1, name


def test_ptq_model_shapes(ptq_models: dict[str, Model]) -> None:
    """The fixture really covers the shapes the tests claim to cover."""
    summary = {
        name: (
            m.input_shape,
            [layer.units for layer in m.layers],
            m.float_input,
            {layer.per_channel for layer in m.layers},
            [layer.relu for layer in m.layers],
        )
        for name, m in ptq_models.items()
    }
    assert summary == {
        "8x8-12-int8": ((8, 8), [12, 10], False, {True}, [True, False]),
        "16x16-32-16-float": ((16, 16), [32, 16, 10], True, {True}, [True, True, False]),
        "28x28-32-24-16-12-linear": (
            (28, 28),
            [32, 24, 16, 12, 10],
            False,
            {True},
            [True, False, True, True, False],
        ),
        "12x12-18-per-tensor-float": ((12, 12), [18, 10], True, {False}, [True, False]),
        "10x10-linear-only": ((10, 10), [10], False, {True}, [False]),
    }


def test_float_input_ties(ptq_models: dict[str, Model], test_inputs) -> None:
    """A 16x16 resize makes exact .5 ties, where the reference QUANTIZE rounds differently."""
    model = ptq_models["16x16-32-16-float"]
    x = test_inputs(model.input_shape)
    inputs = {r: run_litert(model, x, rounding=r).input for r in ROUNDINGS}
    np.testing.assert_array_equal(inputs["xnnpack"], inputs["builtin"], strict=True)
    assert np.count_nonzero(inputs["xnnpack"] != inputs["reference"]) > 100


@pytest.mark.parametrize("batch_size", [1, 7, 64])
def test_batch_sizes(default_model: Model, test_inputs, batch_size: int) -> None:
    x = test_inputs(default_model.input_shape)[:150]
    for rounding in ROUNDINGS:
        assert_same(
            run_litert(default_model, x, rounding=rounding, batch_size=batch_size),
            run_numpy(default_model, x, rounding=rounding),
        )


def scale_candidates(weight_scale: np.float32) -> dict[str, float]:
    """``s_in * s_w / s_out`` as each plausible derivation computes it."""
    s_in, s_out = np.float32(S_IN), np.float32(S_OUT)
    return {
        "float32 product": float(np.float32(s_in * weight_scale)) / float(s_out),
        "double product": float(s_in) * float(weight_scale) / float(s_out),
        "float32 quotient": float(np.float32(s_in * weight_scale) / s_out),
        "double quotient": float(np.float32(float(s_in) * float(weight_scale) / float(s_out))),
    }


def near_rounding_boundaries(scale: float) -> np.ndarray:
    """Accumulators whose scaled value lies near ``k + 1/2`` for every int8 ``k``.

    Candidate arithmetics differ by far less than one output step, so they disagree only where
    the scaled value is close to a rounding boundary; random accumulators would rarely be.
    """
    centres = np.round((np.arange(-120, 120) + 0.5) / scale).astype(np.int64)
    return (centres[:, None] + np.arange(-3, 4)).ravel()


def apply(acc: np.ndarray, scale: float, arithmetic: str) -> np.ndarray:
    """Scale accumulators by one real scale with one candidate arithmetic (no zero point)."""
    if arithmetic == "float32":  # XNNPACK
        return np.rint(acc.astype(np.float32) * np.float32(scale)).astype(np.int64)
    if arithmetic == "double":  # C's round of the double product
        product = acc * scale
        whole = np.trunc(product)
        return (whole + np.sign(product) * (np.abs(product - whole) >= 0.5)).astype(np.int64)
    (m,), (shift,) = quantize_multiplier(np.array([scale]))
    if arithmetic == "single rounding":  # TFLite's TFLITE_SINGLE_ROUNDING integer formula
        total = 31 - shift
        return (acc * m + (1 << (total - 1))) >> total
    high = ((acc << max(shift, 0)) * m + (1 << 30)) >> 31  # gemmlowp-style double rounding
    right = max(-shift, 0)
    return (high + ((1 << right) >> 1)) >> right


S_IN, S_OUT = 0.0123, 9.7  # with weight scales near 0.0008, s_in * s_w / s_out is near 2**-20

#: (path, per-channel weights, (scale, arithmetic) the path uses, a candidate it does not use)
DERIVATIONS = [
    (
        "builtin",
        False,
        ("float32 product", "double rounding"),
        ("double product", "double rounding"),
    ),
    (
        "builtin",
        True,
        ("double product", "double rounding"),
        ("float32 product", "double rounding"),
    ),
    ("reference", False, ("double product", "double"), ("float32 product", "double")),
    ("reference", True, ("double product", "double"), ("double product", "single rounding")),
    ("xnnpack", False, ("float32 quotient", "float32"), ("double quotient", "float32")),
    ("xnnpack", True, ("float32 quotient", "float32"), ("double quotient", "float32")),
]


@pytest.mark.parametrize(("rounding", "per_channel", "used", "unused"), DERIVATIONS)
def test_scale_derivation(
    tmp_path: Path,
    rounding: str,
    per_channel: bool,
    used: tuple[str, str],
    unused: tuple[str, str],
) -> None:
    """Each path scales as claimed: crafted units on which the two candidates disagree."""
    rng = np.random.default_rng(11)
    accumulators: list[int] = []
    scales: list[np.float32] = []
    expected: list[int] = []
    while len(accumulators) < 8:
        weight_scale = np.float32(rng.uniform(0.0005, 0.001))
        candidates = scale_candidates(weight_scale)
        acc = near_rounding_boundaries(candidates[used[0]])
        right = apply(acc, candidates[used[0]], used[1])
        differ = np.flatnonzero(right != apply(acc, candidates[unused[0]], unused[1]))
        # One unit per scale with per-channel weights; eight units of one scale per tensor.
        take = differ[:1] if per_channel else (differ[:8] if len(differ) >= 8 else differ[:0])
        accumulators += acc[take].tolist()
        scales += [weight_scale] * len(take)
        expected += right[take].tolist()
    layer = DenseLayer(
        index=0,
        weights=np.zeros((1, 8), np.int8),
        bias=np.array(accumulators, np.int32),
        input_scale=float(np.float32(S_IN)),
        input_zero_point=0,
        weight_scales=np.array(scales, np.float32),
        per_channel=per_channel,
        output_scale=float(np.float32(S_OUT)),
        output_zero_point=0,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "crafted.tflite", [layer]))
    litert = run_litert(model, ZERO_INPUT, rounding=rounding)
    assert_same(run_numpy(model, ZERO_INPUT, rounding=rounding), litert)
    np.testing.assert_array_equal(litert.layers[0][0], np.array(expected, np.int8), strict=True)


def test_xnnpack_rounds_float32_twice(tmp_path: Path) -> None:
    """float32(acc), then the float32 product, each rounded: not one exact rounding."""
    layer = DenseLayer(
        index=0,
        weights=np.zeros((1, 3), np.int8),
        bias=np.array([16777217, 100003, 3], np.int32),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=np.array([401 * 2.0**-25, 4359261 * 2.0**-32, 1.1666666], np.float32),
        per_channel=True,
        output_scale=1.0,
        output_zero_point=-100,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "xnnpack.tflite", [layer]))
    x = np.zeros((1, 1), np.float32)
    litert = run_litert(model, x, rounding="xnnpack")
    assert_same(run_numpy(model, x, rounding="xnnpack"), litert)
    np.testing.assert_array_equal(litert.layers[0][0], np.array([100, 2, -96], np.int8))


def test_rounding_of_ties_and_double_rounding(tmp_path: Path) -> None:
    """acc / 16: ties go three ways, and builtin's double rounding takes 7 / 16 to 1."""
    accumulators = [8, -8, 24, -24, 7, -7]
    layer = DenseLayer(
        index=0,
        weights=np.zeros((1, 6), np.int8),
        bias=np.array(accumulators, np.int32),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=np.full(6, 2.0**-4, np.float32),
        per_channel=False,
        output_scale=1.0,
        output_zero_point=0,
        relu=False,
    )
    model = read_model(write_model(tmp_path / "ties.tflite", [layer]))
    x = np.zeros((1, 1), np.float32)
    results = {}
    for rounding in ROUNDINGS:
        results[rounding] = run_litert(model, x, rounding=rounding)
        assert_same(run_numpy(model, x, rounding=rounding), results[rounding])
    assert results["builtin"].layers[0][0].tolist() == [1, 0, 2, -1, 1, 0]
    assert results["reference"].layers[0][0].tolist() == [1, -1, 2, -2, 0, 0]  # ties away
    assert results["xnnpack"].layers[0][0].tolist() == [0, 0, 2, -2, 0, 0]  # ties to even


@pytest.mark.parametrize("batch_size", [None, 1])
def test_float_input_quantize_ties(tmp_path: Path, batch_size: int | None) -> None:
    """QUANTIZE ties: to even on XNNPACK and in builtin's 8-wide loop, else away from zero."""
    layer = DenseLayer(
        index=0,
        weights=np.eye(4, dtype=np.int8),
        bias=np.zeros(4, np.int32),
        input_scale=0.5,
        input_zero_point=3,
        weight_scales=np.ones(4, np.float32),
        per_channel=True,
        output_scale=0.5,
        output_zero_point=0,
        relu=False,
    )
    model = read_model(
        write_model(tmp_path / "q.tflite", [layer], float_input=True, float_output=True)
    )
    x = np.array([[0.25, 0.75, -0.25, 1.25]] * 3, np.float32)  # x / 0.5 = 0.5, 1.5, -0.5, 2.5
    even, away = [3, 5, 3, 5], [4, 5, 2, 6]
    expected = {
        "xnnpack": [even] * 3,
        # 12 values in one invoke: 8 in the vector loop, 4 in the scalar tail; 4 per invoke: all
        "builtin": [even, even, away] if batch_size is None else [away] * 3,
        "reference": [away] * 3,
    }
    for rounding in ROUNDINGS:
        litert = run_litert(model, x, rounding=rounding, batch_size=batch_size)
        assert_same(run_numpy(model, x, rounding=rounding, batch_size=batch_size), litert)
        assert litert.input.tolist() == expected[rounding]


def test_rejects_bad_batch_size(default_model: Model) -> None:
    x = np.zeros((3, 144), np.float32)
    for bad in (0, -1, 2.5, True):
        with pytest.raises(
            ValueError, match=rf"^batch_size must be a positive integer, not {bad!r}$"
        ):
            run_litert(default_model, x, batch_size=bad)  # type: ignore[arg-type]


def test_rejects_bad_input(default_model: Model) -> None:
    with pytest.raises(ValueError, match=r"^input must be a float array of shape \[N, 144\]"):
        run_litert(default_model, np.zeros((3, 100), np.float32))


def test_interpreter_cannot_load(default_model: Model, tmp_path: Path) -> None:
    """A model whose file changed since it was read: LiteRT's error becomes a ModelError."""
    path = tmp_path / "gone.tflite"
    path.write_bytes(b"TFL3" * 10)
    message = re.escape(f"{path}: LiteRT cannot load the model (") + r".+\); export the model again"
    with pytest.raises(ModelError, match=f"^{message}$"):
        make_interpreter(dataclasses.replace(default_model, path=path))


def test_empty_batch(default_model: Model) -> None:
    outputs = run_litert(default_model, np.zeros((0, 144), np.float32))
    assert outputs.input.shape == (0, 144)
    assert outputs.layers[-1].shape == (0, 10)


# Where the arithmetic leaves int32: crafted layers whose bias is the accumulator (one zero
# input), against the interpreter. The expected values were measured with the interpreter and
# follow from C's int32 arithmetic on x86: they are what the docs' formulas give.


def edge_layer(
    bias: list[int],
    scale: float,
    *,
    zero_point: int = 0,
    relu: bool = False,
    weights: np.ndarray | None = None,
    input_zero_point: int = 0,
) -> DenseLayer:
    """One layer with requantization scale ``scale`` (s_in = s_out = 1, per tensor)."""
    units = len(bias)
    return DenseLayer(
        index=0,
        weights=np.zeros((1, units), np.int8) if weights is None else weights,
        bias=np.array(bias, np.int32),
        input_scale=1.0,
        input_zero_point=input_zero_point,
        weight_scales=np.full(units, scale, np.float32),
        per_channel=False,
        output_scale=1.0,
        output_zero_point=zero_point,
        relu=relu,
    )


def litert_and_numpy(
    tmp_path: Path, layer: DenseLayer, rounding: str, x: np.ndarray = ZERO_INPUT
) -> list[int]:
    """The layer's int8 output for the first image, the same from LiteRT and from NumPy."""
    model = read_model(write_model(tmp_path / "edge.tflite", [layer]))
    litert = run_litert(model, x, rounding=rounding)
    assert_same(run_numpy(model, x, rounding=rounding), litert)
    return litert.layers[0][0].tolist()


def test_builtin_left_shift_wraps(tmp_path: Path) -> None:
    """Scale 2024.1 (shift 11): ``acc << 11`` wraps in int32 before the high multiply."""
    layer = edge_layer([-1850631, 1850631, -1000, 100000], 2024.1, relu=True)
    assert layer.integer_multipliers("builtin")[1].tolist() == [11] * 4
    # -1850631 << 11 wraps to +504875008; 1850631 << 11 to -504875008.
    assert litert_and_numpy(tmp_path, layer, "builtin") == [127, 0, 0, 127]
    # The reference path scales in double: 1850631 * 2024.1 leaves int32 -> INT32_MIN.
    assert litert_and_numpy(tmp_path, layer, "reference") == [0, 0, 0, 127]


@pytest.mark.parametrize(
    ("zero_point", "expected"),
    [(-17, [127] * 4), (17, [-128] * 4)],
)
def test_reference_product_outside_int32_is_int32_min(
    tmp_path: Path, zero_point: int, expected: list[int]
) -> None:
    """Scale 1.7e5: every product leaves int32, converts to INT32_MIN, then ``+ z`` wraps."""
    layer = edge_layer([-48260, 48260, 12633, -12633], 1.7e5, zero_point=zero_point)
    assert litert_and_numpy(tmp_path, layer, "reference") == expected


@pytest.mark.parametrize(
    ("zero_point", "expected"),
    [
        (0, [-128, 127, -128, -128]),
        (2, [-128, -128, -128, -128]),  # 2147483646 + 2 wraps
        (-1, [127, 127, 127, -128]),  # -2147483648 - 1 wraps
        (-3, [127, 127, 127, 127]),  # -2147483646 - 3 wraps
    ],
)
def test_reference_int32_limits(tmp_path: Path, zero_point: int, expected: list[int]) -> None:
    """acc * 1.5 = ±2147483647.5 rounds away to ±2**31; ±2147483646 stays in int32."""
    layer = edge_layer(
        [1431655765, 1431655764, -1431655765, -1431655764], 1.5, zero_point=zero_point
    )
    assert litert_and_numpy(tmp_path, layer, "reference") == expected


def test_builtin_zero_point_addition_wraps(tmp_path: Path) -> None:
    """M = 2147483640, shift 0: acc = 2**31 - 1 scales to 2147483639, and ``+ 127`` wraps."""
    scales = [0.8905952572822571, 1.0, 1.0, 1.0]
    layer = dataclasses.replace(
        edge_layer([2**31 - 1, 2**31 - 2, 2**31 - 128, 5], 1.0, zero_point=127),
        input_scale=0.9970133900642395,
        weight_scales=np.array(scales, np.float32),
        per_channel=True,
        output_scale=0.8879354000091553,
    )
    multipliers, shifts = layer.integer_multipliers("builtin")
    assert (multipliers[0], shifts[0]) == (2147483640, 0)
    assert shifts[1:].tolist() == [1, 1, 1]  # the others' left shift wraps as well
    assert litert_and_numpy(tmp_path, layer, "builtin") == [-128, 125, -17, 127]


@pytest.mark.parametrize(
    ("zero_point", "expected"),
    [(-1, [127, 127, -128, 127, 127]), (0, [-128, -128, -128, -128, 127])],
)
def test_xnnpack_below_int32_min_wraps(
    tmp_path: Path, zero_point: int, expected: list[int]
) -> None:
    """XNNPACK clamps only from above in float32: ``fl(acc * 2) <= -2**31`` converts to
    INT32_MIN, and a negative zero point wraps it; -2**31 + 128 does not."""
    layer = edge_layer([-(2**30), -(2**30) + 1, -(2**30) + 64, -(2**31), 2**31 - 1], 2.0)
    layer = dataclasses.replace(layer, output_zero_point=zero_point)
    assert litert_and_numpy(tmp_path, layer, "xnnpack") == expected


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_accumulator_wraps(tmp_path: Path, rounding: str) -> None:
    """bias 2147480647 + 18653 = 2147499300 wraps to -2147467996 on every path."""
    weights = np.array([[127, 127, -127], [111, -111, -111]], np.int8)
    layer = edge_layer(
        [2147480647, -2147480647, -2147480647],
        2.0**-25,
        zero_point=-128,
        weights=weights,
        input_zero_point=-128,
    )
    x = np.array([[146.0, 1.0]], np.float32)  # q - z_in = 146, 1: dot products ±18653
    # Exact: 2147499300 * 2**-25 = 64.0006 -> -64; wrapped: -64 -> -192 -> -128.
    # -2147480647 - 18653 wraps to +2147467996: 64 - 128 = -64 instead of -128.
    assert litert_and_numpy(tmp_path, layer, rounding, x) == [-128, -128, -64]


def refuses(model: Model, rounding: str) -> bool:
    """Whether LiteRT itself fails to prepare the model on the path."""
    interpreter = make_interpreter(model, rounding=rounding)
    try:
        interpreter.allocate_tensors()
    except RuntimeError:
        return True
    return False


def test_xnnpack_refuses_scales_of_256_or_more(tmp_path: Path) -> None:
    """XNNPACK's limit is on the float32 scale: fl(fl(s_in * s_w) / s_out) < 256."""
    below = float(np.nextafter(np.float32(256), np.float32(0)))
    # (s_in, s_w, s_out, refused). The last is 255.9999989 in double but 256 in float32, so a
    # double-precision limit would accept it.
    cases = [
        (1.0, below, 1.0, False),
        (1.0, 256.0, 1.0, True),
        (1.2677323818206787, 388.86602783203125, 1.925695538520813, True),
    ]
    for s_in, s_w, s_out, refused in cases:
        layer = dataclasses.replace(
            edge_layer([1000, -1000], s_w), input_scale=s_in, output_scale=s_out
        )
        model = read_model(write_model(tmp_path / "scale.tflite", [layer]))
        assert (float(layer.double_scales()[0]) >= 256) == (s_w == 256.0)
        assert (float(layer.float_scales()[0]) >= 256) == refused
        assert refuses(model, "xnnpack") == refused, (s_in, s_w, s_out)
        assert ("xnnpack" in model.roundings) != refused
        for rounding in ("builtin", "reference"):
            assert not refuses(model, rounding)
            assert_same(
                run_numpy(model, ZERO_INPUT, rounding=rounding),
                run_litert(model, ZERO_INPUT, rounding=rounding),
            )


def test_a_model_xnnpack_cannot_run(tmp_path: Path) -> None:
    """Every backend says so in one line, naming the layer, its scale and the paths that can."""
    first = dataclasses.replace(edge_layer([5, 5], 0.5, relu=True), output_scale=1.0)
    second = dataclasses.replace(edge_layer([0, 0], 1.0), weights=np.eye(2, dtype=np.int8))
    second = dataclasses.replace(
        second, index=1, weight_scales=np.array([3.0, 2024.1], np.float32), per_channel=True
    )
    model = read_model(write_model(tmp_path / "big.tflite", [first, second]))
    assert refuses(model, "xnnpack")
    assert model.roundings == ("builtin", "reference")
    message = (
        f"{model.path}: layer 1's requantization scale 2024.1 (output channel 1) is not below "
        "256, so LiteRT's default interpreter (XNNPACK) cannot run the model; use the builtin "
        "or reference path, which can"
    )
    for run in (run_litert, run_numpy):
        with pytest.raises(ModelError, match=f"^{re.escape(message)}$"):
            run(model, ZERO_INPUT, rounding="xnnpack")
    for rounding in ("builtin", "reference"):
        assert_same(
            run_numpy(model, ZERO_INPUT, rounding=rounding),
            run_litert(model, ZERO_INPUT, rounding=rounding),
        )


def test_builtin_and_reference_check_the_bias_scale(tmp_path: Path) -> None:
    """|s_in * s_w - s_bias| / s_out <= 0.02, in double, for a layer with one weight scale."""
    layer = edge_layer([5, 5], 0.5)
    for offset, refused in ((0.019, False), (0.021, True)):
        crafted = dataclasses.replace(layer, bias_scale=0.5 + offset)
        model = read_model(write_model(tmp_path / "offset.tflite", [crafted]))
        assert model.layers[0].bias_scale == float(np.float32(0.5 + offset))
        for rounding in ("builtin", "reference"):
            assert refuses(model, rounding) == refused
        assert model.roundings == (("xnnpack",) if refused else ROUNDINGS)
    # The converter's float32 product s_in * s_w is 0.059 output scales off the double one.
    s_in, s_w, s_out = 4.096765518188477, 949180.56, 0.861167848110199
    layer = dataclasses.replace(layer, input_scale=s_in, output_scale=s_out)
    layer = dataclasses.replace(layer, weight_scales=np.full(2, s_w, np.float32))
    model = read_model(write_model(tmp_path / "float32.tflite", [layer]))
    assert model.layers[0].bias_scale == float(np.float32(s_in) * np.float32(s_w))
    assert model.roundings == ()  # and the scale, 4.5e6, is too large for XNNPACK
    for rounding in ("builtin", "reference"):
        assert refuses(model, rounding)
        with pytest.raises(
            ModelError,
            match=rf"^{re.escape(str(model.path))}: layer 0's bias scale differs from input "
            r"scale \* weight scale by 0\.0592 output scales, more than 0\.02, so LiteRT's "
            rf"{rounding} kernels cannot run the model; no LiteRT path can run it; export the "
            r"model again$",
        ):
            run_numpy(model, ZERO_INPUT, rounding=rounding)
