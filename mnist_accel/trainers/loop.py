"""The tutorial's per-sample SGD at any depth: the plain NumPy reference, operation for operation, and the
dropout masks every loop backend consumes.

The tutorial's quirks are kept on purpose: the ReLU derivative is ``output >= 0`` taken after dropout
(so it is 1 everywhere), the squared-error gradient is ``y - out`` without the factor 2, and the
backward pass multiplies by the 0/1 mask without the forward pass's scale.
"""

from __future__ import annotations

import contextlib
import functools
import sys
from collections.abc import Sequence

import numpy as np
from tqdm.auto import tqdm

from mnist_accel.backends.selection import loop_on_gpu_reason, to_host
from mnist_accel.errors import BackendUnavailable
from mnist_accel.model import activate, activation_grad, layers, log_softmax

CHUNK = 1000  # samples between progress-bar updates of the reference loop
MASK_ROWS = 1024  # masks drawn per call: int64 draws stay in cache instead of a 48 MB temporary


def draw_masks(rng: np.random.Generator, n: int, hidden: int, dropout: float) -> np.ndarray | None:
    """One epoch of 0/1 masks, shape (n, hidden), int8; None without dropout.

    At p = 0.5 this is the tutorial's fair coin, ``rng.integers(0, 2)``, whose stream drawn in one call
    equals the tutorial's n per-sample calls; other rates keep a unit when ``rng.random() >= p``. With
    several hidden layers ``hidden`` is their widths' sum and a row holds each layer's masks in turn: the
    draws of a per-sample loop that flips each hidden layer's coins in layer order (one layer: the tutorial's).
    """
    if dropout == 0:
        return None
    masks = np.empty((n, hidden), np.int8)
    for start in range(0, n, MASK_ROWS):  # consecutive calls continue one stream: same masks as one call
        piece = masks[start:start + MASK_ROWS]
        if dropout != 0.5:
            piece[...] = rng.random(piece.shape) >= dropout
        elif not _fast_coins(rng, piece):
            piece[...] = rng.integers(0, 2, size=piece.shape)
    return masks


def _fast_coins(rng: np.random.Generator, out: np.ndarray) -> bool:
    """Fill ``out`` with exactly the bits ``rng.integers(0, 2, size=out.shape)`` draws, faster than it (one
    vector operation over the raw outputs instead of a bounded draw each). NumPy draws each from one 32-bit
    half of a 64-bit PCG64 output, low half first (Lemire's method, which for a range of 2 keeps the top
    bit), so the top bits of the raw outputs seen as uint32 are the draws. Returns False, drawing nothing,
    where that does not hold: another bit generator, a half-used output pending, an odd count, or a NumPy
    whose draws differ (checked once per process, on a generator of its own)."""
    bits = rng.bit_generator
    if (not isinstance(bits, np.random.PCG64) or out.size % 2 or sys.byteorder != "little"
            or bits.state["has_uint32"] or not _coins_match_numpy()):
        return False
    _coin_bits(bits, out.reshape(-1))  # a view: pieces are whole rows of a C-ordered array
    return True


def _coin_bits(bits: np.random.PCG64, out: np.ndarray) -> None:
    np.right_shift(bits.random_raw(out.size // 2).view(np.uint32), 31, out=out, casting="unsafe")


@functools.cache
def _coins_match_numpy() -> bool:
    fast, reference = np.random.default_rng(12345), np.random.default_rng(12345)
    out = np.empty(1000, np.int8)
    _coin_bits(fast.bit_generator, out)
    return bool(np.array_equal(out, reference.integers(0, 2, size=1000))
                and np.array_equal(fast.integers(0, 2, size=3), reference.integers(0, 2, size=3)))


def keep_scale(dropout: float, dtype: np.dtype) -> np.floating:
    return np.dtype(dtype).type(1.0 / (1.0 - dropout))


def epoch_reference(params: Sequence[np.ndarray], x: np.ndarray, y: np.ndarray, masks: np.ndarray | None,
                    lr: float, activation: str, loss: str, scale: np.floating) -> tuple[float, int, int]:
    """One epoch of per-sample SGD updating ``params`` in place, at any depth; returns (summed loss, correct
    count, first sample whose loss was not finite or -1). ``masks`` holds every hidden layer's masks side by
    side (``draw_masks`` with the hidden widths' sum).

    With one hidden layer this is the tutorial's loop; deeper, each hidden layer repeats the first's steps and
    each delta is sent down through the weights before any is updated, as the deep-sgd write-up does."""
    stack = list(layers(params))
    lr = x.dtype.type(lr)
    total, correct, bad = 0.0, 0, -1
    for i in range(len(x)):
        acts, derivs, kept = [x[i]], [], []  # each layer's input, and each hidden layer's derivative and mask
        col = 0
        for w, b in stack[:-1]:
            z = np.dot(acts[-1], w)
            if b is not None:
                z = z + b
            layer = activate(z, activation, np)
            deriv = None if activation == "relu" else activation_grad(layer, activation)
            if masks is not None:
                kept.append(masks[i, col:col + w.shape[1]])
                layer *= kept[-1] * scale
            acts.append(layer)
            derivs.append(layer >= 0 if deriv is None else deriv)  # the tutorial's relu2deriv, after dropout
            col += w.shape[1]
        w, b = stack[-1]
        out = np.dot(acts[-1], w)
        if b is not None:
            out = out + b
        if loss == "mse":
            total += np.sum((y[i] - out) ** 2)
            delta = y[i] - out
        elif loss == "softmax-mse":  # deep-sgd's: 2 (s - y) / 10 * s (1 - s), negated as the tutorial's deltas are
            exps = np.exp(out - out.max())
            s = exps / np.sum(exps)
            total += np.sum((y[i] - s) ** 2) / len(s)
            delta = 2 * (y[i] - s) / len(s) * (s * (1 - s))
        else:
            log_p = log_softmax(out, np)
            total += -np.sum(y[i] * log_p)
            delta = y[i] - np.exp(log_p)
        correct += int(np.argmax(out) == np.argmax(y[i]))
        if bad < 0 and not np.isfinite(total):
            bad = i
        deltas = [delta]
        for l in range(len(stack) - 1, 0, -1):  # down through the weights as they were for this sample
            delta = np.dot(stack[l][0], delta) * derivs[l - 1]
            if masks is not None:
                delta *= kept[l - 1]
            deltas.insert(0, delta)
        for (w, _), a, d in zip(stack, acts, deltas):
            w += lr * np.outer(a, d)
        for (_, b), d in zip(stack, deltas):
            if b is not None:
                b += lr * d
    return float(total), correct, bad


class LoopTrainer:
    """Per-sample SGD over a fixed training set: the NumPy reference, the Numba CPU kernel, or the GPU kernel.

    Every engine consumes the same masks from the same generator, so all train the same model. One hidden
    layer runs on the tutorial's kernels (``loop_cpu``, ``loop_cuda``); more on their deep forms
    (``loop_cpu_deep``, ``loop_cuda_deep``), which take the layers after the first flattened.
    """

    def __init__(self, params: list[np.ndarray], x: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 lr: float, activation: str, loss: str, dropout: float, engine: str, xp=np) -> None:
        self.x, self.rng, self.xp = x, rng, xp
        self.labels = labels.astype(np.int64)
        self.lr, self.activation, self.loss, self.dropout, self.engine = lr, activation, loss, dropout, engine
        self.scale = keep_scale(dropout, x.dtype)
        self.widths = [w.shape[1] for w, _ in layers(params)]  # hidden layers, then the outputs
        self.hidden = sum(self.widths[:-1])  # mask columns a sample draws: every hidden unit
        self.n_seen = len(x)  # samples trained per epoch
        self.params = [xp.asarray(p) for p in params]
        self.compile_seconds = 0.0
        self.progress = False  # a progress bar for the slow NumPy reference (set by callers on a terminal)
        if engine == "numpy":
            self._y = (self.labels[:, None] == np.arange(self.widths[-1])).astype(x.dtype)
            return
        from mnist_accel.kernels import ACTIVATION_CODES, LOOP_LOSS_CODES, loop_layout

        self._codes = (ACTIVATION_CODES[activation], LOOP_LOSS_CODES[loss])
        deep = len(self.widths) > 2
        layout = loop_layout.prepare
        if engine == "cuda":
            _check_loop_on_gpu()
            from mnist_accel.kernels.cuda import loop_cuda, loop_cuda_deep

            gpu = loop_cuda_deep if deep else loop_cuda
            size = dict(widths=self.widths) if deep else dict(hidden=self.hidden, n_out=self.widths[-1])
            layout = functools.partial(gpu.prepare, dtype=params[0].dtype, **size)
            self._result = xp.zeros(3, np.float64)  # (summed loss, correct, first bad sample), read per epoch
            self._kernel = lambda inputs, *rest: gpu.launch(inputs, *rest, self._result)
        else:
            from mnist_accel.kernels.cpu import loop_cpu, loop_cpu_deep

            cpu = loop_cpu_deep if deep else loop_cpu
            self._kernel = lambda inputs, *rest: cpu.sgd_epoch(*inputs, *rest)
        self._prepare = lambda rows: tuple(xp.asarray(a) for a in layout(rows))
        self._labels = xp.asarray(self.labels)
        self.compile_seconds = self._warm_up()  # first: it also compiles the layout's kernel, on two rows
        self._inputs = self._prepare(x)

    def _run(self, inputs, labels, masks, params):
        xp, stack = self.xp, list(layers(params))
        bias = stack[0][1] is not None
        (w1, b1), rest = stack[0], stack[1:]
        dt = np.dtype(w1.dtype).type
        use_masks = masks is not None
        masks = xp.asarray(masks if use_masks else np.zeros((1, self.hidden), np.int8))
        zeros = lambda n: xp.zeros(n, w1.dtype)  # noqa: E731 - stands in for absent biases
        if len(rest) == 1:
            (w2, b2), = rest
            return self._kernel(inputs, labels, masks, use_masks, self.scale, w1, b1 if bias else zeros(w1.shape[1]),
                                w2, b2 if bias else zeros(w2.shape[1]), bias, dt(self.lr), *self._codes)
        # the deep kernels take the later layers flat: weights (fan-in, fan-out) one after another, then biases
        cuts = np.cumsum([0] + [w.size for w, _ in rest]), np.cumsum([0] + self.widths[1:])
        wd, bd = xp.empty(int(cuts[0][-1]), w1.dtype), zeros(int(cuts[1][-1]))
        for (w, b), a, z, c, y in zip(rest, cuts[0], cuts[0][1:], cuts[1], cuts[1][1:]):
            wd[a:z] = w.reshape(-1)
            if bias:
                bd[c:y] = b
        out = self._kernel(inputs, labels, masks, use_masks, self.scale, w1, b1 if bias else zeros(w1.shape[1]),
                           wd, bd, np.array(self.widths, np.int64), bias, dt(self.lr), *self._codes)  # widths: host
        for (w, b), a, z, c, y in zip(rest, cuts[0], cuts[0][1:], cuts[1], cuts[1][1:]):
            w[...] = wd[a:z].reshape(w.shape)
            if bias:
                b[...] = bd[c:y]
        return out

    def _warm_up(self) -> float:
        """Compile (or load from Numba's cache) the layout's and the epoch's kernels on a two-sample copy, so
        that compile_seconds holds every compilation the run does and epoch times none."""
        import time

        start = time.perf_counter()
        masks = None if self.dropout == 0 else np.ones((2, self.hidden), np.int8)
        self._run(self._prepare(self.x[:2]), self._labels[:2], masks, [p.copy() for p in self.params])
        return time.perf_counter() - start

    def train_epoch(self):
        """One epoch; returns (summed loss, correct count), on the device for the GPU engine, and sets
        ``first_bad`` to the first sample whose loss was not finite (-1 if none)."""
        masks = draw_masks(self.rng, len(self.x), self.hidden, self.dropout)  # every layer's, side by side
        if self.engine == "numpy":
            out = self._reference_epoch(masks)
        elif self.engine == "cuda":
            self._run(self._inputs, self._labels, masks, self.params)
            out = (self._result[0], self._result[1], self._result[2])
        else:
            out = self._run(self._inputs, self._labels, masks, self.params)
        self.first_bad = out[2]
        return out[0], out[1]

    def _reference_epoch(self, masks: np.ndarray | None) -> tuple[float, int, int]:
        """The NumPy reference in chunks of consecutive samples (sequential SGD over consecutive chunks is
        the same computation), so a slow epoch can show a progress bar."""
        total, correct, bad = 0.0, 0, -1
        with tqdm(total=len(self.x), disable=not self.progress, leave=False, unit="sample") as bar:
            for start in range(0, len(self.x), CHUNK):
                part = slice(start, start + CHUNK)
                t, c, b = epoch_reference(self.params, self.x[part], self._y[part],
                                          None if masks is None else masks[part], self.lr, self.activation,
                                          self.loss, self.scale)
                total, correct = total + t, correct + c
                bad = start + b if bad < 0 and b >= 0 else bad
                bar.update(len(self.x[part]))
        return total, correct, bad

    step_name = "sample"  # what first_bad counts, for messages
    val = None  # the loop path holds no validation split

    def scoring(self):
        """Evaluation needs nothing set up around it: the loop runs on one thread."""
        return contextlib.nullcontext()

    def export_state(self) -> tuple[list[np.ndarray], dict]:
        """Everything a resumed run needs: parameters and the generator that draws the masks."""
        return [np.array(to_host(p)) for p in self.params], {"rng": self.rng.bit_generator.state}

    def import_state(self, arrays: list[np.ndarray], meta: dict) -> None:
        for p, a in zip(self.params, arrays):
            p[...] = self.xp.asarray(a)
        self.rng.bit_generator.state = meta["rng"]


def _check_loop_on_gpu() -> None:
    """numba-cuda compiles the GPU loop with NVVM (not needed in Numba's CPU simulator of CUDA)."""
    from numba import config

    reason = None if config.ENABLE_CUDASIM else loop_on_gpu_reason()
    if reason is not None:
        raise BackendUnavailable(f"--path loop on --backend cuda cannot run: {reason}")
