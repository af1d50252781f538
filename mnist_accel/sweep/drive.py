"""The sweep's driver loop: ask the study for a trial's parameters, hand the trial to a pool, tell the study
its outcome, until enough trials count; the progress bar, the line per trial, and the result files
rewritten after every trial. However it ends, the trials still in flight are marked interrupted (so the
next run does them again) and the results are written.
"""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mnist_accel.config import TrainConfig, validate
from mnist_accel.errors import ConfigError
from mnist_accel.sweep import pools as pools, report as report, study as st, trial as ex
from mnist_accel.sweep.guard import Guard
from mnist_accel.sweep.space import overrides

UNEXPECTED_IN_A_ROW = 3  # this many trials failing in ways no trial should is a bug or a broken machine: stop


def make_sampler(optuna, name: str, points: dict | None, seed: int, parallel: bool):
    if name == "grid":
        class Grid(optuna.samplers.GridSampler):
            def after_trial(self, *args: Any) -> None:
                pass  # it would call Study.stop, which only works inside optimize(); the driver stops by itself

        return Grid(points, seed=seed)
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    # constant_liar: trials still running count as bad guesses, so parallel workers spread out
    return optuna.samplers.TPESampler(seed=seed, constant_liar=parallel)


@dataclass
class Driver:
    study: Any
    pool: Any
    distributions: dict[str, Any]
    config: TrainConfig
    job: dict[str, Any]  # the TrialJob fields every trial shares
    target: int  # trials to count, the study's earlier ones included
    info: dict[str, Any]  # for summary.json
    out: Path | None = None
    heartbeat_storage: Any = None  # a shared database's RDBStorage: its trials need a heartbeat
    grid: bool = False  # the grid sampler: stop once every point has been started
    progress: bool = False
    echo: Callable[[str], None] | None = None
    guard: Guard = field(default_factory=Guard)  # holds stops back during the calls of the storages it shields
    pending: dict[Any, Any] = field(default_factory=dict)  # future -> optuna Trial

    @property
    def names(self) -> list[str]:
        return list(self.distributions)

    def run(self) -> None:
        with self.guard.installed():  # a stop never lands inside a storage call: the cleanup below needs it
            self._run()

    def _run(self) -> None:
        from optuna.trial import TrialState

        self.heartbeat = pools.Heartbeat(self.heartbeat_storage) if self.heartbeat_storage is not None else None
        if self.heartbeat is not None:
            self.heartbeat.start()
        self.bar = tqdm(total=self.target, initial=min(st.tally(self.study)[0], self.target), unit="trial",
                        desc="sweep", disable=not self.progress)
        self.unexpected = 0
        try:
            self._loop()
        except KeyboardInterrupt as exc:  # Ctrl-C, or a job scheduler's stop signal (errors.Stopped)
            cause = str(exc) if str(exc).startswith("stopped by") else "interrupted"
            where = f" (the study is in {self.out})" if self.out is not None else ""
            stop = KeyboardInterrupt(f"{cause} after {st.tally(self.study)[0]} trials; run the same command "
                                     f"again to continue{where}")
            stop.exit_code = getattr(exc, "exit_code", 130)  # type: ignore[attr-defined]
            raise stop from None
        finally:
            self.bar.close()
            if self.heartbeat is not None:
                self.heartbeat.stopped.set()
            self.pool.close(cancel=bool(self.pending))
            for trial in self.pending.values():
                self.study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)  # no reason: interrupted
            self.write(final=True)

    def _loop(self) -> None:
        broken = False  # a local worker process died: finish what the old pool held, then start a new one
        while True:
            while not broken and len(self.pending) < self.pool.slots() and self._ask():
                pass
            if not self.pending:
                if not broken:
                    return
                self.pool.restart()
                broken = False
                continue
            for future in self.pool.wait_any(list(self.pending)):
                trial = self.pending.pop(future)
                try:
                    outcome = future.result()
                except ex.FATAL:
                    self.pending[future] = trial  # not this trial's fault: it is run again next time
                    raise
                except KeyboardInterrupt:  # only this trial's worker process was interrupted
                    outcome = {"state": "INTERRUPTED", "attrs": {}, "reason": None}
                except BrokenProcessPool:
                    broken = True
                    outcome = self._lost(trial)
                except Exception as exc:  # the pool's own failure (a lost Dask worker, an unpicklable result)
                    outcome = {"state": "FAIL", "attrs": {}, "reason": f"unexpected {type(exc).__name__}: {exc}"}
                self._tell(trial, outcome)

    def _lost(self, trial) -> dict[str, Any]:
        """A trial of a local pool broken by a dying worker process: failed if the process was its own, else
        run again (a pool breaks as a whole); failed too when the pool cannot tell whose process it was."""
        died = self.pool.died()
        if trial.number in died:
            return {"state": "FAIL", "attrs": {}, "reason": f"its worker process {died[trial.number]} (out of memory?)"}
        if died:
            return {"state": "INTERRUPTED", "attrs": {}, "reason": None}
        return {"state": "FAIL", "attrs": {}, "reason": "its worker process died (out of memory?)"}

    def _ask(self) -> bool:
        """Start one more trial, if the total allows; False when it does not."""
        if self.heartbeat is not None:
            st.recover(self.study, orphans=False)  # another driver may have died since
        counted, running, waiting = st.tally(self.study)
        grid_done = self.grid and not waiting and self.study.sampler.is_exhausted(self.study)
        if counted + running >= self.target or grid_done:
            return False
        trial = self.study.ask(self.distributions)
        try:
            cfg = self.config.replace(**overrides(trial.params))
            validate(cfg)
        except ConfigError as exc:  # a combination no single --space value showed (the loop path with adam)
            self._tell(trial, {"state": "FAIL", "reason": str(exc), "attrs": {}})
            return True
        if self.heartbeat is not None:
            self.heartbeat.add(trial._trial_id)
        job = ex.TrialJob(trial._trial_id, trial.number, config=cfg.to_dict(), **self.job)
        self.pending[self.pool.submit(job)] = trial
        return True

    def _tell(self, trial, outcome: dict[str, Any]) -> None:
        from optuna.trial import TrialState

        for key, value in outcome["attrs"].items():
            trial.set_user_attr(key, value)
        state = outcome["state"]
        if state == "INTERRUPTED":  # failed without a reason, so it does not count; queued to run again
            self.study.tell(trial, state=TrialState.FAIL)
            self.study.enqueue_trial(trial.params, user_attrs={"retry_of": trial.number})
            return
        if state == "COMPLETE":
            self.study.tell(trial, outcome["value"])
        else:
            trial.set_user_attr("reason", outcome["reason"] or state.lower())
            self.study.tell(trial, state=TrialState[state])
        if self.heartbeat is not None:
            self.heartbeat.trial_ids.discard(trial._trial_id)
        self.bar.update(1)
        table = report.rows(self.study.get_trials(deepcopy=False), self.names)
        best = report.best(table, 1)
        if best:
            self.bar.set_postfix_str(f"best {best[0]['value']:.4f}")
        line = report.trial_line(next(r for r in table if r["number"] == trial.number), self.names, self.job["metric"])
        if self.progress:
            self.bar.write(line)
        elif self.echo is not None:
            self.echo(line)
        self.write(final=False)
        reason = str(outcome.get("reason") or "")
        self.unexpected = self.unexpected + 1 if reason.startswith("unexpected") else 0
        if self.unexpected >= UNEXPECTED_IN_A_ROW:
            raise RuntimeError(f"{self.unexpected} trials in a row failed unexpectedly, the last with: {reason}; "
                               "the sweep stops (fix the cause, then run the same command again)")

    def write(self, final: bool) -> None:
        """trials.csv and summary.json (cheap, after every trial); at the end also sweep.png."""
        if self.out is None:
            return
        table = report.rows(self.study.get_trials(), self.names)
        report.write_csv(self.out / "trials.csv", table, self.names)
        importances = report.importance(self.study) if final else {}
        report.write_summary(self.out / "summary.json", table, self.info, importances)
        if final and _has_matplotlib():
            i = self.info
            report.write_plot(self.out / "sweep.png", table, importances, i["metric"],
                              f"{i['study']}: {len(table)} trials, {i['sampler']} sampler, {i['pruner']} pruner")


def _has_matplotlib() -> bool:
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        return False
    return True
