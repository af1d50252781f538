"""Model files to ONNX: models of every preset, trained by the real training command (``--save`` .npz, then
exported; and ``--save MODEL.onnx`` directly), and files written by the estimators' ``save``: ONNX Runtime
gives on all 10,000 MNIST test images what ``predict`` and ``predict_proba`` give, within 1e-5; the metadata
says where the model came from."""

from __future__ import annotations

import json

import numpy as np
import pytest

onnx = pytest.importorskip("onnx")

from mnist_accel import model
from mnist_accel.cli.train import main as train
from mnist_accel.errors import DataError
from mnist_accel.onnx_export.saved import export_file
from mnist_accel.persist import load_model
from mnist_accel.presets import PRESETS

TOLERANCE = 1e-5
BRIEF = ["--epochs", "1", "--train-samples", "3000", "--test-samples", "500", "--quiet"]


def _predicted(params, meta, pixels):
    """What ``python -m mnist_accel.predict`` computes for these pixels (in the model's own dtype)."""
    return model.probabilities(params, pixels.astype(params[0].dtype), meta["activation"], np, len(meta["classes"]))


@pytest.fixture(scope="module")
def trained(tmp_path_factory, mnist):
    """One briefly trained model file per preset, from the training command."""
    folder = tmp_path_factory.mktemp("presets")
    paths = {}
    for preset in PRESETS:
        paths[preset] = folder / f"{preset}.npz"
        assert train(["--preset", preset, *BRIEF, "--save", str(paths[preset])]) == 0
    return paths


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_every_preset_agrees_on_the_test_set(preset, trained, tmp_path, test_pixels, onnx_run):
    params, meta = load_model(trained[preset])
    onx = export_file(trained[preset], tmp_path / "model.onnx")
    assert onnx.load(tmp_path / "model.onnx") == onx
    onnx.checker.check_model(onx, full_check=True)
    got = onnx_run(onx, test_pixels.astype(np.float32))[0]
    assert np.abs(got - _predicted(params, meta, test_pixels)).max() < TOLERANCE
    props = {p.key: p.value for p in onx.metadata_props}
    config = json.loads(props["training_config"])
    assert props["dataset"] == "mnist" and json.loads(props["classes"]) == list(range(10))
    assert config["activation"] == meta["activation"] and props["loss"] == config["loss"] == meta["loss"]
    assert config["bias"] == PRESETS[preset].get("bias", config["bias"]) and "pixel / 255" in props["input"]
    assert props["trained_dtype"] == meta["dtype"]


def test_save_onnx_from_the_training_command(trained, tmp_path, test_pixels, onnx_run):
    """--save MODEL.onnx writes the graph of the model --save MODEL.npz writes (the runs are seeded)."""
    for preset in ("tutorial", "keras-mlp"):
        path = tmp_path / f"{preset}.onnx"
        assert train(["--preset", preset, *BRIEF, "--save", str(path)]) == 0
        params, meta = load_model(trained[preset])
        got = onnx_run(onnx.load(path), test_pixels.astype(np.float32))[0]
        assert np.abs(got - _predicted(params, meta, test_pixels)).max() < TOLERANCE
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keras-mlp.onnx", "tutorial.onnx"]  # no temporaries


def test_estimator_files(tmp_path, mnist, test_pixels, onnx_run):
    """Files of MLPClassifier.save (multiclass, binary, multilabel) and MLPRegressor.save."""
    mnist_accel = pytest.importorskip("mnist_accel")
    pytest.importorskip("sklearn")
    X, y = test_pixels[:3000].astype(np.float32), mnist.test_labels[:3000]
    estimators = [mnist_accel.MLPClassifier((24,), max_iter=2, random_state=0).fit(X, y),
                  mnist_accel.MLPClassifier((24,), activation="tanh", max_iter=2, random_state=0).fit(X, y == 3),
                  mnist_accel.MLPClassifier((24,), max_iter=2, random_state=0).fit(X, np.stack([y > 4, y % 2], 1))]
    if hasattr(mnist_accel, "MLPRegressor"):
        estimators.append(mnist_accel.MLPRegressor(hidden_layer_sizes=(24,), max_iter=2, random_state=0)
                          .fit(X, y.astype(np.float32)))
    for i, est in enumerate(estimators):
        est.save(tmp_path / f"{i}.npz")
        got = onnx_run(export_file(tmp_path / f"{i}.npz", tmp_path / f"{i}.onnx"), test_pixels.astype(np.float32))[0]
        want = est.predict_proba(test_pixels) if hasattr(est, "predict_proba") else est.predict(test_pixels)
        assert np.abs(got - want.reshape(got.shape)).max() < (TOLERANCE if hasattr(est, "predict_proba") else 1e-4)


def test_a_file_that_is_not_a_model(tmp_path):
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a readable mnist-accel model"):
        export_file(tmp_path / "junk.npz", tmp_path / "out.onnx")
    assert not (tmp_path / "out.onnx").exists()
