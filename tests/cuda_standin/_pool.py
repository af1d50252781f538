"""``cupy.cuda.MemoryPool`` of the stand-in: caches freed device memory for reuse, as CuPy's
``SingleDeviceMemoryPool`` does (``cupy/cuda/memory.pyx``), so the aliasing a real pool creates (a block
freed while a graph or queued work still uses it, lent again at another size) happens in the tests too.

Rules from memory.pyx: sizes round up to 512 bytes; a pool keeps one arena of free chunks per stream and
lends a chunk only to allocations on that stream (``_arena``); a request takes the smallest free chunk at
least its size (``_Arena.get_chunk``, best fit; among equal sizes CuPy's order is arbitrary, here the
lowest address), whose front is lent while the rest stays free as a chunk of its own (``_Chunk.split``);
a freed chunk merges with the free chunks next to it in its allocation (``try_merge_chunk``);
``free_all_blocks`` releases only free chunks that were never split, or merged back whole (``free_all``);
no free chunk fits: a new cudaMalloc of the rounded size. A pooled block returns to its arena when the last
array using it goes.
"""

from __future__ import annotations

import bisect
import threading
import weakref
from collections import defaultdict
from collections.abc import Callable
from typing import Any

from . import _stream
from ._memory import Memory, MemoryPointer, round_size


class _Chunk:
    """A piece [offset, offset + size) of one raw allocation; prev/next: the pieces beside it."""

    __slots__ = ("mem", "offset", "size", "prev", "next", "free")

    def __init__(self, mem: Memory, offset: int, size: int) -> None:
        self.mem, self.offset, self.size = mem, offset, size
        self.prev: _Chunk | None = None
        self.next: _Chunk | None = None
        self.free = False

    def key(self) -> tuple[int, int]:
        return self.size, self.mem.ptr + self.offset


class PooledMemory:
    """A chunk lent by a MemoryPool; going away returns the chunk to its arena."""

    def __init__(self, chunk: _Chunk, pool: MemoryPool, arena: list[_Chunk]) -> None:
        self.ptr, self.size, self.device_id = chunk.mem.ptr + chunk.offset, chunk.size, 0
        self._buf = chunk.mem._buf[chunk.offset:chunk.offset + chunk.size]
        weakref.finalize(self, MemoryPool._give_back, weakref.ref(pool), chunk, arena)

    def __int__(self) -> int:
        return self.ptr


class MemoryPool:
    """cupy.cuda.MemoryPool(allocator=None): the stand-in always grows by raw allocations."""

    def __init__(self, allocator: Callable[[int], MemoryPointer] | None = None) -> None:
        self._arenas: dict[int, list[_Chunk]] = defaultdict(list)  # free chunks by key(), per stream
        self._used = self._total = 0
        self._lock = threading.Lock()

    def malloc(self, size: int) -> MemoryPointer:
        size = round_size(int(size))
        if size == 0:
            return MemoryPointer(Memory(0), 0)
        with self._lock:
            arena = self._arenas[_stream.get_current_stream().ptr]
            chunk = self._take(arena, size)
        if chunk is None:
            chunk = _Chunk(Memory(size), 0, size)
            with self._lock:
                self._total += size
        with self._lock:
            self._used += size
        return MemoryPointer(PooledMemory(chunk, self, arena), 0)

    @staticmethod
    def _take(arena: list[_Chunk], size: int) -> _Chunk | None:
        """The best-fitting free chunk, split to ``size``; the remainder stays free, unmerged."""
        at = bisect.bisect_left(arena, (size, 0), key=_Chunk.key)
        if at == len(arena):
            return None
        chunk = arena.pop(at)
        chunk.free = False
        if chunk.size > size:
            rest = _Chunk(chunk.mem, chunk.offset + size, chunk.size - size)
            rest.prev, rest.next, rest.free = chunk, chunk.next, True
            if chunk.next is not None:
                chunk.next.prev = rest
            chunk.next, chunk.size = rest, size
            bisect.insort(arena, rest, key=_Chunk.key)
        return chunk

    @staticmethod
    def _give_back(pool_ref: weakref.ref[MemoryPool], chunk: _Chunk, arena: list[_Chunk]) -> None:
        pool = pool_ref()
        if pool is None:
            return
        with pool._lock:
            pool._used -= chunk.size
            while chunk.next is not None and chunk.next.free:  # merge with the free chunk after it
                arena.remove(chunk.next)
                _join(chunk, chunk.next)
            while chunk.prev is not None and chunk.prev.free:  # and into the free chunk before it
                arena.remove(chunk.prev)
                chunk = _join(chunk.prev, chunk)
            chunk.free = True
            bisect.insort(arena, chunk, key=_Chunk.key)

    def free_all_blocks(self, stream: Any = None) -> None:
        """Releases the free chunks that are whole allocations (of one stream's arena, or all)."""
        with self._lock:
            arenas = [self._arenas[stream.ptr]] if stream is not None else list(self._arenas.values())
            for arena in arenas:
                whole = [c for c in arena if c.prev is None and c.next is None]
                for c in whole:
                    arena.remove(c)
                    c.free = False
                self._total -= sum(c.size for c in whole)

    def n_free_blocks(self) -> int:
        with self._lock:
            return sum(len(arena) for arena in self._arenas.values())

    def used_bytes(self) -> int:
        return self._used

    def free_bytes(self) -> int:
        return self._total - self._used

    def total_bytes(self) -> int:
        return self._total


def _join(first: _Chunk, second: _Chunk) -> _Chunk:
    """``second``, right after ``first``, becomes part of it; the joined chunk."""
    first.size += second.size
    first.next = second.next
    if second.next is not None:
        second.next.prev = first
    return first
