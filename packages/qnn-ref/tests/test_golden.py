"""Golden vectors for other packages' tests."""

from pathlib import Path

import numpy as np
import pytest

from qnn_ref import ROUNDINGS, Golden, Model, golden, preprocess, run_litert


@pytest.mark.parametrize("rounding", ROUNDINGS)
def test_golden_is_litert_on_those_images(
    default_model: Model, mnist_test: tuple[np.ndarray, np.ndarray], rounding: str
) -> None:
    result = golden(start=100, count=25, rounding=rounding)
    assert isinstance(result, Golden)
    images, labels = mnist_test
    expected = run_litert(
        default_model, preprocess(images[100:125], default_model.input_shape), rounding=rounding
    )
    np.testing.assert_array_equal(result.input, expected.input, strict=True)
    for got, want in zip(result.layers, expected.layers, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)
    np.testing.assert_array_equal(result.predictions, expected.predictions, strict=True)
    np.testing.assert_array_equal(result.labels, labels[100:125], strict=True)
    np.testing.assert_array_equal(result.image_indices, np.arange(100, 125), strict=True)


def test_backends_agree(default_model: Model) -> None:
    litert = golden(default_model, start=9990, count=10, rounding="builtin")
    numpy = golden(default_model, start=9990, count=10, rounding="builtin", backend="numpy")
    for got, want in zip(numpy.layers, litert.layers, strict=True):
        np.testing.assert_array_equal(got, want, strict=True)


def test_model_as_path(default_model: Model) -> None:
    by_path = golden(str(default_model.path), count=3)
    by_default = golden(count=3)
    np.testing.assert_array_equal(by_path.layers[-1], by_default.layers[-1], strict=True)


def test_to_npz_uses_its_own_labels(tmp_path: Path) -> None:
    result = golden(start=5, count=4)
    result.to_npz(tmp_path / "golden.npz")
    with np.load(tmp_path / "golden.npz") as dump:
        np.testing.assert_array_equal(dump["labels"], result.labels, strict=True)
        np.testing.assert_array_equal(dump["image_indices"], np.arange(5, 9), strict=True)
        np.testing.assert_array_equal(dump["layer0"], result.layers[0], strict=True)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(start=9999, count=2),
            "images 9999 to 10000 are outside the MNIST test set "
            r"\(indices 0 to 9999\)",
        ),
        (dict(start=-1), "start must be a non-negative integer, not -1"),
        (dict(count=0), "count must be a positive integer, not 0"),
        (dict(backend="pyrtl"), "backend must be 'litert' or 'numpy', not 'pyrtl'"),
        (dict(rounding="up"), "rounding must be one of xnnpack, builtin, reference, not 'up'"),
    ],
)
def test_rejects(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=f"^{message}$"):
        golden(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (dict(count=True), "count must be a positive integer, not True"),
        (dict(count=2.0), "count must be a positive integer, not 2.0"),
        (dict(start="0"), "start must be a non-negative integer, not '0'"),
    ],
)
def test_rejects_the_wrong_type(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(TypeError, match=f"^{message}$"):
        golden(**kwargs)  # type: ignore[arg-type]
