"""``Outputs.concat`` and ``Outputs.diff``: what the CLIs, benches and tests compare with."""

import numpy as np
import pytest

from qnn_ref import ArrayDiff, Outputs


def _outputs(seed: int, count: int = 6) -> Outputs:
    rng = np.random.default_rng(seed)
    layers = (
        rng.integers(-128, 128, (count, 5), dtype=np.int8),
        rng.integers(-128, 128, (count, 3), dtype=np.int8),
    )
    return Outputs(
        input=rng.integers(-128, 128, (count, 4), dtype=np.int8),
        layers=layers,
        predictions=np.argmax(layers[-1], axis=1).astype(np.int64),
    )


def test_concat_joins_batches_in_order() -> None:
    whole = _outputs(0)
    parts = [
        Outputs(whole.input[a:b], tuple(x[a:b] for x in whole.layers), whole.predictions[a:b])
        for a, b in ((0, 1), (1, 4), (4, 6))
    ]
    joined = Outputs.concat(parts)
    np.testing.assert_array_equal(joined.input, whole.input, strict=True)
    for ours, theirs in zip(joined.layers, whole.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    np.testing.assert_array_equal(joined.predictions, whole.predictions, strict=True)


def test_concat_needs_a_part() -> None:
    with pytest.raises(ValueError, match=r"^Outputs.concat needs at least one part$"):
        Outputs.concat([])


def test_diff_of_identical_outputs() -> None:
    a = _outputs(1)
    diff = a.diff(_outputs(1))
    assert diff.identical
    assert diff.values == 0
    assert [row.name for row in diff.arrays] == ["input", "layer0", "layer1", "predictions"]
    assert [row.shape for row in diff.arrays] == [(6, 4), (6, 5), (6, 3), (6,)]
    np.testing.assert_array_equal(diff.images, np.zeros(6, bool), strict=True)


def test_diff_counts_values_images_and_the_largest_difference() -> None:
    a = _outputs(2)
    layer0 = a.layers[0].copy()
    layer0[1, 0] = 127 if layer0[1, 0] != 127 else 126
    layer0[1, 3] = layer0[1, 3] ^ 1  # differs by exactly 1
    layer0[4, 2] = -128 if a.layers[0][4, 2] != -128 else -127
    b = Outputs(a.input, (layer0, a.layers[1]), a.predictions)
    expected_largest = max(
        abs(int(a.layers[0][1, 0]) - int(layer0[1, 0])),
        abs(int(a.layers[0][4, 2]) - int(layer0[4, 2])),
        1,
    )
    diff = a.diff(b)
    assert diff.arrays[1] == ArrayDiff("layer0", (6, 5), 3, 2, expected_largest)
    assert diff.arrays[0] == ArrayDiff("input", (6, 4), 0, 0, 0)
    assert diff.values == 3
    assert not diff.identical
    np.testing.assert_array_equal(
        diff.images, np.array([False, True, False, False, True, False]), strict=True
    )


def test_diff_of_predictions_only() -> None:
    a = _outputs(3)
    predictions = a.predictions.copy()
    predictions[5] += 1
    diff = a.diff(Outputs(a.input, a.layers, predictions))
    assert diff.arrays[-1] == ArrayDiff("predictions", (6,), 1, 1, 1)
    assert diff.images.tolist() == [False] * 5 + [True]


def test_diff_rejects_different_shapes() -> None:
    a, b = _outputs(4), _outputs(4, count=5)
    with pytest.raises(ValueError, match=r"^cannot compare input of shape \[6, 4\] with \[5, 4\]$"):
        a.diff(b)
    with pytest.raises(ValueError, match=r"^cannot compare outputs of 2 and 1 layers$"):
        a.diff(Outputs(a.input, a.layers[:1], a.predictions))
