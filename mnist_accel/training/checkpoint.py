"""Training checkpoints: the full state of a run (parameters, optimizer state, generator state, epoch,
metrics so far, configuration) in one .npz with JSON metadata, written atomically after every epoch.

A resumed run ends with the same weights as an uninterrupted one on the same backend: shuffles and
dropout masks derive from (seed, epoch, step) or from the saved generator state. An interrupted run without
a checkpoint of its own saves to a file it claims (``claim``).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from mnist_accel.config import RUN, options
from mnist_accel.errors import ConfigError, DataError
from mnist_accel.persist import read_npz, write_npz
from mnist_accel.version import __version__

FORMAT = "mnist-accel-checkpoint"
# Options a resumed run may change; any other difference would make it a different run.
# What a resumed run may change: how and where it runs (config.RUN), and how long it trains.
MAY_CHANGE = ("epochs", *options(role=RUN))


def save(path: str | os.PathLike, arrays: list[np.ndarray], meta: dict[str, Any]) -> None:
    write_npz(path, FORMAT, arrays, {"version": __version__, **meta})


def load(path: str | os.PathLike) -> tuple[list[np.ndarray], dict[str, Any]]:
    """The arrays and metadata of a checkpoint written by this version of mnist-accel (ConfigError for
    another version's, DataError for anything that is not a checkpoint)."""
    arrays, meta = read_npz(path, FORMAT, "checkpoint")
    version = meta.get("version")
    if version != __version__:  # trainers' state layouts may change between versions
        shown = isinstance(version, str) and version.isprintable() and len(version) <= 40
        saved = f"mnist-accel {version}" if shown else "another version of mnist-accel"
        raise ConfigError(f"{path} was written by {saved}, and this is {__version__}: resume it with that version, "
                          "or start the run again without --resume")
    for key in ("config", "history", "trainer", "trainer_arrays"):
        if key not in meta:
            raise DataError(f"{path}: checkpoint lacks {key!r}")
    if len(arrays) < meta["trainer_arrays"]:
        raise DataError(f"{path}: checkpoint holds fewer arrays than its metadata says")
    return arrays, meta


def check_compatible(saved: dict[str, Any], wanted: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise ConfigError if ``wanted`` differs from the checkpoint's run in anything but MAY_CHANGE."""
    diff = sorted(k for k in saved if k not in MAY_CHANGE and saved.get(k) != wanted.get(k))
    if diff:
        shown = ", ".join(f"{k}={saved[k]!r} (now {wanted.get(k)!r})" for k in diff[:3])
        raise ConfigError(f"{path} was saved by a different run: {shown}; resume without changing those options")


def claim(path: str | os.PathLike, resume: str | os.PathLike | None) -> tuple[Path, bool]:
    """Where an interrupted run without --checkpoint saves: ``path``, unless another run's state is there
    already (the run resumed from it may overwrite it), then the first free ``<stem>-2<suffix>``, ``-3``...
    Each name is claimed by creating it exclusively, so two runs stopped at once in one folder (as a
    scheduler stops a job array) never overwrite each other's state. Returns the path and whether it is an
    empty placeholder made here (to remove if the save fails)."""
    path = Path(path)
    if resume is not None and path.exists() and path.resolve() == Path(resume).resolve():
        return path, False
    for n in range(1, 10_000):
        candidate = path if n == 1 else path.with_name(f"{path.stem}-{n}{path.suffix}")
        try:
            os.close(os.open(candidate, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600))
            return candidate, True
        except FileExistsError:
            continue
    raise FileExistsError(f"{path} and 9,999 numbered siblings exist; remove old interrupted runs")
