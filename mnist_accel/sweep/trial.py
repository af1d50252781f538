"""Where a sweep's trials run (this process, a pool of local processes, or Dask workers) and what a trial
is: one ``fit`` that reports its accuracy to the study every epoch and stops when the pruner says so.

The sweep's driver asks the study for a trial's parameters and tells it the outcome; a worker only trains
and writes the per-epoch values the pruner reads, through the study's storage. A worker process loads
MNIST once and keeps it for every trial it runs. The pools that run trials are in ``pools``.
"""

from __future__ import annotations

import os
import socket
import time
import warnings
from dataclasses import dataclass
from typing import Any

from mnist_accel.backends.selection import get_backend
from mnist_accel.config import TrainConfig
from mnist_accel.data.mnist import MnistData, load_mnist
from mnist_accel.errors import BackendUnavailable, ConfigError, DataError, DataUnavailable, TrainingDiverged
from mnist_accel.training.fit import fit

PRUNERS = ("median", "halving", "hyperband", "none")
# Failures no other trial would escape (no data, no backend): they stop the sweep instead of failing one trial.
FATAL = (DataError, DataUnavailable, BackendUnavailable)

# A worker unpickles the DaskStorage of each trial it gets; Optuna warns that class is experimental each time.
warnings.filterwarnings("ignore", message="DaskStorage is experimental")

_DATA: dict[str | None, MnistData] = {}  # per worker process: loaded by its first trial
_STUDIES: dict[tuple, Any] = {}
WORKER_THREADS = 0  # BLAS threads this worker process gives each trial (set by its pool); 0: none set


@dataclass(frozen=True)
class TrialJob:
    """Everything a worker needs for one trial; pickled to other processes and machines."""

    trial_id: int
    number: int
    study_name: str
    storage: Any  # a database URL, or a DaskStorage (which travels as a reference to the scheduler's)
    pruner: str
    config: dict[str, Any]
    metric: str  # test_accuracy, or val_accuracy with a validation split


def make_pruner(name: str, epochs: int):
    import optuna

    if name == "median":  # wait for 3 finished trials before judging, then prune below their median
        return optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=0)
    if name == "halving":
        return optuna.pruners.SuccessiveHalvingPruner()
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=max(epochs, 1))
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ConfigError(f"--pruner {name!r} is not one of {', '.join(PRUNERS)}")


def _study(job: TrialJob):
    import optuna

    key = (getattr(job.storage, "name", job.storage), job.study_name, job.pruner, job.config["epochs"])
    if key not in _STUDIES:
        # The worker never samples (the driver does), so the cheapest sampler will do.
        _STUDIES[key] = optuna.load_study(study_name=job.study_name, storage=job.storage,
                                          sampler=optuna.samplers.RandomSampler(),
                                          pruner=make_pruner(job.pruner, job.config["epochs"]))
    return _STUDIES[key]


def _data(data_dir: str | None) -> MnistData:
    if data_dir not in _DATA:
        _DATA[data_dir] = load_mnist(data_dir, progress=False)
    return _DATA[data_dir]


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return text or type(exc).__name__


def run_trial(job: TrialJob, data: MnistData | None = None, study: Any = None) -> dict[str, Any]:
    """Train one trial; the outcome is returned, never raised, except for failures that are not the
    trial's (FATAL) and Ctrl-C."""
    import optuna

    cfg = TrainConfig(**{**job.config, "hidden": tuple(job.config["hidden"])})
    if cfg.threads == 0 and WORKER_THREADS and cfg.path == "vectorized":
        cfg = cfg.replace(threads=WORKER_THREADS)  # on a Dask worker, or elsewhere, the trainer takes its share
    be = get_backend(cfg.backend)
    trial = optuna.trial.Trial(study if study is not None else _study(job), job.trial_id)
    data = data if data is not None else _data(cfg.data_dir)
    history: list[dict[str, float]] = []

    def on_epoch(record: dict[str, float]) -> None:
        history.append(record)
        value, epoch = record[job.metric], int(record["epoch"])
        trial.report(value, epoch)
        # The last epoch is never pruned: the trial is finished by then, and its result is worth keeping.
        if epoch + 1 < cfg.epochs and trial.should_prune():
            raise optuna.TrialPruned(f"pruned after epoch {epoch + 1}: {job.metric} {value:.4f} "
                                     f"trails the other trials ({job.pruner} pruner)")

    attrs: dict[str, Any] = {"backend": be.name, "device": be.device,
                             "worker": f"{socket.gethostname()}:{os.getpid()}"}
    outcome: dict[str, Any] = {"state": "COMPLETE", "value": None, "reason": None, "attrs": attrs}
    start = time.perf_counter()
    try:
        result = fit(cfg, data, on_epoch=on_epoch)
        attrs["compile_seconds"] = result.compile_seconds
        outcome["value"] = _objective(result, job.metric)
    except optuna.TrialPruned as exc:
        outcome.update(state="PRUNED", reason=_one_line(exc))
    except FATAL:
        raise
    except (TrainingDiverged, MemoryError, ConfigError, FloatingPointError) as exc:
        kind = "out of memory: " if isinstance(exc, MemoryError) else ""
        outcome.update(state="FAIL", reason=kind + _one_line(exc))
    except Exception as exc:  # a trial's own failure must not end the sweep; its reason is kept
        outcome.update(state="FAIL", reason=f"unexpected {type(exc).__name__}: {_one_line(exc)}")
    attrs.update(wall_seconds=time.perf_counter() - start, epochs=len(history),
                 train_seconds=float(sum(r["seconds"] for r in history)))
    if history:
        attrs["test_accuracy"] = history[-1]["test_accuracy"]
        if "val_accuracy" in history[-1]:
            attrs["val_accuracy"] = history[-1]["val_accuracy"]
    return outcome


def _objective(result, metric: str) -> float:
    if metric == "test_accuracy":
        return float(result.test_accuracy)
    # fit keeps the epoch with the lowest validation loss when it stops early, else the last
    history = result.history
    kept = min(history, key=lambda r: r["val_loss"]) if result.stopped_early else history[-1]
    return float(kept["val_accuracy"])
