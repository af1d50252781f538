"""A sweep's study: where it is stored (SQLite under --out, a database server, or the Dask scheduler), how
an interrupted sweep's trials are found and queued again, how trials are counted toward the total, and the
check that a resumed sweep trains what the study was started with.
"""

from __future__ import annotations

import fcntl
import os
import time
from pathlib import Path
from typing import Any

from mnist_accel.errors import ConfigError
from mnist_accel.sweep import report as report

HEARTBEAT_S, GRACE_S = 20, 60  # a shared-database trial whose driver is silent for a minute is run again
CREATE_TRIES = 4


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


def client(scheduler: Any):
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'mnist-accel[sweep]'") from None
    if not isinstance(scheduler, str):
        return scheduler, False
    try:
        return Client(scheduler, timeout="10s"), True
    except OSError as exc:
        raise OSError(f"--scheduler {scheduler}: no Dask scheduler answers ({exc}); start one with "
                      "'dask scheduler' and give its tcp:// address") from None


def storages(optuna, url: str | None, dask_client: Any, embedded: bool, workers: int):
    """(the driver's storage, what workers open, the RDB storage to heartbeat or None)."""
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
        storage = DaskStorage(url, client=dask_client)
        return storage, storage, None
    if url is None:
        if workers > 1:
            raise ConfigError("workers need a study they can share: give out=DIR or storage=URL")
        return optuna.storages.InMemoryStorage(), None, None
    beat = {} if embedded else dict(heartbeat_interval=HEARTBEAT_S, grace_period=GRACE_S)
    try:
        rdb = _open_rdb(optuna, url, beat)
    except ImportError as exc:  # Optuna re-raises the missing driver's ModuleNotFoundError as its cause
        missing = getattr(exc.__cause__, "name", None) or getattr(exc, "name", None) or "for this database"
        raise ConfigError(f"--storage {redact(url)} needs the Python module {missing}, which is not installed; "
                          "pip install it ('mnist-accel[sweep]' brings psycopg, for postgresql:// URLs)") from None
    except Exception as exc:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise RuntimeError(f"--storage {redact(url)}: cannot open the study database ({first})") from None
    return rdb, url, (None if embedded else rdb)


def _open_rdb(optuna, url: str, beat: dict[str, Any]):
    """Optuna's RDBStorage; drivers on several machines started together against an empty database all
    create its tables at once, and all but one fail on a duplicate key: those try again, finding the tables."""
    from sqlalchemy.exc import IntegrityError, ProgrammingError

    for attempt in range(CREATE_TRIES):
        try:
            return optuna.storages.RDBStorage(url, **beat)
        except (IntegrityError, ProgrammingError):
            if attempt + 1 == CREATE_TRIES:
                raise
            time.sleep(0.5 * (attempt + 1))


def recover(study, orphans: bool) -> None:
    """Fail the trials whose driver is gone (all running ones when ``orphans``: this driver owns the study),
    then queue each such interrupted trial's parameters once more."""
    import optuna
    from optuna.trial import TrialState

    if orphans:
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            study.tell(t.number, state=TrialState.FAIL)
    else:
        optuna.storages.fail_stale_trials(study)
    trials = study.get_trials(deepcopy=False)
    rerun = {t.user_attrs.get("retry_of") for t in trials}
    for t in trials:
        if report.is_interrupted(t) and t.number not in rerun:
            study.enqueue_trial(t.params, user_attrs={"retry_of": t.number})


def tally(study) -> tuple[int, int, bool]:
    """(trials that count toward the total, trials running now, whether reruns wait in the queue)."""
    counted = running = waiting = 0
    for t in study.get_trials(deepcopy=False):
        state = t.state.name
        counted += state in ("COMPLETE", "PRUNED") or (state == "FAIL" and not report.is_interrupted(t))
        running += state == "RUNNING"
        waiting += state == "WAITING"
    return counted, running, bool(waiting)


def check_signature(study, signature: dict[str, Any], where: str) -> None:
    saved = study.user_attrs.get("mnist_accel_sweep")
    if saved is None:
        study.set_user_attr("mnist_accel_sweep", signature)
        return
    for key in signature:
        old, new = saved.get(key), signature[key]
        if key == "config":
            diff = sorted(k for k in new if old.get(k) != new[k])
            if diff:
                k = diff[0]
                raise ConfigError(f"the study {study.study_name!r} in {where} trained with {k}={old.get(k)!r}, this "
                                  f"sweep with {k}={new[k]!r}; give the same options to continue it, or a new "
                                  "--out or --study-name")
        elif old != new:
            raise ConfigError(f"the study {study.study_name!r} in {where} used a different {key} ({old}); give the "
                              "same one to continue it, or a new --out or --study-name")


def gpus(backend: str) -> list[str] | None:
    """The GPUs trials may be spread over (CUDA_VISIBLE_DEVICES's, else every device), or None without CUDA."""
    from mnist_accel.backends.selection import cuda_unavailable_reason, gpu_count

    if backend not in ("auto", "cuda") or cuda_unavailable_reason() is not None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(gpu_count())]
