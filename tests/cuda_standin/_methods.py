"""The operators and array methods of the stand-in's ``ndarray`` (installed on the class by ``install``).

Operator rules from cupy/_core/core.pyx: a binary operator with a device array on the right calls the
ufunc; otherwise, unless the right operand defers (``__array_ufunc__ = None`` or a higher
``__array_priority__`` without it: ``_should_use_rop``), it calls NumPy's ufunc, whose dispatch comes back
to ``__array_ufunc__`` (so a NumPy array operand raises ``TypeError: Unsupported type``); in-place
operators call the ufunc with ``out=self``; ``==``/``!=`` with None or an object without ``__eq__`` give
all-False/all-True arrays. Methods follow CuPy's signatures; ``reshape`` and ``ravel`` give views when
the layout allows, copies (device work) otherwise.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from . import _indexing, _ufuncs
from ._array import ndarray, run_new, view

_HANDLED = object()
_U = _ufuncs.UFUNCS


def _should_use_rop(x: Any, y: Any) -> bool:
    y_ufunc = getattr(y, "__array_ufunc__", _HANDLED)
    if y_ufunc is not _HANDLED:
        return y_ufunc is None
    return getattr(x, "__array_priority__", 0) < getattr(y, "__array_priority__", 0)


def _binary(name: str) -> Any:
    ours, theirs = _U[name], getattr(np, name)

    def op(x: ndarray, y: Any) -> Any:
        if isinstance(y, ndarray):
            return ours(x, y)
        if _should_use_rop(x, y):
            return NotImplemented
        return theirs(x, y)

    def rop(x: ndarray, y: Any) -> Any:  # y OP x, reached when y's own operator gave up
        return ours(y, x)

    def iop(x: ndarray, y: Any) -> ndarray:
        return ours(x, y, out=x)

    return op, rop, iop


def _compare(name: str) -> Any:
    ours, theirs = _U[name], getattr(np, name)

    def op(x: ndarray, y: Any) -> Any:
        if isinstance(y, ndarray):
            return ours(x, y)
        if _should_use_rop(x, y):
            return NotImplemented
        if isinstance(y, np.ndarray) and y.ndim == 0:
            y = y.item()
        if name in ("equal", "not_equal") and (y is None or type(y).__eq__ is object.__eq__):
            from ._creation import full

            return full(x.shape, name == "not_equal", dtype=np.bool_)
        return theirs(x, y)

    return op


def __pow__(x: ndarray, y: Any, modulo: Any = None) -> Any:
    if (type(y) is int and y == 2) or (type(y) is float and y == 2.0):
        return _U["square"](x)
    if type(y) is float and y == 0.5:
        return _U["sqrt"](x)
    if type(y) is float and y == -1.0:
        return _U["reciprocal"](x)
    pow_op, _, _ = _binary("power")
    return pow_op(x, y)


def __matmul__(x: ndarray, y: Any) -> Any:
    """``@``; CuPy defines no ``@=``, so Python falls back to ``a = a @ b``."""
    from . import _linalg  # late: _linalg imports _array, which imports this module

    if isinstance(y, ndarray):
        return _linalg.matmul(x, y)
    return NotImplemented if _should_use_rop(x, y) else np.matmul(x, y)


def __rmatmul__(x: ndarray, y: Any) -> Any:
    from . import _linalg

    return _linalg.matmul(y, x)


def reshape(self: ndarray, *shape: Any, order: str = "C") -> ndarray:
    shape = shape[0] if len(shape) == 1 and not np.isscalar(shape[0]) else shape
    v = self._a.reshape(shape, order=order)  # NumPy's rule: a view whenever the layout allows
    if v.size == 0 or np.may_share_memory(v, self._a):
        return view(self, v)
    return run_new(lambda x: x.reshape(shape, order=order), self._a)  # a copy is device work


def ravel(self: ndarray, order: str = "C") -> ndarray:
    return reshape(self, -1, order=order)


def transpose(self: ndarray, *axes: Any) -> ndarray:
    return view(self, self._a.transpose(*axes))


def astype(self: ndarray, dtype: Any, order: str = "K", casting: Any = None, subok: Any = None,
           copy: bool = True) -> ndarray:
    dtype = np.dtype(dtype)
    if not copy and dtype == self.dtype:
        return self
    return run_new(lambda x: x.astype(dtype, order=order), self._a)


def copy(self: ndarray, order: str = "C") -> ndarray:
    return run_new(lambda x: np.array(x, order=order), self._a)


def fill(self: ndarray, value: Any) -> None:
    _indexing.setitem(self, Ellipsis, value)


def install(cls: type) -> None:
    """Put the operators and methods on ``cls`` (the ndarray class of _array.py)."""
    for name, dunder in (("add", "add"), ("subtract", "sub"), ("multiply", "mul"), ("true_divide", "truediv"),
                         ("floor_divide", "floordiv"), ("remainder", "mod"),
                         ("left_shift", "lshift"), ("right_shift", "rshift"), ("bitwise_and", "and"),
                         ("bitwise_or", "or"), ("bitwise_xor", "xor"), ("power", "pow")):
        op, rop, iop = _binary(name)
        setattr(cls, f"__{dunder}__", op)
        setattr(cls, f"__r{dunder}__", rop)
        setattr(cls, f"__i{dunder}__", iop)
    cls.__pow__, cls.__matmul__, cls.__rmatmul__ = __pow__, __matmul__, __rmatmul__
    for name, dunder in (("less", "lt"), ("less_equal", "le"), ("greater", "gt"), ("greater_equal", "ge"),
                         ("equal", "eq"), ("not_equal", "ne")):
        setattr(cls, f"__{dunder}__", _compare(name))
    cls.__neg__ = lambda x: _U["negative"](x)
    cls.__pos__ = lambda x: _U["positive"](x)
    cls.__abs__ = lambda x: _U["absolute"](x)
    cls.__invert__ = lambda x: _U["invert"](x)
    cls.__getitem__ = _indexing.getitem
    cls.__setitem__ = _indexing.setitem
    for method in (reshape, ravel, transpose, astype, copy, fill):
        setattr(cls, method.__name__, method)
    cls.view = lambda self, dtype=None: view(self, self._a if dtype is None else self._a.view(dtype))
    cls.sum = lambda self, axis=None, dtype=None, out=None, keepdims=False: \
        _ufuncs.sum(self, axis, dtype, out, keepdims)
    cls.mean = lambda self, axis=None, dtype=None, out=None, keepdims=False: \
        _ufuncs.mean(self, axis, dtype, out, keepdims)
    cls.max = lambda self, axis=None, out=None, keepdims=False: _ufuncs.amax(self, axis, out, keepdims)
    cls.min = lambda self, axis=None, out=None, keepdims=False: _ufuncs.amin(self, axis, out, keepdims)
    cls.any = lambda self, axis=None, out=None, keepdims=False: _ufuncs.any(self, axis, out, keepdims)
    cls.all = lambda self, axis=None, out=None, keepdims=False: _ufuncs.all(self, axis, out, keepdims)
    cls.argmax = lambda self, axis=None, out=None, dtype=None, keepdims=False: \
        _ufuncs.argmax(self, axis, dtype, out, keepdims)
    cls.argmin = lambda self, axis=None, out=None, dtype=None, keepdims=False: \
        _ufuncs.argmin(self, axis, dtype, out, keepdims)
    cls.argsort = lambda self, axis=-1, kind=None: _ufuncs.argsort(self, axis, kind)
    cls.take = lambda self, indices, axis=None, out=None: _ufuncs.take(self, indices, axis, out)
    cls.dot = lambda self, b, out=None: __import__(__package__ + "._linalg", fromlist=["dot"]).dot(self, b, out)
