"""The per-sample loop with two or more hidden layers on the GPU: ``loop_cuda``'s persistent kernel (one
thread block, one launch an epoch), its block-deferred first layer unchanged, and the layers above it dense,
sample by sample, as ``loop_cpu_deep`` runs them.

Per block of B samples: ``loop_cuda_steps._forward``'s first-layer products from the block's start
weights; then each sample in order: the first hidden layer (``loop_cuda_steps._hidden``, with the Gram
corrections), each later hidden layer (a thread per unit it computes), the output layer's slice sums and
outputs (``loop_cuda_steps._slices`` and ``_outputs``), and the deltas back down, a thread per unit, each
layer's weights updated as the delta passes them; then ``loop_cuda_steps._update``'s deferred first-layer
update. One block barrier per layer each way, fixed orders, no atomics: bit-reproducible.

Hidden-to-hidden weights stay where the caller put them (``wd``, global memory, as stored: a row per
input); the output layer is held transposed in the workspace; the first layer's per-unit state is in shared
memory where it fits, as in ``loop_cuda``. The later layers were written for correctness first: a unit's
forward sum is one thread's chain (64 FMAs for deep-sgd's 128-64 layer) and its backward row is read with a
stride across threads; the first layer's passes, as in ``loop_cuda``, remain most of the work.
"""

from __future__ import annotations

import math
import threading
from collections import namedtuple

import numpy as np
from numba import config, cuda, int8

from ..loop_layout import BLOCK, blocks, to_csr
from . import loop_cuda
from .loop_cuda import MAX_HIDDEN
from .loop_cuda_steps import BOOK, IDENTITY, MAX_OUT, RELU, TANH, _book, _forward, _hidden, _outputs, _slices, _update
from .signatures import by_name

Inputs = namedtuple("Inputs", loop_cuda.Inputs._fields + ("deep",))  # named as sgd_epoch's parameters


def prepare(x: np.ndarray, widths, dtype=None, block: int = BLOCK) -> Inputs:
    """``launch``'s inputs for the rows of ``x`` and layer ``widths`` (hidden layers, then the outputs):
    CSR rows, ``loop_layout.blocks``, the first layer's per-unit workspace, its mask buffer, bookkeeping,
    and the later layers' workspace (each hidden layer's activations, derivatives and deltas, and the
    transposed output layer)."""
    dtype = np.dtype(x.dtype if dtype is None else dtype)
    csr = to_csr(x)
    return Inputs(*csr, *blocks(*csr, x.shape[1], block), ws=np.zeros(_units(block, widths[0]), dtype),
                  wsm=np.zeros(block * widths[0], np.int8), book=np.zeros((block, BOOK)),
                  deep=np.zeros(_deep_units(widths), dtype))


def _units(block, hidden):
    return (block + 3) * hidden  # forward products / deltas, h, derivative, b1


def _deep_units(widths):
    return 3 * sum(widths[1:-1]) + widths[-1] * widths[-2]


def plan(block: int, widths, itemsize: int, threads: int, warp: int) -> tuple[int, bool, int]:
    """(slices of the output layer's sums, whether the first layer's state fits in shared memory, bytes)."""
    hidden, last, n_out = widths[0], widths[-2], widths[-1]
    slices = max(1, min(last, round(math.sqrt(last))))
    owners = -(-min(last, threads) // warp)  # warps that own units of the last hidden layer
    small = block * (block - 1) // 2 + slices * n_out + 2 * owners * n_out + n_out
    everything = (small + _units(block, hidden)) * itemsize + block + block * hidden
    fits = everything <= loop_cuda.SHARED_BYTES
    return slices, fits, everything if fits else small * itemsize + block


@cuda.jit(device=True)
def _activate(z, activation, one):
    if activation == RELU:
        return z if z >= 0 else one - one
    if activation == TANH:
        return math.tanh(z)
    if activation == IDENTITY:
        return z
    return one / (one + math.exp(-z))


@cuda.jit(device=True)
def _deriv(a, dropped, activation, one):
    if activation == RELU:
        return one if dropped >= 0 else one - one  # the tutorial's relu2deriv, after dropout
    if activation == TANH:
        return one - a * a
    if activation == IDENTITY:
        return one
    return a * (one - a)


@cuda.jit(device=True)
def _up(t, nt, w, w0, n_in, n_out, src, s0, dst, d0, bd, b0, use_bias, masks, row, c0, use_masks, scale,
        activation, one):
    """A hidden layer from the one below, a thread per unit k: dst[d0 + k] <- its activation after dropout,
    dst[d0 + n_out + k] <- its derivative; ``w`` as stored (row j: input j's weights to every unit)."""
    for k in range(t, n_out, nt):
        z = bd[b0 + k] if use_bias else one - one
        for j in range(n_in):
            z += src[s0 + j] * w[w0 + j * n_out + k]
        a = _activate(z, activation, one)
        dropped = a * (masks[row, c0 + k] * scale) if use_masks else a
        dst[d0 + n_out + k] = _deriv(a, dropped, activation, one)
        dst[d0 + k] = dropped


@cuda.jit(device=True)
def _down(t, nt, w, w0, n_in, n_out, h, h0, der0, d, dd0, out, o0, bias, bb0, use_bias, masks, row, c0, use_masks,
          lr):
    """Back through a hidden-to-hidden layer, a thread per input unit j: the delta d sent down through row j
    of ``w`` as the sample saw it, the row's update, j's delta into out[o0 + j] and its bias's update."""
    for j in range(t, n_in, nt):
        hj = h[h0 + j]
        back = lr - lr
        for k in range(n_out):
            dk = d[dd0 + k]
            back += w[w0 + j * n_out + k] * dk
            w[w0 + j * n_out + k] += lr * (hj * dk)
        s = back * h[der0 + j]
        delta = s * masks[row, c0 + j] if use_masks else s
        out[o0 + j] = delta
        if use_bias:
            bias[bb0 + j] += lr * delta


@cuda.jit(device=True)
def _last(t, nt, n_in, n_out, deep, wt0, h0, ax, sm, bd, b0, use_bias, masks, row, c0, use_masks, lr):
    """Back through the output layer (held transposed at deep[wt0]), for the units of the last hidden layer
    this thread owns: the output delta its own warp computed (sm[ax]), w's update, the unit's delta."""
    for j in range(t, n_in, nt):
        hj = deep[h0 + j]
        back = lr - lr
        for k in range(n_out):
            dk = sm[ax + k]
            back += deep[wt0 + k * n_in + j] * dk
            deep[wt0 + k * n_in + j] += lr * (hj * dk)
        s = back * deep[h0 + n_in + j]
        delta = s * masks[row, c0 + j] if use_masks else s
        deep[h0 + 2 * n_in + j] = delta
        if use_bias:
            bd[b0 + j] += lr * delta


@cuda.jit
def sgd_epoch(indptr, indices, values, gptr, grow, esam, evals, bgrp, gram, ws, wsm, book, deep, labels, masks,
              use_masks, scale, w1, b1, wd, bd, widths, use_bias, lr, activation, loss, result, warp, slices,
              in_shared):
    """Train one epoch in place; result <- (summed loss, correct count, first sample whose loss was not
    finite or -1). ``wd``/``bd``: the later layers' weights (each (fan-in, fan-out), C order) and biases, one
    after another; ``widths``: hidden widths, then the outputs; ``plan`` gives ``slices`` and ``in_shared``."""
    t, nt = cuda.threadIdx.x, cuda.blockDim.x
    lane, wid = t % warp, t // warp
    layers = widths.shape[0] - 1  # weight matrices after the first
    hidden, last, n_out = widths[0], widths[layers - 1], widths[layers]
    blk = gram.shape[1]
    owners = (min(last, nt) + warp - 1) // warp
    one = w1.dtype.type(1.0)
    q0 = blk * (blk - 1) // 2  # shared: lr * Gram, slice sums, two per-warp output rows, b2 | first layer
    ax0 = q0 + slices * n_out
    b20 = ax0 + 2 * owners * n_out
    small = b20 + n_out
    h0 = blk * hidden  # first layer's state: [forward products, then deltas | h | deriv | b1]
    b10 = h0 + 2 * hidden
    dyn = cuda.shared.array(0, w1.dtype)
    dyn8 = cuda.shared.array(0, int8)
    st = dyn[small:] if in_shared else ws
    lab0 = (small + b10 + hidden) * w1.itemsize if in_shared else small * w1.itemsize
    mk = dyn8[lab0 + blk:] if in_shared else wsm
    wt0 = 0  # deep: [h, deriv, delta] of each hidden layer after the first, then the output layer transposed
    for l in range(1, layers):
        wt0 += 3 * widths[l]
    wo0 = wd.shape[0] - last * n_out  # the output layer's weights in wd, and its biases in bd
    bo0 = bd.shape[0] - n_out
    for j in range(t, last, nt):
        for k in range(n_out):
            deep[wt0 + k * last + j] = wd[wo0 + j * n_out + k]
    for j in range(t, hidden, nt):
        st[b10 + j] = b1[j]
    if wid == 0:
        for k in range(lane, n_out, warp):
            dyn[b20 + k] = bd[bo0 + k]
    total, correct, bad = 0.0, 0, -1
    for b in range(bgrp.shape[0] - 1):
        lo = b * blk
        nb = min(blk, labels.shape[0] - lo)
        _forward(t, nt, warp, lo, nb, b, indptr, indices, values, gram, labels, masks, use_masks, w1, lr, one, st,
                 dyn, mk, dyn8, lab0)
        cuda.syncthreads()
        for m in range(nb):
            row = lo + m if use_masks else 0
            _hidden(t, nt, m, hidden, use_masks, scale, use_bias, activation, one, st, dyn, mk, h0, b10)
            cuda.syncthreads()
            src, s0, c0, w0, b0, dl0 = st, h0, 0, 0, 0, 0  # layer l's activations; its masks, weights, biases
            for l in range(1, layers):
                width = widths[l]
                _up(t, nt, wd, w0, widths[l - 1], width, src, s0, deep, dl0, bd, b0, use_bias, masks, row,
                    c0 + widths[l - 1], use_masks, scale, activation, one)
                cuda.syncthreads()
                src, s0, c0, w0, b0, dl0 = deep, dl0, c0 + widths[l - 1], w0 + widths[l - 1] * width, b0 + width, \
                    dl0 + 3 * width
            _slices(t, nt, last, n_out, slices, use_bias, one, deep, dyn, wt0, s0, q0, b20)
            cuda.syncthreads()
            if wid < owners:
                ax = ax0 + 2 * wid * n_out
                _outputs(lane, warp, wid, m, n_out, slices, loss, dyn8[lab0 + m], lr, one, use_bias, dyn, book,
                         q0, ax, ax + n_out, b20)
                _last(t, nt, last, n_out, deep, wt0, s0, ax, dyn, bd, b0 - last, use_bias, masks, row, c0, use_masks,
                      lr)
            cuda.syncthreads()
            for l in range(layers - 1, 0, -1):  # back through each hidden-to-hidden layer, top down
                n_in = widths[l - 1]
                w0 -= n_in * widths[l]
                b0 -= widths[l]
                c0 -= n_in
                if l > 1:
                    _down(t, nt, wd, w0, n_in, widths[l], deep, s0 - 3 * n_in, s0 - 2 * n_in, deep, s0 + 2 * widths[l],
                          deep, s0 - n_in, bd, b0 - n_in, use_bias, masks, row, c0, use_masks, lr)
                else:
                    _down(t, nt, wd, w0, n_in, widths[l], st, h0, h0 + hidden, deep, s0 + 2 * widths[l], st,
                          m * hidden, st, b10, use_bias, masks, row, 0, use_masks, lr)
                s0 -= 3 * n_in
                cuda.syncthreads()
        if wid == 0:
            total, correct, bad = _book(lane, warp, lo, nb, n_out, loss, book, dyn8, lab0, total, correct, bad)
        _update(t, nt, warp, bgrp[b], bgrp[b + 1], gptr, grow, esam, evals, lr, one, w1, st)
        cuda.syncthreads()
    for j in range(t, last, nt):
        for k in range(n_out):
            wd[wo0 + j * n_out + k] = deep[wt0 + k * last + j]
    for j in range(t, hidden, nt):
        b1[j] = st[b10 + j]
    if wid == 0:
        for k in range(lane, n_out, warp):
            bd[bo0 + k] = dyn[b20 + k]
    if t == 0:
        result[0] = total
        result[1] = correct
        result[2] = bad


def launch(inputs, labels, masks, use_masks, scale, w1, b1, wd, bd, widths, use_bias, lr, activation, loss, result,
           stream=0):
    """One block of ``loop_cuda.THREADS`` threads on ``prepare``'s inputs (device arrays, or host arrays in
    the simulator); ``widths``, on the host: the hidden widths, then the outputs."""
    sizes = [int(v) for v in widths]
    if max(sizes[:-1]) > MAX_HIDDEN or sizes[-1] > MAX_OUT:
        raise ValueError(f"the GPU loop holds at most {MAX_HIDDEN} units a hidden layer and {MAX_OUT} outputs")
    inputs = Inputs(*inputs)
    ws, wsm, deep, block = inputs.ws, inputs.wsm, inputs.deep, inputs.gram.shape[1]
    if (ws.dtype != w1.dtype or ws.shape[0] < _units(block, sizes[0]) or wsm.shape[0] < block * sizes[0]
            or deep.dtype != w1.dtype or deep.shape[0] < _deep_units(sizes)):
        raise ValueError("inputs prepared for another model: call prepare(x, widths, dtype) again")
    threads, warp = loop_cuda.THREADS, loop_cuda.WARP
    if threads % warp or not (warp == 32 or config.ENABLE_CUDASIM):
        raise ValueError("THREADS must be whole warps of 32 lanes (fewer only in the simulator)")
    slices, in_shared, nbytes = plan(block, sizes, np.dtype(w1.dtype).itemsize, threads, warp)
    if config.ENABLE_CUDASIM:
        barriers = [threading.Barrier(warp, timeout=120) for _ in range(threads // warp)]
        loop_cuda._SIM.update(warp=warp, barriers=barriers)
    widths = np.array(sizes, np.int64)
    if not config.ENABLE_CUDASIM:
        widths = cuda.to_device(widths, stream=stream)
    args = by_name(sgd_epoch, dict(**inputs._asdict(), labels=labels, masks=masks, use_masks=use_masks, scale=scale,
                                   w1=w1, b1=b1, wd=wd, bd=bd, widths=widths, use_bias=use_bias, lr=lr,
                                   activation=activation, loss=loss, result=result, warp=warp, slices=slices,
                                   in_shared=in_shared))
    sgd_epoch[1, threads, stream, nbytes](*map(loop_cuda._as_kernel_arg, args))
