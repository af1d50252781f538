"""Elementwise functions, reductions, ``take`` and ``argsort`` of the stand-in, computed by NumPy on the
device memory's views (types promote as in NumPy 2, which is what CuPy 14 follows: NEP 50).

Rules from CuPy: a ufunc's operands are device arrays or Python/NumPy scalars, anything else (a NumPy
array too) is ``TypeError: Unsupported type`` (cupy/_core/_kernel.pyx, _scalar.pyx); ``out`` must be a
device array (``TypeError: Output arguments must be cupy.ndarray``); ``take`` wraps out-of-range indices
instead of raising and wants ``out`` of the source's dtype and the result's shape
(cupy/_core/_routines_indexing.pyx); reductions return 0-d device arrays, never host scalars.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._array import ndarray, operand, run_into, run_new


class ufunc:
    """A CuPy ufunc: called with device arrays or scalars; ``out`` and ``dtype`` as in CuPy."""

    def __init__(self, np_ufunc: np.ufunc) -> None:
        self._np = np_ufunc
        self.__name__, self.nin, self.nout = np_ufunc.__name__, np_ufunc.nin, np_ufunc.nout

    def __repr__(self) -> str:
        return f"<ufunc '{self.__name__}'>"

    def __call__(self, *args: Any, out: ndarray | None = None, dtype: Any = None,
                 casting: str = "same_kind") -> ndarray:
        if len(args) == self.nin + 1 and out is None:  # the output may be given positionally
            *args, out = args
        if len(args) != self.nin:
            raise TypeError(f"Wrong number of arguments for {self.__name__!r}. It must be {self.nin}, "
                            f"got {len(args)}")
        ins = [operand(a) for a in args]
        f, kw = self._np, {"dtype": dtype, "casting": casting}
        if out is None:
            return run_new(lambda *xs: f(*xs, **kw), *ins)
        if not isinstance(out, ndarray):
            raise TypeError("Output arguments must be cupy.ndarray")
        return run_into(lambda dst, *xs: f(*xs, out=dst, **kw), out, *ins)


_NAMES = ("add subtract multiply divide true_divide floor_divide remainder power negative positive absolute "
          "reciprocal square sqrt exp log log1p tanh maximum minimum isfinite isnan isinf invert bitwise_and "
          "bitwise_or bitwise_xor left_shift right_shift less less_equal greater greater_equal equal not_equal "
          "logical_not")
UFUNCS = {name: ufunc(getattr(np, name)) for name in _NAMES.split()}


def device(x: Any, name: str) -> ndarray:
    if not isinstance(x, ndarray):
        raise TypeError(f"Argument {name!r} has incorrect type (expected cupy._core.core._ndarray_base, "
                        f"got {type(x).__name__})")
    return x


def _reduce(np_func: Any, a: ndarray, axis: Any, out: ndarray | None, keepdims: bool, **kw: Any) -> ndarray:
    src = device(a, "a")._a
    if out is None:
        return run_new(lambda x: np_func(x, axis=axis, keepdims=keepdims, **kw), src)
    device(out, "out")
    return run_into(lambda dst, x: np_func(x, axis=axis, keepdims=keepdims, out=dst, **kw), out, src)


def sum(a: ndarray, axis: Any = None, dtype: Any = None, out: ndarray | None = None,  # noqa: A001
        keepdims: bool = False) -> ndarray:
    return _reduce(np.sum, a, axis, out, keepdims, dtype=dtype)


def amax(a: ndarray, axis: Any = None, out: ndarray | None = None, keepdims: bool = False) -> ndarray:
    return _reduce(np.max, a, axis, out, keepdims)


def amin(a: ndarray, axis: Any = None, out: ndarray | None = None, keepdims: bool = False) -> ndarray:
    return _reduce(np.min, a, axis, out, keepdims)


def mean(a: ndarray, axis: Any = None, dtype: Any = None, out: ndarray | None = None,
         keepdims: bool = False) -> ndarray:
    return _reduce(np.mean, a, axis, out, keepdims, dtype=dtype)


def any(a: ndarray, axis: Any = None, out: ndarray | None = None, keepdims: bool = False) -> ndarray:  # noqa: A001
    return _reduce(np.any, a, axis, out, keepdims)


def all(a: ndarray, axis: Any = None, out: ndarray | None = None, keepdims: bool = False) -> ndarray:  # noqa: A001
    return _reduce(np.all, a, axis, out, keepdims)


def _arg(np_func: Any, a: ndarray, axis: Any, dtype: Any, out: ndarray | None, keepdims: bool) -> ndarray:
    def compute(x: np.ndarray) -> np.ndarray:
        index = np_func(x, axis=axis, keepdims=keepdims)
        return index if dtype is None else index.astype(dtype)

    src = device(a, "a")._a
    if out is None:
        return run_new(compute, src)
    return run_into(lambda dst, x: dst.__setitem__(Ellipsis, compute(x)), device(out, "out"), src)


def argmax(a: ndarray, axis: Any = None, dtype: Any = None, out: ndarray | None = None,
           keepdims: bool = False) -> ndarray:
    return _arg(np.argmax, a, axis, dtype, out, keepdims)


def argmin(a: ndarray, axis: Any = None, dtype: Any = None, out: ndarray | None = None,
           keepdims: bool = False) -> ndarray:
    return _arg(np.argmin, a, axis, dtype, out, keepdims)


def argsort(a: ndarray, axis: int = -1, kind: str | None = None) -> ndarray:
    """Stable, as CuPy's (thrust) sort is; int64 indices."""
    return run_new(lambda x: np.argsort(x, axis=axis, kind="stable"), device(a, "a")._a)


def take(a: ndarray, indices: Any, axis: int | None = None, out: ndarray | None = None) -> ndarray:
    """Out-of-range indices wrap around (CuPy's take kernel computes ``index % range``)."""
    src = device(a, "a")._a
    if np.isscalar(indices):
        idx: Any = int(indices)
    else:
        if not isinstance(indices, ndarray):
            from ._creation import array

            indices = array(indices, dtype=int)
        idx = indices._a
    flat = axis is None  # over the flattened array, reshaped when it runs (a copy now would go stale)
    ax = 0 if flat else axis % src.ndim
    if out is None:
        return run_new(lambda x, i: np.take(x.reshape(-1) if flat else x, i, axis=ax, mode="wrap"), src, idx)
    device(out, "out")
    shape = (() if flat else src.shape[:ax]) + np.shape(idx) + (() if flat else src.shape[ax + 1:])
    if out.dtype != src.dtype:
        raise TypeError("Output dtype mismatch")
    if out.shape != shape:
        raise ValueError("Output shape mismatch")
    return run_into(lambda dst, x, i: np.take(x.reshape(-1) if flat else x, i, axis=ax, out=dst, mode="wrap"),
                    out, src, idx)
