"""Stops held back during storage calls: a signal that arrives inside a shielded call is raised as the call
returns (the call finishes), one that arrives elsewhere at once; only the main thread is held; the
handlers in force before are back afterwards; a real Optuna storage keeps working when shielded."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

from mnist_accel.errors import Stopped
from mnist_accel.sweep.guard import Guard
from mnist_accel.training.signals import stop_on_signals


class Storage:
    """Stands for a database storage whose commit a signal may hit."""

    def __init__(self) -> None:
        self.committed: list[str] = []

    def commit(self, what: str, signum: int | None = None) -> str:
        if signum is not None:
            os.kill(os.getpid(), signum)  # delivered here, in the middle of the write
            time.sleep(0.05)
        self.committed.append(what)
        return what

    def _nested(self) -> str:  # Optuna's cache calls private methods, and methods call each other
        return self.commit("outer", signal.SIGINT) + self.commit("inner")


def _wait_for_signal():
    for _ in range(100):
        time.sleep(0.01)
    raise AssertionError("the signal was not raised")


def test_a_stop_inside_a_storage_call_waits_for_it_to_return():
    guard, storage = Guard(), Storage()
    guard.shield(storage)
    with stop_on_signals(), guard.installed():
        with pytest.raises(Stopped) as stop:
            storage.commit("trial 3", signal.SIGTERM)
        assert storage.committed == ["trial 3"] and stop.value.exit_code == 128 + signal.SIGTERM
        with pytest.raises(KeyboardInterrupt):
            storage._nested()
        assert storage.committed == ["trial 3", "outer", "inner"]  # the outermost call finished
        assert storage.commit("after") == "after"  # nothing left pending


def test_elsewhere_a_stop_is_raised_at_once():
    guard = Guard()
    guard.shield(Storage())
    with guard.installed(), pytest.raises(KeyboardInterrupt):
        os.kill(os.getpid(), signal.SIGINT)
        _wait_for_signal()


def test_the_handlers_in_force_come_back():
    before = signal.getsignal(signal.SIGINT)
    with stop_on_signals():
        stop_handler = signal.getsignal(signal.SIGTERM)
        with Guard().installed():
            assert signal.getsignal(signal.SIGTERM) != stop_handler
        assert signal.getsignal(signal.SIGTERM) == stop_handler
    assert signal.getsignal(signal.SIGINT) == before


def test_other_threads_are_not_held():
    guard, storage = Guard(), Storage()
    guard.shield(storage)
    seen = []
    with guard.installed():
        worker = threading.Thread(target=lambda: seen.append((storage.commit("beat"), guard.depth)))
        worker.start()
        worker.join()
    assert seen == [("beat", 0)]


def test_a_shielded_optuna_storage_still_works():
    optuna = pytest.importorskip("optuna")
    guard = Guard()
    storage = guard.shield(optuna.storages.InMemoryStorage())
    study = optuna.create_study(storage=storage, direction="maximize")
    with guard.installed():
        study.optimize(lambda trial: trial.suggest_float("x", 0, 1), n_trials=3)
    assert len(study.trials) == 3 and guard.depth == 0
