"""``NumbaOps``: the ops of ``XpOps`` on NumPy, with the elementwise work and the optimizer update in the
fused Numba kernels of ``mnist_accel.kernels.cpu.vectorized_cpu``, and the first layer's GEMMs compacted to
the columns each batch lights (``mnist_accel.kernels.cpu.inputs_cpu``) and, where ``gemm_policy``'s rule says,
run by our own register-blocked kernel over every core (``gemm_cpu``), or, when every step trains on the
whole set in order, run over the images as a sparse matrix built once (``whole_step``).
"""

from __future__ import annotations

import time
from collections.abc import Sequence

import numpy as np

from mnist_accel import optim
from mnist_accel.backends import gemm_policy
from mnist_accel.backends.sparse_rows import is_sparse
from mnist_accel.backends.whole_step import SparseInputs, WholeStep, fusable, worth_it
from mnist_accel.backends.xp_ops import XpOps
from mnist_accel.config import TrainConfig
from mnist_accel.kernels import ACTIVATION_CODES, LABEL_LOSSES
from mnist_accel.kernels.cpu import gemm_cpu, inputs_cpu
from mnist_accel.kernels.cpu.simd import host_aligned_zeros
from mnist_accel.kernels.cpu.vectorized_cpu import (
    ONE_ROW,
    act_backward,
    adam,
    bias_act,
    column_sums,
    momentum,
    mse_grad,
    sgd,
    sklearn_momentum,
    xent,
)

LATER_SHARE = 0.5  # BLAS keeps its threads beside gemm_cpu when the later layers hold this share of W1's weights


class NumbaOps(XpOps):
    """``XpOps`` on NumPy with the elementwise work and the update fused into the kernels above, and the
    first layer's GEMMs compacted to the columns each batch lights (``inputs_cpu``)."""

    def __init__(self) -> None:
        super().__init__(np)
        self._lit_grad: tuple | None = None  # (gradient buffer, gradient of its lit rows, their indices)
        self._plan: tuple | None = None  # update's arguments, for the (params, grads, state, cfg) it last saw
        self._gemm = None  # gemm_cpu.gemm_parallel where it runs (gemm_policy's rule), else BLAS does the GEMMs
        self._threads, self._later = 1, 0.0  # gemm_cpu's threads; the later layers' weights over W1's
        self._first_width = 2  # the first layer's outputs (fused_step sees the network): warm_up's layer
        self._fused, self._whole = False, False  # the step is WholeStep's; every step is the whole set in order
        self._labels_like = np.zeros(2, np.int32)  # labels of the type the trainer passes (fused_step sees them)

    def prepare_inputs(self, inputs: np.ndarray, dtype, whole: bool = False, threads: int = 1) -> np.ndarray:
        """As ``XpOps``; for the whole set in order, sparse pixels (or features, such as pixels / 255) become a
        sparse matrix instead of a dense scaled copy (a fifth of the bytes and multiply-adds on MNIST)."""
        self._sparse = SparseInputs(inputs, dtype, threads) if whole and not is_sparse(inputs) and \
            worth_it(inputs) else None
        inputs = super().prepare_inputs(inputs, dtype, whole=whole and self._sparse is None)
        self._divisor = self.dtype.type(255 if self._pixels else 1)
        self._like, self._whole = inputs[:2], whole  # two rows of exactly the run's type, for warm_up
        return inputs

    def warm_up(self, cfg: TrainConfig) -> float:
        """Compile (or load from Numba's cache) the kernels this run calls, and no others: those of one
        step on two rows of the prepared inputs, a layer as wide as the run's first (the width decides
        between gemm_cpu and BLAS), the run's labels, activation, loss and optimizer, and arrays of the
        types the trainer passes (Numba compiles once per type signature, so the first epoch compiles
        nothing). A fused step (``WholeStep``) needs only its kernel and the update. Returns the seconds."""
        start = time.perf_counter()
        self._gemm = gemm_cpu.gemm_parallel if gemm_policy.runs_here() else None
        if self._fused:
            WholeStep.warm_up(self, cfg)
        else:
            self._warm_step(cfg)
        self._x.clear()
        self._lit_grad = self._plan = None  # nothing of the warm-up's arrays outlives it
        return time.perf_counter() - start

    def _warm_step(self, cfg: TrainConfig) -> None:
        """The ops of ``VectorizedTrainer.train_step`` on two rows (its later layers' products are BLAS's)."""
        dt, width = np.dtype(cfg.dtype), self._first_width
        like = getattr(self, "_like", np.zeros((2, 20), np.uint8 if self._pixels else dt))
        z = self.empty((2, width), dt)
        mask = np.ones((2, width), dt) if cfg.dropout else None
        self.bias_act(z, np.zeros(width, dt) if cfg.bias else None, cfg.activation, mask)
        self.act_backward(z.copy(), z, cfg.activation, mask, 1.0)
        labels = self._labels_like
        scores = np.zeros((2, labels.shape[1] if labels.ndim == 2 else 2), dt)
        self.loss_grad(scores, labels, scores.copy(), cfg.loss)
        params = [np.zeros((like.shape[1], width), dt)] + ([np.zeros(width, dt)] if cfg.bias else [])
        grads = [np.zeros_like(p) for p in params]
        if cfg.bias:
            self.bias_grad(z, grads[1])
        if self._sparse is not None:  # the whole set in order, as a sparse matrix
            tiny = SparseInputs(np.eye(2, like.shape[1], dtype=np.uint8), dt, 1)
            tiny.matmul(params[0], z)
            tiny.grad(z, grads[0])
        elif not self._whole:  # batches (a whole dense set is BLAS's)
            self.input_matmul(like, np.arange(2), params[0], z)  # lights under 90% of MNIST's pixels: compacted
            self.input_grad(like, np.arange(2), z, grads[0])
        self.update(params, grads, optim.init_state(params, cfg.optimizer, np), cfg, np.zeros(3, dt))

    def fused_step(self, cfg: TrainConfig, params, state, buffers):
        """For the whole set in order as a sparse matrix and a narrow network without dropout: the step as
        one pass over the images (``WholeStep``); else None, and the trainer composes the ops. (Also where
        the ops first see the network, so it notes how much of a step is left to BLAS: ``blas_threads``.)"""
        weights = [p for p in params if p.ndim == 2]
        self._later = sum(w.size for w in weights[1:]) / max(1, weights[0].size)
        self._first_width = weights[0].shape[1]  # the first layer's (the output layer's, with no hidden one)
        if buffers is not None:  # a step's labels are rows of these, copied (or these): C-contiguous, writable
            self._labels_like = np.zeros((2, *buffers.labels.shape[1:]), buffers.labels.dtype)
        self._fused = False
        if self._sparse is None or not fusable(cfg, params) or cfg.loss not in LABEL_LOSSES or \
                buffers.labels.ndim != 1:  # whole_cpu computes the label losses only
            return None
        self._fused = True
        return WholeStep(self, self._sparse, cfg, params, state, buffers)

    def empty(self, shape, dtype) -> np.ndarray:
        """A work buffer starting on a 64-byte boundary: gemm_cpu's vector loads and stores then never
        straddle two cache lines (a misaligned buffer makes every other vector access touch two)."""
        return host_aligned_zeros(int(np.prod(shape)), dtype).reshape(shape)

    def blas_threads(self, threads: int) -> int:
        """BLAS threads for an epoch (called on the training thread as it starts, which also sets Numba's
        threads there for gemm_cpu): one while the sparse products or gemm_cpu run on the ops' own threads,
        since OpenBLAS's idle workers spin between calls and take the cores from ours, unless the later
        layers, left to BLAS, hold at least half as many weights as the first (then BLAS's threads repay
        their spinning). A whole dense set's products are BLAS's, on every thread."""
        if self._gemm is not None:
            self._threads = gemm_policy.use(threads)
            if self._later < LATER_SHARE and not (self._whole and self._sparse is None):
                return 1
        return 1 if self._sparse is not None else threads

    def bias_act(self, z: np.ndarray, b: np.ndarray | None, activation: str, mask: np.ndarray | None) -> None:
        if activation in ("tanh", "sigmoid"):
            # NumPy's tanh and exp are SIMD loops; Numba calls the C library once per element (no SVML here)
            super().bias_act(z, b, activation, mask)
            return
        bias_act(ACTIVATION_CODES[activation], b is not None, mask is not None)(z, z[0] if b is None else b,
                                                                             z if mask is None else mask)

    def act_backward(self, delta: np.ndarray, h: np.ndarray, activation: str, mask: np.ndarray | None,
                     inv_scale: float) -> None:
        act_backward(ACTIVATION_CODES[activation], mask is not None)(delta, h, delta if mask is None else mask,
                                                                     h.dtype.type(inv_scale))

    def loss_grad(self, z: np.ndarray, labels: np.ndarray, grad: np.ndarray, loss: str) -> tuple[float, int]:
        if labels.ndim == 2 or loss not in LABEL_LOSSES:  # float targets: XpOps' formulas
            return super().loss_grad(z, labels, grad, loss)
        if loss == "mse":
            return mse_grad(z, labels, grad)
        xent(z, labels, grad, False)
        np.exp(grad, out=grad)  # NumPy's SIMD exp: see xent
        return xent(z, labels, grad, True)

    def input_matmul(self, inputs: np.ndarray, batch: np.ndarray, w: np.ndarray, out: np.ndarray) -> None:
        """out <- x[batch] @ w, over only the batch's lit columns when they are few enough to pay; ``batch``
        None: the whole set in order, from the sparse matrix or the scaled copy made once. A scipy.sparse set's
        batch is gathered by ``sparse_rows``: multiplied sparse by XpOps, or densified and compacted here."""
        if is_sparse(inputs):
            rows = self._sparse_batches.gather(inputs, batch)
            if is_sparse(rows):  # few nonzeros, or the whole set: sparse products (XpOps)
                super().input_matmul(rows, None, w, out)
                return
            inputs, batch = rows, np.arange(len(rows))  # a dense batch: the compacted path below
        if batch is None:
            if self._sparse is not None:
                self._last_x = (None, None, None)  # input_grad reads the sparse matrix
                self._sparse.matmul(w, out)
            else:
                self._last_x = (inputs, None, None)
                np.matmul(inputs, w, out=out)
            return
        n, f = len(batch), inputs.shape[1]
        if n not in self._x:
            self._x[n] = (self.empty((n, f), self.dtype), np.empty(f, np.int64), self.empty(n * f, self.dtype),
                          self.empty(w.size, self.dtype), self.empty(w.size, self.dtype), np.empty(f, np.bool_))
        x, active, xc, wc, gc, scratch = self._x[n]
        below = inputs_cpu.COMPACT_BELOW * f
        lit = inputs_cpu.gather(inputs, batch, self._divisor, x, active, scratch, w, xc, wc, below)
        if lit < below:  # compacted by the gather
            x, w, rows = xc[:n * lit].reshape(n, lit), wc[:lit * w.shape[1]].reshape(lit, w.shape[1]), active[:lit]
        else:
            rows = None
        self._last_x = (x, rows, gc)
        self._matmul(x, False, w, out)

    def input_grad(self, inputs: np.ndarray, batch: np.ndarray, delta: np.ndarray, out: np.ndarray) -> None:
        """out <- x.T @ delta for the last ``input_matmul``'s batch; when that was compacted, only the lit
        rows are computed, and ``update`` reads them in place of ``out`` (the other rows are zero)."""
        if self._last_x is self._sparse_batches:
            self._lit_grad = None
            super().input_grad(inputs, batch, delta, out)
            return
        x, rows, gc = self._last_x
        if rows is None:
            self._lit_grad = None
            if x is None:
                self._sparse.grad(delta, out)
            elif batch is None:  # the whole dense set: BLAS's, as its forward product (gemm_cpu is for batches)
                np.matmul(x.T, delta, out=out)
            else:
                self._matmul(x, True, delta, out)
        else:
            gc = gc[:len(rows) * out.shape[1]].reshape(len(rows), out.shape[1])
            self._matmul(x, True, delta, gc)
            self._lit_grad = (out, gc, rows)

    def _matmul(self, a: np.ndarray, transpose_a: bool, b: np.ndarray, out: np.ndarray) -> None:
        """out <- op(a) @ b for the first layer: by gemm_cpu when it runs here and out is at least one
        vector wide, else by BLAS."""
        if self._gemm is not None and out.shape[1] * out.itemsize >= gemm_cpu.LINE and b.flags.c_contiguous:
            self._gemm(a, transpose_a, b, out, self._threads)
        else:
            np.matmul(a.T if transpose_a else a, b, out=out)

    def bias_grad(self, delta: np.ndarray, out: np.ndarray) -> None:
        column_sums(delta, out)

    def update(self, params: Sequence[np.ndarray], grads: Sequence[np.ndarray], state: list[list[np.ndarray]],
               cfg: TrainConfig, scalars: np.ndarray) -> None:
        lr, step, eps = scalars[0], scalars[1], scalars[2]
        plan = self._plan
        if plan is None or any(a is not b for a, b in zip(plan, (params, grads, state, cfg))):
            arguments = [self._arguments(*a, cfg) for a in zip(params, grads, state)]
            plan = self._plan = (params, grads, state, cfg, arguments)
        for g, full, rows_args, constants in plan[4]:
            lit = self._lit_grad
            arrays = full if lit is None or g is not lit[0] else (rows_args[0], lit[1], lit[2], *rows_args[1:])
            if cfg.optimizer == "adam":
                adam(*arrays, step, eps, *constants)
            elif cfg.optimizer == "momentum":
                momentum(*arrays, lr, *constants)
            elif cfg.optimizer in ("nesterov", "classical-momentum"):
                sklearn_momentum(*arrays, lr, *constants)
            else:
                sgd(*arrays, lr, *constants)

    @staticmethod
    def _arguments(p: np.ndarray, g: np.ndarray, slots: list[np.ndarray], cfg: TrainConfig) -> tuple:
        """What ``update`` passes for one parameter, built once per (params, grads, state, cfg): the full
        gradient as one long row, the 2-D arrays for a gradient of lit rows, and the typed constants."""
        dt = p.dtype.type
        wd = dt(optim.decay_for(p, cfg.weight_decay))
        mu = (dt(cfg.momentum), wd)
        constants = {"adam": (dt(cfg.beta1), dt(cfg.beta2), wd), "momentum": mu, "nesterov": (*mu, True),
                     "classical-momentum": (*mu, False)}.get(cfg.optimizer, (wd,))
        full = (p.reshape(1, -1), g.reshape(1, -1), ONE_ROW, *(s.reshape(1, -1) for s in slots))
        return g, full, (p, *slots), constants
