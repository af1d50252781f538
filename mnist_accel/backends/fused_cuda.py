"""``CudaStep``: one whole training step on the GPU as the fused kernels of ``mnist_accel.kernels.cuda.step_cuda``
(3H + 2 launches for H hidden layers, no cuBLAS), so that CuPy can capture it as a CUDA graph.

Every argument of every launch is fixed for the run (device buffers, shapes, codes, constants) and built
once per batch size; what changes from step to step (the step counter, the epoch's order, the schedule
table, the dropout keys) is read by the kernels from device memory. ``CudaOps.fused_step`` builds one
where ``step_cuda.use_fused`` says these kernels beat cuBLAS.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_accel import rng as crng
from mnist_accel.backends.xp_ops import StepBuffers
from mnist_accel.config import TrainConfig
from mnist_accel.kernels import ACTIVATION_CODES, LOSS_CODES, OPTIMIZER_CODES
from mnist_accel.kernels.cuda import step_cuda
from mnist_accel.model import layers


class CudaStep:
    def __init__(self, xp: Any, module: Any, cfg: TrainConfig, params: Sequence[Any], state: Sequence[Sequence[Any]],
                 buffers: StepBuffers, pixels: bool) -> None:
        self.xp, self.module, self.cfg, self.buf = xp, module, cfg, buffers
        self.dtype = np.dtype(cfg.dtype)
        index = {id(p): i for i, p in enumerate(params)}
        slots = lambda p: [*state[index[id(p)]], None, None][:2] if p is not None else [None, None]  # noqa: E731
        self.layers = [(w, b, slots(w), slots(b)) for w, b in layers(params)]
        p = cfg.dropout  # a hidden layer's activation and dropout mask, as each kernel that forms one takes them
        self.hidden = dict(act=ACTIVATION_CODES[cfg.activation], keys=buffers.keys, n_keys=buffers.keys.shape[1],
                           threshold=crng.threshold(p) if p else 0, scale=1 / (1 - p), use_dropout=p > 0)
        kinds = step_cuda.INPUT_KINDS
        self.first_input = dict(x=None, pixels=buffers.inputs, x_kind=kinds["pixels"]) if pixels else \
            dict(x=buffers.inputs, pixels=None, x_kind=kinds["features"])
        self.dense_input = kinds["dense"]
        beta1, beta1c, beta2, beta2c = step_cuda.update_constants(cfg.optimizer, cfg.momentum, cfg.beta1, cfg.beta2)
        self.update = dict(opt=OPTIMIZER_CODES[cfg.optimizer], beta1=beta1, beta1c=beta1c, beta2=beta2, beta2c=beta2c,
                           wd=cfg.weight_decay)
        # class labels (int32, one a row) or float targets (a row of outputs each), as output_loss takes them
        self.targets = dict(labels=buffers.labels, targets=None) if buffers.labels.ndim == 1 else \
            dict(labels=None, targets=buffers.labels)
        self._plans: dict[int, list] = {}

    def __call__(self, n: int) -> None:
        """Train on the next ``n`` samples of the epoch's order (a full batch, or the short last one)."""
        if n not in self._plans:
            self._plans[n] = self._plan(n)
        for kernel, (grid, block), args in self._plans[n]:
            kernel(grid, block, args)

    def _plan(self, n: int) -> list:
        """Each launch of a step on ``n`` rows: (kernel, shape, arguments), with its buffers allocated now. The
        arguments are given by the names of ``step_cuda.PARAMS``, which orders and converts them."""
        xp, buf, cfg, dt = self.xp, self.buf, self.cfg, self.dtype
        h = [xp.empty((n, w.shape[1]), dt) for w, *_ in self.layers]  # activations; the last holds dz
        delta = [xp.empty((n, w.shape[1]), dt) for w, *_ in self.layers[:-1]] + [h[-1]]
        row_loss, row_hit = xp.empty(n, np.float64), xp.empty(n, np.int32)
        batch = dict(order=buf.order, k=buf.k, bs=cfg.batch_size)
        plan = []
        for name, i in step_cuda.launch_order(len(self.layers)):
            if name == "finish_step":
                args = dict(row_loss=row_loss, row_hit=row_hit, n=n, k=buf.k, step_loss=buf.step_loss,
                            loss_sum=buf.loss_sum, hits=buf.hits)
                launch = step_cuda.finish_step_shape()
            else:
                w, b, (w_s1, w_s2), (b_s1, b_s2) = self.layers[i]
                f, m = w.shape
                rows = dict(n=n, f=f, m=m)
                x = self.first_input if i == 0 else dict(x=h[i - 1], pixels=None, x_kind=self.dense_input)
                if name == "dense_forward":
                    args = dict(**x, **batch, W=w, b=b, use_bias=b is not None, y=h[i], **rows, layer=i, **self.hidden)
                    launch = step_cuda.dense_forward_shape(n, m)
                elif name == "output_loss":
                    args = dict(h=h[i - 1], W=w, b=b, use_bias=b is not None, **self.targets, **batch, **rows,
                                loss=LOSS_CODES[cfg.loss], dz=h[i], row_loss=row_loss, row_hit=row_hit,
                                delta=delta[i - 1], layer=i - 1, **self.hidden)
                    launch = step_cuda.output_loss_shape(n)
                elif name == "dense_backward":
                    args = dict(delta=delta[i], W=w, h_prev=h[i - 1], delta_prev=delta[i - 1], **rows, k=buf.k,
                                layer=i - 1, **self.hidden)
                    launch = step_cuda.dense_backward_shape(n, f)
                else:
                    args = dict(**x, **batch, d=delta[i], **rows, W=w, W_s1=w_s1, W_s2=w_s2, b=b, b_s1=b_s1,
                                b_s2=b_s2, use_bias=b is not None, sched=buf.sched, **self.update)
                    launch = step_cuda.grad_update_shape(f, m)
            fn = self.module.get_function(step_cuda.kernel_name(name, dt))
            plan.append((fn, launch, step_cuda.arguments(name, dt, **args)))
        return plan
