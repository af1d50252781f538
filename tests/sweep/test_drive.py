"""The driver loop: a sweep stopped by a job scheduler's signal exits as such and its next run finishes the
trials it cut short; an option combination the trainer refuses fails that trial only; a run of unexpected
failures stops the sweep instead of burning through every trial."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys

import pytest

optuna = pytest.importorskip("optuna")

from mnist_accel.config import resolve
from mnist_accel.sweep import trial as ex
from mnist_accel.sweep.run import sweep

BASE = resolve(backend="numpy", epochs=1, train_samples=2000, test_samples=500, threads=1)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def test_a_stopped_sweep_continues_where_it_stopped(tmp_path):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--workers", "2", "--epochs", "2", "--train-samples", "10000",
            "--test-samples", "500", "--backend", "numpy", "--space", "hidden=64,96,128", "--pruner", "none",
            "--trials", "4", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first_line = proc.stdout.readline()  # one trial finished; the other worker is still training
    proc.send_signal(signal.SIGTERM)
    stdout, stderr = proc.communicate(timeout=300)
    assert first_line.startswith("trial ") and proc.returncode == 128 + signal.SIGTERM, stderr
    assert stderr.startswith("mnist_accel.sweep: error: stopped by SIGTERM after ") and len(stderr.splitlines()) == 1
    assert stderr.rstrip().endswith(f"trials; run the same command again to continue (the study is in {out})")
    stopped = _csv(out / "trials.csv")
    cut = [r for r in stopped if r["state"] == "FAIL"]
    assert cut and all(r["reason"] == "interrupted before it finished" for r in cut)
    assert len(stopped) < 4
    again = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    rows = _csv(out / "trials.csv")
    done = [r for r in rows if r["state"] == "COMPLETE"]
    assert len(done) == 4 and [r for r in stopped if r["state"] == "COMPLETE"] == \
        [r for r in rows[:len(stopped)] if r["state"] == "COMPLETE"]  # finished trials were not run again
    by_number = {r["number"]: r for r in rows}
    for r in cut:  # each cut-short trial ran once more, with the same parameters
        reruns = [x for x in rows if x["retry_of"] == r["number"]]
        assert len(reruns) == 1 and reruns[0]["params_hidden"] == r["params_hidden"]
        assert by_number[r["number"]]["reason"] == f"interrupted before it finished; run again as trial " \
                                                   f"{reruns[0]['number']}"


def test_an_option_combination_the_trainer_refuses_fails_that_trial_only(tmp_path):
    base = BASE.replace(optimizer="sgd", schedule="constant", hidden=(8,), train_samples=500)
    result = sweep("path=loop,vectorized optimizer=sgd,adam", config=base, sampler="grid", out=tmp_path)
    states = {(r["params_path"], r["params_optimizer"]): (r["state"], r["reason"]) for r in result.rows}
    assert len(states) == 4
    state, reason = states.pop(("loop", "adam"))
    assert state == "FAIL" and "the loop path is plain per-sample SGD" in reason
    assert {s for s, _ in states.values()} == {"COMPLETE"}


def test_unexpected_failures_in_a_row_stop_the_sweep(tmp_path, monkeypatch):
    def broken(*args, **kwargs):
        raise TypeError("prepare() got an unexpected keyword argument 'whole'")

    monkeypatch.setattr(ex, "fit", broken)
    with pytest.raises(RuntimeError, match=r"^3 trials in a row failed unexpectedly, the last with: unexpected "
                                           r"TypeError: prepare\(\) got an unexpected keyword argument 'whole'; "
                                           r"the sweep stops"):
        sweep("hidden=8,16", 10, config=BASE, out=tmp_path)
    assert [r["state"] for r in _csv(tmp_path / "trials.csv")] == ["FAIL"] * 3
