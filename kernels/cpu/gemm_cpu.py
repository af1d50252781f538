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
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import LINE

ROWS = 8  # rows of a tile: 16 accumulators of the 32 vector registers, leaving room for b and a broadcast
CHUNK = 16 * ROWS  # rows of a block: a's 128 x 256 float32 block (128 KB) stays in L2 across the tiles
DEPTH = 256  # most inner-dimension steps of a block: b's 256 x 32 float32 block (32 KB) stays in L1


def _tile(rows: int, vectors: int):
    """An intrinsic ``tile(a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more)``: for r < rows and the ``vectors``
    64-byte vectors of columns from b0 and c0, ``c[c0 + r*cs + j] = sum_t a[a0 + r*ai + t*ak] *
    b[b0 + t*bk + j]`` over t < k in order, added to what c holds when ``more`` is true (flat element
    offsets; no bounds checks)."""

    @intrinsic
    def tile(typingctx, a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more):
        if not all(isinstance(x, types.Array) and x.dtype == a.dtype for x in (a, b, c)) or \
                a.dtype not in (types.float32, types.float64):
            return None

        def codegen(context, builder, sig, args):
            dt = sig.args[0].dtype
            lanes, size = LINE * 8 // dt.bitwidth, dt.bitwidth // 8
            vec, i64 = ir.VectorType(context.get_value_type(dt), lanes), ir.IntType(64)
            a0, ai, ak, b0, bk, c0, cs, kn = (context.cast(builder, args[i], sig.args[i], types.int64)
                                              for i in (1, 2, 3, 5, 6, 8, 9, 10))
            data = [context.make_array(sig.args[i])(context, builder, args[i]).data for i in (0, 4, 7)]

            def at(base, *terms):
                offset = ir.Constant(i64, 0)
                for t in terms:
                    offset = builder.add(offset, t)
                return builder.gep(base, [offset])

            def vptr(base, v):
                return builder.bitcast(builder.gep(base, [ir.Constant(i64, v * lanes)]), vec.as_pointer())

            arow = [at(data[0], a0, builder.mul(ai, ir.Constant(i64, r))) for r in range(rows)]
            crow = [at(data[2], c0, builder.mul(cs, ir.Constant(i64, r))) for r in range(rows)]
            acc = [[cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(vectors)]
                   for _ in range(rows)]  # promoted to registers by LLVM (only loaded and stored)
            with builder.if_then(context.cast(builder, args[11], sig.args[11], types.boolean)):
                for r in range(rows):
                    for v in range(vectors):
                        builder.store(builder.load(vptr(crow[r], v), align=size), acc[r][v])
            fma = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vec, [vec] * 3),
                                                 f"llvm.fmuladd.v{lanes}f{dt.bitwidth}")
            splat = ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes)
            with cgutils.for_range(builder, kn) as loop:
                brow = at(data[1], b0, builder.mul(loop.index, bk))
                bv = [builder.load(vptr(brow, v), align=size) for v in range(vectors)]
                ka = builder.mul(loop.index, ak)
                for r in range(rows):
                    s = builder.insert_element(ir.Constant(vec, ir.Undefined), builder.load(builder.gep(
                        arow[r], [ka])), ir.Constant(ir.IntType(32), 0))
                    s = builder.shuffle_vector(s, ir.Constant(vec, ir.Undefined), splat)
                    for v in range(vectors):
                        builder.store(builder.call(fma, [s, bv[v], builder.load(acc[r][v])]), acc[r][v])
            for r in range(rows):
                for v in range(vectors):
                    builder.store(builder.load(acc[r][v]), vptr(crow[r], v), align=size)
            return context.get_dummy_value()

        return types.none(a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more), codegen

    return tile


_WIDE, _WIDE_ROW = _tile(ROWS, 2), _tile(1, 2)
_NARROW, _NARROW_ROW = _tile(ROWS, 1), _tile(1, 1)
WIDE, NARROW = 0, 1  # kinds of column tile: two vectors, one vector


@njit(cache=True, nogil=True)
def lanes(x):
    """Elements of ``x``'s dtype in one 64-byte vector."""
    return LINE // x.itemsize


@njit(cache=True, nogil=True)
def _column_tiles(n, width):
    """(start, kind) of each column tile over c's whole vectors, two vectors wide while they fit, then
    one; then, when n is no whole number of vectors, one more one-vector tile at column 0 of ``_tail``'s
    padded copies."""
    wide = n // (2 * width)
    narrow = (n - wide * 2 * width) // width
    count = wide + narrow + (n % width > 0)
    starts, kinds = np.zeros(count, np.int64), np.full(count, NARROW)
    for t in range(wide):
        kinds[t], starts[t] = WIDE, 2 * t * width
    for t in range(wide, wide + narrow):
        starts[t] = (wide + t) * width  # after the wide tiles' 2 * wide vectors, t - wide more
    return starts, kinds


@njit(cache=True, nogil=True)
def _tail(b, c):
    """b's last n % width columns in a zero-padded copy one vector wide, and c's in a scratch one: the
    tail runs as a one-vector tile (the padding multiplies to zeros) instead of column by column, which
    cost sklearn's default width of 100 a fifth of a fit. Tiles never overlap the columns before it: a
    block of the inner dimension adds to what c holds, so an overlapping tile would add twice."""
    width = lanes(c)
    r = c.shape[1] % width
    pad = width if r else 0  # no tail: nothing to allocate
    bp, cp = np.zeros((b.shape[0], pad), b.dtype), np.empty((c.shape[0], pad), c.dtype)
    bp[:, :r] = b[:, c.shape[1] - r:]
    return r, bp, cp


@njit(cache=True, nogil=True, inline="always")
def _tile_at(kind, full, a, a0, ai, ak, b, b0, c, c0, t, more):
    """The tile of ``kind`` whose first elements are a[a0], b[b0] and c[c0]: ``ROWS`` rows if ``full``,
    else one."""
    n = c.shape[1]
    if kind == WIDE:
        if full:
            _WIDE(a, a0, ai, ak, b, b0, n, c, c0, n, t, more)
        else:
            _WIDE_ROW(a, a0, ai, ak, b, b0, n, c, c0, n, t, more)
    elif full:
        _NARROW(a, a0, ai, ak, b, b0, n, c, c0, n, t, more)
    else:
        _NARROW_ROW(a, a0, ai, ak, b, b0, n, c, c0, n, t, more)


@njit(cache=True, nogil=True, inline="always")
def _rows(a, ai, ak, b, c, a0, b0, t, more, j, kind, lo, hi):
    """Rows lo..hi of c's column tile of ``kind`` starting at j, over ``t`` steps of the inner dimension:
    whole tiles of ``ROWS`` rows, then single rows."""
    r = lo
    while r < hi:
        full = r + ROWS <= hi
        _tile_at(kind, full, a, a0 + r * ai, ai, ak, b, b0, c, r * c.shape[1] + j, t, more)
        r += ROWS if full else 1


@njit(cache=True, nogil=True)
def _block(a, ai, ak, b, c, k, starts, kinds, tiles_lo, tiles_hi, rows_lo, rows_hi):
    """c's rows rows_lo..rows_hi in the column tiles tiles_lo..tiles_hi, blocked as BLAS does: a block of
    the inner dimension (b's part of it stays in L1 for one tile) by a block of rows (a's part stays in
    L2 across the tiles), so that no operand streams from memory more than once per block."""
    blocks = max(1, (k + DEPTH - 1) // DEPTH)
    depth = max(1, (k + blocks - 1) // blocks)  # even blocks: 532 steps as 266 + 266, not 256 + 256 + 20
    for t0 in range(0, max(k, 1), depth):
        t, more = min(depth, k - t0), t0 > 0
        for lo in range(rows_lo, rows_hi, CHUNK):
            hi = min(lo + CHUNK, rows_hi)
            for tile in range(tiles_lo, tiles_hi):
                j = starts[tile]
                _rows(a, ai, ak, b, c, t0 * ak, t0 * c.shape[1] + j, t, more, j, kinds[tile], lo, hi)


@intrinsic
def _claim(typingctx, counter):
    """Atomically add one to ``counter[0]`` (int64) and return its value before: the next work unit."""
    if not (isinstance(counter, types.Array) and counter.dtype == types.int64):
        return None

    def codegen(context, builder, sig, args):
        data = context.make_array(sig.args[0])(context, builder, args[0]).data
        return builder.atomic_rmw("add", data, ir.Constant(ir.IntType(64), 1), "monotonic")

    return types.int64(counter), codegen


@njit(cache=True, nogil=True)
def _shape(a, transpose_a, b, c):
    """(inner dimension, a's row step, a's inner step) after checking that the shapes chain."""
    m, k = (a.shape[1], a.shape[0]) if transpose_a else (a.shape[0], a.shape[1])
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != b.shape[1]:
        raise ValueError("gemm: shapes do not chain")
    return k, (1, a.shape[1]) if transpose_a else (a.shape[1], 1)


@njit(cache=True, nogil=True)
def gemm(a, transpose_a, b, c):
    """c <- op(a) @ b on the calling thread; every array C-contiguous."""
    k, (ai, ak) = _shape(a, transpose_a, b, c)
    starts, kinds = _column_tiles(c.shape[1], lanes(c))
    r, bp, cp = _tail(b, c)
    whole = len(starts) - (r > 0)
    _block(a, ai, ak, b, c, k, starts, kinds, 0, whole, 0, c.shape[0])
    if r:
        _block(a, ai, ak, bp, cp, k, starts, kinds, whole, whole + 1, 0, c.shape[0])
        c[:, c.shape[1] - r:] = cp[:, :r]


@njit(cache=True, nogil=True, parallel=True)
def gemm_parallel(a, transpose_a, b, c, threads):
    """``gemm`` over ``threads`` of Numba's threads (pass ``numba.get_num_threads()``). The work units,
    (block of rows, column tile) pairs in row-block order so that a's block stays in cache, are claimed
    one at a time from a shared counter, not split in equal shares: a thread that wakes late still finds
    work, where with shares the caller would do the late thread's share after its own (under TBB on the
    EPYC a parallel call often took as long as a serial one)."""
    k, (ai, ak) = _shape(a, transpose_a, b, c)
    starts, kinds = _column_tiles(c.shape[1], lanes(c))
    r, bp, cp = _tail(b, c)
    tiles, whole, m = len(starts), len(starts) - (r > 0), c.shape[0]
    units = tiles * ((m + CHUNK - 1) // CHUNK)
    counter = np.zeros(1, np.int64)
    for _ in prange(max(1, min(threads, units))):
        u = _claim(counter)
        while u < units:
            lo, tile = u // tiles * CHUNK, u % tiles
            if tile < whole:
                _block(a, ai, ak, b, c, k, starts, kinds, tile, tile + 1, lo, min(lo + CHUNK, m))
            else:  # the tail, on the padded copies
                _block(a, ai, ak, bp, cp, k, starts, kinds, tile, tile + 1, lo, min(lo + CHUNK, m))
            u = _claim(counter)
    if r:
        c[:, c.shape[1] - r:] = cp[:, :r]
