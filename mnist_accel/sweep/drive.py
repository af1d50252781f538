"""The sweep's driver: it starts trials on a runner (``cluster``) until enough count, and reports each as
it ends: the progress bar, a line per trial, and the result files rewritten after every trial. Workers do
the rest through Optuna (sampling, pruning, heartbeats, recording outcomes). However the sweep ends, the
trials its workers left unfinished are failed as interrupted (the next run does them again) and the
results are written.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from mnist_accel.sweep import report as report, study as st
from mnist_accel.sweep.trial import FATAL, TrialJob

UNEXPECTED_IN_A_ROW = 3  # this many trials failing in ways no trial should is a bug or a broken machine: stop


@dataclass
class Driver:
    study: Any
    runner: Any  # cluster.InProcess or cluster.OnDask
    job: dict[str, Any]  # the TrialJob fields every trial shares (all but seed and run)
    seed: int  # the first trial's sampler seed; each further trial's is one more (the grid's is fixed)
    target: int  # trials to count, the study's earlier ones included
    info: dict[str, Any]  # for summary.json
    owned: bool = False  # this driver owns the study (its --out's): every running trial there is its own
    out: Path | None = None
    progress: bool = False
    echo: Callable[[str], None] | None = None
    run: str = field(default_factory=lambda: uuid.uuid4().hex[:8])
    pending: dict = field(default_factory=dict)  # the tasks started and not yet ended: future -> task key
    started: int = 0
    unexpected: int = 0

    @property
    def names(self) -> list[str]:
        return list(self.job["distributions"])

    def go(self) -> None:
        if self.owned:  # running trials left in this --out's study are an earlier run's, cut short
            st.cut(self.study, True)
        st.requeue(self.study)
        self.bar = tqdm(total=self.target, initial=min(st.tally(self.study)[0], self.target), unit="trial",
                        desc="sweep", disable=not self.progress)
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
            self.runner.close(cancel=bool(self.pending))
            if self.runner.kills_on_close:  # the workers' trials ended with their processes; in a study this
                # driver owns, also a trial killed before it could record its run
                st.cut(self.study, True if self.owned else self.run)
            self.write(final=True)

    def _loop(self) -> None:
        grid = st.make_sampler("grid", self.job["grid"], 0, False) if self.job["grid"] else None
        while True:
            while len(self.pending) < self.runner.slots() and self._start(grid):
                pass
            if not self.pending:
                lost = st.cut(self.study, self.run)  # every task ended, yet trials of theirs run: workers died
                if not lost:
                    return
                st.requeue(self.study)
                for number in lost:
                    self._say(f"trial {number} lost its worker process (killed? out of memory?); it runs again")
            for future in self.runner.wait_any(list(self.pending)):
                del self.pending[future]
                try:
                    number = future.result()
                except FATAL:  # not the trial's fault (no data, no backend): it is run again next time
                    raise
                except Exception as exc:  # the runner's own failure (a lost Dask worker): its trial is cut
                    self._unexpected(f"unexpected {type(exc).__name__}: {exc}")
                    continue
                if number is not None:  # None: the task began after a stop, and ran no trial
                    self._ended(number)

    def _start(self, grid) -> bool:
        """Start one more trial, if the total allows; False when it does not."""
        # This run's trials to come: one a task in flight, and the trials whose worker died (run again later).
        counted, others, orphans, waiting = st.tally(self.study, self.run, set(self.pending.values()))
        if counted + others + len(self.pending) + orphans >= self.target:
            return False
        if grid is not None and not waiting and grid.is_exhausted(self.study):
            return False
        # A grid sampler's seed orders its points: one seed for every trial keeps each point's number.
        seed = self.seed + (0 if grid is not None else self.started)
        key = f"sweep-{self.job['study_name']}-{self.run}-task-{self.started}"
        job = TrialJob(**self.job, seed=seed, run=self.run, task=key, stop=self.runner.stop_event(self.run))
        self.started += 1
        self.pending[self.runner.submit(job, key)] = key
        return True

    def _ended(self, number: int) -> None:
        table = report.rows(self.study.get_trials(deepcopy=False), self.names)
        row = next(r for r in table if r["number"] == number)
        self.bar.update(1)
        top = report.best(table, 1)
        if top:
            self.bar.set_postfix_str(f"best {top[0]['value']:.4f}")
        self._say(report.trial_line(row, self.names, self.job["metric"]))
        self.write(final=False, table=table)
        reason = str(row.get("reason") or "")
        if reason.startswith("unexpected"):
            self._unexpected(reason)
        else:
            self.unexpected = 0

    def _unexpected(self, reason: str) -> None:
        self.unexpected += 1
        if self.unexpected >= UNEXPECTED_IN_A_ROW:
            raise RuntimeError(f"{self.unexpected} trials in a row failed unexpectedly, the last with: {reason}; "
                               "the sweep stops (fix the cause, then run the same command again)")

    def _say(self, line: str) -> None:
        if self.progress:
            self.bar.write(line)
        elif self.echo is not None:
            self.echo(line)

    def write(self, final: bool, table: list[dict[str, Any]] | None = None) -> None:
        """trials.csv and summary.json (cheap, after every trial); at the end also sweep.png. ``table``: the
        rows as the caller just read them from the study, else read here."""
        if self.out is None:
            return
        if table is None:
            table = report.rows(self.study.get_trials(deepcopy=False), self.names)
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
