"""The exported Verilog, run by Verilator and Icarus Verilog, against qnn-ref's golden values.

Every expected value comes from qnn-ref (LiteRT): every layer's activations, read out of the
design's memories, and the predictions; every batch the testbench also checks the design's own
cycle counter against its count. PyRTL's own simulation only serves as a second witness that it
and the Verilog agree on cycles and outputs.
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

iverilog = pytest.mark.tool("iverilog", "vvp")


def _testbench(
    directory: Path, model: Model, *, start: int, count: int, **config: object
) -> tuple[pyrtlnet.Design, qnn_ref.Golden, TestbenchFiles]:
    design = pyrtlnet.build_design(pyrtlnet.make_plan(model, **config))  # type: ignore[arg-type]
    expected = qnn_ref.golden(model, start=start, count=count, rounding=design.plan.rounding)
    return design, expected, write_inference_testbench(directory, design, expected)


@pytest.mark.tool("verilator")
def test_default_model_1000_images_bit_exact(default_model: Model, tmp_path: Path) -> None:
    _, expected, files = _testbench(
        tmp_path, default_model, start=0, count=1000, batch_size=4, array=(2, 16)
    )
    result = run_testbench(files, simulator="verilator")
    assert result.passed, result.log
    assert (result.images, result.batches, result.mismatches) == (1000, 250, 0)
    # 1 + sum over layers of (T - 1) * max(k, R, C) + k + R + C + 3 + 9,
    # T = ceil(4/2) * ceil(n/16): layer 0 (k 144, n 18, T 4) 606, layer 1 (k 18, n 10, T 2) 66.
    assert result.batch_cycles == (1 + 606 + 66,) * 2
    assert result.cycles == 250 * (1 + 606 + 66)

    # PyRTL's simulation of the same design agrees with the Verilog run and with qnn-ref.
    witness = pyrtlnet.build(default_model, simulator="fast", batch_size=4, array=(2, 16))
    run = witness.run(witness.quantize(qnn_ref.load_mnist("test")[0][:8]))
    np.testing.assert_array_equal(run.outputs.layers[-1], expected.layers[-1][:8], strict=True)
    assert run.cycles == 2 * result.batch_cycles[0]


@pytest.mark.tool("verilator")
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
    design, _, files = _testbench(tmp_path, trained_models[name], start=100, count=203, **config)
    result = run_testbench(files, simulator="verilator")
    assert result.passed, result.log
    assert (result.images, result.mismatches) == (203, 0)
    assert result.batch_cycles == (design.cycles_per_batch,) * 2
    layers = len(trained_models[name].layers)
    assert sorted(p.name for p in files.directory.glob("checks_*.hex")) == sorted(
        [f"checks_act{i + 1}.hex" for i in range(layers)] + ["checks_out.hex", "checks_pred.hex"]
    )


@iverilog
def test_icarus_a_few_images(default_model: Model, tmp_path: Path) -> None:
    _, _, files = _testbench(
        tmp_path, default_model, start=7, count=3, batch_size=2, array=(3, 5), rounding="builtin"
    )
    result = run_testbench(files, simulator="iverilog", vcd=True)
    assert result.passed, result.log
    assert (result.images, result.batches, result.mismatches) == (3, 2, 0)
    # T = ceil(2/3) * ceil(n/5): layer 0 (k 144, n 18, T 4) 3*144 + 144 + 8 + 3 + 9, layer 1
    # (T 2) 44 + 3 + 9.
    assert result.batch_cycles == (1 + 596 + 56,) * 2
    assert (files.directory / "waveform.vcd").stat().st_size > 0


def _flip_expected_bit(path: Path, line: int, bit: int) -> None:
    """Flip one bit of one {addr, expected word, mask} line of a checks file."""
    lines = path.read_text().splitlines()
    lines[line] = f"{int(lines[line], 16) ^ (1 << bit):0{len(lines[line])}x}"
    path.write_text("\n".join(lines) + "\n")


@iverilog
@pytest.mark.parametrize(
    ("checks", "line", "report"),
    [
        ("checks_out.hex", 3, "MISMATCH batch=0 port=out addr=3 "),
        ("checks_act1.hex", 5, "MISMATCH batch=0 memory=act1 addr=5 "),  # the hidden layer
        ("checks_act2.hex", 11, "MISMATCH batch=1 memory=act2 addr=1 "),
    ],
)
def test_icarus_reports_a_wrong_expected_value(
    default_model: Model, tmp_path: Path, checks: str, line: int, report: str
) -> None:
    _, _, files = _testbench(tmp_path, default_model, start=0, count=4, batch_size=2, array=(2, 4))
    # The lowest cared-for bit of the expected word: {addr, word, mask}, 16-bit word and mask.
    _flip_expected_bit(files.directory / checks, line, 16)
    result = run_testbench(files, simulator="iverilog")
    assert not result.passed
    assert result.mismatches == 1
    assert report in result.log


@iverilog
def test_icarus_checks_the_design_cycle_counter(
    default_model: Model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A design whose counter is off by two fails the testbench, every batch."""
    from pyrtlnet import _design

    counter = _design._cycle_counter
    monkeypatch.setattr(
        _design,
        "_cycle_counter",
        lambda *args: (counter(*args) + 2)[: args[-1].bit_length()],  # args[-1]: the count
    )
    # 365 cycles on 1x16: the count plus two still fits the counter's 9 bits.
    design, _, files = _testbench(tmp_path, default_model, start=0, count=3, array=(1, 16))
    result = run_testbench(files, simulator="iverilog")
    assert not result.passed
    assert result.mismatches == 3
    cycles = design.cycles_per_batch
    assert f"MISMATCH batch=2 cycles design={cycles + 2} testbench={cycles}" in result.log


def test_missing_simulator_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(shutil, "which", lambda name: None)
    with pytest.raises(SimulationError, match=r"^verilator is not installed \(needs verilator\)$"):
        run_testbench(None, simulator="verilator")  # type: ignore[arg-type]
    with pytest.raises(
        ValueError, match=r"^simulator must be one of verilator, iverilog, not 'vcs'$"
    ):
        simulator_available("vcs")
