"""The vectorized trainer's forward and backward pass over one batch, through the backend's ops, into
activation and gradient buffers allocated once per batch size and reused every step (no allocation and no
host sync inside a step): ``VectorizedTrainer.gradients``.
"""

from __future__ import annotations

from typing import Any

from mnist_accel import rng as crng
from mnist_accel.config import TrainConfig
from mnist_accel.model import layers


class Buffers:
    """Activations and gradients for one batch size, reused every step."""

    def __init__(self, ops: Any, n: int, params: list, dtype: Any) -> None:
        weights = [w for w, _ in layers(params)]
        self.z = [ops.empty((n, w.shape[1]), dtype) for w in weights]  # pre- then post-activation
        self.delta = [ops.empty((n, w.shape[1]), dtype) for w in weights]
        self.grads = [ops.empty(p.shape, p.dtype) for p in params]


class BatchPass:
    """Forward and backward on rows of the trainer's ``inputs`` (``n_rows`` of them) against its ``labels``,
    with ``params`` updated in place by the caller between calls (the (W, b) pairs are taken once)."""

    def __init__(self, cfg: TrainConfig, ops: Any, xp: Any, params: list, inputs: Any, labels: Any,
                 n_rows: int, dtype: Any) -> None:
        self.cfg, self.ops, self.xp, self.params, self.dtype = cfg, ops, xp, params, dtype
        self.inputs, self.labels, self.n_rows = inputs, labels, n_rows
        self.net = list(layers(params))  # params change in place, so the (W, b) pairs never go stale
        self.keep = 1.0 - cfg.dropout
        self._buffers: dict[int, Buffers] = {}

    def buffers(self, n: int) -> Buffers:
        if n not in self._buffers:
            self._buffers[n] = Buffers(self.ops, n, self.params, self.dtype)
        return self._buffers[n]

    def __call__(self, batch: Any, keys: Any) -> tuple[Any, Any, list]:
        """Forward and backward on the samples at indices ``batch`` (None: every row in order), dropout
        keys from ``keys`` (None: no dropout): (summed loss, correct count, mean gradients in params'
        order: buffers, overwritten by the next call for as many samples); no host sync."""
        xp, ops, cfg = self.xp, self.ops, self.cfg
        buf = self.buffers(self.n_rows if batch is None else len(batch))
        labels = self.labels if batch is None else self.labels[batch]
        net = self.net
        masks, h = [], None
        for i, (w, b) in enumerate(net):
            if i == 0:
                ops.input_matmul(self.inputs, batch, w, buf.z[0])
            else:
                xp.matmul(h, w, out=buf.z[i])
            if i == len(net) - 1:
                if b is not None:
                    buf.z[i] += b
                loss, hits = ops.loss_grad(buf.z[i], labels, buf.delta[i], cfg.loss)
            else:
                mask = None if not cfg.dropout or keys is None else \
                    crng.dropout_mask(keys[i], buf.z[i].shape, cfg.dropout, self.dtype, xp)
                masks.append(mask)
                ops.bias_act(buf.z[i], b, cfg.activation, mask)
                h = buf.z[i]
        g = len(buf.grads)
        for i in range(len(net) - 1, -1, -1):
            w, b = net[i]
            if b is not None:
                g -= 1
                ops.bias_grad(buf.delta[i], buf.grads[g])
            g -= 1
            if i == 0:
                ops.input_grad(self.inputs, batch, buf.delta[0], buf.grads[g])
            else:
                xp.matmul(buf.z[i - 1].T, buf.delta[i], out=buf.grads[g])
                xp.matmul(buf.delta[i], w.T, out=buf.delta[i - 1])
                ops.act_backward(buf.delta[i - 1], buf.z[i - 1], cfg.activation, masks[i - 1], 1.0 / self.keep)
        return loss, hits, buf.grads
