"""The loop kernel's view of a training set, built once: its samples in blocks, each block's nonzero pixels
grouped by pairs of pixels (rows of ``w1``), and each block's Gram matrix of its samples' inner products.

``loop_cpu.sgd_epoch`` defers a block's first-layer updates to the block's end; grouped by pixel, each row
of ``w1`` is then read once for all the block's forward products and written once for all its updates, and
the Gram matrix supplies what the earlier samples' pending updates add to a later sample's forward product.
Pairs, because MNIST's strokes light neighbouring pixels together: merging each pixel's samples with the
next lit pixel's leaves 58% of the entries, and the forward pass stores a sample's row once per entry
(an epoch 0.19 -> 0.145 s; the zeros this adds change no sum). The GPU loop (``loop_cuda``) reads the same
blocks for its deferred updates and Gram corrections, and CSR rows for its forward products.
"""

from __future__ import annotations

import functools

import numba
import numpy as np
from numba import types

from .cpu.ccall import c_kernel

BLOCK = 32  # samples per deferred update (neither 16 nor 64 was faster); its deltas stay in L1 cache


def to_csr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``x`` as CSR arrays (indptr int64, indices int32, values of x's dtype)."""
    nz = x != 0
    indptr = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(nz)
    return indptr, cols.astype(np.int32), x[rows, cols]


def prepare(x: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, ...]:
    """Everything ``loop_cpu.sgd_epoch`` reads about the inputs, computed once per training set: ``blocks``'
    grouping of each block's nonzero pixels by pairs of rows of ``w1``, and its Gram matrices."""
    return blocks(*to_csr(x), x.shape[1], block)


def blocks(indptr: np.ndarray, indices: np.ndarray, values: np.ndarray, n_features: int,
           block: int) -> tuple[np.ndarray, ...]:
    """Each block of ``block`` samples' nonzero pixels, grouped by pairs of pixels (rows of ``w1``).

    Returns (gptr, grow, esam, evals, bgrp, gram). Group g is the pixels ``grow[g, 0]`` and ``grow[g, 1]``,
    consecutive among those its block lights (``grow[g, 1]`` is ``n_features``, a row of zeros, for an odd
    one out). Its entries ``gptr[g]:gptr[g + 1]`` are the samples within the block that light either pixel
    (``esam``, in order), with their two values ``evals[e]`` (0 for a pixel the sample leaves dark).
    Block b owns groups ``bgrp[b]:bgrp[b + 1]``; ``gram[b, m, l]`` is ``x_m . x_l`` for l < m (else 0).

    NumPy allocates every array (at its largest size) and trims them; ``_fill`` (compiled) only fills them:
    allocations, reshapes and slice copies inside it took Numba longer to compile than its loops. The
    indices must be int32 and the values float32 or float64.
    """
    n = len(indptr) - 1
    nb = (n + block - 1) // block
    nnz = int(indptr[n])
    groups = min(nnz, nb * ((n_features + 1) // 2))  # at most: every pixel lit in every block
    lo = np.arange(0, n, block)
    most = int((indptr[np.minimum(lo + block, n)] - indptr[lo]).max(initial=0))  # the most entries one block holds
    esam, evals = np.empty(nnz, np.int32), np.zeros((nnz, 2), values.dtype)
    gptr, grow, bgrp = np.empty(groups + 1, np.int64), np.empty((groups, 2), np.int32), np.empty(nb + 1, np.int64)
    gram = np.zeros((nb, block, block), values.dtype)
    pixels = np.empty(n_features + 1, np.int64)
    start = np.zeros(n_features + 2, np.int64)  # lit pixel k's entries: tsam/tval[start[k]:start[k + 1]]
    fill = np.zeros(n_features, np.int64)
    tsam, tval = np.empty(most, np.int32), np.empty(most, values.dtype)  # a block's entries grouped by pixel
    out = np.zeros(2, np.int64)
    _filler(values.dtype).call(indptr, indices, values, n, n_features, block, nb, esam, evals, gptr, grow, bgrp,
                               gram, pixels, start, fill, tsam, tval, out)
    ng, e = int(out[0]), int(out[1])
    return gptr[:ng + 1].copy(), grow[:ng].copy(), esam[:e].copy(), evals[:e].copy(), bgrp, gram


@functools.cache
def _filler(dtype: np.dtype):
    """``_fill`` compiled as a C callback for values of ``dtype`` (see ``kernels.cpu.ccall``), on first use."""
    p, i64, i32 = types.CPointer, types.int64, types.int32
    dt = numba.from_dtype(np.dtype(dtype))
    sig = types.void(p(i64), p(i32), p(dt), i64, i64, i64, i64, p(i32), p(dt), p(i64), p(i32), p(i64), p(dt), p(i64),
                     p(i64), p(i64), p(i32), p(dt), p(i64))
    return c_kernel(_fill, sig)


def _fill(indptr, indices, values, n, n_features, block, nb, esam, evals, gptr, grow, bgrp, gram, pixels, start,
          fill, tsam, tval, out):
    """``blocks``' arrays, filled (on pointers: ``grow``, ``evals`` two per group or entry, ``gram`` block by
    block, row-major); ``out`` gets the numbers of groups and of entries."""
    ng = 0
    e = 0
    for b in range(nb):
        bgrp[b] = ng
        lo = b * block
        hi = lo + block if lo + block < n else n  # (``min`` compiled code of its own)
        for p in range(indptr[lo], indptr[hi]):
            fill[indices[p]] += 1
        lit = 0
        for r in range(n_features):  # pixels in order: the same summation order as a CSR row
            if fill[r]:
                pixels[lit] = r
                start[lit + 1] = start[lit] + fill[r]
                fill[r] = start[lit]
                lit += 1
        for i in range(lo, hi):
            for p in range(indptr[i], indptr[i + 1]):
                q = fill[indices[p]]
                tsam[q] = i - lo
                tval[q] = values[p]
                fill[indices[p]] = q + 1
        gram_at = b * block * block  # block b's Gram matrix
        for k in range(lit):
            fill[pixels[k]] = 0
            for a in range(start[k], start[k + 1]):
                g = gram_at + tsam[a] * block
                for c in range(start[k], a):
                    gram[g + tsam[c]] += tval[a] * tval[c]
        pixels[lit] = n_features  # an odd one out pairs with the zero row
        start[lit + 1] = start[lit]
        for k in range(0, lit, 2):
            gptr[ng] = e
            grow[2 * ng] = pixels[k]
            grow[2 * ng + 1] = pixels[k + 1]
            a = start[k]
            a_end = c = start[k + 1]
            c_end = start[k + 2]
            while a < a_end or c < c_end:  # merge the two pixels' samples, in order
                m = tsam[a] if a < a_end else block
                m = tsam[c] if c < c_end and tsam[c] < m else m
                esam[e] = m
                if a < a_end and tsam[a] == m:
                    evals[2 * e] = tval[a]
                    a += 1
                if c < c_end and tsam[c] == m:
                    evals[2 * e + 1] = tval[c]
                    c += 1
                e += 1
            ng += 1
    gptr[ng] = e
    bgrp[nb] = ng
    out[0] = ng
    out[1] = e
