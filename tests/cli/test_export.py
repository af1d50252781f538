"""The export command: ``python -m mnist_accel.export MODEL.npz MODEL.onnx`` writes a graph ONNX Runtime runs;
every mistake is one line, with exit code 2 (arguments, the onnx package missing) or 1 (a model file that
cannot be read), and no output file is left behind."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from mnist_accel import model
from mnist_accel.cli.export import main as export
from mnist_accel.persist import save_model


@pytest.fixture
def model_file(tmp_path):
    params = model.init_params(np.random.default_rng(0), [784, 16, 10], "he", True, np.float32)
    path = tmp_path / "model.npz"
    save_model(path, params, {"activation": "relu", "loss": "cross-entropy", "dtype": "float32",
                              "classes": list(range(10)), "normalisation": "pixels / 255"})
    return path, params


def test_python_dash_m_writes_a_runnable_graph(model_file, tmp_path):
    path, params = model_file
    done = subprocess.run([sys.executable, "-m", "mnist_accel.export", str(path), str(tmp_path / "m.onnx")],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"wrote {tmp_path / 'm.onnx'}: 2 layers, 784 inputs -> 10 probabilities, " \
        "float32, opset 17"
    x = np.random.default_rng(1).random((5, 784)).astype(np.float32)
    session = ort.InferenceSession(str(tmp_path / "m.onnx"), providers=["CPUExecutionProvider"])
    got = session.run(["probabilities"], {"image": x})[0]
    assert np.abs(got - model.probabilities(params, x, "relu", np, 10)).max() < 1e-5


def _fails(args, capsys) -> tuple[int, str]:
    code = export([str(a) for a in args])
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    return code, err


def test_bad_arguments(model_file, tmp_path, capsys):
    path, _ = model_file
    for args, message in (([tmp_path / "missing.npz", tmp_path / "m.onnx"], "missing.npz: no such file"),
                          ([path, tmp_path / "nowhere" / "m.onnx"], "nowhere does not exist"),
                          ([path, tmp_path], "is a directory"),
                          ([path, path], "is the model file itself"),
                          ([tmp_path / "m.onnx", tmp_path / "n.onnx"], "no such file")):
        code, err = _fails(args, capsys)
        assert code == 2 and err.startswith("mnist_accel.export: error: ") and message in err, err
    (tmp_path / "m.onnx").write_bytes(b"")
    code, err = _fails([tmp_path / "m.onnx", tmp_path / "n.onnx"], capsys)
    assert code == 2 and "is an ONNX file already" in err


def test_unreadable_model(tmp_path, capsys):
    (tmp_path / "junk.npz").write_bytes(b"PK\x03\x04 not really")
    code, err = _fails([tmp_path / "junk.npz", tmp_path / "m.onnx"], capsys)
    assert code == 1 and "junk.npz: not a readable mnist-accel model" in err
    save_model(tmp_path / "odd.npz", [np.ones((784, 10)), np.ones(10)], {"activation": "softplus"})
    code, err = _fails([tmp_path / "odd.npz", tmp_path / "m.onnx"], capsys)
    assert code == 1 and "unknown activation 'softplus'" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["junk.npz", "odd.npz"]  # nothing half-written


def test_unwritable_output(model_file, tmp_path, capsys, monkeypatch):
    path, _ = model_file
    import mnist_accel.persist as persist

    real_access = persist.os.access
    monkeypatch.setattr(persist.os, "access", lambda p, mode: False if p == tmp_path / "ro" else real_access(p, mode))
    (tmp_path / "ro").mkdir()
    code, err = _fails([path, tmp_path / "ro" / "m.onnx"], capsys)  # a read-only folder (root writes anywhere)
    assert code == 2 and "folder" in err and "is not writable" in err


def test_a_failed_write_leaves_nothing(model_file, tmp_path, capsys, monkeypatch):
    path, _ = model_file
    import mnist_accel.onnx_export.saved as saved
    from mnist_accel.persist import atomic_write

    def full_disk(target, write, binary=True):  # the real atomic write, of a file the disk has no room for
        def half(f):
            f.write(b"half a model")
            raise OSError(28, "No space left on device")

        atomic_write(target, half, binary)

    monkeypatch.setattr(saved, "atomic_write", full_disk)
    code, err = _fails([path, tmp_path / "m.onnx"], capsys)
    assert code == 1 and "No space left" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.npz"]


def test_without_the_onnx_package(model_file, tmp_path, capsys, monkeypatch):
    path, _ = model_file
    monkeypatch.setitem(sys.modules, "onnx", None)  # an import of onnx now fails, as where it is not installed
    code, err = _fails([path, tmp_path / "m.onnx"], capsys)
    assert code == 2 and "pip install 'mnist-accel[onnx]'" in err


def test_the_training_command_checks_for_onnx_before_training(tmp_path, capsys, monkeypatch):
    from mnist_accel.cli.train import main as train

    monkeypatch.setitem(sys.modules, "onnx", None)
    code = train(["--epochs", "1", "--save", str(tmp_path / "m.onnx")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and err.endswith("--save " + str(tmp_path / "m.onnx") + ": ONNX export needs the onnx "
                                      "package: pip install 'mnist-accel[onnx]'")
