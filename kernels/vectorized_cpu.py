"""Fused Numba kernels for the vectorized trainer on the CPU (``--backend numba --path vectorized``).

Each kernel does in one pass over memory what ``mnist_accel.ops.XpOps`` does in several NumPy calls:
bias + activation + dropout, the activation's backward, softmax cross-entropy with its gradient, and
the optimizer update. GEMMs stay with BLAS: at batch 128 a sparse first layer (81% of MNIST pixels are
zero) measured slower than OpenBLAS here, since each nonzero pixel streams a whole row of W1 that a GEMM
would reuse.
"""

from __future__ import annotations

import math
import time
from typing import Sequence

import numpy as np
from numba import njit

from mnist_accel import optim
from mnist_accel.config import TrainConfig
from mnist_accel.ops import XpOps

from . import ACTIVATION_CODES
from .fpenv import flush_subnormals, restore



@njit(cache=True, nogil=True, error_model="numpy")
def bias_act(z, b, use_bias, act, mask, use_mask):
    rows, cols = z.shape
    zero, one = z.dtype.type(0), z.dtype.type(1)
    for i in range(rows):
        for j in range(cols):
            v = z[i, j] + b[j] if use_bias else z[i, j]
            if act == 0:
                v = v if v > zero else zero
            elif act == 1:
                v = math.tanh(v)
            elif act == 2:
                v = one / (one + math.exp(-v))
            z[i, j] = v * mask[i, j] if use_mask else v


@njit(cache=True, nogil=True, error_model="numpy")
def act_backward(delta, h, act, mask, use_mask, inv_scale):
    rows, cols = delta.shape
    zero, one = delta.dtype.type(0), delta.dtype.type(1)
    for i in range(rows):
        for j in range(cols):
            d = delta[i, j]
            if act == 0:
                d = d if h[i, j] > zero else zero
            elif act != 3:
                a = h[i, j] * inv_scale if use_mask else h[i, j]
                d *= (one - a * a) if act == 1 else a * (one - a)
            delta[i, j] = d * mask[i, j] if use_mask else d


@njit(cache=True, nogil=True, inline="always")
def _row_argmax(z, i):
    best = 0
    for j in range(1, z.shape[1]):
        if z[i, j] > z[i, best]:
            best = j
    return best


@njit(cache=True, nogil=True, error_model="numpy")
def xent_grad(z, labels, grad):
    n, k = z.shape
    inv_n = 1.0 / n
    total = 0.0
    correct = 0
    for i in range(n):
        best = _row_argmax(z, i)
        peak = z[i, best]
        norm = 0.0
        for j in range(k):
            e = math.exp(z[i, j] - peak)
            grad[i, j] = e
            norm += e
        label = labels[i]
        total += math.log(norm) + peak - z[i, label]
        correct += best == label
        scale = inv_n / norm
        for j in range(k):
            grad[i, j] *= scale
        grad[i, label] -= inv_n
    return total, correct


@njit(cache=True, nogil=True, error_model="numpy")
def mse_grad(z, labels, grad):
    n, k = z.shape
    two_over_n = 2.0 / n
    total = 0.0
    correct = 0
    for i in range(n):
        for j in range(k):
            diff = z[i, j] - (1.0 if j == labels[i] else 0.0)
            total += diff * diff
            grad[i, j] = diff * two_over_n
        correct += _row_argmax(z, i) == labels[i]
    return total, correct


# The updates run with subnormals flushed to zero (see fpenv): weights that decay towards zero would
# otherwise make every step pay microcode assists. Serial on purpose: a prange version measured 4x faster
# alone, but 2-9x slower inside training (with Numba's omp or workqueue layer alike), its threads
# contending with OpenBLAS's, which spin between GEMMs.
@njit(cache=True, nogil=True, error_model="numpy")
def adam(p, g, m, v, step, eps, beta1, beta2, wd):
    saved = flush_subnormals()
    one = p.dtype.type(1)
    for i in range(p.size):
        gi = g[i] + wd * p[i]
        mi = beta1 * m[i] + (one - beta1) * gi
        vi = beta2 * v[i] + (one - beta2) * (gi * gi)
        m[i] = mi
        v[i] = vi
        p[i] -= step * mi / (np.sqrt(vi) + eps)
    restore(saved)


@njit(cache=True, nogil=True, error_model="numpy")
def momentum(p, g, vel, lr, mu, wd):
    saved = flush_subnormals()
    for i in range(p.size):
        vi = mu * vel[i] + (g[i] + wd * p[i])
        vel[i] = vi
        p[i] -= lr * vi
    restore(saved)


@njit(cache=True, nogil=True, error_model="numpy")
def sgd(p, g, lr, wd):
    saved = flush_subnormals()
    for i in range(p.size):
        p[i] -= lr * (g[i] + wd * p[i])
    restore(saved)


class NumbaOps(XpOps):
    """``XpOps`` on NumPy with the elementwise work and the update fused into the kernels above."""

    def __init__(self) -> None:
        super().__init__(np)

    def warm_up(self, cfg: TrainConfig) -> float:
        """Compile (or load from cache) every kernel this configuration uses; returns the seconds spent."""
        start = time.perf_counter()
        dt = np.dtype(cfg.dtype)
        z, m = np.zeros((2, 3), dt), np.ones((2, 3), dt)
        self.bias_act(z, np.zeros(3, dt), cfg.activation, m)
        self.bias_act(z, None, cfg.activation, None)
        self.act_backward(z.copy(), z, cfg.activation, m, 1.0)
        self.act_backward(z.copy(), z, cfg.activation, None, 1.0)
        self.loss_grad(z, np.zeros(2, np.int32), z.copy(), cfg.loss)
        params = [np.zeros((2, 3), dt), np.zeros(3, dt)]
        self.update(params, [p.copy() for p in params], optim.init_state(params, cfg.optimizer, np), cfg,
                    np.zeros(3, dt))
        return time.perf_counter() - start

    def bias_act(self, z: np.ndarray, b: np.ndarray | None, activation: str, mask: np.ndarray | None) -> None:
        bias_act(z, z[0] if b is None else b, b is not None, ACTIVATION_CODES[activation], z if mask is None else mask,
                 mask is not None)

    def act_backward(self, delta: np.ndarray, h: np.ndarray, activation: str, mask: np.ndarray | None,
                     inv_scale: float) -> None:
        act_backward(delta, h, ACTIVATION_CODES[activation], delta if mask is None else mask, mask is not None,
                     h.dtype.type(inv_scale))

    def loss_grad(self, z: np.ndarray, labels: np.ndarray, grad: np.ndarray, loss: str) -> tuple[float, int]:
        return (mse_grad if loss == "mse" else xent_grad)(z, labels, grad)

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: list[list[np.ndarray]],
               cfg: TrainConfig, scalars: np.ndarray) -> None:
        lr, step, eps = scalars[0], scalars[1], scalars[2]
        for p, g, slots in zip(params, grads, state):
            dt = p.dtype.type
            wd = dt(optim.decay_for(p, cfg.weight_decay))
            flat = [a.reshape(-1) for a in (p, g, *slots)]
            if cfg.optimizer == "adam":
                adam(*flat, dt(step), dt(eps), dt(cfg.beta1), dt(cfg.beta2), wd)
            elif cfg.optimizer == "momentum":
                momentum(*flat, dt(lr), dt(cfg.momentum), wd)
            else:
                sgd(*flat, dt(lr), wd)
