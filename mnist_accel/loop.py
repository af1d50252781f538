"""The tutorial's per-sample SGD: the plain NumPy reference, operation for operation, and the dropout
masks every loop backend consumes.

The tutorial's quirks are kept on purpose: the ReLU derivative is ``output >= 0`` taken after dropout
(so it is 1 everywhere), the squared-error gradient is ``y - out`` without the factor 2, and the
backward pass multiplies by the 0/1 mask without the forward pass's scale.
"""

from __future__ import annotations

import functools
import sys
from typing import Sequence

import numpy as np

from tqdm.auto import tqdm

from .backend import to_host
from .model import activate, activation_grad, layers, log_softmax


CHUNK = 1000  # samples between progress-bar updates of the reference loop
MASK_ROWS = 1024  # masks drawn per call: int64 draws stay in cache instead of a 48 MB temporary


def draw_masks(rng: np.random.Generator, n: int, hidden: int, dropout: float) -> np.ndarray | None:
    """One epoch of 0/1 masks, shape (n, hidden), int8; None without dropout.

    At p = 0.5 this is the tutorial's fair coin, ``rng.integers(0, 2)``, whose stream drawn in one call
    equals the tutorial's n per-sample calls; other rates keep a unit when ``rng.random() >= p``.
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
    """Fill ``out`` with exactly the bits ``rng.integers(0, 2, size=out.shape)`` draws, at 2.4x its speed
    (6M masks an epoch: 10 ms against 23 ms). NumPy draws each from one 32-bit half of a 64-bit PCG64
    output, low half first (Lemire's method, which for a range of 2 keeps the top bit), so the top bits
    of the raw outputs seen as uint32 are the draws. Returns False, drawing nothing, where that does not
    hold: another bit generator, a half-used output pending, an odd count, or a NumPy whose draws differ
    (checked once per process, on a generator of its own)."""
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
    """One epoch of per-sample SGD updating ``params`` in place; returns (summed loss, correct count,
    first sample whose loss was not finite or -1)."""
    (w1, b1), (w2, b2) = layers(params)
    lr = x.dtype.type(lr)
    total, correct, bad = 0.0, 0, -1
    for i in range(len(x)):
        layer_0 = x[i]
        z1 = np.dot(layer_0, w1)
        if b1 is not None:
            z1 = z1 + b1
        layer_1 = activate(z1, activation, np)
        deriv = None if activation == "relu" else activation_grad(layer_1, activation)
        if masks is not None:
            layer_1 *= masks[i] * scale
        layer_2 = np.dot(layer_1, w2)
        if b2 is not None:
            layer_2 = layer_2 + b2
        if loss == "mse":
            total += np.sum((y[i] - layer_2) ** 2)
            layer_2_delta = y[i] - layer_2
        else:
            log_p = log_softmax(layer_2, np)
            total += -np.sum(y[i] * log_p)
            layer_2_delta = y[i] - np.exp(log_p)
        correct += int(np.argmax(layer_2) == np.argmax(y[i]))
        if bad < 0 and not np.isfinite(total):
            bad = i
        if deriv is None:
            deriv = layer_1 >= 0  # the tutorial's relu2deriv, applied after dropout
        layer_1_delta = np.dot(w2, layer_2_delta) * deriv
        if masks is not None:
            layer_1_delta *= masks[i]
        w1 += lr * np.outer(layer_0, layer_1_delta)
        w2 += lr * np.outer(layer_1, layer_2_delta)
        if b1 is not None:
            b1 += lr * layer_1_delta
            b2 += lr * layer_2_delta
    return float(total), correct, bad


class LoopTrainer:
    """Per-sample SGD over a fixed training set: the NumPy reference, the Numba CPU kernel, or the GPU kernel.

    Every engine consumes the same masks from the same generator, so all train the same model.
    """

    def __init__(self, params: list[np.ndarray], x: np.ndarray, labels: np.ndarray, rng: np.random.Generator,
                 lr: float, activation: str, loss: str, dropout: float, engine: str, xp=np) -> None:
        self.x, self.rng, self.xp = x, rng, xp
        self.labels = labels.astype(np.int64)
        self.lr, self.activation, self.loss, self.dropout, self.engine = lr, activation, loss, dropout, engine
        self.scale = keep_scale(dropout, x.dtype)
        self.hidden = params[0].shape[1]
        self.n_seen = len(x)  # samples trained per epoch
        self.params = [xp.asarray(p) for p in params]
        self.compile_seconds = 0.0
        self.progress = False  # a progress bar for the slow NumPy reference (set by callers on a terminal)
        if engine == "numpy":
            self._y = (self.labels[:, None] == np.arange(params[-1].shape[-1])).astype(x.dtype)
            return
        from .kernels import ACTIVATION_CODES, LOSS_CODES, loop_cpu, loop_layout

        self._codes = (ACTIVATION_CODES[activation], LOSS_CODES[loss])
        layout = loop_layout.prepare
        if engine == "cuda":
            from .kernels import loop_cuda

            layout = functools.partial(loop_cuda.prepare, hidden=self.hidden, n_out=params[-1].shape[-1],
                                       dtype=params[0].dtype)
            self._result = xp.zeros(3, np.float64)  # (summed loss, correct, first bad sample), read per epoch
            self._kernel = lambda inputs, *rest: loop_cuda.launch(inputs, *rest, self._result)
        else:
            self._kernel = lambda inputs, *rest: loop_cpu.sgd_epoch(*inputs, *rest)
        self._prepare = lambda rows: tuple(xp.asarray(a) for a in layout(rows))
        self._inputs = self._prepare(x)
        self._labels = xp.asarray(self.labels)
        self.compile_seconds = self._warm_up()

    def _run(self, inputs, labels, masks, params):
        bias = len(params) == 4
        w1, w2 = params[0], params[2 if bias else 1]
        b1 = params[1] if bias else self.xp.zeros(w1.shape[1], w1.dtype)
        b2 = params[3] if bias else self.xp.zeros(w2.shape[1], w2.dtype)
        use_masks = masks is not None
        masks = self.xp.asarray(masks if use_masks else np.zeros((1, w1.shape[1]), np.int8))
        dt = np.dtype(w1.dtype).type
        return self._kernel(inputs, labels, masks, use_masks, self.scale, w1, b1, w2, b2, bias, dt(self.lr),
                            *self._codes)

    def _warm_up(self) -> float:
        """Compile (or load from Numba's cache) on a two-sample copy, so epoch times exclude it."""
        import time

        start = time.perf_counter()
        masks = None if self.dropout == 0 else np.ones((2, self.hidden), np.int8)
        self._run(self._prepare(self.x[:2]), self._labels[:2], masks, [p.copy() for p in self.params])
        return time.perf_counter() - start

    def train_epoch(self):
        """One epoch; returns (summed loss, correct count), on the device for the GPU engine, and sets
        ``first_bad`` to the first sample whose loss was not finite (-1 if none)."""
        masks = draw_masks(self.rng, len(self.x), self.hidden, self.dropout)
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

    def export_state(self) -> tuple[list[np.ndarray], dict]:
        """Everything a resumed run needs: parameters and the generator that draws the masks."""
        return [np.array(to_host(p)) for p in self.params], {"rng": self.rng.bit_generator.state}

    def import_state(self, arrays: list[np.ndarray], meta: dict) -> None:
        for p, a in zip(self.params, arrays):
            p[...] = self.xp.asarray(a)
        self.rng.bit_generator.state = meta["rng"]
