"""The per-sample loop with two and more hidden layers: how masks are drawn per layer, the Numba kernels
against the NumPy reference (and deep-sgd's loss on both), the deep-sgd preset against a NumPy rendering of
its write-up, and the same preset on the GPU loop (CuPy stand-in, Numba's simulator)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from bench.renderings import deep_sgd
from mnist_accel import model
from mnist_accel.config import resolve
from mnist_accel.data.mnist import normalize
from mnist_accel.errors import ConfigError
from mnist_accel.trainers.loop import LoopTrainer, draw_masks
from mnist_accel.training.fit import fit

TESTS = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("dropout", [0.5, 0.3])
def test_each_sample_draws_its_layers_masks_in_layer_order(dropout):
    """Deeper than one layer, a row of masks is what a per-sample loop drawing each hidden layer's in turn
    would draw (one layer: the tutorial's draws, checked in test_loop)."""
    widths, n = (7, 5, 3), 40  # odd widths: with fair coins, a layer ends halfway through a 64-bit draw
    rng = np.random.default_rng(4)
    draw = (lambda w: rng.integers(0, 2, size=w)) if dropout == 0.5 else (lambda w: rng.random(w) >= dropout)
    per_layer = np.stack([np.concatenate([draw(w) for w in widths]) for _ in range(n)])
    np.testing.assert_array_equal(draw_masks(np.random.default_rng(4), n, sum(widths), dropout), per_layer)


def _epoch(engine, x, labels, sizes, activation, loss, bias, dropout, dtype=np.float64):
    rng = np.random.default_rng(7)
    params = model.init_params(rng, sizes, "tutorial", bias, dtype)
    trainer = LoopTrainer(params, x.astype(dtype), labels, rng, 0.01, activation, loss, dropout, engine)
    total, correct = trainer.train_epoch()
    return trainer.params, total, correct, trainer.first_bad


@pytest.mark.parametrize("hidden, activation, loss, bias, dropout", [
    ((64, 32), "relu", "mse", False, 0.5),
    ((48, 30, 17), "tanh", "cross-entropy", True, 0.3),  # 17: not a whole vector step
    ((128, 64), "sigmoid", "softmax-mse", False, 0.0),  # deep-sgd's model
    ((40, 24), "sigmoid", "softmax-mse", True, 0.5),
    ((30, 20, 13), "relu", "cross-entropy", False, 0.5),
    ((37, 21, 9), "sigmoid", "mse", True, 0.0),
    ((100,), "sigmoid", "softmax-mse", True, 0.5),  # the new loss on the one-layer kernel too
])
def test_numba_loop_matches_reference_at_depth(mnist, hidden, activation, loss, bias, dropout):
    x, labels = normalize(mnist.train_images[:1500], np.float64), mnist.train_labels[:1500]
    sizes = [784, *hidden, 10]
    ref, ref_total, ref_correct, _ = _epoch("numpy", x, labels, sizes, activation, loss, bias, dropout)
    fast, total, correct, bad = _epoch("numba", x, labels, sizes, activation, loss, bias, dropout)
    assert (correct, bad) == (ref_correct, -1)
    assert total == pytest.approx(ref_total, rel=1e-10)
    assert [p.shape for p in fast] == [p.shape for p in ref]
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()


def test_deep_float32_tracks_reference(mnist):
    x, labels = normalize(mnist.train_images[:500], np.float32), mnist.train_labels[:500]
    args = ([784, 50, 30, 10], "tanh", "cross-entropy", True, 0.5, np.float32)
    ref, ref_total, _, _ = _epoch("numpy", x, labels, *args)
    fast, total, _, _ = _epoch("numba", x, labels, *args)
    assert all(p.dtype == np.float32 for p in fast)
    assert total == pytest.approx(ref_total, rel=1e-4)
    for a, b in zip(fast, ref):
        assert np.abs(a - b).max() <= 1e-4 * np.abs(b).max()


def test_a_diverging_deep_run_names_the_references_first_bad_sample(mnist):
    x, labels = normalize(mnist.train_images[:300], np.float64), mnist.train_labels[:300]
    runs = [LoopTrainer(model.init_params(np.random.default_rng(1), [784, 20, 10, 10], "tutorial", True),
                        x, labels, np.random.default_rng(1), 50.0, "relu", "mse", 0.0, engine) for engine in
            ("numpy", "numba")]
    for run in runs:
        run.train_epoch()
    assert runs[0].first_bad == runs[1].first_bad >= 0


def test_deep_sgd_preset_is_the_write_ups_network():
    cfg = resolve("deep-sgd")
    assert (cfg.path, cfg.hidden, cfg.activation, cfg.loss, cfg.bias, cfg.lr, cfg.epochs, cfg.dtype) == \
        ("loop", (128, 64), "sigmoid", "softmax-mse", False, 0.001, 10, "float64")
    params = model.init_params(np.random.default_rng(5), [784, 128, 64, 10], cfg.init)
    rng = np.random.default_rng(5)  # the write-up's randn(fan_out, fan_in) * sqrt(1 / fan_out), transposed
    for p, (fan_in, fan_out) in zip(params, [(784, 128), (128, 64), (64, 10)]):
        np.testing.assert_array_equal(p, rng.standard_normal((fan_out, fan_in)).T * np.sqrt(1.0 / fan_out))
        assert p.flags.c_contiguous
    with pytest.raises(ConfigError, match="softmax-mse .* needs --path loop"):
        resolve("default", loss="softmax-mse")


@pytest.mark.parametrize("backend", ["numpy", "numba"])
def test_deep_sgd_preset_trains_what_its_write_up_trains(mnist, backend):
    """From the same initial weights, the preset and a rendering of the write-up's code (bench.renderings)
    end with the same weights and print the same accuracy every epoch."""
    cfg = resolve("deep-sgd", backend=backend, train_samples=400, test_samples=300, epochs=2)
    result = fit(cfg, mnist)
    init = model.init_params(np.random.default_rng(cfg.seed), [784, 128, 64, 10], cfg.init)  # as fit draws them
    weights, history = deep_sgd(init, normalize(mnist.train_images[:400], np.float64), mnist.train_labels[:400],
                                normalize(mnist.test_images[:300], np.float64), mnist.test_labels[:300], epochs=2)
    for a, b in zip(result.params, weights):
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()
    assert [r["test_accuracy"] for r in result.history] == [r["test_accuracy"] for r in history]
    assert np.abs(result.params[0] - init[0]).max() > 1e-6  # it trained


STANDIN_SCRIPT = """
import json, sys
import numpy as np
from mnist_accel.config import resolve
from mnist_accel.training.fit import fit
from mnist_accel.kernels.cuda import loop_cuda
options = json.loads(sys.argv[1])
loop_cuda.THREADS, loop_cuda.WARP = options.pop("threads"), options.pop("warp")  # the simulator: a thread each
cfg = resolve("deep-sgd", backend="cuda", **options)
got, want = fit(cfg), fit(cfg.replace(backend="numpy"))
print(json.dumps({"backend": got.backend, "accuracy": [got.test_accuracy, want.test_accuracy],
                  "error": max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(got.params, want.params))}))
"""


@pytest.mark.standin
@pytest.mark.cudasim
def test_deep_loop_on_cuda_trains_the_reference_model():
    """The trainer's flattening of the later layers for the GPU kernel, on the CuPy stand-in's rules, with
    biases and dropout, at two hidden layers (deep-sgd's depth): the model the numpy backend trains. Two
    simulated warps of four lanes, fewer threads than units, so that every loop over units strides; blocks of
    32 samples, the last one short, and a second epoch from the first's weights."""
    options = dict(train_samples=36, test_samples=20, hidden=[12, 9], epochs=2, bias=True, dropout=0.3, lr=0.05,
                   threads=8, warp=4)
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "PYTHONWARNINGS": "ignore", "NUMBA_ENABLE_CUDASIM": "1"}
    proc = subprocess.run([sys.executable, "-m", "cuda_standin.run", "-c", STANDIN_SCRIPT, json.dumps(options)],
                          capture_output=True, text=True, env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "cuda" and out["error"] <= 1e-10 and out["accuracy"][0] == out["accuracy"][1]
