"""Verilog export of a PyRTL design and a self-checking Verilog testbench for it.

The testbench is generic: it only knows the design's top-level ports and the names of the
memories it may look into, grouped in a :class:`TestbenchPorts`, and per batch a list of words to
write through one write port and a list of (address, expected word, care mask) triples to read
back through synchronous read ports or straight out of internal memories (a hierarchical
reference such as ``dut.act1[addr]``, which changes nothing in the design). All stimulus and all
expected values live in ``$readmemh`` files beside the testbench, so a simulator runs thousands
of batches without any Python in the loop, and the expected values are whatever the caller
computed (pyrtlnet passes qnn-ref's golden outputs, never PyRTL's simulation).

Timing, with every testbench action at a falling clock edge so nothing races the design::

    rst   ‾‾|_______________________________________________________
    in_we ___|‾‾‾‾ writes ‾‾‾‾|______________________________________
    start ____________________|‾|____________________________________
    done  _____________________________________|‾|_________________
                              |<-- cycles ----->|  then read checks

A read port's address is set at a falling edge and its word compared one rising edge later (the
design registers the address: a synchronous, block-RAM read); a memory is read directly.

``cycles`` counts rising edges from the one that samples ``start`` up to the one after which
``done`` is first seen high: a design whose ``done`` rises right after the ``start`` edge takes 1.
A design with its own cycle counter (:attr:`TestbenchPorts.cycles`) must agree with that count
every batch, or the batch counts as a mismatch.
"""

from __future__ import annotations

import dataclasses
import io
import math
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, TextIO

import numpy as np
import pyrtl

from ._design import Design
from ._validate import check_positive

if TYPE_CHECKING:
    from qnn_ref import Outputs

__all__ = [
    "BatchStimulus",
    "ReadPort",
    "TestbenchFiles",
    "TestbenchPorts",
    "WritePort",
    "export_verilog",
    "inference_batches",
    "inference_ports",
    "write_inference_testbench",
    "write_testbench",
]

#: File names inside a testbench directory; the simulator runs with that directory as cwd.
#: The design's file is named after its module (``<module>.v``, so ``pyrtlnet.v`` for the
#: default name), as ``verilator -Wall`` expects (DECLFILENAME).
DESIGN_FILE = "pyrtlnet.v"
TESTBENCH_FILE = "testbench.v"
TESTBENCH_TOP = "testbench"
WRITES_FILE = "writes.hex"
#: Printed at most this many mismatch lines; every mismatch is still counted.
MAX_REPORTED_MISMATCHES = 10


@dataclasses.dataclass(frozen=True)
class WritePort:
    """Names of a synchronous memory write port at the design's top level.

    :param enable: 1-bit Input; the word is written at the rising edge while it is high.
    :param addr: address Input.
    :param data: data Input.
    """

    enable: str
    addr: str
    data: str


@dataclasses.dataclass(frozen=True)
class ReadPort:
    """Names of a synchronous read port at the design's top level.

    :param addr: address Input, sampled at the rising clock edge.
    :param data: data Output: the word at the address sampled at the last rising edge (one
        cycle of read latency, as a block RAM has; the testbench reads one word per cycle).
    """

    addr: str
    data: str


@dataclasses.dataclass(frozen=True)
class TestbenchPorts:
    """The top-level ports the testbench drives, by PyRTL wire name.

    The defaults are the ports of pyrtlnet's hardware (:func:`pyrtlnet.build_design`): a
    ``start``/``done`` handshake, one write port for the first layer's input memory and read
    ports for the last layer's outputs and the predictions; :func:`write_inference_testbench`
    adds the cycle counter and every activation memory.

    :param start: 1-bit Input, held high for one rising edge to run one batch.
    :param done: 1-bit Output, high after the batch's last result is readable.
    :param write: the port that loads one batch's inputs.
    :param reads: read ports by a short name used in reports and file names.
    :param memories: internal memories the testbench reads after ``done``, by a short name
        (distinct from the read ports') -> the memory's name in the design.
    :param cycles: an Output holding the design's own count of the cycles from ``start`` to
        ``done``, checked against the testbench's count; ``None``: no such port.
    """

    __test__ = False  # not a pytest test class, despite the name

    start: str = "start"
    done: str = "done"
    write: WritePort = WritePort("in_we", "in_addr", "in_data")
    reads: Mapping[str, ReadPort] = dataclasses.field(
        default_factory=lambda: {
            "out": ReadPort("out_addr", "out_data"),
            "pred": ReadPort("pred_addr", "pred_data"),
        }
    )
    memories: Mapping[str, str] = dataclasses.field(default_factory=dict)
    cycles: str | None = None


@dataclasses.dataclass(frozen=True)
class BatchStimulus:
    """One batch for the testbench: what to write, then what to read back.

    :param writes: ``(address, word)`` pairs written in order through the write port.
    :param checks: per read-port or memory name (the keys of :attr:`TestbenchPorts.reads` and
        :attr:`TestbenchPorts.memories`), ``(address, expected word, care mask)`` triples; a
        read word matches when ``word & mask`` equals ``expected & mask`` (lanes that hold no
        real value, e.g. padding rows of a tile, have zero mask bits).
    """

    writes: Sequence[tuple[int, int]]
    checks: Mapping[str, Sequence[tuple[int, int, int]]]


@dataclasses.dataclass(frozen=True)
class TestbenchFiles:
    """Paths of a generated testbench, all inside one directory.

    :param directory: the directory; simulators run there because the testbench reads its
        ``.hex`` files by relative name.
    :param design: the exported design (``<module>.v``).
    :param testbench: the testbench module (``testbench.v``, top module ``testbench``).
    :param images: number of images the stimulus covers (for reports).
    :param batches: number of batches.
    """

    __test__ = False  # not a pytest test class, despite the name

    directory: Path
    design: Path
    testbench: Path
    images: int
    batches: int


def export_verilog(
    design: Design | pyrtl.Block,
    dest: str | os.PathLike[str] | TextIO,
    *,
    module_name: str = "pyrtlnet",
    header: str = "",
) -> None:
    """Write a design as one Verilog module with a synchronous active-high ``rst`` input.

    PyRTL's exporter keeps wire names, so the top-level ports are the design's PyRTL
    Inputs/Outputs plus ``clk`` and ``rst``; memories become ``reg`` arrays (of the same names)
    read through an ``assign`` from a registered address, and ROM contents become ``initial``
    blocks: yosys merges the address register into the read port and maps the memory to block
    RAM where that pays (see :func:`pyrtlnet.run_pnr`).

    :param design: a :class:`~pyrtlnet.Design`, or any PyRTL block; it is not modified.
    :param dest: a file path or an open text file.
    :param module_name: name of the Verilog module.
    :param header: text put as ``//`` comment lines above PyRTL's output, e.g. a port
        description for readers of the Verilog.
    """
    block = design.block if isinstance(design, Design) else design
    buffer = io.StringIO()
    pyrtl.output_to_verilog(buffer, add_reset=True, block=block, module_name=module_name)
    order = ["clk", "rst", *design.ports] if isinstance(design, Design) else None
    comment = "".join(f"// {line}".rstrip() + "\n" for line in header.splitlines())
    text = comment + _quiet_temporaries(_ansi_ports(buffer.getvalue(), order))
    if isinstance(dest, str | os.PathLike):
        Path(dest).write_text(text)
    else:
        dest.write(text)


#: PyRTL's exporter opens every file with this comment, which suggests a synthesis command
#: unrelated to this project's flows.
_STOCK_COMMENT = re.compile(r"// Generated automatically via PyRTL\n(//.*\n)*")

#: The exporter's module line and the port declarations after it, one per line.
_MODULE = re.compile(r"module (\w+)\(.*?\);\n((?:    (?:input|output)\b.*;\n)+)")

#: One of those declarations: direction, optional ``[msb:0]``, name.
_PORT = re.compile(r"    (input|output)(\[\d+:\d+\])? (\w+);")


def _ansi_ports(verilog: str, order: Sequence[str] | None) -> str:
    """PyRTL's module header (a port name list, then one declaration per port) rewritten as
    one ANSI-style list, ``input [7:0] in_addr,`` and so on, in ``order`` (the design's
    documented order after ``clk`` and ``rst``; PyRTL's own order when ``None``), without the
    exporter's stock comment."""
    verilog = _STOCK_COMMENT.sub("", verilog, count=1)
    module = _MODULE.search(verilog)
    assert module, "PyRTL's exporter writes one module header"
    declared = {name: (kind, size) for kind, size, name in _PORT.findall(module[2])}
    names = list(declared) if order is None else list(order)
    assert sorted(names) == sorted(declared), "the order names every port once"
    ports = ",\n".join(
        f"    {declared[name][0]}{' ' + declared[name][1] if declared[name][1] else ''} {name}"
        for name in names
    )
    header = f"module {module[1]} (\n{ports}\n);\n"
    return verilog[: module.start()] + header + verilog[module.end() :]


#: A declaration of one of PyRTL's unnamed temporaries, as its exporter writes it.
_TEMPORARY = re.compile(r"    wire(\[\d+:0\])? tmp\d+;\n")


def _quiet_temporaries(verilog: str) -> str:
    """Group the declarations of PyRTL's temporaries ``tmpN`` under one lint waiver.

    PyRTL's arithmetic widens (``x + 1`` has one bit more than ``x``) and an assignment to a
    narrower register or wire keeps the low bits: that truncation is the intended modular
    arithmetic of counters and addresses. The exporter names each intermediate value at its
    full width, so the top bits of such a ``tmpN`` go unused by design, and
    ``verilator --lint-only -Wall`` reports UNUSEDSIGNAL for each. The declarations (their order
    is free in Verilog) move to the end of the "Temporaries" section between ``lint_off`` and
    ``lint_on``, so the waiver covers only these unnamed wires: an unused bit of a named signal
    still warns.
    """
    lines = [match.group(0) for match in _TEMPORARY.finditer(verilog)]
    if not lines:
        return verilog
    rest = _TEMPORARY.sub("", verilog)
    section = rest.index("    // Temporaries\n")
    end = rest.index("\n\n", section) + 1
    waived = (
        "    /* verilator lint_off UNUSEDSIGNAL */\n"
        + "".join(lines)
        + "    /* verilator lint_on UNUSEDSIGNAL */\n"
    )
    return rest[:end] + waived + rest[end:]


def _port_width(block: pyrtl.Block, name: str, kind: type[pyrtl.WireVector]) -> int:
    """Bit width of the top-level port ``name``, which must be a ``kind`` (Input or Output)."""
    wire = block.wirevector_by_name.get(name)
    if not isinstance(wire, kind):
        raise ValueError(f"the design has no top-level {kind.__name__} named {name!r}")
    return wire.bitwidth


def _memory_bits(block: pyrtl.Block, name: str) -> tuple[int, int]:
    """Address and data width of the memory ``name``, which a testbench can read as
    ``dut.<name>[addr]`` (its Verilog name is its PyRTL name)."""
    memory = block.memblock_by_name.get(name)
    if memory is None or isinstance(memory, pyrtl.RomBlock):
        raise ValueError(f"the design has no memory named {name!r}")
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise ValueError(f"memory {name!r} has no plain Verilog name a testbench can refer to")
    return memory.addrwidth, memory.bitwidth


def _hex_lines(words: Sequence[int], bits: int) -> str:
    """``$readmemh`` text: one zero-padded hex word per line."""
    digits = max(1, math.ceil(bits / 4))
    return "".join(f"{word:0{digits}x}\n" for word in words)


def _pack(fields: Sequence[tuple[int, int]]) -> int:
    """Concatenate ``(value, width)`` fields, first field in the most significant bits."""
    packed = 0
    for value, width in fields:
        if not 0 <= value < 1 << width:
            raise ValueError(f"value {value} does not fit in {width} bits")
        packed = packed << width | value
    return packed


def write_testbench(
    directory: str | os.PathLike[str],
    block: Design | pyrtl.Block,
    batches: Sequence[BatchStimulus],
    *,
    images: int,
    ports: TestbenchPorts | None = None,
    module_name: str = "pyrtlnet",
    header: str = "",
    max_cycles: int = 1_000_000,
) -> TestbenchFiles:
    """Export ``block`` and write a self-checking testbench for ``batches`` into ``directory``.

    Every batch must have the same number of writes and of checks per read port or memory (the
    testbench loops over fixed-size slices of its ``.hex`` files). The testbench prints one
    line per mismatch (the first :data:`MAX_REPORTED_MISMATCHES`) and always ends with::

        RESULT PASS images=N batches=B mismatches=0 cycles=C batch_cycles_min=X batch_cycles_max=Y

    (``FAIL`` if any check mismatched, the design's cycle count disagreed or a batch timed out),
    then ``$finish``. Compiled with the
    macro ``VCD`` defined (Icarus ``-DVCD``, Verilator ``-DVCD --trace``) it dumps every signal
    to ``waveform.vcd``.

    :param directory: created if missing; existing files of the same names are replaced.
    :param block: the design (a :class:`~pyrtlnet.Design` keeps its documented port order in
        the Verilog), with the ports named in ``ports``.
    :param batches: the stimulus; at least one batch.
    :param images: number of images the batches carry, only for the report line.
    :param ports: the port names; default :class:`TestbenchPorts()`.
    :param module_name: Verilog module name of the design.
    :param header: comment text for the top of the design's file (see :func:`export_verilog`).
    :param max_cycles: a batch whose ``done`` has not risen after this many cycles fails the run.
    :returns: the paths written.
    """
    design, block = block, block.block if isinstance(block, Design) else block
    ports = TestbenchPorts() if ports is None else ports
    if not batches:
        raise ValueError("a testbench needs at least one batch")
    check_positive("max_cycles", max_cycles)

    inputs: dict[str, int] = {}
    outputs: dict[str, int] = {}
    for name in (ports.start, ports.write.enable):
        inputs[name] = _port_width(block, name, pyrtl.Input)
        if inputs[name] != 1:
            raise ValueError(f"port {name!r} must be 1 bit wide, not {inputs[name]}")
    outputs[ports.done] = _port_width(block, ports.done, pyrtl.Output)
    if outputs[ports.done] != 1:
        raise ValueError(f"port {ports.done!r} must be 1 bit wide, not {outputs[ports.done]}")
    addr_bits = inputs[ports.write.addr] = _port_width(block, ports.write.addr, pyrtl.Input)
    data_bits = inputs[ports.write.data] = _port_width(block, ports.write.data, pyrtl.Input)
    read_bits: dict[str, tuple[int, int]] = {}
    for key, port in ports.reads.items():
        read_bits[key] = (
            _port_width(block, port.addr, pyrtl.Input),
            _port_width(block, port.data, pyrtl.Output),
        )
        inputs[port.addr], outputs[port.data] = read_bits[key]
    if ports.cycles is not None:
        outputs[ports.cycles] = _port_width(block, ports.cycles, pyrtl.Output)
    for key, name in ports.memories.items():
        if key in ports.reads:
            raise ValueError(f"{key!r} names both a read port and a memory")
        read_bits[key] = _memory_bits(block, name)
    extra = sorted(w.name for w in block.wirevector_subset(pyrtl.Input) if w.name not in inputs)
    if extra:
        raise ValueError(f"the design has Inputs the testbench does not drive: {', '.join(extra)}")

    writes_per_batch = len(batches[0].writes)
    checks_per_batch = {key: len(batches[0].checks.get(key, ())) for key in read_bits}
    write_words: list[int] = []
    check_words: dict[str, list[int]] = {key: [] for key in read_bits}
    for index, batch in enumerate(batches):
        if len(batch.writes) != writes_per_batch:
            raise ValueError(
                f"batch {index} has {len(batch.writes)} writes, batch 0 has {writes_per_batch}"
            )
        unknown = sorted(set(batch.checks) - set(read_bits))
        if unknown:
            raise ValueError(
                f"batch {index} checks unknown read ports or memories: {', '.join(unknown)}"
            )
        write_words += [_pack([(a, addr_bits), (d, data_bits)]) for a, d in batch.writes]
        for key, (a_bits, d_bits) in read_bits.items():
            checks = batch.checks.get(key, ())
            if len(checks) != checks_per_batch[key]:
                raise ValueError(
                    f"batch {index} has {len(checks)} {key!r} checks, "
                    f"batch 0 has {checks_per_batch[key]}"
                )
            check_words[key] += [
                _pack([(a, a_bits), (w, d_bits), (m, d_bits)]) for a, w, m in checks
            ]

    out = Path(directory)
    out.mkdir(parents=True, exist_ok=True)
    files = TestbenchFiles(
        directory=out,
        design=out / f"{module_name}.v",
        testbench=out / TESTBENCH_FILE,
        images=images,
        batches=len(batches),
    )
    export_verilog(design, files.design, module_name=module_name, header=header)
    (out / WRITES_FILE).write_text(_hex_lines(write_words, addr_bits + data_bits))
    for key, (a_bits, d_bits) in read_bits.items():
        if checks_per_batch[key]:
            words = _hex_lines(check_words[key], a_bits + 2 * d_bits)
            (out / f"checks_{key}.hex").write_text(words)
    files.testbench.write_text(
        _testbench_text(
            module_name=module_name,
            ports=ports,
            inputs=inputs,
            outputs=outputs,
            read_bits=read_bits,
            batches=len(batches),
            images=images,
            writes_per_batch=writes_per_batch,
            checks_per_batch=checks_per_batch,
            max_cycles=max_cycles,
        )
    )
    return files


def _vsize(bits: int) -> str:
    return f"[{bits - 1}:0] " if bits > 1 else ""


def _testbench_text(
    *,
    module_name: str,
    ports: TestbenchPorts,
    inputs: Mapping[str, int],
    outputs: Mapping[str, int],
    read_bits: Mapping[str, tuple[int, int]],
    batches: int,
    images: int,
    writes_per_batch: int,
    checks_per_batch: Mapping[str, int],
    max_cycles: int,
) -> str:
    """The testbench module's Verilog (Verilog-2005 plus delays: Icarus and Verilator 5)."""
    w = ports.write
    addr_bits, data_bits = inputs[w.addr], inputs[w.data]
    lines = [
        "// Self-checking testbench generated by pyrtlnet: drives the design only through its",
        "// top-level ports, with stimulus and expected words from the .hex files beside it.",
        "`timescale 1ns/1ps",
        f"module {TESTBENCH_TOP};",
        f"    localparam BATCHES = {batches};",
        f"    localparam IMAGES = {images};",
        f"    localparam WRITES = {writes_per_batch};",
        f"    localparam MAX_CYCLES = {max_cycles};",
        "",
        "    reg clk = 1'b0;",
        "    reg rst = 1'b1;",
    ]
    lines += [f"    reg {_vsize(bits)}{name} = 0;" for name, bits in inputs.items()]
    lines += [f"    wire {_vsize(bits)}{name};" for name, bits in outputs.items()]
    connections = ["clk", "rst", *inputs, *outputs]
    lines += [
        "",
        f"    {module_name} dut(",
        ",\n".join(f"        .{name}({name})" for name in connections),
        "    );",
        "",
        "    always #5 clk = ~clk;",
        "",
        f"    reg [{addr_bits + data_bits - 1}:0] writes "
        f"[0:{max(1, batches * writes_per_batch) - 1}];",
    ]
    # Read ports with nothing to check get neither a .hex file nor an array.
    read_bits = {key: bits for key, bits in read_bits.items() if checks_per_batch[key]}
    for key, (a_bits, d_bits) in read_bits.items():
        size = batches * checks_per_batch[key]
        lines += [
            f"    reg [{a_bits + 2 * d_bits - 1}:0] checks_{key} [0:{size - 1}];",
            f"    reg [{d_bits - 1}:0] expect_{key}, mask_{key};",
        ]
        if key in ports.memories:
            lines.append(f"    reg [{a_bits - 1}:0] addr_{key};")
    lines += [
        "    integer batch, i, waited, mismatches, timeouts, total_cycles, min_cycles, max_cycles;",
        "",
        "    initial begin",
        "`ifdef VCD",
        '        $dumpfile("waveform.vcd");',
        f"        $dumpvars(0, {TESTBENCH_TOP});",
        "`endif",
        *([f'        $readmemh("{WRITES_FILE}", writes);'] if writes_per_batch else []),
    ]
    lines += [f'        $readmemh("checks_{key}.hex", checks_{key});' for key in read_bits]
    lines += [
        "        mismatches = 0;",
        "        timeouts = 0;",
        "        total_cycles = 0;",
        "        min_cycles = MAX_CYCLES;",
        "        max_cycles = 0;",
        "        @(negedge clk);",
        "        @(negedge clk);",
        "        rst = 1'b0;",
        "        for (batch = 0; batch < BATCHES; batch = batch + 1) begin",
        "            for (i = 0; i < WRITES; i = i + 1) begin",
        f"                {w.enable} = 1'b1;",
        f"                {{{w.addr}, {w.data}}} = writes[batch * WRITES + i];",
        "                @(negedge clk);",
        "            end",
        f"            {w.enable} = 1'b0;",
        f"            {ports.start} = 1'b1;",
        "            @(negedge clk);",
        f"            {ports.start} = 1'b0;",
        "            waited = 1;",
        f"            while (!{ports.done} && waited < MAX_CYCLES) begin",
        "                @(negedge clk);",
        "                waited = waited + 1;",
        "            end",
        f"            if (!{ports.done}) begin",
        "                timeouts = timeouts + 1;",
        '                $display("TIMEOUT batch=%0d after %0d cycles", batch, waited);',
        "                batch = BATCHES;",
        "            end else begin",
        "                total_cycles = total_cycles + waited;",
        "                if (waited < min_cycles) min_cycles = waited;",
        "                if (waited > max_cycles) max_cycles = waited;",
    ]
    if ports.cycles is not None:
        lines += [
            f"                if ({ports.cycles} !== waited) begin",
            "                    mismatches = mismatches + 1;",
            f"                    if (mismatches <= {MAX_REPORTED_MISMATCHES})",
            '                        $display("MISMATCH batch=%0d cycles design=%0d '
            f'testbench=%0d", batch, {ports.cycles}, waited);',
            "                end",
        ]
    for key in read_bits:
        count = checks_per_batch[key]
        if key in ports.memories:
            what, addr, data = "memory", f"addr_{key}", f"dut.{ports.memories[key]}[addr_{key}]"
            wait = "#1;"
        else:
            what, addr, data = "port", ports.reads[key].addr, ports.reads[key].data
            wait = "@(posedge clk); #1;"  # the design samples the address at this edge
        lines += [
            f"                for (i = 0; i < {count}; i = i + 1) begin",
            f"                    {{{addr}, expect_{key}, mask_{key}}} = "
            f"checks_{key}[batch * {count} + i];",
            f"                    {wait}",
            f"                    if (({data} & mask_{key}) !== (expect_{key} & mask_{key})) begin",
            "                        mismatches = mismatches + 1;",
            f"                        if (mismatches <= {MAX_REPORTED_MISMATCHES})",
            f'                            $display("MISMATCH batch=%0d {what}={key} addr=%0d '
            f'got=%h expected=%h mask=%h", batch, {addr}, {data}, '
            f"expect_{key}, mask_{key});",
            "                    end",
            "                end",
        ]
    lines += [
        "            end",
        "            @(negedge clk);",
        "        end",
        "        if (max_cycles == 0) min_cycles = 0;",
        '        $display("RESULT %s images=%0d batches=%0d mismatches=%0d cycles=%0d '
        'batch_cycles_min=%0d batch_cycles_max=%0d",',
        '                 (mismatches == 0 && timeouts == 0) ? "PASS" : "FAIL", IMAGES, BATCHES,',
        "                 mismatches, total_cycles, min_cycles, max_cycles);",
        "        $finish;",
        "    end",
        "endmodule",
        "",
    ]
    return "\n".join(lines)


def _activation_key(layer: int) -> str:
    """Check name of layer ``layer``'s activation memory (``act1`` holds layer 0's outputs)."""
    return f"act{layer + 1}"


def inference_ports(design: Design) -> TestbenchPorts:
    """The testbench's view of ``design``: the default ports, the ``cycles`` counter and every
    layer's activation memory (``act1`` .. ``actL``), read inside the design after ``done``."""
    memories = design.activations[1:]
    return TestbenchPorts(
        memories={_activation_key(i): memory.name for i, memory in enumerate(memories)},
        cycles="cycles",
    )


def inference_batches(design: Design, expected: Outputs) -> list[BatchStimulus]:
    """Testbench stimulus for running ``expected.input`` through ``design``.

    Images go in batches of ``design.batch_size``; a short last batch is padded with zero
    images, which are loaded but never checked. Every int8 output of every layer (read from its
    activation memory, and the last layer's also through the ``out`` port) and every prediction
    of every real image is checked.

    :param design: from :func:`pyrtlnet.build_design` (its word layouts come from its
        :meth:`~pyrtlnet.Design.input_writes`, :meth:`~pyrtlnet.Design.activation_words` and
        :meth:`~pyrtlnet.Design.prediction_words`).
    :param expected: the golden values, e.g. :func:`qnn_ref.golden`: never PyRTL's own
        simulation, so the testbench checks the design against an independent reference.
    :returns: one stimulus per batch; check names are those of :func:`inference_ports`.
    :raises ValueError: if ``expected`` holds no images or does not fit the design's model.
    """
    size = design.batch_size
    count = expected.input.shape[0]
    if count == 0:
        raise ValueError("the expected outputs hold no images")
    if len(expected.layers) != len(design.model.layers):
        raise ValueError(
            f"the expected outputs have {len(expected.layers)} layers, the design's model "
            f"{len(design.model.layers)}"
        )
    last = len(design.model.layers) - 1
    stimuli: list[tuple[list[tuple[int, int]], dict[str, list[tuple[int, int, int]]]]] = []
    for begin in range(0, count, size):
        images = expected.input[begin : begin + size]
        images = images.reshape(len(images), -1)  # a CNN's [b, H, W, C] input, flattened
        padded = np.zeros((size, images.shape[1]), dtype=images.dtype)
        padded[: len(images)] = images
        checks = {
            _activation_key(layer): design.activation_words(layer, y[begin : begin + size])
            for layer, y in enumerate(expected.layers)
        }
        checks["out"] = design.output_words(expected.layers[last][begin : begin + size])
        checks["pred"] = design.prediction_words(expected.predictions[begin : begin + size])
        stimuli.append((design.input_writes(padded), checks))
    # A short last batch may have fewer words to check: pad with reads that cannot fail.
    never = (0, 0, 0)
    counts = {key: len(words) for key, words in stimuli[0][1].items()}
    return [
        BatchStimulus(
            writes=writes,
            checks={
                key: [*words, *[never] * (counts[key] - len(words))]
                for key, words in checks.items()
            },
        )
        for writes, checks in stimuli
    ]


def write_inference_testbench(
    directory: str | os.PathLike[str],
    design: Design,
    expected: Outputs,
    *,
    description: str = "",
) -> TestbenchFiles:
    """Write ``design`` and a testbench checking it against ``expected``.

    The testbench checks every layer's activations, the predictions and, every batch, that the
    design's ``cycles`` counter equals the testbench's own count from ``start`` to ``done``.
    The design's header comment documents its ports and the cycle count of one batch.

    :param directory: where ``pyrtlnet.v``, ``testbench.v`` and the ``.hex`` files go.
    :param design: from :func:`pyrtlnet.build_design`.
    :param expected: golden values for the images to run (see :func:`inference_batches`).
    :param description: a first header line, e.g. the model and configuration.
    :returns: the paths written.
    """
    batches = inference_batches(design, expected)
    header = "\n".join([description, *_port_doc(design)]).strip("\n")
    return write_testbench(
        directory,
        design,
        batches,
        images=expected.input.shape[0],
        ports=inference_ports(design),
        header=header,
        max_cycles=4 * design.cycles_per_batch + 16,
    )


def _port_doc(design: Design) -> list[str]:
    """Header lines describing the top-level ports for readers of ``pyrtlnet.v``."""
    width = {name: port.bits for name, port in design.ports.items()}
    size, lanes = design.batch_size, design.lanes
    k, n = design.model.in_features, design.model.num_classes
    pad = " " * 28
    return [
        "",
        f"Top-level ports: a batch of {size} image{'s' if size != 1 else ''} takes "
        f"{design.cycles_per_batch} cycles from start to done.",
        f"Data words hold R = {lanes} int8 lane{'s' if lanes != 1 else ''}: "
        "lane i in bits [8i, 8i+8) belongs to image mt*R + i of row tile mt.",
        "  clk, rst                  clock; synchronous active-high reset (once, at power-up)",
        f"  in_we, in_addr[{width['in_addr']}], in_data[{width['in_data']}]",
        f"{pad}write port of the input memory: word mt*{k} + f holds input",
        f"{pad}feature f of the R images of row tile mt",
        "  start                     high for one cycle: run the batch held in the input memory",
        "  done                      high for one cycle when every result below is readable",
        f"  cycles[{width['cycles']}]{' ' * (17 - len(str(width['cycles'])))}"
        "cycles from the last start to its done, counted by the design",
        f"  out_addr[{width['out_addr']}] -> out_data[{width['out_data']}]",
        f"{pad}read of the last layer's int8 outputs, a cycle after the address: word",
        f"{pad}mt*{n} + c holds output c of the R images of row tile mt",
        f"  pred_addr[{width['pred_addr']}] -> pred_data[{width['pred_data']}]",
        f"{pad}read of the predictions, a cycle after the address: word mt holds the R",
        f"{pad}argmax indices of row tile mt, image i in the i-th lowest field",
        "The design returns to idle after done and runs the next batch without a reset.",
    ]
