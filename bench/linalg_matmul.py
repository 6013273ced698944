"""Benchmark the tiled systolic multiplier of pyrtl-linalg: cycles, PE utilization, and the
wall time per simulated cycle of each PyRTL simulator.

For each product shape (the default model's layers at batch 1 and batch 16) and a sweep of
physical array sizes from 1x1 up to one PE per output element, it builds the engine with the
operands in ROMs, checks the product against NumPy and the cycle count against the cycle
model (CompiledSimulation, whole run), and times `step()` for Simulation, FastSimulation and
CompiledSimulation, plus CompiledSimulation's `run(list)` for the whole run. Slow simulators
are timed over about `--cycles-*` cycles: a prefix of a long run, or back-to-back reruns of a
short one (the engine reruns without reset), since their cost per cycle is constant.
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np
import pyrtl

from pyrtl_linalg import (
    build_matmul,
    make_simulation,
    tiled_matmul_cycles,
    unpack_a,
)

# Each product of the default model (batch 1 and batch 16) with a sweep of physical array
# sizes from 1x1 up to one PE per output element, including sizes that divide the result
# (no idle PEs in partial tiles) and ones that do not.
SWEEP = {
    (1, 144, 18): [(1, 1), (1, 2), (1, 4), (1, 6), (1, 9), (1, 18)],
    (1, 18, 10): [(1, 1), (1, 2), (1, 4), (1, 5), (1, 10)],
    (16, 144, 18): [(1, 1), (2, 2), (4, 4), (4, 6), (8, 9), (16, 9), (16, 18)],
    (16, 18, 10): [(1, 1), (2, 2), (4, 5), (8, 5), (16, 10)],
}


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--cycles-simulation",
        type=int,
        default=300,
        metavar="N",
        help="cycles timed with Simulation (default %(default)s)",
    )
    parser.add_argument(
        "--cycles-fast",
        type=int,
        default=3000,
        metavar="N",
        help="cycles timed with FastSimulation (default %(default)s)",
    )
    parser.add_argument(
        "--cycles-compiled",
        type=int,
        default=20000,
        metavar="N",
        help="cycles timed with CompiledSimulation.step (default %(default)s)",
    )
    parser.add_argument("--quick", action="store_true", help="only the batch-1 shapes")
    return parser


def build(a: np.ndarray, b: np.ndarray, rows: int, cols: int):
    """pyrtl-linalg's one-job multiplier, plus a ``done`` Output to watch."""
    design = build_matmul(a, b, rows=rows, cols=cols)
    with pyrtl.set_working_block(design.block, no_sanity_check=True):
        done = pyrtl.Output(1, "done")
        done <<= design.engine.done
    return design.block, design.result, done, design.engine.value_bits


def runs(cycles: int, at_least: int, idle: dict[str, int]) -> list[dict[str, int]]:
    """Inputs for back-to-back runs (start, then `cycles` steps up to done) covering
    `at_least` cycles: the engine reruns with no reset, so short products are timed too."""
    one_run = [{"start": 1}] + [idle] * cycles
    return one_run * max(1, math.ceil(at_least / len(one_run)))


def time_steps(sim, inputs: list[dict[str, int]]) -> float:
    begin = time.perf_counter()
    for step in inputs:
        sim.step(step)
    return (time.perf_counter() - begin) / len(inputs)


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    rng = np.random.default_rng(0)
    header = (
        f"{'product':>15} {'array':>6} {'PEs':>4} {'nets':>5} {'cycles':>6} {'util':>6} "
        f"{'Sim us':>7} {'Fast us':>7} {'Comp us':>7} {'run us':>6} "
        f"{'Fast/Sim':>8} {'Comp/Fast':>9} {'build s':>7}"
    )
    print(header)
    print("-" * len(header))
    for (m, k, n), sizes in list(SWEEP.items())[: 2 if args.quick else None]:
        a = rng.integers(-128, 128, (m, k), dtype=np.int8)
        b = rng.integers(-128, 128, (k, n), dtype=np.int8)
        for rows, cols in sizes:
            block, result, done, value_bits = build(a, b, rows, cols)
            cycles = tiled_matmul_cycles([(m, k, n)], rows=rows, cols=cols)
            per_cycle, build_time = {}, 0.0
            for name, limit in (
                ("simulation", args.cycles_simulation),
                ("fast", args.cycles_fast),
                ("compiled", args.cycles_compiled),
            ):
                begin = time.perf_counter()
                sim = make_simulation(simulator=name, trace=[done], block=block)
                if name == "compiled":
                    build_time = time.perf_counter() - begin
                per_cycle[name] = time_steps(sim, runs(cycles, limit, {"start": 0})[:limit])
            # The whole run in one C call, checked against NumPy and the cycle model.
            sim = make_simulation(simulator="compiled", trace=[done], block=block)
            # Idle steps as empty dicts: CompiledSimulation reads missing inputs as 0.
            inputs = runs(cycles, args.cycles_compiled, {})
            begin = time.perf_counter()
            sim.run(inputs[:-1])
            sim.step(inputs[-1])
            per_cycle["run"] = (time.perf_counter() - begin) / len(inputs)
            assert sim.inspect("done") == 1, "done is not in the cycle the model gives"
            got = unpack_a(sim.inspect_mem(result), m=m, k=n, rows=rows, bits=value_bits)
            assert np.array_equal(got, a.astype(np.int64) @ b.astype(np.int64))
            utilization = m * k * n / (rows * cols * cycles)
            print(
                f"{f'{m}x{k} @ {k}x{n}':>15} {f'{rows}x{cols}':>6} {rows * cols:>4} "
                f"{len(block.logic):>5} {cycles:>6} {utilization:>6.1%} "
                f"{per_cycle['simulation'] * 1e6:>7.0f} {per_cycle['fast'] * 1e6:>7.1f} "
                f"{per_cycle['compiled'] * 1e6:>7.1f} {per_cycle['run'] * 1e6:>6.1f} "
                f"{per_cycle['simulation'] / per_cycle['fast']:>7.1f}x "
                f"{per_cycle['fast'] / per_cycle['compiled']:>8.1f}x {build_time:>7.1f}",
                flush=True,
            )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
