"""The study a sweep keeps: one driver per --out, a resumed sweep must train what the study started with,
trials of a driver that died are failed and run once more (at once for the embedded study, after their
heartbeat goes stale in a shared database) while a live driver's trials are left alone."""

from __future__ import annotations

import time

import pytest

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution  # noqa: E402

from mnist_accel import sweep_pools as pools, sweep_study as st  # noqa: E402
from mnist_accel.config import resolve  # noqa: E402
from mnist_accel.errors import ConfigError  # noqa: E402
from mnist_accel.sweep import sweep  # noqa: E402

BASE = resolve(backend="numpy", epochs=1, train_samples=2000, test_samples=500, threads=1)
SPACE = "hidden=8,16,24,32"
DIST = {"hidden": CategoricalDistribution([8, 16, 24, 32])}


def _states(study):
    return [t.state.name for t in study.get_trials()]


def test_one_driver_per_out(tmp_path):
    lock = st.Lock(tmp_path)
    try:
        with pytest.raises(RuntimeError, match=r"another sweep \(pid \d+\) is running with --out"):
            sweep(SPACE, 1, config=BASE, out=tmp_path)
    finally:
        lock.release()
    assert len(sweep(SPACE, 1, config=BASE, out=tmp_path).rows) == 1  # released: free again


def test_a_resumed_sweep_must_train_the_same_thing(tmp_path, mnist):
    sweep(SPACE, 1, config=BASE, out=tmp_path)
    with pytest.raises(ConfigError, match="trained with epochs=1, this sweep with epochs=2"):
        sweep(SPACE, 2, config=BASE.replace(epochs=2), out=tmp_path)
    with pytest.raises(ConfigError, match="used a different space"):
        sweep("hidden=8,16", 2, config=BASE, out=tmp_path)
    with pytest.raises(ConfigError, match="used a different sampler"):
        sweep(SPACE, 2, config=BASE, out=tmp_path, sampler="random")
    result = sweep(SPACE, 2, config=BASE.replace(threads=2), out=tmp_path)  # where it runs may change
    assert len(result.rows) == 2


def test_an_interrupted_trial_runs_again_once(tmp_path, mnist):
    first = sweep(SPACE, 2, config=BASE, out=tmp_path).rows
    url = f"sqlite:///{tmp_path / 'study.db'}"
    study = optuna.load_study(study_name="mnist-sweep", storage=url)
    orphan = study.ask(DIST)  # its driver was killed: it stays RUNNING in the file
    result = sweep(SPACE, 3, config=BASE, out=tmp_path)
    rows = result.rows
    assert [r["state"] for r in rows] == ["COMPLETE", "COMPLETE", "FAIL", "COMPLETE"]
    assert rows[:2] == first  # finished trials are not run again
    assert rows[2]["reason"] == "interrupted before it finished; run again as trial 3"
    assert rows[3]["retry_of"] == 2 and rows[3]["params_hidden"] == orphan.params["hidden"]
    again = sweep(SPACE, 3, config=BASE, out=tmp_path).rows  # nothing left to do, nothing queued twice
    assert again == rows


def test_a_shared_database_reruns_only_trials_whose_driver_went_silent(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr(st, "HEARTBEAT_S", 1)
    monkeypatch.setattr(st, "GRACE_S", 3)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    sweep(SPACE, 1, config=BASE, storage=url, out=tmp_path / "a")
    storage = optuna.storages.RDBStorage(url, heartbeat_interval=1, grace_period=3)
    study = optuna.load_study(study_name="mnist-sweep", storage=storage)
    dead = study.ask(DIST)
    storage.record_heartbeat(dead._trial_id)
    alive = study.ask(DIST)
    beat = pools.Heartbeat(storage)  # another driver, still training this trial
    beat.add(alive._trial_id)
    beat.start()
    try:
        time.sleep(4)  # the dead driver's heartbeat is now older than the grace period
        result = sweep(SPACE, 4, config=BASE, storage=url, out=tmp_path / "b")
    finally:
        beat.stopped.set()
    assert _states(result.study) == ["COMPLETE", "FAIL", "RUNNING", "COMPLETE", "COMPLETE"]
    retry = [t for t in result.study.trials if t.user_attrs.get("retry_of") == dead.number]
    assert len(retry) == 1 and retry[0].params == dead.params


def test_storage_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"mysql://u:\*\*\*@127.0.0.1:9/db needs the Python module MySQLdb"):
        sweep(SPACE, 1, config=BASE, storage="mysql://u:secret@127.0.0.1:9/db", out=tmp_path)
    with pytest.raises(RuntimeError, match=r"postgresql://u:\*\*\*@127.0.0.1:9/db: cannot open the study database"):
        sweep(SPACE, 1, config=BASE, storage="postgresql://u:secret@127.0.0.1:9/db", out=tmp_path)
    with pytest.raises(ConfigError, match="workers need a study they can share"):
        sweep(SPACE, 1, config=BASE, workers=2)
