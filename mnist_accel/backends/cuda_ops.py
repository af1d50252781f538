"""``CudaOps``: the ops of ``XpOps`` on CuPy, with the elementwise work and the optimizer update in the
fused CUDA C kernels of ``mnist_accel.kernels.cuda.vectorized_cuda`` (compiled once by NVRTC).

CuPy reaches this module only as the ``xp`` the backend passes in; nothing here imports it.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from typing import Any

import numpy as np

from mnist_accel import optim
from mnist_accel.backends.fused_cuda import CudaStep
from mnist_accel.backends.xp_ops import StepBuffers, XpOps
from mnist_accel.config import TrainConfig
from mnist_accel.kernels import ACTIVATION_CODES, LABEL_LOSSES
from mnist_accel.kernels.cuda import step_cuda, vectorized_cuda
from mnist_accel.model import layers

BLOCK = vectorized_cuda.BLOCK


class CudaOps(XpOps):
    def __init__(self, xp: Any) -> None:
        super().__init__(xp)
        self._module = xp.RawModule(code=vectorized_cuda.source(), options=vectorized_cuda.NVRTC_OPTIONS,
                                    name_expressions=vectorized_cuda.name_expressions())
        self._rows: dict[int, tuple[Any, Any]] = {}
        self._step_module: Any = None  # step_cuda's kernels, compiled when a run first uses them

    def warm_up(self, cfg: TrainConfig) -> float:
        """Compile (NVRTC, cached by CuPy on disk) every kernel for the run's dtype, outside epoch times."""
        start = time.perf_counter()
        for name in vectorized_cuda.KERNELS:
            self._kernel(name, np.dtype(cfg.dtype))
        return time.perf_counter() - start

    def fused_step(self, cfg: TrainConfig, params: Sequence[Any], state: Sequence[Sequence[Any]],
                   buffers: StepBuffers) -> CudaStep | None:
        """The step as the fused kernels of ``step_cuda`` (no cuBLAS, so it can be captured) where
        ``step_cuda.use_fused`` says they win; else None, and the step runs on cuBLAS and the kernels above."""
        sizes = [params[0].shape[0], *(w.shape[1] for w, _ in layers(params))]
        if not step_cuda.use_fused(cfg.batch_size, sizes, cfg.dtype) or \
                (cfg.loss in LABEL_LOSSES) != (buffers.labels.ndim == 1):  # labels for label losses, else targets
            return None
        if self._step_module is None:
            self._step_module = self.xp.RawModule(code=step_cuda.source(), options=step_cuda.NVRTC_OPTIONS,
                                                  name_expressions=step_cuda.name_expressions())
        return CudaStep(self.xp, self._step_module, cfg, params, state, buffers, self._pixels)

    def _kernel(self, name: str, dtype: Any):
        return self._module.get_function(f"{name}<{'float' if np.dtype(dtype) == np.float32 else 'double'}>")

    def _launch(self, name: str, dtype: Any, threads: int, /, **args: Any) -> None:
        """``threads`` threads of ``name``, its arguments given by the names of ``vectorized_cuda.PARAMS``."""
        grid = ((threads + BLOCK - 1) // BLOCK,)
        self._kernel(name, dtype)(grid, (BLOCK,), vectorized_cuda.arguments(name, dtype, **args))

    def bias_act(self, z: Any, b: Any | None, activation: str, mask: Any | None) -> None:
        rows, cols = z.shape
        self._launch("bias_act", z.dtype, z.size, z=z, b=z if b is None else b, use_bias=b is not None,
                     mask=z if mask is None else mask, use_mask=mask is not None, rows=rows, cols=cols,
                     act=ACTIVATION_CODES[activation])

    def act_backward(self, delta: Any, h: Any, activation: str, mask: Any | None, inv_scale: float) -> None:
        self._launch("act_backward", delta.dtype, delta.size, delta=delta, h=h, mask=delta if mask is None else mask,
                     use_mask=mask is not None, n=delta.size, act=ACTIVATION_CODES[activation], inv_scale=inv_scale)

    def loss_grad(self, z: Any, labels: Any, grad: Any, loss: str) -> tuple[Any, Any]:
        """The label losses by the fused kernel; float targets and the other losses by XpOps' CuPy formulas."""
        if labels.ndim == 2 or loss not in LABEL_LOSSES:
            return super().loss_grad(z, labels, grad, loss)
        rows, k = z.shape
        if rows not in self._rows:
            self._rows[rows] = (self.xp.empty(rows, np.float64), self.xp.empty(rows, np.int32))
        row_loss, row_hit = self._rows[rows]
        self._launch("loss_grad", z.dtype, rows, z=z, labels=labels, grad=grad, row_loss=row_loss, row_hit=row_hit,
                     rows=rows, k=k, mse=loss == "mse")
        return row_loss.sum(), row_hit.sum()

    def update(self, params: Sequence[Any], grads: Sequence[Any], state: list[list[Any]], cfg: TrainConfig,
               scalars: Any) -> None:
        for p, g, slots in zip(params, grads, state):
            common = dict(p=p, g=g, n=p.size, s=scalars, wd=optim.decay_for(p, cfg.weight_decay))
            if cfg.optimizer == "adam":
                m, v = slots
                self._launch("adam", p.dtype, p.size, **common, m=m, v=v, beta1=cfg.beta1, beta1c=1 - cfg.beta1,
                             beta2=cfg.beta2, beta2c=1 - cfg.beta2)
            elif cfg.optimizer == "momentum":
                vel, = slots
                self._launch("momentum", p.dtype, p.size, **common, vel=vel, mu=cfg.momentum)
            elif cfg.optimizer in ("nesterov", "classical-momentum"):
                vel, = slots
                self._launch("sklearn_momentum", p.dtype, p.size, **common, vel=vel, mu=cfg.momentum,
                             lookahead=cfg.optimizer == "nesterov")
            else:
                self._launch("sgd", p.dtype, p.size, **common)
