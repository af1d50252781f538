"""The per-sample loop's two row passes over the first layer, compiled once and called through an address.

``loop_cpu`` and ``loop_cpu_deep`` run each block of samples between two passes over the rows of ``w1``
that the block touches: ``forward`` adds each entry's rows to its sample's forward product, ``update``
applies the block's deferred updates. Both are most of an epoch and are bound by stores (``loop_cpu``
explains the layout).

Numba compiles every function into a module of its own and optimizes and emits every callee again inside
each caller: as plain callees, the two passes were compiled again in every setting's epoch kernel. Here each
is a C callback (Numba's public ``cfunc``), compiled once per dtype and cached, that the kernels call through
its address (``call``), as ``gemm_cpu`` does its tiles. Their arguments are pointers, which LLVM is told
never overlap (``NOALIAS``, the flag the passes had as functions), so a pass's updates of a row still share
one load and one store of it.
"""

from __future__ import annotations

import functools

import numpy as np
from llvmlite import ir
from numba import cfunc, types
from numba.extending import intrinsic

from .simd import axpy, data_pointer, lanes_of, memory_dtype


def _noalias_option() -> dict:
    """``{"noalias": True}`` where this Numba can compile with it, else ``{}``.

    The loop's arrays never overlap; told so (LLVM's noalias on every array or pointer argument), LLVM drops
    the overlap checks it otherwise runs before each of the epoch's millions of short vectorized loops.
    Numba compiles its parallel loops with this flag but does not offer it to ``njit`` or ``cfunc``, so the
    option is registered here; a Numba without the flag gets the plain kernels.
    """
    try:
        from numba.core import compiler, cpu, options
    except ImportError:
        return {}
    if "noalias" not in getattr(compiler.Flags, "options", {}):
        return {}
    if not hasattr(cpu.CPUTargetOptions, "noalias"):
        cpu.CPUTargetOptions.noalias = options.TargetOptions.Mapping("noalias")
    return {"noalias": True}


NOALIAS = _noalias_option()
FORWARD, UPDATE = 0, 1  # the callback's passes


def _passes(pass_, x, y, gptr, grow, esam, evals, width, g0, g1, lr):
    """Both passes in one callback (compiled once, not twice), on pointers (``grow`` and ``evals`` two per
    entry, row-major), indexed directly (``carray`` views compiled code of their own, per pointer type):

    - ``FORWARD`` (``x`` the block's forward rows, ``y`` w1; ``lr`` unused): each entry of groups g0:g1 adds
      its two rows of w1 times its values to its sample's forward row (rows ``width`` apart), pixel by pixel
      as the reference sums, one store per sample;
    - ``UPDATE`` (``x`` w1, ``y`` the block's deltas): each of a group's two rows of w1 gains lr times its
      entries' values times their samples' rows of deltas, each row written once.

    Entries go four at a time, so a pass's four products with a row share one load (forward) or one load
    and one store (update) of it."""
    step = lanes_of(x)
    if pass_ == FORWARD:
        for g in range(g0, g1):  # each pair of rows of w1 read once for the whole block
            ra, rb = grow[2 * g] * width, grow[2 * g + 1] * width
            p, stop = gptr[g], gptr[g + 1]
            while p + 4 <= stop:
                a0, a1, a2, a3 = evals[2 * p], evals[2 * p + 2], evals[2 * p + 4], evals[2 * p + 6]
                b0, b1, b2, b3 = evals[2 * p + 1], evals[2 * p + 3], evals[2 * p + 5], evals[2 * p + 7]
                o0, o1, o2, o3 = esam[p] * width, esam[p + 1] * width, esam[p + 2] * width, esam[p + 3] * width
                for j in range(0, width, step):
                    axpy(x, o0 + j, a0, y, ra + j)
                    axpy(x, o0 + j, b0, y, rb + j)
                    axpy(x, o1 + j, a1, y, ra + j)
                    axpy(x, o1 + j, b1, y, rb + j)
                    axpy(x, o2 + j, a2, y, ra + j)
                    axpy(x, o2 + j, b2, y, rb + j)
                    axpy(x, o3 + j, a3, y, ra + j)
                    axpy(x, o3 + j, b3, y, rb + j)
                p += 4
            while p < stop:
                a0, b0, o0 = evals[2 * p], evals[2 * p + 1], esam[p] * width
                for j in range(0, width, step):
                    axpy(x, o0 + j, a0, y, ra + j)
                    axpy(x, o0 + j, b0, y, rb + j)
                p += 1
    else:
        for g in range(g0, g1):
            ra, rb = grow[2 * g] * width, grow[2 * g + 1] * width
            p, stop = gptr[g], gptr[g + 1]
            while p + 4 <= stop:
                a0, a1, a2, a3 = lr * evals[2 * p], lr * evals[2 * p + 2], lr * evals[2 * p + 4], lr * evals[2 * p + 6]
                b0, b1 = lr * evals[2 * p + 1], lr * evals[2 * p + 3]
                b2, b3 = lr * evals[2 * p + 5], lr * evals[2 * p + 7]
                o0, o1, o2, o3 = esam[p] * width, esam[p + 1] * width, esam[p + 2] * width, esam[p + 3] * width
                for j in range(0, width, step):
                    axpy(x, ra + j, a0, y, o0 + j)
                    axpy(x, ra + j, a1, y, o1 + j)
                    axpy(x, ra + j, a2, y, o2 + j)
                    axpy(x, ra + j, a3, y, o3 + j)
                    axpy(x, rb + j, b0, y, o0 + j)
                    axpy(x, rb + j, b1, y, o1 + j)
                    axpy(x, rb + j, b2, y, o2 + j)
                    axpy(x, rb + j, b3, y, o3 + j)
                p += 4
            while p < stop:
                a0, b0, o0 = lr * evals[2 * p], lr * evals[2 * p + 1], esam[p] * width
                for j in range(0, width, step):
                    axpy(x, ra + j, a0, y, o0 + j)
                    axpy(x, rb + j, b0, y, o0 + j)
                p += 1


@functools.cache
def compiled(dtype: np.dtype):
    """Both passes as one C callback for float ``dtype`` (compiled on first use: a run compiles its own
    dtype only; Numba caches it on disk)."""
    dt = types.float32 if np.dtype(dtype) == np.float32 else types.float64
    p, i64, i32 = types.CPointer(dt), types.int64, types.CPointer(types.int32)
    sig = types.void(i64, p, p, types.CPointer(i64), i32, i32, p, i64, i64, i64, dt)
    return cfunc(sig, cache=True, nogil=True, fastmath={"contract"}, **NOALIAS)(_passes)


def address(dtype: np.dtype) -> int:
    """The address of ``compiled(dtype)``, for ``call``."""
    return compiled(dtype).address


@intrinsic
def call(typingctx, fn, pass_, x, y, gptr, grow, esam, evals, width, g0, g1, lr):
    """Run pass ``pass_`` (``FORWARD`` or ``UPDATE``) of the callback at address ``fn`` on ``x`` and ``y``
    (``fwd`` and ``w1p``, or ``w1p`` and ``delta``) for groups g0:g1 of the layout (``gptr``, ``grow``,
    ``esam``, ``evals``): C-contiguous arrays (``x``, ``y`` 1-D, ``grow``, ``evals`` 2-D) or pointers, of the
    dtypes of ``compiled``'s signature (``x``, ``y``, ``evals`` and ``lr`` of one float dtype)."""
    arrays = (x, y, gptr, grow, esam, evals)
    dims = (1, 1, 1, 2, 1, 2)
    kinds = [memory_dtype(a, d) for a, d in zip(arrays, dims)]
    if not (isinstance(pass_, types.Integer) and all(not isinstance(a, types.Array) or a.layout == "C" for a in arrays)
            and kinds[0] in (types.float32, types.float64) and kinds[0] == kinds[1] == kinds[5]
            and kinds[2] == types.int64 and kinds[3] == kinds[4] == types.int32):
        return None
    sig = types.none(fn, pass_, *arrays, width, g0, g1, kinds[0])

    def codegen(context, builder, sig, args):
        i64 = lambda k: context.cast(builder, args[k], sig.args[k], types.int64)  # noqa: E731
        pointers = [data_pointer(context, builder, t, v) for t, v in zip(sig.args[2:8], args[2:8])]
        values = [i64(1)] + pointers + [i64(8), i64(9), i64(10), args[11]]
        fntype = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        target = builder.inttoptr(context.cast(builder, args[0], sig.args[0], types.int64), fntype.as_pointer())
        builder.call(target, values)
        return context.get_dummy_value()

    return sig, codegen
