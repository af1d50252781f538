"""Why CUDA cannot run here, in one line that says what to do: no NVIDIA driver at all (no GPU, or its
driver not installed), a driver older than the CUDA the wheels were built for, or a piece of the CUDA
toolkit that CuPy or numba-cuda could not load (NVRTC, cuBLAS, NVVM).

The CUDA runtime answers "driver version is insufficient" both where the driver is too old and where
there is none at all, which sent users to upgrade a driver for a GPU they do not have; so the driver is
looked up here directly (``libcuda``, through ctypes) before a CuPy error is read. This module imports
neither CuPy nor numba-cuda: it reads what they raised.
"""

from __future__ import annotations

import ctypes
import functools
import re

INSTALL = "pip install 'mnist-accel[cuda12]' (CUDA 12) or 'mnist-accel[cuda13]' (CUDA 13)"
# The least Linux driver each CUDA major version needs (NVIDIA's CUDA Toolkit release notes, table 3).
DRIVER_MINIMUM = {12: "525.60.13", 13: "580.65.06"}
# What each toolkit piece is for, as its library name appears in a loader's error.
PIECES = {"nvrtc": ("NVRTC", "CuPy compiles its kernels and ours with it"),
          "cublas": ("cuBLAS", "the matrix products"),
          "nvvm": ("NVVM", "numba-cuda compiles the GPU loop with it"),
          "nvjitlink": ("nvJitLink", "numba-cuda links the GPU loop with it")}


@functools.cache
def driver_version() -> int | None:
    """The CUDA version the installed NVIDIA driver supports (e.g. 12040 for 12.4), or None without one."""
    for name in ("libcuda.so.1", "libcuda.so", "nvcuda.dll"):
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        version = ctypes.c_int(0)
        if lib.cuDriverGetVersion(ctypes.byref(version)) == 0:
            return version.value
    return None


def _cuda(version: int) -> str:
    return f"{version // 1000}.{version % 1000 // 10}"


def missing_piece(text: str, extra: str | None = None) -> str | None:
    """The toolkit piece a loader's error names, as one line with the fix; None if it names none."""
    lowered = text.lower()
    for key, (name, purpose) in PIECES.items():
        if re.search(rf"\b(lib)?{key}", lowered):
            wheel = f"pip install 'mnist-accel[{extra}]' brings it" if extra else INSTALL + " brings it"
            return f"{name} is missing ({purpose}): {wheel}, or put the CUDA toolkit's libraries on LD_LIBRARY_PATH"
    return None


def explain(text: str, runtime: int | None, driver: int | None) -> str:
    """One line for a failure of CuPy's first device call, given the CUDA version CuPy was built for
    (``runtime``, e.g. 13000) and the driver's (``driver``, None where there is no driver at all)."""
    major = runtime // 1000 if runtime else None
    extra = f"cuda{major}" if major in DRIVER_MINIMUM else None
    if driver is None:
        return ("no NVIDIA driver found (libcuda is not installed): this machine has no NVIDIA GPU, or its "
                "driver is not installed; use --backend numba on the CPU")
    if runtime and driver < runtime and major in DRIVER_MINIMUM:
        other = "cuda12" if major == 13 else None
        hint = f", or install mnist-accel[{other}] instead" if other and driver >= 12000 else ""
        return (f"the NVIDIA driver supports CUDA {_cuda(driver)}, but CuPy was built for CUDA {_cuda(runtime)}: "
                f"upgrade the driver to {DRIVER_MINIMUM[major]} or later{hint}")
    piece = missing_piece(text, extra)
    if piece is not None:
        return piece
    if "NoDevice" in text or "no CUDA-capable device" in text:
        return f"no CUDA device found ({text})"
    if "InsufficientDriver" in text or "driver" in text.lower():
        return f"no usable CUDA driver ({text})"
    return f"the CUDA device is not usable ({text})"
