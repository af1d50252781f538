"""Full-batch steps on the CPU (every step trains on the whole training set in order): the images as a
sparse matrix built once (``kernels.cpu.sparse_cpu``), its two products with the first layer's weights and
deltas (``SparseInputs``), and, for narrow networks, the whole step as one pass over the images
(``WholeStep``, ``kernels.cpu.whole_cpu``); both split over threads by rows.

Per step nothing is gathered or rescaled: the pixel values were scaled to the dtype when the matrix was
built. Every array the kernels walk by vector lines is allocated here starting on a cache line. The
threads are Python threads running the kernels without the GIL; each writes its own rows and its own
copy of the weight gradients, summed at the end (no shared writes). The sums' order depends on the
number of threads, so results are deterministic for a given ``--threads`` (and core count).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np

from mnist_accel import optim
from mnist_accel.backends.xp_ops import StepBuffers
from mnist_accel.kernels import ACTIVATION_CODES, LOSS_CODES
from mnist_accel.kernels.cpu import sparse_cpu, whole_cpu
from mnist_accel.kernels.cpu.simd import LINE, host_aligned_zeros
from mnist_accel.model import init_params, layers

SPARSE_BELOW = 0.5  # use the sparse products when under this share of pixels is nonzero (MNIST: 0.19)
# The products walk the first layer's weights (forward) or a thread's gradient (backward) in chunks of columns
# of at most this many bytes, which stay in a core's L2 cache while every row passes: the rows' pixels pick
# rows of the weights at random, so a whole 784 x 256 float64 layer, larger than L2, is read from L3 at every pixel.
CHUNK_BYTES = 400 * 1024
FUSED_WIDTH = 64  # WholeStep for layers up to this wide; wider ones are worth BLAS's GEMMs
_POOL: ThreadPoolExecutor | None = None  # shared by every trainer: threads cost nothing while idle


def _pool() -> ThreadPoolExecutor:
    global _POOL
    if _POOL is None:
        _POOL = ThreadPoolExecutor(max_workers=os.cpu_count() or 1, thread_name_prefix="mnist_accel-sparse")
    return _POOL


def _zeros(n: int, dtype) -> np.ndarray:
    """``n`` zeros starting on a cache line: a vector line of a misaligned row straddles two cache lines,
    which makes every load and store of it a split access."""
    return host_aligned_zeros(n, dtype)


def worth_it(pixels: np.ndarray) -> bool:
    """Whether ``pixels`` (uint8 pixels or features, one row per sample) are sparse enough for the sparse
    products."""
    return pixels.size > 0 and np.count_nonzero(pixels) < SPARSE_BELOW * pixels.size


class SparseInputs:
    """The training images (uint8 pixels, scaled here, or features) as compressed rows, and ``matmul``/``grad``
    for the first layer."""

    def __init__(self, pixels: np.ndarray, dtype, threads: int) -> None:
        self.dtype = np.dtype(dtype)
        self.starts, self.columns, self.values = sparse_cpu.csr(pixels, self.dtype)
        self.n, self.features = pixels.shape
        self.lanes = LINE // self.dtype.itemsize
        parts = max(1, min(threads, self.n))
        # equal shares of nonzeros, which is where the time goes, rather than of rows
        cuts = np.searchsorted(self.starts, np.linspace(0, self.starts[-1], parts + 1)[1:-1])
        self.bounds = [int(b) for b in (0, *cuts, self.n)]
        self._line = np.zeros((parts, self.lanes), self.dtype)  # per-thread scratch for a partial line
        self._width, self._padded, self._part = 0, {}, _zeros(0, self.dtype)

    def _buffers(self, m: int) -> None:
        """Weights and gradients padded to whole vector lines, and per-thread scratch, for width ``m``."""
        self._width = width = -(-m // self.lanes) * self.lanes
        if width not in self._padded:
            parts = len(self.bounds) - 1
            self._padded[width] = (_zeros(self.features * width, self.dtype).reshape(self.features, width),
                                   _zeros(parts * self.features * width, self.dtype).reshape(parts, self.features,
                                                                                             width))
        self._wp, self._gp = self._padded[width]

    def chunks(self, m: int) -> list[tuple[int, int]]:
        """The column ranges of an ``m``-wide product that the kernels take one at a time (``CHUNK_BYTES``)."""
        row = self.features * self.dtype.itemsize
        cols = max(self.lanes, CHUNK_BYTES // row // self.lanes * self.lanes)
        return [(c, min(c + cols, m)) for c in range(0, m, cols)]

    def _contiguous(self, rows: int, cols: int) -> np.ndarray:
        """A C-contiguous (rows, cols) scratch array for one chunk of an output or of the deltas."""
        if self._part.size < rows * cols:
            self._part = _zeros(rows * cols, self.dtype)
        return self._part[:rows * cols].reshape(rows, cols)

    def run(self, kernel, args) -> list:
        """``kernel(*args(t), line, lo, hi)`` for each thread t's rows (the calling thread takes the last);
        their results in thread order."""
        spans = list(zip(self.bounds[:-1], self.bounds[1:]))
        futures = [_pool().submit(kernel, *args(t), self._line[t], lo, hi) for t, (lo, hi) in enumerate(spans[:-1])]
        last = len(spans) - 1
        mine = kernel(*args(last), self._line[last], *spans[last])
        return [f.result() for f in futures] + [mine]

    def matmul(self, w: np.ndarray, out: np.ndarray) -> None:
        """out <- x @ w (``out`` C-contiguous), a chunk of w's columns at a time, each written into place."""
        for c0, c1 in self.chunks(w.shape[1]):
            self._matmul(w[:, c0:c1], out, c0)

    def grad(self, delta: np.ndarray, out: np.ndarray) -> None:
        """out <- x.T @ delta (``delta`` C-contiguous), a chunk of delta's columns at a time."""
        chunks = self.chunks(delta.shape[1])
        if len(chunks) == 1:
            self._grad(delta, out)
            return
        for c0, c1 in chunks:
            part = self._contiguous(len(delta), c1 - c0)
            part[...] = delta[:, c0:c1]
            self._grad(part, out[:, c0:c1])

    def _matmul(self, w: np.ndarray, out: np.ndarray, c0: int = 0) -> None:
        """out[:, c0:c0 + m] <- x @ w, w m columns wide."""
        m = w.shape[1]
        self._buffers(m)
        self._wp[:, :m] = w
        flat = self._wp.reshape(-1)
        self.run(sparse_cpu.forward, lambda t: (self.starts, self.columns, self.values, flat, self._width, out, c0, m))

    def _grad(self, delta: np.ndarray, out: np.ndarray) -> None:
        m = delta.shape[1]
        self._buffers(m)
        gp = self._gp.reshape(len(self._gp), -1)
        self.run(sparse_cpu.backward, lambda t: (self.starts, self.columns, self.values, delta, gp[t], self._width))
        np.sum(self._gp[:, :, :m], axis=0, out=out)


def fusable(cfg, params) -> bool:
    """Whether ``WholeStep`` can run this configuration: no dropout, a hidden layer, every layer at most
    FUSED_WIDTH wide."""
    net = list(layers(params))
    return not cfg.dropout and len(net) > 1 and all(w.shape[1] <= FUSED_WIDTH for w, _ in net)


class WholeStep:
    """A whole-set step (``XpOps.fused_step``'s contract): ``kernels.cpu.whole_cpu.step_rows`` on each thread's
    rows, their gradients summed, the optimizer update, and the step's loss, hits and counter written to
    the step buffers. The kernel reads padded copies of the weights, refreshed every step (a few KB)."""

    def __init__(self, ops, sparse: SparseInputs, cfg, params, state, buffers) -> None:
        self.ops, self.sparse, self.cfg, self.params, self.state, self.buf = ops, sparse, cfg, params, state, buffers
        self.net = list(layers(params))
        dt, lanes = sparse.dtype, sparse.lanes
        self.sizes = np.array([self.net[0][0].shape[0], *(w.shape[1] for w, _ in self.net)], np.int64)
        self.widths = -(-self.sizes[1:] // lanes) * lanes
        pad = lambda rows, width: _zeros(rows * width, dt)  # noqa: E731
        # every layer's arrays in a tuple (the kernel's docstring says why not a typed list); fusable asks
        # for a hidden layer, so none is empty
        self.weights = tuple(pad(w.shape[0], width) for (w, _), width in zip(self.net, self.widths))
        self.transposed = tuple(pad(w.shape[1], width) for (w, _), width in zip(self.net[1:], self.widths))
        self.biases = tuple(pad(1, width) for width in self.widths)
        self.use_bias = self.net[0][1] is not None
        self.threads = []
        block = whole_cpu.block_rows(int(self.widths.max()) * dt.itemsize)
        for _ in range(len(sparse.bounds) - 1):  # each thread's block buffers and gradient sums
            acts = [pad(block, width) for width in self.widths]
            deltas = [pad(block, width) for width in self.widths[:-1]]
            grads = [pad(n, width) for n, width in zip(self.sizes[1:-2], self.widths[1:-1])]
            grads.append(pad(self.sizes[-1], self.widths[-2]))  # the output layer's, transposed
            self.threads.append((tuple(acts), tuple(deltas), pad(self.sizes[0], self.widths[0]), tuple(grads),
                                 tuple(pad(1, width) for width in self.widths)))
        self.grads = [np.zeros_like(p) for p in params]  # in params' order, what the update reads
        self.codes = (ACTIVATION_CODES[cfg.activation], LOSS_CODES[cfg.loss])

    @staticmethod
    def warm_up(ops, cfg) -> None:
        """Compile (or load from Numba's cache) the kernel and the update on a tiny net of ``cfg``'s kind and
        depth (the kernel takes a tuple per layer, whose type counts the layers)."""
        sparse = SparseInputs(np.eye(2, 20, dtype=np.uint8), cfg.dtype, 1)
        sizes = [20, *[3] * len(cfg.hidden), 2]
        params = init_params(np.random.default_rng(0), sizes, "xavier", cfg.bias, sparse.dtype)
        zero = np.zeros((), np.float64)
        buffers = StepBuffers(None, np.zeros(2, np.int32), None, np.zeros((), np.int64),
                              np.zeros((1, 3), sparse.dtype), None, np.zeros(1), zero, zero.copy())
        WholeStep(ops, sparse, cfg, params, optim.init_state(params, cfg.optimizer, np), buffers)(2)

    def _views(self, flat: np.ndarray, layer: int) -> np.ndarray:
        """A layer's padded flat array as (rows, outputs)."""
        return flat.reshape(-1, self.widths[layer])[:, :self.sizes[layer + 1]]

    def __call__(self, n: int) -> None:
        buf = self.buf
        total, hits = self._pass(n)
        k = int(buf.k)
        self.ops.update(self.params, self.grads, self.state, self.cfg, buf.sched[k])
        buf.step_loss[k] = total
        buf.loss_sum[...] += total
        buf.hits[...] += hits
        buf.k[...] = k + 1

    def gradients(self, n: int) -> tuple[float, list[np.ndarray]]:
        """The step without its update (``VectorizedTrainer.loss_and_grads``): (summed loss, mean gradients
        in params' order, overwritten by the next call) over the ``n`` rows."""
        return self._pass(n)[0], self.grads

    def _pass(self, n: int) -> tuple[float, float]:
        """Every thread's rows forward and back, their gradients summed into ``grads``: (loss, hits)."""
        sp, buf = self.sparse, self.buf
        for layer, (w, b) in enumerate(self.net):
            self._views(self.weights[layer], layer)[...] = w
            if layer:
                self._views(self.transposed[layer - 1], layer - 1)[...] = w.T
            if b is not None:
                self._views(self.biases[layer], layer)[...] = b
        act, loss = self.codes
        results = sp.run(whole_cpu.step_rows, lambda t: (
            sp.starts, sp.columns, sp.values, self.weights, self.transposed, self.biases, self.use_bias,
            self.widths, self.sizes, act, buf.labels, loss, 1.0 / n, *self.threads[t]))
        grads, last = iter(self.grads), len(self.net) - 1
        for layer, (_, b) in enumerate(self.net):
            parts = [t[2] if layer == 0 else t[3][layer - 1] for t in self.threads]
            views = [self._views(g, layer - 1).T if layer == last else self._views(g, layer) for g in parts]
            np.sum(views, axis=0, out=next(grads))
            if b is not None:
                np.sum([self._views(t[4][layer], layer)[0] for t in self.threads], axis=0, out=next(grads))
        return sum(r[0] for r in results), sum(r[1] for r in results)
