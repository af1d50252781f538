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

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

FTZ_DAZ = 0x8040  # MXCSR bits 15 (flush results to zero) and 6 (read subnormal inputs as zero)
X86 = platform.machine().lower() in ("x86_64", "amd64", "i386", "i686", "x86")


def _mxcsr_call(builder, name: str, slot) -> None:
    fnty = ir.FunctionType(ir.VoidType(), [cgutils.voidptr_t])
    builder.call(cgutils.get_or_insert_function(builder.module, fnty, name), [builder.bitcast(slot, cgutils.voidptr_t)])


# Intrinsics, not small jitted functions: those were inlined into each kernel at a cost in compile time.
@intrinsic
def flush_subnormals(typingctx):
    """Set FTZ and DAZ; returns the previous register (0 where there is none), for ``restore``."""
    def codegen(context, builder, signature, args):
        i32 = ir.IntType(32)
        if not X86:
            return ir.Constant(i32, 0)
        slot = cgutils.alloca_once(builder, i32)
        _mxcsr_call(builder, "llvm.x86.sse.stmxcsr", slot)
        saved = builder.load(slot)
        _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", cgutils.alloca_once_value(
            builder, builder.or_(saved, ir.Constant(i32, FTZ_DAZ))))
        return saved

    return types.uint32(), codegen


@intrinsic
def restore(typingctx, saved):
    """Load ``saved`` (``flush_subnormals``'s answer) back into the register."""
    if saved != types.uint32:
        return None

    def codegen(context, builder, signature, args):
        if X86:
            _mxcsr_call(builder, "llvm.x86.sse.ldmxcsr", cgutils.alloca_once_value(builder, args[0]))
        return context.get_dummy_value()

    return types.none(saved), codegen
