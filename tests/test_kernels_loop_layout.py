"""The loop kernel's input layout: each block's regrouping of its pixels and its Gram matrix, checked
against dense arithmetic."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel.kernels import loop_layout


@pytest.mark.parametrize("n, block", [(23, 5), (10, 10), (4, 8), (7, 1)])
def test_blocks_regroup_each_block_by_pixel(n, block):
    rng = np.random.default_rng(n)
    x = np.where(rng.random((n, 30)) < 0.3, rng.random((n, 30)), 0.0)
    gptr, grow, esam, evals, bgrp, gram = loop_layout.prepare(x, block)
    assert len(bgrp) - 1 == -(-n // block) and gram.shape[1:] == (block, block)
    for b in range(len(bgrp) - 1):
        part = x[b * block:(b + 1) * block]
        dense = np.zeros_like(part)
        groups = range(bgrp[b], bgrp[b + 1])
        assert list(grow[groups]) == sorted(set(np.nonzero(part)[1]))  # one group per pixel, in order
        for g in groups:
            samples = esam[gptr[g]:gptr[g + 1]]
            assert list(samples) == sorted(samples)
            dense[samples, grow[g]] = evals[gptr[g]:gptr[g + 1]]
        np.testing.assert_array_equal(dense, part)
        expected = np.zeros((block, block))
        expected[:len(part), :len(part)] = np.tril(part @ part.T, -1)
        np.testing.assert_allclose(gram[b], expected, rtol=1e-13, atol=1e-15)
