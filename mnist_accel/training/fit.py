"""The functional training API: ``fit(config) -> FitResult``. The CLI and MLPClassifier are built on it.

It resolves the backend, loads and slices the data, runs the chosen trainer epoch by epoch, and
measures each epoch's training time apart from data loading, compilation and evaluation.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mnist_accel import model, optim
from mnist_accel.backends.selection import Backend, get_backend, to_device, to_host
from mnist_accel.config import TrainConfig, validate
from mnist_accel.data.mnist import MnistData, load_mnist, normalize, one_hot
from mnist_accel.errors import ConfigError, Stopped, TrainingDiverged, TrainingInterrupted
from mnist_accel.training import checkpoint as ckpt, divergence
from mnist_accel.training.epochs import Diverged, run_epochs
from mnist_accel.training.run_state import RunState


@dataclass
class FitResult:
    config: TrainConfig
    params: list[np.ndarray]  # trained parameters, on the host
    history: list[dict[str, float]]  # one record per epoch
    backend: str  # the backend actually used
    device: str
    compile_seconds: float  # JIT compilation and warm-up, excluded from epoch times
    dataset: str  # what data was read, and whether it is the official copy of cfg.dataset
    test_accuracy: float = float("nan")  # of the returned parameters
    official: bool = True
    stopped_early: bool = False
    seconds_to_target: float | None = None  # training seconds until --target-accuracy was reached, if it was
    graphs: str = "off"  # whether training steps replayed a CUDA graph: on, or off (and why)

    @property
    def train_seconds(self) -> float:
        return float(sum(r["seconds"] for r in self.history))


def _slice(data: MnistData, cfg: TrainConfig) -> tuple[np.ndarray, ...]:
    n_train = cfg.train_samples or len(data.train_images)
    n_test = cfg.test_samples or len(data.test_images)
    if n_train > len(data.train_images):
        raise ConfigError(f"--train-samples {n_train} exceeds the {len(data.train_images)} training images")
    if n_test > len(data.test_images):
        raise ConfigError(f"--test-samples {n_test} exceeds the {len(data.test_images)} test images")
    return (data.train_images[:n_train], data.train_labels[:n_train],
            data.test_images[:n_test], data.test_labels[:n_test])


def _make_trainer(cfg: TrainConfig, be: Backend, params: list, rng: np.random.Generator,
                  train_images: np.ndarray, train_labels: np.ndarray):
    if cfg.path == "loop":
        from mnist_accel.trainers.loop import LoopTrainer

        x = normalize(train_images, np.dtype(cfg.dtype))
        return LoopTrainer(params, x, train_labels, rng, cfg.lr, cfg.activation, cfg.loss, cfg.dropout, be.name,
                           be.xp)
    from mnist_accel.trainers.vectorized import VectorizedTrainer

    return VectorizedTrainer(cfg, be, params, rng, train_images, train_labels)


def fit(cfg: TrainConfig, data: MnistData | None = None,
        on_epoch: Callable[[dict[str, float]], None] | None = None, progress: bool = False,
        checkpoint: str | os.PathLike | None = None, resume: str | os.PathLike | None = None,
        interrupt_path: str | os.PathLike | None = None) -> FitResult:
    """Train per ``cfg`` and return the trained parameters with per-epoch metrics.

    ``checkpoint``: write the full training state there after every epoch. ``resume``: continue the run
    saved in that checkpoint. On Ctrl-C (or a stop signal inside ``signals.stop_on_signals``) the last
    completed epoch's state goes to ``checkpoint`` (else ``interrupt_path``, if given) and
    TrainingInterrupted is raised. A loss that stops being finite or leaves its plausible range (see
    ``mnist_accel.training.divergence``) raises TrainingDiverged carrying the model of the last sound epoch.
    """
    validate(cfg)
    be = get_backend(cfg.backend)
    data = data if data is not None else load_mnist(cfg.data_dir, progress=progress, dataset=cfg.dataset)
    if data.dataset != cfg.dataset:
        raise ConfigError(f"the data given is {data.dataset} but the config trains on {cfg.dataset}; load it with "
                          f"load_mnist(dataset={cfg.dataset!r}) or set dataset={data.dataset!r}")
    train_images, train_labels, test_images, test_labels = _slice(data, cfg)
    dtype = np.dtype(cfg.dtype)
    rng = np.random.default_rng(cfg.seed)
    sizes = [train_images[0].size, *cfg.hidden, 10]
    _check_memory(cfg, sizes, len(train_images), be)
    params = model.init_params(rng, sizes, cfg.init, cfg.bias, dtype)
    # from the initial weights, before the trainer takes them over, so a resumed run gets the same value
    reference = divergence.reference_loss(params, train_images, train_labels, cfg.activation, cfg.loss)
    trainer = _make_trainer(cfg, be, params, rng, train_images, train_labels)
    trainer.progress = progress
    x_test = normalize(to_device(test_images, be), dtype, be.xp)
    y_test = one_hot(to_device(test_labels, be), dtype, be.xp)
    run = RunState(cfg, trainer)
    if resume is not None:
        run.resume(resume)
    snapshot = run.snapshot()
    stopped = False
    try:
        for trained in run_epochs(trainer, cfg.epochs - len(run.history), reference):
            epoch = len(run.history)
            with trainer.scoring():
                record = {"epoch": epoch, "train_loss": trained.loss, "train_accuracy": trained.accuracy,
                          **_scores("test", trainer.params, x_test, y_test, cfg, be), "seconds": trained.seconds}
                if trainer.val is not None:
                    record.update(_scores("val", trainer.params, *trainer.val, cfg, be))
                    run.track_validation(record["val_loss"])
            run.history.append(record)
            stopped = bool(cfg.patience) and run.waited >= cfg.patience
            if reached(cfg, run.history):
                break  # the model of the epoch that reached it: no rollback to the best validation loss
            snapshot = run.snapshot()
            if checkpoint is not None:
                ckpt.save(checkpoint, *snapshot)
            if on_epoch is not None:
                on_epoch(record)
            if stopped:
                break
    except Diverged as exc:
        epoch = len(run.history)
        run.restore(snapshot)
        result = _result(run, be, data, run.history[-1]["test_accuracy"] if run.history else float("nan"))
        kept = f"the model kept is from epoch {epoch}" if epoch else "no epoch finished before it, so no model is kept"
        raise TrainingDiverged(f"training diverged in epoch {epoch + 1}{exc.where} ({exc.why}); "
                               f"{kept}; try a smaller --lr than {cfg.lr:g}", result) from None
    except KeyboardInterrupt as exc:  # Ctrl-C, or Stopped by a scheduler's signal
        if checkpoint is None and interrupt_path is None:
            raise
        target, placeholder = (checkpoint, False) if checkpoint is not None else ckpt.claim(interrupt_path, resume)
        try:
            ckpt.save(target, *snapshot)
        except BaseException:
            if placeholder:  # never the checkpoint this run resumed from: the failed save left that intact
                Path(target).unlink(missing_ok=True)
            raise
        done = len(snapshot[1]["history"])
        cause = str(exc) if isinstance(exc, Stopped) else "interrupted"
        raise TrainingInterrupted(f"{cause}; the state after epoch {done} is saved in {target}: "
                                  f"continue with --resume {target}", getattr(exc, "exit_code", 130)) from None
    if stopped:  # early stopping keeps the best epoch
        for p, best in zip(trainer.params, run.best_params):
            p[...] = to_device(best, be)  # CuPy refuses a host array on the right of an assignment
    final = _scores("test", trainer.params, x_test, y_test, cfg, be)["test_accuracy"] if stopped else \
        run.history[-1]["test_accuracy"]
    result = _result(run, be, data, final)
    result.stopped_early = stopped
    if reached(cfg, run.history):
        result.seconds_to_target = result.train_seconds
    return result


def reached(cfg: TrainConfig, history: list[dict[str, float]]) -> bool:
    """Whether the last epoch's validation accuracy reached ``--target-accuracy``."""
    return cfg.target_accuracy is not None and bool(history) and \
        history[-1].get("val_accuracy", -1.0) >= cfg.target_accuracy


def _check_memory(cfg: TrainConfig, sizes: list[int], n_train: int, be: Backend) -> None:
    """Refuse, before allocating, a model the backend cannot hold: parameters with their gradients and
    optimizer slots, one batch's activations, and the training images."""
    n_params = sum(a * b + b for a, b in zip(sizes[:-1], sizes[1:]))
    slots = optim.SLOTS[cfg.optimizer]
    batch = 1 if cfg.path == "loop" else min(cfg.batch_size, n_train)
    need = np.dtype(cfg.dtype).itemsize * (n_params * (2 + slots) + 3 * batch * sum(sizes)) + n_train * sizes[0]
    free = be.available_bytes()
    if free is not None and need > free:
        raise ConfigError(f"this model needs about {need / 2**30:.1f} GiB but {be.device} has "
                          f"{free / 2**30:.1f} GiB free; use fewer or narrower --hidden layers "
                          "or a smaller --batch-size")


def _result(run: RunState, be: Backend, data: MnistData, test_accuracy: float) -> FitResult:
    steps = getattr(run.trainer, "steps", None)  # the loop path has no graphs
    return FitResult(run.cfg, [np.array(to_host(p)) for p in run.trainer.params], run.history, be.name, be.device,
                     run.trainer.compile_seconds, data.description, test_accuracy, data.official,
                     graphs=steps.status if steps is not None else "off")


def _scores(prefix: str, params: list, x, y, cfg: TrainConfig, be: Backend) -> dict[str, float]:
    loss, correct = model.evaluate(params, x, y, cfg.activation, cfg.loss, be.xp)
    n = x.shape[0]
    return {f"{prefix}_loss": float(to_host(loss)) / n, f"{prefix}_accuracy": int(to_host(correct)) / n}
