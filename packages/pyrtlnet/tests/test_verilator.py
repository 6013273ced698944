"""The exported Verilog, run by Verilator and Icarus Verilog, against qnn-ref's golden values.

Every expected value comes from qnn-ref (LiteRT); PyRTL's own simulation only serves as a second
witness that it and the Verilog agree on cycles and outputs.
"""

import shutil
from pathlib import Path

import numpy as np
import pytest

import pyrtlnet
import qnn_ref
from pyrtlnet import (
    SimulationError,
    TestbenchFiles,
    run_testbench,
    simulator_available,
    write_inference_testbench,
)
from qnn_ref import Model

needs_verilator = pytest.mark.skipif(
    not simulator_available("verilator"), reason="verilator is not installed"
)
needs_iverilog = pytest.mark.skipif(
    not simulator_available("iverilog"), reason="iverilog (and vvp) is not installed"
)


def _testbench(
    directory: Path, model: Model, *, start: int, count: int, **config: object
) -> tuple[pyrtlnet.Accelerator, qnn_ref.Golden, TestbenchFiles]:
    accelerator = pyrtlnet.build(model, simulator="simulation", **config)  # type: ignore[arg-type]
    expected = qnn_ref.golden(model, start=start, count=count, rounding=accelerator.plan.rounding)
    return accelerator, expected, write_inference_testbench(directory, accelerator, expected)


@pytest.mark.verilator
@needs_verilator
def test_default_model_1000_images_bit_exact(default_model: Model, tmp_path: Path) -> None:
    accelerator, expected, files = _testbench(
        tmp_path, default_model, start=0, count=1000, batch_size=4, array=(2, 16)
    )
    result = run_testbench(files, simulator="verilator")
    assert result.passed, result.log
    assert (result.images, result.batches, result.mismatches) == (1000, 250, 0)
    assert result.batch_cycles == (accelerator.cycles_per_batch,) * 2
    assert result.cycles == 250 * accelerator.cycles_per_batch

    # PyRTL's simulation of the same design agrees with the Verilog run and with qnn-ref.
    witness = pyrtlnet.build(default_model, simulator="fast", batch_size=4, array=(2, 16))
    run = witness.run(witness.quantize(qnn_ref.load_mnist("test")[0][:8]))
    np.testing.assert_array_equal(run.outputs.layers[-1], expected.layers[-1][:8], strict=True)
    assert run.cycles == 2 * result.batch_cycles[0]


@pytest.mark.verilator
@needs_verilator
@pytest.mark.parametrize(
    ("name", "config"),
    [
        # per-tensor, float I/O, a hidden layer without ReLU; one array per layer
        ("16x16-20-12", {"architecture": "per-layer", "batch_size": 2}),
        # four hidden layers, per-channel; an array that divides no layer size, short last batch
        ("10x10-9-7-5-11", {"array": (3, 4), "batch_size": 5, "rounding": "reference"}),
    ],
)
def test_other_model_shapes(
    trained_models: dict[str, Model], tmp_path: Path, name: str, config: dict[str, object]
) -> None:
    accelerator, _, files = _testbench(
        tmp_path, trained_models[name], start=100, count=203, **config
    )
    result = run_testbench(files, simulator="verilator")
    assert result.passed, result.log
    assert (result.images, result.mismatches) == (203, 0)
    assert result.batch_cycles == (accelerator.cycles_per_batch,) * 2


@pytest.mark.iverilog
@needs_iverilog
def test_icarus_a_few_images(default_model: Model, tmp_path: Path) -> None:
    accelerator, _, files = _testbench(
        tmp_path, default_model, start=7, count=3, batch_size=2, array=(3, 5), rounding="builtin"
    )
    result = run_testbench(files, simulator="iverilog", vcd=True)
    assert result.passed, result.log
    assert (result.images, result.batches, result.mismatches) == (3, 2, 0)
    assert result.batch_cycles == (accelerator.cycles_per_batch,) * 2
    assert (files.directory / "waveform.vcd").stat().st_size > 0


@pytest.mark.iverilog
@needs_iverilog
def test_icarus_reports_a_wrong_expected_value(default_model: Model, tmp_path: Path) -> None:
    _, _, files = _testbench(tmp_path, default_model, start=0, count=2, batch_size=2, array=(2, 4))
    checks = files.directory / "checks_out.hex"
    lines = checks.read_text().splitlines()
    # Flip the lowest cared-for bit of word 3's expected value: {addr, word, mask}, 16-bit fields.
    value = int(lines[3], 16) ^ (1 << 16)
    lines[3] = f"{value:0{len(lines[3])}x}"
    checks.write_text("\n".join(lines) + "\n")
    result = run_testbench(files, simulator="iverilog")
    assert not result.passed
    assert result.mismatches == 1
    assert "MISMATCH batch=0 port=out addr=3 " in result.log


def test_missing_simulator_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SimulationError, match=r"^verilator is not installed \(needs verilator\)$"):
        run_testbench(None, simulator="verilator")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^simulator must be one of verilator, iverilog, not 'vcs'$"
    ):
        simulator_available("vcs")
