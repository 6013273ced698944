"""Boards: an FPGA with its oscillator, its connectors and its LEDs, ready to program.

:func:`pyrtlnet.run_pnr` with ``board="icebreaker"`` routes a :class:`~pyrtlnet.ByteBusDesign`
inside a top-level wrapper (:func:`board_top`) and against pin constraints (:func:`board_pcf`),
so the bitstream runs on the board as it is:

* Clock. The board's oscillator drives the FPGA's PLL from the PLL's own input pad
  (``SB_PLL40_PAD``: on the iCE40 UP5K in its SG48 package that pad is pin 35, where the
  iCEBreaker's 12 MHz oscillator is wired); the PLL makes the design clock
  (:func:`ice40_pll`), on the global clock network (``PLLOUTGLOBAL``).
* Reset. ``rst`` is held from configuration until at least ``RESET_CYCLES`` cycles after the
  PLL has locked, and again while the board's button is pressed.
* Strobes. A host on its own clock (a microcontroller's GPIOs, an FTDI adapter's bit-bang
  pins) cannot make a strobe that is high for exactly one cycle of a clock it does not see.
  The wrapper brings ``data_in``, ``wr``, ``start`` and ``rd`` through two flip-flops each
  (against metastability) and turns each rising edge of a strobe into one cycle high, a cycle
  later than the data, so a byte that changed with its ``wr`` edge has settled when it is
  taken. Host rules, with ``T`` one period of the design clock: change ``data_in`` only while
  ``wr`` is low; after every change of a strobe wait ``8 T`` before the next change of any
  strobe, and before reading ``done`` or ``data_out``, which by then show the strobe's effect.
* LEDs. The green LED is lit while ``done`` is high (the results are readable), the red one
  while the design is held in reset.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from fractions import Fraction

from ._bytebus import ByteBusDesign

__all__ = ["BOARDS", "Board", "BoardPin", "PllConfig", "board_pcf", "board_top", "ice40_pll"]

#: iCE40 PLL limits in MHz (Lattice TN1251, the iCE40 sysCLOCK PLL design and usage guide):
#: the reference input, the phase detector after the input divider, the VCO, the output.
_PLL_IN = (10, 133)
_PLL_PFD = (10, 133)
_PLL_VCO = (533, 1066)
_PLL_OUT = (16, 275)
#: Divider ranges: ``DIVR`` 4 bits, ``DIVF`` 7 bits, ``DIVQ`` 3 bits (1 to 6 are valid).
_DIVR, _DIVF, _DIVQ = range(16), range(128), range(1, 7)
#: Loop filter setting by phase-detector frequency: ``FILTER_RANGE`` 1 below 17 MHz, 2 below
#: 26, ... (TN1251's table, as icestorm's ``icepll`` writes it).
_FILTER_BOUNDS = (17, 26, 44, 66, 101)

#: Design clock cycles ``rst`` stays high, at least, after the PLL reports lock (a power of two:
#: a counter of ``log2`` bits counts to ``RESET_CYCLES - 1``, after two synchronizing cycles).
RESET_CYCLES = 64


@dataclasses.dataclass(frozen=True)
class PllConfig:
    """An iCE40 PLL setting in ``SIMPLE`` feedback mode, from :func:`ice40_pll`.

    ``f_out = f_in (DIVF + 1) / ((DIVR + 1) 2^DIVQ)``: the input divided by ``DIVR + 1`` is the
    phase detector's frequency, times ``DIVF + 1`` the VCO's, divided by ``2^DIVQ`` the output.

    :param input_mhz: the reference clock.
    :param requested_mhz: the clock asked for.
    :param divr: the input divider minus one.
    :param divf: the feedback divider minus one.
    :param divq: the output divider's power of two.
    :param filter_range: the loop filter setting for the phase detector's frequency.
    """

    input_mhz: float
    requested_mhz: float
    divr: int
    divf: int
    divq: int
    filter_range: int

    @property
    def pfd_mhz(self) -> float:
        """The phase detector's frequency, ``f_in / (DIVR + 1)``."""
        return self.input_mhz / (self.divr + 1)

    @property
    def vco_mhz(self) -> float:
        """The VCO's frequency, ``f_pfd (DIVF + 1)``."""
        return self.pfd_mhz * (self.divf + 1)

    @property
    def output_mhz(self) -> float:
        """The clock the PLL makes: ``f_vco / 2^DIVQ``."""
        return self.vco_mhz / 2**self.divq

    def as_dict(self) -> dict[str, float | int]:
        """The setting and its frequencies as JSON-serializable values."""
        return {
            "input_mhz": self.input_mhz,
            "requested_mhz": self.requested_mhz,
            "output_mhz": self.output_mhz,
            "pfd_mhz": self.pfd_mhz,
            "vco_mhz": self.vco_mhz,
            "divr": self.divr,
            "divf": self.divf,
            "divq": self.divq,
            "filter_range": self.filter_range,
        }


def _settings(input_mhz: float) -> list[tuple[Fraction, int, int, int]]:
    """Every valid ``(f_out, DIVR, DIVF, DIVQ)`` from ``input_mhz``, in that divider order."""
    f_in = Fraction(input_mhz)
    found = []
    for divr in _DIVR:
        pfd = f_in / (divr + 1)
        if not _PLL_PFD[0] <= pfd <= _PLL_PFD[1]:
            continue
        for divf in _DIVF:
            vco = pfd * (divf + 1)
            if not _PLL_VCO[0] <= vco <= _PLL_VCO[1]:
                continue
            for divq in _DIVQ:
                out = vco / 2**divq
                if _PLL_OUT[0] <= out <= _PLL_OUT[1]:
                    found.append((out, divr, divf, divq))
    return found


def ice40_pll(input_mhz: float, output_mhz: float) -> PllConfig:
    """The iCE40 PLL setting whose output is the closest to ``output_mhz`` without exceeding
    it (a design routed for a clock must not be run faster), in ``SIMPLE`` feedback mode.

    The search covers every divider setting within the PLL's limits (Lattice TN1251: phase
    detector 10 to 133 MHz, VCO 533 to 1066 MHz, output 16 to 275 MHz); of equal outputs it
    takes the first in ``(DIVR, DIVF, DIVQ)`` order, as icestorm's ``icepll`` does.

    :param input_mhz: the reference clock, 10 to 133 MHz (the iCEBreaker's oscillator: 12).
    :param output_mhz: the clock wanted.
    :returns: the setting; its :attr:`~PllConfig.output_mhz` is the clock achieved.
    :raises ValueError: for an input outside the PLL's range, or an output above it (275 MHz)
        or below the lowest clock it makes from this input.
    """
    if not _PLL_IN[0] <= input_mhz <= _PLL_IN[1]:
        raise ValueError(
            f"the iCE40 PLL takes a {_PLL_IN[0]} to {_PLL_IN[1]} MHz reference, "
            f"not {input_mhz:g} MHz"
        )
    settings = _settings(input_mhz)
    valid = math.isfinite(output_mhz) and output_mhz <= _PLL_OUT[1]
    below = [s for s in settings if s[0] <= Fraction(output_mhz)] if valid else []
    if not below:
        low = min(s[0] for s in settings)
        raise ValueError(
            f"the iCE40 PLL's output from {input_mhz:g} MHz is {float(low):g} to "
            f"{_PLL_OUT[1]} MHz, not {output_mhz:g} MHz"
        )
    best = max(s[0] for s in below)
    _, divr, divf, divq = next(s for s in below if s[0] == best)
    pfd = input_mhz / (divr + 1)
    filter_range = 1 + sum(pfd >= bound for bound in _FILTER_BOUNDS)
    return PllConfig(input_mhz, output_mhz, divr, divf, divq, filter_range)


@dataclasses.dataclass(frozen=True)
class BoardPin:
    """A top-level port bit of a board build and where it is on the board.

    :param signal: the wrapper's port bit (``data_in[0]``, ``wr``, ``led_green_n``, ...).
    :param pin: the FPGA package pin.
    :param where: where a user finds it (``PMOD1A pin 1``, ``12 MHz oscillator``, ...).
    """

    signal: str
    pin: int
    where: str


@dataclasses.dataclass(frozen=True)
class Board:
    """A board :func:`pyrtlnet.run_pnr` can build a bitstream for.

    :param name: the name ``--board`` takes.
    :param title: the board's name for people.
    :param target: its FPGA (a key of :data:`pyrtlnet.TARGETS`).
    :param oscillator_mhz: the clock wired to the PLL's input pad.
    :param pins: every top-level port bit of the wrapper (:func:`board_top`).
    """

    name: str
    title: str
    target: str
    oscillator_mhz: float
    pins: tuple[BoardPin, ...]

    @property
    def pin_map(self) -> Mapping[str, int]:
        """Package pin by port bit."""
        return {p.signal: p.pin for p in self.pins}


def _pmod(connector: str, pins: tuple[int, ...], signals: tuple[str, ...]) -> list[BoardPin]:
    """A 12-pin PMOD's eight signal pins (1 to 4 on the top row, 7 to 10 on the bottom; 5, 11
    are ground and 6, 12 are 3.3 V), ``signals[i]`` on ``pins[i]``."""
    numbers = (1, 2, 3, 4, 7, 8, 9, 10)
    return [
        BoardPin(signal, pin, f"{connector} pin {number}")
        for signal, pin, number in zip(signals, pins, numbers, strict=False)
    ]


_BYTE = tuple(f"[{i}]" for i in range(8))

#: The iCEBreaker (v1.0): an iCE40UP5K-SG48 with a 12 MHz oscillator on pin 35, three PMOD
#: connectors, a user button and two LEDs (the board's published pinout, its ``icebreaker.pcf``).
#: PMOD2 also carries the snap-off board's LEDs and buttons: unplug it before wiring a host.
ICEBREAKER = Board(
    name="icebreaker",
    title="iCEBreaker",
    target="ice40-up5k",
    oscillator_mhz=12,
    pins=(
        BoardPin("clk_in", 35, "12 MHz oscillator"),
        BoardPin("button_n", 10, "user button (reset while pressed)"),
        BoardPin("led_red_n", 11, "red LED (lit while in reset)"),
        BoardPin("led_green_n", 37, "green LED (lit while done is high)"),
        *_pmod("PMOD1A", (4, 2, 47, 45, 3, 48, 46, 44), tuple(f"data_in{b}" for b in _BYTE)),
        *_pmod("PMOD1B", (43, 38, 34, 31, 42, 36, 32, 28), tuple(f"data_out{b}" for b in _BYTE)),
        *_pmod("PMOD2", (27, 25, 21, 19), ("wr", "start", "rd", "done")),
    ),
)

#: The boards by name.
BOARDS: dict[str, Board] = {b.name: b for b in (ICEBREAKER,)}


def board_pcf(board: Board) -> str:
    """nextpnr-ice40's pin constraints (``.pcf``) for ``board``'s wrapper: one ``set_io`` per
    port bit, with the connector it is on as a comment."""
    lines = [f"# {board.title}: pyrtlnet's byte bus (pyrtlnet pnr --board {board.name})"]
    lines += [f"set_io {p.signal:<12} {p.pin:>2}  # {p.where}" for p in board.pins]
    return "\n".join(lines) + "\n"


def board_top(bus: ByteBusDesign, board: Board, pll: PllConfig, *, core: str) -> str:
    """The Verilog top-level module ``{core}_{board.name}`` around the byte-bus design's module
    ``core``: the PLL, the power-on reset, the strobe synchronizers and the LEDs (see the
    module).

    :param bus: the design behind its byte bus; its ports are the bus's.
    :param board: the board.
    :param pll: the PLL setting for the design clock (:func:`ice40_pll` from the board's
        oscillator).
    :param core: the Verilog module name the byte-bus design is exported with.
    """
    expected = {"data_in", "wr", "start", "rd", "done", "data_out"}
    assert set(bus.ports) == expected, f"byte bus ports changed: {sorted(bus.ports)}"
    count = RESET_CYCLES.bit_length() - 1
    return f"""
// {board.title} top level: {pll.input_mhz:g} MHz oscillator -> PLL -> {pll.output_mhz:g} MHz
// design clock; reset until the PLL locks; host strobes synchronized and edge-detected.
module {core}_{board.name} (
    input clk_in,
    input button_n,
    output led_red_n,
    output led_green_n,
    input [7:0] data_in,
    input wr,
    input start,
    input rd,
    output done,
    output [7:0] data_out
);
    wire clk, locked;
    SB_PLL40_PAD #(
        .FEEDBACK_PATH("SIMPLE"),
        .DIVR(4'd{pll.divr}),
        .DIVF(7'd{pll.divf}),
        .DIVQ(3'd{pll.divq}),
        .FILTER_RANGE(3'd{pll.filter_range})
    ) pll (
        .PACKAGEPIN(clk_in),
        .PLLOUTGLOBAL(clk),
        .LOCK(locked),
        .RESETB(1'b1),
        .BYPASS(1'b0)
    );

    // Reset: held until LOCK, seen through two flip-flops, has been high for {RESET_CYCLES - 1}
    // cycles with the button released (iCE40 flip-flops start at 0 after configuration).
    reg [1:0] lock_sync = 2'b00;
    reg [1:0] button_sync = 2'b00;
    reg [{count - 1}:0] reset_count = {count}'d0;
    wire running = &reset_count;
    always @(posedge clk) begin
        lock_sync <= {{lock_sync[0], locked}};
        button_sync <= {{button_sync[0], button_n}};
        if (!lock_sync[1] || !button_sync[1])
            reset_count <= {count}'d0;
        else if (!running)
            reset_count <= reset_count + {count}'d1;
    end

    // Host inputs: two flip-flops each against metastability; a strobe's rising edge, one
    // cycle later, is one cycle high, so the byte it takes was stable for a cycle before.
    reg [7:0] data_sync0 = 8'd0, data_sync1 = 8'd0;
    reg [3:0] wr_sync = 4'd0, start_sync = 4'd0, rd_sync = 4'd0;
    always @(posedge clk) begin
        data_sync0 <= data_in;
        data_sync1 <= data_sync0;
        wr_sync <= {{wr_sync[2:0], wr}};
        start_sync <= {{start_sync[2:0], start}};
        rd_sync <= {{rd_sync[2:0], rd}};
    end

    {core} core (
        .clk(clk),
        .rst(!running),
        .data_in(data_sync1),
        .wr(wr_sync[2] & !wr_sync[3]),
        .start(start_sync[2] & !start_sync[3]),
        .rd(rd_sync[2] & !rd_sync[3]),
        .done(done),
        .data_out(data_out)
    );
    assign led_red_n = running;
    assign led_green_n = !done;
endmodule
"""
