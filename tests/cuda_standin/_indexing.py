"""``ndarray.__getitem__``/``__setitem__`` of the stand-in, after cupy/_core/_routines_indexing.pyx.

Basic indexing (ints, slices, None, Ellipsis) gives views sharing memory, a 0-d view for a full integer
index. Integer arrays (device arrays, or host lists/arrays copied to the device first: an H2D transfer)
select by ``take``/scatter kernels that wrap out-of-range indices per axis instead of raising. A boolean
device mask must count its True values on the host to shape the result, a D2H transfer (``getitem``
only; a masked assignment needs no count). Assigning a host array through basic indexing is
``fill``, which refuses non-scalars (gh-2079: "Refuse assignment from CPU arrays"); through advanced
indexing the value is copied to the device.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _issue
from ._array import ndarray, run_into, run_new, view

_BAD_INDEX = ("only integers, slices (`:`), ellipsis (`...`), numpy.newaxis (`None`) and integer or "
              "boolean arrays are valid indices")


def _parts(key: Any) -> tuple[list[Any], bool]:
    """The index as a list of basic parts and device arrays, and whether any part is an array."""
    from ._creation import array

    parts, advanced = [], False
    for s in key if isinstance(key, tuple) else (key,):
        if s is None or s is Ellipsis or isinstance(s, slice):
            parts.append(s)
            continue
        if isinstance(s, (int, np.integer)) and not isinstance(s, (bool, np.bool_)):
            parts.append(int(s))
            continue
        if isinstance(s, (list, tuple, np.ndarray, bool, np.bool_)):
            converted = array(s)  # a host index goes to the device first
            s = converted.astype(np.int32) if isinstance(s, (list, tuple)) and converted.size == 0 else converted
        if not isinstance(s, ndarray):
            raise IndexError(_BAD_INDEX)
        if s.dtype.kind not in "biu":
            raise IndexError(f"arrays used as indices must be of integer or boolean type (actual: {s.dtype.type})")
        parts.append(s)
        advanced = True
    return parts, advanced


def _axes(parts: list[Any], ndim: int) -> list[int | None]:
    """The first axis of the indexed array each part applies to (None for None and Ellipsis)."""
    width = [p.ndim if isinstance(p, ndarray) and p.dtype.kind == "b" else 1 for p in parts]
    used = sum(w for p, w in zip(parts, width) if p is not None and p is not Ellipsis)
    axes, axis = [], 0
    for p, w in zip(parts, width):
        if p is None or p is Ellipsis:
            axes.append(None)
            axis += (ndim - used) if p is Ellipsis else 0
        else:
            axes.append(axis)
            axis += w
    return axes


def _kernel_key(a: ndarray, parts: list[Any]) -> tuple[list[Any], list[int | None]]:
    """Parts with device arrays as NumPy views (read when the kernel runs), and the axis length by which
    each integer array wraps (None for other parts)."""
    if sum(1 for p in parts if p is Ellipsis) > 1:
        raise IndexError("an index can only have a single ellipsis ('...')")
    shape, axes = a.shape, _axes(parts, a.ndim)
    key, wrap = [], []
    for p, ax in zip(parts, axes):
        is_int_array = isinstance(p, ndarray) and p.dtype.kind != "b"
        key.append(p._a if isinstance(p, ndarray) else p)
        wrap.append(shape[ax] if is_int_array and ax is not None and ax < len(shape) and shape[ax] else None)
    return key, wrap


def _resolve(key: list[Any], wrap: list[int | None]) -> tuple[Any, ...]:
    return tuple(np.mod(k, n) if n else k for k, n in zip(key, wrap))


def getitem(a: ndarray, key: Any) -> ndarray:
    parts, advanced = _parts(key)
    if not advanced:
        if Ellipsis not in parts:
            parts.append(Ellipsis)  # a full integer index gives a 0-d view, not a NumPy scalar
        return view(a, a._a[tuple(parts)])
    if any(isinstance(p, ndarray) and p.dtype.kind == "b" for p in parts):
        _issue.check_host_transfer("D2H")  # CuPy reads the number of True values back to the host
    kkey, wrap = _kernel_key(a, parts)
    return run_new(lambda src, *k: src[_resolve(list(k), wrap)], a._a, *kkey)


def _squeeze_leading_unit_dims(v: np.ndarray) -> np.ndarray:
    while v.ndim and v.shape[0] == 1:
        v = v[0]
    return v


def setitem(a: ndarray, key: Any, value: Any) -> None:
    from ._creation import array

    parts, advanced = _parts(key)
    if isinstance(value, ndarray):
        v: Any = _squeeze_leading_unit_dims(value._a)
    elif advanced:
        v = array(value, dtype=a.dtype)._a  # host values are copied to the device (H2D)
    else:
        host = np.asarray(value, dtype=a.dtype)  # ndarray.fill: scalars only
        if host.shape != ():
            raise ValueError("non-scalar numpy.ndarray cannot be used for fill")
        v = host[()]
    if not advanced:
        target = a._a[tuple(parts) + (() if Ellipsis in parts else (Ellipsis,))]
        run_into(lambda dst, x: dst.__setitem__(Ellipsis, x), view(a, target), v)
        return
    kkey, wrap = _kernel_key(a, parts)
    run_into(lambda dst, x, *k: dst.__setitem__(_resolve(list(k), wrap), x), a, v, *kkey)
