"""Device memory of the stand-in: raw allocations and the allocator in force (``cupy.cuda.Memory``/
``MemoryPointer``, ``alloc``, ``set_allocator``, ``using_allocator``); memory pools are in _pool.py.

Device memory is a NumPy byte buffer that is never reallocated, so a pointer (its address) stays valid
as long as the memory lives. Rules from ``cupy/cuda/memory.pyx``: sizes round up to 512 bytes;
``set_allocator`` refuses to run inside ``using_allocator``; ``using_allocator(None)`` means the raw
allocator (no pool), and ``cupy/__init__.py`` makes the default pool's ``malloc`` the global allocator.
New raw memory is filled with 0xFF bytes (NaN for floats, -1 for integers): device memory is not
zeroed, and a read of memory nothing wrote should show.
"""

from __future__ import annotations

import contextlib
import threading
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np

from . import _graph

ALLOCATION_UNIT = 512
_held = [0]  # bytes of raw memory alive (pools' cached blocks included): what memGetInfo subtracts
_held_lock = threading.Lock()


def bytes_held() -> int:
    return _held[0]


def _count(size: int) -> None:
    with _held_lock:
        _held[0] += size


def round_size(size: int) -> int:
    return (size + ALLOCATION_UNIT - 1) // ALLOCATION_UNIT * ALLOCATION_UNIT


class Memory:
    """A raw device allocation (cudaMalloc); ``ptr`` is its address, 0 for size 0."""

    def __init__(self, size: int) -> None:
        size = int(size)
        if size:
            _graph.check_unsafe_call()
        self.size, self.device_id = size, 0
        self._buf = np.full(size, 0xFF, np.uint8)
        self.ptr = self._buf.ctypes.data if size else 0
        _count(size)
        weakref.finalize(self, _count, -size)

    def __int__(self) -> int:
        return self.ptr


class MemoryPointer:
    """A pointer into device memory: ``mem`` keeps the memory alive, ``ptr`` is the address."""

    def __init__(self, mem: Any, offset: int) -> None:  # mem: a Memory or a pool's PooledMemory
        self.mem, self.ptr, self.device_id = mem, mem.ptr + offset, mem.device_id

    def __int__(self) -> int:
        return self.ptr

    def __add__(self, offset: int) -> MemoryPointer:
        return MemoryPointer(self.mem, self.ptr - self.mem.ptr + offset)

    def __repr__(self) -> str:
        return f"<MemoryPointer 0x{self.ptr:x} device={self.device_id} mem={self.mem!r}>"

    def _bytes(self, nbytes: int) -> np.ndarray:
        """The NumPy bytes [ptr, ptr + nbytes) of the memory (a view: no copy)."""
        start = self.ptr - self.mem.ptr
        return self.mem._buf[start:start + nbytes]


def _malloc(size: int) -> MemoryPointer:
    """The raw allocator: a new cudaMalloc each time (memory.pyx ``_malloc``)."""
    return MemoryPointer(Memory(size), 0)


_global = [_malloc]  # cupy/__init__.py replaces it with the default pool's malloc (see xp.py)
_tls = threading.local()


def get_allocator() -> Callable[[int], MemoryPointer]:
    return getattr(_tls, "allocator", None) or _global[0]


def set_allocator(allocator: Callable[[int], MemoryPointer] | None = None) -> None:
    if getattr(_tls, "allocator", None) is not None:
        raise ValueError("Can't change the global allocator inside `using_allocator` context manager")
    _global[0] = _malloc if allocator is None else allocator


@contextlib.contextmanager
def using_allocator(allocator: Callable[[int], MemoryPointer] | None = None) -> Iterator[None]:
    """A thread-local allocator within the block; None is the raw allocator (cupy/cuda/__init__.py)."""
    previous = getattr(_tls, "allocator", None)
    _tls.allocator = _malloc if allocator is None else allocator
    try:
        yield
    finally:
        _tls.allocator = previous


def alloc(size: int) -> MemoryPointer:
    """Memory from the allocator in force; refuses what is not the stand-in's device memory."""
    ptr = get_allocator()(size)
    if not isinstance(ptr, MemoryPointer):
        raise TypeError(f"the allocator returned {type(ptr).__name__}, not a stand-in MemoryPointer")
    return ptr
