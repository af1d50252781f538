"""Do the specialised CPU engines earn their place? The ``engines`` group trains ``--preset full-batch`` (the
whole training set as one batch) three ways on the numba backend: with both full-batch engines (the sparse
first-layer products and the fused whole-set step), with the sparse products alone, and with neither (dense
BLAS products). Run it as a user's machine runs it (``OPENBLAS_CORETYPE`` and ``OPENBLAS_L2_SIZE`` unset):
each engine must win by 10% (``bench.report``'s targets). Rows carry the run's training seconds.
"""

from __future__ import annotations

import pytest

from bench.workloads import flops_per_sample
from mnist_accel.backends import numba_ops
from mnist_accel.config import resolve
from mnist_accel.training.fit import fit

GROUP = "engines-full-batch"


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("engines", ["whole-step", "sparse", "dense-blas"])
def test_full_batch_engines(benchmark, monkeypatch, mnist, samples, engines):
    if engines in ("sparse", "dense-blas"):
        monkeypatch.setattr(numba_ops, "fusable", lambda cfg, params: False)
    if engines == "dense-blas":
        monkeypatch.setattr(numba_ops, "worth_it", lambda pixels: False)
    quick = samples < 60000
    cfg = resolve("full-batch", backend="numba", epochs=5 if quick else 150, train_samples=samples,
                  batch_size=samples, test_samples=1000 if quick else None)
    fit(cfg.replace(epochs=1), mnist)  # compiles, or loads from the cache, what this row's engines use
    results = []
    benchmark.pedantic(lambda: results.append(fit(cfg, mnist)), rounds=1 if quick else 3, iterations=1)
    seconds = sorted(r.train_seconds for r in results)[len(results) // 2]  # the median run's training time
    benchmark.extra_info.update(backend=engines, seconds=seconds / cfg.epochs, samples=samples, epochs=1,
                                dtype=cfg.dtype, path="vectorized", device="CPU",
                                test_accuracy=results[-1].test_accuracy,
                                flops_per_epoch=flops_per_sample((784, *cfg.hidden, 10)) * samples)
    assert results[-1].test_accuracy > 0.1
