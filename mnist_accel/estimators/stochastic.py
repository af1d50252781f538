"""The stochastic solvers ('sgd', 'adam'): scikit-learn's epoch loop around our vectorized trainer.

Per epoch, as scikit-learn's ``_fit_stochastic``: ``n_iter_``, ``t_``, ``loss_``, ``loss_curve_``; the
no-improvement count on the training loss or, with early stopping, on the validation score (the best
weights kept and restored at the end); 'invscaling' and 'adaptive' learning rates (SGD only, through
the trainer's ``lr_factor``); stopping, and a ``ConvergenceWarning`` when ``max_iter`` is reached. ``fit``
starts a fresh optimizer (also under ``warm_start``); ``partial_fit`` continues the last one. Beyond
scikit-learn: a diverging run raises ``FloatingPointError`` and keeps its last sound epoch.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.base import is_classifier
from sklearn.exceptions import ConvergenceWarning

from mnist_accel import model
from mnist_accel.backends.selection import Backend, to_host
from mnist_accel.config import resolve
from mnist_accel.estimators.base import ACTIVATIONS, EXTRA_SCHEDULES, features
from mnist_accel.estimators.split import validation_split
from mnist_accel.trainers.vectorized import VectorizedTrainer
from mnist_accel.training import divergence
from mnist_accel.training.epochs import Diverged, run_epochs


@dataclass
class Optimizer:
    """What ``partial_fit`` continues: the update rule's slots (host arrays), its step count, and
    scikit-learn's current learning rate (changed by 'invscaling' and 'adaptive')."""

    state: list[list[np.ndarray]] | None
    steps: int
    learning_rate: float


def config(est, n_samples: int, epochs: int):
    """The trainer's configuration for this estimator's parameters."""
    batch = min(200, n_samples) if est.batch_size == "auto" else int(np.clip(est.batch_size, 1, n_samples))
    if est.batch_size != "auto" and est.batch_size > n_samples:
        warnings.warn("Got `batch_size` less than 1 or larger than sample size. It is going to be clipped",
                      stacklevel=5)
    if est.solver == "adam":
        optimizer = "adam"
    else:
        optimizer = "sgd" if est.momentum == 0 else ("nesterov" if est.nesterovs_momentum else "classical-momentum")
    hidden = tuple(np.atleast_1d(est.hidden_layer_sizes).tolist())
    return resolve(backend=None if est.backend == "auto" else est.backend, path="vectorized", epochs=epochs,
                   batch_size=batch, lr=est.learning_rate_init, hidden=hidden,
                   activation=ACTIVATIONS[est.activation], loss=est._loss, optimizer=optimizer,
                   dropout=est.dropout, bias=True, seed=int(est._random_state.randint(np.iinfo(np.int32).max)),
                   dtype=est._dtype_, weight_decay=est.alpha / batch,  # scikit-learn adds alpha * W / batch
                   schedule=est.learning_rate if est.learning_rate in EXTRA_SCHEDULES else "constant",
                   momentum=est.momentum, beta1=est.beta_1, beta2=est.beta_2, eps=est.epsilon, adam_form="keras",
                   val_split=0.0, shuffle=bool(est.shuffle))


def reference_loss(est, params, X, targets) -> float:
    """The divergence rule's reference (``training.divergence.reference_loss``). For regression, infinity:
    only a NaN or infinite loss counts, since a regression's loss may legitimately swing by orders of
    magnitude in its first epochs (scikit-learn's SGD on uncentred inputs spikes hundredfold and recovers),
    which scikit-learn's regressor rides out."""
    if not is_classifier(est):
        return math.inf
    return divergence.reference_loss(params, X, targets, ACTIVATIONS[est.activation], est._loss)


def fit_stochastic(est, X, Y, be: Backend, incremental: bool) -> None:
    if not incremental or not hasattr(est, "_optimizer"):
        est._optimizer = Optimizer(None, 0, float(est.learning_rate_init))
    if est.early_stopping and incremental:
        raise ValueError("partial_fit does not support early_stopping=True")
    early = est.early_stopping
    if early:
        X, X_val, Y, Y_val = validation_split(est, X, Y)
        x_val = features(X_val, est._dtype_, be.xp)
    targets = est._targets(Y)
    epochs = 1 if incremental else int(est.max_iter)
    cfg = config(est, X.shape[0], epochs)
    params = [p.copy() for p in est._params()]  # the trainer may update its arrays in place
    if est._reference is None:  # once per model: a stream of partial_fit calls pays one forward pass
        est._reference = reference_loss(est, params, X, targets)
    trainer = VectorizedTrainer(cfg, be, params, np.random.default_rng(cfg.seed), X, targets)
    opt = est._optimizer
    if opt.state is not None and len(opt.state[0]) == len(trainer.state[0]):
        for slots, saved in zip(trainer.state, opt.state):  # in place: a fused GPU step holds these arrays
            for slot, value in zip(slots, saved):
                slot[...] = be.xp.asarray(value)
        trainer.step = opt.steps
    trainer.progress = bool(est.verbose)
    sgd_schedule = est.solver == "sgd" and est.learning_rate in ("invscaling", "adaptive")
    n_train, scale = X.shape[0], _loss_scale(est)
    est.n_iter_ = 0
    sound, start = None, _squares(params) if est.alpha else 0.0
    try:
        trainer.lr_factor = opt.learning_rate / est.learning_rate_init if sgd_schedule else 1.0
        for epoch in run_epochs(trainer, epochs, est._reference):
            est.n_iter_ += 1
            end = _squares(trainer.params) if est.alpha else 0.0
            est.loss_ = epoch.loss / scale + _penalty(est, start, end, n_train, cfg.batch_size)
            start = end
            est.t_ += n_train
            est.loss_curve_.append(est.loss_)
            if est.verbose:
                print(f"Iteration {est.n_iter_}, loss = {est.loss_:.8f}")
            if early:
                _update_on_score(est, trainer, x_val, Y_val)
            else:
                _update_on_loss(est)
            if sgd_schedule and est.learning_rate == "invscaling":
                opt.learning_rate = float(est.learning_rate_init) / (est.t_ + 1) ** est.power_t
            sound = _snapshot(trainer)
            if est._no_improvement_count > est.n_iter_no_change:
                what = "Validation score" if early else "Training loss"
                msg = f"{what} did not improve more than tol={est.tol:f} for {est.n_iter_no_change} consecutive epochs."
                adaptive = sgd_schedule and est.learning_rate == "adaptive"
                if not adaptive or opt.learning_rate <= 1e-6:
                    if est.verbose:
                        print(msg + (" Learning rate too small. Stopping." if adaptive else " Stopping."))
                    break
                opt.learning_rate /= 5.0
                est._no_improvement_count = 0
                if est.verbose:
                    print(msg + f" Setting learning rate to {opt.learning_rate:f}")
            if incremental:
                break
            if est.n_iter_ == est.max_iter:
                warnings.warn(f"Stochastic Optimizer: Maximum iterations ({est.max_iter}) reached and the "
                              "optimization hasn't converged yet.", ConvergenceWarning, stacklevel=4)
            trainer.lr_factor = opt.learning_rate / est.learning_rate_init if sgd_schedule else 1.0
    except KeyboardInterrupt:
        warnings.warn("Training interrupted by user.", stacklevel=4)
    except Diverged as exc:  # keep the last sound epoch (and, under early stopping, the best one)
        _diverged(est, exc, sound, early)
    _keep(est, trainer.params, trainer.state, trainer.step)
    if early:  # restore the best weights
        est.coefs_, est.intercepts_ = est._best_coefs, est._best_intercepts


def _loss_scale(est) -> int:
    """scikit-learn's squared error is averaged over the outputs too (its gradient is not): loss_ follows."""
    return est.n_outputs_ if est.out_activation_ == "identity" else 1


def _squares(params) -> float:
    """sum ||W||^2 over the weights (one small read from the device)."""
    with np.errstate(all="ignore"):  # a diverging run is reported by the epoch loop
        return sum(float(to_host((w * w).sum())) for w in params[0::2])


def _penalty(est, start: float, end: float, n_train: int, batch: int) -> float:
    """scikit-learn's reported loss adds alpha/2 ||W||^2 / batch to every batch's loss at the weights that
    batch starts from; here ||W||^2 moves in a straight line from the epoch's first weights to its last
    (exact with one batch an epoch), so loss_curve_ means what scikit-learn's does (to rounding where the
    weights move little within an epoch)."""
    n_batches = -(-n_train // batch)
    squares = n_batches * start + (end - start) * (n_batches - 1) / 2
    return 0.5 * est.alpha * squares / n_train


def _update_on_loss(est) -> None:
    if est.loss_curve_[-1] > est.best_loss_ - est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    est.best_loss_ = min(est.best_loss_, est.loss_curve_[-1])


def _update_on_score(est, trainer, x_val, Y_val) -> None:
    xp = trainer.xp
    with trainer.scoring():
        out = model.outputs(trainer.params, x_val, ACTIVATIONS[est.activation], est._loss, xp)
    score = est._validation_score(to_host(out), Y_val)
    est.validation_scores_.append(score)
    if est.verbose:
        print(f"Validation score: {score:f}")
    if score < est.best_validation_score_ + est.tol:
        est._no_improvement_count += 1
    else:
        est._no_improvement_count = 0
    if score > est.best_validation_score_:
        est.best_validation_score_ = score
        host = [to_host(p).copy() for p in trainer.params]
        est._best_coefs, est._best_intercepts = host[0::2], host[1::2]


def _snapshot(trainer) -> tuple[Any, Any, int]:
    return ([p.copy() for p in trainer.params], [[s.copy() for s in slots] for slots in trainer.state], trainer.step)


def _keep(est, params, state, steps: int) -> None:
    est._store(params)
    est._optimizer.state = [[to_host(s) for s in slots] for slots in state]
    est._optimizer.steps = steps


def _diverged(est, exc: Diverged, sound, early: bool):
    if sound is not None:
        _keep(est, *sound)
        if early:
            est.coefs_, est.intercepts_ = est._best_coefs, est._best_intercepts
    kept = f"the model kept is from iteration {est.n_iter_}" if sound is not None else \
        "no iteration of this call finished before it, so the estimator is left as it was"
    error = FloatingPointError(f"training diverged at iteration {est.n_iter_ + 1} ({exc.why}); {kept}; "
                               f"try a smaller learning_rate_init than {est.learning_rate_init:g}")
    error.kept = sound is not None  # nothing kept: ``_fit`` puts the estimator back as the call found it
    raise error from None
