"""Run many images through several simulations at once: one worker process per core.

Each worker receives the :class:`~pyrtlnet.Plan`, builds its own design and simulation from it
once (PyRTL's blocks and simulators are not shared between processes) and then runs chunks of
whole batches through it. Because every batch is independent and the hardware returns to idle
after each one, the result is the same as one accelerator running every batch in order: only
faster.

While the workers build (seconds each for a large array, before any image finishes) the
parent can report how many are ready: ``run_parallel(..., building=...)`` is called twice a
second with that count until every worker has built.

Interrupting (Ctrl-C, or any exception in the parent) terminates every worker at once: workers
ignore ``SIGINT`` themselves, so only the parent decides, and the cleanup runs with ``SIGINT``
masked so that a second Ctrl-C cannot leave workers behind. A worker that dies (killed, out of
memory) breaks the pool, which raises :class:`concurrent.futures.process.BrokenProcessPool`
rather than waiting for it forever.
"""

import math
import multiprocessing
import os
import signal
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import numpy as np

from qnn_ref import Outputs

from ._accelerator import DEFAULT_COPIES, Accelerator, InferenceResult
from ._design import build_design, check_inputs
from ._plan import Plan
from ._validate import check_positive

__all__ = ["ParallelResult", "default_jobs", "run_parallel"]

#: Images per task handed to a worker at most, by simulator: few enough that the progress bar
#: moves (2,000 images are a fraction of a second of the MLP on the native kernel, a few
#: seconds of the CNN), many enough that handing out tasks costs little next to them.
_CHUNK_IMAGES = {"native": 2000}
_DEFAULT_CHUNK_IMAGES = 200

#: Seconds between two reports of the build phase (``building``).
_POLL_SECONDS = 0.5

# The worker's own state: the plan it was started with, and the accelerator it builds from it
# on its first chunk (building in the first task, not in the initializer, lets a failure reach
# the parent as that task's own exception).
_plan: Plan | None = None
_simulator = "native"
_accelerator: Accelerator | None = None
_built: Any = None  # a multiprocessing.Value counting the workers that have built


def default_jobs() -> int:
    """Worker processes to use by default: one per core available to this process."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass(frozen=True, eq=False)
class ParallelResult(InferenceResult):
    """An :class:`~pyrtlnet.InferenceResult` from several workers.

    :param workers: worker processes used.
    :param build_seconds: the longest time a worker spent building its design and simulation
        (they build at the same time).
    """

    workers: int = 1
    build_seconds: float = 0.0


def _start_worker(plan: Plan, simulator: str, built: Any) -> None:
    global _plan, _simulator, _built
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # the parent handles Ctrl-C
    _plan, _simulator, _built = plan, simulator, built


def _run_chunk(task: tuple[int, np.ndarray]) -> tuple[int, InferenceResult, float]:
    global _accelerator
    if _accelerator is None:
        assert _plan is not None, "worker used before it was started"
        _accelerator = Accelerator(build_design(_plan), simulator=_simulator)
        with _built.get_lock():
            _built.value += 1
    first, q = task
    return first, _accelerator.run(q), _accelerator.build_seconds


@contextmanager
def _sigint_masked() -> Iterator[None]:
    """Ignore Ctrl-C inside the block (only the main thread can; elsewhere do nothing)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def run_parallel(
    plan: Plan,
    q: np.ndarray,
    *,
    jobs: int,
    simulator: str = "native",
    progress: Callable[[int], None] | None = None,
    building: Callable[[int], None] | None = None,
) -> ParallelResult:
    """Run quantized inputs through ``jobs`` worker processes, each simulating ``plan``'s design.

    :param plan: from :func:`pyrtlnet.make_plan` (sent to every worker, which builds the design
        from it).
    :param q: int8 ``[N, in_features]`` quantized inputs.
    :param jobs: worker processes (at most one per chunk of batches is started).
    :param simulator: the PyRTL simulator each worker uses (see :class:`pyrtlnet.Accelerator`).
    :param progress: called with the number of images finished so far, after every chunk.
    :param building: called with the number of workers that have built their simulation (0 at
        first), every half second until all have (last with :attr:`ParallelResult.workers`).
    :returns: the outputs of all ``N`` images, in order, as one accelerator would give them.
    :raises ValueError: if ``q`` is not int8 ``[N, in_features]`` with ``N >= 1``.
    :raises KeyboardInterrupt: after terminating every worker, if interrupted.
    """
    jobs = check_positive("jobs", jobs)
    q = check_inputs(plan.model, q)
    batch_size = plan.batch_size
    batches = math.ceil(len(q) / batch_size)
    workers = max(1, min(jobs, batches))
    share = math.ceil(batches / workers)
    chunk = _CHUNK_IMAGES.get(simulator, _DEFAULT_CHUNK_IMAGES)
    per_task = max(1, min(chunk // batch_size, share))
    # Whole groups of batches, one per copy of the design in the worker's kernel, where that
    # leaves every worker a task.
    per_task = min(-(-per_task // DEFAULT_COPIES) * DEFAULT_COPIES, share)
    step = per_task * batch_size
    tasks = [(first, q[first : first + step]) for first in range(0, len(q), step)]
    workers = min(workers, len(tasks))
    parts: dict[int, InferenceResult] = {}
    build_seconds = 0.0
    done = 0
    # "spawn": a fresh interpreter per worker, safe whatever threads the parent runs (LiteRT,
    # TensorFlow in tests).
    context = multiprocessing.get_context("spawn")
    before = set(multiprocessing.active_children())
    built = context.Value("i", 0)
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(plan, simulator, built),
    )
    try:
        pending = {pool.submit(_run_chunk, task) for task in tasks}
        ready = 0  # workers known to have built
        while pending:
            if building is not None and ready < workers:
                ready = min(built.value, workers)
                building(ready)
            finished, pending = wait(pending, timeout=_POLL_SECONDS, return_when=FIRST_COMPLETED)
            for future in finished:
                first, part, seconds = future.result()
                parts[first] = part
                build_seconds = max(build_seconds, seconds)
                done += len(part.predictions)
                if progress is not None:
                    progress(done)
        if building is not None and ready < workers:
            building(workers)  # the last builds finished between two reports
    except BaseException:
        with _sigint_masked():
            # The pool's own processes: the children started since it was created.
            for process in set(multiprocessing.active_children()) - before:
                process.terminate()
            pool.shutdown(wait=True, cancel_futures=True)
        raise
    pool.shutdown()
    ordered = [parts[i] for i in sorted(parts)]
    return ParallelResult(
        outputs=Outputs.concat([p.outputs for p in ordered]),
        cycles=sum(p.cycles for p in ordered),
        batches=sum(p.batches for p in ordered),
        workers=workers,
        build_seconds=build_seconds,
    )
