"""yosys reports: real numbers from a small pyrtlnet design, and the FPGA budget check.

The design's model is written by hand with :func:`qnn_ref.testing.write_model`: no TensorFlow.
"""

import json
import re
import subprocess
from pathlib import Path

import pytest

import pyrtlnet
from pyrtlnet import (
    PYNQ_Z2,
    Budget,
    FlowResult,
    SynthError,
    SynthProgress,
    SynthReport,
    check_budget,
    estimate_synthesis,
    run_yosys,
)
from pyrtlnet._synth import synth_commands
from qnn_ref import Model


@pytest.fixture(scope="module")
def small_design(small_model: Model) -> pyrtlnet.Design:
    """The 64-16-10 model on a shared 1x2 array: small enough for yosys in seconds."""
    return pyrtlnet.build_design(pyrtlnet.make_plan(small_model, array=(1, 2)))


@pytest.fixture(scope="module")
def report(
    small_design: pyrtlnet.Design, tmp_path_factory: pytest.TempPathFactory
) -> tuple[SynthReport, Path, list[SynthProgress]]:
    """All three flows on the design itself (run_yosys exports it into the workdir)."""
    workdir = tmp_path_factory.mktemp("yosys")
    steps: list[SynthProgress] = []
    return run_yosys(small_design, workdir=workdir, progress=steps.append), workdir, steps


@pytest.mark.tool("yosys")
def test_flows_report_real_cell_counts(
    report: tuple[SynthReport, Path, list[SynthProgress]],
) -> None:
    synth, workdir, _ = report
    small_design = workdir / "pyrtlnet.v"  # named after its module
    assert "module pyrtlnet (" in small_design.read_text()
    assert set(synth.flows) == {"synth", "synth_xilinx", "synth_ice40"}
    for flow in synth.flows.values():
        assert flow.cells == sum(flow.cell_types.values()) > 0
    # Cross-check the JSON statistics with yosys' own text report of the generic netlist.
    script = synth_commands("synth", "-flatten -top pyrtlnet")
    text = subprocess.run(
        ["yosys", "-p", "; ".join((f"read_verilog {small_design}", *script, "stat"))],
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


@pytest.mark.tool("yosys")
def test_progress_says_what_runs_and_how_long(
    report: tuple[SynthReport, Path, list[SynthProgress]],
) -> None:
    synth, _, steps = report
    assert [(s.flow, s.index, s.count, s.result is None) for s in steps] == [
        ("synth", 1, 3, True),
        ("synth", 1, 3, False),
        ("synth_xilinx", 2, 3, True),
        ("synth_xilinx", 2, 3, False),
        ("synth_ice40", 3, 3, True),
        ("synth_ice40", 3, 3, False),
    ]
    assert [s.result for s in steps[1::2]] == list(synth.flows.values())
    assert all(s.result.seconds > 0 for s in steps[1::2])


@pytest.mark.tool("yosys")
def test_report_json_and_budget(report: tuple[SynthReport, Path, list[SynthProgress]]) -> None:
    synth, workdir, _ = report
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
        run_yosys(tmp_path / "pyrtlnet.v", flows=["synth_ecp5"])


@pytest.mark.tool("yosys")
def test_missing_file_and_broken_verilog(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"^no Verilog file at .*nothing\.v$"):
        run_yosys(tmp_path / "nothing.v")
    broken = tmp_path / "broken.v"
    broken.write_text("module pyrtlnet(; endmodule\n")
    with pytest.raises(SynthError, match=r"^yosys synth failed \(exit 1\):"):
        run_yosys(broken, flows=["synth"])


@pytest.mark.parametrize(
    ("architecture", "array", "batch_size", "elements", "large"),
    [
        ("shared", (1, 16), 1, 16, False),  # the default design: 2 to 4 minutes of yosys
        ("shared", (1, 16), 16, 16, False),
        ("shared", (4, 16), 16, 64, True),  # over 5 minutes for two flows
        ("shared", (16, 16), 16, 256, True),  # over 40 minutes for three flows
        ("per-layer", None, 16, 16 * 18 + 16 * 10, True),
    ],
)
def test_estimate_warns_on_the_designs_that_took_long(
    default_model: Model,
    architecture: str,
    array: tuple[int, int] | None,
    batch_size: int,
    elements: int,
    large: bool,
) -> None:
    plan = pyrtlnet.make_plan(
        default_model, architecture=architecture, array=array, batch_size=batch_size
    )
    estimate = estimate_synthesis(pyrtlnet.build_design(plan))
    assert estimate.processing_elements == elements
    assert estimate.large is large
    # The writable memories: act0..act2 and pred, each 8 * lanes (pred: 4 * lanes) bits wide.
    rows = plan.lanes
    depths = [1 << max(1, (words - 1).bit_length()) for words in plan.memory_words]
    pred_depth = 1 << max(1, (plan.m_tiles - 1).bit_length())
    assert estimate.memory_bits == 8 * rows * sum(depths) + 4 * rows * pred_depth


def test_estimate_grows_with_the_array(default_model: Model) -> None:
    sizes = [
        estimate_synthesis(
            pyrtlnet.build_design(pyrtlnet.make_plan(default_model, array=(rows, 16)))
        ).logic_bits
        for rows in (1, 2, 4)
    ]
    assert sizes[0] < sizes[1] < sizes[2]


@pytest.mark.tool("yosys")
@pytest.mark.parametrize("script", ["synth", "synth_xilinx", "synth_ice40", "synth_ecp5"])
def test_memories_merge_before_the_first_opt(script: str) -> None:
    """The script runs to the step where yosys' own help first lists an ``opt`` (which would
    split the read registers), merges the memories there, then runs on from that step."""
    commands = synth_commands(script, "-top t", "-json n.json")
    step = commands[0].rsplit("-run begin:", 1)[1]
    assert commands[1:4] == ("proc", "opt_clean", "memory_dff")
    assert commands[4] == f"{script} -top t -run {step}: -json n.json"
    text = subprocess.run(
        ["yosys", "-p", f"help {script}"], capture_output=True, text=True, check=True
    ).stdout
    listed = re.findall(r"^    (\w+):|^        (\S+)", text[text.index("    begin:") :], re.M)
    labels = [label for label, _ in listed if label]
    first_opt = next(i for i, (_, command) in enumerate(listed) if command.startswith("opt"))
    # The label of the step that holds the first opt is the one the script stops before.
    assert [label for label, _ in listed[:first_opt] if label][-1] == step
    assert step in labels
