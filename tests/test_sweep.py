"""Sweeps end to end: two Dask worker processes on 127.0.0.1 share one study (every trial runs once, on
either worker, and scores what the same fit scores alone); the command line with two local workers writes
its results and continues where it stopped; failing trials leave the sweep going; bad arguments are one
line. Also scikit-learn's GridSearchCV over MLPClassifier on the same Dask workers through joblib."""

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

from mnist_accel.config import resolve  # noqa: E402
from mnist_accel.fit import fit  # noqa: E402
from mnist_accel.sweep import main, sweep  # noqa: E402
from mnist_accel.sweep_space import overrides  # noqa: E402

BASE = resolve(backend="numpy", epochs=1, train_samples=2000, test_samples=500, threads=1)


@pytest.fixture(scope="module")
def cluster():
    """A Dask scheduler on 127.0.0.1 and two worker processes (they inherit $MNIST_ACCEL_DATA)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, host="127.0.0.1",
                                  dashboard_address=None) as local, distributed.Client(local) as client:
        yield client


def _params(row):
    return {k.removeprefix("params_"): v for k, v in row.items() if k.startswith("params_")}


def test_two_dask_workers_share_one_study(cluster, tmp_path, mnist):
    from distributed import get_task_stream

    with get_task_stream(cluster) as stream:
        result = sweep("lr=1e-3:1e-1:log hidden=8,16,32", 6, config=BASE, sampler="random", pruner="none",
                       scheduler=cluster, out=tmp_path)
    rows = result.rows
    assert [(r["number"], r["state"]) for r in rows] == [(n, "COMPLETE") for n in range(6)]
    ran = Counter(int(re.search(r"-trial-(\d+)-", str(task["key"])).group(1)) for task in stream.data)
    assert ran == {n: 1 for n in range(6)}  # the engine's own record: each trial ran once, none lost
    assert set(cluster.nthreads()) == {task["worker"] for task in stream.data}  # on both workers
    workers = {r["worker"] for r in rows}
    assert len(workers) == 2 and not any(w.endswith(f":{os.getpid()}") for w in workers)
    for row in rows:  # the same trial, trained alone here, scores the same
        assert fit(BASE.replace(**overrides(_params(row))), mnist).test_accuracy == row["value"]
    saved = optuna.load_study(study_name="mnist-sweep", storage=f"sqlite:///{tmp_path / 'study.db'}")
    assert [t.value for t in saved.trials] == [r["value"] for r in rows]  # the study file is in --out


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_command_line_with_two_workers_writes_results_and_resumes(tmp_path):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--workers", "2", "--epochs", "1", "--train-samples", "2000",
            "--test-samples", "500", "--backend", "numpy", "--out", str(out)]
    first = subprocess.run(argv + ["--trials", "2"], capture_output=True, text=True, timeout=300)
    assert first.returncode == 0, first.stderr
    before = _csv(out / "trials.csv")
    assert len(before) == 2 and {r["state"] for r in before} <= {"COMPLETE", "PRUNED"}
    assert len({r["worker"] for r in before}) == 2  # two processes, one trial each
    second = subprocess.run(argv + ["--trials", "4"], capture_output=True, text=True, timeout=300)
    assert second.returncode == 0, second.stderr
    after = _csv(out / "trials.csv")
    assert len(after) == 4 and after[:2] == before and {r["state"] for r in after} <= {"COMPLETE", "PRUNED"}
    assert set(before[0]) >= {"params_lr", "params_hidden", "params_batch_size", "params_dropout", "backend",
                              "train_seconds", "value", "reason"}
    assert "best 4 of 4 trials" in second.stdout and "Traceback" not in second.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["counts"]["complete"] + summary["counts"]["pruned"] == 4 and summary["metric"] == "test_accuracy"
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
