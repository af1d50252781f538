"""The loop kernel's view of a training set, built once: its samples in blocks, each block's nonzero pixels
grouped by pixel (row of ``w1``), and each block's Gram matrix of its samples' inner products.

``loop_cpu.sgd_epoch`` defers a block's first-layer updates to the block's end; grouped by pixel, each row
of ``w1`` is then read once for all the block's forward products and written once for all its updates, and
the Gram matrix supplies what the earlier samples' pending updates add to a later sample's forward product.
The GPU loop reads the plain CSR rows.
"""

from __future__ import annotations

import numpy as np
from numba import njit

BLOCK = 32  # samples per deferred update (16 and 64 measured no faster); its deltas stay in L1 cache


def to_csr(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Rows of ``x`` as CSR arrays (indptr int64, indices int32, values of x's dtype)."""
    nz = x != 0
    indptr = np.zeros(len(x) + 1, dtype=np.int64)
    np.cumsum(nz.sum(axis=1), out=indptr[1:])
    rows, cols = np.nonzero(nz)
    return indptr, cols.astype(np.int32), x[rows, cols]


def prepare(x: np.ndarray, block: int = BLOCK) -> tuple[np.ndarray, ...]:
    """Everything ``loop_cpu.sgd_epoch`` reads about the inputs, computed once per training set: ``blocks``'
    grouping of each block's nonzero pixels by row of ``w1``, and its Gram matrices."""
    return blocks(*to_csr(x), x.shape[1], block)


@njit(cache=True, nogil=True)
def blocks(indptr, indices, values, n_features, block):
    """Each block of ``block`` samples' nonzero pixels grouped by pixel (row of ``w1``).

    Returns (gptr, grow, esam, evals, bgrp, gram): group g is pixel ``grow[g]``, its entries
    ``gptr[g]:gptr[g + 1]`` hold (sample within the block ``esam``, value ``evals``) in sample order; block
    b owns groups ``bgrp[b]:bgrp[b + 1]``; ``gram[b, m, l]`` is ``x_m . x_l`` for l < m (zero otherwise).
    """
    n = len(indptr) - 1
    nb = (n + block - 1) // block
    nnz = indptr[n]
    esam = np.empty(nnz, np.int32)
    evals = np.empty(nnz, values.dtype)
    gptr = np.empty(nnz + 1, np.int64)
    grow = np.empty(nnz, np.int32)
    bgrp = np.empty(nb + 1, np.int64)
    gram = np.zeros((nb, block, block), values.dtype)
    count = np.zeros(n_features, np.int64)
    fill = np.zeros(n_features, np.int64)
    ng = 0
    e = 0
    for b in range(nb):
        bgrp[b] = ng
        lo, hi = b * block, min(n, b * block + block)
        for p in range(indptr[lo], indptr[hi]):
            count[indices[p]] += 1
        for r in range(n_features):  # pixels in order: the same summation order as a CSR row
            if count[r]:
                gptr[ng], grow[ng], fill[r] = e, r, e
                e += count[r]
                ng += 1
                count[r] = 0
        for i in range(lo, hi):
            for p in range(indptr[i], indptr[i + 1]):
                q = fill[indices[p]]
                esam[q], evals[q] = i - lo, values[p]
                fill[indices[p]] = q + 1
        for g in range(bgrp[b], ng):
            for a in range(gptr[g], fill[grow[g]]):  # fill has reached the group's end
                for c in range(gptr[g], a):
                    gram[b, esam[a], esam[c]] += evals[a] * evals[c]
    gptr[ng] = e
    bgrp[nb] = ng
    return gptr[:ng + 1].copy(), grow[:ng].copy(), esam, evals, bgrp, gram
