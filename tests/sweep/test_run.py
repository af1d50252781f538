"""Sweeps end to end: a ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1 share one study
driven by the command line (every trial runs once, on either worker, and scores what the same fit scores
alone); the command with two local workers writes its results; failing trials leave the sweep going; bad
arguments are one line. Also scikit-learn's GridSearchCV over MLPClassifier on the same Dask workers
through joblib."""

from __future__ import annotations

import csv
import json
import os
import re
import subprocess
import sys
from collections import Counter
from itertools import product

import numpy as np
import pytest

optuna = pytest.importorskip("optuna")

from mnist_accel.config import resolve
from mnist_accel.sweep.run import main, sweep
from mnist_accel.sweep.space import overrides
from mnist_accel.training.fit import fit

BASE = resolve(backend="numpy", epochs=1, train_samples=2000, test_samples=500, threads=1)


@pytest.fixture(scope="module")
def cluster(tmp_path_factory):
    """A ``dask scheduler`` and two ``dask worker`` processes on 127.0.0.1, started with the commands the
    README gives for each machine (they inherit $MNIST_ACCEL_DATA), and a client of this test's own."""
    distributed = pytest.importorskip("distributed")
    folder = tmp_path_factory.mktemp("dask")
    address_file = folder / "scheduler.json"  # the scheduler writes the port it chose here
    cli = [sys.executable, "-m"]
    procs = [subprocess.Popen([*cli, "distributed.cli.dask_scheduler", "--host", "127.0.0.1", "--port", "0",
                               "--no-dashboard", "--scheduler-file", str(address_file)], cwd=folder,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)]
    try:
        for i in range(2):
            procs.append(subprocess.Popen([*cli, "distributed.cli.dask_worker", "--scheduler-file", str(address_file),
                                           "--nthreads", "1", "--no-dashboard", "--local-directory",
                                           str(folder / f"w{i}")], cwd=folder, stdout=subprocess.DEVNULL,
                                          stderr=subprocess.DEVNULL))
        with distributed.Client(scheduler_file=str(address_file), timeout="60s") as client:
            client.wait_for_workers(2, timeout=120)
            yield client
            client.shutdown()  # the scheduler stops its workers, then itself
    finally:
        for proc in procs:
            try:
                proc.wait(timeout=30)
            except subprocess.TimeoutExpired:  # the fixture failed before the shutdown, or it hung
                proc.terminate()
                try:
                    proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()


def _params(row):
    return {k.removeprefix("params_"): v for k, v in row.items() if k.startswith("params_")}


def test_two_dask_workers_share_one_study(cluster, tmp_path, mnist):
    """The command line drives the cluster as the README says; the scheduler's own record of its tasks
    shows each trial ran once, and the results match the same fits run here one by one."""
    from distributed import get_task_stream

    address = cluster.scheduler.address
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--scheduler", address, "--space", "lr=1e-3:1e-1:log",
            "hidden=8,16,32", "--trials", "6", "--sampler", "random", "--pruner", "none", "--backend", "numpy",
            "--epochs", "1", "--train-samples", "2000", "--test-samples", "500", "--threads", "1",
            "--out", str(tmp_path)]
    with get_task_stream(cluster) as stream:  # every task the scheduler ran meanwhile, whoever submitted it
        done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    rows = _csv(tmp_path / "trials.csv")
    assert [(r["number"], r["state"]) for r in rows] == [(str(n), "COMPLETE") for n in range(6)]
    tasks = Counter(re.search(r"-task-(\d+)$", str(task["key"])).group(1) for task in stream.data
                    if str(task["key"]).startswith("sweep-mnist-sweep-"))
    assert tasks == {str(n): 1 for n in range(6)}  # one task a trial, each run once, none lost
    assert {task["worker"] for task in stream.data} == set(cluster.nthreads())  # on both workers
    pids = {str(pid) for pid in cluster.run(os.getpid).values()}
    assert {r["worker"].rpartition(":")[2] for r in rows} == pids  # trained in the worker processes
    for row in rows:  # the same trial, trained alone here, scores the same
        params = {k: float(v) if k == "lr" else int(v) for k, v in _params(row).items()}
        assert fit(BASE.replace(**overrides(params)), mnist).test_accuracy == float(row["value"])
    saved = optuna.load_study(study_name="mnist-sweep", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.value for t in saved.trials] == [float(r["value"]) for r in rows]  # the study file is in --out


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_the_command_with_two_workers_writes_its_results(tmp_path):
    """The command the issue names, as a user types it (default space, default backend); a sweep cut short
    and run again is tests/sweep/test_drive.py's."""
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--trials", "4", "--workers", "2", "--epochs", "1",
            "--train-samples", "2000", "--test-samples", "500", "--out", str(out)]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0 and "Traceback" not in done.stderr, done.stderr
    rows = _csv(out / "trials.csv")
    assert [r["number"] for r in rows] == ["0", "1", "2", "3"] and {r["state"] for r in rows} <= {"COMPLETE", "PRUNED"}
    assert len({r["worker"] for r in rows}) == 2 and all(r["backend"] and float(r["train_seconds"]) > 0 for r in rows)
    assert set(rows[0]) >= {"params_lr", "params_hidden", "params_batch_size", "params_dropout", "value", "reason"}
    table = done.stdout[done.stdout.index("best "):].splitlines()
    assert table[0].startswith("best 4 of 4 trials") and table[1].split()[:2] == ["trial", "test_accuracy"]
    values = [float(line.split()[1]) for line in table[2:6]]
    assert values == sorted(values, reverse=True)  # best first
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] == 4 and summary["metric"] == "test_accuracy"
    assert summary["best"]["value"] == values[0] and len(summary["trials"]) == 4
    assert (out / "sweep.png").read_bytes()[:4] == b"\x89PNG"


def test_failed_trials_are_recorded_and_the_sweep_goes_on(tmp_path, capsys):
    result = sweep("lr=1e3,1e-2 hidden=8,100000000", config=BASE.replace(optimizer="sgd"), sampler="grid",
                   out=tmp_path, echo=print)
    rows = {(r["params_lr"], r["params_hidden"]): r for r in result.rows}
    assert set(rows) == set(product([1e3, 1e-2], [8, 100000000]))  # every grid point once
    assert rows[1e-2, 8]["state"] == "COMPLETE"
    assert rows[1e3, 8]["state"] == "FAIL" and "diverged" in rows[1e3, 8]["reason"]
    for lr in (1e3, 1e-2):
        assert rows[lr, 100000000]["state"] == "FAIL" and "GiB" in rows[lr, 100000000]["reason"]
    assert [r["reason"] for r in _csv(tmp_path / "trials.csv") if r["state"] == "FAIL"] == \
        [r["reason"] for r in result.rows if r["state"] == "FAIL"]
    assert capsys.readouterr().out.count(" failed (") == 3


BAD = [
    (["--space", "lr"], "NAME=LOW:HIGH"),
    (["--lr", "0.1", "--space", "lr=1e-3:1e-1"], "--lr fixes lr for every trial but --space searches it"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:8786"], "drop one of them"),
    (["--sampler", "bayes"], "invalid choice"),
    (["--trials", "0"], "--workers and --trials must be at least 1"),
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--data-dir", "/nonexistent/mnist"], "is not a directory"),
    (["--sampler", "grid", "--space", "lr=1e-3:1e-1"], "grid needs a finite list for lr"),
    (["--space", "dropout=0:1"], "the value 1.0 is refused"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_exit_2_with_one_line_and_write_nothing(argv, message, tmp_path, capsys):
    out = tmp_path / "out"
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main([*argv, "--out", str(out)]))
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and message in err
    assert not out.exists()


def test_without_optuna_the_error_says_what_to_install(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main(["--out", str(tmp_path / "out")]) == 2
    assert "pip install 'mnist-accel[sweep]'" in capsys.readouterr().err


def test_grid_search_cv_runs_on_dask_workers_through_joblib(cluster):
    joblib = pytest.importorskip("joblib")
    pytest.importorskip("sklearn")
    from distributed import get_task_stream
    from sklearn.datasets import make_classification
    from sklearn.model_selection import GridSearchCV

    from mnist_accel.classifier import MLPClassifier

    X, y = make_classification(n_samples=300, n_features=20, n_informative=8, n_classes=3, random_state=0)
    grid = {"hidden_layer_sizes": [(8,), (16,)], "learning_rate_init": [1e-3, 1e-2]}
    estimator = MLPClassifier(max_iter=5, backend="numpy", random_state=0)
    with get_task_stream(cluster) as stream, joblib.parallel_backend("dask"):
        on_dask = GridSearchCV(estimator, grid, cv=3, n_jobs=2).fit(X, y)
    assert {task["worker"] for task in stream.data} <= set(cluster.nthreads()) and stream.data
    here = GridSearchCV(estimator, grid, cv=3, n_jobs=1).fit(X, y)
    np.testing.assert_array_equal(on_dask.cv_results_["mean_test_score"], here.cv_results_["mean_test_score"])
    assert on_dask.best_params_ == here.best_params_
    assert (on_dask.predict(X) == here.predict(X)).all()
