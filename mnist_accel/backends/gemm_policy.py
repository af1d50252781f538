"""Whether our first-layer GEMM (``kernels.cpu.gemm_cpu``) runs here, and Numba's threads for it.

The rule, fixed per machine and environment rather than timed (so a seed gives the same model every
run): the CPU has AVX-512 (without it the kernel's 16 vector accumulators spill), and Numba's threads are
on a layer fit for it. Whatever kernels NumPy's BLAS has, two properties decide it for gemm_cpu: every
output element is one ordered chain of multiply-adds, so the model is the same bits on one thread or
many (OpenBLAS's products change with its thread count); and it degrades gracefully on a shared
machine. OpenBLAS's threads wait for each other at every call, so a process whose threads are not all
on a core at once stalls: two trainings at once, or one beside a busy process, ran several times slower
on BLAS's threads and barely slower on gemm_cpu's, whose work units go one at a time to whichever
thread is running (the ``shared`` bench group measures both; its runs are in ``bench/results``). Alone,
against BLAS's own AVX-512 kernels, fits ran level on the whole (faster at widths of 256 and more, slower
at 100).

A training step hands its two big GEMMs to the threads hundreds of times a second, so the hand-off
must cost microseconds: Numba's TBB and OpenMP layers do, its own workqueue does not. OpenMP is not an
option by default: GNU OpenMP kills any forked child that runs a parallel region once the parent has
used one ("fork() called from a process already using GNU OpenMP"), and scikit-learn users fork. So the
ops use Numba's threads only under TBB (a dependency; its wheel puts ``libtbb.so.12`` where the loader
does not look, so it is loaded here before Numba picks a layer), or under OpenMP when the user named it
in ``NUMBA_THREADING_LAYER``; never under workqueue (too slow a hand-off, and it aborts when two
threads launch at once, as a threaded grid search would). Elsewhere BLAS does the products.
"""

from __future__ import annotations

import ctypes
import os
from importlib import metadata

import numba
from llvmlite import binding
from numba.core import config

AVX512 = bool(binding.get_host_cpu_features().get("avx512f", False))
_READY: bool | None = None
_RUNS: bool | None = None


def runs_here() -> bool:
    """The rule above (worked out once per process)."""
    global _RUNS
    if _RUNS is None:
        _RUNS = AVX512 and parallel_ok()
    return _RUNS


def _load_tbb() -> None:
    """Make ``libtbb.so.12`` from the tbb wheel loadable by name, as Numba's TBB layer asks for it."""
    try:
        files = metadata.files("tbb") or []
    except metadata.PackageNotFoundError:
        return
    for f in files:
        if f.name in ("libtbb.so.12", "libtbb.12.dylib", "tbb12.dll"):
            try:
                ctypes.CDLL(str(f.locate()), mode=getattr(os, "RTLD_GLOBAL", 0))
            except OSError:  # Numba then reports TBB missing and picks another layer
                pass
            return


def parallel_ok() -> bool:
    """Whether the ops may run Numba's parallel kernels: after starting Numba's threads (TBB when it can
    be loaded), whether the layer it picked is TBB, or OpenMP by the user's choice."""
    global _READY
    if _READY is None:
        chosen = str(config.THREADING_LAYER).lower() != "default"
        if not chosen or str(config.THREADING_LAYER).lower() in ("tbb", "safe", "forksafe", "threadsafe"):
            _load_tbb()
        try:
            numba.get_num_threads()  # starts the threading layer, so that it can be asked which one it is
        except ValueError:  # the layer named in NUMBA_THREADING_LAYER cannot load: BLAS does the work
            _READY = False
            return _READY
        layer = numba.threading_layer()
        _READY = layer == "tbb" or (layer == "omp" and chosen)
    return _READY


def use(threads: int) -> int:
    """Numba's threads for this thread's next parallel kernels: ``threads`` (the run's, as the trainer
    resolved them: ``cores.threads_for``), at most the threads Numba started; returns the count."""
    count = max(1, min(threads, config.NUMBA_NUM_THREADS))
    numba.set_num_threads(count)
    return count
