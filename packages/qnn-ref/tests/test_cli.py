import argparse
import dataclasses
import hashlib
import io
import re
import shutil
import subprocess
import sys
from pathlib import Path

import flatbuffers
import numpy as np
import pytest
from ai_edge_litert import schema_py_generated as schema

import qnn_ref
from qnn_ref import _data, cli
from qnn_ref.testing import write_model

FIX = "export a chain of int8 FULLY_CONNECTED layers with full-integer quantization"


@pytest.fixture(autouse=True)
def _plain_output(monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    status = cli.main(list(argv))
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_single_image_litert(capsys):
    status, out, err = run(capsys, "litert")
    assert (status, err) == (0, "")
    assert out.startswith("MNIST test image 0")
    assert "int8 input (12x12)" in out
    assert "layer0 (FULLY_CONNECTED 144 -> 18, ReLU) int8 outputs:" in out
    assert "layer1 (FULLY_CONNECTED 18 -> 10) int8 logits (litert):" in out
    assert re.search(r"^7 \|#+ +\d+ <$", out, re.MULTILINE)  # the predicted bar is marked
    assert "\x1b" not in out  # NO_COLOR: plain ASCII
    assert out.endswith("image 0: label 7; predicted: litert 7 (right)\n")


def test_single_image_numpy_quiet(capsys):
    assert run(capsys, "numpy", "--start-image", "8", "--quiet") == (
        0,
        "image 8: label 5; predicted: numpy 6 (wrong)\n",
        "",
    )


def test_many_images_summary(capsys):
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    images, labels = qnn_ref.load_mnist("test")
    expected = qnn_ref.run_numpy(model, qnn_ref.preprocess(images[100:400], (12, 12)))
    right = int(np.sum(expected.predictions == labels[100:400]))
    status, out, err = run(
        capsys, "numpy", "--start-image", "100", "--num-images", "300", "--batch-size", "64"
    )
    assert (status, err) == (0, "")
    lines = out.split("\n")
    assert lines[0] == "300 MNIST test images (100 to 399), model default.tflite"
    assert lines[1].startswith(f"numpy accuracy: {right / 300:.2%} ({right}/300), ")
    assert "confusion counts (numpy; rows: label, columns: prediction):" in out
    table = lines[lines.index("confusion counts (numpy; rows: label, columns: prediction):") + 3 :]
    counts = np.array([[int(n) for n in row.split()[1:]] for row in table[:10]])
    assert (counts.sum(), np.trace(counts)) == (300, right)


def test_dump(capsys, tmp_path):
    path = tmp_path / "out.npz"
    status, _, _ = run(
        capsys, "litert", "--start-image", "5", "--num-images", "20", "--dump", str(path)
    )
    assert status == 0
    with np.load(path) as dump:
        arrays = {key: dump[key] for key in dump.files}
    assert {k: (v.shape, v.dtype) for k, v in arrays.items()} == {
        "input": ((20, 144), np.int8),
        "layer0": ((20, 18), np.int8),
        "layer1": ((20, 10), np.int8),
        "predictions": ((20,), np.int64),
        "labels": ((20,), np.uint8),
        "image_indices": ((20,), np.int64),
    }
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    images, labels = qnn_ref.load_mnist("test")
    expected = qnn_ref.run_numpy(model, qnn_ref.preprocess(images[5:25], (12, 12)))
    np.testing.assert_array_equal(arrays["input"], expected.input, strict=True)
    for i, layer in enumerate(expected.layers):
        np.testing.assert_array_equal(arrays[f"layer{i}"], layer, strict=True)
    np.testing.assert_array_equal(arrays["predictions"], expected.predictions, strict=True)
    np.testing.assert_array_equal(arrays["labels"], labels[5:25], strict=True)
    np.testing.assert_array_equal(arrays["image_indices"], np.arange(5, 25), strict=True)


@pytest.mark.parametrize("rounding", qnn_ref.ROUNDINGS)
def test_compare_identical(capsys, rounding):
    status, out, err = run(
        capsys, "compare", "--num-images", "1000", "--rounding", rounding, "--quiet"
    )
    assert (status, err) == (0, "")
    assert out.startswith(
        f"numpy:{rounding} vs litert:{rounding} on 1000 MNIST test images (0 to 999):\n"
    )
    assert re.search(r"^layer1 +1000x10 +0 +0 +0$", out, re.MULTILINE)
    assert out.endswith("result: identical in every layer\n")


def test_compare_mismatch(capsys):
    # The builtin kernels' double rounding differs from XNNPACK's float32 rounding by 1 here
    # and there (151-789 of 10,000 images per model, measured): 1,000 images catch some.
    status, out, err = run(
        capsys, "compare", "--num-images", "1000", "--backends", "litert:builtin,numpy"
    )
    assert (status, err) == (1, "")
    layer0 = re.search(r"^layer0 +1000x18 +(\d+) +(\d+) +1$", out, re.MULTILINE)
    assert layer0
    assert int(layer0[1]) > 0
    assert re.search(r"^input +1000x144 +0 +0 +0$", out, re.MULTILINE)
    assert re.search(r"^result: MISMATCH \(\d+ values differ\)$", out, re.MULTILINE)


def test_info(capsys):
    status, out, err = run(capsys, "info")
    assert (status, err) == (0, "")
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    assert out.startswith(
        f"{model.path} ({model.path.stat().st_size:,} bytes): 2 FULLY_CONNECTED layers, "
        "input 12x12, int8 in, int8 out\n"
    )
    layer = model.layers[0]
    assert re.search(
        rf"^layer0 +144 -> 18 +ReLU +{layer.input_scale:.6g} +{layer.input_zero_point} +"
        rf"{layer.weight_scales[0]:.6g} +{layer.output_scale:.6g} +{layer.output_zero_point}$",
        out,
        re.MULTILINE,
    )
    for rounding in ("builtin", "reference"):
        m, shift = layer.integer_multipliers(rounding)
        assert re.search(rf"^layer0 +{rounding} +{m[0]} +{shift[0]}$", out, re.MULTILINE)
    assert f"  model_sha256: {hashlib.sha256(model.path.read_bytes()).hexdigest()}\n" in out


def _write_with_conv(tmp_path: Path) -> Path:
    """The shipped model with its first FULLY_CONNECTED turned into a CONV_2D."""
    fb = schema.ModelT.InitFromPackedBuf(qnn_ref.default_model_path().read_bytes(), 0)
    code = fb.operatorCodes[fb.subgraphs[0].operators[1].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.CONV_2D
    builder = flatbuffers.Builder(1024)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "conv.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def _bad_model(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A bad --model argument and a regular expression of the error message it must give."""
    path = tmp_path / f"{kind}.tflite"
    if kind == "missing":
        message = f"{path}: no such model file; give the path of a .tflite file"
    elif kind == "unreadable":
        path = tmp_path
        message = (
            f"{path}: cannot read the model file (Is a directory); give the path of a "
            "readable .tflite file"
        )
    elif kind == "truncated":
        path.write_bytes(qnn_ref.default_model_path().read_bytes()[:1000])
        return path, (
            re.escape(f"{path}: truncated or corrupt TFLite file (")
            + r"\w+"
            + re.escape("); export the model again")
        )
    elif kind == "not-tflite":
        path.write_text("hello")
        message = (
            f"{path}: not a TFLite model (no TFL3 file identifier); give a .tflite file written "
            "by the TFLite converter"
        )
    else:
        path = _write_with_conv(tmp_path)
        message = (
            f"{path}: op 1 is CONV_2D (before layer 0), which qnn-ref does not support; {FIX}, "
            "with RESHAPE, QUANTIZE or DEQUANTIZE only at the ends"
        )
    return path, re.escape(message)


@pytest.mark.parametrize("kind", ["missing", "unreadable", "truncated", "not-tflite", "conv"])
@pytest.mark.parametrize("command", ["litert", "numpy", "compare", "info"])
def test_bad_model(capsys, tmp_path, kind, command):
    path, message = _bad_model(tmp_path, kind)
    argv = [command, str(path)] if command == "info" else [command, "--model", str(path)]
    status, out, err = run(capsys, *argv)
    assert (status, out) == (1, "")
    assert re.fullmatch(f"{re.escape(f'qnn-ref {command}: error: ')}{message}\n", err), err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["litert", "--start-image", "10000"],
            "--start-image 10000 is out of range: the MNIST test set has images 0 to 9999; "
            "choose a smaller --start-image",
        ),
        (
            ["numpy", "--start-image", "9990", "--num-images", "11"],
            "images 9990 to 10000 are out of range: the MNIST test set has images 0 to 9999; "
            "use --num-images 10 or less",
        ),
        (
            ["litert", "--num-images", "5", "--batch-size", "6"],
            "--batch-size 6 is larger than the 5 images selected; use --batch-size 5 or less",
        ),
        (
            ["compare", "--batch-size", "2"],
            "--batch-size 2 is larger than the 1 images selected; use --batch-size 1 or less",
        ),
        (
            ["numpy", "--dump", "/nonexistent-dir/x.npz"],
            "--dump /nonexistent-dir/x.npz: directory /nonexistent-dir does not exist; create it "
            "or choose another path",
        ),
    ],
)
def test_usage_errors(capsys, argv, message):
    command = argv[0]
    assert run(capsys, *argv) == (2, "", f"qnn-ref {command}: error: {message}\n")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["litert", "--num-images", "0"],
            "argument --num-images: must be a positive integer, not '0'",
        ),
        (
            ["numpy", "--num-images", "-3"],
            "argument --num-images: must be a positive integer, not '-3'",
        ),
        (
            ["litert", "--start-image", "-1"],
            "argument --start-image: must be a non-negative integer, not '-1'",
        ),
        (
            ["litert", "--batch-size", "many"],
            "argument --batch-size: must be a positive integer, not 'many'",
        ),
        (
            ["numpy", "--rounding", "nearest"],
            "argument --rounding: invalid choice: 'nearest' (choose from xnnpack, builtin, "
            "reference)",
        ),
        (
            ["compare", "--backends", "litert,pyrtl"],
            "argument --backends: 'pyrtl' is not a backend: use litert or numpy, optionally "
            "with :xnnpack|builtin|reference",
        ),
        (
            ["train", "--hidden", "18,x"],
            "argument --hidden: must be comma-separated positive layer sizes such as 18 or "
            "64,32, not '18,x'",
        ),
        (
            ["train", "--input-size", "12x12x12"],
            "argument --input-size: must be a positive size such as 12 (12x12) or 12x16 "
            "(height x width), not '12x12x12'",
        ),
    ],
)
def test_argument_errors(capsys, argv, message):
    command = argv[0]
    status, out, err = run(capsys, *argv)
    # Quotes around choices differ between Python versions.
    assert (status, out, err.replace("'", "")) == (
        2,
        "",
        f"qnn-ref {command}: error: {message} (see qnn-ref {command} --help)\n".replace("'", ""),
    )


def test_corrupt_test_set(capsys, monkeypatch, tmp_path):
    for name in ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz"):
        shutil.copyfile(_data._PACKAGE_DATA / name, tmp_path / name)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").write_bytes(b"\x1f\x8b")
    monkeypatch.setattr(_data, "_PACKAGE_DATA", tmp_path)
    status, out, err = run(capsys, "litert")
    path = tmp_path / "t10k-labels-idx1-ubyte.gz"
    assert (status, out) == (1, "")
    assert err.startswith(f"qnn-ref litert: error: MNIST file {path} is corrupt (not a complete")
    assert err.endswith(
        "; restore the original file (see data/mnist/README.md in the pyrtlnet repository)\n"
    )
    assert err.count("\n") == 1
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    status, _, err = run(capsys, "numpy")
    assert (status, err) == (
        1,
        f"qnn-ref numpy: error: MNIST file {path} is missing; restore the original file "
        "(see data/mnist/README.md in the pyrtlnet repository)\n",
    )


def test_train_without_tensorflow(capsys, monkeypatch, tmp_path):
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    status, out, err = run(capsys, "train", "--output", str(tmp_path / "m.tflite"))
    assert (status, out) == (1, "")
    assert err == (
        "qnn-ref train: error: training needs TensorFlow (import of tensorflow halted; None in "
        "sys.modules); install it with: pip install 'qnn-ref[train]'\n"
    )


def test_train_command(capsys, monkeypatch, tmp_path):
    """The options reach qnn_ref.train (tested in test_train.py) and its facts are printed."""
    calls = []

    def fake_train(output, **kwargs):
        calls.append((output, kwargs))
        return qnn_ref.TrainingFacts(
            model_bytes=1234,
            model_sha256="0" * 64,
            input_size=[7, 9],
            layer_sizes=[63, 64, 32, 10],
            epochs=3,
            qat_epochs=0,
            batch_size=32,
            seed=5,
            float_accuracy=0.9,
            qat_accuracy=0.9,
            int8_accuracy=0.8976,
            training_seconds=12.3,
            versions={},
            date="",
        )

    monkeypatch.setattr("qnn_ref._train.train", fake_train)
    output = tmp_path / "m.tflite"
    status, out, err = run(
        capsys,
        *("train", "--hidden", "64,32", "--input-size", "7x9", "--epochs", "3"),
        *("--qat-epochs", "0", "--seed", "5", "--output", str(output), "--quiet"),
    )
    assert (status, err) == (0, "")
    assert calls == [
        (
            output,
            {
                "hidden": (64, 32),
                "input_size": (7, 9),
                "epochs": 3,
                "qat_epochs": 0,
                "seed": 5,
                "data_dir": None,
                "verbose": 0,
            },
        )
    ]
    assert out == (
        "float accuracy: 90.00%\nint8 accuracy: 89.76% (LiteRT, xnnpack)\n"
        f"wrote {output} (63-64-32-10, 1,234 bytes, trained in 12 s) and "
        f"{tmp_path / 'm.json'}\n"
    )
    run(capsys, "train", "--hidden", "", "--input-size", "16")
    assert calls[-1][0] == Path("model.tflite")
    assert (calls[-1][1]["hidden"], calls[-1][1]["input_size"]) == ((), (16, 16))
    assert calls[-1][1]["verbose"] == 1  # Keras' progress bar


def test_run_main_maps_errors_to_one_line_and_status():
    def fail(error: BaseException):
        def fn() -> int:
            raise error

        return fn

    cases = [
        (cli.UsageError("bad flag\nsecond line"), 2, "p: error: bad flag second line\n"),
        (cli.CommandError("it broke"), 1, "p: error: it broke\n"),
        (qnn_ref.DataError("no data"), 1, "p: error: no data\n"),
        (
            PermissionError(13, "Permission denied", "/x.npz"),
            1,
            "p: error: /x.npz: Permission denied; check the path and permissions\n",
        ),
        (KeyboardInterrupt(), 130, "p: error: interrupted\n"),
    ]
    for error, status, message in cases:
        err = io.StringIO()
        assert cli.run_main(fail(error), prog="p", stderr=err) == status
        assert err.getvalue() == message
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        cli.run_main(lambda: 1 // 0, prog="p")


def test_add_inference_arguments_defaults():
    parser = cli.ArgumentParser(prog="x")
    cli.add_inference_arguments(parser)
    args = parser.parse_args([])
    assert vars(args) == {
        "model": qnn_ref.default_model_path(),
        "start_image": 0,
        "num_images": 1,
        "batch_size": None,
        "rounding": "xnnpack",
        "dump": None,
        "quiet": False,
    }
    parser = argparse.ArgumentParser()
    cli.add_inference_arguments(parser, dump=False)
    assert "dump" not in vars(parser.parse_args([]))


def test_third_backend_plugs_in(capsys):
    """A backend is any callable with run_numpy's signature (pyrtlnet adds its hardware)."""

    def off_by_one(model, x, *, rounding):
        outputs = qnn_ref.run_numpy(model, x, rounding=rounding)
        last = outputs.layers[-1].copy()
        last[:, 0] += 1
        return qnn_ref.Outputs(outputs.input, (*outputs.layers[:-1], last), outputs.predictions)

    parser = cli.ArgumentParser(prog="x")
    cli.add_inference_arguments(parser)
    args = parser.parse_args(["--start-image", "3"])
    backends = {"fake": off_by_one, "numpy": qnn_ref.run_numpy}
    out = io.StringIO()
    assert cli.run_inference(args, backends, stdout=out) == 0
    text = out.getvalue()
    assert "\n  fake " in text
    assert "\n  numpy" in text
    assert re.search(r"^0 \|#* +-?\d+(?: <)? +numpy +-?\d+ \(differs\)$", text, re.MULTILINE)
    assert re.search(r"^1 \|#* +-?\d+ +numpy +-?\d+$", text, re.MULTILINE)
    assert text.endswith("image 3: label 0; predicted: fake 0 (right), numpy 0 (right)\n")
    args = parser.parse_args(["--num-images", "50", "--quiet"])
    out = io.StringIO()
    cli.run_inference(args, backends, stdout=out)
    assert "numpy vs fake: 50 values differ" in out.getvalue()


def _python_m(*argv: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "qnn_ref", *argv],
        capture_output=True,
        text=True,
        check=False,
        env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
    )


def test_python_m_help():
    result = _python_m("--help")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout.startswith("usage: qnn-ref [-h] COMMAND ...\n")
    assert cli.__doc__.split("\n")[0] in result.stdout


@pytest.mark.parametrize(
    ("argv", "status", "stderr"),
    [
        (
            ["litert", "--num-images", "0"],
            2,
            "qnn-ref litert: error: argument --num-images: must be a positive integer, not '0' "
            "(see qnn-ref litert --help)\n",
        ),
        (
            ["info", "/nonexistent.tflite"],
            1,
            "qnn-ref info: error: /nonexistent.tflite: no such model file; give the path of a "
            ".tflite file\n",
        ),
    ],
)
def test_python_m_errors_have_no_traceback(argv, status, stderr):
    result = _python_m(*argv)
    assert (result.returncode, result.stdout, result.stderr) == (status, "", stderr)


@pytest.fixture(scope="module")
def per_channel_float_io(tmp_path_factory) -> Path:
    """The shipped model with per-channel scales in layer 0 and float32 input and output."""
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    first = model.layers[0]
    factors = np.linspace(0.9, 1.1, first.units, dtype=np.float32)
    layers = [
        dataclasses.replace(first, weight_scales=first.weight_scales * factors, per_channel=True),
        model.layers[1],
    ]
    path = tmp_path_factory.mktemp("cli") / "per-channel.tflite"
    return write_model(path, layers, input_shape=(12, 12), float_input=True, float_output=True)


@pytest.mark.parametrize("rounding", qnn_ref.ROUNDINGS)
def test_compare_float_io_per_channel(capsys, per_channel_float_io, rounding):
    argv = ["--model", str(per_channel_float_io), "--num-images", "500", "--rounding", rounding]
    status, out, _ = run(capsys, "compare", *argv)
    assert status == 0, out
    assert out.endswith("result: identical in every layer\n")


def test_info_per_channel(capsys, per_channel_float_io):
    status, out, _ = run(capsys, "info", str(per_channel_float_io))
    assert status == 0
    assert "input 12x12, float32 in, float32 out\n" in out.split("\n")[0] + "\n"
    layer = qnn_ref.read_model(per_channel_float_io).layers[0]
    scales = layer.weight_scales
    assert f" {scales.min():.6g}..{scales.max():.6g} per channel " in out
    multipliers = layer.integer_multipliers("reference")[0]
    span = f"{multipliers.min()}..{multipliers.max()}"
    assert re.search(rf"^layer0 +reference +{span} +", out, re.MULTILINE)
    assert "training facts" not in out


def test_single_image_marks_differences(capsys):
    """Values where a backend differs from the first are marked with ^ under them."""

    def shifted(model, x, *, rounding):
        outputs = qnn_ref.run_numpy(model, x, rounding=rounding)
        first = outputs.layers[0].copy()
        first[:, 2] += 1
        return qnn_ref.Outputs(outputs.input, (first, *outputs.layers[1:]), outputs.predictions)

    parser = cli.ArgumentParser(prog="x")
    cli.add_inference_arguments(parser)
    out = io.StringIO()
    cli.run_inference(
        parser.parse_args([]), {"numpy": qnn_ref.run_numpy, "hw": shifted}, stdout=out
    )
    lines = out.getvalue().split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith("  hw "))
    # Under the last digit of the third value, the line right below the values.
    assert lines[row + 1] == " " * 22 + "^"
    assert len(lines[row + 2].split()) == 18 - 16  # the continuation: values 16 and 17


def test_single_image_in_color_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR")
    parser = cli.ArgumentParser(prog="x")
    cli.add_inference_arguments(parser)
    out = Terminal()
    cli.run_inference(parser.parse_args([]), {"numpy": qnn_ref.run_numpy}, stdout=out)
    text = out.getvalue()
    assert "▀" in text  # half-block pixels
    assert "\x1b[38;2;80;220;100m" in text  # the predicted bar, in green
    assert text.endswith("image 0: label 7; predicted: numpy 7 (right)\n")
