"""The loop kernel's input layout: each block's pairing of its pixels and its Gram matrix, checked against
dense arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.kernels import loop_layout


# blocks of 1, 5, 8 and 10 samples light odd and even numbers of pixels, one after another
@pytest.mark.parametrize("n, block", [(23, 5), (10, 10), (4, 8), (7, 1), (40, 1)])
def test_blocks_pair_each_blocks_pixels(n, block):
    rng = np.random.default_rng(n)
    features = 30
    x = np.where(rng.random((n, features)) < 0.3, rng.random((n, features)), 0.0)
    gptr, grow, esam, evals, bgrp, gram = loop_layout.prepare(x, block)
    assert len(bgrp) - 1 == -(-n // block) and gram.shape[1:] == (block, block)
    for b in range(len(bgrp) - 1):
        part = x[b * block:(b + 1) * block]
        dense = np.zeros((len(part), features + 1))  # the last column: the zero row odd pixels pair with
        groups = range(bgrp[b], bgrp[b + 1])
        lit = sorted(set(np.nonzero(part)[1]))
        pairs = [(lit[k], lit[k + 1] if k + 1 < len(lit) else features) for k in range(0, len(lit), 2)]
        assert [tuple(grow[g]) for g in groups] == pairs  # consecutive lit pixels, in order
        for g in groups:
            samples = esam[gptr[g]:gptr[g + 1]]
            assert list(samples) == sorted(set(samples))  # each sample once, in order
            assert (evals[gptr[g]:gptr[g + 1]] != 0).any(axis=1).all()  # and only those lighting either
            dense[samples[:, None], grow[g]] = evals[gptr[g]:gptr[g + 1]]
        np.testing.assert_array_equal(dense, np.pad(part, ((0, 0), (0, 1))))
        expected = np.zeros((block, block))
        expected[:len(part), :len(part)] = np.tril(part @ part.T, -1)
        np.testing.assert_allclose(gram[b], expected, rtol=1e-13, atol=1e-15)
