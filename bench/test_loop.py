"""Per-sample SGD on the tutorial's model (784-100-10, dropout 0.5): one epoch per round."""

from __future__ import annotations

import pytest

from bench.workloads import LOOP_SIZES, flops_per_sample, loop_run

GROUP = "loop-784-100-10"
FLOPS = flops_per_sample(LOOP_SIZES)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("backend, dtype, rounds", [
    ("numpy", "float64", 1),  # the reference: about 10 s an epoch, so one round
    ("numba", "float64", 5),
    ("numba", "float32", 5),
    pytest.param("cuda", "float64", 5, marks=pytest.mark.gpu),
])
def test_loop_epoch(run_epoch, mnist, samples, backend, dtype, rounds):
    run = run_epoch(lambda: loop_run(backend, mnist, samples, dtype), rounds, FLOPS, dtype, "loop", backend)
    assert run.accuracy() > 0.1
