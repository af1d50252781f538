"""How ``gemm_cpu``'s compiled launcher reaches its work function: through its address.

Numba compiles every function into a module of its own and optimizes and emits every callee again inside
each caller, and a parallel gufunc compiles its kernel again into its loop (with the work as the gufunc's
kernel, the launcher took twice as long to compile). A call through an address (a ``cfunc``'s, Numba's
public C-callback API) compiles the callee once.
``gemm_cpu._work`` is the callee: 8 pointers (a, b, c, the padded copies, the tiles' starts and kinds, the
counter) and 8 integers.
"""

from __future__ import annotations

from llvmlite import ir
from numba import types
from numba.extending import intrinsic


@intrinsic
def call(typingctx, work, a, b, c, bp, cp, starts, kinds, counter, ai, ak, k, m, n, pad, tiles, whole):
    """Call the ``_work`` at address ``work`` on these arrays' data and these integers."""
    arrays = (a, b, c, bp, cp, starts, kinds, counter)
    if not all(isinstance(x, types.Array) for x in arrays):
        return None
    sig = types.none(work, *arrays, ai, ak, k, m, n, pad, tiles, whole)

    def codegen(context, builder, sig, args):
        values = [context.make_array(t)(context, builder, v).data for t, v in zip(sig.args[1:9], args[1:9])]
        values += [context.cast(builder, v, t, types.int64) for t, v in zip(sig.args[9:], args[9:])]
        fn = ir.FunctionType(ir.VoidType(), [v.type for v in values])
        address = context.cast(builder, args[0], sig.args[0], types.int64)
        builder.call(builder.inttoptr(address, fn.as_pointer()), values)
        return context.get_dummy_value()

    return sig, codegen
