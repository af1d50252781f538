"""The training CLI: bad arguments give one line and exit 2, before any work; outputs are complete."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mnist_accel.cli.train import main

BAD = [
    (["--epochs", "0"], "--epochs must be at least 1"),
    (["--epochs", "two"], "invalid int value"),
    (["--lr", "nan"], "--lr must be a finite number"),
    (["--lr", "-0.1"], "--lr must be a finite number"),
    (["--dropout", "1"], "[0, 1)"),
    (["--hidden", "0"], "--hidden needs one or more positive widths"),
    (["--batch-size", "-4"], "--batch-size must be at least 1"),
    (["--train-samples", "0"], "--train-samples must be at least 1"),
    (["--train-samples", "70000", "--epochs", "1"], "exceeds the 60000 training images"),
    (["--backend", "gpu"], "invalid choice"),
    (["--backend", "cuda"], "--backend cuda cannot run"),
    (["--path", "loop", "--batch-size", "32"], "the loop path trains one sample at a time"),
    (["--path", "loop", "--optimizer", "adam"], "use --optimizer sgd"),
    (["--patience", "3"], "needs a validation split"),
    (["--val-split", "1.5"], "--val-split must be in [0, 1)"),
    (["--weight-decay", "inf"], "--weight-decay must be finite"),
    (["--data-dir", "/nonexistent/mnist"], "is not a directory"),
    (["--metrics-json", "/nonexistent/dir/m.json"], "does not exist"),
    (["--resume", "/nonexistent/ck.npz"], "--resume /nonexistent/ck.npz: no such file"),
    (["--preset", "fast"], "invalid choice"),
]


@pytest.mark.parametrize("argv, message", BAD, ids=[" ".join(a) for a, _ in BAD])
def test_bad_arguments_exit_2_with_one_line(argv, message, capsys, mnist):
    if argv == ["--backend", "cuda"]:
        from mnist_accel.backends.selection import cuda_unavailable_reason

        if cuda_unavailable_reason() is None:
            pytest.skip("a GPU is usable here")
    with pytest.raises(SystemExit) as exit_info:
        raise SystemExit(main(argv))
    assert exit_info.value.code == 2
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and message in lines[0] and "Traceback" not in captured.err
    assert captured.out == ""


def test_save_to_directory_is_refused(tmp_path, capsys):
    assert main(["--save", str(tmp_path), "--epochs", "1"]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_real_process_error_has_no_traceback():
    proc = subprocess.run([sys.executable, "-m", "mnist_accel.train", "--epochs", "0"], capture_output=True,
                          text=True, env={**os.environ, "PYTHONWARNINGS": "ignore"})
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.strip() == "mnist_accel.train: error: --epochs must be at least 1, got 0"


def test_missing_data_is_a_runtime_error(tmp_path, monkeypatch, capsys):
    monkeypatch.delenv("MNIST_ACCEL_DATA")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    monkeypatch.setenv("MNIST_ACCEL_MIRRORS", "http://127.0.0.1:9/")
    assert main(["--epochs", "1", "--quiet"]) == 1
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and "MNIST_ACCEL_DATA" in err


def test_metrics_json_and_model_file(tmp_path, mnist, capsys):
    metrics, saved = tmp_path / "m.json", tmp_path / "model.npz"
    argv = ["--path", "loop", "--backend", "numba", "--epochs", "2", "--train-samples", "500", "--test-samples",
            "200", "--hidden", "32", "--metrics-json", str(metrics), "--save", str(saved)]
    assert main(argv) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("epoch   1/2") and out[-1].startswith("numba/loop: test accuracy")
    m = json.loads(metrics.read_text())
    assert set(m) >= {"backend", "path", "config", "dataset", "epochs", "test_accuracy", "train_seconds",
                      "compile_seconds", "device"}
    assert m["path"] == "loop" and m["config"]["hidden"] == [32] and m["dataset"]["official_mnist"]
    assert [e["epoch"] for e in m["epochs"]] == [0, 1]
    assert set(m["epochs"][0]) == {"epoch", "train_loss", "train_accuracy", "test_loss", "test_accuracy", "seconds"}
    assert m["train_seconds"] == pytest.approx(sum(e["seconds"] for e in m["epochs"]))
    from mnist_accel.persist import load_model

    params, meta = load_model(saved)
    assert [p.shape for p in params] == [(784, 32), (32,), (32, 10), (10,)] and meta["activation"] == "relu"
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]


def test_quiet_prints_only_the_summary(capsys, mnist):
    assert main(["--preset", "tutorial", "--backend", "numba", "--epochs", "1", "--quiet"]) == 0
    out = capsys.readouterr().out.strip().splitlines()
    assert len(out) == 1 and out[0].startswith("numba/loop")
