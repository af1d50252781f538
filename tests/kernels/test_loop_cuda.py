"""The GPU per-sample loop (Numba CUDA) against the NumPy reference, in Numba's CUDA simulator.

The simulator must be chosen before Numba is first imported, so the checks run in a fresh process: one
for all cases (the simulator runs each thread as a Python thread: few threads, tiny data).
"""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest

SCRIPT = textwrap.dedent("""
    import json, sys
    import numpy as np
    from mnist_accel import model
    from mnist_accel.kernels import ACTIVATION_CODES, LOSS_CODES
    from mnist_accel.kernels.cuda import loop_cuda
    from mnist_accel.trainers.loop import LoopTrainer, draw_masks, epoch_reference, keep_scale

    def data(case):
        rng = np.random.default_rng(case["n"])
        n, features = case["n"], 40
        x = np.where(rng.random((n, features)) < 0.3, rng.random((n, features)), 0.0)  # ~MNIST's fifth lit
        return rng, x, rng.integers(0, 10, n)

    def reference(case, dtype):
        rng, x, labels = data(case)
        params = model.init_params(rng, [x.shape[1], case["hidden"], 10], "tutorial", case["bias"], dtype)
        masks = draw_masks(rng, len(x), case["hidden"], case["dropout"])
        scale = keep_scale(case["dropout"], dtype)
        out = epoch_reference(params, x.astype(dtype), np.eye(10, dtype=dtype)[labels], masks, case["lr"],
                              case["activation"], case["loss"], scale)
        return out, params

    def gpu(case):
        dtype = np.dtype(case["dtype"])
        rng, x, labels = data(case)
        params = model.init_params(rng, [x.shape[1], case["hidden"], 10], "tutorial", case["bias"], dtype)
        masks = draw_masks(rng, len(x), case["hidden"], case["dropout"])
        w1, w2 = params[0], params[-2 if case["bias"] else -1]
        b1, b2 = (params[1], params[3]) if case["bias"] else (np.zeros(case["hidden"], dtype), np.zeros(10, dtype))
        result = np.zeros(3)
        loop_cuda.launch(loop_cuda.prepare(x.astype(dtype), case["hidden"], 10, block=case["block"]), labels,
                         np.zeros((1, case["hidden"]), np.int8) if masks is None else masks, masks is not None,
                         keep_scale(case["dropout"], dtype), w1, b1, w2, b2, case["bias"], dtype.type(case["lr"]),
                         ACTIVATION_CODES[case["activation"]], LOSS_CODES[case["loss"]], result)
        return (result[0], int(result[1]), int(result[2])), params

    def trainer(case, engine):
        rng, x, labels = data(case)
        params = model.init_params(rng, [x.shape[1], case["hidden"], 10], "tutorial", case["bias"], np.float64)
        t = LoopTrainer(params, x, labels, rng, case["lr"], case["activation"], case["loss"], case["dropout"], engine)
        total, correct = t.train_epoch()
        return (float(total), int(correct), int(t.first_bad)), t.params

    def error(params, ref):  # the largest difference, relative to the largest reference value of its array
        return max(float(np.abs(a - b).max() / np.abs(b).max()) for a, b in zip(params, ref))

    out = []
    for case in json.loads(sys.argv[1]):
        loop_cuda.THREADS, loop_cuda.WARP = case["threads"], case["warp"]
        loop_cuda.SHARED_BYTES = 48 * 1024 if case["shared"] else 0
        if case.get("trainer"):
            (ref, ref_params), (got, params) = trainer(case, "numpy"), trainer(case, "cuda")
        else:
            (ref, ref_params), (got, params) = reference(case, np.float64), gpu(case)
        row = {"ref": ref, "gpu": got, "error": error(params, ref_params)}
        if case["dtype"] == "float32":
            (ref32, ref32_params) = reference(case, np.float32)
            row["ref32"], row["ref32_error"] = ref32, error(ref32_params, ref_params)
        if case.get("twice"):
            row["again"] = list(gpu(case)[0]), [p.tolist() for p in params] == [p.tolist() for p in gpu(case)[1]]
        out.append(row)
    print(json.dumps(out))
""")

BASE = {"bias": False, "dropout": 0.0, "dtype": "float64", "hidden": 20, "block": 8, "n": 40, "lr": 0.05,
        "shared": True, "threads": 8, "warp": 4}  # 2 simulated warps of 4 lanes, fewer threads than units
# every activation with both losses; widths 20, 13 (not whole warps), 3 (fewer units than a warp, so an
# idle warp) and 1; blocks that leave a short last block; per-unit state in shared or in global memory
CASES = {
    "relu-mse-dropout": dict(activation="relu", loss="mse", dropout=0.5, twice=True),
    "relu-xent-bias-global": dict(activation="relu", loss="cross-entropy", bias=True, dropout=0.5, block=7,
                                  shared=False),
    "tanh-xent-bias-odd": dict(activation="tanh", loss="cross-entropy", bias=True, hidden=13, block=5, n=47,
                               warp=8),
    "tanh-mse-dropout": dict(activation="tanh", loss="mse", dropout=0.3, hidden=13, block=3, n=20, threads=12),
    "sigmoid-mse-global": dict(activation="sigmoid", loss="mse", bias=True, dropout=0.3, hidden=13, n=42,
                               shared=False),
    "sigmoid-xent-dropout": dict(activation="sigmoid", loss="cross-entropy", dropout=0.5, block=6, n=30),
    "identity-xent-narrow": dict(activation="identity", loss="cross-entropy", hidden=3, block=4, n=30),
    "one-unit-blocks-of-one": dict(activation="relu", loss="mse", bias=True, hidden=1, block=1, n=12),
    "float32-relu-xent": dict(activation="relu", loss="cross-entropy", bias=True, dropout=0.5, block=32,
                              dtype="float32"),
    "float32-tanh-mse-global": dict(activation="tanh", loss="mse", dropout=0.3, hidden=13, block=6,
                                    dtype="float32", shared=False),
    "diverges": dict(activation="relu", loss="mse", bias=True, hidden=13, lr=3.0),
    "trainer": dict(activation="relu", loss="mse", dropout=0.5, block=32, trainer=True),
}


@pytest.fixture(scope="module")
def simulated():
    cases = [{**BASE, **case} for case in CASES.values()]
    env = {**os.environ, "NUMBA_ENABLE_CUDASIM": "1", "PYTHONWARNINGS": "ignore"}
    proc = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps(cases)], capture_output=True, text=True,
                          env=env, timeout=600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return dict(zip(CASES, json.loads(proc.stdout.strip().splitlines()[-1])))


@pytest.mark.cudasim
@pytest.mark.parametrize("name", [n for n in CASES if n not in ("diverges",) and "float32" not in n])
def test_gpu_loop_matches_reference_in_simulator(simulated, name):
    out = simulated[name]
    (ref_total, ref_correct, ref_bad), (total, correct, bad) = out["ref"], out["gpu"]
    assert (correct, bad) == (ref_correct, ref_bad) and bad == -1
    assert total == pytest.approx(ref_total, rel=1e-10)
    assert out["error"] <= 1e-10


@pytest.mark.cudasim
@pytest.mark.parametrize("name", [n for n in CASES if "float32" in n])
def test_float32_gpu_loop_is_as_close_to_float64_as_the_float32_reference(simulated, name):
    """Float32 rounds differently from the reference in float32; both should be as far from the float64
    reference, up to a small factor (floored at a few float32 epsilons for a lucky reference)."""
    out = simulated[name]
    ref_total, (ref32_total, _, _), (total, correct, bad) = out["ref"][0], out["ref32"], out["gpu"]
    assert bad == -1 and correct == out["ref"][1]
    assert abs(total - ref_total) <= 4 * abs(ref32_total - ref_total) + 1e-6 * abs(ref_total)
    assert out["error"] <= 4 * out["ref32_error"] + 4 * float(np.finfo(np.float32).eps)


@pytest.mark.cudasim
def test_first_sample_with_a_non_finite_loss_is_the_references(simulated):
    out = simulated["diverges"]
    assert out["gpu"][2] == out["ref"][2] >= 0
    assert not np.isfinite(out["gpu"][0])


@pytest.mark.cudasim
def test_two_runs_are_bit_identical(simulated):
    out = simulated["relu-mse-dropout"]
    again, same_params = out["again"]
    assert again == out["gpu"] and same_params


def test_the_tutorial_model_keeps_its_state_in_shared_memory():
    """784-100-10 in float64 (and float32) fits the 48 KiB a kernel gets unasked; 128 float64 units do not."""
    pytest.importorskip("numba.cuda")
    from mnist_accel.kernels.cuda import loop_cuda

    for itemsize in (8, 4):
        slices, fits, nbytes = loop_cuda.plan(32, 100, 10, itemsize, loop_cuda.THREADS, 32)
        assert fits and nbytes <= loop_cuda.SHARED_BYTES and slices == 10
    slices, fits, nbytes = loop_cuda.plan(32, 128, 10, 8, loop_cuda.THREADS, 32)
    assert not fits and nbytes < 8 * 1024  # then only the small per-sample arrays stay in shared memory


def test_launch_refuses_sizes_it_cannot_hold():
    pytest.importorskip("numba.cuda")
    from mnist_accel.kernels.cuda import loop_cuda

    with pytest.raises(ValueError, match="at most 2048 hidden"):
        loop_cuda.launch((None,) * 3, None, None, False, 1.0, None, None, np.zeros((4096, 10)), None, False,
                         0.1, 0, 0, None)


def test_launch_refuses_inputs_prepared_for_another_model():
    pytest.importorskip("numba.cuda")
    from mnist_accel.kernels.cuda import loop_cuda

    x = np.eye(4, 6)
    w1, w2 = np.zeros((6, 5), np.float32), np.zeros((5, 3), np.float32)
    for inputs in (loop_cuda.prepare(x, 5, 3), loop_cuda.prepare(x, 4, 3, np.float32)):  # float64; too narrow
        with pytest.raises(ValueError, match="prepared for another model"):
            loop_cuda.launch(inputs, np.zeros(4, np.int64), np.zeros((1, 5), np.int8), False, np.float32(1), w1,
                             np.zeros(5, np.float32), w2, np.zeros(3, np.float32), False, np.float32(0.1), 0, 0,
                             np.zeros(3))


def test_a_launch_gives_each_kernel_parameter_by_name():
    """The kernel's ``def`` is the declaration: a launch's arguments are ordered by it, and a missing or an
    unexpected name, or a workspace short of an array, raises before anything launches."""
    pytest.importorskip("numba.cuda")
    from mnist_accel.kernels.cuda import loop_cuda, loop_cuda_deep
    from mnist_accel.kernels.cuda.signatures import by_name

    for module in (loop_cuda, loop_cuda_deep):
        names = list(inspect.signature(module.sgd_epoch.py_func).parameters)
        assert set(module.Inputs._fields) < set(names)
        values = {name: i for i, name in enumerate(names)}
        assert by_name(module.sgd_epoch, dict(reversed(values.items()))) == list(range(len(names)))
        del values["in_shared"]
        with pytest.raises(TypeError, match="sgd_epoch: missing in_shared; unexpected in_smem"):
            by_name(module.sgd_epoch, {**values, "in_smem": True})
    x, w1, w2 = np.eye(4, 6), np.zeros((6, 5)), np.zeros((5, 3))
    with pytest.raises(TypeError, match="book"):
        loop_cuda.launch(loop_cuda.prepare(x, 5, 3)[:-1], np.zeros(4, np.int64), np.zeros((1, 5), np.int8), False,
                         1.0, w1, np.zeros(5), w2, np.zeros(3), False, 0.1, 0, 0, np.zeros(3))
