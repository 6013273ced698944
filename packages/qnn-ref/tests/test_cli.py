import argparse
import dataclasses
import hashlib
import importlib.metadata
import io
import os
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
from qnn_ref import _data, _litert, cli, cliinfer, clireport, clitools, terminal
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
    assert "layer0 (FULLY_CONNECTED 144 -> 18 RELU) int8 outputs:" in out
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
        f"numpy:{rounding} vs litert:{rounding} on 1,000 MNIST test images (0 to 999):\n"
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


def test_info(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: one line per layer
    status, out, err = run(capsys, "info")
    assert (status, err) == (0, "")
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    assert out.startswith(
        f"{model.path} ({model.path.stat().st_size:,} bytes): 2 FULLY_CONNECTED layers, "
        "input 12x12, int8 in, int8 out\n"
    )
    layer = model.layers[0]
    assert re.search(
        rf"^layer0 +FULLY_CONNECTED 144 -> 18 RELU +{layer.input_scale:.6g} +"
        rf"{layer.input_zero_point} +"
        rf"{layer.weight_scales[0]:.6g} +{layer.output_scale:.6g} +{layer.output_zero_point}$",
        out,
        re.MULTILINE,
    )
    for rounding in ("builtin", "reference"):
        m, shift = layer.integer_multipliers(rounding)
        assert re.search(rf"^layer0 +{rounding} +{m[0]} +{shift[0]} +none$", out, re.MULTILINE)
    assert "SOFTMAX" not in out
    assert f"  model_sha256: {hashlib.sha256(model.path.read_bytes()).hexdigest()}\n" in out


def _write_with_tanh(tmp_path: Path) -> Path:
    """The shipped model with its first FULLY_CONNECTED turned into a TANH (never supported)."""
    fb = schema.ModelT.InitFromPackedBuf(qnn_ref.default_model_path().read_bytes(), 0)
    code = fb.operatorCodes[fb.subgraphs[0].operators[1].opcodeIndex]
    code.builtinCode = code.deprecatedBuiltinCode = schema.BuiltinOperator.TANH
    builder = flatbuffers.Builder(1024)
    builder.Finish(fb.Pack(builder), file_identifier=b"TFL3")
    path = tmp_path / "tanh.tflite"
    path.write_bytes(bytes(builder.Output()))
    return path


def _bad_model(tmp_path: Path, kind: str) -> tuple[Path, str]:
    """A bad --model argument and a regular expression of the error message it must give."""
    path = tmp_path / f"{kind}.tflite"
    if kind == "unreadable":
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
        path = _write_with_tanh(tmp_path)
        message = (
            f"{path}: op 1 is TANH (before layer 0), which qnn-ref does not support; {FIX}, "
            "with RESHAPE, QUANTIZE or DEQUANTIZE only at the ends"
        )
    return path, re.escape(message)


@pytest.mark.parametrize("kind", ["unreadable", "truncated", "not-tflite", "tanh"])
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
            "--batch-size 2 is larger than the 1 image selected; use --batch-size 1 or less",
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
                "architecture": "mlp",
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
    run(capsys, "train")
    assert (calls[-1][1]["hidden"], calls[-1][1]["input_size"]) == (None, None)  # train's own
    cnn = ("--architecture", "cnn", "--conv-channels", "4,6", "--kernel-sizes", "5,3")
    assert run(capsys, "train", *cnn, "--pooling", "none")[0] == 0
    assert {k: calls[-1][1][k] for k in ("architecture", "conv_channels", "kernel_sizes")} == {
        "architecture": "cnn",
        "conv_channels": (4, 6),
        "kernel_sizes": (5, 3),
    }
    assert calls[-1][1]["pooling"] == "none"
    assert run(capsys, "train", "--architecture", "cnn")[0] == 0
    assert not {"conv_channels", "kernel_sizes", "pooling"} & set(calls[-1][1])  # defaults


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["--conv-channels", "8", "--pooling", "max"],
            "--conv-channels, --pooling shape a CNN; add --architecture cnn or leave them out",
        ),
        (
            ["--architecture", "cnn", "--conv-channels", "8,16", "--kernel-sizes", "3"],
            "kernel sizes must be 2 positive integers, not (3,)",
        ),
    ],
)
def test_train_cnn_usage_errors(capsys, tmp_path, argv, message):
    status, out, err = run(capsys, "train", "--output", str(tmp_path / "m.tflite"), *argv)
    assert (status, out, err) == (2, "", f"qnn-ref train: error: {message}\n")


def test_run_main_maps_errors_to_one_line_and_status():
    def fail(error: BaseException):
        def fn() -> int:
            raise error

        return fn

    cases = [
        (clitools.UsageError("bad flag\nsecond line"), 2, "p: error: bad flag second line\n"),
        (clitools.CommandError("it broke"), 1, "p: error: it broke\n"),
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
        assert clitools.run_main(fail(error), prog="p", stderr=err) == status
        assert err.getvalue() == message
    with pytest.raises(ZeroDivisionError):  # a bug keeps its traceback
        clitools.run_main(lambda: 1 // 0, prog="p")


def test_add_inference_arguments_defaults():
    parser = clitools.ArgumentParser(prog="x")
    cliinfer.add_inference_arguments(parser)
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
    cliinfer.add_inference_arguments(parser, dump=False)
    assert "dump" not in vars(parser.parse_args([]))


def test_third_backend_plugs_in(capsys):
    """A backend is any callable with run_numpy's signature (pyrtlnet adds its hardware)."""

    def off_by_one(model, x, *, rounding):
        outputs = qnn_ref.run_numpy(model, x, rounding=rounding)
        last = outputs.layers[-1].copy()
        last[:, 0] += 1
        return qnn_ref.Outputs(outputs.input, (*outputs.layers[:-1], last), outputs.predictions)

    parser = clitools.ArgumentParser(prog="x")
    cliinfer.add_inference_arguments(parser)
    args = parser.parse_args(["--start-image", "3"])
    backends = {"fake": off_by_one, "numpy": qnn_ref.run_numpy}
    out = io.StringIO()
    assert cliinfer.run_inference(args, backends, stdout=out) == 1  # they differ
    text = out.getvalue()
    assert "\n  fake " in text
    assert "\n  numpy" in text
    assert re.search(r"^0 \|#* +-?\d+(?: <)? +numpy +-?\d+ \(differs\)$", text, re.MULTILINE)
    assert re.search(r"^1 \|#* +-?\d+ +numpy +-?\d+$", text, re.MULTILINE)
    assert text.endswith(
        "image 3: label 0; predicted: fake 0 (right), numpy 0 (right)\n"
        "agreement: MISMATCH, images differing from fake in some layer: numpy 1\n"
    )
    args = parser.parse_args(["--num-images", "50", "--quiet"])
    out = io.StringIO()
    assert cliinfer.run_inference(args, backends, stdout=out) == 1
    assert "numpy vs fake: 50 values differ" in out.getvalue()
    assert out.getvalue().endswith(
        "agreement: MISMATCH, images differing from fake in some layer: numpy 50\n"
    )


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
    assert result.stdout.startswith("usage: qnn-ref [-h] [--version] COMMAND ...\n")
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
            2,
            "qnn-ref info: error: '/nonexistent.tflite' is neither a file nor a shipped model; "
            "give a .tflite path or mlp or cnn\n",
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


def test_info_cnn_by_name(capsys, monkeypatch):
    """``--model cnn`` is the shipped CNN; every layer kind is described with its geometry."""
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: one line per layer
    status, out, err = run(capsys, "info", "--model", "cnn")
    assert (status, err) == (0, "")
    model = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
    kinds = sorted({layer.op for layer in model.layers})
    assert {"CONV_2D", "MAX_POOL_2D", "FULLY_CONNECTED"} <= set(kinds)
    assert out.startswith(f"{model.path} (")
    for layer in model.layers:
        assert re.search(
            rf"^layer{layer.index} +{re.escape(layer.describe())} +{layer.input_scale:.6g} +"
            rf"{layer.input_zero_point} +",
            out,
            re.MULTILINE,
        ), layer
    assert re.search(r"^layer0 +CONV_2D 3x3/1 SAME 14x14x1 -> 14x14x8 RELU", out, re.MULTILINE)
    # pooling has no weights, so no multiplier rows
    pools = [f"layer{layer.index}" for layer in model.layers if layer.op == "MAX_POOL_2D"]
    assert not re.search(rf"^({'|'.join(pools)}) +builtin", out, re.MULTILINE)
    conv = model.layers[0]
    m, shift = conv.integer_multipliers("builtin")
    assert re.search(
        rf"^layer0 +builtin +{m.min()}..{m.max()} +{shift.min()}..{shift.max()} +",
        out,
        re.MULTILINE,
    )


def test_info_cnn_fits_80_columns(capsys, monkeypatch):
    """At 80 columns the CNN's tables (165 characters wide unwrapped) wrap their text cells:
    no table line is longer, every cell's words are still there, in order, beside its layer."""
    monkeypatch.setenv("COLUMNS", "80")
    status, out, _ = run(capsys, "info", "--model", "cnn")
    assert status == 0
    tables = out[out.index("\nlayer ") + 1 : out.index("\ntraining facts")]
    assert max(len(line) for line in tables.splitlines()) <= 80
    model = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
    layer_table = tables.split("\n\n")[0]
    ruler = layer_table.splitlines()[1]
    operation = [m.span() for m in re.finditer(r"-+", ruler)][1]  # the second column
    rows = re.split(r"^(?=layer\d )", layer_table, flags=re.MULTILINE)[1:]
    assert len(rows) == len(model.layers)
    for layer, row in zip(model.layers, rows, strict=True):
        lines = row.splitlines()
        assert lines[0].startswith(f"layer{layer.index}  ")
        assert len(lines) > 1  # every CNN layer's description is wider than its column at 80
        # the operation column, line by line, reads as the layer's description
        words = [line[slice(*operation)].strip() for line in lines]
        assert " ".join(w for w in words if w) == layer.describe()


def test_info_says_softmax_left_out_once(capsys, tmp_path):
    mlp = qnn_ref.read_model(qnn_ref.default_model_path())
    path = write_model(tmp_path / "s.tflite", mlp.layers, input_shape=(12, 12), softmax=True)
    status, out, _ = run(capsys, "info", str(path))
    assert status == 0
    assert out.count("SOFTMAX") == 1
    assert out.splitlines()[2].startswith("SOFTMAX left out: ")


def test_info_marks_int32_overflow(capsys, tmp_path):
    """A layer whose weights can overflow the int32 accumulator is flagged, channel by channel."""
    mlp = qnn_ref.read_model(qnn_ref.default_model_path())
    first = mlp.layers[0]
    bias = first.bias.copy()
    bias[[2, 5]] = 2**31 - 1  # any positive contribution then leaves int32
    risky = dataclasses.replace(first, bias=bias)
    path = write_model(tmp_path / "r.tflite", [risky, *mlp.layers[1:]], input_shape=(12, 12))
    assert qnn_ref.read_model(path).layers[0].int32_overflow("builtin").sum() == 2
    status, out, _ = run(capsys, "info", str(path))
    assert status == 0
    for rounding in ("builtin", "reference", "xnnpack"):
        assert re.search(rf"^layer0 +{rounding} .* RISK: 2 of 18 channels$", out, re.MULTILINE)
    assert re.search(r"^layer1 +builtin .* none$", out, re.MULTILINE)


def test_info_per_channel(capsys, monkeypatch, per_channel_float_io):
    monkeypatch.setenv("COLUMNS", "200")  # a wide terminal: one line per layer
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

    parser = clitools.ArgumentParser(prog="x")
    cliinfer.add_inference_arguments(parser)
    out = io.StringIO()
    cliinfer.run_inference(
        parser.parse_args([]), {"numpy": qnn_ref.run_numpy, "hw": shifted}, stdout=out
    )
    lines = out.getvalue().split("\n")
    row = next(i for i, line in enumerate(lines) if line.startswith("  hw "))
    # Under the last digit of the third value, the line right below the values.
    assert lines[row + 1] == " " * 22 + "^"
    assert len(lines[row + 2].split()) == 18 - 14  # the continuation: 14 values fill 80 columns


def test_single_image_in_color_on_a_terminal(monkeypatch):
    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    monkeypatch.delenv("NO_COLOR")
    parser = clitools.ArgumentParser(prog="x")
    cliinfer.add_inference_arguments(parser)
    out = Terminal()
    cliinfer.run_inference(parser.parse_args([]), {"numpy": qnn_ref.run_numpy}, stdout=out)
    text = out.getvalue()
    assert "▀" in text  # half-block pixels
    assert "\x1b[38;2;80;220;100m" in text  # the predicted bar, in green
    assert text.endswith("image 0: label 7; predicted: numpy 7 (right)\n")


def test_no_command_prints_usage_and_commands(capsys):
    status, out, err = run(capsys)
    assert (status, out) == (2, "")
    assert err.startswith("usage: qnn-ref [-h] [--version] COMMAND ...\n")
    for command in ("train", "litert", "numpy", "compare", "info"):
        assert re.search(rf"^    {command} ", err, re.MULTILINE), command


def test_version(capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse's version action exits by itself
        cli._parser().parse_args(["--version"])
    assert exit_.value.code == 0
    assert capsys.readouterr().out == f"qnn-ref {importlib.metadata.version('qnn-ref')}\n"
    assert run(capsys, "--version")[0] == 0


def test_unknown_option_points_at_the_command_help(capsys):
    assert run(capsys, "numpy", "--bogus", "3") == (
        2,
        "",
        "qnn-ref numpy: error: unrecognized arguments: --bogus 3 (see qnn-ref numpy --help)\n",
    )


def test_info_takes_model_like_every_command(capsys, per_channel_float_io):
    by_flag = run(capsys, "info", "--model", str(per_channel_float_io))
    by_position = run(capsys, "info", str(per_channel_float_io))
    assert by_flag == by_position
    assert by_flag[1].startswith(f"{per_channel_float_io} (")


@pytest.mark.parametrize(
    ("backends", "message"),
    [
        (
            "litert,litert",
            "argument --backends: names the same backend twice ('litert,litert'); compare two "
            "different backends or kernel paths, such as litert,numpy or litert:builtin,litert "
            "(see qnn-ref compare --help)",
        ),
        (
            "litert:,numpy",
            "argument --backends: 'litert:' is not a backend: use litert or numpy, optionally "
            "with :xnnpack|builtin|reference (see qnn-ref compare --help)",
        ),
        (
            "litert:xnnpack,litert",
            "--backends names litert:xnnpack twice (--rounding xnnpack); compare two different "
            "backends or kernel paths",
        ),
    ],
)
def test_compare_rejects_one_backend_twice(capsys, backends, message):
    assert run(capsys, "compare", "--backends", backends) == (
        2,
        "",
        f"qnn-ref compare: error: {message}\n",
    )


def test_compare_two_paths_of_one_backend(capsys):
    status, out, _ = run(capsys, "compare", "--backends", "litert:builtin,litert")
    assert out.startswith("litert:xnnpack vs litert:builtin on 1 MNIST test image (0):\n")
    assert status in (0, 1)


def _spy_backends(calls: list[str]) -> dict[str, cliinfer.Backend]:
    def spy(model, x, *, rounding):
        calls.append("numpy")
        return qnn_ref.run_numpy(model, x, rounding=rounding)

    return {"numpy": spy}


@pytest.mark.parametrize("where", ["file-as-directory", "directory", "missing-directory"])
def test_unwritable_dump_is_rejected_before_the_run(tmp_path, where):
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    path, reason = {
        "file-as-directory": (blocker / "out.npz", f"{blocker} is not a directory; choose "),
        "directory": (tmp_path, "is a directory; give a file name"),
        "missing-directory": (
            tmp_path / "nowhere" / "out.npz",
            f"directory {tmp_path / 'nowhere'} does not exist; create it or choose ",
        ),
    }[where]
    parser = clitools.ArgumentParser(prog="x")
    cliinfer.add_inference_arguments(parser)
    args = parser.parse_args(["--num-images", "20", "--dump", str(path)])
    calls: list[str] = []
    out, err = io.StringIO(), io.StringIO()
    run = lambda: cliinfer.run_inference(args, _spy_backends(calls), stdout=out)  # noqa: E731
    assert clitools.run_main(run, prog="x", stderr=err) == 2
    assert (calls, out.getvalue()) == ([], "")
    assert err.getvalue().startswith(f"x: error: --dump {path}: ")
    assert reason in err.getvalue()
    assert err.getvalue().count("\n") == 1


def test_results_come_before_the_file_and_the_name_is_kept(capsys, tmp_path):
    path = tmp_path / "outputs"  # no .npz: numpy.savez would have written outputs.npz
    status, out, err = run(capsys, "numpy", "--num-images", "3", "--quiet", "--dump", str(path))
    assert (status, err) == (0, "")
    assert out.startswith("3 MNIST test images (0 to 2), model default.tflite\n")
    assert out.endswith(f"\nwrote {path}\n")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["outputs"]
    with np.load(path) as dump:
        assert dump["predictions"].shape == (3,)


def test_interrupted_dump_leaves_no_file(tmp_path):
    path = tmp_path / "out.npz"

    def interrupted(file):
        file.write(b"half")
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        clitools.write_file(path, interrupted)
    assert list(tmp_path.iterdir()) == []


def test_plurals_and_thousands():
    assert [clitools.plural(n, "image") for n in (0, 1, 2, 10_000)] == [
        "0 images",
        "1 image",
        "2 images",
        "10,000 images",
    ]
    assert clitools.plural(1, "batch", "batches") == "1 batch"
    assert clitools.plural(3, "batch", "batches") == "3 batches"


def test_closed_stdout_ends_quietly():
    """``qnn-ref numpy ... | head -1``: the reader has gone; no message, no traceback."""
    read, write = os.pipe()
    os.close(read)  # every write to the pipe now fails with EPIPE
    try:
        result = subprocess.run(
            [sys.executable, "-m", "qnn_ref", "numpy", "--num-images", "20"],
            stdout=write,
            stderr=subprocess.PIPE,
            text=True,
            check=False,
            env={"PATH": "/usr/bin:/bin", "NO_COLOR": "1"},
        )
    finally:
        os.close(write)
    assert (result.returncode, result.stderr) == (141, "")


def test_litert_notice_stays_off_the_terminal():
    """LiteRT's C++ code prints the XNNPACK notice on descriptor 2; the CLI's stderr is clean."""
    result = _python_m("litert", "--quiet")
    assert (result.returncode, result.stderr) == (0, "")
    assert result.stdout == "image 0: label 7; predicted: litert 7 (right)\n"


def test_native_stderr_other_than_the_notice_passes_through(capfd):
    with _litert._native_stderr_without_notice():
        os.write(2, b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n")
        os.write(2, b"ERROR: a real problem\n")
    assert capfd.readouterr().err == "ERROR: a real problem\n"


@pytest.mark.parametrize("command", ["litert", "numpy"])
def test_cnn_by_name_dumps_feature_maps(capsys, tmp_path, command):
    """``--model cnn`` runs the shipped CNN; the dump keeps each layer's [N, H, W, C] shape."""
    dump = tmp_path / "cnn.npz"
    argv = ("--model", "cnn", "--num-images", "3", "--dump", str(dump), "--quiet")
    status, out, err = run(capsys, command, *argv)
    assert (status, err) == (0, "")
    assert "model cnn.tflite" in out
    model = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
    expected = qnn_ref.run_litert(
        model, qnn_ref.preprocess(qnn_ref.load_mnist("test")[0][:3], model.input_shape)
    )
    with np.load(dump) as saved:
        assert saved["input"].shape == (3, *model.layers[0].input_shape)
        for i, layer in enumerate(model.layers):
            shape = (3, *layer.output_shape) if hasattr(layer, "output_shape") else (3, 10)
            assert saved[f"layer{i}"].shape == shape
            np.testing.assert_array_equal(saved[f"layer{i}"], expected.layers[i], strict=True)


def test_compare_cnn_by_name(capsys):
    status, out, _ = run(capsys, "compare", "--model", "cnn", "--num-images", "20", "--quiet")
    assert status == 0
    assert re.search(r"^layer0 +20x14x14x8 +0 +0 +0$", out, re.MULTILINE)
    assert out.endswith("result: identical in every layer\n")


def test_a_file_wins_over_a_shipped_name(capsys, tmp_path, monkeypatch):
    """``--model cnn`` reads ./cnn when such a file exists: a path never changes meaning."""
    shutil.copyfile(qnn_ref.default_model_path(), tmp_path / "cnn")
    monkeypatch.chdir(tmp_path)
    assert cliinfer.model_path("cnn") == Path("cnn")
    assert cliinfer.model_path("mlp") == qnn_ref.shipped_model_path("mlp")
    status, out, _ = run(capsys, "info", "cnn")
    assert (status, out.split(" ")[0]) == (0, "cnn")


@pytest.mark.parametrize("command", ["litert", "numpy", "compare", "info"])
def test_missing_model_is_a_usage_error(capsys, command):
    status, out, err = run(capsys, command, "--model", "mpl")
    assert (status, out) == (2, "")
    assert err == (
        f"qnn-ref {command}: error: argument --model: 'mpl' is neither a file nor a shipped "
        f"model; give a .tflite path or mlp or cnn (see qnn-ref {command} --help)\n"
    )


@pytest.mark.parametrize("width", [40, 80, 133])
def test_single_image_rows_wrap_to_the_width(width):
    """Rows of int8 values fill the width and never pass it; every value is shown once."""
    model = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
    images, labels = qnn_ref.load_mnist("test")
    selection = clireport.Selection(images[:1], labels[:1], np.arange(1))
    x = qnn_ref.preprocess(images[:1], model.input_shape)
    outputs = {"litert": qnn_ref.run_litert(model, x), "numpy": qnn_ref.run_numpy(model, x)}
    text = clireport.report_single(model, selection, outputs, color=False, width=width)
    lines = text.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("layer0 (CONV_2D")))
    rows = lines[start + 1 : lines.index("", start)]
    assert max(len(row) for row in rows) <= width
    per_row = (width - len("  litert ")) // 5
    assert len(rows[0]) > width - 5  # full: one more value would not fit
    values = [int(v) for row in rows for v in row.split() if v not in ("litert", "numpy")]
    expected = outputs["litert"].layers[0][0].reshape(-1)
    assert values == [*expected.tolist(), *expected.tolist()]  # both backends, in HWC order
    assert rows[1].startswith("  " + " " * len("litert"))
    assert len(rows[0].split()) == per_row + 1


def test_terminal_width_follows_columns(monkeypatch):
    monkeypatch.setenv("COLUMNS", "123")
    assert terminal.width(io.StringIO()) == 123
    monkeypatch.delenv("COLUMNS")
    assert terminal.width(io.StringIO()) == terminal.DEFAULT_WIDTH


def test_a_streaming_backend_can_say_what_takes_the_time(default_model: qnn_ref.Model) -> None:
    """``progress(done, note)`` shows the note beside the bar (a simulation building before any
    image is done); ``""`` clears it; a stale ``done`` never moves the bar back."""
    model = default_model
    x = np.zeros((4, model.in_features), np.float32)
    seen: list[str] = []
    stream = io.StringIO()

    class Building:
        def run_all(self, model, x, *, rounding, progress):
            progress(0, "building simulators: 0 of 2 workers ready")
            seen.append(stream.getvalue())
            progress(3)
            progress(0, "")
            assert bar.n == 3
            progress(4)
            return qnn_ref.run_numpy(model, x, rounding=rounding)

    bar = clitools.tqdm(total=len(x), file=stream, disable=False, mininterval=0)
    with bar:
        cliinfer.run_backend(Building(), model, x, rounding="xnnpack", bar=bar)
        assert bar.n == 4
        assert bar.postfix == ""
    assert "0/4" in seen[0]
    assert "building simulators: 0 of 2 workers ready" in seen[0]
