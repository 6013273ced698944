"""Verilog export and testbench generation, on a small hand-built design (run in Icarus once)."""

import io
import re
import subprocess
from pathlib import Path

import pyrtl
import pytest

import qnn_ref
from pyrtlnet import (
    BatchStimulus,
    ReadPort,
    TestbenchPorts,
    build_design,
    export_verilog,
    make_plan,
    run_testbench,
    write_testbench,
)


def _echo_design(*, extra_input: bool = False, wide_start: bool = False) -> pyrtl.Block:
    """A memory written through ``in_*``, copied to ``out`` memory one word per cycle on start."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):
        start = pyrtl.Input(2 if wide_start else 1, "start")
        in_we, in_addr, in_data = (
            pyrtl.Input(1, "in_we"),
            pyrtl.Input(2, "in_addr"),
            pyrtl.Input(12, "in_data"),
        )
        out_addr, pred_addr = pyrtl.Input(2, "out_addr"), pyrtl.Input(1, "pred_addr")
        done = pyrtl.Output(1, "done")
        out_data, pred_data = pyrtl.Output(12, "out_data"), pyrtl.Output(3, "pred_data")
        if extra_input:
            pyrtl.Input(1, "mode")
        source = pyrtl.MemBlock(12, 2, name="source")
        target = pyrtl.MemBlock(12, 2, name="target")
        source[in_addr] <<= pyrtl.MemBlock.EnabledWrite(in_data, in_we)
        busy, step = pyrtl.Register(1, "busy"), pyrtl.Register(2, "step")
        target[step] <<= pyrtl.MemBlock.EnabledWrite(source[step], busy)
        last = busy & (step == 3)
        busy.next <<= pyrtl.select(start[0], 1, pyrtl.select(last, 0, busy))
        step.next <<= pyrtl.select(busy, (step + 1)[0:2], 0)
        finished = pyrtl.Register(1, "finished")
        finished.next <<= last
        done <<= finished
        out_data <<= target[out_addr]
        pred_data <<= source[pred_addr][0:3]
    return block


def _batches(count: int = 2) -> list[BatchStimulus]:
    return [
        BatchStimulus(
            writes=[(a, (b * 4 + a) * 0x101) for a in range(4)],
            checks={
                "out": [(a, (b * 4 + a) * 0x101, 0xFFF) for a in range(4)],
                "pred": [(1, (b * 4 + 1) & 7, 7)],
            },
        )
        for b in range(count)
    ]


def test_export_keeps_port_names_and_header(tmp_path: Path) -> None:
    path = tmp_path / "echo.v"
    export_verilog(_echo_design(), path, module_name="echo", header="line one\nline two")
    text = path.read_text()
    assert text.startswith("// line one\n// line two\n")
    ports = re.search(r"module echo \(\n(.*?)\n\);", text, re.DOTALL)
    assert ports is not None
    # ANSI style, one port a line; a plain block keeps PyRTL's order (inputs, then outputs).
    assert ports[1].split(",\n") == [
        "    input clk",
        "    input rst",
        "    input [1:0] in_addr",
        "    input [11:0] in_data",
        "    input in_we",
        "    input [1:0] out_addr",
        "    input pred_addr",
        "    input start",
        "    output done",
        "    output [11:0] out_data",
        "    output [2:0] pred_data",
    ]
    assert "Generated automatically via PyRTL" not in text


def test_export_of_a_design_keeps_its_documented_port_order(default_model) -> None:
    design = build_design(make_plan(default_model))
    buffer = io.StringIO()
    export_verilog(design, buffer)
    header = re.search(r"module pyrtlnet \(\n(.*?)\n\);", buffer.getvalue(), re.DOTALL)
    assert header is not None
    names = [line.split()[-1] for line in header[1].split(",\n")]
    assert names == ["clk", "rst", *design.ports]
    assert names[2:6] == ["start", "in_we", "in_addr", "in_data"]


def test_testbench_files_hold_packed_words(tmp_path: Path) -> None:
    files = write_testbench(tmp_path / "tb", _echo_design(), _batches(), images=4)
    assert files.batches == 2
    assert files.images == 4
    assert files.design.is_file()
    # {addr (2 bits), data (12 bits)} -> 14 bits, 4 hex digits per line.
    writes = (files.directory / "writes.hex").read_text().split()
    assert writes[:2] == [f"{0 << 12 | 0:04x}", f"{1 << 12 | 0x101:04x}"]
    assert len(writes) == 8
    # {addr (1 bit), expected (3 bits), mask (3 bits)} -> 7 bits, 2 hex digits.
    preds = (files.directory / "checks_pred.hex").read_text().split()
    assert preds == [f"{1 << 6 | 1 << 3 | 7:02x}", f"{1 << 6 | 5 << 3 | 7:02x}"]
    text = files.testbench.read_text()
    assert "module testbench;" in text
    assert "echo dut(" not in text
    assert "pyrtlnet dut(" in text


def test_custom_port_names(tmp_path: Path) -> None:
    ports = TestbenchPorts(reads={"out": ReadPort("out_addr", "out_data")})
    batches = [BatchStimulus(writes=[(0, 1)], checks={"out": [(0, 1, 0xFFF)]})]
    with pytest.raises(
        ValueError, match=r"^the design has Inputs the testbench does not drive: pred_addr$"
    ):
        write_testbench(tmp_path, _echo_design(), batches, images=1, ports=ports)


@pytest.mark.parametrize(
    ("kwargs", "batches", "message"),
    [
        (
            {"extra_input": True},
            _batches(),
            r"^the design has Inputs the testbench does not drive: mode$",
        ),
        ({"wide_start": True}, _batches(), r"^port 'start' must be 1 bit wide, not 2$"),
        ({}, [], r"^a testbench needs at least one batch$"),
        (
            {},
            [*_batches(1), BatchStimulus(writes=[(0, 0)], checks={})],
            r"^batch 1 has 1 writes, batch 0 has 4$",
        ),
        (
            {},
            [BatchStimulus(writes=[(0, 0)], checks={"logits": []})],
            r"^batch 0 checks unknown read ports or memories: logits$",
        ),
        ({}, [BatchStimulus(writes=[(4, 0)], checks={})], r"^value 4 does not fit in 2 bits$"),
    ],
)
def test_bad_stimulus(
    tmp_path: Path, kwargs: dict[str, bool], batches: list[BatchStimulus], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        write_testbench(tmp_path, _echo_design(**kwargs), batches, images=1)


def test_missing_port(tmp_path: Path) -> None:
    ports = TestbenchPorts(done="finished")
    with pytest.raises(ValueError, match=r"^the design has no top-level Output named 'finished'$"):
        write_testbench(tmp_path, _echo_design(), _batches(), images=1, ports=ports)


def _memory_ports(**memories: str) -> TestbenchPorts:
    return TestbenchPorts(memories=memories)


@pytest.mark.parametrize(
    ("ports", "message"),
    [
        (_memory_ports(tgt="nothing"), r"^the design has no memory named 'nothing'$"),
        (_memory_ports(out="target"), r"^'out' names both a read port and a memory$"),
    ],
)
def test_bad_memory_checks(tmp_path: Path, ports: TestbenchPorts, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_testbench(tmp_path, _echo_design(), _batches(), images=1, ports=ports)


def _memory_batches(wrong: int | None = None) -> list[BatchStimulus]:
    """The echo design's batches, also checking the copy in its internal memory ``target``."""
    batches = []
    for number, batch in enumerate(_batches()):
        target = [
            (a, w ^ (1 if (number, a) == (1, wrong) else 0), m) for a, w, m in batch.checks["out"]
        ]
        batches.append(BatchStimulus(writes=batch.writes, checks={**batch.checks, "tgt": target}))
    return batches


@pytest.mark.tool("iverilog", "vvp")
@pytest.mark.parametrize("wrong", [None, 2])
def test_internal_memories_are_checked(tmp_path: Path, wrong: int | None) -> None:
    """The testbench reads ``dut.target[addr]`` after done: no port needed."""
    files = write_testbench(
        tmp_path,
        _echo_design(),
        _memory_batches(wrong),
        images=8,
        ports=_memory_ports(tgt="target"),
    )
    # {addr (2 bits), expected (12 bits), mask (12 bits)} -> 26 bits, 7 hex digits.
    lines = (files.directory / "checks_tgt.hex").read_text().split()
    assert lines[1] == f"{1 << 24 | 0x101 << 12 | 0xFFF:07x}"
    assert "dut.target[addr_tgt]" in files.testbench.read_text()
    result = run_testbench(files, simulator="iverilog")
    if wrong is None:
        assert result.passed, result.log
        assert (result.batches, result.mismatches) == (2, 0)
    else:
        assert not result.passed
        assert result.mismatches == 1
        assert "MISMATCH batch=1 memory=tgt addr=2 got=606 expected=607 mask=fff" in result.log


@pytest.mark.tool("verilator")
@pytest.mark.parametrize(
    "options",
    [
        {"rounding": "xnnpack"},
        {"rounding": "builtin"},
        {"rounding": "reference"},
        {"batch_size": 4, "array": (4, 8)},
        {"model": "cnn", "batch_size": 2, "array": (2, 4)},
        {"model": "cnn", "rounding": "reference", "array": (1, 4)},
    ],
)
def test_exported_design_is_lint_clean(default_model, tmp_path: Path, options: dict) -> None:
    """``verilator --lint-only -Wall`` finds nothing in the shared design, saved under its
    module's name (DECLFILENAME); PyRTL's temporaries are waived and only they (see
    ``_quiet_temporaries``), so a named signal left unused would still fail this test."""
    if options.pop("model", None) == "cnn":
        default_model = qnn_ref.read_model(qnn_ref.shipped_model_path("cnn"))
    path = tmp_path / "pyrtlnet.v"
    export_verilog(build_design(make_plan(default_model, **options)), path)
    text = path.read_text()
    waived = text[text.index("lint_off UNUSEDSIGNAL") : text.index("lint_on UNUSEDSIGNAL")]
    assert re.findall(r"wire(?:\[\d+:0\])? (\w+);", waived) == re.findall(r"(tmp\d+);", waived)
    result = subprocess.run(
        ["verilator", "--lint-only", "-Wall", str(path)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.mark.tool("verilator")
def test_written_designs_are_named_after_their_modules(default_model, tmp_path: Path) -> None:
    """The files ``pyrtlnet verilog`` writes (plain and ``--axi``) as they are written: each is
    named after its module, so ``-Wall`` finds nothing (the plain design) and no DECLFILENAME
    (the AXI wrapper, whose other style warnings are not this test's business)."""
    import qnn_ref
    from pyrtlnet import build_axi, write_axi_testbench, write_inference_testbench

    golden = qnn_ref.golden(default_model, start=0, count=2)
    plan = make_plan(default_model, array=(2, 4), batch_size=2)
    plain = write_inference_testbench(tmp_path / "plain", build_design(plan), golden).design
    axi = write_axi_testbench(tmp_path / "axi", build_axi(plan), golden).design
    assert (plain.name, axi.name) == ("pyrtlnet.v", "pyrtlnet_axi.v")
    for path, options in ((plain, []), (axi, ["-Wno-fatal"])):
        result = subprocess.run(
            ["verilator", "--lint-only", "-Wall", *options, path.name],
            cwd=path.parent,
            capture_output=True,
            text=True,
            check=False,
        )
        if options:
            assert result.returncode == 0, result.stderr
            assert "DECLFILENAME" not in result.stderr
        else:
            assert (result.returncode, result.stdout, result.stderr) == (0, "", "")
