"""The pools a sweep's trials run in, all with one small interface (``submit(job) -> future``,
``wait_any(futures)``, ``slots()``, ``close()``): this process, fresh local processes that split the cores
or take a GPU each, or a Dask cluster. Also the heartbeat that keeps a driver's trials alive in a shared
database.
"""

from __future__ import annotations

import concurrent.futures as cf
import multiprocessing
import os
import signal
import threading
import time
from typing import Any

from mnist_accel.data.mnist import MnistData
from mnist_accel.sweep import trial as ex
from mnist_accel.sweep.trial import TrialJob, run_trial
from mnist_accel.training.signals import STOP_SIGNALS


class InProcess:
    """Trials one after another in this process, on data loaded once by the driver."""

    def __init__(self, data: MnistData | None, study: Any) -> None:
        self.data, self.study = data, study

    def slots(self) -> int:
        return 1

    def submit(self, job: TrialJob) -> cf.Future:
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


_BUSY = False  # in a worker process: a trial is running
_STARTED: Any = None  # in a worker process: the pool's queue of (trial number, pid) as trials start
STOP_WAIT_S = 10  # how long a stopping pool waits for a trial to notice, before killing its process
REAP_TRIES = 20


def _on_interrupt(signum: int, frame: Any) -> None:
    if _BUSY:  # between trials, the worker waits for its next job or for the pool to end it
        raise KeyboardInterrupt


def _init_worker(threads: int, gpus, started) -> None:
    global _STARTED
    _STARTED = started
    # The driver handles Ctrl-C and a scheduler's stop signals; a worker stops a trial only when asked
    # (SIGINT while busy), so it still exits normally, releasing what it holds.
    signal.signal(signal.SIGINT, _on_interrupt)
    for signum in STOP_SIGNALS:
        signal.signal(signum, signal.SIG_IGN)
    if gpus is not None:
        os.environ["CUDA_VISIBLE_DEVICES"] = gpus.get()  # before anything in this process touches CUDA
    if threads:
        from threadpoolctl import threadpool_limits

        ex.WORKER_THREADS = threads
        threadpool_limits(limits=threads)  # evaluation too, not only training, keeps to this worker's share


def _took(number: int) -> None:
    """Tell the pool this process runs trial ``number``: if the process dies, the trial was its own."""
    _STARTED.put((number, os.getpid()))


def _run_in_worker(job: TrialJob) -> dict[str, Any]:
    global _BUSY
    _took(job.number)
    _BUSY = True
    try:
        return run_trial(job)
    finally:
        _BUSY = False


class LocalPool:
    """``workers`` fresh processes on this machine, each with its share of the cores or its own GPU."""

    def __init__(self, workers: int, threads: int, gpus: list[str] | None) -> None:
        self.workers, self.threads, self.gpus = workers, threads, gpus
        self._start()

    def _start(self) -> None:
        ctx = multiprocessing.get_context("spawn")  # forking a process that has threads (BLAS, Numba) is unsafe
        self.started, self.took = ctx.SimpleQueue(), {}  # trial number by worker pid, the latest
        self.dead: dict[int, str] | None = None
        queue = None
        if self.gpus:
            queue = ctx.SimpleQueue()
            for i in range(self.workers):
                queue.put(self.gpus[i % len(self.gpus)])
        self.pool = cf.ProcessPoolExecutor(self.workers, mp_context=ctx, initializer=_init_worker,
                                           initargs=(self.threads, queue, self.started))

    def slots(self) -> int:
        return self.workers

    def submit(self, job: TrialJob) -> cf.Future:
        return self.pool.submit(_run_in_worker, job)

    def wait_any(self, futures) -> set:
        return cf.wait(futures, return_when=cf.FIRST_COMPLETED).done

    def died(self) -> dict[int, str]:
        """Once the pool broke: the trials whose own process died, and how (the kernel's out-of-memory
        killer sends SIGKILL). The other trials it held were only cut short."""
        if self.dead is not None:  # every trial of one break gets the same answer
            return self.dead
        while not self.started.empty():
            number, pid = self.started.get()
            self.took[pid] = number
        processes = list((getattr(self.pool, "_processes", None) or {}).values())  # no public way
        for _ in range(REAP_TRIES):  # the pool's thread may be reaping the dead process at this very moment
            self.dead = {self.took[p.pid]: _how(p.exitcode) for p in processes if p.exitcode and p.pid in self.took}
            if self.dead:
                break
            time.sleep(0.05)
        return self.dead

    def restart(self) -> None:
        """After a worker process died (the kernel's OOM killer, a crash): a fresh pool for the next trials."""
        self.close(cancel=True)
        self._start()

    def close(self, cancel: bool = False) -> None:
        if cancel:
            processes = list(getattr(self.pool, "_processes", {}).values())  # no public way before 3.14
            self.pool.shutdown(wait=False, cancel_futures=True)
            for p in processes:
                if p.is_alive():
                    os.kill(p.pid, signal.SIGINT)
            for p in processes:
                p.join(timeout=STOP_WAIT_S)
                if p.is_alive():  # stuck in a long native call
                    p.kill()
        self.pool.shutdown(wait=True)


def _how(exitcode: int) -> str:
    if exitcode > 0:
        return f"exited with code {exitcode}"
    try:
        return f"was killed by {signal.Signals(-exitcode).name}"
    except ValueError:
        return f"was killed by signal {-exitcode}"


class DaskPool:
    """Trials as tasks on a Dask cluster: as many in flight as the workers have threads."""

    def __init__(self, client: Any, run_id: str) -> None:
        self.client, self.run_id = client, run_id
        self.futures: set = set()

    def slots(self) -> int:
        return max(1, sum(self.client.nthreads().values()))

    def submit(self, job: TrialJob):
        # The key names the trial (the task stream shows which worker ran which) and this run, so a
        # scheduler that outlived an earlier sweep never hands back that sweep's result.
        key = f"sweep-{job.study_name}-trial-{job.number}-{self.run_id}"
        future = self.client.submit(run_trial, job, key=key, pure=False, retries=0)
        self.futures.add(future)
        return future

    def wait_any(self, futures) -> set:
        from distributed import wait

        done = set(wait(list(futures), return_when="FIRST_COMPLETED").done)
        self.futures -= done
        return done

    def close(self, cancel: bool = False) -> None:
        # The client stays open: the study lives on the scheduler, and the results are read after this.
        if cancel and self.futures:  # a trial already running finishes on its worker; its result is dropped
            self.client.cancel(list(self.futures))


class Heartbeat(threading.Thread):
    """Marks the trials this driver has in flight as alive, so that drivers elsewhere sharing a database
    can tell them from the trials of a driver that died (Optuna's stale-trial check)."""

    def __init__(self, storage: Any) -> None:
        super().__init__(daemon=True, name="mnist-sweep-heartbeat")
        self.storage, self.trial_ids, self.stopped = storage, set(), threading.Event()

    def add(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)  # at once: a trial with no heartbeat is never found stale
        self.trial_ids.add(trial_id)

    def run(self) -> None:
        while not self.stopped.wait(self.storage.get_heartbeat_interval()):
            for trial_id in list(self.trial_ids):
                try:
                    self.storage.record_heartbeat(trial_id)
                except Exception:  # a dropped connection now and then must not end the sweep
                    pass
