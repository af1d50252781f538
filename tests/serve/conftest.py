"""The drawing pad's fixtures: a model trained well enough to read drawn digits (the default preset, two
epochs on the full training set, once a session), and a pad server on a free port, serving from a thread."""

from __future__ import annotations

import threading

import pytest

from mnist_accel.persist import save_model
from mnist_accel.serve.predictor import Predictor
from mnist_accel.serve.server import make_server


@pytest.fixture(scope="session")
def pad_model(tmp_path_factory, mnist):
    from mnist_accel import fit, resolve

    cfg = resolve("default", epochs=2)
    result = fit(cfg, mnist)
    assert result.test_accuracy > 0.96  # what drawn digits need; the preset's second epoch gives about 97%
    path = tmp_path_factory.mktemp("pad") / "model.npz"
    save_model(path, result.params, {"activation": cfg.activation, "loss": cfg.loss, "dtype": cfg.dtype,
                                     "classes": list(range(10)), "normalisation": "pixels / 255"})
    return path


@pytest.fixture(scope="session")
def pad_server(pad_model):
    """A running server (``.url``) for the trained model; stopped after the session."""
    server = make_server(Predictor.load(pad_model), "127.0.0.1", 0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()
    thread.join(5)
