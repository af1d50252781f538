"""The tutorial's per-sample SGD on the GPU: one persistent kernel per epoch (Numba CUDA).

A single thread block walks the samples in order, as SGD must; its threads split each sample's work
by hidden unit (column j of W1 and row j of W2 belong to thread j), with barriers only around the
10-wide output layer. Sums run in a fixed order, so a run is bit-reproducible. Inputs are CSR rows of
nonzero pixels, and masks, quirks and integer codes are those of ``loop_cpu`` and the NumPy reference.
It also runs in Numba's CUDA simulator (``NUMBA_ENABLE_CUDASIM=1``): that is how the tests check it on
machines without a GPU.
"""

from __future__ import annotations

import math

from numba import cuda, float64

MAX_OUT = 16  # output units kept in shared memory (MNIST has 10)
MAX_HIDDEN = 2048  # hidden units kept in shared memory: 2 x 16 KiB of float64
THREADS = 128


@cuda.jit
def sgd_epoch(indptr, indices, values, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias,
              lr, activation, loss, result):
    """Train one epoch in place; result <- (summed loss, correct count, first sample whose loss was not
    finite or -1)."""
    tid = cuda.threadIdx.x
    nthreads = cuda.blockDim.x
    hidden, n_out = w2.shape
    h = cuda.shared.array(MAX_HIDDEN, float64)
    deriv = cuda.shared.array(MAX_HIDDEN, float64)
    out = cuda.shared.array(MAX_OUT, float64)
    d2 = cuda.shared.array(MAX_OUT, float64)
    total = 0.0
    correct = 0
    bad = -1
    for i in range(labels.shape[0]):
        start, stop = indptr[i], indptr[i + 1]
        for j in range(tid, hidden, nthreads):
            z = b1[j] if use_bias else 0.0
            for p in range(start, stop):
                z += values[p] * w1[indices[p], j]
            if activation == 0:
                a = z if z >= 0 else 0.0
            elif activation == 1:
                a = math.tanh(z)
            else:
                a = 1.0 / (1.0 + math.exp(-z))
            hj = a * (masks[i, j] * scale) if use_masks else a
            if activation == 0:
                deriv[j] = 1.0 if hj >= 0 else 0.0  # the tutorial's relu2deriv, after dropout
            elif activation == 1:
                deriv[j] = 1.0 - a * a
            else:
                deriv[j] = a * (1.0 - a)
            h[j] = hj
        cuda.syncthreads()
        for k in range(tid, n_out, nthreads):
            s = b2[k] if use_bias else 0.0
            for j in range(hidden):
                s += h[j] * w2[j, k]
            out[k] = s
        cuda.syncthreads()
        if tid == 0:
            best = 0
            for k in range(1, n_out):
                if out[k] > out[best]:
                    best = k
            label = labels[i]
            if best == label:
                correct += 1
            if loss == 0:
                for k in range(n_out):
                    d2[k] = (1.0 if k == label else 0.0) - out[k]
                    total += d2[k] * d2[k]
            else:
                norm = 0.0
                for k in range(n_out):
                    norm += math.exp(out[k] - out[best])
                log_norm = math.log(norm)
                total -= out[label] - out[best] - log_norm
                for k in range(n_out):
                    d2[k] = (1.0 if k == label else 0.0) - math.exp(out[k] - out[best] - log_norm)
            if bad < 0 and not math.isfinite(total):
                bad = i
        cuda.syncthreads()
        for j in range(tid, hidden, nthreads):
            s = 0.0
            for k in range(n_out):
                s += w2[j, k] * d2[k]
            s *= deriv[j]
            if use_masks:
                s *= masks[i, j]
            for p in range(start, stop):
                w1[indices[p], j] += lr * (values[p] * s)
            for k in range(n_out):
                w2[j, k] += lr * (h[j] * d2[k])
            if use_bias:
                b1[j] += lr * s
        if use_bias:
            for k in range(tid, n_out, nthreads):
                b2[k] += lr * d2[k]
        cuda.syncthreads()  # the next sample's output layer reads every row of w2
    if tid == 0:
        result[0] = total
        result[1] = correct
        result[2] = bad


def launch(csr, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias, lr, activation, loss, result):
    """One block of THREADS threads; the caller passes device (or, in the simulator, host) arrays."""
    if w2.shape[0] > MAX_HIDDEN or w2.shape[1] > MAX_OUT:
        raise ValueError(f"the GPU loop holds at most {MAX_HIDDEN} hidden and {MAX_OUT} output units")
    sgd_epoch[1, THREADS](*csr, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias, lr, activation,
                          loss, result)
