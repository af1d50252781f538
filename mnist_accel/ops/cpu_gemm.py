"""Whether our first-layer GEMM (``kernels.gemm_cpu``) runs here, and Numba's threads for it.

The rule, fixed per machine and environment rather than timed (so a seed gives the same model every
run): the CPU has AVX-512 (without it the kernel's 16 vector accumulators spill); NumPy's BLAS does not
run AVX-512 kernels itself (OpenBLAS names its kernels; against its SkylakeX kernels on the EPYC,
gemm_cpu made fits 8-16% slower, against its Haswell kernels 1.1-1.3x faster); and Numba's threads are
on a layer fit for it.

A training step hands its two big GEMMs to both cores hundreds of times a second, so the hand-off
must cost microseconds: Numba's TBB and OpenMP layers measured 2.3 and 1.3 us a parallel region on the
2-core machine, its own workqueue 100 us. OpenMP is not an option by default: GNU OpenMP kills any
forked child that runs a parallel region once the parent has used one ("fork() called from a process
already using GNU OpenMP"), and scikit-learn users fork. So the ops use Numba's threads only under TBB
(a dependency; its wheel puts ``libtbb.so.12`` where the loader does not look, so it is loaded here
before Numba picks a layer), or under OpenMP when the user named it in ``NUMBA_THREADING_LAYER``; never
under workqueue (too slow a hand-off, and it aborts when two threads launch at once, as a threaded
grid search would). Elsewhere BLAS does the products, as before.
"""

from __future__ import annotations

import ctypes
import os
from importlib import metadata

import numba
from llvmlite import binding
from numba.core import config

AVX512 = bool(binding.get_host_cpu_features().get("avx512f", False))
AVX512_KERNELS = ("skylakex", "cooperlake", "sapphirerapids")  # OpenBLAS's kernel sets that use AVX-512
_READY: bool | None = None
_RUNS: bool | None = None


def blas_has_avx512() -> bool:
    """Whether NumPy's BLAS runs AVX-512 kernels: OpenBLAS says which it picked (``OPENBLAS_CORETYPE`` can
    hold it to older ones); any other BLAS (MKL, BLIS) is taken to use them."""
    from threadpoolctl import threadpool_info

    blas = [i for i in threadpool_info() if i.get("user_api") == "blas"]
    ours = [i for i in blas if "numpy" in str(i.get("filepath", ""))] or blas
    return any(i.get("internal_api") != "openblas" or str(i.get("architecture", "")).lower() in AVX512_KERNELS
               for i in ours)


def runs_here() -> bool:
    """The rule above (worked out once per process)."""
    global _RUNS
    if _RUNS is None:
        _RUNS = AVX512 and not blas_has_avx512() and parallel_ok()
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
    """Numba's threads for this thread's next parallel kernels: ``threads``, or every core Numba has for 0;
    returns the count."""
    count = min(threads, config.NUMBA_NUM_THREADS) if threads > 0 else config.NUMBA_NUM_THREADS
    numba.set_num_threads(count)
    return count
