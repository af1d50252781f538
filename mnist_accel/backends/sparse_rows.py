"""Training sets given as a scipy.sparse matrix (CSR or CSC), on the CPU backends: the first layer's two
products per batch, without a dense copy of the whole set.

A batch's rows are gathered from compressed rows (``csr[batch]``, which touches only their nonzeros). A batch
with few nonzeros (under ``PRODUCT_BELOW`` of its entries) stays sparse and is multiplied as it is, a
multiply-add per nonzero and output column (scikit-learn's ``safe_sparse_dot``); a denser one is written
into a dense buffer of its own and its products go to BLAS (or, on numba, to the dense path that compacts
the batch to its lit columns), whose blocked GEMM then wins over a multiply-add per nonzero. A step over
the whole set in order (full batch) always multiplies the compressed rows. scipy is never imported here:
a sparse matrix can only come from a process that has imported it already.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np

# Sparse products below this share of nonzero entries, dense BLAS products above: the cut sits at the lower
# end of the range where the two are level, because BLAS's threads favour the dense side (the measurement is
# in docs/design/engine-notes-2026-12.md, "Sparse training sets").
PRODUCT_BELOW = 0.1


def is_sparse(x: Any) -> bool:
    """Whether ``x`` is a scipy.sparse matrix or array."""
    sparse = sys.modules.get("scipy.sparse")
    return sparse is not None and sparse.issparse(x)


def as_csr(x: Any, dtype: Any) -> Any:
    """``x`` as compressed rows of ``dtype`` with sorted, summed indices (a copy only where one is needed)."""
    csr = x.tocsr()
    if csr.dtype != np.dtype(dtype):
        csr = csr.astype(dtype)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    return csr


def dense_rows(x: Any, start: int, stop: int, dtype: Any) -> np.ndarray:
    """Rows ``start:stop`` of ``x`` (sparse or not) as a dense C-ordered array of ``dtype``: how a caller
    walks a sparse set in chunks of dense rows."""
    part = x[start:stop]
    part = part.toarray() if is_sparse(part) else np.asarray(part)
    return np.ascontiguousarray(part, dtype=dtype)


class SparseBatches:
    """The first layer's products over batches of a CSR training set (``XpOps``'s ``input_matmul`` and
    ``input_grad`` when their inputs are sparse)."""

    def __init__(self) -> None:
        self._dense: dict[int, np.ndarray] = {}  # a dense batch buffer per batch size
        self._last: Any = None

    def gather(self, inputs: Any, batch: Any) -> Any:
        """The rows ``batch`` of ``inputs``: compressed rows where they hold under ``PRODUCT_BELOW`` nonzeros (and
        always for ``batch`` None, the whole set, which is never densified), else a dense array in this batch
        size's buffer (overwritten by the next gather of as many rows)."""
        if batch is None:
            return inputs
        rows = inputs[np.asarray(batch)]
        n, f = rows.shape
        if rows.nnz < PRODUCT_BELOW * n * f:
            return rows
        if n not in self._dense:
            self._dense[n] = np.empty((n, f), rows.dtype)
        return rows.toarray(out=self._dense[n])

    def matmul(self, inputs: Any, batch: Any, w: np.ndarray, out: np.ndarray) -> None:
        """out <- x[batch] @ w (``batch`` None: every row in order); the batch is kept for ``grad``."""
        rows = self._last = self.gather(inputs, batch)
        if isinstance(rows, np.ndarray):
            np.matmul(rows, w, out=out)
        else:
            out[...] = rows @ w

    def grad(self, delta: np.ndarray, out: np.ndarray) -> None:
        """out <- x.T @ delta for the batch of the last ``matmul``."""
        if isinstance(self._last, np.ndarray):
            np.matmul(self._last.T, delta, out=out)
        else:
            out[...] = self._last.T @ delta
