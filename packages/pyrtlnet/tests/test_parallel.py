"""Several worker processes give exactly what one accelerator gives, in order; Ctrl-C stops them."""

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import pyrtlnet
import qnn_ref
from qnn_ref import Model


def test_run_parallel_matches_golden_in_order(default_model: Model) -> None:
    golden = qnn_ref.golden(default_model, start=4000, count=203, rounding="reference")
    plan = pyrtlnet.make_plan(
        default_model, architecture="per-layer", batch_size=4, rounding="reference"
    )
    events: list[tuple[str, int]] = []
    result = pyrtlnet.run_parallel(
        plan,
        golden.input,
        jobs=2,
        progress=lambda done: events.append(("done", done)),
        building=lambda ready: events.append(("ready", ready)),
    )
    # The build phase is reported from its start (no worker ready, no image done) to its end
    # (both ready), never backwards; images are reported as chunks finish, up to all of them.
    ready = [n for kind, n in events if kind == "ready"]
    done = [n for kind, n in events if kind == "done"]
    assert events[0] == ("ready", 0)
    assert ready[-1] == 2
    assert ready == sorted(ready)
    assert done == sorted(done)
    assert done[-1] == 203
    np.testing.assert_array_equal(result.outputs.input, golden.input, strict=True)
    for ours, theirs in zip(result.outputs.layers, golden.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    np.testing.assert_array_equal(result.predictions, golden.predictions, strict=True)
    assert result.workers == 2
    assert result.batches == 51
    # Measured by the workers' cycle counters; per-layer: sum over layers of 1 + k + B + n + 3 + 9
    # (the engine's three pipeline stages, the requantizers' nine).
    assert result.cycles == 51 * ((1 + 144 + 4 + 18 + 12) + (1 + 18 + 4 + 10 + 12))
    assert result.build_seconds > 0


def test_run_parallel_rejects_bad_requests(default_model: Model) -> None:
    plan = pyrtlnet.make_plan(default_model)
    with pytest.raises(ValueError, match=r"^jobs must be a positive integer, not 0$"):
        pyrtlnet.run_parallel(plan, np.zeros((1, 144), np.int8), jobs=0)
    with pytest.raises(
        ValueError,
        match=r"^quantized inputs must be an int8 array of shape \[N, 144\] with N >= 1, "
        r"not int8 of shape \[0, 144\]$",
    ):
        pyrtlnet.run_parallel(plan, np.zeros((0, 144), np.int8), jobs=2)


def test_default_jobs_counts_the_cores_this_process_may_use(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 3, 5}, raising=False)
    assert pyrtlnet.default_jobs() == 3

    def no_affinity(pid: int) -> set[int]:
        raise AttributeError("not on Linux")

    monkeypatch.setattr(os, "sched_getaffinity", no_affinity, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: None)
    assert pyrtlnet.default_jobs() == 1
    monkeypatch.setattr(os, "cpu_count", lambda: 6)
    assert pyrtlnet.default_jobs() == 6


def test_no_idle_workers(default_model: Model) -> None:
    """One batch is one task: one worker, however many jobs were asked for."""
    plan = pyrtlnet.make_plan(default_model, array=(2, 8), batch_size=3)
    golden = qnn_ref.golden(default_model, start=0, count=3)
    result = pyrtlnet.run_parallel(plan, golden.input, jobs=4)
    assert result.workers == 1
    np.testing.assert_array_equal(result.predictions, golden.predictions, strict=True)


_INTERRUPTED_RUN = """
import signal, sys
import numpy as np
import pyrtlnet, qnn_ref

if __name__ == "__main__":  # the spawned workers import this file too
    # As a terminal's foreground job would have it, also where the tests themselves were
    # started in the background (which inherits SIGINT ignored).
    signal.signal(signal.SIGINT, signal.default_int_handler)
    model = qnn_ref.read_model(qnn_ref.default_model_path())
    q = np.zeros((20000, model.in_features), np.int8)
    try:
        # pyrtl.Simulation: a chunk of 200 images takes a minute, so only terminating the
        # workers (not waiting for their chunks) ends the run within seconds.
        pyrtlnet.run_parallel(pyrtlnet.make_plan(model), q, jobs=2, simulator="simulation")
    except KeyboardInterrupt:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        print("interrupted", flush=True)
        sys.exit(130)
    print("finished", flush=True)
"""


def _children(pid: int) -> set[int]:
    """Process ids whose parent is ``pid`` (from /proc)."""
    children = set()
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == pid:
                children.add(int(entry))
    return children


def _stat(pid: int) -> list[str]:
    """The fields of /proc/PID/stat after the command name (state first); [] if gone."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            return stat.read().rsplit(")", 1)[1].split()
    except OSError:
        return []


def _alive(pid: int) -> bool:
    fields = _stat(pid)
    return bool(fields) and fields[0] != "Z"


def _cpu_seconds(pid: int) -> float:
    fields = _stat(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") if fields else 0.0


@pytest.mark.skipif(not os.path.isdir("/proc"), reason="reads worker processes from /proc")
def test_ctrl_c_stops_every_worker_at_once(tmp_path) -> None:
    """Ctrl-C (SIGINT to the whole process group, as a terminal sends it) during a real
    two-worker run: KeyboardInterrupt within seconds and no process left behind; a second
    Ctrl-C during the cleanup changes nothing."""
    script = tmp_path / "run.py"
    script.write_text(_INTERRUPTED_RUN)
    run = subprocess.Popen(
        [sys.executable, str(script)], stdout=subprocess.PIPE, text=True, start_new_session=True
    )
    try:
        # Wait until two children (the workers; the resource tracker uses no CPU) have each
        # spent 2 s of CPU, far more than starting up takes: both are simulating a chunk.
        deadline = time.monotonic() + 120
        busy: set[int] = set()
        while len(busy) < 2:
            assert run.poll() is None, "the run ended early"
            assert time.monotonic() < deadline, "the workers never got busy"
            time.sleep(0.2)
            busy = {pid for pid in _children(run.pid) if _cpu_seconds(pid) > 2}
        children = _children(run.pid)
        began = time.monotonic()
        os.killpg(run.pid, signal.SIGINT)
        time.sleep(0.05)
        os.killpg(run.pid, signal.SIGINT)  # impatient
        rest, _ = run.communicate(timeout=30)
        seconds = time.monotonic() - began
        deadline = time.monotonic() + 2
        while any(_alive(pid) for pid in children) and time.monotonic() < deadline:
            time.sleep(0.05)
    finally:
        if run.poll() is None:
            os.killpg(run.pid, signal.SIGKILL)
    assert (run.returncode, rest.split()[-1:]) == (130, ["interrupted"]), rest
    assert seconds < 5
    assert not [pid for pid in children if _alive(pid)]
