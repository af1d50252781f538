"""The Numba loop kernel: an epoch of deferred updates against the NumPy reference for several block sizes,
padded widths and degenerate inputs, and the compile option it relies on."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.kernels import loop_layout
from mnist_accel.kernels.cpu import loop_cpu, loop_rows
from mnist_accel.trainers.loop import LoopTrainer, draw_masks, epoch_reference, keep_scale


# hidden 13 and 5 pad the kernel's rows to a whole cache line (16 and 8 float64); 16 needs no padding
@pytest.mark.parametrize("block, hidden", [(1, 16), (3, 13), (32, 5), (64, 16)])
def test_deferred_updates_are_exact_sgd_for_any_block_size(block, hidden):
    rng = np.random.default_rng(1)
    x = np.where(rng.random((100, 40)) < 0.3, rng.random((100, 40)), 0.0)  # about 30% lit, like MNIST's fifth
    labels = rng.integers(0, 10, 100)
    params = model.init_params(rng, [40, hidden, 10], "tutorial", True, np.float64)
    masks = draw_masks(rng, 100, hidden, 0.5)
    scale = keep_scale(0.5, np.float64)
    ref = [p.copy() for p in params]
    ref_total, ref_correct, _ = epoch_reference(ref, x, np.eye(10)[labels], masks, 0.05, "relu", "mse", scale)
    fast = [p.copy() for p in params]
    total, correct, bad = loop_cpu.sgd_epoch(*loop_layout.prepare(x, block), labels.astype(np.int64), masks, True,
                                             scale, *fast, True, 0.05, 0, 0)
    assert (correct, bad) == (ref_correct, -1)
    assert total == pytest.approx(ref_total, rel=1e-12)
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-12 * np.abs(b).max()


def test_the_epoch_kernel_promises_llvm_its_arrays_never_overlap():
    """Where Numba has the noalias flag, the kernel and its row passes' callback are compiled with it (else
    LLVM re-checks for overlap before short loops, and stores a row after each update); results: the tests
    above."""
    from numba.core import compiler

    has = "noalias" in compiler.Flags.options
    kernel = loop_cpu.epoch_kernel(0, 0, True, True, np.dtype(np.float64)).cfunc
    assert kernel._compiler.targetoptions.get("noalias", False) == has
    for dtype in (np.float32, np.float64):
        assert loop_rows.compiled(dtype)._compiler.targetoptions.get("noalias", False) == has


@pytest.mark.parametrize("x", [np.zeros((5, 20)), np.ones((1, 20)), np.eye(20)[:3]],
                         ids=["all-dark", "one-image", "one-pixel-each"])
def test_degenerate_inputs_train_as_the_reference_does(x):
    """Blocks with no lit pixel, a single image, and images whose only pixel pairs with the zero row."""
    results = []
    for engine in ("numpy", "numba"):
        rng = np.random.default_rng(0)
        params = model.init_params(rng, [20, 7, 10], "tutorial", True, np.float64)
        trainer = LoopTrainer(params, x, np.arange(len(x)) % 10, rng, 0.01, "relu", "mse", 0.5, engine)
        results.append((trainer.train_epoch(), trainer.params))
    (ref_total, ref_correct), ref = results[0]
    (total, correct), fast = results[1]
    assert correct == ref_correct and total == pytest.approx(ref_total, rel=1e-12)
    for a, b in zip(fast, ref):
        np.testing.assert_allclose(a, b, rtol=0, atol=1e-12)
