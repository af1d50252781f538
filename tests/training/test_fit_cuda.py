"""``fit(backend="cuda")`` and ``--backend cuda`` end to end, on the CuPy stand-in (tests/cuda_standin): the
GPU path's own code runs here, its CUDA C kernels compiled for the CPU, and must train the model the numpy
backend trains from the same seed. The loop path's Numba CUDA kernel runs in Numba's simulator, which has
to be chosen before Numba is imported, so those runs are subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from mnist_accel import model
from mnist_accel.backends.selection import get_backend
from mnist_accel.config import resolve
from mnist_accel.trainers.vectorized import VectorizedTrainer
from mnist_accel.training.fit import fit

pytestmark = pytest.mark.standin
TESTS = Path(__file__).resolve().parent.parent
SMALL = dict(train_samples=1024, test_samples=300, hidden=(48,), batch_size=100, epochs=2)  # a short last batch
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}  # relative to each parameter's largest entry


@pytest.fixture
def cuda():
    from cuda_standin import activate

    with activate() as xp:
        yield xp


def _agree(cfg, mnist):
    """fit on the stand-in GPU and on numpy from one seed; the parameters agree to the dtype's tolerance."""
    got, want = fit(cfg, mnist), fit(cfg.replace(backend="numpy"), mnist)
    assert got.backend == "cuda" and got.device == get_backend("cuda").device
    for a, b in zip(got.params, want.params):
        assert np.abs(a - b).max() <= TOLERANCE[cfg.dtype] * np.abs(b).max()
    assert [r["train_accuracy"] for r in got.history] == pytest.approx([r["train_accuracy"] for r in want.history],
                                                                       abs=2 / cfg.train_samples)
    return got


def test_auto_keeps_a_cpu_backend_while_cuda_is_the_standin(cuda):
    assert get_backend("cuda").xp is cuda and get_backend("auto").name in ("numba", "numpy")


@pytest.mark.parametrize("graphs", [True, False], ids=["graphs", "eager"])
@pytest.mark.parametrize("variant", [
    dict(dropout=0.3, optimizer="adam", lr=1e-3),
    dict(optimizer="sgd", lr=0.02, loss="mse", activation="tanh", dtype="float64"),
    dict(optimizer="momentum", lr=0.05, activation="sigmoid", weight_decay=1e-3, hidden=(32, 16), schedule="step"),
    dict(optimizer="adam", lr=1e-3, dtype="float64", dropout=0.2, val_split=0.1, bias=False),
], ids=["adam-dropout", "sgd-mse-tanh-f64", "momentum-2-layers", "adam-f64-val-nobias"])
def test_fit_on_cuda_trains_the_numpy_model(cuda, mnist, graphs, variant):
    cfg = resolve(backend="cuda", graphs=graphs, **{**SMALL, **variant}).replace(eps=1e-3)  # see test_vectorized
    assert _agree(cfg, mnist).graphs == ("on" if graphs else "off")


@pytest.mark.parametrize("hidden", [(16, 16), (2100,)], ids=["fused", "cublas"])
def test_the_full_batch_preset_on_cuda(cuda, mnist, hidden):
    """One step over the whole set in order (no gather): the fused kernels read the identity order, the
    cuBLAS step the features scaled once; both train the numpy model, with the lr drop inside the run."""
    cfg = resolve("full-batch", backend="cuda", train_samples=300, test_samples=100, hidden=hidden, epochs=4,
                  lr_drop_at=2, dtype="float64")
    _agree(cfg, mnist)


def test_a_step_too_large_for_the_fused_kernels_runs_on_cublas_and_says_why(cuda, mnist):
    """Past step_cuda.use_fused's rule the step is CuPy calls with cuBLAS GEMMs, which CuPy refuses during
    capture: the run goes on with direct steps and its graphs field says why."""
    cfg = resolve(backend="cuda", train_samples=300, test_samples=100, hidden=(2100,), batch_size=100,
                  epochs=1).replace(eps=1e-3)
    assert _agree(cfg, mnist).graphs.startswith("off (NotImplementedError: calling cuBLAS API during stream capture")


@pytest.mark.parametrize("hidden,nodes", [((256,), 5), ((64, 32), 8)])
def test_a_replayed_step_is_a_few_graph_nodes(cuda, mnist, hidden, nodes):
    """784-256-10 with dropout and Adam replays 5 kernels a step (3H + 2 for H hidden layers), where the
    composed step would be about 30 CuPy calls."""
    cfg = resolve(backend="cuda", hidden=hidden, batch_size=128, dropout=0.2, epochs=1)
    params = model.init_params(np.random.default_rng(0), [784, *hidden, 10], "he", True, np.float32)
    trainer = VectorizedTrainer(cfg, get_backend("cuda"), params, np.random.default_rng(1), mnist.train_images[:600],
                                mnist.train_labels[:600])
    trainer.train_epoch()
    assert trainer.steps.status == "on" and trainer.steps.graph.num_nodes == nodes


def test_one_epoch_matches_numpy_as_closely_as_numba(cuda, mnist):
    """The acceptance figure: 1,024 images, dropout and Adam, one epoch; relative 1e-5, the bound
    tests/trainers/test_vectorized.py holds the numba backend to."""
    cfg = resolve(backend="cuda", train_samples=1024, epochs=1, hidden=(128, 32), batch_size=100, dropout=0.3,
                  lr=1e-3).replace(eps=1e-3)
    _agree(cfg, mnist)


def test_early_stopping_restores_the_best_epoch_on_the_device(cuda, mnist):
    cfg = resolve(backend="cuda", train_samples=600, test_samples=200, epochs=12, hidden=(32,), lr=0.3,
                  optimizer="sgd", val_split=0.3, patience=1, schedule="constant", batch_size=50)
    got, want = fit(cfg, mnist), fit(cfg.replace(backend="numpy"), mnist)
    assert got.stopped_early and want.stopped_early and len(got.history) == len(want.history)
    assert got.test_accuracy == want.test_accuracy


def _run(*argv: str, sim: bool = False, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """A command under the stand-in, in a fresh process (and in Numba's CUDA simulator if ``sim``)."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")]),
           "PYTHONWARNINGS": "ignore"}
    if sim:
        env["NUMBA_ENABLE_CUDASIM"] = "1"
    return subprocess.run([sys.executable, "-m", "cuda_standin.run", *argv], capture_output=True, text=True,
                          env=env, cwd=cwd, timeout=600)


LOOP_SCRIPT = """
import json, sys
import numpy as np
from mnist_accel.config import resolve
from mnist_accel.training.fit import fit
cfg = resolve(preset="tutorial", backend="cuda", **json.loads(sys.argv[1]))
got, want = fit(cfg), fit(cfg.replace(backend="numpy"))
print(json.dumps({"backend": got.backend, "graphs": got.graphs,
                  "error": max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(got.params, want.params)),
                  "accuracy": [got.test_accuracy, want.test_accuracy]}))
"""


@pytest.mark.cudasim
@pytest.mark.parametrize("variant", [dict(), dict(activation="tanh", loss="cross-entropy", dropout=0.0, bias=True)],
                         ids=["tutorial", "tanh-xent-bias"])
def test_loop_path_on_cuda_trains_the_reference_model(variant):
    options = dict(train_samples=48, test_samples=50, hidden=(13,), epochs=2, **variant)
    proc = _run("-c", LOOP_SCRIPT, json.dumps(options), sim=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = json.loads(proc.stdout.strip().splitlines()[-1])
    assert out["backend"] == "cuda" and out["graphs"] == "off"
    assert out["error"] <= 1e-10 and out["accuracy"][0] == out["accuracy"][1]


def test_cli_backend_cuda_saves_checkpoints_resumes_on_another_backend_and_plots(tmp_path):
    options = ["--train-samples", "600", "--test-samples", "200", "--hidden", "32", "--batch-size", "100"]
    first = _run("-m", "mnist_accel.train", "--backend", "cuda", "--epochs", "2", *options, "--checkpoint", "ck.npz",
                 "--save", "m.npz", "--metrics-json", "m.json", "--plot", "p.png", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    summary = first.stdout.strip().splitlines()[-1]
    assert summary.startswith("cuda/vectorized: test accuracy") and "CUDA graphs on; hardest classes: " in summary
    metrics = json.loads((tmp_path / "m.json").read_text())
    assert metrics["backend"] == "cuda" and metrics["cuda_graphs"] == "on"
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    from mnist_accel.persist import load_model

    params, _ = load_model(tmp_path / "m.npz")
    assert [p.shape for p in params] == [(784, 32), (32,), (32, 10), (10,)]
    # the GPU's checkpoint continues on the CPU, and the CPU's back on the GPU
    resume = ["--checkpoint", "ck.npz", "--resume", "ck.npz", "--quiet"]
    cpu = subprocess.run([sys.executable, "-m", "mnist_accel.train", "--backend", "numba", "--epochs", "3", *resume],
                         capture_output=True, text=True, cwd=tmp_path, timeout=600)
    assert cpu.returncode == 0, cpu.stderr[-3000:]
    assert cpu.stdout.strip().startswith("numba/vectorized: test accuracy")
    back = _run("-m", "mnist_accel.train", "--backend", "cuda", "--epochs", "4", *resume, cwd=tmp_path)
    assert back.returncode == 0, back.stderr[-3000:]
    assert back.stdout.strip().startswith("cuda/vectorized: test accuracy")
    from mnist_accel.training.checkpoint import load

    assert len(load(tmp_path / "ck.npz")[1]["history"]) == 4
