"""Kernels compiled as C callbacks and called from Python: what a kernel called once per epoch or per training
set is spared on a first run.

Numba gives every ``njit`` function that Python calls a wrapper that unboxes each argument, and compiles it
with the function: for the loop's kernels (16 and 30 arguments) it took longer than their loops. A ``cfunc``
(Numba's public C-callback API) has no such wrapper; ``c_kernel`` compiles one and returns it with a ctypes
function for its address whose pointer parameters take C-contiguous NumPy arrays of the pointed-to dtype,
checked by NumPy's ``ndpointer`` (a wrong array is a ``ctypes.ArgumentError``, never a stray write), and whose
call releases the GIL, as ``nogil`` kernels do. The callbacks index their pointers directly (``carray``
views compile code of their own).
"""

from __future__ import annotations

import ctypes
from collections.abc import Callable
from typing import NamedTuple

import numpy as np
from numba import cfunc, types
from numba.np.numpy_support import as_dtype

_SCALARS = {types.int64: ctypes.c_int64, types.int32: ctypes.c_int32, types.float64: ctypes.c_double,
            types.float32: ctypes.c_float, types.boolean: ctypes.c_bool}


def _ctype(t):
    if isinstance(t, types.CPointer):
        return np.ctypeslib.ndpointer(dtype=as_dtype(t.dtype), flags="C_CONTIGUOUS")
    return _SCALARS[t]


class CKernel(NamedTuple):
    cfunc: object  # Numba's compiled callback (its address, its compiler's options)
    call: Callable  # the callback, called from Python with arrays for its pointers


def c_kernel(py_func, sig, **options) -> CKernel:
    """``py_func`` compiled now as a C callback with Numba signature ``sig`` (cached on disk), and a Python
    callable for it. ``sig``'s arguments are pointers and the scalar types above; it returns nothing
    (kernels write their results into an array)."""
    if sig.return_type != types.void:
        raise TypeError("c_kernel: kernels return nothing (they write their results into an array)")
    fn = cfunc(sig, cache=True, nogil=True, **options)(py_func)
    prototype = ctypes.CFUNCTYPE(None, *(_ctype(t) for t in sig.args))
    return CKernel(fn, prototype(fn.address))
