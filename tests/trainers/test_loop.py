"""The tutorial's per-sample loop: the published table, and the Numba kernel against the NumPy reference."""

from __future__ import annotations

import json
import sys

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.cli.train import main
from mnist_accel.data.mnist import normalize
from mnist_accel.trainers.loop import LoopTrainer, draw_masks

# numpy-tutorials "Deep learning on MNIST": epoch, training error, training accuracy, test error,
# test accuracy; errors as the tutorial prints them (str(x)[0:5]).
PUBLISHED = """
0 0.898 0.397 0.680 0.582
1 0.656 0.633 0.606 0.641
2 0.591 0.680 0.569 0.679
3 0.556 0.700 0.540 0.708
4 0.534 0.732 0.525 0.729
5 0.515 0.715 0.500 0.739
6 0.495 0.748 0.487 0.753
7 0.483 0.769 0.486 0.747
8 0.473 0.776 0.472 0.752
9 0.459 0.788 0.462 0.762
10 0.464 0.769 0.462 0.767
11 0.442 0.801 0.455 0.775
12 0.448 0.795 0.454 0.772
13 0.438 0.787 0.452 0.778
14 0.445 0.791 0.449 0.779
15 0.440 0.788 0.451 0.772
16 0.437 0.786 0.452 0.772
17 0.436 0.794 0.449 0.778
18 0.433 0.801 0.449 0.774
19 0.429 0.785 0.436 0.784
"""


@pytest.mark.slow
@pytest.mark.parametrize("backend", ["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)])
def test_tutorial_table_row_for_row(backend, mnist, tmp_path):
    out = tmp_path / "metrics.json"
    assert main(["--preset", "tutorial", "--backend", backend, "--metrics-json", str(out), "--quiet"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["backend"] == backend and metrics["config"]["train_samples"] == 1000
    rows = [(r["epoch"], str(r["train_loss"])[0:5], f"{r['train_accuracy']:.3f}", str(r["test_loss"])[0:5],
             f"{r['test_accuracy']:.3f}") for r in metrics["epochs"]]
    expected = [tuple([int(f[0])] + f[1:]) for f in (line.split() for line in PUBLISHED.strip().splitlines())]
    if backend != "cuda":  # the CPU kernels compute the reference's sums in its order: the same digits
        assert rows == expected
        return
    # The GPU contracts multiply-adds and takes exp from libdevice (within 2 ulp), so a float64 error carries
    # last-bit differences: within a bound far under the table's 0.001 steps, a loss printed as 0.123 may sit
    # just under 0.123, and a sample at a near-tie may flip its prediction (1 of the 1,000 in each split).
    for r, (_, train, train_acc, test, test_acc) in zip(metrics["epochs"], expected):
        for value, shown in ((r["train_loss"], train), (r["test_loss"], test)):
            assert float(shown) - 1e-9 <= value < float(shown) + 0.001 + 1e-9  # str(x)[0:5] cuts, not rounds
        for value, shown in ((r["train_accuracy"], train_acc), (r["test_accuracy"], test_acc)):
            assert abs(value - float(shown)) <= 0.001 + 1e-9
    assert len(metrics["epochs"]) == len(expected)


def _one_epoch(engine, x, labels, activation, loss, bias, dropout, dtype=np.float64, hidden=64):
    rng = np.random.default_rng(7)
    params = model.init_params(rng, [784, hidden, 10], "tutorial", bias, dtype)
    trainer = LoopTrainer(params, x.astype(dtype), labels, rng, 0.005, activation, loss, dropout, engine)
    total, correct = trainer.train_epoch()
    return params, total, correct


@pytest.mark.parametrize("activation, loss, bias, dropout, hidden", [  # 100 and 37 take padded rows
    ("relu", "mse", False, 0.5, 100), ("relu", "cross-entropy", True, 0.0, 64),
    ("tanh", "cross-entropy", True, 0.5, 37), ("sigmoid", "mse", True, 0.3, 64), ("tanh", "mse", False, 0.0, 100),
])
def test_numba_loop_matches_reference(mnist, activation, loss, bias, dropout, hidden):
    x = normalize(mnist.train_images[:2000], np.float64)
    labels = mnist.train_labels[:2000]
    ref, ref_total, ref_correct = _one_epoch("numpy", x, labels, activation, loss, bias, dropout, hidden=hidden)
    fast, total, correct = _one_epoch("numba", x, labels, activation, loss, bias, dropout, hidden=hidden)
    assert correct == ref_correct
    assert total == pytest.approx(ref_total, rel=1e-10)
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()


def test_numba_loop_float32_tracks_reference(mnist):
    x = normalize(mnist.train_images[:500], np.float32)
    labels = mnist.train_labels[:500]
    # hidden 100 pads float32 rows to 112 (whole 64-byte lines of 16)
    ref, ref_total, _ = _one_epoch("numpy", x, labels, "relu", "cross-entropy", True, 0.5, np.float32, 100)
    fast, total, _ = _one_epoch("numba", x, labels, "relu", "cross-entropy", True, 0.5, np.float32, 100)
    assert all(p.dtype == np.float32 for p in fast)
    assert total == pytest.approx(ref_total, rel=1e-4)
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


def test_masks_equal_the_tutorials_per_sample_draws():
    one_call = draw_masks(np.random.default_rng(3), 50, 100, 0.5)
    rng = np.random.default_rng(3)
    per_sample = np.stack([rng.integers(low=0, high=2, size=(100,)) for _ in range(50)])
    np.testing.assert_array_equal(one_call, per_sample)
    assert draw_masks(rng, 5, 4, 0.0) is None
    assert draw_masks(np.random.default_rng(0), 20000, 10, 0.3).mean() == pytest.approx(0.7, abs=0.01)


@pytest.mark.parametrize("hidden", [100, 7])  # an odd width makes odd pieces, which take NumPy's own call
@pytest.mark.parametrize("make", [lambda: np.random.default_rng(5), lambda: np.random.Generator(np.random.MT19937(5))])
@pytest.mark.parametrize("half_used", [False, True])
def test_coin_masks_equal_numpys_draws_from_any_generator_state(hidden, make, half_used):
    """The fast fair coins read PCG64's raw output; they must equal rng.integers(0, 2) draw for draw, also
    from other bit generators and from a generator holding half of a 64-bit output back, and leave the
    generator in the same state."""
    from mnist_accel.trainers.loop import MASK_ROWS

    n = MASK_ROWS + 9
    ours, theirs = make(), make()
    if half_used:
        ours.integers(0, 2), theirs.integers(0, 2)
    masks = draw_masks(ours, n, hidden, 0.5)
    np.testing.assert_array_equal(masks, np.stack([theirs.integers(0, 2, size=hidden) for _ in range(n)]))
    for draw in (lambda g: g.integers(0, 2, size=3), lambda g: g.random(3)):  # the same state afterwards
        np.testing.assert_array_equal(draw(ours), draw(theirs))


@pytest.mark.skipif(sys.byteorder != "little", reason="the shortcut reads raw output as little-endian halves")
def test_fast_coins_are_taken_for_numpys_default_generator():
    """Without this, a shortcut that stopped matching NumPy would silently fall back to the slow draw."""
    from mnist_accel.trainers.loop import _fast_coins

    out, rng = np.empty((4, 10), np.int8), np.random.default_rng(8)
    assert _fast_coins(rng, out)
    np.testing.assert_array_equal(out, np.random.default_rng(8).integers(0, 2, size=(4, 10)))


@pytest.mark.parametrize("dropout", [0.5, 0.3])
def test_masks_drawn_in_pieces_equal_one_draw(dropout):
    from mnist_accel.trainers.loop import MASK_ROWS

    n = 2 * MASK_ROWS + 5
    rng = np.random.default_rng(11)
    whole = rng.integers(0, 2, size=(n, 7)) if dropout == 0.5 else rng.random((n, 7)) >= dropout
    np.testing.assert_array_equal(draw_masks(np.random.default_rng(11), n, 7, dropout), whole)
