"""The local pool: each worker process gets its share of the cores (BLAS threads) or its own GPU (by
CUDA_VISIBLE_DEVICES, which needs no GPU to check), and a pool whose worker died is replaced."""

from __future__ import annotations

import os
import signal
import time
from concurrent.futures.process import BrokenProcessPool

import pytest

from mnist_accel.sweep import trial as ex
from mnist_accel.sweep.pools import LocalPool


def _probe(pause: float = 0.5):
    """What a worker process was given; the pause makes the pool start a second process for the second call."""
    from threadpoolctl import threadpool_info

    time.sleep(pause)
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), ex.WORKER_THREADS, blas


def test_each_worker_gets_its_threads_and_its_gpu():
    pool = LocalPool(2, threads=1, gpus=["3", "5"])
    try:
        seen = [f.result(timeout=120) for f in [pool.pool.submit(_probe), pool.pool.submit(_probe)]]
    finally:
        pool.close()
    assert len({pid for pid, *_ in seen}) == 2 and os.getpid() not in {pid for pid, *_ in seen}
    assert sorted(gpu for _, gpu, _, _ in seen) == ["3", "5"]
    assert all(threads == 1 and set(blas) <= {1} for _, _, threads, blas in seen)


def test_a_pool_whose_worker_died_is_replaced():
    pool = LocalPool(1, threads=1, gpus=None)
    try:
        with pytest.raises(BrokenProcessPool):
            pool.pool.submit(os._exit, 1).result(timeout=120)
        pool.restart()
        assert pool.pool.submit(_probe, 0).result(timeout=120)[2] == 1
    finally:
        pool.close()


def _trial_that_dies(number: int, pause: float):
    """Stands for a trial whose process the kernel kills for its memory: says it took the trial, then dies."""
    from mnist_accel.sweep import pools as sweep_pools

    sweep_pools._took(number)
    time.sleep(pause)
    os.kill(os.getpid(), signal.SIGKILL)


def _trial_that_lives(number: int, pause: float):
    from mnist_accel.sweep import pools as sweep_pools

    sweep_pools._took(number)
    time.sleep(pause)
    return number


def test_a_broken_pool_names_the_trial_whose_process_died():
    """A pool breaks as a whole: only the trial whose own process was killed is to blame."""
    pool = LocalPool(2, threads=1, gpus=None)
    try:
        warm = [pool.pool.submit(_trial_that_lives, n, 1.0) for n in (0, 1)]  # both processes started
        assert [f.result(timeout=120) for f in warm] == [0, 1]
        lives = pool.pool.submit(_trial_that_lives, 2, 3.0)
        dies = pool.pool.submit(_trial_that_dies, 3, 0.5)
        for future in (dies, lives):
            with pytest.raises(BrokenProcessPool):
                future.result(timeout=120)
        assert pool.died() == {3: "was killed by SIGKILL"}
    finally:
        pool.close()
