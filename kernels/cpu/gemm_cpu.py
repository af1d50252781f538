"""The first layer's two GEMMs on the CPU, register-blocked in explicit 64-byte vectors.

``c = op(a) @ b``, where ``op(a)`` is ``a`` or ``a.T`` (both C-contiguous, read in place: the forward
pass multiplies the batch's compacted pixels by the matching rows of W1, the weight gradient their
transpose by the deltas). A tile of ``ROWS`` rows by two vectors of columns (8 x 32 float32, 8 x 16
float64) keeps its 16 accumulators in registers through a block of the inner dimension: per step of it,
two vector loads of ``b``, one broadcast of ``a`` per row, and 16 fused multiply-adds. Blocks of rows and
of the inner dimension keep each operand's part in cache, as BLAS's kernels do.

Why not BLAS: each output element here is one ordered chain of multiply-adds, so the result is the same
bits on any number of threads, and the work units go one at a time to whichever thread is running, so a
process whose threads are not all on a core keeps going (``mnist_accel.backends.gemm_policy``).
``simd.py`` explains why the vectors are written as LLVM IR: the backend emits each as one zmm
instruction where AVX-512 exists. Without AVX-512 the 16 accumulators need 32 ymm registers and spill,
so callers use these only on AVX-512 CPUs.

Every element of ``c`` is one chain of multiply-adds over the inner dimension in order, whatever tile
or thread computes it (a block adds to what the block before stored, exactly): results are the same bits
on any number of threads.

Compiled in as few pieces as the work allows, because a first run pays for each: Numba compiles every
function into a module of its own and optimizes and emits every callee again inside each caller. So the
tiles, most of the code, live in one C callback per dtype (``_work``) that the launchers call through its
address, and the planning is Python.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from llvmlite import ir
from numba import cfunc, guvectorize, types
from numba.extending import intrinsic

from .gemm_calls import call
from .gemm_tile import tile
from .simd import LINE

ROWS = 8  # rows of a tile: 16 accumulators of the 32 vector registers, leaving room for b and a broadcast
CHUNK = 16 * ROWS  # rows of a block: a's 128 x 256 float32 block (128 KB) stays in L2 across the tiles
DEPTH = 256  # most inner-dimension steps of a block: b's 256 x 32 float32 block (32 KB) stays in L1

_WIDE, _WIDE_ROW = tile(ROWS, 2), tile(1, 2)
_NARROW, _NARROW_ROW = tile(ROWS, 1), tile(1, 1)
WIDE, NARROW = 0, 1  # kinds of column tile: two vectors, one vector


@intrinsic
def _claim(typingctx, counter):
    """Atomically add one to ``counter[0]`` (a pointer to int64) and return its value before: the next work
    unit."""
    if counter != types.CPointer(types.int64):
        return None

    def codegen(context, builder, sig, args):
        return builder.atomic_rmw("add", args[0], ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


def _work(a, b, c, bp, cp, starts, kinds, counter, ai, ak, k, m, n, pad, tiles, whole):
    """Claim work units from the counter until none is left, and do each: a (block of rows, column tile)
    pair, in row-block order so that a's block stays in cache; the tail's tile runs on the padded copies
    (``pad`` columns). Within a unit, blocked as BLAS does: a block of the inner dimension (b's part of it
    stays in L1 for the tile) by the block of rows (a's part stays in L2 across the tiles), whole tiles of
    ``ROWS`` rows, then single rows.

    Compiled as a C callback (``_work_address``), once per dtype, and called through its address: Numba
    compiles each function into a module of its own and optimizes every callee again, and emits its machine
    code again, inside each caller's module. Behind an address the tiles, most of the GEMM's code, are
    compiled once. One call site per tile kind for the same reason. Its arguments are pointers, indexed
    directly, and it calls neither ``min`` nor ``max``: each (like ``carray`` views) compiled code of its own."""
    units = tiles * ((m + CHUNK - 1) // CHUNK)
    blocks = (k + DEPTH - 1) // DEPTH if k > DEPTH else 1
    depth = (k + blocks - 1) // blocks if k > 0 else 1  # even blocks: 532 steps as 266 + 266, not 256 + 256 + 20
    u = _claim(counter)
    while u < units:
        lo, tile = u // tiles * CHUNK, u % tiles
        hi = lo + CHUNK if lo + CHUNK < m else m
        j, kind = starts[tile], kinds[tile]
        bb, cc, w = (b, c, n) if tile < whole else (bp, cp, pad)
        for t0 in range(0, k if k > 0 else 1, depth):
            t, more = (depth if t0 + depth < k else k - t0), t0 > 0
            r = lo
            while r < hi:
                full = r + ROWS <= hi
                a0, b0, c0 = r * ai + t0 * ak, t0 * w + j, r * w + j
                if kind == WIDE:
                    if full:
                        _WIDE(a, a0, ai, ak, bb, b0, w, cc, c0, w, t, more)
                    else:
                        _WIDE_ROW(a, a0, ai, ak, bb, b0, w, cc, c0, w, t, more)
                elif full:
                    _NARROW(a, a0, ai, ak, bb, b0, w, cc, c0, w, t, more)
                else:
                    _NARROW_ROW(a, a0, ai, ak, bb, b0, w, cc, c0, w, t, more)
                r += ROWS if full else 1
        u = _claim(counter)


@functools.cache
def _work_address(dtype: np.dtype) -> int:
    """The address of ``_work`` compiled for ``dtype`` (on first use: a run compiles its own dtype only)."""
    p, i = types.CPointer(numba.from_dtype(dtype)), types.CPointer(types.int64)
    return cfunc(types.void(p, p, p, p, p, i, i, i, *[types.int64] * 8), cache=True)(_work).address


@functools.cache
def _tiles(n: int, itemsize: int) -> tuple[np.ndarray, np.ndarray, int, int]:
    """c's column tiles for width ``n``: ``starts``, ``kinds``, how many lie in c itself (``whole``) and the
    tail's width ``r`` (read-only, shared by every call of that width).

    The tiles cover c's whole vectors, two vectors wide while they fit, then one. When n is no whole number
    of vectors, b's last r = n % width columns go to a zero-padded copy one vector wide (``bp``), and c's to
    a scratch one (``cp``, copied back), and one more one-vector tile runs there, at column 0: the padding
    multiplies to zeros, where column by column the tail cost sklearn's default width of 100 a fifth of a
    fit. Tiles never overlap the columns before it: a block of the inner dimension adds to what c holds, so
    an overlapping tile would add twice."""
    width = LINE // itemsize
    wide = n // (2 * width)
    whole = wide + (n - wide * 2 * width) // width
    r = n % width
    starts = [2 * t * width for t in range(wide)] + [(wide + t) * width for t in range(wide, whole)]
    kinds = [WIDE] * wide + [NARROW] * (whole - wide)
    if r:
        starts, kinds = starts + [0], kinds + [NARROW]  # at column 0 of the padded copies
    starts, kinds = np.array(starts, np.int64), np.array(kinds, np.int64)
    starts.flags.writeable = kinds.flags.writeable = False
    return starts, kinds, whole, r


def _plan(a: np.ndarray, transpose_a: bool, b: np.ndarray, c: np.ndarray) -> tuple:
    """Everything ``_work`` takes but the counter, after checking that the shapes chain, and the tail's
    width. Python, not Numba: these few lines compiled longer than ``_work``, and the tiles depend on the
    width alone."""
    m, k = (a.shape[1], a.shape[0]) if transpose_a else a.shape
    n = c.shape[1]
    if b.shape[0] != k or c.shape[0] != m or n != b.shape[1]:
        raise ValueError("gemm: shapes do not chain")
    if not (a.flags.c_contiguous and b.flags.c_contiguous and c.flags.c_contiguous):
        raise ValueError("gemm: every array must be C-contiguous")  # the work reads and writes their memory
    ai, ak = (1, m) if transpose_a else (k, 1)
    starts, kinds, whole, r = _tiles(n, c.itemsize)
    if r:
        pad = LINE // c.itemsize
        bp, cp = np.zeros((k, pad), b.dtype), np.empty((m, pad), c.dtype)
        bp[:, :r] = b[:, n - r:]
    else:
        pad, bp, cp = 0, b, c  # never read: no tile runs on the padded copies
    return ai, ak, bp, cp, k, m, n, pad, starts, kinds, whole, r


def _launch(unit, a, b, c, bp, cp, starts, kinds, counter, ints, done):
    """One worker of ``_launcher``'s: ``_work`` at address ``ints[0]`` on the arrays' data and the integers
    ``ints[1:]`` (``_run`` packs them: as gufunc operands apart, each cost the call more); ``unit`` (the
    worker's index) and ``done`` (its output) are the gufunc's loop and are not read."""
    call(ints[0], a, b, c, bp, cp, starts, kinds, counter, ints[1], ints[2], ints[3], ints[4], ints[5], ints[6],
         ints[7], ints[8])


@functools.cache
def _launcher(dtype: np.dtype):
    """``_launch`` as a parallel gufunc for ``dtype`` (built on first use: a run builds its own dtype only; Numba
    caches it on disk): called over ``workers`` indices, it runs ``_work`` once per index on Numba's threads,
    as many at once as Numba's thread count allows (``numba.set_num_threads``). A gufunc, not a ``prange``
    loop: Numba compiles a ``parallel=True`` function as the function and the parallel region it outlines,
    which took longer (the engine notes, 2026-12, have the figures)."""
    grid, ints = numba.from_dtype(dtype)[:, ::1], types.int64[::1]
    sig = types.void(types.int64, *[grid] * 5, ints, ints, ints, ints, ints)
    return guvectorize([sig], "(),(a,b),(c,d),(e,f),(g,h),(i,j),(t),(t),(o),(p)->()", target="parallel",
                       cache=True)(_launch)


def _run(a: np.ndarray, transpose_a: bool, b: np.ndarray, c: np.ndarray, threads: int) -> None:
    ai, ak, bp, cp, k, m, n, pad, starts, kinds, whole, r = _plan(a, transpose_a, b, c)
    workers = max(1, min(threads, len(starts) * ((m + CHUNK - 1) // CHUNK)))  # no more than work units
    ints = np.array([_work_address(c.dtype), ai, ak, k, m, n, pad, len(starts), whole], np.int64)
    _launcher(c.dtype)(np.arange(workers), a, b, c, bp, cp, starts, kinds, np.zeros(1, np.int64), ints)
    if r:
        c[:, n - r:] = cp[:, :r]


def gemm(a: np.ndarray, transpose_a: bool, b: np.ndarray, c: np.ndarray) -> None:
    """c <- op(a) @ b by one worker; every array C-contiguous."""
    _run(a, transpose_a, b, c, 1)


def gemm_parallel(a: np.ndarray, transpose_a: bool, b: np.ndarray, c: np.ndarray, threads: int) -> None:
    """``gemm`` over ``threads`` of Numba's threads (pass ``numba.get_num_threads()``). The work units
    are claimed one at a time from a shared counter (``_work``), not split in equal shares: a thread that
    wakes late still finds work, where with shares the caller would do the late thread's share after its
    own (under TBB on the EPYC a parallel call often took as long as a serial one)."""
    _run(a, transpose_a, b, c, threads)
