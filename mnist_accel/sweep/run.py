"""``python -m mnist_accel.sweep`` and ``sweep(...)``: a hyperparameter search over training options with
Optuna, each trial one ``fit``. Trials run in this process, or on Dask: a cluster of local worker processes
or one across machines; the study lives in SQLite under ``--out`` (so an interrupted sweep continues) or in
a database server that drivers on several machines share.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from mnist_accel.backends import cores
from mnist_accel.cli.common import Parser, add_training_options, entry, given_training_options
from mnist_accel.config import RUN, TrainConfig, options, resolve, validate
from mnist_accel.errors import ConfigError
from mnist_accel.sweep import cluster, report, study as st
from mnist_accel.sweep.drive import Driver
from mnist_accel.sweep.space import DEFAULT_GRID, DEFAULT_SPACE, SYNTAX
from mnist_accel.version import __version__

PROG = "mnist_accel.sweep"
SAMPLERS = ("tpe", "random", "grid")
DEFAULT_TRIALS = 20
DEFAULT_OUT = "mnist-sweep"
# Options that change where or how fast a trial runs, or what it prints, not what it learns: a resumed sweep
# may change them (config.RUN).
MAY_CHANGE = options(role=RUN)


@dataclass
class SweepResult:
    study: Any  # the optuna.Study
    rows: list[dict[str, Any]]  # one per trial that started, as in trials.csv
    metric: str  # what trials are ranked by: test_accuracy, or val_accuracy with a validation split
    out: Path | None

    @property
    def best(self) -> dict[str, Any] | None:
        top = report.best(self.rows, 1)
        return top[0] if top else None


def _optuna():
    try:
        import optuna
    except ImportError:
        raise ConfigError("sweeps need Optuna: pip install 'mnist-accel[sweep]'") from None
    optuna.logging.set_verbosity(optuna.logging.WARNING)  # the sweep prints its own lines
    return optuna


def sweep(space: str | Sequence[str] | None = None, trials: int | None = None, *, config: TrainConfig | None = None,
          sampler: str = "tpe", pruner: str = "median", workers: int = 1, scheduler: Any = None,
          storage: str | None = None, study_name: str = "mnist-sweep", out: str | os.PathLike | None = None,
          progress: bool = False, echo: Callable[[str], None] | None = None) -> SweepResult:
    """Search ``space`` (``--space`` terms; None: the default space) with ``trials`` fits of ``config``.

    ``workers``: trials at once in a Dask cluster of that many local processes; ``scheduler``: a Dask
    scheduler address or ``distributed.Client`` to run them on instead; ``storage``: a database URL shared
    by several drivers; ``out``: where the study (when ``storage`` is not given) and the results go, and
    where a sweep run again continues.
    """
    optuna = _optuna()
    from mnist_accel.sweep.space import check_space, grid, grid_size, parse_space

    config = config or resolve()
    validate(config)
    if sampler not in SAMPLERS:
        raise ConfigError(f"--sampler {sampler!r} is not one of {', '.join(SAMPLERS)}")
    if pruner not in st.PRUNERS:
        raise ConfigError(f"--pruner {pruner!r} is not one of {', '.join(st.PRUNERS)}")
    if workers < 1 or (trials is not None and trials < 1):
        raise ConfigError("--workers and --trials must be at least 1")
    default = DEFAULT_GRID if sampler == "grid" else DEFAULT_SPACE
    terms = list(space.split() if isinstance(space, str) else space or default)
    distributions = parse_space(terms)
    check_space(distributions, config)
    points = grid(distributions) if sampler == "grid" else None
    target = trials or (grid_size(points) if points else DEFAULT_TRIALS)
    target = min(target, grid_size(points)) if points else target
    metric = "val_accuracy" if config.val_split else "test_accuracy"
    out = Path(out) if out is not None else None
    if out is not None:
        try:
            out.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"--out {out}: cannot create the folder ({exc.strerror})") from None
    owned = storage is None  # the study is this --out's own (or the scheduler's), so one driver owns it
    lock = st.Lock(out) if owned and out is not None else None
    runner, close_client = None, False
    try:
        if scheduler is not None:
            runner, close_client = cluster.remote(scheduler)
        url = storage or (f"sqlite:///{(out / 'study.db').resolve()}" if out is not None else None)
        store = st.storage(optuna, url, runner.client if runner is not None else None, workers)
        study = optuna.create_study(study_name=study_name, storage=store, direction="maximize",
                                    load_if_exists=True, pruner=st.make_pruner(pruner, config.epochs))
        json = {n: optuna.distributions.distribution_to_json(d) for n, d in distributions.items()}
        signature = {"space": json, "config": {k: v for k, v in config.to_dict().items() if k not in MAY_CHANGE},
                     "metric": metric, "sampler": sampler, "pruner": pruner}
        where = st.redact(url) if url else "memory"
        st.check_signature(study, signature, str(out) if owned and out is not None else where)
        if runner is None and workers > 1:
            threads = config.threads or max(1, cores.share() // workers)
            runner = cluster.local(workers, threads, cluster.gpus(config.backend))
        elif runner is None:
            from mnist_accel.data.mnist import load_mnist

            runner = cluster.InProcess(load_mnist(config.data_dir, progress=progress, dataset=config.dataset), study)
        info = {"study": study_name, "storage": where, "sampler": sampler, "pruner": pruner, "metric": metric,
                "space": terms, "trials": target, "config": config.to_dict(), "version": __version__}
        job = dict(study_name=study_name, storage=url if isinstance(store, optuna.storages.RDBStorage) else store,
                   distributions=json, config=config.to_dict(), metric=metric, pruner=pruner, sampler=sampler,
                   grid=points, parallel=runner.slots() > 1)
        # Seeded past the trials already made, so a resumed sweep does not propose the same points again.
        seed = config.seed + (0 if points else len(study.trials))
        Driver(study, runner, job, seed, target, info, owned=owned, out=out,
               progress=progress, echo=echo).go()
        if close_client:  # the study lives on a scheduler this call connected to: keep a copy that outlives it
            memory = optuna.storages.InMemoryStorage()
            optuna.copy_study(from_study_name=study_name, from_storage=store, to_storage=memory)
            study = optuna.load_study(study_name=study_name, storage=memory)
        return SweepResult(study, report.rows(study.get_trials(), list(distributions)), metric, out)
    finally:
        if lock is not None:
            lock.release()
        if close_client:
            runner.client.close()


# --- the command line ----------------------------------------------------------------------------------


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Search training options with Optuna: each trial trains one MLP; trials run "
               "here, in worker processes, or on a Dask cluster, and an interrupted sweep continues.",
               epilog="--space terms: NAME=LOW:HIGH (uniform), NAME=LOW:HIGH:log, NAME=LOW:HIGH:STEP, NAME=A,B,C "
               "(choices), hidden=256x128,512 (layer stacks). Default: " + " ".join(DEFAULT_SPACE) + ".")
    add_training_options(p.add_argument_group("training options, the same for every trial (as in "
                                              "mnist_accel.train)"))
    s = p.add_argument_group("the search")
    s.add_argument("--space", nargs="+", metavar="TERM", help=f"options to search; {SYNTAX}")
    s.add_argument("--trials", type=int, metavar="N",
                   help=f"trials in all, those of an earlier run of this study included (default {DEFAULT_TRIALS}; "
                   "grid: every point)")
    s.add_argument("--sampler", choices=SAMPLERS, default="tpe", help="how trials are chosen (default: %(default)s)")
    s.add_argument("--pruner", choices=st.PRUNERS, default="median",
                   help="how hopeless trials are stopped early (default: %(default)s)")
    s.add_argument("--workers", type=int, metavar="N", help="trials at once in N local processes, splitting the "
                   "cores, or one per GPU (default 1)")
    s.add_argument("--scheduler", metavar="ADDRESS", help="run trials on a Dask cluster, e.g. tcp://host:8786")
    s.add_argument("--storage", metavar="URL", help="study database shared by several drivers, e.g. "
                   "postgresql://user:password@host/db (default: SQLite in --out)")
    s.add_argument("--study-name", default="mnist-sweep", metavar="NAME", help="(default: %(default)s)")
    s.add_argument("--out", default=DEFAULT_OUT, metavar="DIR", help="trials.csv, summary.json, sweep.png and the "
                   "study (default: %(default)s)")
    p.add_argument("--quiet", action="store_true", help="print only the table of the best trials")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"mnist-accel {__version__}")
    return p


def _run(args: argparse.Namespace) -> int:
    given = given_training_options(args)
    searched = {t.partition("=")[0].strip().replace("-", "_") for t in args.space or ()}
    both = sorted(searched & set(given))
    if both:
        flag = "--" + both[0].replace("_", "-")
        raise ConfigError(f"{flag} fixes {both[0]} for every trial but --space searches it; drop one of them")
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir} is not a directory")
    if args.workers is not None and args.scheduler is not None:
        raise ConfigError("--workers starts processes here, --scheduler uses the Dask cluster's; drop one of them")
    config = resolve(args.preset, **given)
    progress = not args.quiet and sys.stderr.isatty()
    result = sweep(args.space, args.trials, config=config, sampler=args.sampler, pruner=args.pruner,
                   workers=args.workers or 1, scheduler=args.scheduler, storage=args.storage,
                   study_name=args.study_name, out=args.out, progress=progress,
                   echo=None if args.quiet else (lambda line: print(line, flush=True)))
    names = [k for k in result.study.user_attrs["mnist_accel_sweep"]["space"]]
    print(report.format_table(result.rows, names, result.metric))
    if not args.quiet:
        print(f"results: {Path(args.out) / 'trials.csv'}, summary.json and sweep.png beside it")
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
