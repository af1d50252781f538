"""A trial: its value is fit's accuracy, it reports every epoch, a hopeless one is pruned through fit's
on_epoch, its own failures come back as a failed outcome with a one-line reason, and failures that are not
its own stop the sweep. Worker processes keep the data between trials."""

from __future__ import annotations

import os

import pytest

optuna = pytest.importorskip("optuna")

from mnist_accel.config import resolve
from mnist_accel.errors import DataUnavailable
from mnist_accel.sweep import trial as ex
from mnist_accel.training.fit import fit

BASE = resolve(backend="numpy", epochs=3, train_samples=2000, test_samples=500, hidden=(16,), threads=1)


def _job(study, trial, config, pruner="median", metric="test_accuracy"):
    return ex.TrialJob(trial._trial_id, trial.number, study.study_name, None, pruner, config.to_dict(), metric)


def _study(pruner="median", good=0):
    """A study holding ``good`` finished trials that scored 0.9 after every epoch."""
    study = optuna.create_study(direction="maximize", pruner=ex.make_pruner(pruner, BASE.epochs))
    for _ in range(good):
        study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.9, 1: 0.9, 2: 0.9}))
    return study


def test_a_trial_is_one_fit_that_reports_every_epoch(mnist):
    study = _study()
    trial = study.ask()
    outcome = ex.run_trial(_job(study, trial, BASE), mnist, study)
    expected = fit(BASE, mnist)
    assert outcome["state"] == "COMPLETE" and outcome["value"] == expected.test_accuracy
    assert study.trials[0].intermediate_values == {r["epoch"]: r["test_accuracy"] for r in expected.history}
    attrs = outcome["attrs"]
    assert attrs["epochs"] == 3 and attrs["backend"] == "numpy" and attrs["test_accuracy"] == expected.test_accuracy
    assert attrs["worker"].endswith(f":{os.getpid()}") and attrs["train_seconds"] > 0


def test_a_hopeless_trial_is_pruned_after_its_first_epoch(mnist):
    study = _study(good=3)
    trial = study.ask()
    outcome = ex.run_trial(_job(study, trial, BASE.replace(lr=1e-7)), mnist, study)
    assert outcome["state"] == "PRUNED" and outcome["attrs"]["epochs"] == 1
    assert outcome["reason"].startswith("pruned after epoch 1: test_accuracy")
    assert list(study.trials[-1].intermediate_values) == [0]


def test_without_a_pruner_the_same_trial_runs_to_the_end(mnist):
    study = _study("none", good=3)
    trial = study.ask()
    outcome = ex.run_trial(_job(study, trial, BASE.replace(lr=1e-7), pruner="none"), mnist, study)
    assert outcome["state"] == "COMPLETE" and outcome["attrs"]["epochs"] == 3


def test_the_last_epoch_is_never_pruned(mnist):
    study = _study(good=3)
    trial = study.ask()
    outcome = ex.run_trial(_job(study, trial, BASE.replace(lr=1e-7, epochs=1)), mnist, study)
    assert outcome["state"] == "COMPLETE"


def test_validation_accuracy_is_the_objective_with_a_validation_split(mnist):
    study = _study()
    trial = study.ask()
    cfg = BASE.replace(val_split=0.2, epochs=2)
    outcome = ex.run_trial(_job(study, trial, cfg, metric="val_accuracy"), mnist, study)
    expected = fit(cfg, mnist)
    assert outcome["value"] == expected.history[-1]["val_accuracy"] == outcome["attrs"]["val_accuracy"]


@pytest.mark.parametrize("error, reason", [
    (MemoryError(), "out of memory: MemoryError"),
    (MemoryError("cannot allocate\n 8 GiB"), "out of memory: cannot allocate 8 GiB"),
    (KeyError("x"), "unexpected KeyError: 'x'"),
])
def test_a_trial_that_fails_by_itself_is_a_failed_outcome(mnist, monkeypatch, error, reason):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(ex, "fit", failing)
    study = _study()
    outcome = ex.run_trial(_job(study, study.ask(), BASE), mnist, study)
    assert outcome["state"] == "FAIL" and outcome["reason"] == reason


def test_divergence_and_oversized_models_fail_the_trial_only(mnist):
    study = _study()
    diverged = ex.run_trial(_job(study, study.ask(), BASE.replace(lr=1e3, optimizer="sgd", epochs=1)), mnist, study)
    assert diverged["state"] == "FAIL" and "diverged" in diverged["reason"] and "\n" not in diverged["reason"]
    huge = ex.run_trial(_job(study, study.ask(), BASE.replace(hidden=(10**9,))), mnist, study)
    assert huge["state"] == "FAIL" and "GiB" in huge["reason"]


def test_missing_data_stops_the_sweep_instead(tmp_path):
    study = _study()
    with pytest.raises(DataUnavailable):
        ex.run_trial(_job(study, study.ask(), BASE.replace(data_dir=str(tmp_path / "none"))), None, study)


def test_a_worker_loads_the_data_once_for_all_its_trials(mnist, monkeypatch):
    loads = []
    monkeypatch.setattr(ex, "_DATA", {})
    monkeypatch.setattr(ex, "load_mnist", lambda data_dir, progress: loads.append(data_dir) or mnist)
    study = _study()
    for _ in range(3):
        assert ex.run_trial(_job(study, study.ask(), BASE.replace(epochs=1)), None, study)["state"] == "COMPLETE"
    assert loads == [None]


def test_unknown_pruner():
    with pytest.raises(Exception, match="--pruner 'sometimes' is not one of median"):
        ex.make_pruner("sometimes", 3)
