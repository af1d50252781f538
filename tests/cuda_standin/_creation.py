"""Array creation and host transfers of the stand-in: ``array``/``asarray``/``asnumpy``, ``empty``/
``zeros``/``ones``/``full`` (and ``_like``), ``arange``.

Rules from cupy/_core/core.pyx ``array``/``_array_default`` and cupy/__init__.py ``asnumpy``: a device
array passes through (cast, copied only if asked); host data of one element is written by a fill kernel
(device work, legal during capture, the value frozen); anything larger is an H2D copy, refused while the
current stream captures (cupy/cuda/memory.pyx ``copy_from_host_async``); object arrays are refused
("Unsupported dtype"). ``empty`` memory is not initialised (see _memory.py); ``zeros`` is a memset and
``arange`` a kernel, so both are recorded during capture like any other device work.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _issue, _stream
from ._array import ndarray, run_into

_KINDS = "biufc"  # bool, integers, floats, complex: what CuPy arrays hold (no objects, strings, dates)


def _dtype(dtype: Any) -> np.dtype:
    dtype = np.dtype(dtype)
    if dtype.kind not in _KINDS:
        raise ValueError(f"Unsupported dtype {dtype}")
    return dtype


def _fill(out: ndarray, value: Any) -> ndarray:
    return run_into(lambda dst, v: dst.__setitem__(Ellipsis, v), out, value)


def array(obj: Any, dtype: Any = None, copy: bool | None = True, order: str = "K", subok: bool = False,
          ndmin: int = 0, *, blocking: bool = False) -> ndarray:
    if isinstance(obj, ndarray):
        out = obj.astype(obj.dtype if dtype is None else dtype, order=order, copy=bool(copy))
        return out.reshape((1,) * (ndmin - out.ndim) + out.shape) if ndmin > out.ndim else out
    if hasattr(obj, "__cuda_array_interface__"):
        raise NotImplementedError("the CuPy stand-in cannot adopt another library's device memory")
    if isinstance(obj, (list, tuple)) and any(isinstance(x, ndarray) for x in obj):
        raise NotImplementedError("the CuPy stand-in does not cover sequences of device arrays")
    host = np.array(obj, dtype=dtype, ndmin=ndmin, order="F" if order == "F" else "C")
    out = ndarray(host.shape, _dtype(host.dtype))
    if host.ndim == 0:
        return _fill(out, host[()])  # CuPy's a.fill(a_cpu): a kernel, no transfer
    _issue.check_host_transfer("H2D")
    run_into(lambda dst: dst.__setitem__(Ellipsis, host), out)  # host: np.array's own copy of obj
    if blocking:
        _stream.get_current_stream().synchronize()
    return out


def asarray(a: Any, dtype: Any = None, order: str | None = None, *, blocking: bool = False) -> ndarray:
    return array(a, dtype, False, order or "K", blocking=blocking)


def asnumpy(a: Any, stream: Any = None, order: str = "C", out: np.ndarray | None = None, *,
            blocking: bool = True) -> np.ndarray:
    if isinstance(a, ndarray):
        return a.get(stream=stream, order=order, out=out, blocking=blocking)
    host = np.asarray(a, order=order)
    if out is not None:
        out[...] = host
        return out
    return host


def empty(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return ndarray(shape, _dtype(dtype), order=order)


def zeros(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return _fill(empty(shape, dtype, order), 0)


def ones(shape: Any, dtype: Any = float, order: str = "C") -> ndarray:
    return _fill(empty(shape, dtype, order), 1)


def full(shape: Any, fill_value: Any, dtype: Any = None, order: str = "C") -> ndarray:
    if dtype is None:
        dtype = fill_value.dtype if isinstance(fill_value, ndarray) else np.array(fill_value).dtype
    if isinstance(fill_value, ndarray):
        out = empty(shape, dtype, order)
        run_into(lambda dst, v: dst.__setitem__(Ellipsis, v), out, fill_value._a)
        return out
    return _fill(empty(shape, dtype, order), np.asarray(fill_value, dtype=dtype)[()])


def _like(a: ndarray, dtype: Any, shape: Any) -> ndarray:
    return empty(a.shape if shape is None else shape, a.dtype if dtype is None else dtype)


def empty_like(a: ndarray, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    return _like(a, dtype, shape)


def zeros_like(a: ndarray, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    return _fill(_like(a, dtype, shape), 0)


def ones_like(a: ndarray, dtype: Any = None, order: str = "K", subok: Any = None, shape: Any = None) -> ndarray:
    return _fill(_like(a, dtype, shape), 1)


def arange(start: Any, stop: Any = None, step: Any = 1, dtype: Any = None) -> ndarray:
    values = np.arange(0, start, step, dtype=dtype) if stop is None else np.arange(start, stop, step, dtype=dtype)
    out = ndarray(values.shape, _dtype(values.dtype))
    return run_into(lambda dst: dst.__setitem__(Ellipsis, values), out)  # a kernel: the values are its indices

