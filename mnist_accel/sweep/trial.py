"""What a sweep's worker runs: ``run_trial(job)`` calls Optuna's ``study.optimize`` for one trial on the
study's shared storage (Optuna asks the sampler, keeps the trial's heartbeat and records its outcome), and
the objective is one ``fit`` that reports its accuracy every epoch and stops when the pruner says so.

The same function runs in this process, on the workers of a local Dask cluster, or on a remote one. A
worker process loads MNIST once and keeps it for every trial it runs.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

from mnist_accel.backends.selection import get_backend
from mnist_accel.config import TrainConfig, validate
from mnist_accel.data.mnist import MnistData, load_mnist
from mnist_accel.errors import BackendUnavailable, ConfigError, DataError, DataUnavailable, TrainingDiverged
from mnist_accel.sweep import study as st
from mnist_accel.sweep.space import overrides, suggest
from mnist_accel.training.fit import fit

# Failures no other trial would escape (no data, no backend): they stop the sweep instead of failing one trial.
FATAL = (DataError, DataUnavailable, BackendUnavailable)

# A worker unpickles the DaskStorage of each trial it gets; Optuna warns that class is experimental each time.
warnings.filterwarnings("ignore", message="DaskStorage is experimental")

_DATA: dict[tuple[str, str | None], MnistData] = {}  # per worker process: loaded by its first trial
_STUDIES: dict[tuple, Any] = {}
_EVENTS: dict[str, Any] = {}


class TrialFailed(Exception):
    """The trial's own failure (diverged, out of memory, a refused combination): recorded, the sweep goes on."""


class Interrupted(Exception):
    """The sweep was stopped while this trial trained on a Dask worker: it fails without a reason, so the
    next run does it again."""


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs for one trial; pickled to other processes and machines."""

    study_name: str
    storage: Any  # a database URL, or a DaskStorage (which travels as a reference to the scheduler's)
    distributions: dict[str, str]  # the search space, as Optuna's JSON for each distribution
    config: dict[str, Any]  # the options every trial shares
    metric: str  # test_accuracy, or val_accuracy with a validation split
    pruner: str
    sampler: str
    seed: int  # the sampler's seed for this trial: the sweep's seed plus the trial's place in it
    run: str  # the driver run that started the trial: its trials still running when it ends were cut short
    task: str = ""  # the task that runs it: while that task is in flight, the trial's worker is alive
    grid: dict[str, list] | None = None  # the grid sampler's points
    parallel: bool = False  # other trials run at the same time (TPE then counts them as bad guesses)
    stop: str | None = None  # on Dask: the name of the event the driver sets to stop the trials in flight


def _study(job: TrialJob):
    import optuna

    key = (getattr(job.storage, "name", job.storage), job.study_name, job.pruner, job.config["epochs"])
    if key not in _STUDIES:
        storage = st.open_rdb(job.storage) if isinstance(job.storage, str) else job.storage
        _STUDIES[key] = optuna.load_study(study_name=job.study_name, storage=storage,
                                          pruner=st.make_pruner(job.pruner, job.config["epochs"]))
    return _STUDIES[key]


def _event(name: str):
    from distributed import Event, get_client

    if name not in _EVENTS:
        _EVENTS[name] = Event(name, client=get_client())  # the worker's own client
    return _EVENTS[name]


def _data(dataset: str, data_dir: str | None) -> MnistData:
    if (dataset, data_dir) not in _DATA:
        _DATA[dataset, data_dir] = load_mnist(data_dir, progress=False, dataset=dataset)
    return _DATA[dataset, data_dir]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run_trial(job: TrialJob, data: MnistData | None = None, study: Any = None) -> int | None:
    """Run one trial through ``study.optimize``; its number (None: the sweep was stopped before it began).
    The trial's own failures are recorded in the study; failures that are not its own (FATAL) and stops
    fail it without a reason (so it is run again) and are raised."""
    import optuna

    if job.stop is not None and _event(job.stop).is_set():
        return None
    # The driver prints a line per trial, failures with their reason: Optuna's own lines would repeat them.
    optuna.logging.set_verbosity(optuna.logging.ERROR)
    study = study if study is not None else _study(job)
    study.sampler = st.make_sampler(job.sampler, job.grid, job.seed, job.parallel)
    numbers: list[int] = []
    with warnings.catch_warnings():  # heartbeats and the retry callback are experimental in Optuna; we use them
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        study.optimize(lambda trial: objective(trial, job, data), n_trials=1, catch=(TrialFailed,),
                       callbacks=[lambda _, trial: numbers.append(trial.number)])
    return numbers[0]


def objective(trial: Any, job: TrialJob, data: MnistData | None = None) -> float:
    """One fit with the trial's parameters: its accuracy. Its statistics and, when it fails or is pruned,
    the reason go to the trial's user attributes."""
    import optuna
    from optuna.distributions import json_to_distribution

    trial.set_user_attr("run", job.run)
    trial.set_user_attr("task", job.task)
    trial.set_user_attr("worker", f"{socket.gethostname()}:{os.getpid()}")
    params = suggest(trial, {n: json_to_distribution(d) for n, d in job.distributions.items()})
    history: list[dict[str, float]] = []
    start = time.perf_counter()

    def fail(reason: str) -> TrialFailed:
        trial.set_user_attr("reason", reason)
        return TrialFailed(reason)

    def on_epoch(record: dict[str, float]) -> None:
        if job.stop is not None and _event(job.stop).is_set():
            raise Interrupted("the sweep was stopped")
        history.append(record)
        value, epoch = record[job.metric], int(record["epoch"])
        trial.report(value, epoch)
        # The last epoch is never pruned: the trial is finished by then, and its result is worth keeping.
        if epoch + 1 < cfg.epochs and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {job.metric} {value:.4f} "
                                     f"trails the other trials ({job.pruner} pruner)")

    try:
        cfg = TrainConfig(**{**job.config, "hidden": tuple(job.config["hidden"])}).replace(**overrides(params))
        validate(cfg)
    except ConfigError as exc:  # a combination no single --space value showed (the loop path with adam)
        raise fail(str(exc)) from None
    be = get_backend(cfg.backend)
    trial.set_user_attr("backend", be.name)
    trial.set_user_attr("device", be.device)
    try:
        result = fit(cfg, data if data is not None else _data(cfg.dataset, cfg.data_dir), on_epoch=on_epoch)
        trial.set_user_attr("compile_seconds", result.compile_seconds)
        return _value(result, job.metric)
    except optuna.TrialPruned as exc:
        trial.set_user_attr("reason", _one_line(exc))
        raise
    except (*FATAL, Interrupted):
        raise
    except (TrainingDiverged, MemoryError, ConfigError, FloatingPointError) as exc:
        kind = "out of memory: " if isinstance(exc, MemoryError) else ""
        raise fail(kind + _one_line(exc)) from None
    except Exception as exc:  # a trial's own failure must not end the sweep; its reason is kept
        raise fail(f"unexpected {type(exc).__name__}: {_one_line(exc)}") from None
    finally:
        _statistics(trial, history, time.perf_counter() - start)


def _statistics(trial: Any, history: list[dict[str, float]], wall: float) -> None:
    trial.set_user_attr("wall_seconds", wall)
    trial.set_user_attr("epochs", len(history))
    trial.set_user_attr("train_seconds", float(sum(r["seconds"] for r in history)))
    if history:
        trial.set_user_attr("test_accuracy", history[-1]["test_accuracy"])
        if "val_accuracy" in history[-1]:
            trial.set_user_attr("val_accuracy", history[-1]["val_accuracy"])


def _value(result, metric: str) -> float:
    if metric == "test_accuracy":
        return float(result.test_accuracy)
    # fit keeps the epoch with the lowest validation loss when it stops early, else the last
    history = result.history
    kept = min(history, key=lambda r: r["val_loss"]) if result.stopped_early else history[-1]
    return float(kept["val_accuracy"])
