"""Where trials run: each worker of a local Dask cluster gets its share of the cores (through the variables
numerical libraries read) or its own GPU (by CUDA_VISIBLE_DEVICES, which needs no GPU to check), and a
trial whose worker process is killed is run again, as Optuna's retry callback queues it."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")
pytest.importorskip("distributed")

from mnist_accel.backends import cores
from mnist_accel.sweep import cluster

EPOCHS = 12  # a trial long enough that the one the test kills is still training when the signal lands


def _probe(gpus):
    from threadpoolctl import threadpool_info

    cluster.take_gpu(gpus)
    blas = [i["num_threads"] for i in threadpool_info() if i["user_api"] == "blas"]
    return os.getpid(), os.environ.get("CUDA_VISIBLE_DEVICES"), os.environ.get("NUMBA_NUM_THREADS"), cores.share(), blas


def test_each_worker_gets_its_threads_and_its_gpu():
    before = dict(os.environ)
    runner = cluster.local(2, threads=2, gpus=["3", "5"])  # 2, not Dask's own 1, shows whose count it is
    assert dict(os.environ) == before  # the workers' thread limits are theirs, not this process's
    try:
        workers = list(runner.client.nthreads())
        seen = [runner.client.submit(_probe, ["3", "5"], workers=[w], pure=False).result(timeout=120) for w in workers]
    finally:
        runner.close()
    assert dict(os.environ) == before
    assert len({pid for pid, *_ in seen}) == 2 and os.getpid() not in {pid for pid, *_ in seen}
    assert sorted(gpu for _, gpu, *_ in seen) == ["3", "5"]
    share = min(2, cores.share())
    assert all(numba == "2" and got == share and set(blas) <= {share} for *_, numba, got, blas in seen)


def _trials(path, **kwargs):
    """The trials of the study in ``path``; none until the sweep has created it."""
    try:
        return optuna.load_study(study_name="mnist-sweep", storage=f"sqlite:///{path}").get_trials(**kwargs)
    except Exception:  # no file, no tables or no study yet
        return []


def _running_trial(path, timeout=120):
    """A trial that has reported an epoch and is still training, with the worker that trains it."""
    deadline = time.monotonic() + timeout
    while True:
        for t in _trials(path, states=(optuna.trial.TrialState.RUNNING,)):
            if 0 < len(t.intermediate_values) <= EPOCHS // 2 and "worker" in t.user_attrs:  # far from its end
                return t
        assert time.monotonic() < deadline, "no trial started training"
        time.sleep(0.02)


def test_a_trial_whose_worker_was_killed_runs_again(tmp_path):
    """As the kernel's out-of-memory killer would: SIGKILL to the worker process in the middle of a trial."""
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--workers", "2", "--epochs", str(EPOCHS),
            "--train-samples", "20000", "--test-samples", "500", "--backend", "numpy", "--space", "hidden=64,96,128",
            "--pruner", "none", "--trials", "3", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        killed = _running_trial(out / "study.db")
        os.kill(int(killed.user_attrs["worker"].rpartition(":")[2]), signal.SIGKILL)
        stdout, stderr = proc.communicate(timeout=300)
    finally:
        proc.kill()
    assert proc.returncode == 0 and "Traceback" not in stderr, stderr
    assert f"trial {killed.number} lost its worker process (killed? out of memory?); it runs again" in stdout
    with open(out / "trials.csv") as f:
        rows = {r["number"]: r for r in csv.DictReader(f)}
    dead = rows[str(killed.number)]
    rerun = [r for r in rows.values() if r["retry_of"] == str(killed.number)]
    assert dead["state"] == "FAIL" and len(rerun) == 1
    assert dead["reason"] == f"interrupted before it finished; run again as trial {rerun[0]['number']}"
    assert rerun[0]["state"] == "COMPLETE" and rerun[0]["params_hidden"] == dead["params_hidden"]
    assert sum(r["state"] == "COMPLETE" for r in rows.values()) == 3  # the total counts finished trials only


def test_local_workers_take_the_gpus_cuda_sees(monkeypatch):
    """One trial per GPU: the device list comes from CuPy (the stand-in's one device here) through backend.py,
    or from CUDA_VISIBLE_DEVICES; CPU backends and machines where CUDA does not work get none."""
    from cuda_standin import activate

    from mnist_accel.backends import selection as backend

    assert cluster.gpus("numba") is None
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    with activate(), monkeypatch.context() as patch:  # undone before activate() restores the backend
        assert cluster.gpus("cuda") is None  # the stand-in says CUDA does not work, so auto never picks it
        patch.setattr(backend, "cuda_unavailable_reason", lambda: None)  # as on a machine where it does
        assert cluster.gpus("cuda") == cluster.gpus("auto") == ["0"] and cluster.gpus("numpy") is None
        patch.setenv("CUDA_VISIBLE_DEVICES", "2, 5")
        assert cluster.gpus("auto") == ["2", "5"]
    assert backend.cuda_unavailable_reason() is not None or backend.gpu_count() > 0  # the real answer again
