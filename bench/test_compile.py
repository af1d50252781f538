"""The ``compile`` group: what a first run pays to compile its kernels, against the same run once Numba's cache
holds them.

Each row runs ``python -m mnist_accel.train --preset P --backend B`` twice in a subprocess, with
``NUMBA_CACHE_DIR`` pointing to a new empty folder (cold: a fresh machine), then again on the cache the first
run filled (warm), and records each run's ``compile_seconds`` (from ``--metrics-json``: the trainer's warm-up,
apart from its epochs) and the wall seconds of the whole command (start-up, data, compilation, training and
scoring). ``extra_info["seconds"]`` is the cold run's wall time, what the ratio target reads: the tutorial's
first run on Numba against the same run on NumPy, which compiles nothing. ``bench/report.py`` holds the budgets
(cold compilation of ``default`` and ``speedrun`` at most 1.5 s). ``--quick`` trains 1,024 images for one
epoch: a smoke test of the plumbing, not a measurement.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bench.machine import versions

GROUP = "compile"
ROOT = Path(__file__).resolve().parent.parent
RUNS = [("default", "numba"), ("speedrun", "numba"), ("tutorial", "numba"), ("tutorial", "numpy")]


def _train(preset: str, backend: str, cache: Path, quick: bool, out: Path) -> tuple[float, float]:
    """(wall seconds, compile_seconds) of one training command on the Numba cache in ``cache``."""
    cmd = [sys.executable, "-m", "mnist_accel.train", "--preset", preset, "--backend", backend, "--quiet",
           "--metrics-json", str(out)]
    if quick and preset != "tutorial":  # the tutorial is small already
        cmd += ["--epochs", "1", "--train-samples", "1024", "--test-samples", "1000"]
    start = time.perf_counter()
    subprocess.run(cmd, cwd=ROOT, env=dict(os.environ, NUMBA_CACHE_DIR=str(cache)), check=True,
                   capture_output=True, text=True)
    wall = time.perf_counter() - start
    return wall, json.loads(out.read_text())["compile_seconds"]


@pytest.mark.benchmark(group=GROUP)
@pytest.mark.parametrize("preset, backend", RUNS, ids=[f"{p}-{b}" for p, b in RUNS])
def test_first_run(benchmark, request, tmp_path, preset, backend):
    quick = request.config.getoption("--quick")
    runs: dict[str, tuple[float, float]] = {}

    def both():
        cache = tmp_path / "numba-cache"
        cache.mkdir()
        for kind in ("cold", "warm"):
            runs[kind] = _train(preset, backend, cache, quick, tmp_path / f"{kind}.json")

    benchmark.pedantic(both, rounds=1, iterations=1)
    info = benchmark.extra_info
    info.update(backend=f"{preset}-{backend}", preset=preset, library="mnist_accel", device="CPU",
                quick=quick, seconds=runs["cold"][0], versions=versions(),
                **{f"{kind}_{what}": runs[kind][i] for kind in runs for i, what in
                   enumerate(("wall_seconds", "compile_seconds"))})
