"""The driver loop: a sweep stopped by a job scheduler's signal exits as such and its next run finishes the
trials it cut short; an option combination the trainer refuses fails that trial only; a run of unexpected
failures stops the sweep instead of burning through every trial."""

from __future__ import annotations

import csv
import os
import signal
import subprocess
import sys
import time

import pytest

optuna = pytest.importorskip("optuna")

from mnist_accel.config import resolve
from mnist_accel.sweep import trial as ex
from mnist_accel.sweep.run import sweep

BASE = resolve(backend="numpy", epochs=1, train_samples=2000, test_samples=500, threads=1)


def _csv(path):
    with open(path) as f:
        return list(csv.DictReader(f))


def _wait_for_trial(number, path, timeout=120):
    """Until trial ``number`` has started."""
    storage = f"sqlite:///{path}"  # the sweep has made it: it printed a trial's line
    deadline = time.monotonic() + timeout
    while len(optuna.load_study(study_name="mnist-sweep", storage=storage).get_trials(deepcopy=False)) <= number:
        assert time.monotonic() < deadline, f"trial {number} did not start"
        time.sleep(0.02)


STOPS = [  # how a stop arrives: a job scheduler's SIGTERM to the command; Ctrl-C to the terminal's whole group
    (lambda proc: proc.send_signal(signal.SIGTERM), "stopped by SIGTERM", 128 + signal.SIGTERM),
    (lambda proc: os.killpg(proc.pid, signal.SIGINT), "interrupted", 130),
]


@pytest.mark.parametrize("stop, said, code", STOPS, ids=["sigterm", "ctrl-c"])
def test_a_stopped_sweep_continues_where_it_stopped(tmp_path, stop, said, code):
    out = tmp_path / "sweep"
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--workers", "2", "--epochs", "4", "--train-samples", "20000",
            "--test-samples", "500", "--backend", "numpy", "--space", "hidden=64,96,128", "--pruner", "none",
            "--trials", "4", "--out", str(out)]
    proc = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    first_line = proc.stdout.readline()  # one trial finished
    _wait_for_trial(2, out / "study.db")  # and the next one started: it stops at its next epoch
    stop(proc)
    stdout, stderr = proc.communicate(timeout=300)
    assert first_line.startswith("trial ") and proc.returncode == code, stderr
    assert stderr.startswith(f"mnist_accel.sweep: error: {said} after ") and len(stderr.splitlines()) == 1
    assert stderr.rstrip().endswith(f"trials; run the same command again to continue (the study is in {out})")
    stopped = _csv(out / "trials.csv")
    cut = [r for r in stopped if r["state"] == "FAIL"]
    assert cut and all(r["reason"] == "interrupted before it finished" for r in cut), stopped
    assert len([r for r in stopped if r["state"] == "COMPLETE"]) < 4
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
        assert reruns[0]["state"] == "COMPLETE"
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
