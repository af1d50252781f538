"""The GPU loop's steps as Numba CUDA device functions, shared by the one-layer kernel (``loop_cuda``) and
the deeper one (``loop_cuda_deep``): a block's first-layer products from its start weights (``_forward``) and
its deferred first-layer update (``_update``); a sample's first hidden layer with the Gram corrections
(``_hidden``), the output layer's slice sums and outputs with the loss's delta (``_slices``, ``_outputs``),
the backward pass through the output layer (``_backward``); a block's losses and hits (``_book``). Their
arguments and shared-memory layout are ``loop_cuda.sgd_epoch``'s, whose docstring gives the design and its
cost. Numba's simulator (NUMBA_ENABLE_CUDASIM=1) has no __syncwarp: a Python barrier per warp stands in,
set up by each launch in ``_SIM``.
"""

from __future__ import annotations

import math
import threading

from numba import config, cuda

from .. import ACTIVATION_CODES, LOOP_LOSS_CODES

MAX_OUT = 16  # output units (MNIST has 10)
BOOK = MAX_OUT + 2  # a sample's bookkeeping row: outputs, then the loss (first the softmax's sum), a hit
RELU, TANH, IDENTITY = ACTIVATION_CODES["relu"], ACTIVATION_CODES["tanh"], ACTIVATION_CODES["identity"]
MSE, SOFTMAX_MSE = LOOP_LOSS_CODES["mse"], LOOP_LOSS_CODES["softmax-mse"]


_SIM: dict = {}  # the simulator's barriers, one per warp, and its warp size: set by each launch

if config.ENABLE_CUDASIM:
    def _syncwarp():
        """The simulator has no __syncwarp: its threads are Python threads, one barrier per warp."""
        _SIM["barriers"][threading.current_thread().threadIdx.x // _SIM["warp"]].wait()
else:
    @cuda.jit(device=True)
    def _syncwarp():
        cuda.syncwarp()


@cuda.jit(device=True)
def _forward(t, nt, warp, lo, nb, b, indptr, indices, values, gram, labels, masks, use_masks, w1, lr, one, st, sm,
             mk, dyn8, lab0):
    """The block's x_m @ w1 into st[m * hidden + j], a warp per (sample, 128 columns); also its masks,
    labels and lr * Gram (lower triangle) moved into shared memory, off the sample loop's latency path."""
    hidden = w1.shape[1]
    blk = gram.shape[1]
    zero = one - one
    tasks = nb * warp  # a task: one sample, four columns a lane (a warp apart): one pixel load feeds four
    for q in range(t, (hidden + 4 * warp - 1) // (4 * warp) * tasks, nt):
        c = q // tasks
        m = (q - c * tasks) // warp
        j = q - c * tasks - m * warp + 4 * c * warp
        a0 = a1 = a2 = a3 = zero
        for p in range(indptr[lo + m], indptr[lo + m + 1]):
            row, v = indices[p], values[p]
            a0 += v * w1[row, j] if j < hidden else zero
            a1 += v * w1[row, j + warp] if j + warp < hidden else zero
            a2 += v * w1[row, j + 2 * warp] if j + 2 * warp < hidden else zero
            a3 += v * w1[row, j + 3 * warp] if j + 3 * warp < hidden else zero
        for i, a in ((0, a0), (1, a1), (2, a2), (3, a3)):
            if j + i * warp < hidden:
                st[m * hidden + j + i * warp] = a
                if use_masks:
                    mk[m * hidden + j + i * warp] = masks[lo + m, j + i * warp]
    for q in range(t, nb * blk, nt):
        m = q // blk
        l = q - m * blk
        if l < m:
            sm[m * (m - 1) // 2 + l] = lr * gram[b, m, l]
    for m in range(t, nb, nt):
        dyn8[lab0 + m] = labels[lo + m]


@cuda.jit(device=True)
def _hidden(t, nt, m, hidden, use_masks, scale, use_bias, activation, one, st, sm, mk, h0, b10):
    """Sample m's hidden units owned by thread t: forward product plus the pending updates of the block's
    earlier samples (Gram corrections), activation, dropout; h and the derivative into st."""
    zero = one - one
    tri = m * (m - 1) // 2
    for j in range(t, hidden, nt):
        z = st[m * hidden + j]
        if use_bias:
            z = st[b10 + j] + z
        for l in range(m):
            c = sm[tri + l]
            if c != 0:
                z += c * st[l * hidden + j]
        if activation == RELU:
            a = z if z >= 0 else zero
        elif activation == TANH:
            a = math.tanh(z)
        elif activation == IDENTITY:
            a = z
        else:
            a = one / (one + math.exp(-z))
        hj = a * (mk[m * hidden + j] * scale) if use_masks else a
        if activation == RELU:
            deriv = one if hj >= 0 else zero  # the tutorial's relu2deriv, after dropout
        elif activation == TANH:
            deriv = one - a * a
        elif activation == IDENTITY:
            deriv = one
        else:
            deriv = a * (one - a)
        st[h0 + j] = hj
        st[h0 + hidden + j] = deriv


@cuda.jit(device=True)
def _slices(t, nt, hidden, n_out, slices, use_bias, one, st, sm, w2t0, h0, q0, b20):
    """Partial sums of the outputs over contiguous slices of h, one (slice, output) per thread: a chain
    of hidden / slices FMAs instead of hidden; slice 0 starts from the bias."""
    for q in range(t, slices * n_out, nt):
        r = q // n_out
        k = q - r * n_out
        acc = sm[b20 + k] if use_bias and r == 0 else one - one
        for j in range(r * hidden // slices, (r + 1) * hidden // slices):
            acc += st[h0 + j] * st[w2t0 + k * hidden + j]
        sm[q0 + q] = acc


@cuda.jit(device=True)
def _outputs(lane, warp, wid, m, n_out, slices, loss, label, lr, one, use_bias, sm, book, q0, ax, ex, b20):
    """Sample m's outputs and their error, by every warp that owns hidden units (each for itself: no
    block barrier), lanes over outputs: sm[ax + k] <- y_k - out_k, y_k - softmax_k, or deep-sgd's
    2 (y_k - s_k) / n_out * s_k (1 - s_k). Warp 0 keeps the outputs (and the softmax's sum) for the block's
    bookkeeping and updates b2."""
    zero = one - one
    for k in range(lane, n_out, warp):
        o = sm[q0 + k]
        for r in range(1, slices):
            o += sm[q0 + r * n_out + k]
        if wid == 0:
            book[m, k] = o
        sm[ax + k] = ((one if k == label else zero) - o) if loss == MSE else o
    _syncwarp()
    if loss != MSE:
        peak = sm[ax]
        for k in range(1, n_out):
            if sm[ax + k] > peak:
                peak = sm[ax + k]
        for k in range(lane, n_out, warp):
            sm[ex + k] = math.exp(sm[ax + k] - peak)
        _syncwarp()
        norm = count = zero
        for k in range(n_out):
            norm += sm[ex + k]
            count += one  # n_out in the weights' type, exactly, as the reference divides by it
        for k in range(lane, n_out, warp):
            if loss == SOFTMAX_MSE:
                s = sm[ex + k] / norm
                sm[ax + k] = (one + one) * ((one if k == label else zero) - s) / count * (s * (one - s))
            else:
                sm[ax + k] = (one if k == label else zero) - sm[ex + k] / norm
        if wid == 0 and lane == 0:
            book[m, MAX_OUT] = norm
        _syncwarp()
    if wid == 0 and use_bias:
        for k in range(lane, n_out, warp):
            sm[b20 + k] += lr * sm[ax + k]


@cuda.jit(device=True)
def _backward(t, nt, m, hidden, n_out, use_masks, use_bias, lr, one, st, sm, mk, w2t0, h0, b10, ax):
    """Thread t's hidden units: error sent back through w2 (before its update), w2's update, and the
    delta that the Gram corrections and the block's deferred w1 update read (over the forward product)."""
    for j in range(t, hidden, nt):
        hj = st[h0 + j]
        back = one - one
        for k in range(n_out):
            dk = sm[ax + k]
            back += st[w2t0 + k * hidden + j] * dk
            st[w2t0 + k * hidden + j] += lr * (hj * dk)
        s = back * st[h0 + hidden + j]
        delta = s * mk[m * hidden + j] if use_masks else s
        st[m * hidden + j] = delta
        if use_bias:
            st[b10 + j] += lr * delta


@cuda.jit(device=True)
def _update(t, nt, warp, g0, g1, gptr, grow, esam, evals, lr, one, w1, st):
    """The block's deferred first-layer update: each (pixel pair, unit) adds its samples' updates in
    sample order, as the reference applies them, and writes the two values of w1 once; four columns a
    lane, a warp apart, so that one load of an entry's sample and values feeds four."""
    n_feat, hidden = w1.shape
    zero = one - one
    per = (hidden + 4 * warp - 1) // (4 * warp) * warp  # tasks per pixel pair
    for q in range(t, (g1 - g0) * per, nt):
        g = g0 + q // per
        j = q - (q // per) * per
        j = j + 3 * (j // warp) * warp
        ra, rb = grow[g, 0], grow[g, 1]
        rb_real = rb < n_feat  # else the zero row an odd pixel pairs with: nothing to read or write
        a0, b0 = _pair(w1, ra, rb, rb_real, j, zero)
        a1, b1 = _pair(w1, ra, rb, rb_real, j + warp, zero)
        a2, b2 = _pair(w1, ra, rb, rb_real, j + 2 * warp, zero)
        a3, b3 = _pair(w1, ra, rb, rb_real, j + 3 * warp, zero)
        for e in range(gptr[g], gptr[g + 1]):
            row = esam[e] * hidden
            va, vb = lr * evals[e, 0], lr * evals[e, 1]
            d0 = st[row + j] if j < hidden else zero
            d1 = st[row + j + warp] if j + warp < hidden else zero
            d2 = st[row + j + 2 * warp] if j + 2 * warp < hidden else zero
            d3 = st[row + j + 3 * warp] if j + 3 * warp < hidden else zero
            a0, b0, a1, b1 = a0 + va * d0, b0 + vb * d0, a1 + va * d1, b1 + vb * d1
            a2, b2, a3, b3 = a2 + va * d2, b2 + vb * d2, a3 + va * d3, b3 + vb * d3
        for i, a, b in ((0, a0, b0), (1, a1, b1), (2, a2, b2), (3, a3, b3)):
            if j + i * warp < hidden:
                w1[ra, j + i * warp] = a
                if rb_real:
                    w1[rb, j + i * warp] = b


@cuda.jit(device=True)
def _pair(w1, ra, rb, rb_real, j, zero):
    if j >= w1.shape[1]:
        return zero, zero
    return w1[ra, j], w1[rb, j] if rb_real else zero


@cuda.jit(device=True)
def _book(lane, warp, lo, nb, n_out, loss, book, dyn8, lab0, total, correct, bad):
    """The block's losses and hits, one sample per lane, summed in sample order by lane 0."""
    for m in range(lane, nb, warp):
        label = dyn8[lab0 + m]
        best = 0
        for k in range(1, n_out):
            if book[m, k] > book[m, best]:
                best = k
        s = 0.0
        if loss == MSE:
            for k in range(n_out):
                d = (1.0 if k == label else 0.0) - book[m, k]
                s += d * d
        elif loss == SOFTMAX_MSE:
            for k in range(n_out):
                d = (1.0 if k == label else 0.0) - math.exp(book[m, k] - book[m, best]) / book[m, MAX_OUT]
                s += d * d
            s /= n_out
        elif label < n_out:
            s = -(book[m, label] - book[m, best] - math.log(book[m, MAX_OUT]))
        book[m, MAX_OUT] = s
        book[m, MAX_OUT + 1] = 1.0 if best == label else 0.0
    _syncwarp()
    if lane == 0:
        for m in range(nb):
            total += book[m, MAX_OUT]
            correct += int(book[m, MAX_OUT + 1])
            if bad < 0 and not math.isfinite(total):
                bad = lo + m
    return total, correct, bad
