"""scipy.sparse training sets: compressed rows of the model's dtype, a batch gathered sparse or dense by its
share of nonzeros (the whole set never densified), both products equal to the dense array's."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.backends import sparse_rows

sparse = pytest.importorskip("scipy.sparse")


def test_is_sparse_and_as_csr():
    x = sparse.random(20, 7, density=0.3, format="csc", random_state=0)
    assert sparse_rows.is_sparse(x) and sparse_rows.is_sparse(sparse.csr_array(x))
    assert not sparse_rows.is_sparse(x.toarray()) and not sparse_rows.is_sparse([[1.0]])
    duplicated = sparse.csr_matrix((np.ones(3), np.array([1, 1, 0]), np.array([0, 2, 3])), shape=(2, 3))
    csr = sparse_rows.as_csr(duplicated, np.float32)
    assert csr.format == "csr" and csr.dtype == np.float32 and csr.has_canonical_format
    np.testing.assert_array_equal(csr.toarray(), duplicated.toarray())
    assert sparse_rows.as_csr(csr, np.float32) is csr  # nothing to convert: no copy


@pytest.mark.parametrize("density, dense", [(0.02, False), (0.5, True)])
def test_a_batch_is_gathered_by_its_share_of_nonzeros(density, dense):
    x = sparse.random(60, 50, density=density, format="csr", random_state=1)
    batches = sparse_rows.SparseBatches()
    batch = np.array([5, 0, 59, 5, 17])
    rows = batches.gather(x, batch)
    assert isinstance(rows, np.ndarray) == dense
    np.testing.assert_array_equal(rows.toarray() if not dense else rows, x.toarray()[batch])
    assert batches.gather(x, None) is x  # the whole set stays compressed whatever its density

    r = np.random.default_rng(2)
    w, delta = r.normal(size=(50, 4)), r.normal(size=(5, 4))
    out, grad = np.empty((5, 4)), np.empty((50, 4))
    batches.matmul(x, batch, w, out)
    batches.grad(delta, grad)
    np.testing.assert_allclose(out, x.toarray()[batch] @ w, rtol=1e-12)
    np.testing.assert_allclose(grad, x.toarray()[batch].T @ delta, rtol=1e-12, atol=1e-15)


def test_dense_rows_walks_a_set_in_chunks():
    x = sparse.random(25, 6, density=0.4, format="csr", random_state=3)
    chunks = [sparse_rows.dense_rows(x, s, s + 10, np.float32) for s in range(0, 25, 10)]
    assert all(c.dtype == np.float32 and c.flags.c_contiguous for c in chunks)
    np.testing.assert_array_equal(np.vstack(chunks), x.toarray().astype(np.float32))
    np.testing.assert_array_equal(sparse_rows.dense_rows(x.toarray(), 3, 5, np.float64), x.toarray()[3:5])
