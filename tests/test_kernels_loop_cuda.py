"""The GPU per-sample loop (Numba CUDA) against the NumPy reference, in Numba's CUDA simulator.

The simulator must be chosen before Numba is first imported, so each check runs in a fresh process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import pytest

SCRIPT = textwrap.dedent("""
    import json, os, sys
    import numpy as np
    from mnist_accel import model
    from mnist_accel.data import load_mnist, normalize
    from mnist_accel.kernels import loop_cuda
    from mnist_accel.loop import LoopTrainer

    loop_cuda.THREADS = 8  # fewer simulated threads than hidden units: exercises the strided loops
    activation, loss, bias, dropout, dtype = json.loads(sys.argv[1])
    d = load_mnist(progress=False)
    x = normalize(d.train_images[:40], np.dtype(dtype))
    out = {}
    for engine in ("numpy", "cuda"):
        rng = np.random.default_rng(5)
        params = model.init_params(rng, [784, 20, 10], "tutorial", bias, np.dtype(dtype))
        t = LoopTrainer(params, x, d.train_labels[:40], rng, 0.01, activation, loss, dropout, engine)
        total, correct = t.train_epoch()
        out[engine] = {"total": float(total), "correct": int(correct), "params": [p.tolist() for p in t.params]}
    print(json.dumps(out))
""")


def _simulate(*config):
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(config)], capture_output=True, text=True,
                          env=env, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


@pytest.mark.cudasim
@pytest.mark.parametrize("activation, loss, bias, dropout", [
    ("relu", "mse", False, 0.5), ("tanh", "cross-entropy", True, 0.0), ("sigmoid", "mse", True, 0.3),
])
def test_gpu_loop_matches_reference_in_simulator(activation, loss, bias, dropout):
    import numpy as np

    out = _simulate(activation, loss, bias, dropout, "float64")
    ref, gpu = out["numpy"], out["cuda"]
    assert gpu["correct"] == ref["correct"]
    assert gpu["total"] == pytest.approx(ref["total"], rel=1e-10)
    for a, b in zip(gpu["params"], ref["params"]):
        a, b = np.array(a), np.array(b)
        assert np.abs(a - b).max() <= 1e-10 * np.abs(b).max()


def test_launch_refuses_sizes_it_cannot_hold():
    pytest.importorskip("numba.cuda")
    import numpy as np

    from mnist_accel.kernels import loop_cuda

    with pytest.raises(ValueError, match="at most 2048 hidden"):
        loop_cuda.launch((None,) * 3, None, None, False, 1.0, None, None, np.zeros((4096, 10)), None, False,
                         0.1, 0, 0, None)
