"""Multiply two small int8 matrices on a 2x2 output-stationary systolic array.

Builds the tiled engine of pyrtl-linalg around two ROMs holding the operands, simulates it
from start to done, prints the product next to NumPy's, the cycle count (and the cycle
model's), and a waveform of the run. Optionally writes the waveform as a VCD file (for
GTKWave) and the design as Verilog.
"""

from __future__ import annotations

import argparse

import numpy as np
import pyrtl

from pyrtl_linalg import (
    MatmulJob,
    make_simulation,
    make_tiled_matmul,
    pack_a,
    pack_b,
    tiled_matmul_cycles,
    to_signed,
)

ROWS, COLS = 2, 2


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--vcd", metavar="FILE", help="write the waveform of the run as VCD")
    parser.add_argument("--verilog", metavar="FILE", help="write the design as Verilog")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random operands")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rng = np.random.default_rng(args.seed)
    a = rng.integers(-128, 128, (3, 4), dtype=np.int8)  # 3 rows: two row tiles on 2 rows
    b = rng.integers(-128, 128, (4, 3), dtype=np.int8)  # 3 columns: two column tiles
    zero_point = -3
    m, k = a.shape
    n = b.shape[1]

    a_rom = pyrtl.RomBlock(ROWS * 8, 3, pack_a(a, rows=ROWS), name="a", pad_with_zeros=True)
    b_rom = pyrtl.RomBlock(COLS * 8, 3, pack_b(b, cols=COLS), name="b", pad_with_zeros=True)
    start = pyrtl.Input(1, "start")
    engine = make_tiled_matmul(
        [MatmulJob(m, k, n, a_rom, b_rom, a_zero_point=zero_point)], start, rows=ROWS, cols=COLS
    )
    # Outputs: what the waveform shows, and what CompiledSimulation could read.
    ports = {"start": start}
    for key in ("busy", "done", "valid", "m_tile", "column"):
        ports[key] = pyrtl.Output(len(getattr(engine, key)), key)
        ports[key] <<= getattr(engine, key)
    for i, value in enumerate(engine.values):
        ports[f"c{i}"] = pyrtl.Output(engine.value_bits, f"c{i}")
        ports[f"c{i}"] <<= value

    sim = make_simulation(simulator="fast", trace=list(ports.values()))
    result = np.zeros((2 * ROWS, n), dtype=np.int64)
    sim.step({"start": 1})
    cycles = 0
    while not sim.inspect("done"):
        sim.step({"start": 0})
        cycles += 1
        if sim.inspect("valid"):
            row, column = sim.inspect("m_tile") * ROWS, sim.inspect("column")
            for i in range(ROWS):
                result[row + i, column] = to_signed(sim.inspect(f"c{i}"), engine.value_bits)
    result = result[:m]
    expected = (a.astype(np.int64) - zero_point) @ b.astype(np.int64)

    print(f"A ({m}x{k}, zero point {zero_point}) @ B ({k}x{n}) on a {ROWS}x{COLS} array")
    for got_row, want_row in zip(result, expected, strict=True):
        print(f"  PyRTL {np.array2string(got_row):>24}    NumPy {np.array2string(want_row)}")
    print(f"matches NumPy: {'yes' if np.array_equal(result, expected) else 'NO'}")
    model = tiled_matmul_cycles([(m, k, n)], rows=ROWS, cols=COLS)
    print(f"cycles from start to done: {cycles} (cycle model: {model})")
    signed = {f"c{i}": lambda v: str(int(to_signed(v, engine.value_bits))) for i in range(ROWS)}
    sim.tracer.render_trace(
        trace_list=list(ports), repr_func=str, repr_per_name=signed, symbol_len=7
    )
    if args.vcd:
        with open(args.vcd, "w") as file:
            sim.tracer.print_vcd(file)
    if args.verilog:
        with open(args.verilog, "w") as file:
            pyrtl.output_to_verilog(file, module_name="systolic_matmul")
    return 0 if np.array_equal(result, expected) else 1


if __name__ == "__main__":
    raise SystemExit(main())
