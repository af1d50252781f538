"""Scaling sweeps on the vectorized path: hidden width 64-2048 at batch 128, and batch 32-4096 at width 256.

Each point trains on the same images (at most 16,384 per round) with Adam; the report plots seconds per
epoch against FLOPs per epoch, so it shows where each backend stops being launch- or overhead-bound.
"""

from __future__ import annotations

import pytest

from bench.workloads import flops_per_sample, vectorized_run

BACKENDS = ["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)]
WIDTHS = [64, 128, 256, 512, 1024, 2048]
BATCHES = [32, 128, 512, 2048, 4096]


@pytest.fixture
def sweep_samples(samples):
    return min(samples, 16384)


@pytest.mark.benchmark(group="sweep-width")
@pytest.mark.parametrize("width", WIDTHS)
@pytest.mark.parametrize("backend", BACKENDS)
def test_width(run_epoch, mnist, sweep_samples, backend, width):
    run_epoch(lambda: vectorized_run(backend, mnist, sweep_samples, hidden=width), 3,
              flops_per_sample((784, width, 10)), "float32", "vectorized", backend, samples=sweep_samples,
              width=width, batch=128)


@pytest.mark.benchmark(group="sweep-batch")
@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_batch(run_epoch, mnist, sweep_samples, backend, batch):
    run_epoch(lambda: vectorized_run(backend, mnist, sweep_samples, batch=batch), 3,
              flops_per_sample((784, 256, 10)), "float32", "vectorized", backend, samples=sweep_samples,
              width=256, batch=batch)
