"""Counter-based randomness: deterministic, stateless, uniform, and identical on every backend."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import rng


def test_same_counters_same_bits_different_counters_different_bits():
    k = rng.key(42, 2, 7, 0)
    np.testing.assert_array_equal(rng.bits(k, 1000, np), rng.bits(k, 1000, np))
    assert rng.key(42, 2, 7, 0) != rng.key(42, 2, 7, 1) != rng.key(43, 2, 7, 0)
    assert (rng.bits(k, 1000, np) != rng.bits(rng.key(42, 2, 8, 0), 1000, np)).mean() > 0.99


def test_prefix_stability():
    """Element i depends only on (key, i): a longer draw starts with the shorter one."""
    k = rng.key(1, 2)
    np.testing.assert_array_equal(rng.bits(k, 10, np), rng.bits(k, 1000, np)[:10])


def test_scalar_mix_equals_array_mix():
    xs = np.array([0, 1, 12345, 2 ** 32 - 1], dtype=np.uint32)
    assert rng.mix(xs).tolist() == [rng.mix_int(int(x)) for x in xs]


@pytest.mark.parametrize("p", [0.1, 0.5, 0.8])
def test_dropout_mask_rate_and_scale(p):
    mask = rng.dropout_mask(rng.key(0, 1), (400, 500), p, np.float32, np)
    assert mask.dtype == np.float32
    values = np.unique(mask).tolist()
    assert len(values) == 2 and values[0] == 0.0 and values[1] == pytest.approx(1 / (1 - p), rel=1e-6)
    assert (mask == 0).mean() == pytest.approx(p, abs=0.005)


def test_bits_are_uniform():
    counts = np.bincount(rng.bits(rng.key(9), 1 << 20, np) >> 28, minlength=16)
    chi2 = ((counts - counts.mean()) ** 2 / counts.mean()).sum()
    assert chi2 < 40  # 15 degrees of freedom: p < 0.001 beyond 37.7


def test_permutation_is_a_permutation():
    perm = rng.permutation(rng.key(3, 1), 60000, np)
    assert sorted(perm.tolist()) == list(range(60000))
    assert (perm != np.arange(60000)).mean() > 0.99


@pytest.mark.gpu
def test_cupy_draws_the_same_bits():
    from mnist_accel.backends.selection import get_backend, to_host

    cp = get_backend("cuda").xp
    k = rng.key(5, 2, 11)
    np.testing.assert_array_equal(to_host(rng.bits(k, 4096, cp)), rng.bits(k, 4096, np))
    np.testing.assert_array_equal(to_host(rng.permutation(k, 5000, cp)), rng.permutation(k, 5000, np))
