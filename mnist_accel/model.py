"""The MLP as pure functions over an array namespace ``xp`` (NumPy or CuPy): initialisation, activations,
forward, backward (the losses it trains on are ``mnist_accel.losses``). It does no I/O and knows no device;
parameters are a flat list of plain arrays, ``[W1, b1, W2, b2, ...]`` with biases or ``[W1, W2, ...]``
without (weights are 2-D, biases 1-D).

This is the readable reference: the fast trainers are tested against it.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from typing import Any

import numpy as np

from mnist_accel.kernels import ACTIVATION_CODES
from mnist_accel.losses import correct_count, link, log_softmax, loss_sum, output_grad

Array = Any
ACTIVATIONS = tuple(ACTIVATION_CODES)
INITS = ("tutorial", "he", "xavier", "glorot-uniform", "normal:S", "uniform:S",  # S: a scale, e.g. normal:0.1
         "normal-fan-out")


def parse_init(init: str) -> tuple[str, float]:
    """(rule, scale) of an ``--init`` name: a named rule, or ``normal:S`` / ``uniform:S`` with a finite S > 0.
    'glorot-uniform' (Keras's name) is 'xavier'."""
    rule, _, scale = init.partition(":")
    if rule in ("normal", "uniform"):
        try:
            value = float(scale)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and value > 0):
            raise ValueError(f"init {init!r}: {rule}:S needs a finite scale S above 0, e.g. {rule}:0.1")
        return rule, value
    if init in INITS and ":" not in init:  # a named rule
        return ("xavier" if init == "glorot-uniform" else init), 1.0
    raise ValueError(f"init {init!r} is not one of {', '.join(INITS)}")


def init_params(rng: np.random.Generator, sizes: Sequence[int], init: str = "tutorial",
                bias: bool = False, dtype: Any = np.float64) -> list[np.ndarray]:
    """Host arrays for layer sizes ``[n_in, h1, ..., n_out]``; weights drawn in layer order from ``rng``.

    'tutorial' is the tutorial's ``0.2 * rng.random(shape) - 0.1``; 'he' is normal with std
    sqrt(2/fan_in) (for ReLU); 'xavier' (also 'glorot-uniform') is uniform in +-sqrt(6/(fan_in+fan_out));
    'normal:S' is S times a standard normal draw (``randn(...) * S`` in the write-ups), 'uniform:S' is
    uniform in [-S, S); 'normal-fan-out' is deep-sgd's ``randn(fan_out, fan_in) * sqrt(1 / fan_out)``,
    transposed (drawn in the write-up's shape). Biases start at 0.
    """
    rule, scale = parse_init(init)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        shape = (fan_in, fan_out)
        if rule == "tutorial":
            w = 0.2 * rng.random(shape) - 0.1
        elif rule == "he":
            w = rng.standard_normal(shape) * math.sqrt(2.0 / fan_in)
        elif rule == "normal":
            w = rng.standard_normal(shape) * scale
        elif rule == "uniform":
            w = rng.uniform(-scale, scale, shape)
        elif rule == "normal-fan-out":
            w = np.ascontiguousarray(rng.standard_normal((fan_out, fan_in)).T) * math.sqrt(1.0 / fan_out)
        else:
            limit = math.sqrt(6.0 / (fan_in + fan_out))
            w = rng.uniform(-limit, limit, shape)
        params.append(w.astype(dtype))
        if bias:
            params.append(np.zeros(fan_out, dtype=dtype))
    return params


def layers(params: Sequence[Array]) -> Iterator[tuple[Array, Array | None]]:
    """Yield ``(W, b)`` per layer, ``b`` None where the model has no biases."""
    i = 0
    while i < len(params):
        w = params[i]
        b = params[i + 1] if i + 1 < len(params) and params[i + 1].ndim == 1 else None
        yield w, b
        i += 1 if b is None else 2


def activate(z: Array, activation: str, xp: Any) -> Array:
    if activation == "relu":
        return (z >= 0) * z  # the tutorial's definition
    if activation == "tanh":
        return xp.tanh(z)
    if activation == "sigmoid":
        return 1 / (1 + xp.exp(-z))
    if activation == "identity":
        return z
    raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(ACTIVATIONS)}")


def activation_grad(h: Array, activation: str) -> Array:
    """d activation / dz, written in terms of the activation's output ``h``."""
    if activation == "relu":
        return h > 0
    if activation == "tanh":
        return 1 - h * h
    if activation == "sigmoid":
        return h * (1 - h)
    return h * 0 + 1


def forward(params: Sequence[Array], x: Array, activation: str, xp: Any,
            masks: Sequence[Array] | None = None, keep_scale: float = 1.0) -> tuple[Array, list[Array]]:
    """Return the output layer's scores and the hidden activations (after dropout).

    ``masks`` holds one 0/1 array per hidden layer; kept units are scaled by ``keep_scale``.
    """
    hidden, h = [], x
    all_layers = list(layers(params))
    for i, (w, b) in enumerate(all_layers):
        z = h @ w
        if b is not None:
            z = z + b
        if i == len(all_layers) - 1:
            return z, hidden
        h = activate(z, activation, xp)
        if masks is not None:
            h = h * (masks[i] * keep_scale)
        hidden.append(h)
    raise ValueError("params hold no layer")


def probabilities(params: Sequence[Array], x: Array, activation: str, xp: Any,
                  n_classes: int | None = None) -> Array:
    """Softmax over the first ``n_classes`` outputs (a one-class classifier still trains two units)."""
    out, _ = forward(params, x, activation, xp)
    if n_classes is not None:
        out = out[:, :n_classes]
    return xp.exp(log_softmax(out, xp))


def outputs(params: Sequence[Array], x: Array, activation: str, loss: str, xp: Any) -> Array:
    """The model's predictions for rows ``x`` (an array, or a scipy.sparse matrix on the host): ``link`` of
    the scores."""
    return link(forward(params, x, activation, xp)[0], loss, xp)


def loss_and_grads(params: Sequence[Array], x: Array, y: Array, activation: str, loss: str, xp: Any,
                   masks: Sequence[Array] | None = None, keep_scale: float = 1.0) -> tuple[Array, list[Array]]:
    """Mean loss over the batch and its exact gradient for every parameter (same order as ``params``)."""
    out, hidden = forward(params, x, activation, xp, masks, keep_scale)
    n = x.shape[0]
    delta = output_grad(out, y, loss, xp) / n
    grads: list[Array] = []
    all_layers = list(layers(params))
    for i in range(len(all_layers) - 1, -1, -1):
        w, b = all_layers[i]
        h_in = hidden[i - 1] if i > 0 else x
        layer_grads = [h_in.T @ delta] + ([delta.sum(axis=0)] if b is not None else [])
        grads[:0] = layer_grads
        if i > 0:
            h = hidden[i - 1]
            delta = delta @ w.T
            if masks is not None:
                delta = delta * (masks[i - 1] * keep_scale)
                h = h / keep_scale  # back to the activation's own output on kept units
            delta = delta * activation_grad(h, activation)
    return loss_sum(out, y, loss, xp) / n, grads


def evaluate(params: Sequence[Array], x: Array, y: Array, activation: str, loss: str, xp: Any,
             chunk: int = 10000) -> tuple[Array, Array]:
    """Summed loss and number of correct predictions (``correct_count``), on the device (no host sync).
    ``y`` holds float targets, one-hot for the label losses; ``x`` may be a scipy.sparse matrix on the host."""
    total, correct = 0.0, 0
    for start in range(0, x.shape[0], chunk):
        xs, ys = x[start:start + chunk], y[start:start + chunk]
        out, _ = forward(params, xs, activation, xp)
        total = total + loss_sum(out, ys, loss, xp)
        correct = correct + correct_count(out, ys, loss)
    return total, correct
