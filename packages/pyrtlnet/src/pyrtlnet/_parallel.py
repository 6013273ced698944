"""Run many images through several simulations at once: one worker process per core.

Each worker builds its own :class:`~pyrtlnet.Accelerator` once (PyRTL's simulators are not
shared between processes) and then runs chunks of whole batches through it. Because every batch
is independent and the hardware returns to idle after each one, the result is the same as one
accelerator running every batch in order: only faster.
"""

import math
import multiprocessing
import os
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass

import numpy as np

from qnn_ref import Model
from qnn_ref.cli import concatenate

from ._accelerator import Accelerator, InferenceResult, build

__all__ = ["ParallelResult", "default_jobs", "run_parallel"]

#: Images per task handed to a worker at most: small enough that the progress bar moves.
_CHUNK_IMAGES = 200

_accelerator: Accelerator | None = None  # the worker's own, built once by _start_worker


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
    :param build_seconds: the longest time a worker spent building its accelerator (they build
        at the same time).
    """

    workers: int = 1
    build_seconds: float = 0.0


def _start_worker(model: Model, options: dict[str, object]) -> None:
    global _accelerator
    _accelerator = build(model, **options)  # type: ignore[arg-type]


def _run_chunk(first: int, q: np.ndarray) -> tuple[int, InferenceResult, float]:
    assert _accelerator is not None, "worker used before its accelerator was built"
    return first, _accelerator.run(q), _accelerator.build_seconds


def run_parallel(
    model: Model,
    q: np.ndarray,
    *,
    jobs: int,
    progress: Callable[[int], None] | None = None,
    **options: object,
) -> ParallelResult:
    """Run quantized inputs through ``jobs`` worker processes, each with its own accelerator.

    :param model: the model.
    :param q: int8 ``[N, in_features]`` quantized inputs.
    :param jobs: worker processes (at most one per batch is started).
    :param progress: called with the number of images finished so far, after every chunk.
    :param options: keyword arguments of :func:`pyrtlnet.build` (``batch_size``, ...).
    :returns: the outputs of all ``N`` images, in order, as one accelerator would give them.
    """
    batch_size = int(options.get("batch_size", 1))  # type: ignore[call-overload]
    batches = math.ceil(len(q) / batch_size)
    workers = max(1, min(jobs, batches))
    per_task = max(1, min(_CHUNK_IMAGES // batch_size, math.ceil(batches / workers)))
    step = per_task * batch_size
    parts: dict[int, InferenceResult] = {}
    build_seconds = 0.0
    done = 0
    # "spawn": a fresh interpreter per worker, safe whatever threads the parent runs (LiteRT,
    # TensorFlow in tests).
    context = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(
        max_workers=workers,
        mp_context=context,
        initializer=_start_worker,
        initargs=(model, options),
    ) as pool:
        pending = {pool.submit(_run_chunk, i, q[i : i + step]) for i in range(0, len(q), step)}
        while pending:
            finished, pending = wait(pending, return_when=FIRST_COMPLETED)
            for future in finished:
                first, part, seconds = future.result()
                parts[first] = part
                build_seconds = max(build_seconds, seconds)
                done += len(part.predictions)
                if progress is not None:
                    progress(done)
    ordered = [parts[i] for i in sorted(parts)]
    return ParallelResult(
        outputs=concatenate([p.outputs for p in ordered]),
        cycles=sum(p.cycles for p in ordered),
        batches=sum(p.batches for p in ordered),
        workers=workers,
        build_seconds=build_seconds,
    )
