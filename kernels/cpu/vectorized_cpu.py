"""Fused Numba kernels for the vectorized trainer on the CPU (``--backend numba --path vectorized``).

Each kernel does in one pass over memory what the reference ``mnist_accel.backends.XpOps`` does in several
NumPy calls (``mnist_accel.backends.numba_ops.NumbaOps`` calls them): bias + activation + dropout, the
activation's backward, softmax cross-entropy with its gradient, and the optimizer update. GEMMs stay
with BLAS, but the first layer's two run over only the columns a batch lights (``inputs_cpu``). A sparse
first layer (most MNIST pixels are zero) was slower than OpenBLAS at batch 128: each nonzero
pixel streams a whole row of W1 that a GEMM would reuse, and Numba's inner loops pay LLVM's runtime alias
checks on every short row.
"""

from __future__ import annotations

import functools
import math

import numpy as np
from numba import njit

from .fpenv import flush_subnormals, restore


# The activations' two kernels come one per (activation, bias, dropout) setting, which are constants of the
# compiled function: Numba drops the branches they rule out before compiling, so a run compiles the code
# it runs (one kernel for every setting took about four times as long to compile as one setting's).
# Numba caches each setting's kernel apart, keyed by these values.
@functools.cache
def bias_act(act: int, use_bias: bool, use_mask: bool):
    """``kernel(z, b, mask)``: z <- act(z + b) * mask in place (``b``, ``mask`` not read when unused)."""
    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(z, b, mask):
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

    return kernel


@functools.cache
def act_backward(act: int, use_mask: bool):
    """``kernel(delta, h, mask, inv_scale)``: delta <- delta * act'(h) * mask in place, with h the layer's
    output after dropout (``inv_scale`` undoes its scaling where the derivative needs the activation)."""
    @njit(cache=True, nogil=True, error_model="numpy")
    def kernel(delta, h, mask, inv_scale):
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

    return kernel


@njit(cache=True, nogil=True, inline="always")
def _row_argmax(z, i):
    best = 0
    for j in range(1, z.shape[1]):
        if z[i, j] > z[i, best]:
            best = j
    return best


# Softmax cross-entropy in two calls of one kernel around NumPy's exp (``NumbaOps.loss_grad``): Numba calls the
# C library's exp once per score (no SVML here), NumPy's is a SIMD loop. One kernel, not one per call: a first
# run pays for each compiled function.
@njit(cache=True, nogil=True, error_model="numpy")
def xent(z, labels, grad, finish):
    """First call (``finish`` False): grad <- z minus its row's largest score, and the caller then takes exp
    in place. Second call (``finish`` True), grad holding exp(z - row max): grad <- d(mean loss)/dz. Returns
    (summed loss, correct count), (0.0, 0) from the first call.

    The row's largest score and its first column are found by selects, not branches: a compare-and-branch
    per score mispredicts on real scores."""
    n, k = z.shape
    inv_n = 1.0 / n
    total = 0.0
    correct = 0
    for i in range(n):
        peak = z[i, 0]
        for j in range(1, k):
            v = z[i, j]
            peak = v if v > peak else peak
        if not finish:
            for j in range(k):
                grad[i, j] = z[i, j] - peak
            continue
        norm = 0.0
        for j in range(k):
            norm += grad[i, j]
        label = labels[i]
        total += math.log(norm) + peak - z[i, label]
        first = 0
        for j in range(k - 1, -1, -1):
            first = j if z[i, j] == peak else first
        correct += first == label
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


@njit(cache=True, nogil=True)
def column_sums(a, out):
    for j in range(len(out)):  # a loop: a slice assignment brings in more of Numba's code to compile
        out[j] = 0
    for i in range(a.shape[0]):
        for j in range(a.shape[1]):
            out[j] += a[i, j]


# The updates run with subnormals flushed to zero (see fpenv): weights that decay towards zero would
# otherwise make every step pay microcode assists. Each takes the parameter as (rows, columns) and the
# gradient of only the rows listed in ``rows`` (increasing; the others' gradient is zero), so the first
# layer's compacted gradient (see inputs_cpu) needs no scatter; a full gradient is one row, ``rows=[0]``.
# Serial on purpose: a prange version was faster alone but slower inside training (with Numba's omp or
# workqueue layer alike), its threads contending with OpenBLAS's, which spin between GEMMs.
@njit(cache=True, nogil=True, error_model="numpy")
def adam(p, g, rows, m, v, step, eps, beta1, beta2, wd):
    saved = flush_subnormals()
    one, zero = p.dtype.type(1), p.dtype.type(0)
    k = 0
    for r in range(p.shape[0]):
        hit = k < len(rows) and rows[k] == r
        for j in range(p.shape[1]):
            gi = (g[k, j] if hit else zero) + wd * p[r, j]
            mi = beta1 * m[r, j] + (one - beta1) * gi
            vi = beta2 * v[r, j] + (one - beta2) * (gi * gi)
            m[r, j] = mi
            v[r, j] = vi
            p[r, j] -= step * mi / (np.sqrt(vi) + eps)
        k += hit
    restore(saved)


@njit(cache=True, nogil=True, error_model="numpy")
def momentum(p, g, rows, vel, lr, mu, wd):
    saved = flush_subnormals()
    zero = p.dtype.type(0)
    k = 0
    for r in range(p.shape[0]):
        hit = k < len(rows) and rows[k] == r
        for j in range(p.shape[1]):
            vi = mu * vel[r, j] + ((g[k, j] if hit else zero) + wd * p[r, j])
            vel[r, j] = vi
            p[r, j] -= lr * vi
        k += hit
    restore(saved)


@njit(cache=True, nogil=True, error_model="numpy")
def sklearn_momentum(p, g, rows, vel, lr, mu, wd, lookahead):
    """scikit-learn's momentum (optim.update): vel = mu * vel - lr * g; then p += mu * vel - lr * g with
    ``lookahead`` (Nesterov's), else p += vel (classical)."""
    saved = flush_subnormals()
    zero = p.dtype.type(0)
    k = 0
    for r in range(p.shape[0]):
        hit = k < len(rows) and rows[k] == r
        for j in range(p.shape[1]):
            step_g = lr * ((g[k, j] if hit else zero) + wd * p[r, j])
            vi = mu * vel[r, j] - step_g
            vel[r, j] = vi
            p[r, j] += mu * vi - step_g if lookahead else vi
        k += hit
    restore(saved)


@njit(cache=True, nogil=True, error_model="numpy")
def sgd(p, g, rows, lr, wd):
    saved = flush_subnormals()
    zero = p.dtype.type(0)
    k = 0
    for r in range(p.shape[0]):
        hit = k < len(rows) and rows[k] == r
        for j in range(p.shape[1]):
            p[r, j] -= lr * ((g[k, j] if hit else zero) + wd * p[r, j])
        k += hit
    restore(saved)


ONE_ROW = np.zeros(1, np.int64)  # the row list of a full gradient seen as one row
