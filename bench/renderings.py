"""NumPy renderings of the write-ups our presets reproduce, written by us from their descriptions: each
write-up's algorithm as its own code runs it (its array layout, its loops, its order of operations).

The ``seeds`` benchmark group times each beside its preset, and ``tests/test_renderings.py`` checks that
the preset computes the same thing (float64, relative 1e-10) from the same initial weights. Every rendering
takes weights in our layout (``[W1, b1, ...]``, W as inputs x outputs) and returns them trained, with the
figures the write-up prints. ``RENDERINGS`` maps a preset to its rendering; add a row there for a new one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

import numpy as np


def tutorial(params: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray, x_test: np.ndarray,
             test_labels: np.ndarray, rng: np.random.Generator, epochs: int = 20, lr: float = 0.005
             ) -> tuple[list[np.ndarray], list[dict]]:
    """numpy-tutorials' "Deep learning on MNIST": per-sample SGD on 784-100-10 without biases, ReLU, a fair
    coin per hidden unit (kept units doubled), summed squared error, test loss and accuracy every epoch."""
    w1, w2 = (p.copy() for p in params)
    y, y_test = np.eye(10)[labels], np.eye(10)[test_labels]
    relu = lambda v: (v >= 0) * v  # noqa: E731  (the tutorial's definitions)
    relu2deriv = lambda v: v >= 0  # noqa: E731
    history = []
    for _ in range(epochs):
        loss, hits = 0.0, 0
        for i in range(len(x)):
            layer_0 = x[i]
            layer_1 = relu(np.dot(layer_0, w1))
            mask = rng.integers(0, 2, size=layer_1.shape)
            layer_1 *= mask * 2
            layer_2 = np.dot(layer_1, w2)
            loss += np.sum((y[i] - layer_2) ** 2)
            hits += int(np.argmax(layer_2) == np.argmax(y[i]))
            layer_2_delta = y[i] - layer_2
            layer_1_delta = np.dot(w2, layer_2_delta) * relu2deriv(layer_1)
            layer_1_delta *= mask
            w1 += lr * np.outer(layer_0, layer_1_delta)
            w2 += lr * np.outer(layer_1, layer_2_delta)
        out = np.dot(relu(np.dot(x_test, w1)), w2)
        history.append({"train_loss": loss / len(x), "train_accuracy": hits / len(x),
                        "test_loss": float(np.sum((y_test - out) ** 2)) / len(x_test),
                        "test_accuracy": float(np.mean(np.argmax(out, axis=1) == test_labels))})
    return [w1, w2], history


def keras_mlp(params: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray, order: Callable[[int], np.ndarray],
              epochs: int = 10, batch: int = 128, lr: float = 1e-3, beta_1: float = 0.9, beta_2: float = 0.999,
              epsilon: float = 1e-7, validation: tuple[np.ndarray, np.ndarray] | None = None
              ) -> tuple[list[np.ndarray], list[dict]]:
    """Keras's Sequential Dense(128, relu), Dense(128, relu), Dense(10, softmax) with categorical
    cross-entropy and Keras's Adam, as ``fit`` runs it: each epoch in the order ``order(epoch)`` gives,
    batch by batch, the loss and accuracy averaged over the epoch, then the validation set's."""
    ps = [p.copy() for p in params]
    m = [np.zeros_like(p) for p in ps]
    v = [np.zeros_like(p) for p in ps]
    y = np.eye(10, dtype=x.dtype)[labels]
    t, history = 0, []
    for epoch in range(epochs):
        idx = order(epoch)
        loss, hits = 0.0, 0
        for start in range(0, len(idx), batch):
            rows = idx[start:start + batch]
            xb, yb, n = x[rows], y[rows], len(rows)
            w1, b1, w2, b2, w3, b3 = ps
            h1 = np.maximum(xb @ w1 + b1, 0)
            h2 = np.maximum(h1 @ w2 + b2, 0)
            z = h2 @ w3 + b3
            shifted = z - z.max(axis=1, keepdims=True)
            log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
            loss += float(-(yb * log_p).sum())
            hits += int((z.argmax(axis=1) == labels[rows]).sum())
            dz = (np.exp(log_p) - yb) / n  # d mean loss / d logits
            dh2 = (dz @ w3.T) * (h2 > 0)
            dh1 = (dh2 @ w2.T) * (h1 > 0)
            grads = [xb.T @ dh1, dh1.sum(axis=0), h1.T @ dh2, dh2.sum(axis=0), h2.T @ dz, dz.sum(axis=0)]
            t += 1
            alpha = lr * np.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)  # Keras's Adam.update_step
            for p, g, mi, vi in zip(ps, grads, m, v):
                mi += (g - mi) * (1 - beta_1)
                vi += (g * g - vi) * (1 - beta_2)
                p -= (mi * alpha) / (np.sqrt(vi) + epsilon)
        record = {"train_loss": loss / len(idx), "train_accuracy": hits / len(idx)}
        if validation is not None:
            record.update(zip(("val_loss", "val_accuracy"), _scores(ps, *validation)))
        history.append(record)
    return ps, history


def _scores(ps: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    w1, b1, w2, b2, w3, b3 = ps
    z = np.maximum(np.maximum(x @ w1 + b1, 0) @ w2 + b2, 0) @ w3 + b3
    shifted = z - z.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return float(-log_p[np.arange(len(x)), labels].mean()), float((z.argmax(axis=1) == labels).mean())


def full_batch(params: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray, iterations: int = 150,
               lr: float = 1.0, lr_after: float = 0.1, drop_after: int = 75, every: int = 10
               ) -> tuple[list[np.ndarray], list[dict]]:
    """"Building Your First Neural Network From Scratch", vectorized: samples in columns (x is features x
    m), 784-16-16-10 tanh, softmax, gradient descent on every sample at once, the rate lowered ``if i >
    drop_after``; every ``every`` iterations the cost, -mean(Y * log(A3 + 1e-8)) over all 10 x m entries,
    and the training accuracy, both of that iteration's forward pass."""
    w1, b1, w2, b2, w3, b3 = (p.T.copy() if p.ndim == 2 else p.reshape(-1, 1).copy() for p in params)
    m = x.shape[1]
    y = np.eye(10, dtype=x.dtype)[labels].T
    history = []
    for i in range(iterations):
        z1 = w1 @ x + b1
        a1 = np.tanh(z1)
        z2 = w2 @ a1 + b2
        a2 = np.tanh(z2)
        z3 = w3 @ a2 + b3
        e = np.exp(z3 - z3.max(axis=0, keepdims=True))
        a3 = e / e.sum(axis=0, keepdims=True)
        dz3 = a3 - y
        dw3, db3 = dz3 @ a2.T / m, dz3.sum(axis=1, keepdims=True) / m
        dz2 = (w3.T @ dz3) * (1 - a2 ** 2)
        dw2, db2 = dz2 @ a1.T / m, dz2.sum(axis=1, keepdims=True) / m
        dz1 = (w2.T @ dz2) * (1 - a1 ** 2)
        dw1, db1 = dz1 @ x.T / m, dz1.sum(axis=1, keepdims=True) / m
        rate = lr_after if i > drop_after else lr
        w1, b1, w2, b2, w3, b3 = (w1 - rate * dw1, b1 - rate * db1, w2 - rate * dw2, b2 - rate * db2,
                                  w3 - rate * dw3, b3 - rate * db3)
        if i % every == 0 or i == iterations - 1:
            history.append({"iteration": i, "cost": float(-np.mean(y * np.log(a3 + 1e-8))),
                            "train_accuracy": float(np.mean(a3.argmax(axis=0) == labels))})
    return [w1.T, b1.ravel(), w2.T, b2.ravel(), w3.T, b3.ravel()], history


def deep_sgd(params: Sequence[np.ndarray], x: np.ndarray, labels: np.ndarray, x_test: np.ndarray | None,
             test_labels: np.ndarray | None, epochs: int = 10, lr: float = 0.001
             ) -> tuple[list[np.ndarray], list[dict]]:
    """"Neural Network From Scratch with NumPy and MNIST", its ``DeepNeuralNetwork``: weights as outputs x
    inputs, no biases, per sample ``forward_pass`` (sigmoid, sigmoid, softmax), ``backward_pass`` (the error
    ``2 * (output - y) / 10 * softmax'(Z3)``, the softmax's elementwise derivative, then down through each
    layer with the sigmoid's derivative taken from Z) and ``params -= l_rate * change``; after every epoch
    the accuracy on the held-out images, sample by sample (skipped when ``x_test`` is None, as the bench
    times training alone), and the time spent so far. (The write-up casts its pixels to float32; pass the
    same float64 pixels the preset trains on to compare the two.)"""
    w = {"W1": params[0].T.copy(), "W2": params[1].T.copy(), "W3": params[2].T.copy()}
    y = np.eye(10)[labels]

    def sigmoid(v, derivative=False):
        if derivative:
            return (np.exp(-v)) / ((np.exp(-v) + 1) ** 2)
        return 1 / (1 + np.exp(-v))

    def softmax(v, derivative=False):
        exps = np.exp(v - v.max())
        if derivative:
            return exps / np.sum(exps, axis=0) * (1 - exps / np.sum(exps, axis=0))
        return exps / np.sum(exps, axis=0)

    def forward_pass(a0):
        w["A0"] = a0
        w["Z1"] = np.dot(w["W1"], w["A0"])
        w["A1"] = sigmoid(w["Z1"])
        w["Z2"] = np.dot(w["W2"], w["A1"])
        w["A2"] = sigmoid(w["Z2"])
        w["Z3"] = np.dot(w["W3"], w["A2"])
        w["A3"] = softmax(w["Z3"])
        return w["A3"]

    start, history = time.time(), []
    for _ in range(epochs):
        for a0, target in zip(x, y):
            output = forward_pass(a0)
            error = 2 * (output - target) / output.shape[0] * softmax(w["Z3"], derivative=True)
            change = {"W3": np.outer(error, w["A2"])}
            error = np.dot(w["W3"].T, error) * sigmoid(w["Z2"], derivative=True)
            change["W2"] = np.outer(error, w["A1"])
            error = np.dot(w["W2"].T, error) * sigmoid(w["Z1"], derivative=True)
            change["W1"] = np.outer(error, w["A0"])
            for key, value in change.items():
                w[key] -= lr * value
        history.append({"seconds": time.time() - start})
        if x_test is not None:
            hits = [np.argmax(forward_pass(a0)) == label for a0, label in zip(x_test, test_labels)]
            history[-1]["test_accuracy"] = float(np.mean(hits))
    return [w["W1"].T, w["W2"].T, w["W3"].T], history


RENDERINGS: dict[str, Callable] = {"tutorial": tutorial, "keras-mlp": keras_mlp, "full-batch": full_batch,
                                   "deep-sgd": deep_sgd}
