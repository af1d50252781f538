"""The stand-in's device array, ``ndarray``: a NumPy view of device memory (``_memory``), never rebound,
so views and pointers stay valid; and the two ways an operation is issued (``run_new``, ``run_into``):
run now on the legacy stream, queued on another stream, or recorded into its capture (_stream.py).

Rules from ``cupy/_core/core.pyx``: ``__array__`` raises TypeError (no implicit device-to-host
conversion); ``get``/``item``/``tolist``/``int``/``float``/``complex``/``bool``/``repr``/``str``/
``format`` copy to the host (a D2H transfer on the given or current stream, which then waits for that
stream's work; refused during capture: ``cupy/cuda/memory.pyx``);
``__cuda_array_interface__`` is version 3 with the current stream (never 0: the legacy stream is
exported as 1), strides None when C-contiguous, data (0, False) when empty; ``len`` and iteration
refuse 0-d arrays; there is no ``__index__``; binary operators go through NumPy's ufunc dispatch unless
the other operand is a device array or defers (``_should_use_rop``); ``x ** 2`` is ``square``, ``** 0.5``
is ``sqrt``, ``** -1.0`` is ``reciprocal``; ``__array_ufunc__`` serves only ``__call__`` and
``__array_function__`` only names the stand-in has.
"""

from __future__ import annotations

import functools
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np

from . import _issue, _memory, _stream

PYTHON_SCALARS = (int, float, bool, complex)
_NO_COVER = "the CuPy stand-in (tests/cuda_standin) does not cover {}; add it there if the project now uses it"


class ndarray:
    """cupy.ndarray(shape, dtype=float, memptr=None, strides=None, order='C')."""

    __slots__ = ("_a", "data", "__weakref__")
    __array_priority__ = 100
    __hash__ = None  # type: ignore[assignment]  # unhashable, as NumPy's and CuPy's arrays

    def __init__(self, shape: Any, dtype: Any = float, memptr: _memory.MemoryPointer | None = None,
                 strides: tuple[int, ...] | None = None, order: str = "C") -> None:
        shape = (int(shape),) if np.isscalar(shape) else tuple(int(s) for s in shape)
        dtype = np.dtype(dtype)
        nbytes = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
        if strides is not None and nbytes:
            nbytes = sum((n - 1) * abs(s) for n, s in zip(shape, strides)) + dtype.itemsize
        self.data = memptr if memptr is not None else _memory.alloc(nbytes)
        self._a = np.ndarray(shape, dtype, buffer=self.data._bytes(nbytes), strides=strides, order=order)

    # -- attributes -----------------------------------------------------------------------------------
    shape = property(lambda self: self._a.shape)
    dtype = property(lambda self: self._a.dtype)
    size = property(lambda self: self._a.size)
    ndim = property(lambda self: self._a.ndim)
    strides = property(lambda self: self._a.strides)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    T = property(lambda self: view(self, self._a.T))

    @property
    def __cuda_array_interface__(self) -> dict[str, Any]:
        stream = _stream.get_current_stream().ptr or 1  # CAI v3 forbids 0: CuPy exports the legacy stream
        return {"shape": self.shape, "typestr": self.dtype.str, "descr": self.dtype.descr, "stream": stream,
                "version": 3, "strides": None if self._a.flags.c_contiguous else self.strides,
                "data": (self.data.ptr if self.size else 0, False)}

    def __getattr__(self, name: str) -> Any:
        raise AttributeError(_NO_COVER.format(f"cupy.ndarray.{name}"))

    # -- to the host ----------------------------------------------------------------------------------
    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:  # copy: NumPy 2 passes it
        raise TypeError("Implicit conversion to a NumPy array is not allowed. "
                        "Please use `.get()` to construct a NumPy array explicitly.")

    def get(self, stream: Any = None, order: str = "C", out: np.ndarray | None = None,
            blocking: bool = True) -> np.ndarray:
        stream = stream or _stream.get_current_stream()
        if self.size == 0 and out is None:
            return np.empty(self.shape, self.dtype)  # CuPy returns before any transfer (legal in capture)
        _issue.check_host_transfer("D2H", stream)
        if out is not None:
            if not isinstance(out, np.ndarray):
                raise TypeError("Only numpy.ndarray can be obtained fromcupy.ndarray")
            if out.dtype != self.dtype:
                raise TypeError(f"{out.dtype} array cannot be obtained from {self.dtype} array")
            if out.shape != self.shape:
                raise ValueError(f"Shape mismatch. Expected shape: {self.shape}, actual shape: {out.shape}")
            out[...] = self._a
        else:
            out = np.array(self._a, order="F" if order.upper() == "F" else "C")
        if blocking:
            stream.synchronize()
        return out

    def set(self, arr: np.ndarray, stream: Any = None) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError("Only numpy.ndarray can be set to cupy.ndarray")
        if self.dtype != arr.dtype:
            raise TypeError(f"{arr.dtype} array cannot be set to {self.dtype} array")
        if self.shape != arr.shape:
            raise ValueError(f"Shape mismatch. Old shape: {self.shape}, new shape: {arr.shape}")
        _issue.check_host_transfer("H2D", stream)
        src = arr.copy()  # the host array may change after the call; the copy has what was there
        run_into(lambda dst: dst.__setitem__(Ellipsis, src), self, stream=stream)

    def item(self) -> Any:
        if self.size != 1:
            raise ValueError("can only convert an array of size 1 to a Python scalar")
        return self.get().item()

    def tolist(self) -> Any:
        return self.get().tolist()

    __int__ = lambda self: int(self.get())  # noqa: E731
    __float__ = lambda self: float(self.get())  # noqa: E731
    __complex__ = lambda self: complex(self.get())  # noqa: E731
    __repr__ = lambda self: repr(self.get())  # noqa: E731
    __str__ = lambda self: str(self.get())  # noqa: E731
    __format__ = lambda self, spec: format(self.get(), spec)  # noqa: E731

    def __bool__(self) -> bool:
        if self.size == 0:
            warnings.warn("The truth value of an empty array is ambiguous. Returning False, but in future this "
                          "will result in an error. Use `array.size > 0` to check that an array is not empty.",
                          DeprecationWarning, stacklevel=2)
            return False
        if self.size == 1:
            return bool(self.get())
        raise ValueError("The truth value of an array with more than one element is ambiguous. "
                         "Use a.any() or a.all()")

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of unsized object")
        return self.shape[0]

    def __iter__(self):
        if self.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(self.shape[0]))

    def __reduce__(self) -> tuple[Any, ...]:
        from ._creation import array

        return array, (self.get(),)

    # -- NumPy protocols ------------------------------------------------------------------------------
    def __array_ufunc__(self, ufunc: np.ufunc, method: str, *inputs: Any, **kwargs: Any) -> Any:
        from . import xp

        if "out" in kwargs:
            if len(kwargs["out"]) != 1:
                raise ValueError("The 'out' parameter must have exactly one array value")
            kwargs["out"] = kwargs["out"][0]
        func = getattr(xp, ufunc.__name__, None)
        if method != "__call__" or func is None:
            return NotImplemented
        for x in (*inputs, kwargs.get("out")):
            if not (type(x) in PYTHON_SCALARS or isinstance(x, (np.generic, ndarray, np.ndarray)) or x is None
                    or hasattr(x, "__cuda_array_interface__")):
                return NotImplemented
        if ufunc.__name__ in ("greater", "greater_equal", "less", "less_equal", "equal", "not_equal"):
            inputs = tuple(x.item() if isinstance(x, np.ndarray) and x.ndim == 0 else x for x in inputs)
        return func(*inputs, **kwargs)

    def __array_function__(self, func: Callable[..., Any], types: tuple[type, ...], args: Any, kwargs: Any) -> Any:
        from . import xp

        if func.__module__ != "numpy" or not all(issubclass(t, (ndarray, np.ndarray)) for t in types):
            return NotImplemented
        ours = getattr(xp, func.__name__, None)
        return NotImplemented if ours is None or ours is func else ours(*args, **kwargs)

    def __copy__(self) -> ndarray:
        return self.copy()

    def __deepcopy__(self, memo: dict[int, Any]) -> ndarray:
        return self.copy()


def view(base: ndarray, v: np.ndarray) -> ndarray:
    """A device array over ``v``, a NumPy view into ``base``'s memory."""
    out = ndarray.__new__(ndarray)
    offset = (v.ctypes.data - base.data.mem.ptr) if v.size else base.data.ptr - base.data.mem.ptr
    out._a, out.data = v, _memory.MemoryPointer(base.data.mem, offset)
    return out


def operand(x: Any) -> Any:
    """An elementwise operand as a kernel sees it (cupy/_core/_kernel.pyx ``_preprocess_arg`` and
    _scalar.pyx ``CScalar``): a device array's memory, or a Python/NumPy scalar frozen as it is now."""
    if isinstance(x, ndarray):
        return x._a
    if type(x) in PYTHON_SCALARS or isinstance(x, np.generic):
        return x
    raise TypeError(f"Unsupported type {type(x)}")


def _blank(x: Any) -> Any:
    """A zero-filled stand-in of an operand (no memory of its size), to learn a result's shape and dtype
    without running the operation. A boolean array stays as it is: as a mask it decides the shape, and
    CuPy reads its count to the host (a sync, refused during capture) before the kernel is issued."""
    if not isinstance(x, np.ndarray) or x.dtype == np.bool_:
        return x
    return np.broadcast_to(np.zeros((), x.dtype), x.shape)


def run_new(compute: Callable[..., Any], *inputs: Any) -> ndarray:
    """A new device array holding ``compute(*inputs)`` (inputs: NumPy views of device memory or frozen
    scalars), computed now on the legacy stream, or allocated now and written when the current stream runs
    its queue (or on every replay of a capture's graph)."""
    later = _issue.deferral()
    with np.errstate(all="ignore"):
        if later is None:
            result = np.asarray(compute(*inputs))
            out = ndarray(result.shape, result.dtype)
            out._a[...] = result
            return out
        proto = np.asarray(compute(*map(_blank, inputs)))
    out = ndarray(proto.shape, proto.dtype)
    dst = out._a
    later(lambda: dst.__setitem__(Ellipsis, compute(*inputs)))
    return out


def run_into(write: Callable[..., None], out: ndarray, *inputs: Any, stream: Any = None) -> ndarray:
    """``write(out, *inputs)`` on NumPy views, now, queued or recorded (see ``run_new``); deferred work is
    first tried on scratch copies, so errors (shapes, casting) raise at issue time as on a GPU."""
    later = _issue.deferral(stream)
    dst = out._a
    with np.errstate(all="ignore"):
        if later is None:
            write(dst, *inputs)
            return out
        write(np.zeros(dst.shape, dst.dtype), *map(_blank, inputs))
    later(functools.partial(write, dst, *inputs))
    return out


from . import _methods  # noqa: E402  (operators and methods; they need the class above)

_methods.install(ndarray)
