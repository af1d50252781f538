"""A trial, run through Optuna's ``study.optimize``: its parameters come from the space (or from a queued
retry), its value is fit's accuracy, it reports every epoch, a hopeless one is pruned through fit's
on_epoch, its own failures are recorded with a one-line reason, and failures that are not its own stop
the sweep. Worker processes keep the data between trials."""

from __future__ import annotations

import os

import pytest

optuna = pytest.importorskip("optuna")

from mnist_accel.config import resolve
from mnist_accel.errors import DataUnavailable
from mnist_accel.sweep import study as st, trial as ex
from mnist_accel.training.fit import fit

BASE = resolve(backend="numpy", epochs=3, train_samples=2000, test_samples=500, hidden=(16,), threads=1)


def _job(study, config, pruner="median", metric="test_accuracy", space=None):
    space = {n: optuna.distributions.distribution_to_json(d) for n, d in (space or {}).items()}
    return ex.TrialJob(study.study_name, None, space, config.to_dict(), metric, pruner, "random", 0, "test")


def _study(pruner="median", good=0):
    """A study holding ``good`` finished trials that scored 0.9 after every epoch."""
    study = optuna.create_study(direction="maximize", pruner=st.make_pruner(pruner, BASE.epochs))
    for _ in range(good):
        study.add_trial(optuna.trial.create_trial(value=0.9, intermediate_values={0: 0.9, 1: 0.9, 2: 0.9}))
    return study


def _run(study, config, data, **kwargs):
    """The trial the job ran, as the study recorded it."""
    number = ex.run_trial(_job(study, config, **kwargs), data, study)
    return study.trials[number]


def test_a_trial_is_one_fit_that_reports_every_epoch(mnist):
    study = _study()
    trial = _run(study, BASE, mnist)
    expected = fit(BASE, mnist)
    assert trial.state.name == "COMPLETE" and trial.value == expected.test_accuracy
    assert trial.intermediate_values == {r["epoch"]: r["test_accuracy"] for r in expected.history}
    attrs = trial.user_attrs
    assert attrs["epochs"] == 3 and attrs["backend"] == "numpy" and attrs["test_accuracy"] == expected.test_accuracy
    assert attrs["worker"].endswith(f":{os.getpid()}") and attrs["train_seconds"] > 0 and attrs["run"] == "test"


def test_the_parameters_come_from_the_space_or_from_a_queued_retry(mnist):
    space = {"hidden": optuna.distributions.CategoricalDistribution([8, 16]),
             "lr": optuna.distributions.FloatDistribution(1e-3, 1e-1, log=True)}
    study = _study()
    sampled = _run(study, BASE.replace(epochs=1), mnist, space=space)
    assert set(sampled.params) == {"hidden", "lr"} and sampled.params["hidden"] in (8, 16)
    assert sampled.value == fit(BASE.replace(epochs=1, hidden=(sampled.params["hidden"],), lr=sampled.params["lr"]),
                                mnist).test_accuracy
    study.enqueue_trial({"hidden": 16, "lr": 0.01})
    assert _run(study, BASE.replace(epochs=1), mnist, space=space).params == {"hidden": 16, "lr": 0.01}


def test_a_hopeless_trial_is_pruned_after_its_first_epoch(mnist):
    trial = _run(_study(good=3), BASE.replace(lr=1e-7), mnist)
    assert trial.state.name == "PRUNED" and trial.user_attrs["epochs"] == 1
    assert trial.user_attrs["reason"].startswith("pruned after epoch 1: test_accuracy")
    assert list(trial.intermediate_values) == [0]


def test_without_a_pruner_the_same_trial_runs_to_the_end(mnist):
    trial = _run(_study("none", good=3), BASE.replace(lr=1e-7), mnist, pruner="none")
    assert trial.state.name == "COMPLETE" and trial.user_attrs["epochs"] == 3


def test_the_last_epoch_is_never_pruned(mnist):
    assert _run(_study(good=3), BASE.replace(lr=1e-7, epochs=1), mnist).state.name == "COMPLETE"


def test_validation_accuracy_is_the_objective_with_a_validation_split(mnist):
    cfg = BASE.replace(val_split=0.2, epochs=2)
    trial = _run(_study(), cfg, mnist, metric="val_accuracy")
    expected = fit(cfg, mnist)
    assert trial.value == expected.history[-1]["val_accuracy"] == trial.user_attrs["val_accuracy"]


@pytest.mark.parametrize("error, reason", [
    (MemoryError(), "out of memory: MemoryError"),
    (MemoryError("cannot allocate\n 8 GiB"), "out of memory: cannot allocate 8 GiB"),
    (KeyError("x"), "unexpected KeyError: 'x'"),
])
def test_a_trial_that_fails_by_itself_is_a_failed_outcome(mnist, monkeypatch, error, reason):
    def failing(*args, **kwargs):
        raise error

    monkeypatch.setattr(ex, "fit", failing)
    trial = _run(_study(), BASE, mnist)
    assert trial.state.name == "FAIL" and trial.user_attrs["reason"] == reason


def test_divergence_and_oversized_models_fail_the_trial_only(mnist):
    study = _study()
    diverged = _run(study, BASE.replace(lr=1e3, optimizer="sgd", epochs=1), mnist).user_attrs["reason"]
    assert study.trials[-1].state.name == "FAIL" and "diverged" in diverged and "\n" not in diverged
    huge = _run(study, BASE.replace(hidden=(10**9,)), mnist)
    assert huge.state.name == "FAIL" and "GiB" in huge.user_attrs["reason"]


def test_missing_data_stops_the_sweep_instead(tmp_path):
    study = _study()
    with pytest.raises(DataUnavailable):
        _run(study, BASE.replace(data_dir=str(tmp_path / "none")), None)
    assert study.trials[0].state.name == "FAIL" and "reason" not in study.trials[0].user_attrs  # run again


def test_a_worker_loads_the_data_once_for_all_its_trials(mnist, monkeypatch):
    loads = []
    monkeypatch.setattr(ex, "_DATA", {})
    monkeypatch.setattr(ex, "load_mnist", lambda data_dir, progress, dataset="mnist": loads.append(data_dir) or mnist)
    study = _study()
    for _ in range(3):
        assert _run(study, BASE.replace(epochs=1), None).state.name == "COMPLETE"
    assert loads == [None]


def test_unknown_pruner():
    with pytest.raises(Exception, match="--pruner 'sometimes' is not one of median"):
        st.make_pruner("sometimes", 3)
