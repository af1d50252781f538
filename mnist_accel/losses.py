"""The losses the MLP trains on, as pure functions of the output layer's scores over an array namespace
``xp`` (NumPy or CuPy): each loss's link to prediction space, its sum, its gradient with respect to the
scores, and the count of rows predicted right. ``mnist_accel.model`` runs the layers around them.
"""

from __future__ import annotations

from typing import Any

from mnist_accel.kernels import LOOP_LOSS_CODES, LOSS_CODES

Array = Any
LOSSES = tuple({**LOOP_LOSS_CODES, **LOSS_CODES})  # softmax-mse: the per-sample loop only (deep-sgd's)
REGRESSION_LOSSES = ("squared-error", "poisson")  # no class to be right about: ``evaluate`` counts 0 correct


def log_softmax(z: Array, xp: Any) -> Array:
    shifted = z - z.max(axis=-1, keepdims=True)
    return shifted - xp.log(xp.exp(shifted).sum(axis=-1, keepdims=True))


def link(out: Array, loss: str, xp: Any) -> Array:
    """The output layer's scores in prediction space, as ``loss`` reads them: softmax probabilities for the
    softmax losses, logistic ones for binary-cross-entropy, exp for poisson, the scores themselves for mse
    and squared-error."""
    if loss in ("cross-entropy", "softmax-mse"):
        return xp.exp(log_softmax(out, xp))
    if loss == "binary-cross-entropy":  # the logistic from exp(-|out|): no overflow, no lost digits near 0
        e = xp.exp(-xp.absolute(out))
        return ((out >= 0) + (out < 0) * e) / (1 + e)
    if loss == "poisson":
        return xp.exp(out)
    if loss in ("mse", "squared-error"):
        return out
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def softplus(z: Array, xp: Any) -> Array:
    """log(1 + exp(z)), without overflow for large z nor lost digits for very negative z."""
    return xp.maximum(z, 0) + xp.log1p(xp.exp(-xp.absolute(z)))


def loss_sum(out: Array, y: Array, loss: str, xp: Any) -> Array:
    """Loss summed over the samples and outputs: squared error (the tutorial's), cross-entropy, the
    softmax's squared error averaged over the outputs (deep-sgd's); and scikit-learn's, from the scores:
    binary cross-entropy of logistic outputs, -sum(y log p + (1 - y) log(1 - p)) = sum(softplus(out) - y out);
    half the squared error, 0.5 sum((out - y)^2); half the Poisson deviance of exp outputs,
    sum(xlogy(y, y) - y - y out + exp(out)).

    scikit-learn reports the mean over samples of each (``binary_log_loss``, ``poisson_loss``: this over
    n_samples, with probabilities clipped to [eps, 1 - eps]), except the squared error, which it also averages
    over the outputs (``squared_loss``: this over n_samples * n_outputs) while its gradient is that of this
    over n_samples alone."""
    if loss == "mse":
        return ((y - out) ** 2).sum()
    if loss == "cross-entropy":
        return -(y * log_softmax(out, xp)).sum()
    if loss == "softmax-mse":
        return ((y - xp.exp(log_softmax(out, xp))) ** 2).sum() / out.shape[-1]
    if loss == "binary-cross-entropy":
        return (softplus(out, xp) - y * out).sum()
    if loss == "squared-error":
        return 0.5 * ((out - y) ** 2).sum()
    if loss == "poisson":
        return (y * xp.log(y + (y == 0)) - y - y * out + xp.exp(out)).sum()  # y log y, 0 at y = 0
    raise ValueError(f"unknown loss {loss!r}; choose one of {', '.join(LOSSES)}")


def output_grad(out: Array, y: Array, loss: str, xp: Any) -> Array:
    """d loss_sum / d out: the canonical link's link(out) - y for all but the tutorial's and deep-sgd's."""
    if loss == "mse":
        return 2 * (out - y)
    if loss in ("binary-cross-entropy", "squared-error", "poisson"):
        return link(out, loss, xp) - y
    p = xp.exp(log_softmax(out, xp))
    if loss == "softmax-mse":  # through the softmax's Jacobian (deep-sgd's loop takes only its diagonal)
        g = 2 * (p - y) / out.shape[-1]
        return p * (g - (p * g).sum(axis=-1, keepdims=True))
    return p - y


def correct_count(out: Array, y: Array, loss: str) -> Array:
    """Rows predicted right: the largest score on the target's largest entry (one-hot targets); for
    binary-cross-entropy, every label on its side of 0.5 (scikit-learn's subset accuracy); 0 for the
    regression losses, which have no classes."""
    if loss in REGRESSION_LOSSES:
        return 0
    if loss == "binary-cross-entropy":
        return ((out > 0) == (y > 0.5)).all(axis=1).sum()
    return (out.argmax(axis=1) == y.argmax(axis=1)).sum()
