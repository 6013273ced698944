"""The byte-bus wrapper: a PyRTL simulation, and Icarus Verilog on the exported Verilog, drive
its pins as a host would, with real MNIST images, and read back LiteRT's predictions and int8
outputs."""

import subprocess
from pathlib import Path

import numpy as np
import pyrtl
import pytest

import qnn_ref
from pyrtlnet import build_byte_bus, byte_bus_input, byte_bus_results, export_verilog, make_plan
from pyrtlnet._bytebus import ByteBusDesign
from qnn_ref import Model

IDLE = {"data_in": 0, "wr": 0, "start": 0, "rd": 0}


class Host:
    """Drives the bus one rising edge per :meth:`edge`, as the module's timing diagram shows."""

    def __init__(self, bus: ByteBusDesign) -> None:
        self.sim = pyrtl.FastSimulation(tracer=None, block=bus.block)
        self.bus = bus

    def edge(self, **pins: int) -> dict[str, int]:
        """One clock cycle with ``pins`` set (the rest low); the outputs in that cycle, as
        the edge at its end samples them."""
        self.sim.step({**IDLE, **pins})
        return {"done": self.sim.inspect("done"), "data_out": self.sim.inspect("data_out")}

    def run(self, q: np.ndarray, *, idle_between: int = 0) -> tuple[list[int], int]:
        """Write a batch, start it, wait for done, read the frame; returns it and the cycles
        from the start edge to done."""
        for byte in byte_bus_input(self.bus, q):
            self.edge(wr=1, data_in=byte)
            for _ in range(idle_between):
                self.edge(data_in=0xA5)  # wr low: not written
        self.edge(start=1)
        cycles = 0
        while not self.edge()["done"]:
            cycles += 1
        frame = []
        for _ in range(self.bus.out_bytes):
            waiting = [self.edge()["data_out"] for _ in range(idle_between)]
            frame.append(self.edge(rd=1)["data_out"])
            assert waiting == [frame[-1]] * idle_between  # rd low: the byte stays
        return frame, cycles


def _check(bus: ByteBusDesign, model: Model, count: int, **host: int) -> None:
    plan = bus.plan
    golden = qnn_ref.golden(model, count=count, rounding=plan.rounding)
    driver = Host(bus)
    for first in range(0, count, plan.batch_size):
        batch = slice(first, first + plan.batch_size)
        frame, cycles = driver.run(golden.input[batch], **host)
        predictions, logits = byte_bus_results(bus, frame)
        size = len(golden.predictions[batch])
        np.testing.assert_array_equal(predictions[:size], golden.predictions[batch], strict=True)
        np.testing.assert_array_equal(logits[:size], golden.layers[-1][batch], strict=True)
        # done rises the cycle after the design's own done: one more than start to done.
        assert cycles == plan.cycles_per_batch


def test_shipped_model_through_the_byte_bus(default_model: Model) -> None:
    # R = 1: one byte per word, the configuration routed on the iCE40 UP5K.
    bus = build_byte_bus(make_plan(default_model, array=(1, 2)))
    assert {name: port.bits for name, port in bus.ports.items()} == {
        "data_in": 8, "wr": 1, "start": 1, "rd": 1, "done": 1, "data_out": 8,
    }  # fmt: skip
    assert (bus.in_bytes, bus.out_bytes) == (144, 11)
    _check(bus, default_model, 3, idle_between=1)


def test_lanes_pack_into_words_and_a_short_batch_pads(default_model: Model) -> None:
    # Three lanes in batches of 4: two row tiles, the second with two padding rows; 7 images
    # leave the last batch short by one.
    bus = build_byte_bus(make_plan(default_model, array=(3, 4), batch_size=4))
    assert (bus.in_bytes, bus.out_bytes) == (2 * 144 * 3, 2 * 3 * 11)
    _check(bus, default_model, 7)


def test_predictions_only(small_model: Model) -> None:
    bus = build_byte_bus(make_plan(small_model, array=(2, 2), batch_size=2), logits=False)
    golden = qnn_ref.golden(small_model, count=2, rounding=bus.plan.rounding, backend="numpy")
    frame, _ = Host(bus).run(golden.input)
    predictions, logits = byte_bus_results(bus, frame)
    assert logits is None
    np.testing.assert_array_equal(predictions, golden.predictions, strict=True)


def test_writes_and_start_are_ignored_while_running(small_model: Model) -> None:
    bus = build_byte_bus(make_plan(small_model, array=(1, 2)))
    golden = qnn_ref.golden(small_model, count=2, rounding=bus.plan.rounding, backend="numpy")
    host = Host(bus)
    for byte in byte_bus_input(bus, golden.input[:1]):
        host.edge(wr=1, data_in=byte)
    host.edge(start=1)
    # Another image written, and start pulsed between its bytes, while the batch runs: no effect.
    cycles = 0
    for byte in byte_bus_input(bus, golden.input[1:2])[: bus.plan.cycles_per_batch // 4]:
        assert not host.edge(wr=1, data_in=byte)["done"]
        assert not host.edge(start=1)["done"]
        cycles += 2
    while not host.edge()["done"]:
        cycles += 1
    assert cycles == bus.plan.cycles_per_batch  # not restarted
    frame = [host.edge(rd=1)["data_out"] for _ in range(bus.out_bytes)]
    _, logits = byte_bus_results(bus, frame)
    np.testing.assert_array_equal(logits, golden.layers[-1][:1], strict=True)
    # The read counter wraps: the frame reads again from its first byte.
    assert host.edge(rd=1)["data_out"] == frame[0]
    # A start sets both counters back to byte 0, however far the last frame was read.
    frame, _ = host.run(golden.input[1:2])
    np.testing.assert_array_equal(
        byte_bus_results(bus, frame)[1], golden.layers[-1][1:2], strict=True
    )


def test_bad_frames(small_model: Model) -> None:
    bus = build_byte_bus(make_plan(small_model, array=(1, 2)))
    with pytest.raises(ValueError, match=r"^an output frame has 11 bytes, not 3$"):
        byte_bus_results(bus, [0, 0, 0])
    q = np.zeros((2, small_model.in_features), np.int8)
    with pytest.raises(ValueError, match=r"^a batch holds at most 1 images, not 2$"):
        byte_bus_input(bus, q)


#: Drives the exported wrapper as :class:`Host` does, at falling edges; writes ``cycles`` and
#: the output frame of each batch, one byte per line, to ``out.txt``.
TESTBENCH = """`timescale 1ns/1ps
module testbench;
  reg clk = 0, rst = 1, wr = 0, start = 0, rd = 0;
  reg [7:0] data_in = 0;
  wire done;
  wire [7:0] data_out;
  pyrtlnet dut(.clk(clk), .rst(rst), .data_in(data_in), .wr(wr), .start(start), .rd(rd),
               .done(done), .data_out(data_out));
  always #5 clk = ~clk;
  reg [7:0] frames [0:{batches}*{in_bytes}-1];
  integer out, batch, i, cycles;
  initial begin
    $readmemh("in.hex", frames);
    out = $fopen("out.txt", "w");
    @(negedge clk) rst = 0;
    for (batch = 0; batch < {batches}; batch = batch + 1) begin
      for (i = 0; i < {in_bytes}; i = i + 1) begin
        data_in = frames[batch * {in_bytes} + i];
        wr = 1;
        @(negedge clk);
      end
      wr = 0;
      start = 1;
      @(negedge clk) start = 0;
      cycles = 0;
      while (!done) begin
        @(negedge clk);
        cycles = cycles + 1;
      end
      $fdisplay(out, "cycles %0d", cycles);
      for (i = 0; i < {out_bytes}; i = i + 1) begin
        $fdisplay(out, "%02x", data_out);
        rd = 1;
        @(negedge clk) rd = 0;
      end
    end
    $fclose(out);
    $finish;
  end
endmodule
"""


@pytest.mark.tool("iverilog")
def test_exported_verilog_in_icarus(default_model: Model, tmp_path: Path) -> None:
    # The Verilog that pnr routes, in another simulator: LiteRT's results through the pins.
    bus = build_byte_bus(make_plan(default_model, array=(1, 4)))
    golden = qnn_ref.golden(default_model, count=3, rounding=bus.plan.rounding)
    frames = [byte for q in golden.input for byte in byte_bus_input(bus, q[None])]
    (tmp_path / "in.hex").write_text("".join(f"{byte:02x}\n" for byte in frames))
    sizes = {"batches": 3, "in_bytes": bus.in_bytes, "out_bytes": bus.out_bytes}
    (tmp_path / "testbench.v").write_text(TESTBENCH.format(**sizes))
    export_verilog(bus.block, tmp_path / "pyrtlnet.v")
    run = {"cwd": tmp_path, "check": True, "capture_output": True}
    subprocess.run(["iverilog", "-o", "sim", "testbench.v", "pyrtlnet.v"], **run)
    subprocess.run(["vvp", "-n", "sim"], **run)
    lines = (tmp_path / "out.txt").read_text().split()
    step = 2 + bus.out_bytes  # "cycles", the count, the frame
    for batch in range(3):
        record = lines[batch * step : (batch + 1) * step]
        assert record[:2] == ["cycles", str(bus.plan.cycles_per_batch)]
        predictions, logits = byte_bus_results(bus, [int(byte, 16) for byte in record[2:]])
        np.testing.assert_array_equal(predictions, golden.predictions[batch : batch + 1])
        np.testing.assert_array_equal(logits, golden.layers[-1][batch : batch + 1], strict=True)
