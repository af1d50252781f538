"""The first layer's inputs on the CPU: gather a batch, find the columns it lights, and compact both
operands of the first layer's GEMMs to those columns.

A column that is zero in every sample of a batch adds nothing to ``x @ w1`` and has a zero row in
``x.T @ delta``. A batch of 128 MNIST images lights about two thirds of the 784 pixels, so both GEMMs
shrink by a third for the price of two small copies: the batch's
columns (from cache, just gathered) and the matching rows of ``w1``. The optimizer then updates the
unlit rows with a zero gradient (``vectorized_cpu``'s kernels take the row list).

The gather reads a batch's rows from wherever the shuffle put them, so each row starts with a cache
miss that the hardware prefetcher cannot foresee: it asks for the lines of the row ``AHEAD`` places on
while it copies the current one, for uint8 pixels and float32 features alike.
"""

from __future__ import annotations

from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

COMPACT_BELOW = 0.9  # compact only when the batch lights under this fraction of the columns
AHEAD = 4  # rows prefetched ahead of the one being copied (far enough to hide a miss; more gains nothing)


@intrinsic
def prefetch(typingctx, arr, row, col):
    """Ask for the cache line holding ``arr[row, col]`` (any layout); a hint that never faults. LLVM
    drops it on CPUs without a prefetch instruction."""
    if not (isinstance(arr, types.Array) and arr.ndim == 2 and isinstance(row, types.Integer)
            and isinstance(col, types.Integer)):
        return None

    def codegen(context, builder, sig, args):
        ary = context.make_array(sig.args[0])(context, builder, args[0])
        where = [context.cast(builder, v, t, types.intp) for v, t in zip(args[1:], sig.args[1:])]
        item = cgutils.get_item_pointer(context, builder, sig.args[0], ary, where, wraparound=False)
        i32 = ir.IntType(32)
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(
            ir.VoidType(), [ir.IntType(8).as_pointer(), i32, i32, i32]), "llvm.prefetch.p0i8")
        # read, keep in every cache level, data cache
        builder.call(fn, [builder.bitcast(item, ir.IntType(8).as_pointer()), ir.Constant(i32, 0),
                          ir.Constant(i32, 3), ir.Constant(i32, 1)])
        return context.get_dummy_value()

    return types.none(arr, row, col), codegen


@intrinsic
def _integers(typingctx, arr):
    """Whether ``arr`` holds integers (pixels, to be scaled), as a constant of the compiled code: LLVM then
    compiles the copy for the inputs' kind alone (a test at run time had it compile both copies)."""
    if not isinstance(arr, types.Array):
        return None
    flag = isinstance(arr.dtype, types.Integer)

    def codegen(context, builder, sig, args):
        return context.get_constant(types.boolean, flag)

    return types.boolean(arr), codegen


@njit(cache=True, nogil=True)
def gather(inputs, batch, divisor, x, active, lit, w, xc, wc, below):
    """x[s] <- inputs[batch[s]] / divisor; ``active`` gets the lit columns in order. Returns their count.
    When the count is under ``below``, also compacts both operands into the flat buffers ``xc`` and ``wc``:
    their first n * count and count * w.shape[1] entries become x[:, active] and w[active], C order.

    ``divisor`` has x's dtype, so uint8 pixels are scaled exactly as NumPy's ``x / 255`` in that dtype;
    float inputs (features) are copied as they are.
    ``lit`` (bool, one per column) is scratch, passed in: an allocation here would bring Numba's
    ``np.zeros`` into the kernel, which compiled for longer than the gather itself. Gather and compaction
    are one kernel because a first run pays for each compiled function.
    """
    n, f = x.shape
    for j in range(f):
        lit[j] = False
    scale = _integers(inputs)  # pixels are divided; features are copied as they are
    step = 64 // inputs.itemsize  # elements per cache line
    for s in range(-AHEAD, n):  # ask for row s + AHEAD's lines, then copy row s
        if s + AHEAD < n:
            ahead = batch[s + AHEAD]
            for j in range(0, inputs.shape[1], step):
                prefetch(inputs, ahead, j)
        if s < 0:
            continue
        r = batch[s]
        for j in range(f):
            v = x.dtype.type(inputs[r, j])
            if scale:
                v /= divisor
            x[s, j] = v
            lit[j] |= v != 0
    count = 0
    for j in range(f):
        if lit[j]:
            active[count] = j
            count += 1
    if count < below:
        for s in range(n):
            for c in range(count):
                xc[s * count + c] = x[s, active[c]]
        cols = w.shape[1]
        for c in range(count):
            row = active[c]
            for j in range(cols):
                wc[c * cols + j] = w[row, j]
    return count
