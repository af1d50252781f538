"""The first layer's two GEMMs on the CPU, register-blocked in explicit 64-byte vectors.

``c = op(a) @ b``, where ``op(a)`` is ``a`` or ``a.T`` (both C-contiguous, read in place: the forward
pass multiplies the batch's compacted pixels by the matching rows of W1, the weight gradient their
transpose by the deltas). A tile of ``ROWS`` rows by two vectors of columns (8 x 32 float32, 8 x 16
float64) keeps its 16 accumulators in registers through the whole inner dimension: per step of it, two
vector loads of ``b``, one broadcast of ``a`` per row, and 16 fused multiply-adds.

Why not BLAS: on the AVX-512 machines we measure on, the environment pins OpenBLAS to its AVX2
(Haswell) kernels, 116 GFLOP/s on one core of the AMD EPYC (Zen 5) for the forward's shape
(128 x 532 x 256), where this tile runs 242 GFLOP/s, and 457 over both cores against OpenBLAS's 222.
``simd.py`` explains why the vectors are written as LLVM IR: the backend emits each as one zmm
instruction where AVX-512 exists. Without AVX-512 the 16 accumulators need 32 ymm registers and spill,
so callers use these only on AVX-512 CPUs.

Every element of ``c`` is one chain of multiply-adds over the inner dimension in order, whatever tile
or thread computes it: results do not depend on the thread count, and a narrow tile may overlap a
neighbour (the last columns of a width that is not a whole number of tiles) and write the same values.
"""

from __future__ import annotations

from llvmlite import ir
import numpy as np
from numba import njit, prange, types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import LINE

ROWS = 8  # rows of a tile: 16 accumulators of the 32 vector registers, leaving room for b and a broadcast
CHUNK = 8 * ROWS  # rows of a parallel work unit


def _tile(rows: int, vectors: int):
    """An intrinsic ``tile(a, a0, ai, ak, b, b0, bk, c, c0, cs, k)``: for r < rows and the ``vectors``
    64-byte vectors of columns from b0 and c0, ``c[c0 + r*cs + j] = sum_t a[a0 + r*ai + t*ak] *
    b[b0 + t*bk + j]`` over t < k (flat element offsets; no bounds checks)."""

    @intrinsic
    def tile(typingctx, a, a0, ai, ak, b, b0, bk, c, c0, cs, k):
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
            acc = [[cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(vectors)]
                   for _ in range(rows)]  # promoted to registers by LLVM (only loaded and stored)
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
                crow = at(data[2], c0, builder.mul(cs, ir.Constant(i64, r)))
                for v in range(vectors):
                    builder.store(builder.load(acc[r][v]), vptr(crow, v), align=size)
            return context.get_dummy_value()

        return types.none(a, a0, ai, ak, b, b0, bk, c, c0, cs, k), codegen

    return tile


_WIDE, _WIDE_ROW = _tile(ROWS, 2), _tile(1, 2)
_NARROW, _NARROW_ROW = _tile(ROWS, 1), _tile(1, 1)


@njit(cache=True, nogil=True)
def lanes(x):
    """Elements of ``x``'s dtype in one vector: the narrowest ``c`` these kernels take has this many
    columns."""
    return LINE // x.itemsize


@njit(cache=True, nogil=True)
def _column_tiles(n, width):
    """Start of each column tile: two vectors wide while they fit, then one vector, the last one moved
    left to end at column n (overlapping its neighbour) when n is not a whole number of vectors."""
    wide = n // (2 * width)
    narrow = (n - wide * 2 * width + width - 1) // width
    starts = np.empty(wide + narrow, np.int64)
    for t in range(wide):
        starts[t] = 2 * t * width
    for t in range(narrow):
        starts[wide + t] = min(2 * wide * width + t * width, n - width)
    return starts, wide


@njit(cache=True, nogil=True, inline="always")
def _unit(a, ai, ak, b, c, k, j, wide, lo, hi):
    """Rows lo..hi of c's column tile starting at j."""
    n = c.shape[1]
    r = lo
    while r + ROWS <= hi:
        if wide:
            _WIDE(a, r * ai, ai, ak, b, j, n, c, r * n + j, n, k)
        else:
            _NARROW(a, r * ai, ai, ak, b, j, n, c, r * n + j, n, k)
        r += ROWS
    for i in range(r, hi):
        if wide:
            _WIDE_ROW(a, i * ai, ai, ak, b, j, n, c, i * n + j, n, k)
        else:
            _NARROW_ROW(a, i * ai, ai, ak, b, j, n, c, i * n + j, n, k)


@njit(cache=True, nogil=True)
def _shape(a, transpose_a, b, c):
    """(inner dimension, a's row step, a's inner step) after checking that the shapes chain."""
    m, k = (a.shape[1], a.shape[0]) if transpose_a else (a.shape[0], a.shape[1])
    if b.shape[0] != k or c.shape[0] != m or c.shape[1] != b.shape[1] or c.shape[1] < lanes(c):
        raise ValueError("gemm: shapes do not chain, or c is narrower than one vector")
    return k, (1, a.shape[1]) if transpose_a else (a.shape[1], 1)


@njit(cache=True, nogil=True)
def gemm(a, transpose_a, b, c):
    """c <- op(a) @ b on the calling thread; every array C-contiguous, c at least ``lanes`` wide."""
    k, (ai, ak) = _shape(a, transpose_a, b, c)
    starts, wide = _column_tiles(c.shape[1], lanes(c))
    for lo in range(0, c.shape[0], CHUNK):  # a chunk of a's rows stays in cache across b's columns
        for t in range(len(starts)):
            _unit(a, ai, ak, b, c, k, starts[t], t < wide, lo, min(lo + CHUNK, c.shape[0]))


@njit(cache=True, nogil=True, parallel=True)
def gemm_parallel(a, transpose_a, b, c):
    """``gemm`` over Numba's threads: one work unit per (column tile, chunk of rows)."""
    k, (ai, ak) = _shape(a, transpose_a, b, c)
    starts, wide = _column_tiles(c.shape[1], lanes(c))
    chunks = (c.shape[0] + CHUNK - 1) // CHUNK
    for u in prange(len(starts) * chunks):  # tile-major: each thread reads its own share of b
        t, lo = u // chunks, u % chunks * CHUNK
        _unit(a, ai, ak, b, c, k, starts[t], t < wide, lo, min(lo + CHUNK, c.shape[0]))
