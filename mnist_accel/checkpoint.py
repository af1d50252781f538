"""Training checkpoints: the full state of a run (parameters, optimizer state, generator state, epoch,
metrics so far, configuration) in one .npz with JSON metadata, written atomically after every epoch.

A resumed run ends with the same weights as an uninterrupted one on the same backend: shuffles and
dropout masks derive from (seed, epoch, step) or from the saved generator state.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from . import __version__
from .errors import ConfigError, DataError
from .persist import atomic_write

FORMAT = "mnist-accel-checkpoint"
# Options a resumed run may change; any other difference would make it a different run.
MAY_CHANGE = ("epochs", "threads", "data_dir", "backend")


def save(path: str | os.PathLike, arrays: list[np.ndarray], meta: dict[str, Any]) -> None:
    header = {"format": FORMAT, "version": __version__, **meta}
    payload = {f"a{i}": a for i, a in enumerate(arrays)}
    payload["meta"] = np.frombuffer(json.dumps(header).encode(), dtype=np.uint8)
    atomic_write(path, lambda f: np.savez(f, **payload))


def load(path: str | os.PathLike) -> tuple[list[np.ndarray], dict[str, Any]]:
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            meta = json.loads(npz["meta"].tobytes().decode())
            if not isinstance(meta, dict) or meta.get("format") != FORMAT:
                raise DataError(f"{path}: not an mnist-accel checkpoint")
            n = len([k for k in npz.files if k != "meta"])
            arrays = [npz[f"a{i}"] for i in range(n)]
    except DataError:
        raise
    except FileNotFoundError:
        raise
    except Exception as exc:  # foreign or damaged files fail in zip, npy or JSON parsing
        raise DataError(f"{path}: not a readable mnist-accel checkpoint ({type(exc).__name__}: {exc})") from None
    for key in ("config", "history", "trainer"):
        if key not in meta:
            raise DataError(f"{path}: checkpoint lacks {key!r}")
    return arrays, meta


def check_compatible(saved: dict[str, Any], wanted: dict[str, Any], path: str | os.PathLike) -> None:
    """Raise ConfigError if ``wanted`` differs from the checkpoint's run in anything but MAY_CHANGE."""
    diff = sorted(k for k in saved if k not in MAY_CHANGE and saved.get(k) != wanted.get(k))
    if diff:
        shown = ", ".join(f"{k}={saved[k]!r} (now {wanted.get(k)!r})" for k in diff[:3])
        raise ConfigError(f"{path} was saved by a different run: {shown}; resume without changing those options")
