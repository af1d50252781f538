"""Mini-batch training, 784-256-10, batch 128, Adam 1e-3, float32, no dropout: one epoch per round.

Peers share the group and are skipped when not installed.
"""

from __future__ import annotations

import pytest

from bench.workloads import VEC_SIZES, flops_per_sample, jax_run, sklearn_run, torch_run, vectorized_run

GROUP = "vectorized-784-256-10-b128-adam"
FLOPS = flops_per_sample(VEC_SIZES)
ROUNDS = 5


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("backend", ["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_mnist_accel(run_epoch, mnist, samples, backend):
    run_epoch(lambda: vectorized_run(backend, mnist, samples), ROUNDS, FLOPS, "float32", "vectorized", backend)


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("device, graphs", [
    ("cpu", False),
    pytest.param("cuda", False, marks=pytest.mark.gpu),
    pytest.param("cuda", True, marks=pytest.mark.gpu),
])
def test_torch(run_epoch, mnist, samples, device, graphs):
    pytest.importorskip("torch")
    name = f"torch-{device}" + ("-graphs" if graphs else "")
    run_epoch(lambda: torch_run(device, mnist, samples, graphs), ROUNDS, FLOPS, "float32", "vectorized", name)


@pytest.mark.benchmark(group=GROUP)
def test_sklearn(run_epoch, mnist, samples):
    pytest.importorskip("sklearn")
    run_epoch(lambda: sklearn_run(mnist, samples), 3, FLOPS, "float32", "vectorized", "sklearn")


@pytest.mark.benchmark(group=GROUP)
def test_jax(run_epoch, mnist, samples):
    pytest.importorskip("jax")
    run_epoch(lambda: jax_run(mnist, samples), ROUNDS, FLOPS, "float32", "vectorized", "jax")
