"""One explicit cache-line-wide vector step for the loop kernel's hot loops, and the aligned buffers it needs.

The loop kernel spends most of an epoch adding multiples of 100-wide rows into other rows. On the
AVX-512 machines we measure on, a 64-byte store moves twice the bytes of a 32-byte one per cycle, but LLVM
targets those cores with 256-bit vectors (its "prefer 256-bit" tuning), and its loop vectorizer also puts
runtime overlap checks before each short loop whose destination rows it cannot prove distinct. ``axpy``
states one 64-byte step in LLVM IR instead: a vector of 8 float64 or 16 float32, which the backend emits as
one zmm instruction where AVX-512 exists and splits into narrower ones elsewhere, so it is correct on any
CPU. Rows padded to whole cache lines and 64-byte aligned keep each step inside one line (an unpadded
row makes steps straddle two lines).
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.extending import intrinsic

LINE = 64  # bytes per vector step: one cache line, one AVX-512 register


def memory_dtype(t, ndim: int | None = None):
    """The element type of ``t`` where it is an array (of ``ndim`` dimensions, if given) or a pointer, else
    None: what the intrinsics here and in ``gemm_tile`` step through (arrays in kernels, pointers in C
    callbacks)."""
    if isinstance(t, types.Array) and ndim in (None, t.ndim):
        return t.dtype
    return t.dtype if isinstance(t, types.CPointer) else None


def data_pointer(context, builder, kind, value):
    """The address of element 0 of ``value``, an array or pointer of Numba type ``kind`` (in codegen)."""
    return context.make_array(kind)(context, builder, value).data if isinstance(kind, types.Array) else value


@intrinsic
def axpy(typingctx, dst, d, a, src, s):
    """``dst[d:d + L] += a * src[s:s + L]`` as one vector step (multiply-add may fuse), where L is
    ``LINE`` bytes of the dtype; ``dst`` and ``src`` are 1-D arrays or pointers (``carray``-free callbacks
    index their pointers). No bounds checks: callers keep both ranges inside their memory."""
    dtype = memory_dtype(dst, 1)
    if not (dtype in (types.float32, types.float64) and memory_dtype(src, 1) == dtype
            and isinstance(d, types.Integer) and isinstance(s, types.Integer) and isinstance(a, types.Number)):
        return None
    lanes = LINE // (dtype.bitwidth // 8)

    def codegen(context, builder, signature, args):
        vec = ir.VectorType(context.get_value_type(dtype), lanes)
        align = dtype.bitwidth // 8  # element alignment: correct on any address, as fast when aligned

        def pointer(kind, where, offset):
            return builder.bitcast(builder.gep(data_pointer(context, builder, kind, where), [offset]), vec.as_pointer())

        out = pointer(dst, args[0], args[1])
        scale = context.cast(builder, args[2], signature.args[2], dtype)
        splat = builder.insert_element(ir.Constant(vec, ir.Undefined), scale, ir.Constant(ir.IntType(32), 0))
        splat = builder.shuffle_vector(splat, ir.Constant(vec, ir.Undefined), ir.Constant(
            ir.VectorType(ir.IntType(32), lanes), [0] * lanes))
        x = builder.load(pointer(src, args[3], args[4]), align=align, typ=vec)
        y = builder.load(out, align=align, typ=vec)
        total = builder.fadd(builder.fmul(splat, x, flags=("contract",)), y, flags=("contract",))
        builder.store(total, out, align=align)
        return context.get_dummy_value()

    return types.none(dst, d, a, src, s), codegen


@intrinsic
def lanes_of(typingctx, x):
    """Elements of array or pointer ``x``'s dtype per vector step: a constant, with nothing to compile (a
    function of its own compiled for longer than the loops that read it)."""
    dtype = x.dtype if isinstance(x, (types.Array, types.CPointer)) else None
    if not isinstance(dtype, types.Number):
        return None
    lanes = LINE // (dtype.bitwidth // 8)

    def codegen(context, builder, signature, args):
        return context.get_constant(types.int64, lanes)

    return types.int64(x), codegen


@njit(cache=True, nogil=True)
def padded(n, x):
    """``n`` rounded up to whole vector steps of ``x``'s dtype."""
    step = lanes_of(x)
    return (n + step - 1) // step * step


@njit(cache=True, nogil=True)
def aligned_zeros(n, like):
    """A zeroed 1-D array of ``n`` elements of ``like``'s dtype starting on a 64-byte boundary."""
    buf = np.zeros(n + LINE // like.itemsize, like.dtype)
    skip = (-buf.ctypes.data) % LINE // like.itemsize
    return buf[skip:skip + n]


def host_aligned_zeros(n: int, dtype) -> np.ndarray:
    """``aligned_zeros`` for callers in Python: the same buffer, with nothing to compile."""
    itemsize = np.dtype(dtype).itemsize
    buf = np.zeros(n + LINE // itemsize, dtype)
    skip = (-buf.ctypes.data) % LINE // itemsize
    return buf[skip:skip + n]
