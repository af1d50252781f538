"""The benchmarked workloads: each builds fresh state, then one call trains one epoch.

Every row of a group trains the same model on the same images with the same optimizer, so the
timings compare implementations and nothing else. ``flops`` gives each workload's arithmetic per
sample, for the floor at the machine's measured peak.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mnist_accel import model
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve
from mnist_accel.data.mnist import MnistData, normalize, one_hot
from mnist_accel.presets import TUTORIAL_SEED

LOOP_SIZES = (784, 100, 10)  # the tutorial's model
VEC_SIZES = (784, 256, 10)
VEC_BATCH = 128


def flops_per_sample(sizes: tuple[int, ...]) -> int:
    """Multiply-adds x 2: forward, weight gradients, and deltas for every layer but the input's."""
    pairs = list(zip(sizes[:-1], sizes[1:]))
    forward = sum(2 * a * b for a, b in pairs)
    return 2 * forward + sum(2 * a * b for a, b in pairs[1:])


@dataclass
class Run:
    """A prepared epoch: ``step()`` trains it; ``accuracy()`` scores the result on the test set."""

    step: Callable[[], Any]
    accuracy: Callable[[], float]
    device: str


def _test_accuracy(params, data: MnistData, activation: str = "relu") -> float:
    x = normalize(data.test_images, np.float64)
    y = one_hot(data.test_labels, np.float64)
    _, correct = model.evaluate([np.asarray(to_host(p), np.float64) for p in params], x, y, activation, "mse", np)
    return int(correct) / len(x)


def loop_run(backend: str, data: MnistData, n: int, dtype: str = "float64") -> Run:
    from mnist_accel.trainers.loop import LoopTrainer

    be = get_backend(backend)
    rng = np.random.default_rng(TUTORIAL_SEED)
    params = model.init_params(rng, LOOP_SIZES, "tutorial", False, np.dtype(dtype))
    x = normalize(data.train_images[:n], np.dtype(dtype))
    trainer = LoopTrainer(params, x, data.train_labels[:n], rng, 0.005, "relu", "mse", 0.5, be.name, be.xp)

    def step():
        return float(to_host(trainer.train_epoch()[0]))  # synchronises the GPU inside the timed call

    return Run(step, lambda: _test_accuracy(trainer.params, data), be.device)


def vectorized_run(backend: str, data: MnistData, n: int, hidden: int = VEC_SIZES[1], batch: int = VEC_BATCH,
                   graphs: bool = True) -> Run:
    from mnist_accel.trainers.vectorized import VectorizedTrainer

    be = get_backend(backend)
    cfg = resolve(backend=backend, hidden=(hidden,), batch_size=batch, lr=1e-3, schedule="constant",
                  epochs=1, init="he", graphs=graphs)
    rng = np.random.default_rng(0)
    params = model.init_params(rng, (784, hidden, 10), cfg.init, True, np.float32)
    trainer = VectorizedTrainer(cfg, be, params, rng, data.train_images[:n], data.train_labels[:n])

    def step():
        loss, _ = trainer.train_epoch()
        return float(to_host(loss))  # synchronises the device inside the timed call

    return Run(step, lambda: _test_accuracy(trainer.params, data), be.device)


def torch_run(device: str, data: MnistData, n: int, graphs: bool = False, hidden: int = VEC_SIZES[1],
              batch: int = VEC_BATCH) -> Run:
    import torch

    if device == "cpu":
        torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(0)
    dev = torch.device(device)
    x = torch.from_numpy(normalize(data.train_images[:n], np.float32)).to(dev)
    y = torch.from_numpy(data.train_labels[:n].astype(np.int64)).to(dev)
    net = torch.nn.Sequential(torch.nn.Linear(784, hidden), torch.nn.ReLU(), torch.nn.Linear(hidden, 10)).to(dev)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3)
    loss_fn = torch.nn.CrossEntropyLoss()

    def train_step(xb, yb):
        opt.zero_grad(set_to_none=True)
        loss = loss_fn(net(xb), yb)
        loss.backward()
        opt.step()
        return loss.detach()

    fn = torch.compile(train_step, mode="reduce-overhead") if graphs else train_step

    def step():
        perm = torch.randperm(n, device=dev)
        total = torch.zeros((), device=dev)
        # Graph replay needs fixed shapes, so the graphs row drops the last partial batch (96 of 60,000).
        stop = n - batch + 1 if graphs else n
        for s in range(0, stop, batch):
            idx = perm[s:s + batch]
            total += fn(x[idx], y[idx])
        return float(total)

    def accuracy():
        with torch.no_grad():
            xt = torch.from_numpy(normalize(data.test_images, np.float32)).to(dev)
            pred = net(xt).argmax(1).cpu().numpy()
        return float((pred == data.test_labels).mean())

    return Run(step, accuracy, torch.cuda.get_device_name() if device == "cuda" else f"CPU, torch {torch.__version__}")


def sklearn_run(data: MnistData, n: int) -> Run:
    from sklearn.neural_network import MLPClassifier

    x = normalize(data.train_images[:n], np.float32)
    clf = MLPClassifier(hidden_layer_sizes=(256,), batch_size=VEC_BATCH, max_iter=1, random_state=0,
                        learning_rate_init=1e-3)
    labels = data.train_labels[:n]

    def step():
        import warnings

        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # max_iter=1 always "fails to converge"
            clf.partial_fit(x, labels, classes=np.arange(10))

    def accuracy():
        return float(clf.score(normalize(data.test_images, np.float32), data.test_labels))

    return Run(step, accuracy, "CPU, scikit-learn")


def jax_run(data: MnistData, n: int) -> Run:
    """The same model in JAX: one jitted step (forward, backward, Adam) called per batch."""
    import jax
    import jax.numpy as jnp

    x = jnp.asarray(normalize(data.train_images[:n], np.float32))
    y = jnp.asarray(data.train_labels[:n].astype(np.int32))
    params = [jnp.asarray(p) for p in model.init_params(np.random.default_rng(0), VEC_SIZES, "he", True, np.float32)]
    state = {"m": [jnp.zeros_like(p) for p in params], "v": [jnp.zeros_like(p) for p in params], "t": 0}

    def loss_fn(ps, xb, yb):
        w1, b1, w2, b2 = ps
        logits = jnp.maximum(xb @ w1 + b1, 0) @ w2 + b2
        return -jnp.mean(jax.nn.log_softmax(logits)[jnp.arange(xb.shape[0]), yb])

    @jax.jit
    def step(ps, m, v, t, xb, yb):
        loss, grads = jax.value_and_grad(loss_fn)(ps, xb, yb)
        m = [0.9 * mi + 0.1 * g for mi, g in zip(m, grads)]
        v = [0.999 * vi + 0.001 * g * g for vi, g in zip(v, grads)]
        c1, c2 = 1 - 0.9 ** t, 1 - 0.999 ** t
        ps = [p - 1e-3 * (mi / c1) / (jnp.sqrt(vi / c2) + 1e-8) for p, mi, vi in zip(ps, m, v)]
        return ps, m, v, loss

    rng = np.random.default_rng(0)

    def run_epoch():
        nonlocal params
        perm = rng.permutation(n)
        total = 0.0
        for s in range(0, n, VEC_BATCH):
            idx = perm[s:s + VEC_BATCH]
            state["t"] += 1
            params, state["m"], state["v"], loss = step(params, state["m"], state["v"], float(state["t"]),
                                                        x[idx], y[idx])
            total = total + loss
        return float(total)  # waits for the device

    def accuracy():
        xt = jnp.asarray(normalize(data.test_images, np.float32))
        w1, b1, w2, b2 = params
        pred = np.asarray((jnp.maximum(xt @ w1 + b1, 0) @ w2 + b2).argmax(1))
        return float((pred == data.test_labels).mean())

    return Run(run_epoch, accuracy, f"{jax.devices()[0].platform}, jax {jax.__version__}")


def torch_speedrun(data: MnistData, seed: int = 0, n: int | None = None,
                   epochs: int | None = None) -> tuple[float, float]:
    """The speedrun preset's recipe in PyTorch on the CPU, as a PyTorch user would write it: the model, He
    initialisation (biases 0), Adam, per-step cosine decay to 0 (``CosineAnnealingLR``), batch size,
    epochs and precision all read from ``resolve("speedrun")``; batches reshuffled every epoch from
    tensors in memory. Returns (test accuracy, training seconds); building the model, converting the data
    and scoring the test set are not timed. ``n``/``epochs`` shrink it for ``--quick``."""
    import math
    import time

    import torch

    cfg = resolve("speedrun", seed=seed)
    n = n or len(data.train_images)
    epochs = epochs or cfg.epochs
    dtype = getattr(torch, cfg.dtype)
    torch.set_num_threads(os.cpu_count() or 1)
    torch.manual_seed(seed)
    x = torch.from_numpy(normalize(data.train_images[:n], np.dtype(cfg.dtype)))
    y = torch.from_numpy(data.train_labels[:n].astype(np.int64))
    sizes = (784, *cfg.hidden, 10)
    layers: list[torch.nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes[:-1], sizes[1:])):
        linear = torch.nn.Linear(a, b, dtype=dtype)
        torch.nn.init.kaiming_normal_(linear.weight, nonlinearity="relu")  # std sqrt(2 / fan_in): "he"
        torch.nn.init.zeros_(linear.bias)
        layers += [linear] + ([torch.nn.ReLU()] if i < len(sizes) - 2 else [])
    net = torch.nn.Sequential(*layers)
    opt = torch.optim.Adam(net.parameters(), lr=cfg.lr, betas=(cfg.beta1, cfg.beta2), eps=cfg.eps)
    batch = cfg.batch_size
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs * math.ceil(n / batch), eta_min=0.0)
    loss_fn = torch.nn.CrossEntropyLoss()
    seconds = 0.0
    for _ in range(epochs):
        start = time.perf_counter()
        perm = torch.randperm(n)
        for s in range(0, n, batch):
            idx = perm[s:s + batch]
            opt.zero_grad(set_to_none=True)
            loss_fn(net(x[idx]), y[idx]).backward()
            opt.step()
            sched.step()
        seconds += time.perf_counter() - start
    with torch.no_grad():
        xt = torch.from_numpy(normalize(data.test_images, np.dtype(cfg.dtype)))
        pred = net(xt).argmax(1).numpy()
    return float((pred == data.test_labels).mean()), seconds
