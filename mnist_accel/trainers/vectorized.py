"""The vectorized (mini-batch) trainer, written once against ``xp``: NumPy and CuPy run it unchanged.

The training images stay on the device as uint8 and are scaled per batch; shuffling is a device
permutation; dropout masks come from the counter-based generator; every buffer is allocated once per
batch size and reused; loss and accuracy accumulate on the device and are read once per epoch. A full
batch's step takes no argument from the host: it reads the step counter, the epoch's order, scalars
and dropout keys from device memory, so on a GPU it is captured once as a CUDA graph (``graphs.py``).
When one batch is the whole training set in an order that cannot matter (full-batch gradient descent),
the ops prepare the images once (scaled, or as a sparse matrix on the CPU) and no step gathers anything.

The targets are class labels (one-hot where the loss needs float targets) or float targets used as given;
the training set may be a scipy.sparse matrix on the CPU backends (gathered per batch, never densified
whole). ``lr_factor`` scales the schedule's rate from the next epoch on (scikit-learn's 'invscaling' and
'adaptive' rates), through the same device table every step reads.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from tqdm.auto import tqdm

from mnist_accel import optim, rng as crng
from mnist_accel.backends import StepBuffers, make_ops
from mnist_accel.backends.cores import controller, threads_for
from mnist_accel.backends.selection import Backend, to_device, to_host
from mnist_accel.backends.sparse_rows import is_sparse
from mnist_accel.config import TrainConfig
from mnist_accel.kernels import LABEL_LOSSES
from mnist_accel.trainers.batch_pass import BatchPass
from mnist_accel.trainers.graphs import make_steps
from mnist_accel.trainers.training_set import as_rows, check_targets, device_targets, split_validation
from mnist_accel.trainers.whole_gradients import WholeGradients

__all__ = ["VectorizedTrainer"]

SHUFFLE, DROPOUT = 1, 2  # stream purposes for the counter-based generator


def blas_threads(threads: int):
    """A context in which BLAS runs ``threads`` threads (through the stored controller: ``threadpool_limits``
    would scan the loaded libraries on every call, which at full batch is every step)."""
    return controller().limit(limits=threads, user_api="blas")


class VectorizedTrainer:
    lr_factor = 1.0  # multiplies the schedule's rate from the next epoch on (read by _plan as each epoch starts)

    def __init__(self, cfg: TrainConfig, be: Backend, params: list[np.ndarray], rng: np.random.Generator,
                 images: Any, targets: np.ndarray) -> None:
        """``images``: uint8 pixels or features, one row per sample (a scipy.sparse matrix on the CPU);
        ``targets``: an int class label per row, or an (rows, outputs) float array used as given."""
        self.cfg, self.xp, self.ops = cfg, be.xp, make_ops(be)
        self.dtype = np.dtype(cfg.dtype)
        n, n_out = images.shape[0], params[-1].shape[-1]
        targets, images = check_targets(targets, n, n_out), as_rows(images, self.dtype, be)  # the targets' error first
        images, targets, self.val = split_validation(cfg, rng, images, targets, n_out, self.dtype, be)
        # One batch covering the whole set, whose order cannot matter (no dropout masks tied to positions,
        # or no shuffling): every step is the same rows in the same order, so the ops prepare the inputs
        # once (scaled, or as a sparse matrix) and no step gathers or rescales anything.
        n = images.shape[0]
        self.whole = cfg.batch_size >= n and not (cfg.dropout and cfg.shuffle)
        self.threads = threads_for(cfg.threads)  # this process's share of the CPU unless --threads names it
        self.inputs = self.ops.prepare_inputs(images if is_sparse(images) else to_device(images, be), self.dtype,
                                              whole=self.whole, threads=self.threads)
        self.labels = device_targets(targets, slice(None), cfg.loss in LABEL_LOSSES, n_out, self.dtype, be)
        self.n_seen = n
        self.params = [to_device(p, be) for p in params]
        self._pass = BatchPass(cfg, self.ops, self.xp, self.params, self.inputs, self.labels, n, self.dtype)
        self.state = optim.init_state(self.params, cfg.optimizer, self.xp)
        self.seed = int(rng.integers(2 ** 32))  # drawn from the run's generator so --seed governs it
        self.steps_per_epoch = math.ceil(self.n_seen / cfg.batch_size)
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.step = self.epoch = 0
        self._device_state(be)
        self.progress = False  # a progress bar per epoch (set by callers that print to a terminal)
        self.compile_seconds = self.ops.warm_up(cfg)
        self._gradients: WholeGradients | None = None  # loss_and_grads's flat buffer, made on its first call

    def _device_state(self, be: Backend) -> None:
        """The fixed device buffers a step reads instead of host arguments (a captured graph keeps their
        addresses), and the runner that replays or calls the step."""
        xp, spe, bs = self.xp, self.steps_per_epoch, min(self.cfg.batch_size, self.n_seen)
        hidden_layers = len(self._pass.net) - 1
        self._step_loss = xp.zeros(spe, np.float64)  # to name a diverging step
        self._sched = xp.zeros((spe, 3), self.dtype)  # (lr, step size, eps) per step of this epoch
        self._keys = xp.zeros((spe, hidden_layers), np.uint32)  # dropout key per step and hidden layer
        self._cur_sched, self._cur_keys = xp.zeros(3, self.dtype), xp.zeros(hidden_layers, np.uint32)
        self._order = xp.arange(self.n_seen)  # this epoch's shuffle
        self._k = xp.zeros((), np.int64)  # the step within the epoch, advanced on the device
        self._lanes, self._idx, self._batch = xp.arange(bs), xp.zeros(bs, np.int64), xp.zeros(bs, np.int64)
        self._loss_sum, self._hits = xp.zeros((), np.float64), xp.zeros((), np.float64)
        self._fused = self.ops.fused_step(self.cfg, self.params, self.state, StepBuffers(
            self.inputs, self.labels, self._order, self._k, self._sched, self._keys, self._step_loss, self._loss_sum,
            self._hits))
        step = self._device_step if self._fused is None else lambda: self._fused(bs)
        self.steps = make_steps(xp, be.on_gpu, self.cfg.graphs, step)

    def train_epoch(self) -> tuple[Any, Any]:
        """One pass over the training set; returns (summed loss, correct count), still on the device."""
        xp, bs = self.xp, self.cfg.batch_size
        self._plan()
        if self.cfg.shuffle and not self.whole:
            self._order[...] = crng.permutation(crng.key(self.seed, SHUFFLE, self.epoch), self.n_seen, xp)
        self._k[...] = 0
        self._loss_sum[...] = 0
        self._hits[...] = 0
        full = self.n_seen // bs
        with blas_threads(self.ops.blas_threads(self.threads)), self.steps.epoch(), \
                tqdm(total=self.steps_per_epoch, disable=not self.progress, leave=False, unit="batch",
                     desc=f"epoch {self.epoch + 1}") as bar:
            for k in range(self.steps_per_epoch):
                if k < full or self.whole:
                    self.steps()
                elif self._fused is not None:  # the short last batch has shapes of its own: run directly
                    self._fused(self.n_seen - k * bs)
                else:  # from a host slice
                    self._step(self._order[k * bs:(k + 1) * bs], k)
                self.step += 1
                bar.update()  # a host-side counter: no device sync
        self.epoch += 1
        return self._loss_sum.copy(), self._hits.copy()

    def scoring(self):
        """A context for evaluating between epochs with the BLAS threads the epochs use: OpenBLAS's workers
        spin for a while after each call, and in the next epoch would compete with the ops' own threads."""
        return blas_threads(self.ops.blas_threads(self.threads))

    def _plan(self) -> None:
        """This epoch's per-step (lr, step size, eps) and dropout keys, computed on the host and moved to
        the device once per epoch, into the fixed buffers the step reads."""
        cfg, steps = self.cfg, range(self.step, self.step + self.steps_per_epoch)
        factor = float(self.lr_factor)
        sched = [optim.step_scalars(cfg, s + 1, optim.lr_at(cfg, s, self.total_steps) * factor) for s in steps]
        self._sched[...] = self.xp.asarray(np.array(sched, self.dtype))
        if cfg.dropout:
            keys = [[crng.key(self.seed, DROPOUT, s, i) for i in range(self._keys.shape[1])] for s in steps]
            self._keys[...] = self.xp.asarray(np.array(keys, np.uint32))

    def _device_step(self) -> None:
        """Step number ``_k`` of the epoch on a full batch, with every input read from device memory."""
        xp = self.xp
        if self.whole:  # every row in order: nothing to gather
            self._step(None, self._k)
        else:
            xp.add(self._lanes, self._k * self.cfg.batch_size, out=self._idx)
            xp.take(self._order, self._idx, out=self._batch)
            self._step(self._batch, self._k)
        self._k += 1

    def _step(self, batch: Any, k: Any) -> None:
        """Train on ``batch`` (None: every row in order) as step ``k`` of the epoch (a host int, or a device
        counter)."""
        scalars, keys = self._row(self._sched, k, self._cur_sched), self._row(self._keys, k, self._cur_keys)
        loss, hits = self.train_step(batch, scalars, keys)
        self._step_loss[k] = loss  # stays on the device; read only if the epoch's loss is not finite
        self._loss_sum += loss
        self._hits += hits

    def _row(self, table: Any, k: Any, out: Any) -> Any:
        if isinstance(k, int):
            return table[k]
        self.xp.take(table, k, axis=0, out=out)
        return out

    def train_step(self, batch: Any, scalars: Any, keys: Any) -> tuple[Any, Any]:
        """Forward, backward and update on the samples at indices ``batch`` (None: every row in order),
        with (lr, step size, eps) from ``scalars`` and dropout keys from ``keys``; no host sync."""
        loss, hits, grads = self.gradients(batch, keys)
        self.ops.update(self.params, grads, self.state, self.cfg, scalars)
        return loss, hits

    def loss_and_grads(self, order: Any = None) -> tuple[float, np.ndarray]:
        """The whole training set's summed loss and mean gradients at the current ``params`` (write them in
        place), without dropout, weight decay or update: (loss, the gradients of ``params[i]`` for i in
        ``order`` (default: all, in order) raveled into one float64 host array), read back in one transfer.
        A trainer whose batch is the whole set only (``whole``); ``whole_gradients`` says how."""
        if self._gradients is None:
            self._gradients = WholeGradients(self, range(len(self.params)) if order is None else order)
        return self._gradients()

    def gradients(self, batch: Any, keys: Any) -> tuple[Any, Any, list]:
        """Forward and backward on the samples at indices ``batch`` (None: every row in order), dropout
        keys from ``keys`` (None: no dropout): (summed loss, correct count, mean gradients in params'
        order: buffers, overwritten by the next call for as many samples); no host sync (``batch_pass``)."""
        return self._pass(batch, keys)

    step_name = "step"  # what first_bad counts, for messages

    @property
    def first_bad(self) -> int:
        """The first step of the last epoch whose loss was not finite, or -1 (reads the device)."""
        bad = to_host(~self.xp.isfinite(self._step_loss))
        return int(bad.argmax()) if bad.any() else -1

    def export_state(self) -> tuple[list[np.ndarray], dict]:
        """Everything a resumed run needs: shuffles and masks derive from (seed, epoch, step)."""
        arrays = [np.array(to_host(a)) for a in self.params] + [np.array(to_host(a)) for s in self.state for a in s]
        return arrays, {"step": self.step, "epoch": self.epoch, "seed": self.seed}

    def import_state(self, arrays: list[np.ndarray], meta: dict) -> None:
        slots = [a for s in self.state for a in s]
        for dst, src in zip([*self.params, *slots], arrays):
            dst[...] = self.xp.asarray(src)  # in place: the cached (W, b) pairs keep pointing at them
        self.step, self.epoch, self.seed = meta["step"], meta["epoch"], meta["seed"]
