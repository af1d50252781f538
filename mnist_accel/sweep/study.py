"""A sweep's study: where it is stored (SQLite under --out, a database server, or the Dask scheduler), with
Optuna's heartbeat and retry callback; how the trials of a stopped or killed worker are failed and queued
again; the sampler and pruner; how trials are counted toward the total; and the check that a resumed sweep
trains what the study was started with.
"""

from __future__ import annotations

import fcntl
import os
import time
import warnings
from collections.abc import Collection
from pathlib import Path
from typing import Any

from mnist_accel.config import TrainConfig
from mnist_accel.errors import ConfigError
from mnist_accel.sweep import report as report

HEARTBEAT_S, GRACE_S = 20, 60  # a trial whose worker is silent for a minute is failed and run again
MAX_RETRY = 3  # a trial interrupted this many times is given up (it does not count; others take its place)
CREATE_TRIES = 4


def retry_callback():
    """Optuna's callback that queues a failed trial's parameters again, up to ``MAX_RETRY`` times: for
    trials whose heartbeat went stale (Optuna calls it) and for interrupted ones (``recover`` does)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.storages.RetryHeartbeatStaleTrialCallback(max_retry=MAX_RETRY)


def redact(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).render_as_string(hide_password=True)


class Lock:
    """One driver at a time per --out with the embedded study: it then knows every running trial there
    is left over from an interrupted run."""

    def __init__(self, out: Path) -> None:
        self.file = open(out / ".sweep.lock", "a+")
        try:
            fcntl.flock(self.file, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            self.file.seek(0)
            holder = self.file.read().strip() or "another process"
            self.file.close()
            raise RuntimeError(f"another sweep ({holder}) is running with --out {out}; wait for it, or give "
                               "a different --out") from None
        self.file.truncate(0)
        self.file.write(f"pid {os.getpid()}")
        self.file.flush()

    def release(self) -> None:
        self.file.close()


def storage(optuna, url: str | None, dask_client: Any, workers: int):
    """The study's storage: a DaskStorage on the scheduler (no URL, or a SQLite file it opens), else an
    RDBStorage with Optuna's heartbeat and retry callback, else (one process, no folder) memory."""
    if dask_client is not None and (url is None or url.startswith("sqlite")):
        try:
            from optuna_integration.dask import DaskStorage
        except ImportError:
            raise ConfigError("--scheduler needs optuna-integration: pip install 'mnist-accel[sweep]'") from None
        if url is not None:  # the scheduler opens the file: it must see the same folder
            folder = str(Path(url.split("///", 1)[1]).parent)
            if not dask_client.run_on_scheduler(os.access, folder, os.W_OK):
                raise ConfigError(f"the Dask scheduler cannot write {folder}, where the study file lives; run the "
                                  "sweep on the scheduler's machine, use a folder both see, or give --storage "
                                  "postgresql://...")
        return DaskStorage(url, client=dask_client)
    if url is None:
        if workers > 1:
            raise ConfigError("workers need a study they can share: give out=DIR or storage=URL")
        return optuna.storages.InMemoryStorage()
    try:
        return open_rdb(url)
    except ImportError as exc:  # Optuna re-raises the missing driver's ModuleNotFoundError as its cause
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None) or "for this database"
        raise ConfigError(f"--storage {redact(url)} needs the Python module {missing}, which is not installed; "
                          "pip install it ('mnist-accel[sweep]' brings psycopg, for postgresql:// URLs)") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"--storage {redact(url)}: cannot open the study database ({first})") from None


def open_rdb(url: str):
    """Optuna's RDBStorage with its heartbeat and the retry callback, as drivers and workers open it.
    Drivers on several machines started together against an empty database all create its tables at once,
    and all but one fail on a duplicate key: those try again, finding the tables."""
    import optuna
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(CREATE_TRIES):
        try:
            with warnings.catch_warnings():  # the heartbeat is experimental in Optuna; we rely on it knowingly
                warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                return optuna.storages.RDBStorage(url, heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S,
                                                  heartbeat_stale_trial_callback=retry_callback())
        except (IntegrityError, ProgrammingError):
            if attempt + 1 == CREATE_TRIES:
                raise
            time.sleep(0.5 * (attempt + 1))


def cut(study, which: str | bool) -> list[int]:
    """Fail running trials that lost their worker, without a reason (so they are run again, not counted):
    ``which`` True, every running trial (this driver owns the study); a run id, those that run started.
    The numbers of the trials failed."""
    from optuna.trial import TrialState

    failed = []
    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        if which is True or t.user_attrs.get("run") == which:
            study.tell(t.number, state=TrialState.FAIL, skip_if_finished=True)
            failed.append(t.number)
    return failed


def requeue(study) -> None:
    """Fail the trials whose heartbeat went stale, then queue each interrupted trial not yet run again once
    more, through Optuna's retry callback (which keeps the retry history)."""
    import optuna

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        optuna.storages.fail_stale_trials(study)  # its callback queues those
    trials = study.get_trials(deepcopy=False)
    rerun = {report.retry_of(t) for t in trials}
    retry = retry_callback()
    for t in trials:
        if report.is_interrupted(t) and t.number not in rerun:
            retry(study, t)


def tally(study, run: str | None = None, live: Collection[str] = ()) -> tuple[int, int, int, bool]:
    """(trials that count toward the total, trials running now that ``run`` did not start, the trials of
    ``run`` still running whose task is not among ``live`` (their worker died: they are to run again), whether
    reruns wait in the queue)."""
    counted = others = orphans = waiting = 0
    for t in study.get_trials(deepcopy=False):
        state = t.state.name
        counted += state in ("COMPLETE", "PRUNED") or (state == "FAIL" and not report.is_interrupted(t))
        waiting += state == "WAITING"
        if state == "RUNNING":
            mine = run is not None and t.user_attrs.get("run") == run
            others += not mine
            orphans += mine and t.user_attrs.get("task") not in live
    return counted, others, orphans, bool(waiting)


def check_signature(study, signature: dict[str, Any], where: str) -> None:
    saved = study.user_attrs.get("mnist_accel_sweep")
    if saved is None:
        study.set_user_attr("mnist_accel_sweep", signature)
        return
    for key in signature:
        old, new = saved.get(key), signature[key]
        if key == "config":
            # an option added since the study began counts as its default there
            old = {**TrainConfig().to_dict(), **old}
            diff = sorted(k for k in new if old.get(k) != new[k])
            if diff:
                k = diff[0]
                raise ConfigError(f"the study {study.study_name!r} in {where} trained with {k}={old.get(k)!r}, this "
                                  f"sweep with {k}={new[k]!r}; give the same options to continue it, or a new "
                                  "--out or --study-name")
        elif old != new:
            raise ConfigError(f"the study {study.study_name!r} in {where} used a different {key} ({old}); give the "
                              "same one to continue it, or a new --out or --study-name")


PRUNERS = ("median", "halving", "hyperband", "none")


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


def make_sampler(name: str, points: dict | None, seed: int, parallel: bool):
    """A fresh sampler for one trial, seeded by the trial's place in the sweep (samplers keep no state
    between trials but their random generator: they read the study)."""
    import optuna

    if name == "grid":
        return optuna.samplers.GridSampler(points, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials still running count as bad guesses, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)
