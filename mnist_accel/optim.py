"""Learning-rate schedules and the plain-``xp`` optimizer updates (SGD, momentum, Adam, Nesterov momentum, with
L2 decay).

Updates change parameters in place. Scalars such as the bias corrections are computed on the host
from the step counter, so a step never waits on the device.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from mnist_accel.config import TrainConfig


def lr_at(cfg: TrainConfig, step: int, total_steps: int) -> float:
    """Learning rate for optimizer step ``step`` (0-based) of ``total_steps``."""
    if cfg.schedule == "cosine":
        return cfg.lr * 0.5 * (1.0 + math.cos(math.pi * step / max(total_steps, 1)))
    if cfg.schedule == "step":  # a tenth at half-way, a hundredth at three quarters
        frac = step / max(total_steps, 1)
        return cfg.lr * (0.01 if frac >= 0.75 else 0.1 if frac >= 0.5 else 1.0)
    if cfg.schedule == "drop":  # lr, then lr_drop_to from step lr_drop_at on (the write-ups' ``if i > 75``)
        low = cfg.lr_drop_to if cfg.lr_drop_to is not None else cfg.lr * 0.1
        return low if cfg.lr_drop_at is not None and step >= cfg.lr_drop_at else cfg.lr
    return cfg.lr


# state arrays per parameter: -, velocity, (m, v), velocity, velocity
SLOTS = {"sgd": 0, "momentum": 1, "adam": 2, "nesterov": 1, "classical-momentum": 1}


def init_state(params: Sequence[Any], optimizer: str, xp: Any) -> list[list[Any]]:
    """Per-parameter slots: [] for SGD, [velocity] for the momentum optimizers, [m, v] for Adam."""
    return [[xp.zeros_like(p) for _ in range(SLOTS[optimizer])] for p in params]


def decay_for(param: Any, weight_decay: float) -> float:
    """L2 decay applies to weights (2-D), not biases."""
    return weight_decay if param.ndim == 2 else 0.0


def adam_scalars(cfg: TrainConfig, t: int, lr: float) -> tuple[float, float]:
    """(step, eps) with Adam's bias corrections folded in, for update number ``t`` (1-based).

    PyTorch's p -= lr/c1 * m / (sqrt(v)/sqrt(c2) + eps) equals p -= step * m / (sqrt(v) + eps')
    with step = lr*sqrt(c2)/c1 and eps' = eps*sqrt(c2): two scalars, no per-element division by c2.
    Keras (``adam_form='keras'``, as scikit-learn) adds eps to sqrt(v) itself: eps' = eps. The two differ
    where sqrt(v) is near eps, so reproducing a Keras run needs Keras's form.
    """
    c1, c2 = 1.0 - cfg.beta1 ** t, 1.0 - cfg.beta2 ** t
    return lr * math.sqrt(c2) / c1, cfg.eps if cfg.adam_form == "keras" else cfg.eps * math.sqrt(c2)


def step_scalars(cfg: TrainConfig, t: int, lr: float) -> tuple[float, float, float]:
    """(lr, step size, eps) for update number ``t`` (1-based) at rate ``lr``: the three numbers an update
    reads. Trainers keep a table of them on the device, so a captured step needs no host arguments."""
    if cfg.optimizer == "adam":
        return (lr, *adam_scalars(cfg, t, lr))
    return lr, lr, 0.0


def update(params: Sequence[Any], grads: Sequence[Any], state: list[list[Any]], cfg: TrainConfig,
           scalars: Any, xp: Any) -> None:
    """One optimizer step over every parameter, in place (the reference for the fused kernels).

    momentum is heavy-ball's as PyTorch writes it (velocity = mu * velocity + g; p -= lr * velocity); nesterov
    and classical-momentum are scikit-learn's SGDOptimizer with nesterov True and False (velocity = mu *
    velocity - lr * g; then p += mu * velocity - lr * g, or p += velocity), whose velocity carries the rates
    it was formed at, so a rate changed between steps (``lr_factor``) acts as scikit-learn's does. All add
    the decay to g first.

    ``scalars`` holds (lr, step size, eps) from ``step_scalars``, in the parameters' dtype; on a GPU it
    is device memory, read without a sync.
    """
    lr, step, eps = scalars[0], scalars[1], scalars[2]
    for p, g, slots in zip(params, grads, state):
        wd = decay_for(p, cfg.weight_decay)
        if wd:
            g = g + wd * p
        if cfg.optimizer == "sgd":
            p -= lr * g
        elif cfg.optimizer == "momentum":
            (vel,) = slots
            vel *= cfg.momentum
            vel += g
            p -= lr * vel
        elif cfg.optimizer in ("nesterov", "classical-momentum"):
            (vel,) = slots
            step_g = lr * g
            vel *= cfg.momentum
            vel -= step_g
            p += cfg.momentum * vel - step_g if cfg.optimizer == "nesterov" else vel
        else:
            m, v = slots
            m *= cfg.beta1
            m += (1 - cfg.beta1) * g
            v *= cfg.beta2
            v += (1 - cfg.beta2) * (g * g)
            p -= step * m / (xp.sqrt(v) + eps)
