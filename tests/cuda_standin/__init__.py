"""A CuPy stand-in for the tests: the CuPy API this project uses, NumPy underneath, faithful to CuPy and
CUDA where bugs hide (no implicit host copies, CuPy's kernel-argument conversion checked against the C
parameters, stream capture that records instead of running and refuses host syncs and cuBLAS, streams
whose work waits for a synchronisation point so a missing wait reads stale data, memory that comes from
the allocator in force and a pool that splits and merges blocks as CuPy's does, shared memory that is
limited and starts poisoned, kernels found only by the names CUDA knows them by). CuPy's source is the
authority for each rule; every module names the CuPy file its rules come from.

``activate()`` makes ``import cupy`` give the stand-in (``xp``), so ``mnist_accel.backends.selection`` probes and
uses it through its real code path: ``get_backend("cuda").xp`` is the stand-in while
``get_backend("auto")`` keeps choosing a CPU backend. ``python -m cuda_standin.run -m MODULE ARGS`` runs
a module (or ``-c CODE``, or a script) under it, for CLI tests in a subprocess. Kernels of
``RawModule``/``RawKernel`` are compiled for the CPU by ``cuda_standin.cpu_runtime``.

Modules: _runtime (cupy.cuda.runtime/driver), _stream (streams and their queues), _issue (issuing work,
host transfers), _event (events), _graph (capture, graphs), _memory (memory, allocators), _pool (memory
pools), _array (the device array), _methods (its operators and methods), _indexing, _ufuncs, _creation,
_linalg, _raw (RawModule/RawKernel), cuda (cupy.cuda), xp (cupy), run; the CPU runtime: cpu_runtime
(building and loading kernels), _cusource (reading the source), _symbols (the library's symbols),
_cpukernel (launching), cuda_on_cpu.h (the execution model).
"""

from __future__ import annotations

import contextlib
import sys
import types
from collections.abc import Iterator

REASON = "only a CuPy stand-in is active; auto never picks it"
_MODULES = ("cupy", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.driver", "cupy._core",
            "cupy._core._routines_linalg")

__all__ = ["REASON", "activate"]


@contextlib.contextmanager
def activate(as_gpu: bool = False) -> Iterator[types.ModuleType]:
    """Within the block ``import cupy`` (and its submodules the project reaches) give the stand-in, and
    ``mnist_accel.backends.selection`` forgets its cached CuPy probe, so ``get_backend("cuda")`` returns a backend
    whose ``xp`` is the stand-in; ``cuda_unavailable_reason()`` still names a reason, so ``auto`` never
    picks it (with ``as_gpu``, it names none: ``auto`` picks it and ``gpu`` tests run on it, as
    ``bench/gpu.sh --standin`` does). Everything (a real CuPy in ``sys.modules`` too) is restored on exit.
    Yields the stand-in.
    A capture still open at exit is ended and reported (RuntimeError), unless the block raised."""
    from mnist_accel.backends import selection as backend

    from . import _linalg, _runtime, _stream, xp

    replacement = {"cupy": xp, "cupy.cuda": xp.cuda, "cupy.cuda.runtime": _runtime,
                   "cupy.cuda.driver": xp.cuda.driver, "cupy._core": xp._core,
                   "cupy._core._routines_linalg": _linalg}
    saved_modules = {name: sys.modules.get(name) for name in _MODULES}
    saved_reason = backend.cuda_unavailable_reason
    sys.modules.update(replacement)
    backend._cuda_probe.cache_clear()
    backend.cuda_unavailable_reason = (lambda: None) if as_gpu else (lambda: REASON)
    failed = True
    try:
        yield xp
        failed = False
    finally:
        for name, module in saved_modules.items():
            if module is None:
                sys.modules.pop(name, None)
            else:
                sys.modules[name] = module
        backend.cuda_unavailable_reason = saved_reason
        backend._cuda_probe.cache_clear()
        left = list(_stream._capturing)
        for s in left:
            with contextlib.suppress(Exception):
                s.end_capture()
        if left and not failed:
            raise RuntimeError(f"{len(left)} stream(s) were still capturing when activate() ended")
