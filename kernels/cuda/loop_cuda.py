"""The tutorial's per-sample SGD on the GPU: one persistent kernel per epoch, one thread block (Numba CUDA).

``loop_cpu``'s block-deferred algorithm (its docstring shows it is exact SGD) on ``prepare``'s inputs: CSR
rows, ``loop_layout.blocks``' pixel pairs and Gram matrices, and a workspace. Per block of B samples:
(1) all threads compute the block's first-layer products from its start weights, a (sample, 4 columns)
task per lane; (2) the samples in order, hidden units split across threads: 2 block barriers a sample
(the output layer reads all of h; the backward pass all outputs), outputs and softmax lane-parallel in
every warp that owns units (1 __syncwarp for MSE, 3 for softmax); (3) each touched pair of w1 rows takes
the block's updates once. Plus 3 barriers a block. Fixed orders, no atomics: bit-reproducible. State per
unit (products then deltas, w2 transposed, h, masks) is in shared memory while it fits the 48 KiB a kernel
gets unasked (784-100-10 float64: 44 KiB), else in the workspace (global memory; correct, slower). Numba's
simulator (NUMBA_ENABLE_CUDASIM=1) has no __syncwarp: a Python barrier per warp stands in. The steps are
device functions in ``loop_cuda_steps`` (shared with ``loop_cuda_deep``); here are the kernel that strings
them together and its host side (``prepare``, ``plan``, ``launch``).

Its cost on paper (an H200: bound by one SM's L1/shared port, not by FLOPs or HBM) is in
``docs/design/engine-notes-2026-12.md``, with what would spread it over several SMs.
"""

from __future__ import annotations

import math
import threading
from collections import namedtuple

import numpy as np
from numba import config, cuda, int8

from ..loop_layout import BLOCK, blocks, to_csr
from .loop_cuda_steps import _SIM, BOOK, MAX_OUT, _backward, _book, _forward, _hidden, _outputs, _slices, _update
from .signatures import by_name

MAX_HIDDEN = 2048
THREADS = 256  # the passes want warps in flight; at 150 registers a thread 512 would not launch
WARP = 32  # lanes that share a __syncwarp; only the simulator may be given fewer
SHARED_BYTES = 48 * 1024  # dynamic shared memory a kernel may use without opting in


# prepare's arrays, named as sgd_epoch's parameters: to_csr's, then loop_layout.blocks', then the workspace.
Inputs = namedtuple("Inputs", "indptr indices values gptr grow esam evals bgrp gram ws wsm book")


def prepare(x: np.ndarray, hidden: int, n_out: int, dtype=None, block: int = BLOCK) -> Inputs:
    """``launch``'s inputs for the rows of ``x``: CSR rows, ``loop_layout.blocks``, and the kernel's
    workspace (per-unit state that shared memory cannot hold, a mask buffer, bookkeeping), made once so
    that a launch allocates nothing."""
    dtype = np.dtype(x.dtype if dtype is None else dtype)
    csr = to_csr(x)
    return Inputs(*csr, *blocks(*csr, x.shape[1], block), ws=np.zeros(_units(block, hidden, n_out), dtype),
                  wsm=np.zeros(block * hidden, np.int8), book=np.zeros((block, BOOK)))


def _units(block, hidden, n_out):
    return (block + n_out + 3) * hidden  # forward products / deltas, w2 transposed, h, derivative, b1


def plan(block: int, hidden: int, n_out: int, itemsize: int, threads: int, warp: int) -> tuple[int, bool, int]:
    """(slices of the output layer's sums, whether per-unit state fits in shared memory, shared bytes)."""
    slices = max(1, min(hidden, round(math.sqrt(hidden))))  # balances the slice sums against their sum
    owners = -(-min(hidden, threads) // warp)
    small = block * (block - 1) // 2 + slices * n_out + 2 * owners * n_out + n_out
    everything = (small + _units(block, hidden, n_out)) * itemsize + block + block * hidden
    fits = everything <= SHARED_BYTES
    return slices, fits, everything if fits else small * itemsize + block


@cuda.jit
def sgd_epoch(indptr, indices, values, gptr, grow, esam, evals, bgrp, gram, ws, wsm, book, labels, masks,
              use_masks, scale, w1, b1, w2, b2, use_bias, lr, activation, loss, result, warp, slices, in_shared):
    """Train one epoch in place; result <- (summed loss, correct count, first sample whose loss was not
    finite or -1). ``plan`` gives ``slices`` and ``in_shared``."""
    t, nt = cuda.threadIdx.x, cuda.blockDim.x
    lane, wid = t % warp, t // warp
    hidden, n_out = w2.shape
    blk = gram.shape[1]
    owners = (min(hidden, nt) + warp - 1) // warp  # warps that own hidden units
    one = w1.dtype.type(1.0)  # constants in the weights' type: a float literal would make float32 float64
    # shared: lr * Gram, slice sums, two per-warp output rows, b2 | per-unit state if it fits | labels, masks
    q0 = blk * (blk - 1) // 2
    ax0 = q0 + slices * n_out
    b20 = ax0 + 2 * owners * n_out
    small = b20 + n_out
    w2t0 = blk * hidden  # per-unit state: [forward products, then deltas | w2 transposed | h | deriv | b1]
    h0 = w2t0 + n_out * hidden
    b10 = h0 + 2 * hidden
    dyn = cuda.shared.array(0, w1.dtype)
    dyn8 = cuda.shared.array(0, int8)
    st = dyn[small:] if in_shared else ws
    lab0 = (small + b10 + hidden) * w1.itemsize if in_shared else small * w1.itemsize
    mk = dyn8[lab0 + blk:] if in_shared else wsm
    for j in range(t, hidden, nt):
        for k in range(n_out):
            st[w2t0 + k * hidden + j] = w2[j, k]
        st[b10 + j] = b1[j]
    if wid == 0:
        for k in range(lane, n_out, warp):
            dyn[b20 + k] = b2[k]
    total, correct, bad = 0.0, 0, -1
    for b in range(bgrp.shape[0] - 1):
        lo = b * blk
        nb = min(blk, labels.shape[0] - lo)
        _forward(t, nt, warp, lo, nb, b, indptr, indices, values, gram, labels, masks, use_masks, w1, lr, one, st,
                 dyn, mk, dyn8, lab0)
        cuda.syncthreads()
        for m in range(nb):
            _hidden(t, nt, m, hidden, use_masks, scale, use_bias, activation, one, st, dyn, mk, h0, b10)
            cuda.syncthreads()  # the slices read every unit's h
            _slices(t, nt, hidden, n_out, slices, use_bias, one, st, dyn, w2t0, h0, q0, b20)
            cuda.syncthreads()  # the outputs read every slice
            if wid < owners:
                ax = ax0 + 2 * wid * n_out
                _outputs(lane, warp, wid, m, n_out, slices, loss, dyn8[lab0 + m], lr, one, use_bias, dyn, book,
                         q0, ax, ax + n_out, b20)
                _backward(t, nt, m, hidden, n_out, use_masks, use_bias, lr, one, st, dyn, mk, w2t0, h0, b10, ax)
        cuda.syncthreads()  # the update reads every delta; the bookkeeping, warp 0's outputs
        if wid == 0:
            total, correct, bad = _book(lane, warp, lo, nb, n_out, loss, book, dyn8, lab0, total, correct, bad)
        _update(t, nt, warp, bgrp[b], bgrp[b + 1], gptr, grow, esam, evals, lr, one, w1, st)
        cuda.syncthreads()  # the next block's forward products read the updated rows
    for j in range(t, hidden, nt):
        for k in range(n_out):
            w2[j, k] = st[w2t0 + k * hidden + j]
        b1[j] = st[b10 + j]
    if wid == 0:
        for k in range(lane, n_out, warp):
            b2[k] = dyn[b20 + k]
    if t == 0:
        result[0] = total
        result[1] = correct
        result[2] = bad


class _SameMemory:
    """A host view of a ``__cuda_array_interface__`` exporter: what numba-cuda does with a CuPy array on a
    device (wrap its pointer, copy nothing), done for Numba's simulator, which passes such objects into the
    kernel untouched. Only the simulator needs it, where "device" memory is host memory."""

    def __init__(self, exporter) -> None:
        cai = exporter.__cuda_array_interface__
        self.__array_interface__ = {"version": 3, "shape": cai["shape"], "typestr": cai["typestr"],
                                    "data": cai["data"], "strides": cai.get("strides")}


def _as_kernel_arg(a):
    if config.ENABLE_CUDASIM and hasattr(a, "__cuda_array_interface__") and not isinstance(a, np.ndarray):
        return np.asarray(_SameMemory(a))
    return a


def launch(inputs, labels, masks, use_masks, scale, w1, b1, w2, b2, use_bias, lr, activation, loss, result,
           stream=0):
    """One block of THREADS threads on ``prepare``'s inputs, on device arrays (anything exporting
    ``__cuda_array_interface__``, as CuPy's do) or, in the simulator, host arrays."""
    hidden, n_out = w2.shape
    if hidden > MAX_HIDDEN or n_out > MAX_OUT:
        raise ValueError(f"the GPU loop holds at most {MAX_HIDDEN} hidden and {MAX_OUT} output units")
    inputs = Inputs(*inputs)
    ws, wsm, block = inputs.ws, inputs.wsm, inputs.gram.shape[1]
    if ws.dtype != w1.dtype or ws.shape[0] < _units(block, hidden, n_out) or wsm.shape[0] < block * hidden:
        raise ValueError("inputs prepared for another model: call prepare(x, hidden, n_out, dtype) again")
    if THREADS % WARP or not (WARP == 32 or config.ENABLE_CUDASIM):
        raise ValueError("THREADS must be whole warps of 32 lanes (fewer only in the simulator)")
    slices, in_shared, nbytes = plan(block, hidden, n_out, np.dtype(w1.dtype).itemsize, THREADS, WARP)
    if config.ENABLE_CUDASIM:
        _SIM.update(warp=WARP, barriers=[threading.Barrier(WARP, timeout=120) for _ in range(THREADS // WARP)])
    args = by_name(sgd_epoch, dict(**inputs._asdict(), labels=labels, masks=masks, use_masks=use_masks, scale=scale,
                                   w1=w1, b1=b1, w2=w2, b2=b2, use_bias=use_bias, lr=lr, activation=activation,
                                   loss=loss, result=result, warp=WARP, slices=slices, in_shared=in_shared))
    sgd_epoch[1, THREADS, stream, nbytes](*map(_as_kernel_arg, args))
