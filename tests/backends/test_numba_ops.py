"""NumbaOps.warm_up and LoopTrainer's warm-up compile what the run calls and nothing else, and the first epoch
compiles nothing more.

Numba compiles a kernel once per type signature, so each check runs in a fresh interpreter (what another test
compiled in this one would show up in the kernels' signatures) and reads, after the warm-up, which kernels hold
a signature and which, and then listens to Numba's compile events through an epoch. Not timing-based: a
kernel the warm-up leaves out would compile inside the first epoch, and one it compiles needlessly shows up.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytest.importorskip("numba")

SCRIPT = r"""
import json, sys
import numpy as np
import numba.core.event as ev
from mnist_accel import model, resolve
from mnist_accel.backends.selection import get_backend
from mnist_accel.kernels.cpu import gemm_cpu, inputs_cpu, loop_cpu, loop_cpu_deep, loop_loss, vectorized_cpu, \
    whole_cpu

cfg = resolve(**json.loads(sys.argv[1]))
r = np.random.default_rng(0)
images = np.where(r.random((300, 28, 28)) < 0.2, r.integers(1, 256, (300, 28, 28)), 0).astype(np.uint8)
images.flags.writeable = False  # as the data loader's: Numba types read-only arrays apart
labels = r.integers(0, 10, 300)
params = model.init_params(r, [784, *cfg.hidden, 10], cfg.init, cfg.bias, np.dtype(cfg.dtype))
if cfg.path == "loop":
    from mnist_accel.trainers.loop import LoopTrainer
    x = images.reshape(300, -1) / np.dtype(cfg.dtype).type(255)
    trainer = LoopTrainer(params, x, labels, r, cfg.lr, cfg.activation, cfg.loss, cfg.dropout, "numba")
else:
    from mnist_accel.trainers.vectorized import VectorizedTrainer
    trainer = VectorizedTrainer(cfg, get_backend("numba"), params, r, images, labels)
modules = (gemm_cpu, inputs_cpu, loop_cpu, loop_cpu_deep, loop_loss, vectorized_cpu, whole_cpu)
kernels = {f"{m.__name__.rsplit('.', 1)[1]}.{name}": f for m in modules for name, f in vars(m).items()
           if hasattr(f, "signatures") and f.__module__ == m.__name__}
compiled = sorted(name for name, f in kernels.items() if f.signatures)
counts = {name: len(kernels[name].signatures) for name in compiled}
with ev.install_recorder("numba:compile") as rec:
    trainer.train_epoch()
# kernels made one per setting (closures): how many settings were made
variants = {name: f.cache_info().currsize for name, f in (("loop", loop_cpu.epoch_kernel),
            ("bias_act", vectorized_cpu.bias_act), ("act_backward", vectorized_cpu.act_backward),
            ("gemm", gemm_cpu._launcher))}
print(json.dumps({"compiled": compiled, "counts": counts, "epoch_compiles": len(rec.buffer), "variants": variants,
                  "gemm_cpu": getattr(getattr(trainer, "ops", None), "_gemm", None) is not None}))
"""


def _warm(**config) -> dict:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps({"backend": "numba", "epochs": 1, **config})],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_batches_compile_the_runs_kernels_once_each_and_no_others():
    out = _warm(hidden=(32,), batch_size=64, optimizer="adam", loss="cross-entropy", activation="relu")
    assert out["epoch_compiles"] == 0
    assert {k: out["variants"][k] for k in ("loop", "bias_act", "act_backward")} == \
        {"loop": 0, "bias_act": 1, "act_backward": 1}
    for name in ("vectorized_cpu.adam", "vectorized_cpu.xent", "vectorized_cpu.column_sums", "inputs_cpu.gather"):
        assert out["counts"].get(name) == 1, (name, out)  # one signature: the run's types, read-only pixels too
    for name in ("vectorized_cpu.sgd", "vectorized_cpu.momentum", "vectorized_cpu.mse_grad", "whole_cpu.step_rows",
                 "loop_cpu.sgd_epoch"):
        assert name not in out["compiled"], (name, out)
    assert out["variants"]["gemm"] == int(out["gemm_cpu"])  # the launcher of the run's dtype alone


def test_another_configuration_compiles_its_own_variants():
    out = _warm(hidden=(8,), batch_size=50, optimizer="sgd", loss="mse", activation="tanh", bias=False,
                dtype="float64")
    assert out["epoch_compiles"] == 0
    assert "vectorized_cpu.sgd" in out["compiled"] and "vectorized_cpu.mse_grad" in out["compiled"]
    # no bias: no bias gradient; tanh: NumPy's SIMD tanh does the forward
    assert out["variants"] == {"loop": 0, "bias_act": 0, "act_backward": 1, "gemm": int(out["gemm_cpu"])}
    for name in ("vectorized_cpu.adam", "vectorized_cpu.xent", "vectorized_cpu.column_sums"):
        assert name not in out["compiled"], (name, out)


def test_a_fused_full_batch_step_compiles_its_kernel_and_the_update_alone():
    out = _warm(hidden=(16, 16), batch_size=300, optimizer="sgd", loss="cross-entropy", activation="tanh")
    assert out["epoch_compiles"] == 0
    assert "whole_cpu.step_rows" in out["compiled"] and "vectorized_cpu.sgd" in out["compiled"]
    assert out["variants"] == {"loop": 0, "bias_act": 0, "act_backward": 0, "gemm": 0}
    for name in ("inputs_cpu.gather", "vectorized_cpu.xent"):
        assert name not in out["compiled"], (name, out)
    assert out["variants"]["gemm"] == 0


def test_the_loop_compiles_in_its_warm_up():
    out = _warm(path="loop", hidden=(20,), activation="relu", loss="mse", dropout=0.5, bias=False,
                dtype="float64", optimizer="sgd")
    assert out["epoch_compiles"] == 0
    assert out["variants"]["loop"] == 1 and "loop_cpu_deep._epoch" not in out["compiled"]
    assert "loop_loss.output_delta" not in out["compiled"]  # the squared error: no softmax compiled
