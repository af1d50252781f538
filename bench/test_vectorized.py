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
@pytest.mark.parametrize("backend, graphs", [
    ("numpy", False),
    ("numba", False),
    pytest.param("cuda", True, marks=pytest.mark.gpu),  # the default: the fused step replayed from a CUDA graph
    pytest.param("cuda", False, marks=pytest.mark.gpu),  # the same kernels launched one by one: what the graph saves
])
def test_mnist_accel(run_epoch, mnist, samples, backend, graphs):
    name = backend + ("-eager" if backend == "cuda" and not graphs else "")
    run = run_epoch(lambda: vectorized_run(backend, mnist, samples, graphs=graphs), ROUNDS, FLOPS,
                    "float32", "vectorized", name)
    if backend == "cuda" and graphs and samples >= 10_000:  # an epoch of that many learns: the device computed
        assert run.accuracy() > 0.5


@pytest.mark.gpu
@pytest.mark.benchmark(group="time-to-98")
def test_time_to_98_percent(benchmark, mnist):
    """The default preset on the GPU: training seconds (evaluation excluded) until test accuracy reaches 98%."""
    from mnist_accel.config import resolve
    from mnist_accel.training.fit import fit

    result = benchmark.pedantic(lambda: fit(resolve(backend="cuda", epochs=10), mnist), rounds=1, iterations=1)
    elapsed, reached = 0.0, None
    for record in result.history:
        elapsed += record["seconds"]
        if record["test_accuracy"] >= 0.98:
            reached = elapsed
            break
    benchmark.extra_info.update(backend="cuda-default-preset", seconds_to_98=reached, graphs=result.graphs,
                                test_accuracy=result.test_accuracy, device=result.device)
    assert reached is not None, f"never reached 98% in 10 epochs (best {result.test_accuracy:.4f})"


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("device, graphs", [
    ("cpu", False),
    pytest.param("cuda", False, marks=pytest.mark.gpu),
    pytest.param("cuda", True, marks=pytest.mark.gpu),
])
def test_torch(run_epoch, mnist, samples, device, graphs):
    torch = pytest.importorskip("torch")
    if device == "cuda" and not torch.cuda.is_available():  # a CPU build of PyTorch, or the CuPy stand-in
        pytest.skip("PyTorch has no CUDA here")
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
