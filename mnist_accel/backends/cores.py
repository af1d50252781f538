"""How many CPU threads this process's training may run: its share of the machine, not the machine.

Every process used to assume the whole machine, so two runs at once, or a fit inside each of a grid
search's workers, asked for twice the cores there are. The share is the least of:

- the cores this process may run on: its CPU affinity and a cgroup CPU quota (containers, CI runners),
  as ``joblib.cpu_count`` reads them (it also honours ``LOKY_MAX_CPU_COUNT``);
- the limits a parent set in the environment: joblib's loky workers get ``OMP_NUM_THREADS``,
  ``OPENBLAS_NUM_THREADS``, ``NUMBA_NUM_THREADS`` ... set to their share, Dask's nanny sets them to 1;
- a limit set in this process: ``threadpoolctl.threadpool_limits`` around the call, as NumPy's BLAS
  reports it;
- on a Dask worker, the worker's cores split between the task threads it runs at once.

An explicit ``--threads N`` (``TrainConfig.threads``) is the user's and is taken as it is.
"""

from __future__ import annotations

import os
import sys

from threadpoolctl import ThreadpoolController

# What joblib hands its workers (``joblib._parallel_backends.ParallelBackendBase.MAX_NUM_THREADS_VARS``)
# and what Dask's nanny sets: each says how many threads this process's numerical code should run.
LIMIT_VARIABLES = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "BLIS_NUM_THREADS",
                   "VECLIB_MAXIMUM_THREADS", "NUMBA_NUM_THREADS", "NUMEXPR_NUM_THREADS")
_CONTROLLER: ThreadpoolController | None = None


def controller() -> ThreadpoolController:
    """The thread pools of the libraries loaded in this process, looked up once (a lookup scans every loaded
    library, about a millisecond; limiting through the stored controller does not)."""
    global _CONTROLLER
    if _CONTROLLER is None:
        _CONTROLLER = ThreadpoolController()
    return _CONTROLLER


def _from_environment() -> int | None:
    """The least thread count the environment names (OpenMP's nested form "4,2" counts its first level)."""
    counts = []
    for name in LIMIT_VARIABLES:
        first = os.environ.get(name, "").split(",")[0].strip()
        if first.isdigit() and int(first) > 0:
            counts.append(int(first))
    return min(counts, default=None)


def _blas_limit() -> int | None:
    """The thread count NumPy's BLAS runs with now: its default, or what ``threadpool_limits`` set."""
    blas = [lib for lib in controller().lib_controllers if lib.user_api == "blas"]
    ours = [lib for lib in blas if "numpy" in str(lib.filepath)] or blas
    return min((lib.num_threads for lib in ours), default=None)


def _dask_share(cores: int) -> int | None:
    """On a Dask worker's task thread, the worker's cores over the tasks it runs at once."""
    if "distributed" not in sys.modules:  # never import Dask to ask
        return None
    try:
        from distributed import get_worker

        return max(1, cores // get_worker().state.nthreads)
    except (ImportError, ValueError, AttributeError):
        return None


def share() -> int:
    """The threads this process's training may use now (at least 1): see the module's docstring."""
    from joblib import cpu_count  # imported here: joblib is slow to import and only this needs it

    cores = cpu_count()
    limits = [cores, _from_environment(), _blas_limit(), _dask_share(cores)]
    return max(1, min(n for n in limits if n is not None))


def threads_for(requested: int) -> int:
    """``--threads``: the user's count, or this process's share for 0."""
    return requested if requested > 0 else share()
