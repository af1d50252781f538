"""``gemm_cpu``'s register tile, written as LLVM IR: ``ROWS`` rows by one or two 64-byte vectors of columns.

``simd.py`` explains why the vectors are written as LLVM IR: the backend emits each as one zmm instruction where
AVX-512 exists. A tile keeps its accumulators in registers through its steps of the inner dimension: per step,
one vector load of ``b`` per vector, one broadcast of ``a`` per row and one fused multiply-add per accumulator.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import LINE, data_pointer, memory_dtype


def tile(rows: int, vectors: int):
    """An intrinsic ``tile(a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more)``: for r < rows and the ``vectors``
    64-byte vectors of columns from b0 and c0, ``c[c0 + r*cs + j] = sum_t a[a0 + r*ai + t*ak] *
    b[b0 + t*bk + j]`` over t < k in order, added to what c holds when ``more`` is true (flat element
    offsets into arrays or pointers; no bounds checks)."""

    @intrinsic
    def tile(typingctx, a, a0, ai, ak, b, b0, bk, c, c0, cs, k, more):
        dtype = memory_dtype(a)
        if dtype not in (types.float32, types.float64) or memory_dtype(b) != dtype or memory_dtype(c) != dtype:
            return None

        def codegen(context, builder, sig, args):
            dt = dtype
            lanes, size = LINE * 8 // dt.bitwidth, dt.bitwidth // 8
            vec, i64 = ir.VectorType(context.get_value_type(dt), lanes), ir.IntType(64)
            a0, ai, ak, b0, bk, c0, cs, kn = (context.cast(builder, args[i], sig.args[i], types.int64)
                                              for i in (1, 2, 3, 5, 6, 8, 9, 10))
            data = [data_pointer(context, builder, sig.args[i], args[i]) for i in (0, 4, 7)]

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
