"""The CUDA C kernels compile (nvcc, for Hopper) on machines without a GPU; on a GPU, tests/backends/test_ops.py
checks them against the plain-xp reference. Without one, every kernel runs on the CPU through the CUDA-on-CPU
runtime (tests/cuda_standin) and is checked against the same reference."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Callable, Sequence
from importlib import resources
from typing import Any

import numpy as np
import pytest
from cuda_standin.cpu_runtime import CpuModule, Param

from mnist_accel import optim
from mnist_accel.backends import XpOps
from mnist_accel.backends.cuda_ops import CudaOps
from mnist_accel.config import resolve
from mnist_accel.kernels.cuda import signatures, vectorized_cuda


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_every_kernel_compiles_for_sm90(tmp_path):
    src = tmp_path / "vectorized_cuda.cu"
    src.write_text(vectorized_cuda.source())  # the copy the installed package ships
    ptx = tmp_path / "out.ptx"
    proc = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(ptx)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    entries = re.findall(r"\.entry\s+(\w+)", ptx.read_text())
    for kernel in vectorized_cuda.KERNELS:
        assert sum(kernel in e for e in entries) >= 2, f"{kernel} is not instantiated for float and double"


def test_kernel_names_match_the_source():
    text = vectorized_cuda.source()
    for kernel in vectorized_cuda.KERNELS:
        assert f"__global__ void {kernel}(" in text


def test_each_kernel_declares_its_parameters_once():
    """The .cu file names each kernel's parameters through its placeholder (vectorized_cuda.PARAMS fills it in and
    generates the instantiations), and a launch that misses or adds a name is refused before it runs."""
    text = resources.files(vectorized_cuda.__package__).joinpath("vectorized_cuda.cu").read_text()
    definitions = re.findall(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", text)
    assert sorted(definitions) == sorted((k, signatures.placeholder(k)) for k in vectorized_cuda.PARAMS)
    assert not re.search(r"template\s+__global__", text)
    compiled = vectorized_cuda.source()
    for kernel, params in vectorized_cuda.PARAMS.items():
        assert f"__global__ void {kernel}({signatures.c_list(params)})" in compiled
        for t in ("float", "double"):
            assert f"template __global__ void {kernel}<{t}>({signatures.c_list(params, t)});" in compiled
    p = np.zeros(3, np.float32)
    args = vectorized_cuda.arguments("sgd", np.float32, p=p, g=p, n=3, s=p, wd=0.5)
    assert [type(a) for a in args[2:]] == [np.int64, np.ndarray, np.float32]
    with pytest.raises(TypeError, match="sgd: missing wd; unexpected mu"):
        vectorized_cuda.arguments("sgd", np.float32, p=p, g=p, n=3, s=p, mu=0.5)


def test_cuda_enum_matches_the_shared_activation_codes():
    from mnist_accel.kernels import ACTIVATION_CODES

    enum = re.search(r"enum \{([^}]*)\}", vectorized_cuda.source()).group(1)
    values = {name.strip().lower(): int(code) for name, code in (m.split("=") for m in enum.split(","))}
    assert values == ACTIVATION_CODES


# ---- Every kernel on the CPU, through the CUDA-on-CPU runtime (tests/cuda_standin), against XpOps ----------
# CudaOps itself drives the kernels: its xp is NumPy plus a RawModule that compiles the installed source with
# g++, so the grids, the argument order and the scalar widths under test are CudaOps' own. The adapter turns
# arrays into their addresses and NumPy scalars into their bytes, refusing any whose dtype is not exactly
# the C parameter's (CuPy would pass the wrong width silently).

REF = XpOps(np)
SHAPES = [(33, 17), (1, 10), (37, 1), (300, 7)]  # ragged last block, one row, one column, several blocks
DTYPES = [np.float32, np.float64]


def _arg_bytes(param: Param, value: Any) -> bytes:
    if param.pointer:
        if not (isinstance(value, np.ndarray) and value.flags.c_contiguous and value.dtype == param.pointee):
            raise TypeError(f"{param.ctype} {param.name}: got {value!r}, not a C-contiguous {param.pointee} array")
        return value.ctypes.data.to_bytes(8, "little")
    expected = np.dtype("?" if param.kind == "b" else f"{param.kind}{param.size}")
    if not (isinstance(value, np.generic) and value.dtype == expected):
        raise TypeError(f"{param.ctype} {param.name}: got {value!r}, not a NumPy {expected} scalar")
    return value.tobytes()


class _CpuRawModule:
    def __init__(self, code: str, options: Sequence[str] = (), name_expressions: Sequence[str] = ()) -> None:
        self._module = CpuModule(code, tuple(options), tuple(name_expressions))

    def get_function(self, name: str) -> Callable[..., None]:
        kernel = self._module.get_function(name)

        def launch(grid: tuple[int, ...], block: tuple[int, ...], args: Sequence[Any], shared_mem: int = 0) -> None:
            kernel.launch(grid, block, [_arg_bytes(p, a) for p, a in zip(kernel.params, args, strict=True)],
                          shared_mem)

        return launch


class _NumpyWithRawModule:
    RawModule = _CpuRawModule

    def __getattr__(self, name: str) -> Any:
        return getattr(np, name)


@pytest.fixture(scope="module")
def cpu_ops():
    if shutil.which(os.environ.get("CXX", "g++")) is None:
        pytest.skip("no C++ compiler for the CUDA-on-CPU runtime")
    return CudaOps(_NumpyWithRawModule())


def _assert_close(ops, run, dtype, exact=(), skip=()):
    """run(ops, dtype) -> dict of arrays. float64 agrees with the reference to rounding (1e-12 of the largest
    value); float32 within 4x the gap between the reference in float32 and in float64 (tests/backends/test_ops.py)."""
    ref64, got = run(REF, np.float64), run(ops, dtype)
    ref32 = run(REF, np.float32) if dtype == np.float32 else None
    for key, want in ref64.items():
        if key in skip:
            continue
        have = np.asarray(got[key], np.float64)
        if key in exact:
            np.testing.assert_array_equal(have, want, err_msg=key)
        elif ref32 is None:
            np.testing.assert_allclose(have, want, rtol=0, atol=1e-12 * max(1.0, np.abs(want).max()), err_msg=key)
        else:
            tol = 4 * np.abs(np.asarray(ref32[key], np.float64) - want).max() + 1e-7
            np.testing.assert_allclose(have, want, rtol=0, atol=tol, err_msg=key)


def _inputs(shape, dtype, seed=0):
    r = np.random.default_rng(seed)
    z = r.normal(0, 2, shape).astype(dtype)
    b = r.normal(0, 1, shape[1]).astype(dtype)
    mask = ((r.random(shape) > 0.3) / 0.7).astype(dtype)
    return z, b, mask


shapes = pytest.mark.parametrize("shape", SHAPES, ids=lambda s: f"{s[0]}x{s[1]}")
dtypes = pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
activations = pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
masks = pytest.mark.parametrize("with_mask", [False, True], ids=["nomask", "mask"])


@pytest.mark.standin
def test_every_kernel_has_a_cpu_runtime_check():
    checked = {"bias_act", "act_backward", "loss_grad", *optim.SLOTS, "sklearn_momentum"}  # the tests below
    assert set(vectorized_cuda.KERNELS) <= checked, "add a CPU-runtime test for the new kernel"


@pytest.mark.standin
@pytest.mark.parametrize("with_bias", [False, True], ids=["nobias", "bias"])
@activations
@masks
@shapes
@dtypes
def test_bias_act_on_cpu_runtime(cpu_ops, activation, with_bias, with_mask, shape, dtype):
    def run(ops, dt):
        z, b, mask = _inputs(shape, dt)
        ops.bias_act(z, b if with_bias else None, activation, mask if with_mask else None)
        return {"z": z}

    _assert_close(cpu_ops, run, dtype)


@pytest.mark.standin
@activations
@masks
@shapes
@dtypes
def test_act_backward_on_cpu_runtime(cpu_ops, activation, with_mask, shape, dtype):
    def run(ops, dt):
        z, b, mask = _inputs(shape, dt)
        m = mask if with_mask else None
        REF.bias_act(z, b, activation, m)  # h, the layer's output, comes from the reference for both
        delta = np.linspace(-1, 1, z.size, dtype=dt).reshape(shape)
        ops.act_backward(delta, z, activation, m, 0.7)
        return {"delta": delta}

    _assert_close(cpu_ops, run, dtype)


@pytest.mark.standin
@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
@shapes
@dtypes
def test_loss_grad_on_cpu_runtime(cpu_ops, loss, shape, dtype):
    def run(ops, dt):
        z = _inputs(shape, dt, 1)[0]
        grad = np.empty_like(z)
        total, correct = ops.loss_grad(z, np.arange(shape[0], dtype=np.int32) % shape[1], grad, loss)
        return {"loss": np.float64(total), "correct": np.int64(correct), "grad": grad}

    _assert_close(cpu_ops, run, dtype, exact=("correct",))


def _optimizer_run(optimizer, weight_decay, shape):
    cfg = resolve(optimizer=optimizer, weight_decay=weight_decay)

    def run(ops, dt):
        r = np.random.default_rng(2)
        params = [r.normal(size=shape).astype(dt), r.normal(size=shape[1]).astype(dt)]
        state = optim.init_state(params, optimizer, np)
        for t in (1, 2, 3):
            grads = [r.normal(size=p.shape).astype(dt) for p in params]
            ops.update(params, grads, state, cfg, np.array(optim.step_scalars(cfg, t, 1e-2), dt))
        return {"w": params[0], "b": params[1], **{f"slot{i}": s for i, s in enumerate(state[0])}}

    return run


@pytest.mark.standin
@pytest.mark.parametrize("optimizer", list(optim.SLOTS))
@pytest.mark.parametrize("weight_decay", [0.0, 0.01], ids=["nowd", "wd"])
@shapes
@dtypes
def test_optimizer_on_cpu_runtime(cpu_ops, optimizer, weight_decay, shape, dtype):
    """Parameters and every optimizer slot: Adam's v caught 1 - beta2 formed in float (0.00099998713)."""
    _assert_close(cpu_ops, _optimizer_run(optimizer, weight_decay, shape), dtype)


@pytest.mark.standin
@pytest.mark.parametrize("optimizer", list(optim.SLOTS))
def test_no_decay_leaves_an_infinite_parameter_as_the_reference_does(cpu_ops, optimizer):
    """Without weight decay the update must not form 0 * p, which is NaN for an infinite p."""
    def run(ops, dt):
        params = [np.array([[np.inf, 1.0]], dt), np.zeros(2, dt)]
        state = optim.init_state(params, optimizer, np)
        cfg = resolve(optimizer=optimizer)
        scalars = np.array(optim.step_scalars(cfg, 1, 0.1), dt)
        ops.update(params, [np.ones((1, 2), dt), np.ones(2, dt)], state, cfg, scalars)
        return {"w": params[0]}

    np.testing.assert_array_equal(run(cpu_ops, np.float32)["w"], run(REF, np.float32)["w"])


@pytest.mark.standin
@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_loss_grad_counts_a_nan_row_as_numpy_argmax_does(cpu_ops, loss):
    """NumPy's argmax picks a row's first NaN; a plain '>' scan would skip it and could count a hit."""
    z = np.array([[0.0, np.nan, 5.0], [np.nan, 1.0, 2.0], [1.0, 3.0, 3.0]], np.float32)
    labels = np.array([2, 2, 2], np.int32)
    hits = [int(ops.loss_grad(z.copy(), labels, np.empty_like(z), loss)[1]) for ops in (cpu_ops, REF)]
    assert hits[0] == hits[1] == 0
