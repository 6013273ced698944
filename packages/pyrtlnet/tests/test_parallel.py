"""Several worker processes give exactly what one accelerator gives, in order."""

import numpy as np

import pyrtlnet
import qnn_ref
from qnn_ref import Model


def test_run_parallel_matches_golden_in_order(default_model: Model) -> None:
    golden = qnn_ref.golden(default_model, start=4000, count=203, rounding="reference")
    result = pyrtlnet.run_parallel(
        default_model,
        golden.input,
        jobs=2,
        architecture="per-layer",
        batch_size=4,
        rounding="reference",
    )
    for ours, theirs in zip(result.outputs.layers, golden.layers, strict=True):
        np.testing.assert_array_equal(ours, theirs, strict=True)
    np.testing.assert_array_equal(result.predictions, golden.predictions, strict=True)
    plan = pyrtlnet.make_plan(default_model, architecture="per-layer", batch_size=4)
    assert result.workers == 2
    assert result.batches == 51
    assert result.cycles == 51 * plan.cycles_per_batch
    assert result.build_seconds > 0


def test_default_jobs_is_positive() -> None:
    assert pyrtlnet.default_jobs() >= 1
