"""The Numba loop kernel's deferred-update layout: its regrouping of the pixels and its Gram matrices are
checked against dense arithmetic, and the epoch against the NumPy reference for several block sizes."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.kernels import loop_cpu
from mnist_accel.loop import draw_masks, epoch_reference, keep_scale


def _sparse(rng, n, features):
    return np.where(rng.random((n, features)) < 0.3, rng.random((n, features)), 0.0)


@pytest.mark.parametrize("n, block", [(23, 5), (10, 10), (4, 8), (7, 1)])
def test_blocks_regroup_each_block_by_pixel(n, block):
    x = _sparse(np.random.default_rng(n), n, 30)
    gptr, grow, esam, evals, bgrp, gram = loop_cpu.prepare(x, block)
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


# hidden 13 and 5 pad the kernel's rows to a whole cache line (16 and 8 float64); 16 needs no padding
@pytest.mark.parametrize("block, hidden", [(1, 16), (3, 13), (32, 5), (64, 16)])
def test_deferred_updates_are_exact_sgd_for_any_block_size(block, hidden):
    rng = np.random.default_rng(1)
    x = _sparse(rng, 100, 40)
    labels = rng.integers(0, 10, 100)
    params = model.init_params(rng, [40, hidden, 10], "tutorial", True, np.float64)
    masks = draw_masks(rng, 100, hidden, 0.5)
    scale = keep_scale(0.5, np.float64)
    ref = [p.copy() for p in params]
    ref_total, ref_correct, _ = epoch_reference(ref, x, np.eye(10)[labels], masks, 0.05, "relu", "mse", scale)
    fast = [p.copy() for p in params]
    total, correct, bad = loop_cpu.sgd_epoch(*loop_cpu.prepare(x, block), labels.astype(np.int64), masks, True,
                                             scale, *fast, True, 0.05, 0, 0)
    assert (correct, bad) == (ref_correct, -1)
    assert total == pytest.approx(ref_total, rel=1e-12)
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


def test_the_epoch_kernel_promises_llvm_its_arrays_never_overlap():
    """Where Numba has the noalias flag, the kernel is compiled with it (else LLVM re-checks for overlap
    before every short vectorized loop); its results are the tests above."""
    from numba.core import compiler

    assert loop_cpu.sgd_epoch.targetoptions.get("noalias", False) == ("noalias" in compiler.Flags.options)
