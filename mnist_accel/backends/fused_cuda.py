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

I32, I64, U32 = np.int32, np.int64, np.uint32  # the C parameters' exact widths (CuPy passes a Python int as int64)


class CudaStep:
    def __init__(self, xp: Any, module: Any, cfg: TrainConfig, params: Sequence[Any], state: Sequence[Sequence[Any]],
                 buffers: StepBuffers, pixels: bool) -> None:
        self.xp, self.module, self.cfg, self.buf = xp, module, cfg, buffers
        self.dtype = np.dtype(cfg.dtype)
        index = {id(p): i for i, p in enumerate(params)}
        slots = lambda p: [*state[index[id(p)]], None, None][:2] if p is not None else [None, None]  # noqa: E731
        self.layers = [(w, b, slots(w), slots(b)) for w, b in layers(params)]
        dt = self.dtype.type
        p = cfg.dropout
        self.drop = (U32(crng.threshold(p) if p else 0), dt(1 / (1 - p)), I32(p > 0))
        self.keys = (buffers.keys, I32(buffers.keys.shape[1]))
        kinds = step_cuda.INPUT_KINDS
        self.first_input = (None, buffers.inputs, I32(kinds["pixels"])) if pixels else \
            (buffers.inputs, None, I32(kinds["features"]))
        self.dense_input = I32(kinds["dense"])
        self.update = (I32(OPTIMIZER_CODES[cfg.optimizer]),
                       *map(dt, step_cuda.update_constants(cfg.optimizer, cfg.momentum, cfg.beta1, cfg.beta2)),
                       dt(cfg.weight_decay))
        self._plans: dict[int, list] = {}

    def __call__(self, n: int) -> None:
        """Train on the next ``n`` samples of the epoch's order (a full batch, or the short last one)."""
        if n not in self._plans:
            self._plans[n] = self._plan(n)
        for kernel, (grid, block), args in self._plans[n]:
            kernel(grid, block, args)

    def _plan(self, n: int) -> list:
        """Each launch of a step on ``n`` rows: (kernel, shape, arguments), with its buffers allocated now."""
        xp, buf, cfg, dt = self.xp, self.buf, self.cfg, self.dtype
        h = [xp.empty((n, w.shape[1]), dt) for w, *_ in self.layers]  # activations; the last holds dz
        delta = [xp.empty((n, w.shape[1]), dt) for w, *_ in self.layers[:-1]] + [h[-1]]
        row_loss, row_hit = xp.empty(n, np.float64), xp.empty(n, np.int32)
        batch = (buf.order, buf.k, I32(cfg.batch_size))
        act = I32(ACTIVATION_CODES[cfg.activation])
        plan = []
        for name, i in step_cuda.launch_order(len(self.layers)):
            fn = self.module.get_function(step_cuda.kernel_name(name, dt))
            if name == "finish_step":
                args = (row_loss, row_hit, I32(n), buf.k, buf.step_loss, buf.loss_sum, buf.hits)
                plan.append((fn, step_cuda.finish_step_shape(), args))
                continue
            w, b, w_slots, b_slots = self.layers[i]
            f, m = w.shape
            shape = (I32(n), I32(f), I32(m))
            x = self.first_input if i == 0 else (h[i - 1], None, self.dense_input)
            if name == "dense_forward":
                args = (*x, *batch, w, b, I32(b is not None), h[i], *shape, act, *self.keys, I32(i), *self.drop)
                launch = step_cuda.dense_forward_shape(n, m)
            elif name == "output_loss":
                args = (h[i - 1], w, b, I32(b is not None), buf.labels, *batch, *shape, I32(LOSS_CODES[cfg.loss]),
                        h[i], row_loss, row_hit, delta[i - 1], act, *self.keys, I32(i - 1), *self.drop)
                launch = step_cuda.output_loss_shape(n)
            elif name == "dense_backward":
                args = (delta[i], w, h[i - 1], delta[i - 1], *shape, act, buf.k, *self.keys, I32(i - 1), *self.drop)
                launch = step_cuda.dense_backward_shape(n, f)
            else:
                args = (*x, *batch, delta[i], *shape, w, *w_slots, b, *b_slots, I32(b is not None), buf.sched,
                        *self.update)
                launch = step_cuda.grad_update_shape(f, m)
            plan.append((fn, launch, args))
        return plan
