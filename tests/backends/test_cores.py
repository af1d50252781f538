"""This process's share of the CPU (``mnist_accel.backends.cores``): affinity, the limits a parent or a caller
set, a joblib or Dask worker's share, and the trainer taking it when ``--threads`` is 0."""

from __future__ import annotations

import os
import subprocess
import sys

import numpy as np
import pytest
from joblib import Parallel, cpu_count, delayed
from threadpoolctl import threadpool_limits

from mnist_accel.backends import cores


@pytest.fixture
def no_limits(monkeypatch):
    for name in cores.LIMIT_VARIABLES:
        monkeypatch.delenv(name, raising=False)


def test_the_share_is_at_most_the_usable_cores(no_limits):
    assert 1 <= cores.share() <= cpu_count()


@pytest.mark.parametrize("value, expected", [("1", 1), ("1,4", 1), ("0", None), ("", None), ("lots", None)])
def test_a_limit_in_the_environment_caps_the_share(no_limits, monkeypatch, value, expected):
    """Numbers count (OpenMP's nested "1,4" by its first level); what is not a positive count is ignored."""
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert cores.share() == (expected or min(cpu_count(), cores._blas_limit() or cpu_count()))


@pytest.mark.parametrize("name", cores.LIMIT_VARIABLES)
def test_every_variable_a_pool_hands_its_workers_counts(no_limits, monkeypatch, name):
    monkeypatch.setenv(name, "1")
    assert cores.share() == 1


def test_a_threadpool_limit_around_the_call_caps_the_share(no_limits):
    with threadpool_limits(1, user_api="blas"):
        assert cores.share() == 1


def test_an_explicit_thread_count_is_taken_as_it_is(no_limits):
    with threadpool_limits(1, user_api="blas"):
        assert cores.threads_for(3) == 3 and cores.threads_for(0) == 1


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or cpu_count() < 2, reason="needs affinity and 2 cores")
def test_cpu_affinity_caps_the_share():
    code = "import os; os.sched_setaffinity(0, {min(os.sched_getaffinity(0))}); " \
           "from mnist_accel.backends import cores; print(cores.share())"
    env = {k: v for k, v in os.environ.items() if k not in cores.LIMIT_VARIABLES}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120)
    assert out.stdout.strip() == "1", out.stderr


def test_the_usable_cores_come_from_joblib(no_limits, monkeypatch):
    """joblib.cpu_count reads affinity and the cgroup quota, and LOKY_MAX_CPU_COUNT, which stands in for them
    here (a test cannot set a cgroup quota)."""
    monkeypatch.setenv("LOKY_MAX_CPU_COUNT", "1")
    assert cores.share() == 1


def _share_and_trainer_threads() -> tuple[int, int]:
    from mnist_accel.backends.selection import get_backend
    from mnist_accel.config import resolve
    from mnist_accel.trainers.vectorized import VectorizedTrainer

    cfg = resolve(hidden=(8,), epochs=1, batch_size=8, backend="numpy")
    r = np.random.default_rng(0)
    trainer = VectorizedTrainer(cfg, get_backend("numpy"), [r.random((784, 8)), np.zeros(8), r.random((8, 10)),
                                                             np.zeros(10)], r, np.zeros((16, 784), np.uint8),
                                np.zeros(16, np.int64))
    return cores.share(), trainer.threads


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores to split")
def test_a_joblib_worker_trains_on_its_share(no_limits):
    """loky hands each of n_jobs workers cores // n_jobs threads through the environment."""
    got = Parallel(n_jobs=2, backend="loky")(delayed(_share_and_trainer_threads)() for _ in range(2))
    assert got == [(max(1, cpu_count() // 2),) * 2] * 2


@pytest.mark.skipif(cpu_count() < 2, reason="needs 2 cores to split")
def test_a_dask_task_thread_trains_on_its_share(no_limits):
    distributed = pytest.importorskip("distributed")
    with distributed.Client(processes=False, n_workers=1, threads_per_worker=2, dashboard_address=None) as client:
        got = client.submit(_share_and_trainer_threads, pure=False).result(timeout=120)
    assert got == (max(1, cpu_count() // 2),) * 2
    assert "distributed" in sys.modules and _share_and_trainer_threads()[0] == cores.share()  # only on a worker


def test_the_trainer_takes_the_share_when_threads_is_zero(no_limits):
    with threadpool_limits(1, user_api="blas"):
        assert _share_and_trainer_threads() == (1, 1)
