"""Flush-to-zero for the CPU kernels: read and write the x86 floating-point control register (MXCSR).

Adam drives the weights of never-lit pixels and dead units towards zero geometrically, and after a few
epochs on MNIST their products (decay times weight, moment times step) fall below the smallest normal
float. x86 cores compute each such subnormal through a microcode assist of about a hundred cycles, which
made Adam several times slower late in a fit.
The optimizer kernels therefore run with FTZ and DAZ set (subnormal results and inputs read as zero),
as TensorFlow's CPU kernels do, and restore the caller's register before returning. Values below
1.2e-38 (float32) or 2.2e-308 (float64) become zero, which no training result can tell apart.

Elsewhere (ARM and others handle subnormals at full speed) both functions compile to nothing.
"""

from __future__ import annotations

import platform

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ_DAZ = 0x8040  # MXCSR bits 15 (flush results to zero) and 6 (read subnormal inputs as zero)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _mxcsr_call(builder, name: str, slot) -> None:
    fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t])
    builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), [builder.bitcast(slot, cgutils.voidptr_t)])


if X86:
    @intrinsic
    def get_fpcr(typingctx):
        """The calling thread's MXCSR."""
        def codegen(context, builder, signature, args):
            slot = cgutils.alloca_once(builder, ir.IntType(32))
            _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
            return builder.load(slot)

        return types.uint32(), codegen

    @intrinsic
    def set_fpcr(typingctx, value):
        """Load ``value`` into the calling thread's MXCSR."""
        def codegen(context, builder, signature, args):
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", cgutils.alloca_once_value(builder, args[0]))
            return context.get_dummy_value()

        return types.none(types.uint32), codegen
else:
    @njit(inline="always")
    def get_fpcr():
        return np.uint32(0)

    @njit(inline="always")
    def set_fpcr(value):
        return None


@njit(inline="always")
def flush_subnormals():
    """Set FTZ and DAZ; returns the previous register, for ``restore``."""
    saved = get_fpcr()
    if X86:
        set_fpcr(saved | np.uint32(FTZ_DAZ))
    return saved


@njit(inline="always")
def restore(saved):
    if X86:
        set_fpcr(saved)
