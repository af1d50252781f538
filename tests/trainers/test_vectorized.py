"""The vectorized trainer on every available backend: it learns, it is deterministic, the backends
agree, early stopping works, and the default run reaches 98% on MNIST."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_accel import losses, model, optim, rng as crng
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.cli.train import main
from mnist_accel.config import resolve
from mnist_accel.trainers.vectorized import SHUFFLE, VectorizedTrainer
from mnist_accel.training.fit import fit

BACKENDS = ["numpy", "numba", pytest.param("cuda", marks=pytest.mark.gpu)]
SMALL = dict(train_samples=3000, test_samples=1000, epochs=3, hidden=(64,), batch_size=64, path="vectorized")


@pytest.mark.parametrize("backend", BACKENDS)
def test_learns_and_is_deterministic(backend, mnist):
    cfg = resolve(backend=backend, dropout=0.2, **SMALL)
    first, second = fit(cfg, mnist), fit(cfg, mnist)
    losses = [r["train_loss"] for r in first.history]
    assert losses == sorted(losses, reverse=True)
    assert first.test_accuracy > 0.85 and first.backend == backend
    assert first.history == [{**r, "seconds": first.history[i]["seconds"]} for i, r in enumerate(second.history)]
    for a, b in zip(first.params, second.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("variant", [
    dict(activation="tanh", loss="mse", optimizer="adam", lr=3e-3, hidden=(32, 16)),
    dict(activation="sigmoid", optimizer="momentum", lr=0.1, bias=False, schedule="step", weight_decay=1e-4),
    dict(activation="relu", optimizer="sgd", lr=0.1, init="xavier", dtype="float64"),
])
def test_other_configurations_learn(backend, variant, mnist):
    result = fit(resolve(backend=backend, **{**SMALL, **variant}), mnist)
    assert result.test_accuracy > 0.6  # chance is 0.1; these short runs measured 0.72 to 0.9
    assert result.history[-1]["train_loss"] < result.history[0]["train_loss"]


def _one_epoch(backend: str, mnist, optimizer: str) -> list[np.ndarray]:
    """From fixed weights, batches and counter-based masks: one epoch on 5,000 images."""
    lr = {"sgd": 0.05, "momentum": 0.01, "adam": 1e-3}.get(optimizer, 0.01)
    cfg = resolve(backend=backend, dropout=0.3, hidden=(128, 32), epochs=1, batch_size=100, optimizer=optimizer,
                  lr=lr).replace(eps=1e-3)
    params = model.init_params(np.random.default_rng(0), [784, 128, 32, 10], "he", True, np.float32)
    trainer = VectorizedTrainer(cfg, get_backend(backend), params, np.random.default_rng(1),
                                mnist.train_images[:5000], mnist.train_labels[:5000])
    trainer.train_epoch()
    return [to_host(p) for p in trainer.params]


@pytest.mark.parametrize("other", ["numba", pytest.param("cuda", marks=pytest.mark.gpu)])
@pytest.mark.parametrize("optimizer", list(optim.SLOTS))
def test_backends_agree_in_float32(other, optimizer, mnist):
    """Relative 1e-5 after a whole epoch (measured: about 2e-7 for sgd and momentum, 6e-6 for Adam).

    Adam runs with eps=1e-3 here: with its default 1e-8, a gradient near eps is divided by its own
    magnitude, so a rounding-level difference becomes a visible step (measured 5e-3 after an epoch).
    On the GPU the sums run in another order with fused multiply-adds, exp is libdevice's (within 2 ulp) and
    subnormals flush to zero (CuPy compiles with -ftz=true): each costs a few float32 ulp (6e-8) a step, the
    same kind of difference as numba's from numpy, so the same bound holds.
    """
    reference = _one_epoch("numpy", mnist, optimizer)
    for a, b in zip(_one_epoch(other, mnist, optimizer), reference):
        assert np.abs(a - b).max() <= 1e-5 * np.abs(b).max()


def test_early_stopping_restores_the_best_epoch(mnist):
    cfg = resolve(backend="numba", train_samples=2000, test_samples=500, epochs=40, hidden=(64,), lr=0.02,
                  schedule="constant", val_split=0.25, patience=2)
    result = fit(cfg, mnist)
    assert result.stopped_early and len(result.history) < 40
    val = [r["val_loss"] for r in result.history]
    assert min(val) < val[-1] and all("val_accuracy" in r for r in result.history)
    x = mnist.test_images[:500].reshape(500, -1) / 255
    y = np.eye(10)[mnist.test_labels[:500]]
    _, correct = model.evaluate([p.astype(np.float64) for p in result.params], x, y, "relu", "cross-entropy", np)
    assert result.test_accuracy == pytest.approx(correct / 500, abs=0.0021)


@pytest.mark.slow
def test_default_run_reaches_98_percent(mnist, tmp_path):
    """The README's main command, with no flags, on the full data (about 5 s of training here)."""
    out = tmp_path / "m.json"
    assert main(["--metrics-json", str(out), "--quiet"]) == 0
    metrics = json.loads(out.read_text())
    assert metrics["config"]["train_samples"] is None and metrics["path"] == "vectorized"
    assert metrics["test_accuracy"] >= 0.98


@pytest.mark.parametrize("n", [5000, 5050])  # whole batches only, and a short last batch
def test_device_driven_steps_equal_host_slices(mnist, n):
    """A full batch's step reads its batch, scalars and dropout keys from device memory, indexed by a device
    counter (what a CUDA graph replays); driving the same epochs from host slices must agree bit for bit."""
    cfg = resolve(backend="numpy", dropout=0.3, hidden=(64, 32), batch_size=100, epochs=2, lr=3e-3)
    params = model.init_params(np.random.default_rng(0), [784, 64, 32, 10], "he", True, np.float32)
    device, host = (VectorizedTrainer(cfg, get_backend("numpy"), [p.copy() for p in params], np.random.default_rng(1),
                                      mnist.train_images[:n], mnist.train_labels[:n]) for _ in range(2))
    for epoch in range(2):
        loss, hits = device.train_epoch()
        host._plan()
        host._loss_sum[...] = host._hits[...] = 0
        order = crng.permutation(crng.key(host.seed, SHUFFLE, epoch), n, np)
        for k in range(host.steps_per_epoch):
            host._order[...] = order
            host._step(order[k * 100:(k + 1) * 100], k)
            host.step += 1
        assert float(loss) == float(host._loss_sum) and float(hits) == float(host._hits)
    assert device.step == host.step == 2 * device.steps_per_epoch
    for a, b in zip(device.params, host.params):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n", [500, 333])
def test_val_from_end_holds_out_the_last_images_as_keras_does(mnist, n):
    """Keras's validation_split: the first floor(n * (1 - split)) images train, in order, the rest validate."""
    cfg = resolve(backend="numpy", hidden=(8,), val_split=0.2, val_from="end", epochs=1)
    params = model.init_params(np.random.default_rng(0), [784, 8, 10], "he", True, np.float32)
    trainer = VectorizedTrainer(cfg, get_backend("numpy"), params, np.random.default_rng(1),
                                mnist.train_images[:n], mnist.train_labels[:n])
    kept = int(np.floor(n * 0.8))
    assert trainer.n_seen == kept
    np.testing.assert_array_equal(trainer.inputs, mnist.train_images[:kept].reshape(kept, -1))
    np.testing.assert_array_equal(trainer.val[0] * 255, mnist.train_images[kept:n].reshape(n - kept, -1))
    np.testing.assert_array_equal(trainer.val[1].argmax(axis=1), mnist.train_labels[kept:n])


@pytest.mark.parametrize("backend", BACKENDS)
def test_a_whole_set_batch_is_gradient_descent(backend, mnist):
    """One batch over the whole set in order: each epoch is one step of gradient descent on every image
    (model.loss_and_grads), however the ops hold the images (a sparse matrix on numba); shuffling, which
    could only reorder sums, is skipped."""
    cfg = resolve("full-batch", backend=backend, train_samples=400, epochs=3, lr_drop_at=2, dtype="float64")
    params = model.init_params(np.random.default_rng(0), [784, 16, 16, 10], cfg.init, True, np.float64)
    trainer = VectorizedTrainer(cfg, get_backend(backend), [p.copy() for p in params], np.random.default_rng(1),
                                mnist.train_images[:400], mnist.train_labels[:400])
    assert trainer.whole
    x, y = mnist.train_images[:400].reshape(400, -1) / 255, np.eye(10)[mnist.train_labels[:400]]
    for lr in (1.0, 1.0, 0.1):
        loss, _ = trainer.train_epoch()
        mean_loss, grads = model.loss_and_grads(params, x, y, "tanh", "cross-entropy", np)
        assert float(to_host(loss)) / 400 == pytest.approx(mean_loss, rel=1e-12)
        params = [p - lr * g for p, g in zip(params, grads)]
    for a, b in zip(trainer.params, params):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-10, atol=1e-12)
    np.testing.assert_array_equal(to_host(trainer._order), np.arange(400))


# ---- scikit-learn's pieces: float targets and their losses, Nesterov, lr_factor, sparse input ---------------
# "cuda" here is the CuPy stand-in (tests/cuda_standin): CudaOps, its kernels compiled for the CPU, and the
# step captured as a graph and replayed, as on a GPU.

def _regression(loss: str, n: int = 64, f: int = 12, k: int = 3, seed: int = 0):
    """Features, and targets of ``loss``'s kind: float targets, or class labels (the label losses)."""
    r = np.random.default_rng(seed)
    x = r.normal(size=(n, f))
    score = x @ r.normal(size=(f, k)) * 0.5
    targets = {"binary-cross-entropy": (score > 0).astype(float), "squared-error": score,
               "poisson": r.poisson(np.exp(score / 2)).astype(float), "cross-entropy": score.argmax(1)}[loss]
    return x, targets


@pytest.mark.parametrize("loss, labels, optimizer", [
    ("cross-entropy", True, "nesterov"), ("cross-entropy", True, "classical-momentum"),
    ("binary-cross-entropy", False, "nesterov"), ("binary-cross-entropy", True, "classical-momentum"),
    ("squared-error", False, "nesterov"), ("poisson", False, "classical-momentum")])
def test_whole_batch_sklearn_momentum_with_lr_factor_is_the_reference_update(any_backend, loss, labels, optimizer):
    """A batch of the whole set in order: each epoch is one step of scikit-learn's momentum (Nesterov's or
    classical) on model.loss_and_grads's gradient of the mean loss, at the rate times the lr_factor set before
    it (as 'invscaling' and 'adaptive' set it). On the GPU the fused kernels run it, replayed from a captured
    graph, for labels and float targets alike."""
    x, targets = _regression(loss)
    if labels and loss != "cross-entropy":
        targets = targets.argmax(1)  # class labels for a loss of float targets: one-hot inside
    y = np.eye(3)[targets] if targets.ndim == 1 else targets
    cfg = resolve(backend=any_backend.name, hidden=(8,), batch_size=64, epochs=4, optimizer=optimizer, lr=0.05,
                  momentum=0.8, weight_decay=1e-3, loss=loss, activation="tanh", dtype="float64", schedule="constant")
    params = model.init_params(np.random.default_rng(1), [12, 8, 3], "xavier", True, np.float64)
    trainer = VectorizedTrainer(cfg, any_backend, [p.copy() for p in params], np.random.default_rng(2), x, targets)
    assert trainer.whole
    state = optim.init_state(params, optimizer, np)
    for t, factor in enumerate((1.0, 1.0, 0.5, 0.1), 1):
        trainer.lr_factor = factor
        loss_sum, hits = trainer.train_epoch()
        mean_loss, grads = model.loss_and_grads(params, x, y, "tanh", loss, np)
        out, _ = model.forward(params, x, "tanh", np)
        assert float(to_host(loss_sum)) / 64 == pytest.approx(mean_loss, rel=1e-12)
        assert int(to_host(hits)) == int(losses.correct_count(out, y, loss))
        optim.update(params, grads, state, cfg, optim.step_scalars(cfg, t, 0.05 * factor), np)
    for a, b in zip(trainer.params, params):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-10, atol=1e-12)
    if any_backend.on_gpu:  # the fused kernels, replayed from a graph from the second epoch: lr_factor reached them
        assert trainer._fused is not None and trainer.steps.status == "on"


@pytest.mark.parametrize("loss", ["binary-cross-entropy", "squared-error", "poisson"])
def test_float_targets_train_alike_on_every_backend(any_backend, loss):
    """Mini-batches of shuffled float targets (a short last batch) with a validation split and dropout: every
    backend trains numpy's model, and the validation targets are the held-out rows' own."""
    x, targets = _regression(loss, n=150)
    cfg = resolve(backend=any_backend.name, hidden=(16,), batch_size=32, optimizer="adam", lr=1e-2, loss=loss,
                  dropout=0.2, val_split=0.2, dtype="float64")

    def run(be):
        params = model.init_params(np.random.default_rng(1), [12, 16, 3], "xavier", True, np.float64)
        trainer = VectorizedTrainer(cfg, be, params, np.random.default_rng(2), x, targets)
        losses = [float(to_host(trainer.train_epoch()[0])) for _ in range(3)]
        return trainer, losses

    got, want = run(any_backend), run(get_backend("numpy"))
    assert got[1] == pytest.approx(want[1], rel=1e-10) and want[1][-1] < want[1][0]
    for a, b in zip(got[0].params, want[0].params):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-10, atol=1e-12)
    held_out = np.random.default_rng(2).permutation(150)[:30]
    np.testing.assert_array_equal(to_host(got[0].val[1]), targets[held_out])
    np.testing.assert_array_equal(to_host(got[0].val[0]), x[held_out])


@pytest.mark.parametrize("batch_size", [32, 150])
def test_a_net_without_hidden_layer_trains_alike_on_every_backend(any_backend, batch_size):
    """hidden=() (scikit-learn's hidden_layer_sizes=()): one (W, b) layer, softmax regression, trained in
    shuffled mini-batches with a short last one, or as one whole-set batch; every backend trains numpy's."""
    x, labels = _regression("cross-entropy", n=150)
    cfg = resolve(backend=any_backend.name, hidden=(), batch_size=batch_size, optimizer="nesterov", lr=0.05,
                  dtype="float64", epochs=3)

    def run(be):
        params = model.init_params(np.random.default_rng(1), [12, 3], "xavier", True, np.float64)
        trainer = VectorizedTrainer(cfg, be, params, np.random.default_rng(2), x, labels)
        return trainer, [float(to_host(trainer.train_epoch()[0])) for _ in range(3)]

    got, want = run(any_backend), run(get_backend("numpy"))
    assert len(got[0].params) == 2 and want[1][-1] < want[1][0]
    assert got[1] == pytest.approx(want[1], rel=1e-10)
    for a, b in zip(got[0].params, want[0].params):
        np.testing.assert_allclose(to_host(a), b, rtol=1e-10, atol=1e-12)


def test_targets_of_the_wrong_kind_are_refused():
    x, y = _regression("squared-error")
    cfg = resolve(backend="numpy", hidden=(4,), loss="squared-error")
    params = model.init_params(np.random.default_rng(1), [12, 4, 3], "xavier", True, np.float32)
    with pytest.raises(ValueError, match="1-D targets are class labels and must be integers"):
        VectorizedTrainer(cfg, get_backend("numpy"), params, np.random.default_rng(0), x, y[:, 0])
    with pytest.raises(ValueError, match=r"do not fit 64 samples and 3 outputs: pass \(64,\) class labels or "):
        VectorizedTrainer(cfg, get_backend("numpy"), params, np.random.default_rng(0), x, y[:, :2])


@pytest.mark.parametrize("backend", ["numpy", "numba"])
@pytest.mark.parametrize("density, batch_size", [(0.05, 16), (0.4, 16), (0.05, 200)])
@pytest.mark.parametrize("kind", ["csr", "csc"])
def test_a_sparse_training_set_trains_as_its_dense_array(backend, density, batch_size, kind):
    """CSR or CSC, sparse products (few nonzeros) or densified batches, mini-batches or the whole set: the same
    model as from the dense array, and the validation rows stay sparse."""
    sparse = pytest.importorskip("scipy.sparse")
    x = sparse.random(120, 40, density=density, format=kind, random_state=0, dtype=np.float64)
    labels = np.random.default_rng(0).integers(0, 4, 120)
    cfg = resolve(backend=backend, hidden=(8,), batch_size=batch_size, optimizer="momentum", lr=0.1, epochs=2,
                  val_split=0.1, dtype="float64")

    def run(inputs):
        params = model.init_params(np.random.default_rng(1), [40, 8, 4], "xavier", True, np.float64)
        trainer = VectorizedTrainer(cfg, get_backend(backend), params, np.random.default_rng(2), inputs, labels)
        return trainer, [float(trainer.train_epoch()[0]) for _ in range(2)]

    (got, got_loss), (want, want_loss) = run(x), run(x.toarray())
    assert sparse.issparse(got.inputs) and sparse.issparse(got.val[0]) and got.whole == (batch_size == 200)
    assert got_loss == pytest.approx(want_loss, rel=1e-12)
    for a, b in zip(got.params, want.params):
        np.testing.assert_allclose(a, b, rtol=1e-12, atol=1e-14)
    np.testing.assert_array_equal(got.val[0].toarray(), want.val[0])


@pytest.mark.standin
def test_a_sparse_training_set_on_the_gpu_says_how_to_fix_it():
    sparse = pytest.importorskip("scipy.sparse")
    from cuda_standin import activate

    from mnist_accel.errors import ConfigError

    params = model.init_params(np.random.default_rng(1), [40, 8, 4], "xavier", True, np.float32)
    with activate(), pytest.raises(ConfigError, match=r"^a scipy.sparse training set trains on the CPU backends "
                                                      r"only: use backend 'numpy' or 'numba', or pass a dense"):
        VectorizedTrainer(resolve(backend="cuda", hidden=(8,)), get_backend("cuda"), params,
                          np.random.default_rng(0), sparse.random(10, 40, format="csr"), np.zeros(10, int))
