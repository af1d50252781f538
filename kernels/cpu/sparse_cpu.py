"""The first layer's two products when every step trains on the whole training set in order (full-batch
gradient descent): the images as a sparse matrix built once, times narrow dense matrices.

A step of full-batch descent multiplies the same 60,000 images by the first layer's weights and by its
deltas. Dense, that streams the scaled images twice a step (376 MB in float64) through a GEMM whose other
side is 16 columns wide: bound by memory, not arithmetic. MNIST lights 19% of its pixels, so the images
are kept once as compressed rows (``csr``: row starts, pixel numbers as uint16, pixel values already
scaled to the dtype), a fifth of the bytes and of the multiply-adds.

Both products walk a sample's nonzero pixels and move one 64-byte line of a weight or gradient row per
pixel (``simd.LINE``): the forward product sums the lines of w into four vector accumulators held in
registers (a sum into the output row in memory would make every pixel wait for the previous one's store),
the backward product adds the sample's delta line into each lit pixel's gradient line. Rows of w and of
the gradient are padded to whole lines by the caller, and start on a line (a misaligned line straddles
two cache lines: every access to it is two).

``rows`` is the dense counterpart for the small later layers of ``whole_cpu``'s step: up to eight output
lines at a time, each in its own register, so that every line of the other side is read once for all
eight.
"""

from __future__ import annotations

import numpy as np
from llvmlite import ir
from numba import njit, types
from numba.core import cgutils
from numba.extending import intrinsic

from .simd import LINE, lanes_of


def csr(pixels: np.ndarray, dtype) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row starts, column numbers, values in ``dtype``) of a 2-D array's nonzero entries: uint8 pixels
    scaled by 1/255 (NumPy's own ``x / 255`` in the dtype, the same numbers a dense scaled copy holds), any
    other features as given. The entries are picked in one pass (``_compress``): NumPy's ``nonzero`` and
    boolean indexing take seconds over MNIST's 47 million, which a full-batch fit would wait for."""
    pixels = np.ascontiguousarray(pixels)
    starts = np.zeros(len(pixels) + 1, np.int64)
    np.cumsum(np.count_nonzero(pixels, axis=1), out=starts[1:])
    columns = np.empty(starts[-1], np.uint16 if pixels.shape[1] <= 65536 else np.int64)
    raw = np.empty(starts[-1], pixels.dtype)
    _compress(pixels, columns, raw)
    values = raw / np.dtype(dtype).type(255) if pixels.dtype == np.uint8 else raw
    return starts, columns, values.astype(dtype, copy=False)


@njit(cache=True, nogil=True)
def _compress(x, columns, values):
    """The nonzero entries of the rows of ``x`` in row order: their column numbers and values."""
    k = 0
    for s in range(x.shape[0]):
        for j in range(x.shape[1]):
            if x[s, j] != 0:
                columns[k] = j
                values[k] = x[s, j]
                k += 1


def _pieces(context, builder, sig, args):
    """Data pointers of the array arguments and int64 values of the integer ones, in argument order."""
    out = []
    for ty, val in zip(sig.args, args):
        if isinstance(ty, types.Array):
            out.append(context.make_array(ty)(context, builder, val).data)
        else:
            out.append(context.cast(builder, val, ty, types.int64))
    return out


def _line(builder, vec, data, index, align):
    """Load the vector starting at element ``index`` of ``data`` (element alignment: any address works)."""
    return builder.load(builder.bitcast(builder.gep(data, [index]), vec.as_pointer()), align=align)


def _splat(builder, vec, scalar):
    lanes = vec.count
    one = builder.insert_element(ir.Constant(vec, ir.Undefined), scalar, ir.Constant(ir.IntType(32), 0))
    return builder.shuffle_vector(one, ir.Constant(vec, ir.Undefined),
                                  ir.Constant(ir.VectorType(ir.IntType(32), lanes), [0] * lanes))


def _checked(w, columns, values):
    return (isinstance(w, types.Array) and w.ndim == 1 and w.dtype in (types.float32, types.float64)
            and isinstance(columns, types.Array) and isinstance(columns.dtype, types.Integer)
            and isinstance(values, types.Array) and values.dtype == w.dtype)


@intrinsic
def gather_line(typingctx, out, o, init, i, w, width, c, columns, values, lo, hi):
    """``out[o:o + L] = init[i:i + L] + sum over k in [lo, hi) of values[k] * w[columns[k] * width + c:...
    + L]``, L one line of the dtype, summed in four interleaved vector accumulators (pixels k, k+4, ...
    in each; the first starts from ``init``'s line). No bounds checks: callers keep every line inside its
    array."""
    if not (_checked(w, columns, values) and isinstance(out, types.Array) and out.dtype == w.dtype
            and isinstance(init, types.Array) and init.dtype == w.dtype):
        return None
    align = w.dtype.bitwidth // 8
    lanes = LINE // align

    def codegen(context, builder, sig, args):
        out_p, o_, init_p, i_, w_p, width_, c_, col_p, val_p, lo_, hi_ = _pieces(context, builder, sig, args)
        vec = ir.VectorType(context.get_value_type(w.dtype), lanes)
        i64 = ir.IntType(64)
        accs = [cgutils.alloca_once_value(builder, _line(builder, vec, init_p, i_, align))]
        accs += [cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(3)]

        def term(k):
            col = context.cast(builder, builder.load(builder.gep(col_p, [k])), columns.dtype, types.int64)
            x = _line(builder, vec, w_p, builder.add(builder.mul(col, width_), c_), align)
            return builder.fmul(_splat(builder, vec, builder.load(builder.gep(val_p, [k]))), x, flags=("contract",))

        def add(acc, k):
            builder.store(builder.fadd(builder.load(acc), term(k), flags=("contract",)), acc)

        quads = builder.add(lo_, builder.mul(builder.sdiv(builder.sub(hi_, lo_), ir.Constant(i64, 4)),
                                             ir.Constant(i64, 4)))
        with cgutils.for_range_slice(builder, lo_, quads, ir.Constant(i64, 4)) as (k, _):
            for a, acc in enumerate(accs):
                add(acc, builder.add(k, ir.Constant(i64, a)))
        with cgutils.for_range_slice(builder, quads, hi_, ir.Constant(i64, 1)) as (k, _):
            add(accs[0], k)
        v = [builder.load(a) for a in accs]
        total = builder.fadd(builder.fadd(v[0], v[1]), builder.fadd(v[2], v[3]))
        builder.store(total, builder.bitcast(builder.gep(out_p, [o_]), vec.as_pointer()), align=align)
        return context.get_dummy_value()

    return types.none(out, o, init, i, w, width, c, columns, values, lo, hi), codegen


@intrinsic
def scatter_line(typingctx, g, width, c, columns, values, lo, hi, src, s):
    """``g[columns[k] * width + c:... + L] += values[k] * src[s:s + L]`` for k in [lo, hi) (distinct
    columns), L one line of the dtype. No bounds checks."""
    if not (_checked(g, columns, values) and isinstance(src, types.Array) and src.dtype == g.dtype):
        return None
    align = g.dtype.bitwidth // 8
    lanes = LINE // align

    def codegen(context, builder, sig, args):
        g_p, width_, c_, col_p, val_p, lo_, hi_, src_p, s_ = _pieces(context, builder, sig, args)
        vec = ir.VectorType(context.get_value_type(g.dtype), lanes)
        d = _line(builder, vec, src_p, s_, align)
        with cgutils.for_range_slice(builder, lo_, hi_, ir.Constant(ir.IntType(64), 1)) as (k, _):
            col = context.cast(builder, builder.load(builder.gep(col_p, [k])), columns.dtype, types.int64)
            ptr = builder.bitcast(builder.gep(g_p, [builder.add(builder.mul(col, width_), c_)]), vec.as_pointer())
            term = builder.fmul(_splat(builder, vec, builder.load(builder.gep(val_p, [k]))), d, flags=("contract",))
            old = builder.load(ptr, align=align)
            builder.store(builder.fadd(old, term, flags=("contract",)), ptr, align=align)
        return context.get_dummy_value()

    return types.none(g, width, c, columns, values, lo, hi, src, s), codegen


def _rows_intrinsic(q: int):
    """``rows`` (below) for exactly ``q`` output lines: q vector accumulators held in registers."""
    @intrinsic
    def rows_q(typingctx, out, o, ostep, init, i, istep, src, s, sstep, vals, v, vstep, vterm, terms):
        if not (isinstance(src, types.Array) and src.ndim == 1 and src.dtype in (types.float32, types.float64)
                and all(isinstance(a, types.Array) and a.dtype == src.dtype for a in (out, init, vals))):
            return None
        align = src.dtype.bitwidth // 8

        def codegen(context, builder, sig, args):
            out_p, o_, ostep_, init_p, i_, istep_, src_p, s_, sstep_, val_p, v_, vstep_, vterm_, terms_ = \
                _pieces(context, builder, sig, args)
            vec = ir.VectorType(context.get_value_type(src.dtype), LINE // align)
            i64 = ir.IntType(64)
            at = [(builder.add(o_, builder.mul(ostep_, ir.Constant(i64, p))),
                   builder.add(i_, builder.mul(istep_, ir.Constant(i64, p)))) for p in range(q)]
            accs = [cgutils.alloca_once_value(builder, _line(builder, vec, init_p, start, align)) for _, start in at]
            with cgutils.for_range(builder, terms_) as loop:
                t = loop.index
                x = _line(builder, vec, src_p, builder.add(s_, builder.mul(t, sstep_)), align)
                first = builder.add(v_, builder.mul(t, vterm_))
                for p, acc in enumerate(accs):
                    k = builder.add(first, builder.mul(vstep_, ir.Constant(i64, p)))
                    term = builder.fmul(_splat(builder, vec, builder.load(builder.gep(val_p, [k]))), x,
                                        flags=("contract",))
                    builder.store(builder.fadd(builder.load(acc), term, flags=("contract",)), acc)
            for (to, _), acc in zip(at, accs):
                builder.store(builder.load(acc), builder.bitcast(builder.gep(out_p, [to]), vec.as_pointer()),
                              align=align)
            return context.get_dummy_value()

        return types.none(out, o, ostep, init, i, istep, src, s, sstep, vals, v, vstep, vterm, terms), codegen

    return rows_q


_ROWS8, _ROWS4, _ROWS2, _ROWS1 = (_rows_intrinsic(q) for q in (8, 4, 2, 1))


@njit(cache=True, nogil=True)
def rows(out, o, ostep, init, i, istep, src, s, sstep, vals, v, vstep, vterm, terms, n):
    """A dense product by lines: for p < n, ``out[o + p * ostep:... + L] = init[i + p * istep:... + L] +
    sum over t < terms of vals[v + p * vstep + t * vterm] * src[s + t * sstep:... + L]``, L one line of the
    dtype, summed in order of t (``init`` may be ``out``: a sum into it; ``out`` overlaps neither ``src``
    nor ``vals``). Up to eight output lines share each line of ``src`` they read (rows of a @ w share w's
    rows; rows of a.T @ d share d's), each summed in its own register. No bounds checks."""
    p = 0
    while p < n:
        o_p, i_p, v_p = o + p * ostep, i + p * istep, v + p * vstep
        if p + 8 <= n:
            _ROWS8(out, o_p, ostep, init, i_p, istep, src, s, sstep, vals, v_p, vstep, vterm, terms)
            p += 8
        elif p + 4 <= n:
            _ROWS4(out, o_p, ostep, init, i_p, istep, src, s, sstep, vals, v_p, vstep, vterm, terms)
            p += 4
        elif p + 2 <= n:
            _ROWS2(out, o_p, ostep, init, i_p, istep, src, s, sstep, vals, v_p, vstep, vterm, terms)
            p += 2
        else:
            _ROWS1(out, o_p, ostep, init, i_p, istep, src, s, sstep, vals, v_p, vstep, vterm, terms)
            p += 1


def _lines_intrinsics(q: int):
    """``gather_line`` and ``scatter_line`` for ``q`` adjacent lines at once: each pixel's column number and
    value are loaded and its address formed once for the q lines (one line at a time, that overhead is most
    of the instructions), and q independent chains of multiply-adds keep the FMA units busy."""
    @intrinsic
    def gather_q(typingctx, out, o, w, width, c, columns, values, lo, hi):
        """``out[o + p L:... + L] = sum over k in [lo, hi) of values[k] * w[columns[k] * width + c + p L:...]``
        for p < q, L one line, each sum in pixel order."""
        if not (_checked(w, columns, values) and isinstance(out, types.Array) and out.dtype == w.dtype):
            return None
        align = w.dtype.bitwidth // 8
        lanes = LINE // align

        def codegen(context, builder, sig, args):
            out_p, o_, w_p, width_, c_, col_p, val_p, lo_, hi_ = _pieces(context, builder, sig, args)
            vec = ir.VectorType(context.get_value_type(w.dtype), lanes)
            i64 = ir.IntType(64)
            accs = [cgutils.alloca_once_value(builder, ir.Constant(vec, None)) for _ in range(q)]
            with cgutils.for_range_slice(builder, lo_, hi_, ir.Constant(i64, 1)) as (k, _):
                col = context.cast(builder, builder.load(builder.gep(col_p, [k])), columns.dtype, types.int64)
                base = builder.add(builder.mul(col, width_), c_)
                v = _splat(builder, vec, builder.load(builder.gep(val_p, [k])))
                for p, acc in enumerate(accs):
                    x = _line(builder, vec, w_p, builder.add(base, ir.Constant(i64, p * lanes)), align)
                    builder.store(builder.fadd(builder.load(acc), builder.fmul(v, x, flags=("contract",)),
                                               flags=("contract",)), acc)
            for p, acc in enumerate(accs):
                at = builder.gep(out_p, [builder.add(o_, ir.Constant(i64, p * lanes))])
                builder.store(builder.load(acc), builder.bitcast(at, vec.as_pointer()), align=align)
            return context.get_dummy_value()

        return types.none(out, o, w, width, c, columns, values, lo, hi), codegen

    @intrinsic
    def scatter_q(typingctx, g, width, c, columns, values, lo, hi, src, s):
        """``g[columns[k] * width + c + p L:... + L] += values[k] * src[s + p L:... + L]`` for k in [lo, hi)
        and p < q, as ``scatter_line`` does for each line (the same sums in the same order)."""
        if not (_checked(g, columns, values) and isinstance(src, types.Array) and src.dtype == g.dtype):
            return None
        align = g.dtype.bitwidth // 8
        lanes = LINE // align

        def codegen(context, builder, sig, args):
            g_p, width_, c_, col_p, val_p, lo_, hi_, src_p, s_ = _pieces(context, builder, sig, args)
            vec = ir.VectorType(context.get_value_type(g.dtype), lanes)
            i64 = ir.IntType(64)
            d = [_line(builder, vec, src_p, builder.add(s_, ir.Constant(i64, p * lanes)), align) for p in range(q)]
            with cgutils.for_range_slice(builder, lo_, hi_, ir.Constant(i64, 1)) as (k, _):
                col = context.cast(builder, builder.load(builder.gep(col_p, [k])), columns.dtype, types.int64)
                base = builder.add(builder.mul(col, width_), c_)
                v = _splat(builder, vec, builder.load(builder.gep(val_p, [k])))
                for p in range(q):
                    ptr = builder.bitcast(builder.gep(g_p, [builder.add(base, ir.Constant(i64, p * lanes))]),
                                          vec.as_pointer())
                    term = builder.fmul(v, d[p], flags=("contract",))
                    builder.store(builder.fadd(builder.load(ptr, align=align), term, flags=("contract",)), ptr,
                                  align=align)
            return context.get_dummy_value()

        return types.none(g, width, c, columns, values, lo, hi, src, s), codegen

    return gather_q, scatter_q


(_GATHER8, _SCATTER8), (_GATHER4, _SCATTER4), (_GATHER2, _SCATTER2), (_GATHER1, _SCATTER1) = (
    _lines_intrinsics(q) for q in (8, 4, 2, 1))


@njit(cache=True, nogil=True)
def forward(starts, columns, values, wp, width, out, c0, m, line, lo, hi):
    """out[s, c0:c0 + m] <- x[s] @ w for rows s in [lo, hi), up to eight lines of a row at a time. ``wp``:
    w's rows (m columns) padded to ``width`` (whole lines), flat; ``out``: C-contiguous (rows, at least
    c0 + m), so a product in column chunks writes each into place; ``line``: one line of scratch for a row's
    last, partial line."""
    row = out.shape[1]
    flat = out.reshape(-1)
    step = lanes_of(wp)
    full = m // step * step  # the columns in whole lines
    zero = np.zeros(step, wp.dtype)
    for s in range(lo, hi):
        a, b = starts[s], starts[s + 1]
        o = s * row + c0
        c = 0
        while c < full:
            left = (full - c) // step
            if left >= 8:
                _GATHER8(flat, o + c, wp, width, c, columns, values, a, b)
                c += 8 * step
            elif left >= 4:
                _GATHER4(flat, o + c, wp, width, c, columns, values, a, b)
                c += 4 * step
            elif left >= 2:
                _GATHER2(flat, o + c, wp, width, c, columns, values, a, b)
                c += 2 * step
            else:
                _GATHER1(flat, o + c, wp, width, c, columns, values, a, b)
                c += step
        if c < m:
            gather_line(line, 0, zero, 0, wp, width, c, columns, values, a, b)
            for t in range(m - c):
                flat[o + c + t] = line[t]


@njit(cache=True, nogil=True)
def backward(starts, columns, values, delta, gp, width, line, lo, hi):
    """gp <- x[lo:hi].T @ delta[lo:hi], into ``gp`` (flat rows ``width`` apart, zeroed here first), up to
    eight lines of a row at a time; ``delta``: C-contiguous (rows, m); ``line``: scratch for a row's last,
    partial line."""
    gp[:] = 0
    m = delta.shape[1]
    flat = delta.reshape(-1)
    step = lanes_of(gp)
    full = m // step * step
    for s in range(lo, hi):
        a, b = starts[s], starts[s + 1]
        c = 0
        while c < full:
            left = (full - c) // step
            if left >= 8:
                _SCATTER8(gp, width, c, columns, values, a, b, flat, s * m + c)
                c += 8 * step
            elif left >= 4:
                _SCATTER4(gp, width, c, columns, values, a, b, flat, s * m + c)
                c += 4 * step
            elif left >= 2:
                _SCATTER2(gp, width, c, columns, values, a, b, flat, s * m + c)
                c += 2 * step
            else:
                _SCATTER1(gp, width, c, columns, values, a, b, flat, s * m + c)
                c += step
        if c < m:
            line[:] = 0
            for t in range(m - c):
                line[t] = flat[s * m + c + t]
            scatter_line(gp, width, c, columns, values, a, b, line, 0)
