"""The streamed waveform: a VCD that parses, holds the simulation's values, and stays small."""

import io
from pathlib import Path

import numpy as np
import pyrtl
import pytest

import pyrtlnet
import qnn_ref
from qnn_ref import Model


def read_vcd(text: str) -> tuple[dict[str, int], dict[str, list[int]]]:
    """A small VCD reader: the widths and the value in every cycle of each ``scope.name``.

    Written from the VCD grammar (IEEE 1364 §18), not from the writer: scopes nest with
    ``$scope``/``$upscope``, ``$var wire W ID NAME $end`` declares, ``#T`` moves time, ``0ID``
    or ``bBITS ID`` sets a value. A cycle's value is the one in force at ``#10*c`` (PyRTL's
    period), after that timestamp's changes.
    """
    lines = iter(text.splitlines())
    scopes: list[str] = []
    names: dict[str, str] = {}
    widths: dict[str, int] = {}
    for line in lines:
        words = line.split()
        if words[0] == "$scope":
            assert (words[1], words[3]) == ("module", "$end"), line
            scopes.append(words[2])
        elif words[0] == "$upscope":
            scopes.pop()
        elif words[0] == "$var":
            assert (words[1], words[5]) == ("wire", "$end"), line
            path = ".".join([*scopes, words[4]])
            assert words[3] not in names, f"identifier declared twice: {line}"
            assert path not in widths, f"name declared twice: {line}"
            names[words[3]] = path
            widths[path] = int(words[2])
        elif words[0] == "$enddefinitions":
            assert scopes == [], "unbalanced scopes"
            break
        else:
            assert words[0] == "$timescale", line
    current: dict[str, int] = {}
    values: dict[str, list[int]] = {path: [] for path in widths}
    time = None

    def close_cycle() -> None:
        if time is not None and time % 10 == 0:
            for path in widths:
                values[path].append(current[path])

    for line in lines:
        if line.startswith("#"):
            close_cycle()
            new = int(line[1:])
            assert time is None or new > time, "time goes backwards"
            time = new
        elif line.startswith("b"):
            bits, code = line[1:].split(" ")
            assert len(bits) <= widths[names[code]]
            current[names[code]] = int(bits, 2)
        else:
            assert line[0] in "01", line
            assert line[1:] in names, line
            assert widths[names[line[1:]]] == 1
            current[names[line[1:]]] = int(line[0])
    assert time is not None, "no timestamps"
    assert time % 10 == 0, "the file ends at a cycle boundary"
    return widths, values


def _leaf_names(widths: dict[str, int]) -> dict[str, str]:
    """Each waveform path back to the PyRTL wire name it came from (scopes joined by ``_``)."""
    return {path: path.removeprefix("pyrtlnet.").replace(".", "_") for path in widths}


@pytest.fixture(scope="module")
def runs(default_model: Model):  # type: ignore[no-untyped-def]
    """Three images in batches of one, streamed; and the same run traced whole in memory."""
    q = qnn_ref.golden(default_model, start=40, count=3).input
    plan = dict(array=(1, 8), batch_size=1, simulator="fast", trace=True)
    streamed = pyrtlnet.build(default_model, **plan)
    text = io.StringIO()
    result = streamed.run(q, vcd=text)
    whole = pyrtlnet.build(default_model, **plan)
    whole.run(q)
    return streamed, text.getvalue(), whole, result


def test_vcd_values_are_the_simulation_values(runs) -> None:  # type: ignore[no-untyped-def]
    streamed, text, whole, result = runs
    widths, values = read_vcd(text)
    trace = whole._sim.tracer.trace
    cycles = len(trace["done"])
    assert result.batches == 3
    assert cycles == streamed.simulated_cycles(3) > 3 * streamed.cycles_per_batch
    wires = _leaf_names(widths)
    assert sorted(wires[p] for p in widths if p != "pyrtlnet.clk") == sorted(trace)
    for path, name in wires.items():
        if path == "pyrtlnet.clk":
            continue
        assert values[path] == list(trace[name]), name
    # done rises once per batch, at the cycle the plan says
    done = np.flatnonzero(values["pyrtlnet.done"])
    assert len(done) == 3
    assert values["pyrtlnet.cycles"][done[0]] == streamed.cycles_per_batch


def test_vcd_structure(runs) -> None:  # type: ignore[no-untyped-def]
    streamed, text, _, _ = runs
    widths, values = read_vcd(text)
    assert widths["pyrtlnet.clk"] == 1
    assert set(values["pyrtlnet.clk"]) == {1}  # high at each cycle's start ...
    assert text.count("\n0!\n") == len(values["pyrtlnet.clk"])  # ... and falls in each
    assert not [p for p in widths if "const_" in p or p.split(".")[-1].startswith("tmp")]
    assert not [w for w in pyrtlnet.waveform_wires(streamed.block) if isinstance(w, pyrtl.Const)]
    assert any(w.name.startswith("const_") for w in streamed.block.wirevector_set)  # left out
    # the hierarchy of the names: the tiled engine e0, its matmul and its sink
    assert "pyrtlnet.e0.mm.running" in widths
    assert any(p.startswith("pyrtlnet.e0.sink.") for p in widths)
    assert "pyrtlnet.in.addr" in widths
    assert "pyrtlnet.cycle_counter" in widths
    # only changes: far fewer value lines than wires times cycles
    changes = sum(1 for line in text.splitlines() if line[0] in "b01")
    assert changes < len(widths) * len(values["pyrtlnet.clk"]) / 4


def test_memory_stays_one_batch(runs) -> None:  # type: ignore[no-untyped-def]
    streamed, _text, whole, _ = runs
    assert all(len(v) == 0 for v in streamed._sim.tracer.trace.values())
    assert len(whole._sim.tracer.trace["done"]) == streamed.simulated_cycles(3)


def test_estimate_bounds_the_file(runs) -> None:  # type: ignore[no-untyped-def]
    streamed, text, _, _ = runs
    estimate = streamed.estimate_vcd_bytes(3)
    header = text.index("$enddefinitions")
    assert len(text) - header <= estimate < 50 * len(text)


def test_write_vcd_is_the_same_format(runs, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, text, whole, _ = runs
    whole.write_vcd(tmp_path / "w.vcd")
    assert (tmp_path / "w.vcd").read_text() == text


def test_vcd_needs_trace(default_model: Model) -> None:
    accelerator = pyrtlnet.build(default_model, simulator="fast")
    with pytest.raises(ValueError, match=r"^build the accelerator with trace=True"):
        accelerator.run(qnn_ref.golden(default_model, count=1).input, vcd=io.StringIO())
