import gzip
import math
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import qnn_ref
from qnn_ref import _data
from qnn_ref.testing import require_module

TEST_FILES = ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")
FIX = "restore the original file (see data/mnist/README.md in the pyrtlnet repository)"


@pytest.fixture(scope="session")
def test_set() -> tuple[np.ndarray, np.ndarray]:
    return qnn_ref.load_mnist("test")


def test_test_set_shapes_and_first_labels(test_set):
    images, labels = test_set
    assert (images.shape, images.dtype, labels.shape, labels.dtype) == (
        (10000, 28, 28),
        np.uint8,
        (10000,),
        np.uint8,
    )
    np.testing.assert_array_equal(
        labels[:10], np.array([7, 2, 1, 0, 4, 1, 4, 9, 5, 9], np.uint8), strict=True
    )
    np.testing.assert_array_equal(
        np.bincount(labels), [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009], strict=True
    )
    assert images.flags.writeable


def test_training_set_found_from_anywhere(monkeypatch, tmp_path):
    # Not below the current directory: found through the (editable) package's location.
    monkeypatch.chdir(tmp_path)
    images, labels = qnn_ref.load_mnist("train")
    assert (images.shape, labels.shape) == ((60000, 28, 28), (60000,))
    np.testing.assert_array_equal(labels[:5], np.array([5, 0, 4, 1, 9], np.uint8), strict=True)


def test_no_training_directory(monkeypatch, tmp_path):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(_data, "__file__", str(tmp_path / "qnn_ref" / "_data.py"))
    message = (
        "no data/mnist directory with the MNIST training set found above the current directory "
        "or the qnn_ref package; pass --data-dir (data_dir=) pointing at the directory holding "
        "train-images-idx3-ubyte.gz and train-labels-idx1-ubyte.gz"
    )
    with pytest.raises(qnn_ref.DataError, match=f"^{re.escape(message)}$"):
        qnn_ref.load_mnist("train")


@pytest.fixture
def test_copy(tmp_path) -> Path:
    """A writable copy of the shipped test set."""
    for name in TEST_FILES:
        shutil.copyfile(_data._PACKAGE_DATA / name, tmp_path / name)
    return tmp_path


def test_copy_loads_like_the_original(test_copy, test_set):
    images, labels = qnn_ref.load_mnist("test", test_copy)
    np.testing.assert_array_equal(images, test_set[0], strict=True)
    np.testing.assert_array_equal(labels, test_set[1], strict=True)


def test_missing_file(test_copy):
    path = test_copy / TEST_FILES[1]
    path.unlink()
    with pytest.raises(
        qnn_ref.DataError, match=f"^{re.escape(f'MNIST file {path} is missing; {FIX}')}$"
    ):
        qnn_ref.load_mnist("test", test_copy)


def _rewrite(path: Path, edit) -> None:
    data = bytearray(gzip.decompress(path.read_bytes()))
    path.write_bytes(gzip.compress(bytes(edit(data)), compresslevel=1))


def test_corrupt_pixel_fails_the_checksum(test_copy):
    path = test_copy / TEST_FILES[0]

    def flip(data: bytearray) -> bytearray:
        data[16 + 5 * 784 + 400] ^= 0xFF
        return data

    _rewrite(path, flip)
    with pytest.raises(qnn_ref.DataError) as caught:
        qnn_ref.load_mnist("test", test_copy)
    message = str(caught.value)
    assert re.fullmatch(
        re.escape(f"MNIST file {path} is corrupt (sha256 of its contents is ")
        + "[0-9a-f]{64}"
        + re.escape(
            ", expected 0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7); " + FIX
        ),
        message,
    ), message


def test_wrong_magic(test_copy):
    path = test_copy / TEST_FILES[1]
    _rewrite(path, lambda data: b"\x00\x00\x08\x03" + data[4:])
    message = f"MNIST file {path} is corrupt (IDX magic number 0x00000803, expected 0x00000801); "
    with pytest.raises(qnn_ref.DataError, match=f"^{re.escape(message + FIX)}$"):
        qnn_ref.load_mnist("test", test_copy)


def test_wrong_size(test_copy):
    path = test_copy / TEST_FILES[1]
    _rewrite(path, lambda data: data[:-1])
    message = (
        f"MNIST file {path} is corrupt (dimensions [10000] and 10007 bytes, "
        f"expected [10000] and 10008 bytes); "
    )
    with pytest.raises(qnn_ref.DataError, match=f"^{re.escape(message + FIX)}$"):
        qnn_ref.load_mnist("test", test_copy)


def test_truncated_gzip(test_copy):
    path = test_copy / TEST_FILES[0]
    path.write_bytes(path.read_bytes()[:1000])
    with pytest.raises(
        qnn_ref.DataError,
        match=f"^{re.escape(f'MNIST file {path} is corrupt (not a complete gzip file: ')}"
        f".*{re.escape(f'); {FIX}')}$",
    ):
        qnn_ref.load_mnist("test", test_copy)


def test_unknown_split():
    with pytest.raises(ValueError, match=r"^MNIST split must be 'train' or 'test', not 'val'$"):
        qnn_ref.load_mnist("val")  # type: ignore[arg-type]


def _bilinear_loop(image: np.ndarray, height: int, width: int) -> np.ndarray:
    """Half-pixel-centre bilinear resize, one output pixel at a time, in float64.

    Written from the definition (sample the continuous image at output pixel centres, weights
    from the distance to the four nearest input pixel centres, edges clamped), not from the
    vectorized code under test.
    """
    in_h, in_w = image.shape
    out = np.empty((height, width))
    for i in range(height):
        y = (i + 0.5) * in_h / height - 0.5
        y0 = math.floor(y)
        fy = y - y0
        rows = (min(max(y0, 0), in_h - 1), min(max(y0 + 1, 0), in_h - 1))
        for j in range(width):
            x = (j + 0.5) * in_w / width - 0.5
            x0 = math.floor(x)
            fx = x - x0
            cols = (min(max(x0, 0), in_w - 1), min(max(x0 + 1, 0), in_w - 1))
            top = image[rows[0], cols[0]] * (1 - fx) + image[rows[0], cols[1]] * fx
            bottom = image[rows[1], cols[0]] * (1 - fx) + image[rows[1], cols[1]] * fx
            out[i, j] = top * (1 - fy) + bottom * fy
    return out / 255


@pytest.mark.parametrize("size", [(12, 12), (16, 16), (8, 20), (28, 28), (40, 33), (1, 1)])
def test_preprocess_matches_an_explicit_loop(test_set, size):
    images = test_set[0][:4]
    x = qnn_ref.preprocess(images, size)
    assert (x.shape, x.dtype) == ((4, size[0] * size[1]), np.float32)
    expected = np.stack([_bilinear_loop(image.astype(np.float64), *size) for image in images])
    # float32 arithmetic against float64: equal to within 1e-5, far below one int8 input step
    # (1/255); test_preprocess_is_tensorflow_resize_bit_for_bit pins the exact bits.
    np.testing.assert_allclose(x, expected.reshape(4, -1), rtol=0, atol=1e-5)
    assert x.min() >= 0
    assert x.max() <= 1


def test_preprocess_is_tensorflow_resize_bit_for_bit(test_set):
    require_module("tensorflow", "comparing with TensorFlow's resize needs the train extra")
    import tensorflow as tf

    images = test_set[0][:500]
    for size in [(12, 12), (16, 16), (10, 14)]:
        expected = tf.image.resize(images[..., None].astype(np.float32) / 255, size).numpy()
        np.testing.assert_array_equal(
            qnn_ref.preprocess(images, size), expected.reshape(len(images), -1), strict=True
        )


def test_preprocess_at_full_size_only_scales(test_set):
    images = test_set[0][:10]
    np.testing.assert_array_equal(
        qnn_ref.preprocess(images, (28, 28)),
        (images.astype(np.float32) / np.float32(255)).reshape(10, 784),
        strict=True,
    )


@pytest.mark.parametrize(
    ("images", "size", "message"),
    [
        (
            np.zeros((28, 28), np.uint8),
            (12, 12),
            r"^images must be a uint8 array of shape \[N, H, W\], not uint8 of shape \[28, 28\]$",
        ),
        (
            np.zeros((1, 28, 28), np.float32),
            (12, 12),
            r"^images must be a uint8 array of shape \[N, H, W\], not float32 of shape "
            r"\[1, 28, 28\]$",
        ),
        (
            np.zeros((1, 28, 28), np.uint8),
            (0, 12),
            r"^size \(height, width\) must be 2 positive integers, not \(0, 12\)$",
        ),
        (
            np.zeros((1, 28, 28), np.uint8),
            (12,),
            r"^size \(height, width\) must be 2 positive integers, not \(12,\)$",
        ),
    ],
)
def test_preprocess_rejects(images, size, message):
    with pytest.raises(ValueError, match=message):
        qnn_ref.preprocess(images, size)


def test_preprocess_rejects_a_size_of_the_wrong_type():
    images = np.zeros((1, 28, 28), np.uint8)
    for size in ((12.0, 12), (12, True), "12"):
        with pytest.raises(
            TypeError, match=r"^size \(height, width\) must be 2 positive integers, not "
        ):
            qnn_ref.preprocess(images, size)
