"""``cupy.RawModule``/``cupy.RawKernel`` of the stand-in: CUDA C compiled for the CPU by
``cuda_standin.cpu_runtime``, launched with CuPy's argument conversion and checked against the kernel's
C parameters (what a GPU would silently misread).

Conversion from cupy/cuda/function.pyx ``_pointer`` and cupy/_core/_scalar.pyx ``CScalar``: a device
array passes its data pointer (and ignores its strides), None a null pointer, a NumPy array of one
element its bytes (larger ones are refused), a Python bool/int/float/complex becomes bool/int64 (uint64
from 2**63)/float64/complex128, a NumPy scalar keeps its dtype. ``Function.__call__`` takes grid and
block as tuples only (Cython-typed ``tuple``), pads them to three with 1 and raises zeros to 1. Launches
are device work: run now, or recorded during capture with the argument bytes of that moment; a launch
configuration cuLaunchKernel refuses (block size, grid size, dynamic shared memory above the kernel's
``max_dynamic_shared_size_bytes``) raises CUDADriverError (CUDA_ERROR_INVALID_VALUE) when issued.
Names (raw.pyx ``RawModule.get_function``): a name expression given at compile time maps to its lowered
name, any other name is looked up as given, so a C++ kernel neither listed nor ``extern "C"`` is
CUDA_ERROR_NOT_FOUND. ``max_dynamic_shared_size_bytes`` (raw.pyx, cuFuncSetAttribute) belongs to the
compiled function, shared by every RawKernel of the same module; ``shared_size_bytes`` is its static
shared memory.
The stand-in's checks: one argument per parameter; a value's kind and size must be the parameter's
(a Python int for an ``int`` is 8 bytes given, 4 expected); a pointer must be a C-contiguous device
array whose dtype is the pointee's.
"""

from __future__ import annotations

import functools
import struct
from collections.abc import Sequence
from typing import Any

import numpy as np

from . import _issue, _runtime
from ._array import ndarray
from ._memory import MemoryPointer
from ._runtime import CUDADriverError


@functools.cache
def _compile(code: str, options: tuple[str, ...], name_expressions: tuple[str, ...]) -> Any:
    """One compiled module per source, options and names (CuPy caches compiled kernels on disk)."""
    from .cpu_runtime import CpuModule

    return CpuModule(code, options, name_expressions)


def _scalar(x: Any) -> np.generic:
    """A kernel argument passed by value, as CuPy's CScalar stores it."""
    if type(x) is bool:
        return np.bool_(x)
    if type(x) is int:
        return np.uint64(x) if x >= 2**63 else np.int64(x)
    if type(x) is float:
        return np.float64(x)
    if type(x) is complex:
        return np.complex128(x)
    if isinstance(x, np.generic):
        return x
    raise TypeError(f"Unsupported type {type(x)}")


def _describe(x: Any) -> str:
    if isinstance(x, ndarray):
        return f"a device array of {x.dtype} {x.shape}"
    if isinstance(x, np.ndarray):
        return f"a host numpy.ndarray of {x.dtype} {x.shape}"
    return f"{type(x).__module__.replace('builtins', 'Python')}.{type(x).__name__} {x!r}"


def _argument(kernel: str, i: int, param: Any, x: Any) -> tuple[bytes, np.ndarray | None]:
    """The bytes the kernel receives for ``x``, after checking them against ``param``; and the memory a
    pointer refers to (kept alive by a recorded launch)."""
    where = f"{kernel}: argument {i} ({param.ctype} {param.name})"
    if isinstance(x, np.ndarray) and x.size != 1:
        raise TypeError(f"You are trying to pass a numpy.ndarray of shape {x.shape} as a kernel parameter. "
                        "Only numpy.ndarrays of size one can be passed by value. If you meant to pass a pointer "
                        "to __global__ memory, you need to pass a cupy.ndarray instead.")
    if param.pointer:
        if x is None:
            return bytes(8), None
        if isinstance(x, MemoryPointer):
            return struct.pack("<Q", x.ptr), x.mem._buf
        if not isinstance(x, ndarray):
            raise TypeError(f"{where} is a pointer: pass a device array, not {_describe(x)}")
        void = param.ctype.replace("const ", "").replace(" ", "") == "void*"  # any data (cpu_runtime: uint8)
        if param.pointee is not None and not void and x.dtype != param.pointee:
            raise TypeError(f"{where} points to {param.pointee}: got {_describe(x)}")
        if not x._a.flags.c_contiguous:
            raise ValueError(f"{where}: {_describe(x)} is not C-contiguous (a raw kernel ignores strides; "
                             "pass a contiguous copy)")
        return struct.pack("<Q", x.data.ptr if x.size else 0), x.data.mem._buf
    if isinstance(x, (ndarray, MemoryPointer)) or x is None:
        raise TypeError(f"{where} is a value of kind {param.kind!r}, {param.size} bytes: got a pointer "
                        f"({_describe(x) if x is not None else 'None'})")
    value = x.reshape(()) if isinstance(x, np.ndarray) else _scalar(x)
    data = np.asarray(value).tobytes()
    if value.dtype.kind != param.kind or len(data) != param.size:
        raise TypeError(f"{where} needs kind {param.kind!r} of {param.size} bytes: got {_describe(x)} "
                        f"({value.dtype}, {len(data)} bytes given, {param.size} expected)")
    return data, None


def _dims(dims: Any, what: str) -> tuple[int, int, int]:
    if not isinstance(dims, tuple):
        raise TypeError(f"Argument '{what}' has incorrect type (expected tuple, got {type(dims).__name__})")
    return tuple(max(1, int(d)) for d in (dims + (1, 1))[:3])  # type: ignore[return-value]


class RawKernel:
    """cupy.RawKernel(code, name, options=(), backend='nvrtc', ...): compiled on first use."""

    def __init__(self, code: str, name: str, options: tuple[str, ...] = (), backend: str = "nvrtc", *,
                 translate_cucomplex: bool = False, enable_cooperative_groups: bool = False,
                 jitify: Any = None) -> None:
        self.code, self.name, self.options, self.backend = code, name, tuple(options), backend
        self.name_expressions: tuple[str, ...] = ()
        self.__name__ = name

    @property
    def kernel(self) -> Any:
        """The compiled CPU kernel (cpu_runtime.CpuKernel)."""
        module = _compile(self.code, self.options, self.name_expressions)
        try:
            return module.get_function(self.name)
        except LookupError:
            raise CUDADriverError(_runtime.CUDA_ERROR_NOT_FOUND) from None

    @property
    def max_dynamic_shared_size_bytes(self) -> int:
        return self.kernel.max_dynamic_shared_size_bytes

    @max_dynamic_shared_size_bytes.setter
    def max_dynamic_shared_size_bytes(self, value: int) -> None:
        try:
            self.kernel.max_dynamic_shared_size_bytes = value
        except ValueError as exc:  # the reason stays in the traceback; CuPy's message is the driver's
            raise CUDADriverError(_runtime.CUDA_ERROR_INVALID_VALUE) from exc

    @property
    def shared_size_bytes(self) -> int:
        return self.kernel.shared_size_bytes

    def compile(self, log_stream: Any = None) -> None:
        self.kernel  # noqa: B018  (compiling is the point)

    def __call__(self, grid: tuple[int, ...], block: tuple[int, ...], args: Sequence[Any], *,
                 shared_mem: int = 0, stream: Any = None, enable_cooperative_groups: bool = False) -> None:
        grid3, block3 = _dims(grid, "grid"), _dims(block, "block")
        kernel = self.kernel
        args = tuple(args)
        if len(args) != len(kernel.params):
            signature = ", ".join(f"{p.ctype} {p.name}" for p in kernel.params)
            raise TypeError(f"{self.name}({signature}) takes {len(kernel.params)} arguments, {len(args)} given")
        converted = [_argument(self.name, i, p, x) for i, (p, x) in enumerate(zip(kernel.params, args))]
        data, memory = [b for b, _ in converted], [m for _, m in converted if m is not None]
        try:
            kernel.check(grid3, block3, int(shared_mem))
        except ValueError as exc:
            raise CUDADriverError(_runtime.CUDA_ERROR_INVALID_VALUE) from exc
        _issue.issue(lambda keep=memory: kernel.launch(grid3, block3, data, int(shared_mem)), stream)


class RawModule:
    """cupy.RawModule(*, code=..., options=(), name_expressions=...): source code only (no ``path``)."""

    def __init__(self, *, code: str | None = None, path: str | None = None, options: tuple[str, ...] = (),
                 backend: str = "nvrtc", translate_cucomplex: bool = False,
                 enable_cooperative_groups: bool = False, name_expressions: Sequence[str] | None = None,
                 jitify: Any = None) -> None:
        if (code is None) == (path is None):
            raise TypeError("Exactly one of `code` and `path` keyword arguments must be given.")
        if path is not None:
            raise NotImplementedError("the CuPy stand-in compiles CUDA C source only, not cubin/ptx files")
        if name_expressions is not None and backend != "nvrtc":
            raise ValueError("only nvrtc supports retrieving the mangled names for the given name expressions")
        self.code, self.options, self.backend = code, tuple(options), backend
        self.name_expressions = tuple(name_expressions) if name_expressions is not None else None

    def compile(self, log_stream: Any = None) -> None:
        _compile(self.code, self.options, self.name_expressions or ())

    def get_function(self, name: str) -> RawKernel:
        """Compiles now, as CuPy does; an unknown name raises CUDADriverError (CUDA_ERROR_NOT_FOUND)."""
        kernel = RawKernel(self.code, name, self.options, self.backend)
        kernel.name_expressions = self.name_expressions or ()
        kernel.compile()
        return kernel
