"""fit(): divergence (NaN, or a loss that explodes and stays finite) stops the run and keeps the last sound
epoch; sizes that cannot fit are refused."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mnist_accel.cli.train import main
from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError, TrainingDiverged
from mnist_accel.trainers.vectorized import VectorizedTrainer
from mnist_accel.training.fit import fit

SMALL = dict(backend="numba", train_samples=3000, test_samples=500, hidden=(32,), epochs=3, batch_size=100,
             schedule="constant")  # so a 1-epoch run is the first epoch of a 3-epoch run


def test_divergence_keeps_the_last_finite_epoch(mnist, monkeypatch):
    clean = fit(resolve(**{**SMALL, "epochs": 1}), mnist)
    original, calls = VectorizedTrainer.train_epoch, []

    def poisoned(self):
        calls.append(1)
        if len(calls) == 2:
            self.params[2][...] = np.float32(3e38)  # the second epoch's first step overflows
        return original(self)

    monkeypatch.setattr(VectorizedTrainer, "train_epoch", poisoned)
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 2 at step 1 .* kept is from epoch 1.* --lr") as info:
        fit(resolve(**SMALL), mnist)
    result = info.value.result
    assert len(result.history) == 1 and len(calls) == 2
    for kept, reference in zip(result.params, clean.params):
        np.testing.assert_array_equal(kept, reference)


def test_a_finite_explosion_is_divergence_and_keeps_the_last_sound_epoch(mnist, monkeypatch):
    clean = fit(resolve(**{**SMALL, "epochs": 1}), mnist)
    original, calls = VectorizedTrainer.train_epoch, []

    def blown_up(self):
        calls.append(1)
        if len(calls) == 2:
            self.params[2][...] *= np.float32(1e4)  # logits in the thousands: huge losses, all finite in float32
        return original(self)

    monkeypatch.setattr(VectorizedTrainer, "train_epoch", blown_up)
    with pytest.raises(TrainingDiverged, match=r"diverged in epoch 2 \(its mean training loss .* is over 100 times "
                                               r"the untrained model's .*kept is from epoch 1.* --lr") as info:
        fit(resolve(**SMALL), mnist)
    assert "NaN" not in str(info.value)
    result = info.value.result
    assert len(result.history) == 1 and len(calls) == 2
    for kept, reference in zip(result.params, clean.params):
        np.testing.assert_array_equal(kept, reference)


def test_cli_finite_divergence_exits_1_and_saves_nothing(mnist, tmp_path, capsys):
    out, metrics = tmp_path / "model.npz", tmp_path / "m.json"
    argv = ["--lr", "1e6", "--epochs", "2", "--train-samples", "2000", "--test-samples", "500", "--save", str(out),
            "--metrics-json", str(metrics), "--backend", "numba"]
    assert main(argv) == 1
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err and captured.out == ""
    assert "diverged in epoch 1 (its mean training loss" in err and "smaller --lr than 1e+06" in err
    assert not out.exists()  # the first epoch already left the range: there is no sound model to save
    assert json.loads(metrics.read_text())["epochs"] == []


@pytest.mark.parametrize("blow_up", ["nan", "finite"])
def test_cli_divergence_after_a_sound_epoch_saves_that_epoch(blow_up, mnist, tmp_path, monkeypatch, capsys):
    """NaN and a finite explosion end alike: one line, exit 1, --save and --checkpoint hold epoch 1."""
    from mnist_accel.persist import load_model
    from mnist_accel.training import checkpoint as ckpt

    argv = ["--backend", "numba", "--train-samples", "3000", "--test-samples", "500", "--hidden", "32",
            "--batch-size", "100", "--schedule", "constant", "--quiet"]
    clean = tmp_path / "clean.npz"
    assert main([*argv, "--epochs", "1", "--save", str(clean)]) == 0
    capsys.readouterr()
    original, calls = VectorizedTrainer.train_epoch, []

    def poisoned(self):
        calls.append(1)
        if len(calls) == 2:
            self.params[2][...] = np.float32(3e38) if blow_up == "nan" else self.params[2] * np.float32(1e4)
        return original(self)

    monkeypatch.setattr(VectorizedTrainer, "train_epoch", poisoned)
    model, state = tmp_path / "model.npz", tmp_path / "state.npz"
    assert main([*argv, "--epochs", "3", "--save", str(model), "--checkpoint", str(state)]) == 1
    captured = capsys.readouterr()
    err = captured.err.strip().splitlines()
    assert len(err) == 1 and captured.out == "" and "Traceback" not in captured.err
    assert err[0].startswith("mnist_accel.train: error: training diverged in epoch 2")
    assert ("NaN or infinite" in err[0]) == (blow_up == "nan") and "the model kept is from epoch 1" in err[0]
    for kept, reference in zip(load_model(model)[0], load_model(clean)[0], strict=True):
        np.testing.assert_array_equal(kept, reference)
    assert len(ckpt.load(state)[1]["history"]) == 1  # resuming starts again from the sound epoch


@pytest.mark.parametrize("argv", [
    ["--path", "loop", "--lr", "2", "--loss", "mse", "--hidden", "32"],
    ["--lr", "5", "--loss", "mse", "--optimizer", "sgd", "--activation", "tanh"],
])
def test_cli_divergence_exits_1_with_one_line(argv, mnist, tmp_path, capsys):
    out = tmp_path / "model.npz"
    assert main([*argv, "--epochs", "2", "--train-samples", "3000", "--save", str(out), "--quiet"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "diverged in epoch 1" in err and "smaller --lr" in err
    assert not out.exists()  # no epoch finished: nothing is saved


def test_model_too_large_is_refused_before_allocating(mnist):
    with pytest.raises(ConfigError, match="GiB free"):
        fit(resolve(hidden=(40_000_000,), epochs=1), mnist)


def test_target_accuracy_stops_at_the_first_epoch_that_reaches_it(mnist):
    cfg = resolve(**{**SMALL, "epochs": 8, "val_split": 0.2})
    full = fit(cfg, mnist)
    val = [r["val_accuracy"] for r in full.history]
    target = sorted(val)[len(val) // 2]  # some epoch reaches it, and probably not the first
    first = next(i for i, v in enumerate(val) if v >= target)
    result = fit(cfg.replace(target_accuracy=target), mnist)
    assert len(result.history) == first + 1 and result.history == [
        {**r, "seconds": result.history[i]["seconds"]} for i, r in enumerate(full.history[:first + 1])]
    assert result.seconds_to_target == result.train_seconds and not result.stopped_early
    assert result.test_accuracy == full.history[first]["test_accuracy"]  # that epoch's model, kept
    unreached = fit(cfg.replace(epochs=2, target_accuracy=1.0), mnist)
    assert len(unreached.history) == 2 and unreached.seconds_to_target is None


def test_target_accuracy_needs_a_validation_split_and_says_when_it_was_reached(mnist, tmp_path, capsys):
    with pytest.raises(ConfigError, match="measured on a validation split, never on the test set"):
        fit(resolve(**SMALL, target_accuracy=0.9), mnist)
    assert main(["--backend", "numba", "--train-samples", "3000", "--test-samples", "500", "--epochs", "5",
                 "--val-split", "0.2", "--target-accuracy", "0.5", "--quiet",
                 "--metrics-json", str(tmp_path / "m.json")]) == 0
    out = capsys.readouterr().out
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert len(metrics["epochs"]) == 1 and metrics["seconds_to_target"] == metrics["train_seconds"]
    assert f"validation accuracy 0.5 reached after 1 epoch, {metrics['train_seconds']:.2f}s training" in out
    assert main(["--epochs", "1", "--target-accuracy", "0.5"]) == 2
    assert "--target-accuracy is measured on a validation split" in capsys.readouterr().err
