"""The stand-in's top-level namespace: what ``import cupy`` gives under ``cuda_standin.activate()``.

It holds only names CuPy itself has (each checked against CuPy's namespace), and of those only what the
project uses plus their obvious companions; any other name raises AttributeError saying the stand-in
does not cover it, so a new use in the project shows up in the tests. As cupy/__init__.py does, the
default memory pool's ``malloc`` is the global allocator from import on.
"""

import builtins as _builtins
import sys as _sys
import types as _types
from typing import Any as _Any

import numpy as _np

from . import _linalg, cuda  # noqa: F401
from ._array import ndarray  # noqa: F401
from ._creation import arange, array, asarray, asnumpy, empty, empty_like, full, ones, ones_like, zeros, zeros_like  # noqa: F401
from ._linalg import dot, matmul  # noqa: F401
from ._raw import RawKernel, RawModule  # noqa: F401
from ._ufuncs import UFUNCS as _UFUNCS, all, amax, amin, any, argmax, argmin, argsort, mean, sum, take, ufunc  # noqa: F401

globals().update(_UFUNCS)
max, min = amax, amin  # noqa: A001  (cupy.max and cupy.min are amax and amin)

# CuPy re-exports NumPy's scalar types and dtype (cupy/__init__.py: `from numpy import ...`).
from numpy import (  # noqa: E402,F401
    bool_,
    complex64,
    complex128,
    dtype,
    float16,
    float32,
    float64,
    int8,
    int16,
    int32,
    int64,
    uint8,
    uint16,
    uint32,
    uint64,
)

newaxis, nan, inf, pi, e = None, _np.nan, _np.inf, _np.pi, _np.e

_core = _types.ModuleType("cupy._core", "The part of cupy._core the project reaches: the linalg compute type.")
_core.ndarray = ndarray  # type: ignore[attr-defined]
_core._routines_linalg = _linalg  # type: ignore[attr-defined]

_default_memory_pool = cuda.MemoryPool()
cuda.set_allocator(_default_memory_pool.malloc)


def get_default_memory_pool() -> cuda.MemoryPool:
    return _default_memory_pool


def get_array_module(*args: _Any) -> _types.ModuleType:
    return _sys.modules[__name__] if _builtins.any(isinstance(a, ndarray) for a in args) else _np


def is_available() -> bool:
    return True


def __getattr__(name: str) -> _Any:
    raise AttributeError(f"the CuPy stand-in (tests/cuda_standin) does not cover cupy.{name}; "
                         "add it there if the project now uses it")
