"""``WholeStep``, the full-batch step as one pass over the images (``kernels.cpu.whole_cpu``), against one
step of gradient descent in float64 (``model.loss_and_grads``): every activation and loss, with and without
biases, layers of one vector line, of several and with a partial last line, both dtypes, the rows split
unevenly over two threads, more rows than one block and fewer. float64 agrees to rounding; float32 within
4x the gap between the composed NumPy step in float32 and the reference."""

from __future__ import annotations

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.backends.whole_step import WholeStep
from mnist_accel.config import resolve
from mnist_accel.trainers.vectorized import VectorizedTrainer

CASES = [
    dict(activation="tanh", loss="cross-entropy", hidden=(16, 16)),  # the full-batch preset's network
    dict(activation="relu", loss="mse", hidden=(40, 24)),
    dict(activation="sigmoid", loss="cross-entropy", hidden=(33,), bias=False),
    dict(activation="tanh", loss="mse", hidden=(64, 17, 9)),
]


def _step(mnist, case: dict, dtype: str, n: int, backend: str, params: list[np.ndarray]):
    """(summed loss, correct count, parameters) after one epoch: one step on the first n images."""
    cfg = resolve("full-batch", backend=backend, train_samples=n, epochs=1, lr=0.5, threads=2, dtype=dtype, **case)
    trainer = VectorizedTrainer(cfg, get_backend(backend), [p.astype(dtype) for p in params],
                                np.random.default_rng(1), mnist.train_images[:n], mnist.train_labels[:n])
    assert isinstance(trainer._fused, WholeStep) == (backend == "numba")
    loss, hits = trainer.train_epoch()
    return float(to_host(loss)), int(to_host(hits)), [np.asarray(to_host(p), np.float64) for p in trainer.params]


@pytest.mark.parametrize("n", [700, 150])  # several blocks, split over two threads; fewer rows than a block
@pytest.mark.parametrize("case", CASES, ids=lambda c: "-".join(map(str, c.values())))
def test_whole_step_is_a_step_of_gradient_descent(mnist, case, n):
    cfg = resolve(**case)
    params = model.init_params(np.random.default_rng(0), [784, *cfg.hidden, 10], "xavier", cfg.bias, np.float64)
    x = mnist.train_images[:n].reshape(n, -1) / 255
    y = np.eye(10)[mnist.train_labels[:n]]
    mean_loss, grads = model.loss_and_grads(params, x, y, cfg.activation, cfg.loss, np)
    out, _ = model.forward(params, x, cfg.activation, np)
    hits = int((out.argmax(axis=1) == mnist.train_labels[:n]).sum())
    expected = np.concatenate([(p - 0.5 * g).ravel() for p, g in zip(params, grads)])

    loss64, hits64, params64 = _step(mnist, case, "float64", n, "numba", params)
    assert loss64 / n == pytest.approx(mean_loss, rel=1e-12) and hits64 == hits
    np.testing.assert_allclose(np.concatenate([p.ravel() for p in params64]), expected, rtol=1e-10, atol=1e-13)

    loss32, hits32, params32 = _step(mnist, case, "float32", n, "numba", params)
    _, _, composed = _step(mnist, case, "float32", n, "numpy", params)
    gap = np.abs(np.concatenate([p.ravel() for p in composed]) - expected).max()
    np.testing.assert_allclose(np.concatenate([p.ravel() for p in params32]), expected, rtol=0, atol=4 * gap)
    assert loss32 / n == pytest.approx(mean_loss, rel=1e-5) and abs(hits32 - hits) <= 1


def test_whole_step_is_deterministic(mnist):
    """The threads' sums meet in a fixed order: two runs agree bit for bit."""
    case = CASES[0]
    params = model.init_params(np.random.default_rng(0), [784, 16, 16, 10], "xavier", True, np.float64)
    first, second = (_step(mnist, case, "float32", 700, "numba", params) for _ in range(2))
    assert first[:2] == second[:2]
    for a, b in zip(first[2], second[2]):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("dtype", ["float64", "float32"])
@pytest.mark.parametrize("scaled", [True, False])  # uint8 pixels (scaled by 1/255) or features as given
def test_sparse_inputs_in_column_chunks_are_the_dense_products(mnist, dtype, scaled):
    """Layers wider than one chunk (``CHUNK_BYTES`` of a 784-row layer: 64 float64 columns, 128 float32) run a
    chunk at a time, the last one narrower and with a partial line; the products are the dense ones."""
    from mnist_accel.backends.whole_step import SparseInputs

    pixels = mnist.train_images[:300].reshape(300, -1)
    x = pixels / np.dtype(dtype).type(255)
    sparse = SparseInputs(pixels if scaled else x.astype(dtype), dtype, 2)
    m = 150 if dtype == "float64" else 300
    assert len(sparse.chunks(m)) == 3
    r = np.random.default_rng(0)
    w, delta = r.standard_normal((784, m)).astype(dtype), r.standard_normal((300, m)).astype(dtype)
    out, grad = np.empty((300, m), dtype), np.empty((784, m), dtype)
    sparse.matmul(w, out)
    sparse.grad(delta, grad)
    tol = 1e-12 if dtype == "float64" else 2e-5
    np.testing.assert_allclose(out, x.astype(np.float64) @ w, rtol=tol, atol=tol * np.abs(out).max())
    np.testing.assert_allclose(grad, x.T.astype(np.float64) @ delta, rtol=tol, atol=tol * np.abs(grad).max())
