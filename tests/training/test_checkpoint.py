"""Checkpoints: a resumed run ends bit-identical to an uninterrupted one; Ctrl-C (a real SIGINT to a
real process) saves the state; foreign or mismatched checkpoints are clear errors."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import numpy as np
import pytest

from mnist_accel.cli.train import main
from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError, DataError, TrainingInterrupted
from mnist_accel.persist import load_model, write_npz
from mnist_accel.training import checkpoint as ckpt
from mnist_accel.training.fit import fit

CONFIGS = {
    "vectorized": dict(backend="numba", train_samples=3000, test_samples=500, hidden=(32, 16), epochs=4,
                       batch_size=100, dropout=0.2, val_split=0.1, patience=3),
    "loop": dict(backend="numba", path="loop", train_samples=1500, test_samples=500, hidden=(24,), epochs=4,
                 dropout=0.5),
}


@pytest.mark.parametrize("name", CONFIGS)
def test_resumed_run_is_bit_identical(name, mnist, tmp_path):
    cfg = resolve(**CONFIGS[name])
    whole = fit(cfg, mnist)
    path = tmp_path / "ck.npz"

    def stop_after_two(record):
        if record["epoch"] == 1:
            raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted, match="after epoch 2"):
        fit(cfg, mnist, on_epoch=stop_after_two, checkpoint=path)
    resumed = fit(cfg, mnist, resume=path)
    assert [r["epoch"] for r in resumed.history] == [0, 1, 2, 3]
    assert [r["train_loss"] for r in resumed.history] == [r["train_loss"] for r in whole.history]
    for a, b in zip(resumed.params, whole.params):
        np.testing.assert_array_equal(a, b)


def test_checkpoint_holds_the_full_state(mnist, tmp_path):
    path = tmp_path / "ck.npz"
    fit(resolve(**{**CONFIGS["vectorized"], "epochs": 2}), mnist, checkpoint=path)
    arrays, meta = ckpt.load(path)
    assert len(meta["history"]) == 2 and meta["trainer"]["epoch"] == 2 and meta["trainer"]["step"] > 0
    assert meta["config"]["hidden"] == [32, 16] and meta["trainer_arrays"] == 6 * 3  # params, Adam's m and v
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_foreign_and_mismatched_checkpoints(mnist, tmp_path):
    np.savez(tmp_path / "foreign.npz", meta=np.frombuffer(b'{"format": "x"}', np.uint8))
    with pytest.raises(DataError, match="not an mnist-accel checkpoint"):
        ckpt.load(tmp_path / "foreign.npz")
    (tmp_path / "garbage.npz").write_bytes(b"garbage")
    with pytest.raises(DataError, match="not a readable"):
        ckpt.load(tmp_path / "garbage.npz")
    path = tmp_path / "ck.npz"
    fit(resolve(**{**CONFIGS["vectorized"], "epochs": 1}), mnist, checkpoint=path)
    with pytest.raises(ConfigError, match=r"different run: hidden=\[32, 16\]"):
        fit(resolve(**{**CONFIGS["vectorized"], "hidden": (8,)}), mnist, resume=path)


def test_resume_refuses_changed_options(tmp_path, capsys, mnist):
    path = tmp_path / "ck.npz"
    fit(resolve(**{**CONFIGS["vectorized"], "epochs": 1}), mnist, checkpoint=path)
    assert main(["--resume", str(path), "--lr", "0.1"]) == 2
    assert "drop --lr" in capsys.readouterr().err


def _train(args, cwd, **kw):
    return subprocess.Popen([sys.executable, "-m", "mnist_accel.train", *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env={**os.environ, "PYTHONUNBUFFERED": "1"}, **kw)


@pytest.mark.parametrize("with_flag", [True, False])
def test_sigint_to_a_real_process_saves_and_resumes(with_flag, tmp_path, mnist):
    common = ["--epochs", "3", "--train-samples", "30000", "--test-samples", "500", "--schedule", "constant",
              "--backend", "numba"]
    ck = tmp_path / "ck.npz"
    proc = _train([*common, *(["--checkpoint", str(ck)] if with_flag else [])], tmp_path)
    first = proc.stdout.readline()
    assert first.startswith("epoch   1/3"), first + proc.stderr.read()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=120)
    saved = ck if with_flag else tmp_path / "mnist_accel-interrupted.npz"
    if proc.returncode == 0:
        pytest.skip("training finished before the signal arrived")
    assert proc.returncode == 130 and "Traceback" not in err
    assert len(err.strip().splitlines()) == 1 and f"--resume {saved.name}" in err.replace(str(tmp_path) + "/", "")
    _, meta = ckpt.load(saved)
    assert 1 <= len(meta["history"]) <= 2
    resumed, whole = tmp_path / "resumed.npz", tmp_path / "whole.npz"
    assert main(["--resume", str(saved), "--save", str(resumed), "--quiet"]) == 0
    assert main([*common, "--save", str(whole), "--quiet"]) == 0
    for a, b in zip(load_model(resumed)[0], load_model(whole)[0]):
        np.testing.assert_array_equal(a, b)


def test_a_checkpoint_from_another_version_is_refused(mnist, tmp_path, capsys):
    path = tmp_path / "ck.npz"
    fit(resolve(**{**CONFIGS["vectorized"], "epochs": 1}), mnist, checkpoint=path)
    arrays, meta = ckpt.load(path)
    old = tmp_path / "old.npz"
    write_npz(old, ckpt.FORMAT, arrays, {**meta, "version": "0.0.1"})
    with pytest.raises(ConfigError, match=r"old.npz was written by mnist-accel 0.0.1, and this is "):
        ckpt.load(old)
    assert main(["--resume", str(old)]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "written by mnist-accel 0.0.1" in err and "without --resume" in err
    unknown = {k: v for k, v in meta.items() if k != "version"}
    write_npz(old, ckpt.FORMAT, arrays, unknown)
    with pytest.raises(ConfigError, match="written by another version of mnist-accel"):
        fit(resolve(**{**CONFIGS["vectorized"], "epochs": 1}), mnist, resume=old)


def test_runs_interrupted_in_one_folder_keep_their_own_state(mnist, tmp_path):
    """Without --checkpoint, a second interrupted run does not overwrite the first's state; a run resumed
    from that state and interrupted again saves over it."""
    base = tmp_path / "mnist_accel-interrupted.npz"

    def stop_at(epoch):
        def on_epoch(record):
            if record["epoch"] == epoch:
                raise KeyboardInterrupt
        return on_epoch

    saved = []
    for seed, epoch in ((1, 0), (2, 1)):
        cfg = resolve(backend="numba", train_samples=600, test_samples=100, hidden=(8,), epochs=3, seed=seed)
        with pytest.raises(TrainingInterrupted) as info:
            fit(cfg, mnist, on_epoch=stop_at(epoch), interrupt_path=base)
        saved.append(str(info.value).rsplit("--resume ", 1)[1])
    assert saved == [str(base), str(tmp_path / "mnist_accel-interrupted-2.npz")]
    assert [len(ckpt.load(p)[1]["history"]) for p in saved] == [1, 2]
    assert ckpt.load(saved[0])[1]["config"]["seed"] == 1
    cfg = resolve(backend="numba", train_samples=600, test_samples=100, hidden=(8,), epochs=3, seed=1)
    with pytest.raises(TrainingInterrupted, match=f"--resume {base}$"):
        fit(cfg, mnist, on_epoch=stop_at(1), resume=base, interrupt_path=base)
    assert len(ckpt.load(base)[1]["history"]) == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mnist_accel-interrupted-2.npz",
                                                          "mnist_accel-interrupted.npz"]


def test_a_failed_interrupt_save_removes_only_its_own_placeholder(mnist, tmp_path, monkeypatch):
    """If saving the interrupted state fails (a full disk), the empty file claimed for it goes, but the
    checkpoint the run resumed from, which the failed save never touched, stays."""
    base = tmp_path / "mnist_accel-interrupted.npz"
    cfg = resolve(backend="numba", train_samples=600, test_samples=100, hidden=(8,), epochs=3)

    def stop(record):
        raise KeyboardInterrupt

    with pytest.raises(TrainingInterrupted):
        fit(cfg, mnist, on_epoch=stop, interrupt_path=base)
    monkeypatch.setattr(ckpt, "save", lambda *a: (_ for _ in ()).throw(OSError("disk full")))
    for resume in (base, None):
        with pytest.raises(OSError, match="disk full"):
            fit(cfg, mnist, on_epoch=stop, resume=resume, interrupt_path=base)
    assert [p.name for p in tmp_path.iterdir()] == [base.name]
    assert len(ckpt.load(base)[1]["history"]) == 1


def test_claim_takes_the_first_free_name(tmp_path):
    """Each claim creates its file exclusively: the name, then ``-2``, ``-3``; the state a run resumed from is
    its own to overwrite, and is not created."""
    base = tmp_path / "run.npz"
    assert ckpt.claim(base, None) == (base, True) and base.exists() and base.stat().st_size == 0
    assert ckpt.claim(base, None) == (tmp_path / "run-2.npz", True)
    assert ckpt.claim(base, base) == (base, False)
    assert ckpt.claim(tmp_path / "other.npz", base) == (tmp_path / "other.npz", True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["other.npz", "run-2.npz", "run.npz"]
