"""The AXI wrapper: register map, frame layouts, and the Verilator testbench with random stalls."""

import re
from pathlib import Path

import numpy as np
import pyrtl
import pytest

import qnn_ref
from pyrtlnet import (
    AXI_ADDR_BITS,
    AXI_REGISTERS,
    AxiTestbenchFiles,
    axi_input_frame,
    build_axi,
    make_plan,
    run_axi_testbench,
    write_axi_testbench,
)
from pyrtlnet.cli import main
from qnn_ref import Model

DOCS = Path(__file__).parents[3] / "docs" / "pyrtlnet" / "axi.rst"


def test_register_map_is_word_aligned_and_fields_do_not_overlap() -> None:
    offsets = [r.offset for r in AXI_REGISTERS]
    assert offsets == sorted(set(offsets))
    assert all(o % 4 == 0 and o < 1 << AXI_ADDR_BITS for o in offsets)
    for register in AXI_REGISTERS:
        used = 0
        for field in register.fields:
            assert field.mask < 1 << 32, (register.name, field.name)
            assert not used & field.mask, (register.name, field.name)
            used |= field.mask


def test_docs_list_every_register_and_field() -> None:
    text = DOCS.read_text()
    for register in AXI_REGISTERS:
        assert re.search(rf"``0x{register.offset:02X}``[\s-]+``{register.name}``", text), register
        for field in register.fields:
            assert f"``{field.name}``" in text, (register.name, field.name)


def test_input_frame_is_the_transposed_batch(default_model: Model) -> None:
    axi = build_axi(make_plan(default_model, batch_size=3))
    rng = np.random.default_rng(0)
    q = rng.integers(-128, 128, (2, default_model.in_features)).astype(np.int8)
    frame = axi_input_frame(axi, q)
    # Independently: byte i of beat f is image i's feature f; lane 2 repeats the last image.
    lanes = np.stack([q[0], q[1], q[1]], axis=1).astype(np.uint8)
    want = [int.from_bytes(row.tobytes(), "little") for row in lanes]
    assert axi.beat_bytes == 4
    assert axi.in_beats == default_model.in_features
    assert frame == want


def test_bad_stall_probability(default_model: Model, tmp_path: Path) -> None:
    axi = build_axi(make_plan(default_model))
    expected = qnn_ref.golden(default_model, count=1, backend="numpy")
    with pytest.raises(ValueError, match=r"^the stall probability must be in \[0, 1\), not 1$"):
        write_axi_testbench(tmp_path, axi, expected, stall=1)


def _run(model: Model, directory: Path, count: int, **options: object) -> AxiTestbenchFiles:
    plan = make_plan(model, **options)
    expected = qnn_ref.golden(model, count=count, rounding=plan.rounding)
    files = write_axi_testbench(directory, build_axi(plan), expected, stall=0.15, malformed=True)
    result = run_axi_testbench(files)
    assert result.passed, result.log
    assert (result.images, result.mismatches) == (count, 0)
    assert (result.malformed, result.errors_seen) == (2, 2)
    return files


@pytest.mark.tool("verilator")
def test_axi_testbench_with_stalls_on_the_shipped_model(
    default_model: Model, tmp_path: Path
) -> None:
    # Two row tiles of 4 lanes per batch of 6: the last tile's two padding lanes are don't-care.
    files = _run(default_model, tmp_path, 300, batch_size=6, array=(4, 16), rounding="builtin")
    # The same testbench must fail when one expected logit is wrong.
    path = files.directory / "expected.txt"
    lines = path.read_text().splitlines()
    word, mask = lines[7].split()
    lines[7] = f"{int(word, 16) ^ 0x100:0{len(word)}x} {mask}"
    path.write_text("\n".join(lines) + "\n")
    result = run_axi_testbench(files)
    assert not result.passed
    assert result.mismatches == 1


@pytest.mark.tool("verilator")
def test_axi_testbench_with_stalls_on_a_per_layer_design(
    small_model: Model, tmp_path: Path
) -> None:
    # 3 lanes in 4-byte beats: the padding byte is ignored on input and zero on output.
    _run(small_model, tmp_path, 200, batch_size=3, architecture="per-layer")


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["verilate", "--stall", "0.1"], "pyrtlnet verilate: error: --stall needs --axi"),
        (
            ["verilate", "--axi", "--stall", "1.5"],
            "pyrtlnet verilate: error: argument --stall: must be a probability in [0, 1), "
            "not '1.5'",
        ),
        (
            ["verilate", "--axi", "--simulator", "iverilog"],
            "pyrtlnet verilate: error: --axi runs a Verilator C++ testbench: use --simulator "
            "verilator",
        ),
    ],
)
def test_axi_usage_errors(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    assert main(argv) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.startswith(message)
    assert captured.err.count("\n") == 1


def test_verilog_axi_writes_the_wrapper(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    argv = ["verilog", "--axi", "--num-images", "5", "--batch-size", "2", "--output", str(tmp_path)]
    assert main(argv) == 0
    assert "module pyrtlnet_axi" in capsys.readouterr().out
    design = (tmp_path / "pyrtlnet_axi.v").read_text()  # named after its module
    assert re.search(r"^module pyrtlnet_axi\b", design, re.MULTILINE)
    assert "// AXI4-Lite registers (32 bits):" in design
    ports = re.findall(r"\b(?:input|output)\b[^;]*?\b(\w+)\s*[;,)]", design)
    assert {"s_axis_tdata", "m_axis_tlast", "s_axi_rdata", "irq"} <= set(ports)
    assert "in_we" not in ports
    regs = (tmp_path / "axi_regs.h").read_text()
    assert "#define REG_STATUS 0x04u" in regs
    assert "#define STATUS_ERR_LONG_MASK 0x00000008u" in regs
    # 3 frames of 2 images (the last padded) of 11 beats; the malformed frames expect nothing.
    assert (tmp_path / "expected.txt").read_text().count("\n") == 3 * 11
    frames = (tmp_path / "frames.txt").read_text().split("\n")
    assert [line for line in frames if " " in line] == ["0 144", "1 72", "2 147", "0 144", "0 144"]


@pytest.mark.parametrize("logits", [True, False])
def test_one_batch_in_pyrtl_follows_the_documented_timing(
    default_model: Model, logits: bool
) -> None:
    """The waveform of docs/pyrtlnet/axi.rst, in PyRTL's simulator (no Verilog involved): input
    beat 1 stalled a cycle, the batch starts in the cycle after the last beat, the output frame
    leaves from the cycle after done, and a beat held by tready is sent once."""
    plan = make_plan(default_model, batch_size=4)
    axi = build_axi(plan, logits=logits)
    assert axi.out_beats == (11 if logits else 1)
    expected = qnn_ref.golden(default_model, count=4, backend="numpy")
    frame = axi_input_frame(axi, expected.input)
    watched = {"core_start", "core_done", "s_axis_tready", "m_axis_tvalid", "m_axis_tlast"}
    watched |= {"m_axis_tdata"}
    wires = [w for w in axi.block.wirevector_subset() if w.name in watched]
    sim = pyrtl.FastSimulation(tracer=pyrtl.SimulationTrace(wires_to_track=wires), block=axi.block)
    idle = {name: 0 for name, port in axi.ports.items() if port.direction == "input"}
    sim.step({**idle, "s_axi_awvalid": 1, "s_axi_wvalid": 1, "s_axi_wdata": 3, "s_axi_bready": 1})
    sim.step({**idle, "s_axi_bready": 1})
    trace = sim.tracer.trace
    sent, starts, done, beat = [], [], None, 0
    for cycle in range(2 * plan.cycles_per_batch):
        valid = int(cycle != 1 and beat < len(frame))
        ready = int(done is None or cycle != done + 2)
        last = int(valid and beat == len(frame) - 1)
        data = frame[beat] if valid else 0
        sim.step(
            {
                **idle,
                "s_axis_tvalid": valid,
                "s_axis_tdata": data,
                "s_axis_tlast": last,
                "m_axis_tready": ready,
            }
        )
        beat += valid & trace["s_axis_tready"][-1]
        if trace["core_start"][-1]:
            starts.append(cycle)
        if trace["core_done"][-1]:
            done = cycle
        if trace["m_axis_tvalid"][-1] & ready:
            sent.append((cycle, trace["m_axis_tdata"][-1], trace["m_axis_tlast"][-1]))
    assert beat == axi.in_beats == 144
    assert starts == [145]
    assert done == 145 + plan.cycles_per_batch
    assert [c - done for c, _, _ in sent] == [1, *range(3, 3 + axi.out_beats - 1)]
    assert [t for _, _, t in sent] == [0] * (axi.out_beats - 1) + [1]
    words = [w for _, w, _ in sent]
    assert [(words[0] >> 8 * i) & 0xFF for i in range(4)] == list(expected.predictions)
    if logits:
        values = np.array([[(w >> 8 * i) & 0xFF for i in range(4)] for w in words[1:]]).T
        np.testing.assert_array_equal(
            values.astype(np.uint8).view(np.int8), expected.layers[-1], strict=True
        )
