"""Where a sweep's trials run: here, one after another, or as tasks on Dask, one code path for a cluster
this sweep starts on this machine (``--workers N``: a ``LocalCluster`` of N worker processes, each with its
share of the cores or its own GPU) and one already running across machines (``--scheduler ADDRESS``).
Each task is ``trial.run_trial``; these runners only start tasks and wait for them.
"""

from __future__ import annotations

import concurrent.futures as cf
import logging
import os
import signal
from typing import Any

from mnist_accel.backends import cores
from mnist_accel.data.mnist import MnistData
from mnist_accel.errors import ConfigError
from mnist_accel.sweep.trial import TrialJob, run_trial


class InProcess:
    """Trials one after another in this process, on data loaded once by the driver. Ctrl-C reaches the
    driver from inside the trial."""

    kills_on_close = False  # nothing keeps running after close

    def stop_event(self, run: str) -> None:
        return None  # a stop interrupts the trial at once

    def __init__(self, data: MnistData | None, study: Any) -> None:
        self.data, self.study = data, study

    def slots(self) -> int:
        return 1

    def submit(self, job: TrialJob, key: str) -> cf.Future:
        future: cf.Future = cf.Future()
        try:
            future.set_result(run_trial(job, self.data, self.study))
        except Exception as exc:  # Ctrl-C is not caught: it reaches the driver at once
            future.set_exception(exc)
        return future

    def wait_any(self, futures) -> set:
        return set(futures)

    def close(self, cancel: bool = False) -> None:
        pass


def take_gpu(gpus: list[str] | None) -> None:
    """On worker ``i`` of the local cluster: GPU ``gpus[i]``, set before anything in its process touches
    CUDA (the same GPU for every trial the worker runs)."""
    if gpus:
        from distributed import get_worker

        os.environ["CUDA_VISIBLE_DEVICES"] = gpus[int(get_worker().name) % len(gpus)]


def _task(job: TrialJob, gpus: list[str] | None) -> int | None:
    take_gpu(gpus)
    return run_trial(job)


STOP_WAIT_S = 30  # how long a stopped sweep waits for its trials to notice, before a local cluster kills them


class OnDask:
    """Trials as tasks on a Dask cluster: as many at once as its workers have threads. A cluster this
    runner started is closed with it (its worker processes end, trials and all); another one is left
    running, with the tasks it had started."""

    def __init__(self, client: Any, cluster: Any = None, gpus: list[str] | None = None,
                 environ: dict[str, str] | None = None) -> None:
        self.client, self.cluster, self.gpus, self.environ = client, cluster, gpus, environ
        self.kills_on_close = cluster is not None
        self.futures: set = set()

    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, job: TrialJob, key: str):
        # The key names the sweep's run and the task's place in it (the task stream shows which worker ran
        # what), so a scheduler that outlived an earlier sweep never hands back that sweep's result.
        future = self.client.submit(_task, job, self.gpus, key=key, pure=False, retries=0)
        self.futures.add(future)
        return future

    def wait_any(self, futures) -> set:
        from distributed import wait

        done = set(wait(list(futures), return_when="FIRST_COMPLETED").done)
        self.futures -= done
        return done

    def stop_event(self, run: str) -> str:
        """The name of the event that stops this run's trials in flight (they check it every epoch)."""
        self.event = f"mnist-sweep-stop-{run}"
        return self.event

    def close(self, cancel: bool = False) -> None:
        if cancel and self.futures:  # tasks not started end at once; trials training stop at their next epoch
            from distributed import Event, wait

            Event(self.event, self.client).set()
            try:
                wait(list(self.futures), timeout=STOP_WAIT_S)
            except TimeoutError:  # a trial stuck in a long epoch: a local cluster's close kills it
                self.client.cancel(list(self.futures))
        if self.cluster is not None:
            self.client.close()
            self.cluster.close()
            _restore(self.environ)


def local(workers: int, threads: int, gpus: list[str] | None) -> OnDask:
    """A Dask cluster of ``workers`` processes on this machine, one task at a time each, with ``threads``
    threads each (Dask's nanny hands the count on through the variables numerical libraries read)."""
    try:
        from distributed import Client, LocalCluster
    except ImportError:
        raise ConfigError("--workers needs Dask: pip install 'mnist-accel[sweep]'") from None
    from distributed.diagnostics.plugin import WorkerPlugin

    class LeaveCtrlCToTheDriver(WorkerPlugin):
        """Ctrl-C in a terminal reaches every process of the command: the workers ignore it, and the driver
        stops their trials itself (at the next epoch), so they end as interrupted, without tracebacks."""

        def setup(self, worker: Any) -> None:
            signal.signal(signal.SIGINT, signal.SIG_IGN)

    import dask

    # Dask's nanny sets these before it spawns each worker, so that BLAS and OpenMP read them as they load
    # (``distributed.nanny.pre-spawn-environ``; its own default is 1 thread). It sets them in this process
    # too (Nanny's docstring): they are put back, or training here after the sweep would keep to a share.
    env = {**dask.config.get("distributed.nanny.pre-spawn-environ"),
           **{name: str(threads) for name in cores.LIMIT_VARIABLES}}
    environ = dict(os.environ)
    # allowed-failures 0: a task whose worker died fails (KilledWorker) instead of starting a new trial on
    # another worker; the driver then runs the dead worker's trial again itself, and the count stays exact.
    with dask.config.set({"distributed.nanny.pre-spawn-environ": env, "distributed.scheduler.allowed-failures": 0}):
        # No dashboard; the scheduler's own HTTP server on a free port, not on 8787 (where another cluster may be).
        cluster = LocalCluster(n_workers=workers, threads_per_worker=1, processes=True, dashboard_address=None,
                               scheduler_kwargs={"dashboard_address": ":0"}, silence_logs=logging.CRITICAL)
    _restore(environ)
    client = Client(cluster)
    client.register_plugin(LeaveCtrlCToTheDriver())  # workers started later (after one died) run it too
    return OnDask(client, cluster, gpus, environ)


def _restore(environ: dict[str, str] | None) -> None:
    if environ is not None and dict(os.environ) != environ:
        os.environ.clear()
        os.environ.update(environ)


def remote(scheduler: Any) -> tuple[OnDask, bool]:
    """A runner on the cluster of ``scheduler`` (an address, or a ``distributed.Client``), and whether this
    call connected the client (and so closes it)."""
    try:
        from distributed import Client
    except ImportError:
        raise ConfigError("--scheduler needs Dask: pip install 'mnist-accel[sweep]'") from None
    if not isinstance(scheduler, str):
        return OnDask(scheduler), False
    try:
        return OnDask(Client(scheduler, timeout="10s")), True
    except OSError as exc:
        raise OSError(f"--scheduler {scheduler}: no Dask scheduler answers ({exc}); start one with "
                      "'dask scheduler' and give its tcp:// address") from None


def gpus(backend: str) -> list[str] | None:
    """The GPUs trials may be spread over (CUDA_VISIBLE_DEVICES's, else every device), or None without CUDA."""
    from mnist_accel.backends.selection import cuda_unavailable_reason, gpu_count

    if backend not in ("auto", "cuda") or cuda_unavailable_reason() is not None:
        return None
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    if visible:
        return [d.strip() for d in visible.split(",") if d.strip()]
    return [str(i) for i in range(gpu_count())]
