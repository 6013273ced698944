"""The NumPy reference against independent scalar implementations of each kernel's arithmetic.

Bit-exactness with LiteRT itself is tested in test_litert.py; here every formula is written out
a second time, one value at a time, with Python integers, fractions or NumPy float32 scalars,
and C's int32 arithmetic (two's complement wrap-around) comes from fxpmath.
"""

import dataclasses
import math
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from fxpmath import Fxp

from qnn_ref import (
    DenseLayer,
    Model,
    Outputs,
    accumulate,
    quantize_input,
    quantize_multiplier,
    requantize,
    run_layers,
    run_numpy,
)

INT32_MIN = -(2**31)


_INT32_WORD = Fxp(None, signed=True, n_word=32, n_frac=0, overflow="wrap")


def int32(value: int) -> int:
    """``value`` as C's int32 arithmetic leaves it: fxpmath's 32-bit two's complement wrap."""
    _INT32_WORD.set_val(value, raw=True)
    return int(_INT32_WORD.val)


def to_int32(value: int) -> int:
    """x86's conversion of an integral double to int32: INT32_MIN if it does not fit."""
    return value if INT32_MIN <= value < 2**31 else INT32_MIN


def saturating_rounding_doubling_high_mul(a: int, b: int) -> int:
    """gemmlowp's SaturatingRoundingDoublingHighMul, with C's truncating division."""
    if a == b == INT32_MIN:
        return 2**31 - 1
    ab = a * b
    nudge = 2**30 if ab >= 0 else 1 - 2**30
    total = ab + nudge
    return abs(total) // 2**31 * (1 if total >= 0 else -1)


def builtin_scalar(acc: int, multiplier: int, shift: int, zero_point: int = 0) -> int:
    """The optimized builtin kernels: double rounding, the final shift's ties toward +inf, and
    int32 wrap-around in the left shift and the zero-point addition."""
    left, right = max(shift, 0), max(-shift, 0)
    high = saturating_rounding_doubling_high_mul(int32(int32(acc) * 2**left), multiplier)
    return int32(math.floor(Fraction(high, 2**right) + Fraction(1, 2)) + zero_point)


def reference_scalar(acc: int, scale: float, zero_point: int = 0) -> int:
    """The reference kernels: ``acc * scale`` in double, C's round (ties away from zero), the
    x86 conversion to int32, then the zero point added in int32."""
    product = Fraction(float(int32(acc)) * scale)  # the double product, then exact arithmetic
    rounded = math.floor(abs(product) + Fraction(1, 2)) * (1 if product >= 0 else -1)
    return int32(to_int32(rounded) + zero_point)


def xnnpack_scalar(acc: int, scale: np.float32, zero_point: int = 0, high: int = 127) -> int:
    """XNNPACK: float32 product (rounds once), clamped from above in float32, rint, the x86
    conversion to int32, then the zero point added in int32."""
    product = np.float32(int32(acc)) * scale  # float32 * float32 rounds once, to float32
    product = min(product, np.float32(high - zero_point))
    return int32(to_int32(int(np.rint(product))) + zero_point)


def make_layer(units: int, scale: float, *, zero_point: int = 0, relu: bool = False) -> DenseLayer:
    rng = np.random.default_rng(units)
    return DenseLayer(
        index=0,
        weights=np.zeros((1, units), np.int8),
        bias=np.zeros(units, np.int32),
        input_scale=1.0,
        input_zero_point=0,
        weight_scales=rng.uniform(0.5, 1.0, units).astype(np.float32) * np.float32(scale),
        per_channel=True,
        output_scale=1.0,
        output_zero_point=zero_point,
        relu=relu,
    )


@pytest.mark.parametrize("rounding", ["xnnpack", "builtin", "reference"])
@pytest.mark.parametrize(
    ("scale", "zero_point"),
    [
        (2.0**-20, -5),
        (3e-4, -5),
        (0.01, 100),
        (0.4, -5),
        (3.0, -5),
        # Scales of 1 or more take accumulators beyond int32 (left shift, conversion, z).
        (17.0, -100),
        (300.0, 127),
        (2024.1, 0),
        (1.7e5, -17),
        (1e6, 5),
    ],
)
def test_requantize_against_scalar(rounding: str, scale: float, zero_point: int) -> None:
    layer = make_layer(8, scale, zero_point=zero_point)
    rng = np.random.default_rng(7)
    limit = min(2**31 - 1, max(int(200 / scale), 2))  # where outputs stay in range
    acc = np.concatenate(
        [
            rng.integers(-limit, limit, (150, 8)),
            rng.integers(INT32_MIN, 2**31, (50, 8)),  # the whole int32 range
            rng.integers(-(2**40), 2**40, (10, 8)),  # exact sums beyond int32: they wrap
        ]
    )
    acc[:6] = [[0] * 8, [1] * 8, [-1] * 8, [limit] * 8, [INT32_MIN] * 8, [2**31 - 1] * 8]
    actual = requantize(layer, acc, rounding=rounding)
    multipliers, shifts = layer.integer_multipliers(rounding)
    scales = layer.float_scales()
    expected = np.empty_like(actual)
    for (i, c), value in np.ndenumerate(acc):
        if rounding == "xnnpack":
            scaled = xnnpack_scalar(int(value), scales[c], zero_point)
        elif rounding == "builtin":
            scaled = builtin_scalar(int(value), int(multipliers[c]), int(shifts[c]), zero_point)
        else:
            scaled = reference_scalar(int(value), float(layer.double_scales()[c]), zero_point)
        expected[i, c] = min(max(scaled, -128), 127)
    np.testing.assert_array_equal(actual, expected, strict=True)


def test_int32_wraps_like_c() -> None:
    """The oracle's int32 (fxpmath) agrees with C on the values the tests rely on."""
    assert [int32(v) for v in (2**31, -(2**31) - 1, 2**32 + 5, -1850631 * 2**11)] == [
        INT32_MIN,
        2**31 - 1,
        5,
        504875008,
    ]


@pytest.mark.parametrize("scale", [2.0**-33, 1e-9, 3e-4, 0.5, 1.0, 2024.1, 1.7e5, 1e6])
def test_quantize_multiplier_fixed_point_view(scale: float) -> None:
    """``M`` read as an unsigned Q0.31 fixed-point number (fxpmath) is ``scale / 2**shift``
    rounded to 31 fraction bits, in ``[1/2, 1)``."""
    (m,), (shift,) = quantize_multiplier(np.array([scale]))
    q31 = Fxp(None, signed=False, n_word=31, n_frac=31)
    q31.set_val(int(m), raw=True)
    value = Fraction(float(q31.get_val()))
    if scale < 2.0**-32:
        assert (m, shift) == (0, 0)  # too small for a shift of -31: zero
        return
    assert Fraction(1, 2) <= value < 1
    assert abs(value * Fraction(2) ** int(shift) - Fraction(scale)) <= Fraction(2) ** (
        int(shift) - 32
    )


@pytest.mark.parametrize(
    ("acc", "scale", "expected"),
    [
        (16777217, 401 * 2.0**-25, 200),  # float32(acc) is inexact: 200.5 rounds to even
        (100003, 4359261 * 2.0**-32, 102),  # the float32 product 101.4999993... rounds to 101.5
        (3, float(np.float32(1.1666666)), 4),
    ],
)
def test_xnnpack_double_rounding_cases(acc: int, scale: float, expected: int) -> None:
    """Cases where one exact rounding of acc * scale would give a different answer."""
    layer = dataclasses.replace(
        make_layer(1, 1.0, zero_point=-100), weight_scales=np.array([scale], np.float32)
    )
    assert layer.float_scales()[0] == np.float32(scale)
    actual = requantize(layer, np.array([[acc]]), rounding="xnnpack")
    assert int(actual[0, 0]) == expected - 100
    assert round(acc * scale) != expected


def test_builtin_rounds_twice_reference_once() -> None:
    """Builtin: high multiply, then a shift with ties toward +inf; reference: ties away."""
    layer = dataclasses.replace(make_layer(1, 1.0), weight_scales=np.array([2.0**-4], np.float32))
    assert layer.integer_multipliers("builtin") == (np.array([2**30]), np.array([-3]))
    acc = np.array([[8], [-8], [24], [-24], [7], [-7]])  # acc / 16 = ±0.5, ±1.5, ±0.4375
    builtin = requantize(layer, acc, rounding="builtin")[:, 0].tolist()
    reference = requantize(layer, acc, rounding="reference")[:, 0].tolist()
    assert reference == [1, -1, 2, -2, 0, 0]  # ties away from zero
    assert builtin == [1, 0, 2, -1, 1, 0]  # 7/16: 7/2 = 3.5 rounds up to 4, then 4/8 to 1
    assert [builtin_scalar(int(a), 2**30, -3) for a in acc[:, 0]] == builtin


def test_relu_clamps_at_the_zero_point() -> None:
    layer = make_layer(3, 1.0, zero_point=-20, relu=True)
    acc = np.array([[-1000, 0, 1000]])
    for rounding in ("xnnpack", "builtin", "reference"):
        out = requantize(layer, acc, rounding=rounding)
        assert out[0, 0] == -20
        assert out[0, 2] == 127


def float_model(scale: float, zero_point: int, *, float_input: bool) -> Model:
    layer = dataclasses.replace(
        make_layer(2, 1.0),
        weights=np.zeros((4, 2), np.int8),
        input_scale=scale,
        input_zero_point=zero_point,
    )
    return Model(
        path=Path("unused.tflite"),
        input_shape=(2, 2),
        input_scale=scale,
        input_zero_point=zero_point,
        float_input=float_input,
        float_output=float_input,
        layers=(layer,),
    )


def test_quantize_input_ties() -> None:
    """Ties: to even on XNNPACK and in builtin's vector loop, away from zero elsewhere."""
    x = np.array([[0.25, 0.75, -0.25, 1.25]] * 2, np.float32)  # x / 0.5 = 0.5, 1.5, -0.5, 2.5
    model = float_model(0.5, 3, float_input=True)
    even, away = [3, 5, 3, 5], [4, 5, 2, 6]
    cases = [
        ("xnnpack", None, [even, even]),
        ("builtin", None, [even, even]),  # 8 values: all in the vector loop
        ("builtin", 1, [away, away]),  # 4 values per invoke: all in the scalar tail
        ("reference", None, [away, away]),
    ]
    for rounding, batch_size, expected in cases:
        np.testing.assert_array_equal(
            quantize_input(model, x, rounding=rounding, batch_size=batch_size),
            np.array(expected, np.int8),
            strict=True,
        )
    tail = quantize_input(model, np.concatenate([x, x[:1]]), rounding="builtin")
    np.testing.assert_array_equal(tail, np.array([even, even, away], np.int8), strict=True)


def test_quantize_input_int8_model_has_one_rule() -> None:
    x = np.array([[0.25, 0.75, -0.25, 1.25]], np.float32)
    model = float_model(0.5, 3, float_input=False)
    results = [quantize_input(model, x, rounding=r) for r in ("xnnpack", "builtin", "reference")]
    for result in results:
        np.testing.assert_array_equal(result, np.array([[3, 5, 3, 5]], np.int8), strict=True)


def test_quantize_input_against_scalar(test_inputs) -> None:
    """float32 inverse scale, float32 product, rint; saturation at both ends."""
    scale = float(np.float32(1 / 255))
    model = float_model(scale, -128, float_input=True)
    model = dataclasses.replace(
        model,
        layers=(dataclasses.replace(model.layers[0], weights=np.zeros((144, 2), np.int8)),),
        input_shape=(12, 12),
    )
    x = test_inputs((12, 12))[:20].copy()
    x[0, :3] = [-1.0, 2.0, 0.5]
    inverse = np.float32(1) / np.float32(scale)

    def clamp(value: int) -> int:
        return min(max(value - 128, -128), 127)

    def half_away(value: float) -> int:
        return int(math.copysign(math.floor(abs(value) + 0.5), value))

    even = np.array([[clamp(int(np.rint(v * inverse))) for v in row] for row in x], np.int8)
    np.testing.assert_array_equal(quantize_input(model, x), even, strict=True)
    away = np.array([[clamp(half_away(v / np.float32(scale))) for v in row] for row in x], np.int8)
    np.testing.assert_array_equal(quantize_input(model, x, rounding="reference"), away, strict=True)


def test_quantize_input_rejects(default_model: Model) -> None:
    with pytest.raises(
        ValueError,
        match=r"^input must be a float array of shape \[N, 144\], not uint8 of shape "
        r"\[2, 12, 12\]$",
    ):
        quantize_input(default_model, np.zeros((2, 12, 12), np.uint8))
    with pytest.raises(ValueError, match=r"^rounding must be one of"):
        quantize_input(default_model, np.zeros((2, 144), np.float32), rounding="exact")


def accumulate_int64(layer: DenseLayer, x: np.ndarray) -> np.ndarray:
    return (x.astype(np.int64) - layer.input_zero_point) @ layer.weights.astype(
        np.int64
    ) + layer.bias


@pytest.mark.parametrize("in_features", [144, 1024, 1025, 4096, 65536])
def test_accumulation_is_exact_at_the_extremes(in_features: int) -> None:
    """The float BLAS product gives the exact accumulators even at the largest magnitudes,
    wrapped to int32 as the kernels' are (Python integers and fxpmath's wrap as the oracle)."""
    weights = np.full((in_features, 3), -128, np.int8)
    weights[:, 1] = 127
    weights[::2, 2] = 127
    layer = DenseLayer(
        index=0,
        weights=weights,
        bias=np.array([7, -7, 2**31 - 1], np.int32),
        input_scale=1.0,
        input_zero_point=127,
        weight_scales=np.full(3, 2.0**-23, np.float32),
        per_channel=True,
        output_scale=1.0,
        output_zero_point=0,
        relu=False,
    )
    model = Model(
        path=Path("unused.tflite"),
        input_shape=(1, in_features),
        input_scale=1.0,
        input_zero_point=127,
        float_input=False,
        float_output=False,
        layers=(layer,),
    )
    q = np.full((3, in_features), -128, np.int8)
    q[1, ::3] = 127
    q[2, 1::2] = 127
    exact = (q.astype(object) - 127) @ weights.astype(object) + layer.bias.astype(object)
    assert max(abs(v) for v in exact.flat) >= in_features * 255 * 127 - 7
    wrapped = np.array([[int32(v) for v in row] for row in exact], np.int32)
    assert (wrapped != exact).any()  # channel 2's sums leave int32
    np.testing.assert_array_equal(accumulate(layer, q), wrapped, strict=True)
    for rounding in ("xnnpack", "builtin", "reference"):
        expected = requantize(layer, wrapped, rounding=rounding)
        assert len(np.unique(expected)) > 2  # the scale keeps the outputs apart
        np.testing.assert_array_equal(
            run_layers(model, q, rounding=rounding).layers[0], expected, strict=True
        )


def test_accumulate_rejects() -> None:
    layer = make_layer(3, 1.0)
    with pytest.raises(
        ValueError,
        match=r"^quantized input must be an int8 array of shape \[N, 1\], not int16 of shape "
        r"\[2, 1\]$",
    ):
        accumulate(layer, np.zeros((2, 1), np.int16))


def test_run_numpy_layer_by_layer(default_model: Model, test_inputs) -> None:
    x = test_inputs(default_model.input_shape)[:500]
    for rounding in ("xnnpack", "builtin", "reference"):
        outputs = run_numpy(default_model, x, rounding=rounding)
        value = quantize_input(default_model, x, rounding=rounding)
        np.testing.assert_array_equal(outputs.input, value, strict=True)
        for layer, actual in zip(default_model.layers, outputs.layers, strict=True):
            value = requantize(layer, accumulate_int64(layer, value), rounding=rounding)
            np.testing.assert_array_equal(actual, value, strict=True)
        np.testing.assert_array_equal(
            outputs.predictions, np.argmax(value, axis=1).astype(np.int64), strict=True
        )


def test_argmax_ties_go_to_the_lowest_index() -> None:
    layer = dataclasses.replace(
        make_layer(4, 1.0),
        weights=np.zeros((1, 4), np.int8),
        bias=np.array([5, 9, 9, 9], np.int32),
        weight_scales=np.ones(4, np.float32),
    )
    model = Model(
        path=Path("unused.tflite"),
        input_shape=(1, 1),
        input_scale=1.0,
        input_zero_point=0,
        float_input=False,
        float_output=False,
        layers=(layer,),
    )
    outputs = run_layers(model, np.zeros((3, 1), np.int8))
    np.testing.assert_array_equal(outputs.predictions, np.array([1, 1, 1]), strict=True)


def test_run_layers_rejects(default_model: Model) -> None:
    with pytest.raises(
        ValueError,
        match=r"^quantized input must be an int8 array of shape \[N, 144\], not int32 of shape "
        r"\[3, 144\]$",
    ):
        run_layers(default_model, np.zeros((3, 144), np.int32))


def test_to_npz(tmp_path: Path, default_model: Model, test_inputs) -> None:
    outputs = run_numpy(default_model, test_inputs((12, 12))[:7])
    labels = np.arange(7, dtype=np.uint8)
    indices = np.arange(10, 17)
    outputs.to_npz(tmp_path / "dump.npz", labels=labels, image_indices=indices)
    with np.load(tmp_path / "dump.npz") as dump:
        assert sorted(dump.files) == sorted(
            ["input", "layer0", "layer1", "predictions", "labels", "image_indices"]
        )
        np.testing.assert_array_equal(dump["input"], outputs.input, strict=True)
        np.testing.assert_array_equal(dump["layer1"], outputs.layers[1], strict=True)
        np.testing.assert_array_equal(dump["predictions"], outputs.predictions, strict=True)
        np.testing.assert_array_equal(dump["labels"], labels, strict=True)
        np.testing.assert_array_equal(dump["image_indices"], indices, strict=True)
    with pytest.raises(
        ValueError, match=r"^labels must have shape \[7\] like the outputs, not \[6\]$"
    ):
        outputs.to_npz(tmp_path / "bad.npz", labels=labels[:6], image_indices=indices)


def test_outputs_types(default_model: Model, test_inputs) -> None:
    outputs = run_numpy(default_model, test_inputs((12, 12))[:3])
    assert isinstance(outputs, Outputs)
    assert outputs.input.dtype == np.int8
    assert outputs.input.shape == (3, 144)
    assert [layer.shape for layer in outputs.layers] == [(3, 18), (3, 10)]
    assert all(layer.dtype == np.int8 for layer in outputs.layers)
    assert outputs.predictions.dtype == np.int64
