"""yosys reports: real numbers from a small pyrtlnet design, and the FPGA budget check."""

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest

import pyrtlnet
from pyrtlnet import (
    PYNQ_Z2,
    Budget,
    FlowResult,
    SynthError,
    SynthReport,
    check_budget,
    export_verilog,
    run_yosys,
)
from qnn_ref import Model

needs_yosys = pytest.mark.skipif(shutil.which("yosys") is None, reason="yosys is not installed")


@pytest.fixture(scope="module")
def small_design(
    trained_models: dict[str, Model], tmp_path_factory: pytest.TempPathFactory
) -> Path:
    """Verilog of the 64-16-10 model on a shared 1x2 array: small enough for yosys in seconds."""
    accelerator = pyrtlnet.build(trained_models["8x8-16"], array=(1, 2), simulator="simulation")
    path = tmp_path_factory.mktemp("synth") / "design.v"
    export_verilog(accelerator.block, path)
    return path


@pytest.fixture(scope="module")
def report(
    small_design: Path, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SynthReport, Path]:
    if shutil.which("yosys") is None:
        pytest.skip("yosys is not installed")
    workdir = tmp_path_factory.mktemp("yosys")
    return run_yosys(small_design, workdir=workdir), workdir


@pytest.mark.yosys
@needs_yosys
def test_flows_report_real_cell_counts(
    report: tuple[SynthReport, Path], small_design: Path
) -> None:
    synth, _ = report
    assert set(synth.flows) == {"synth", "synth_xilinx", "synth_ice40"}
    for flow in synth.flows.values():
        assert flow.cells == sum(flow.cell_types.values()) > 0
    # Cross-check the JSON statistics with yosys' own text report of the generic netlist.
    text = subprocess.run(
        ["yosys", "-p", f"read_verilog {small_design}; synth -flatten -top pyrtlnet; stat"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    cells = re.findall(r"Number of cells:\s+(\d+)", text)
    assert int(cells[-1]) == synth.generic_cells
    xilinx, ice40 = synth.xilinx, synth.ice40
    assert xilinx is not None
    assert ice40 is not None
    # Two 8x8 multiply-accumulate elements and the requantizers' multipliers use DSP48E1s;
    # flip-flops hold at least the array's two 32-bit accumulators.
    assert xilinx["dsp48e1"] >= 2
    assert xilinx["ffs"] >= 64
    assert xilinx["luts"] > xilinx["lutram_luts"] >= 0
    assert xilinx["bram36"] >= 0
    assert xilinx["carry4"] > 0
    assert ice40["lut4"] > 0
    assert ice40["carry"] > 0
    assert ice40["ffs"] >= 64
    # Longest paths: gates of the generic netlist, picoseconds of the 7-series cells.
    assert synth.logic_depth is not None
    assert synth.logic_depth > 10
    assert xilinx["arrival_ps"] is not None
    assert 1000 < xilinx["arrival_ps"] < 100_000


@pytest.mark.yosys
@needs_yosys
def test_report_json_and_budget(report: tuple[SynthReport, Path]) -> None:
    synth, workdir = report
    data = json.loads(json.dumps(synth.to_json()))
    assert data["generic_cells"] == synth.generic_cells
    assert data["flows"]["synth_xilinx"]["cell_types"]["DSP48E1"] == synth.xilinx["dsp48e1"]
    assert (workdir / "synth_xilinx.json").is_file()
    check = check_budget(synth)
    assert check.fits
    assert check.to_json()["target"] == "Zynq-7020 (Pynq-Z2)"
    tiny = check_budget(synth, Budget("tiny", luts=10, ffs=10**6, dsp48e1=10**3, bram36=1))
    assert not tiny.fits


def _report(cell_types: dict[str, int]) -> SynthReport:
    flow = FlowResult("synth_xilinx", sum(cell_types.values()), cell_types, 0.0, 2500)
    return SynthReport(flows={"synth_xilinx": flow})


def test_xilinx_resources_count_lut_rams_and_half_brams() -> None:
    report = _report(
        {"LUT2": 3, "LUT6": 4, "RAM32M": 2, "RAM64X1D": 1, "FDRE": 5, "FDSE": 1, "DSP48E1": 2}
        | {"RAMB36E1": 1, "RAMB18E1": 3, "CARRY4": 7, "BUFG": 1, "IBUF": 9}
    )
    assert report.xilinx == {
        "luts": 3 + 4 + 2 * 4 + 2,
        "lutram_luts": 10,
        "ffs": 6,
        "dsp48e1": 2,
        "bram36": 2.5,
        "carry4": 7,
        "arrival_ps": 2500,
    }
    assert report.generic_cells is None
    assert report.ice40 is None


def test_budget_boundaries() -> None:
    at_limit = _report({"LUT6": PYNQ_Z2.luts, "FDRE": PYNQ_Z2.ffs, "DSP48E1": PYNQ_Z2.dsp48e1})
    assert check_budget(at_limit).fits
    over = _report({"LUT6": 1, "DSP48E1": PYNQ_Z2.dsp48e1 + 1})
    check = check_budget(over)
    assert not check.fits
    assert check.rows[2] == ("DSP48E1", PYNQ_Z2.dsp48e1 + 1, 220)


def test_bad_requests(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^a budget check needs the synth_xilinx flow$"):
        check_budget(SynthReport(flows={}))
    with pytest.raises(
        ValueError,
        match=r"^unknown yosys flow 'synth_ecp5'; choose from synth, synth_xilinx, synth_ice40$",
    ):
        run_yosys(tmp_path / "design.v", flows=["synth_ecp5"])


@pytest.mark.yosys
@needs_yosys
def test_missing_file_and_broken_verilog(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^no Verilog file at .*nothing\.v$"):
        run_yosys(tmp_path / "nothing.v")
    broken = tmp_path / "broken.v"
    broken.write_text("module pyrtlnet(; endmodule\n")
    with pytest.raises(SynthError, match=r"^yosys synth failed \(exit 1\):"):
        run_yosys(broken, flows=["synth"])
