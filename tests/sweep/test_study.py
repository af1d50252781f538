"""The study a sweep keeps: one driver per --out, a resumed sweep must train what the study started with,
trials of a driver that died are failed and run once more (at once for the embedded study, after their
heartbeat goes stale in a shared database) while a live driver's trials are left alone; two drivers
started together on a PostgreSQL server of the test's own share one study."""

from __future__ import annotations

import glob
import os
import pwd
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time

import pytest

optuna = pytest.importorskip("optuna")
from optuna.distributions import CategoricalDistribution

from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError
from mnist_accel.sweep import report, study as st
from mnist_accel.sweep.run import sweep
from mnist_accel.training.fit import fit

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


def test_a_study_begun_before_an_option_existed_continues_at_its_default():
    study = optuna.create_study()
    config = BASE.to_dict()
    st.check_signature(study, {"config": {k: v for k, v in config.items() if k != "dataset"}}, "memory")
    st.check_signature(study, {"config": config}, "memory")  # dataset=mnist: the default, as before
    with pytest.raises(ConfigError, match="trained with dataset='mnist', this sweep with dataset='kmnist'"):
        st.check_signature(study, {"config": {**config, "dataset": "kmnist"}}, "memory")


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
    assert optuna.storages.RetryHeartbeatStaleTrialCallback.retry_history(result.study.trials[3]) == [2]
    again = sweep(SPACE, 3, config=BASE, out=tmp_path).rows  # nothing left to do, nothing queued twice
    assert again == rows


def test_a_shared_database_reruns_only_trials_whose_driver_went_silent(tmp_path, mnist, monkeypatch):
    monkeypatch.setattr(st, "HEARTBEAT_S", 1)
    monkeypatch.setattr(st, "GRACE_S", 3)
    url = f"sqlite:///{tmp_path / 'shared.db'}"
    sweep(SPACE, 1, config=BASE, storage=url, out=tmp_path / "a")
    storage = st.open_rdb(url)
    study = optuna.load_study(study_name="mnist-sweep", storage=storage)
    with pytest.warns(UserWarning, match="Heartbeat of storage"):  # as drivers do, but outside optimize()
        dead = study.ask(DIST)
        alive = study.ask(DIST)
    storage.record_heartbeat(dead._trial_id)
    beating = threading.Event()

    def another_driver():  # still training its trial: its heartbeat goes on
        while not beating.wait(0.5):
            storage.record_heartbeat(alive._trial_id)

    beat = threading.Thread(target=another_driver, daemon=True)
    beat.start()
    try:
        time.sleep(4)  # the dead driver's heartbeat is now older than the grace period
        result = sweep(SPACE, 4, config=BASE, storage=url, out=tmp_path / "b")
    finally:
        beating.set()
    assert _states(result.study) == ["COMPLETE", "FAIL", "RUNNING", "COMPLETE", "COMPLETE"]
    retry = [t for t in result.study.trials if report.retry_of(t) == dead.number]
    assert len(retry) == 1 and retry[0].params == dead.params


def test_storage_errors_are_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"mysql://u:\*\*\*@127.0.0.1:9/db needs the Python module MySQLdb"):
        sweep(SPACE, 1, config=BASE, storage="mysql://u:secret@127.0.0.1:9/db", out=tmp_path)
    with pytest.raises(RuntimeError, match=r"postgresql://u:\*\*\*@127.0.0.1:9/db: cannot open the study database"):
        sweep(SPACE, 1, config=BASE, storage="postgresql://u:secret@127.0.0.1:9/db", out=tmp_path)
    with pytest.raises(ConfigError, match="workers need a study they can share"):
        sweep(SPACE, 1, config=BASE, workers=2)


def _postgres_tool(name):
    return shutil.which(name) or next(iter(sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:]), None)


@pytest.fixture
def postgres():
    """A PostgreSQL server of this test's own on 127.0.0.1 (initdb and pg_ctl from PATH, or where Debian puts
    them); skipped where PostgreSQL is not installed."""
    initdb, pg_ctl = _postgres_tool("initdb"), _postgres_tool("pg_ctl")
    if initdb is None or pg_ctl is None:
        pytest.skip("PostgreSQL is not installed (no initdb and pg_ctl)")
    as_user: list[str] = []
    folder = tempfile.mkdtemp(prefix="mnist-sweep-pg-")  # not under pytest's root-only folders
    if os.geteuid() == 0:  # the server refuses to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            pytest.skip("running as root, and there is no postgres user to run the server as")
        if shutil.which("runuser") is None:
            pytest.skip("running as root, and there is no runuser to start the server as postgres")
        os.chown(folder, user.pw_uid, user.pw_gid)
        as_user = ["runuser", "-u", "postgres", "--"]
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    data = os.path.join(folder, "data")
    quiet = dict(stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True, timeout=120)
    try:
        subprocess.run([*as_user, initdb, "-D", data, "-U", "postgres", "--auth=trust", "--no-sync"], **quiet)
        subprocess.run([*as_user, pg_ctl, "-D", data, "-l", os.path.join(folder, "log"), "-w", "start", "-o",
                        f"-h 127.0.0.1 -p {port} -k {folder} -F"], **quiet)
        yield f"postgresql://postgres@127.0.0.1:{port}/postgres"
    finally:
        subprocess.run([*as_user, pg_ctl, "-D", data, "-m", "immediate", "-w", "stop"], capture_output=True)
        shutil.rmtree(folder, ignore_errors=True)


def test_two_drivers_share_one_study_through_postgresql(postgres, tmp_path, mnist):
    """Two machines' sweeps, started at the same moment on an empty database (both create its tables):
    every trial runs once, in one driver or the other, and scores what the same fit scores alone. The trials
    are long enough together (seconds) that the driver which starts second, after waiting on the first's
    tables, still finds trials to run: with eight of 2,000 images the first ran all of them in half a second."""
    trials = 16
    argv = [sys.executable, "-m", "mnist_accel.sweep", "--storage", postgres, "--space", "lr=1e-3:1e-1:log",
            "hidden=8,16,32", "--trials", str(trials), "--sampler", "random", "--pruner", "none", "--backend",
            "numpy", "--epochs", "3", "--train-samples", "3000", "--test-samples", "500", "--threads", "1"]
    drivers = [subprocess.Popen([*argv, "--out", str(tmp_path / name)], stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True) for name in "ab"]
    for driver in drivers:
        _, err = driver.communicate(timeout=300)
        assert driver.returncode == 0, err
    study = optuna.load_study(study_name="mnist-sweep", storage=postgres)
    done = study.get_trials()
    # Two drivers asking at the same moment may each start the last trial: at most one over the total.
    assert trials <= len(done) <= trials + 1 and {t.state.name for t in done} == {"COMPLETE"}
    assert [t.number for t in done] == list(range(len(done)))
    by_driver = {t.user_attrs["worker"].rpartition(":")[2] for t in done}
    assert by_driver == {str(d.pid) for d in drivers}  # both trained, and nothing else did
    for t in done:
        params = {"lr": t.params["lr"], "hidden": (t.params["hidden"],)}
        assert fit(BASE.replace(epochs=3, train_samples=3000, **params), mnist).test_accuracy == t.value
