"""Backend selection: the only module that imports CuPy.

``auto`` picks ``cuda`` when CuPy imports and a device actually works, else ``numba`` when Numba
imports, else ``numpy``. Why CUDA could not be used is remembered and raised only when it is asked
for. Trainers receive ``backend.xp`` and never ask again; ``to_device``/``to_host`` are the only moves.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_accel.backends import cuda_reasons
from mnist_accel.errors import BackendUnavailable


@dataclass(frozen=True)
class Backend:
    name: str  # numpy, numba or cuda
    xp: Any  # the array namespace the trainer computes with
    device: str  # human-readable device name

    @property
    def on_gpu(self) -> bool:
        return self.name == "cuda"

    def available_bytes(self) -> int | None:
        """Free memory where arrays of this backend live (None if unknown)."""
        if self.on_gpu:
            return int(self.xp.cuda.runtime.memGetInfo()[0])
        try:
            with open("/proc/meminfo") as f:
                for line in f:
                    if line.startswith("MemAvailable:"):
                        return int(line.split()[1]) * 1024
        except OSError:
            pass
        try:
            return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        except (ValueError, OSError, AttributeError):
            return None


@functools.cache
def _cuda_probe() -> tuple[Any, str]:
    """(cupy module or None, device name or the reason CUDA is unusable, in one line: ``cuda_reasons``)."""
    try:
        import cupy
    except ImportError as exc:
        if exc.name == "cupy":
            return None, f"CuPy is not installed; {cuda_reasons.INSTALL}"
        return None, cuda_reasons.missing_piece(str(exc)) or f"CuPy failed to import (ImportError: {exc})"
    except Exception as exc:  # a broken CUDA install can fail at import with any error
        return None, cuda_reasons.missing_piece(str(exc)) or f"CuPy failed to import ({type(exc).__name__}: {exc})"
    try:
        cupy.zeros(1).sum().item()  # CuPy is lazy: only real work proves a device (and NVRTC) is usable
        a = cupy.ones((2, 2), dtype=cupy.float32)
        (a @ a).sum().item()  # and cuBLAS
        props = cupy.cuda.runtime.getDeviceProperties(cupy.cuda.Device().id)
        return cupy, props["name"].decode()
    except Exception as exc:
        text = " ".join(f"{type(exc).__name__}: {exc}".split())
        return None, cuda_reasons.explain(text, _runtime_version(cupy), cuda_reasons.driver_version())


def _runtime_version(cupy: Any) -> int | None:
    """The CUDA version this CuPy was built for (its wheels' toolkit), without asking the driver."""
    try:
        return int(cupy.cuda.runtime.runtimeGetVersion())
    except Exception:
        return None


def loop_on_gpu_reason() -> str | None:
    """None when numba-cuda can compile the GPU loop (it needs NVVM), else a one-line reason."""
    try:
        from numba.cuda.cudadrv import nvvm

        nvvm.NVVM()
    except ImportError as exc:
        if exc.name in ("numba", "numba.cuda", "numba_cuda"):
            return f"the GPU loop needs numba-cuda, which is not installed; {cuda_reasons.INSTALL}"
        return cuda_reasons.missing_piece(str(exc)) or f"numba-cuda cannot compile ({exc})"
    except Exception as exc:
        text = " ".join(str(exc).split())
        return cuda_reasons.missing_piece(text) or f"numba-cuda cannot compile ({type(exc).__name__}: {text})"
    return None


@functools.cache
def numba_available() -> bool:
    try:
        import numba  # noqa: F401
    except ImportError:
        return False
    return True


def cuda_unavailable_reason() -> str | None:
    """None when CUDA works, else a one-line reason."""
    cupy, info = _cuda_probe()
    return None if cupy is not None else info


def gpu_count() -> int:
    """CUDA devices this process can use (0 where CUDA does not work)."""
    cupy, _ = _cuda_probe()
    return 0 if cupy is None else int(cupy.cuda.runtime.getDeviceCount())


def cpu_name() -> str:
    import platform

    return f"CPU ({platform.machine()}, {os.cpu_count()} cores)"


def get_backend(name: str = "auto") -> Backend:
    """Resolve a backend name; raises BackendUnavailable with the reason where it cannot run."""
    if name == "auto":
        name = "cuda" if cuda_unavailable_reason() is None else ("numba" if numba_available() else "numpy")
    if name == "cuda":
        cupy, info = _cuda_probe()
        if cupy is None:
            raise BackendUnavailable(f"--backend cuda cannot run: {info}")
        return Backend("cuda", cupy, info)
    if name == "numba" and not numba_available():
        raise BackendUnavailable("--backend numba cannot run: Numba is not installed; pip install numba")
    if name not in ("numpy", "numba"):
        raise BackendUnavailable(f"unknown backend {name!r}; choose auto, numpy, numba or cuda")
    return Backend(name, np, cpu_name())


def to_device(array: Any, backend: Backend) -> Any:
    return backend.xp.asarray(array)


def to_host(array: Any) -> np.ndarray | Any:
    """A NumPy copy of a device array (numbers pass through); the one place data leaves the GPU."""
    if hasattr(array, "get"):
        return array.get()
    return np.asarray(array) if isinstance(array, np.ndarray) else array
