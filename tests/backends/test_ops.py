"""The plain-xp ops (the reference) against every fused implementation: Numba on the CPU, CUDA C on the
GPU. float64 must agree to rounding; float32 within 4x the gap between the reference in float32 and
in float64."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest

from mnist_accel import losses, optim
from mnist_accel.backends import XpOps
from mnist_accel.backends.selection import get_backend, to_host
from mnist_accel.config import resolve

REF = XpOps(np)


@pytest.fixture(params=["numba", pytest.param("standin", marks=pytest.mark.standin),
                        pytest.param("cuda", marks=pytest.mark.gpu)])
def fused(request):
    """(ops, to_device): the fused ops and how to put a host array where they work. ``standin`` is CudaOps on
    the CuPy stand-in: its kernels compiled for the CPU, its arguments converted and checked as CuPy does."""
    if request.param == "numba":
        from mnist_accel.backends.numba_ops import NumbaOps

        yield NumbaOps(), lambda a: a
        return
    from cuda_standin import activate

    from mnist_accel.backends.cuda_ops import CudaOps

    with activate() if request.param == "standin" else contextlib.nullcontext():
        xp = get_backend("cuda").xp
        yield CudaOps(xp), xp.asarray


def _data(dtype, seed=0):
    r = np.random.default_rng(seed)
    z = r.normal(0, 2, (33, 17)).astype(dtype)
    b = r.normal(0, 1, 17).astype(dtype)
    mask = (r.random((33, 17)) > 0.3).astype(dtype) / dtype(0.7)
    return z, b, mask


def _tolerance(fn):
    """float32's bound from the float64 reference: 4 times the reference's own float32 error. On a GPU the
    kernels contract multiply-adds, take exp and tanh from libdevice (within 2 ulp) and flush subnormals
    (-ftz=true; these data have none): each within a float32 ulp or two of the reference's rounding, which
    the factor 4 covers. float64 is held to 1e-12: libdevice's double functions are within 2 ulp (2e-16)."""
    return 4 * np.abs(fn(np.float32).astype(np.float64) - fn(np.float64)).max() + 1e-7


@pytest.mark.parametrize("activation", ["relu", "tanh", "sigmoid", "identity"])
@pytest.mark.parametrize("with_mask", [False, True])
def test_bias_act_and_backward(fused, activation, with_mask):
    def run(ops, dev, dtype):
        z, b, mask = (dev(a) for a in _data(dtype))
        m = mask if with_mask else None
        ops.bias_act(z, b, activation, m)
        delta = dev(np.linspace(-1, 1, z.size, dtype=dtype).reshape(z.shape))
        ops.act_backward(delta, z, activation, m, 0.7)
        return np.concatenate([to_host(z).ravel(), to_host(delta).ravel()])

    ops, dev = fused
    tol = _tolerance(lambda dt: run(REF, np.asarray, dt))
    np.testing.assert_allclose(run(ops, dev, np.float64), run(REF, np.asarray, np.float64), rtol=0, atol=1e-12)
    np.testing.assert_allclose(run(ops, dev, np.float32), run(REF, np.asarray, np.float32), rtol=0, atol=tol)


@pytest.mark.parametrize("loss", ["mse", "cross-entropy"])
def test_loss_grad(fused, loss):
    def run(ops, dev, dtype):
        z, _, _ = _data(dtype, 1)
        labels = np.arange(33, dtype=np.int32) % 17
        grad = dev(np.empty_like(z))
        total, correct = ops.loss_grad(dev(z), dev(labels), grad, loss)
        return float(to_host(total)), int(to_host(correct)), to_host(grad)

    ops, dev = fused
    ref64, fused64 = run(REF, np.asarray, np.float64), run(ops, dev, np.float64)
    assert fused64[1] == ref64[1]  # exact: every row's largest output leads the next by far more than 1e-12
    assert fused64[0] == pytest.approx(ref64[0], rel=1e-12)
    np.testing.assert_allclose(fused64[2], ref64[2], atol=1e-15)
    tol = 4 * np.abs(run(REF, np.asarray, np.float32)[2] - ref64[2]).max() + 1e-7
    np.testing.assert_allclose(run(ops, dev, np.float32)[2], ref64[2], atol=tol)


@pytest.mark.parametrize("loss", ["binary-cross-entropy", "squared-error", "poisson", "cross-entropy", "mse"])
def test_loss_grad_of_float_targets(fused, loss):
    """Float targets (any loss), and labels for a loss of float targets: each as losses's formulas, the
    gradient of the mean loss; the count as losses.correct_count."""
    def run(ops, dev, dtype, labels):
        r = np.random.default_rng(6)
        z = r.normal(0, 2, (33, 5)).astype(dtype)
        y = np.arange(33, dtype=np.int32) % 5 if labels else \
            {"binary-cross-entropy": (r.random((33, 5)) < 0.3), "poisson": r.poisson(1.5, (33, 5))}.get(
                loss, r.normal(0, 1, (33, 5))).astype(dtype)
        grad = dev(np.empty_like(z))
        total, correct = ops.loss_grad(dev(z), dev(y), grad, loss)
        return float(to_host(total)), int(to_host(correct)), to_host(grad)

    ops, dev = fused
    for labels in ([False, True] if loss in ("binary-cross-entropy", "squared-error", "poisson") else [False]):
        r = np.random.default_rng(6)
        z = r.normal(0, 2, (33, 5))
        y = np.eye(5)[np.arange(33) % 5] if labels else \
            {"binary-cross-entropy": (r.random((33, 5)) < 0.3), "poisson": r.poisson(1.5, (33, 5))}.get(
                loss, r.normal(0, 1, (33, 5))).astype(float)
        total, correct, grad = run(ops, dev, np.float64, labels)
        assert total == pytest.approx(float(losses.loss_sum(z, y, loss, np)), rel=1e-12)
        assert correct == int(losses.correct_count(z, y, loss))
        np.testing.assert_allclose(grad, losses.output_grad(z, y, loss, np) / 33, rtol=1e-12, atol=1e-15)
        tol = 4 * np.abs(run(REF, np.asarray, np.float32, labels)[2] - grad).max() + 1e-7
        np.testing.assert_allclose(run(ops, dev, np.float32, labels)[2], grad, rtol=0, atol=tol)


def test_bias_grad(fused):
    def run(ops, dev, dtype):
        delta, _, _ = _data(dtype, 4)
        out = dev(np.empty(delta.shape[1], dtype))
        ops.bias_grad(dev(delta), out)
        return to_host(out)

    ops, dev = fused
    np.testing.assert_allclose(run(ops, dev, np.float64), run(REF, np.asarray, np.float64), rtol=1e-13)
    tol = _tolerance(lambda dt: run(REF, np.asarray, dt))
    np.testing.assert_allclose(run(ops, dev, np.float32), run(REF, np.asarray, np.float64), rtol=0, atol=tol)


@pytest.mark.parametrize("optimizer", list(optim.SLOTS))
def test_update(fused, optimizer):
    cfg = resolve(optimizer=optimizer, weight_decay=0.01)

    def run(ops, dev, dtype):
        r = np.random.default_rng(2)
        params = [dev(r.normal(size=(9, 5)).astype(dtype)), dev(r.normal(size=5).astype(dtype))]
        state = [[dev(s) for s in slots] for slots in optim.init_state([to_host(p) for p in params], optimizer, np)]
        for t in (1, 2, 3):
            grads = [dev(r.normal(size=p.shape).astype(dtype)) for p in params]
            ops.update(params, grads, state, cfg, dev(np.array(optim.step_scalars(cfg, t, 1e-2), dtype)))
        return np.concatenate([to_host(p).ravel() for p in params])

    ops, dev = fused
    np.testing.assert_allclose(run(ops, dev, np.float64), run(REF, np.asarray, np.float64), rtol=1e-12)
    tol = _tolerance(lambda dt: run(REF, np.asarray, dt))
    np.testing.assert_allclose(run(ops, dev, np.float32), run(REF, np.asarray, np.float64), rtol=0, atol=tol)


@pytest.mark.parametrize("pixels", [True, False])
@pytest.mark.parametrize("lit", [0.2, 1.0])  # a compacted batch, and one that lights every column
@pytest.mark.parametrize("optimizer", list(optim.SLOTS))
def test_first_layer_and_update(fused, pixels, lit, optimizer):
    """input_matmul, input_grad and the update that reads that gradient, on inputs with unlit columns."""
    cfg = resolve(optimizer=optimizer, weight_decay=0.01)

    def run(ops, dev, dtype):
        r = np.random.default_rng(3)
        on = r.random((50, 40)) < lit
        on[:, 5:9] = lit == 1.0
        raw = np.where(on, r.integers(1, 256, on.shape), 0)
        inputs = ops.prepare_inputs(dev(raw.astype(np.uint8) if pixels else (raw / 7).astype(dtype)), dtype)
        params = [dev(r.normal(size=(40, 6)).astype(dtype)), dev(r.normal(size=6).astype(dtype))]
        state = [[dev(s) for s in slots] for slots in optim.init_state([to_host(p) for p in params], optimizer, np)]
        grads = [dev(np.zeros((40, 6), dtype)), dev(np.zeros(6, dtype))]
        out = dev(np.empty((9, 6), dtype))
        for t, batch in enumerate(([4, 9, 0, 33, 21, 8, 8, 47, 2], [1, 2, 3, 5, 8, 13, 21, 34, 49]), 1):
            ops.input_matmul(inputs, dev(np.array(batch)), params[0], out)
            z = to_host(out).copy()
            ops.input_grad(inputs, dev(np.array(batch)), dev(np.linspace(-1, 1, 54, dtype=dtype).reshape(9, 6)),
                           grads[0])
            ops.update(params, grads, state, cfg, dev(np.array(optim.step_scalars(cfg, t, 1e-2), dtype)))
        return np.concatenate([z.ravel(), *(to_host(p).ravel() for p in params)])

    ops, dev = fused
    np.testing.assert_allclose(run(ops, dev, np.float64), run(XpOps(np), np.asarray, np.float64), rtol=1e-12)
    tol = _tolerance(lambda dt: run(XpOps(np), np.asarray, dt))
    np.testing.assert_allclose(run(ops, dev, np.float32), run(XpOps(np), np.asarray, np.float64), rtol=0, atol=tol)


@pytest.mark.parametrize("inputs", ["sparse pixels", "dense pixels", "features"])
@pytest.mark.parametrize("m", [6, 16, 17])
def test_whole_set_first_layer(fused, inputs, m):
    """With ``whole`` (every step: all rows in order, batch None) the first layer's products equal those of
    the per-batch path on the identity order: from a sparse matrix (NumbaOps, sparse pixels), a scaled copy
    made once, or features; split over two threads."""
    def run(ops, dev, dtype, whole):
        r = np.random.default_rng(5)
        raw = r.integers(1, 256, (70, 40)) * (r.random((70, 40)) < (0.2 if inputs == "sparse pixels" else 0.9))
        data = raw.astype(np.uint8) if inputs != "features" else (raw / 7).astype(dtype)
        prepared = ops.prepare_inputs(dev(data), dtype, whole=whole, threads=2)
        batch = None if whole else dev(np.arange(70))
        w = dev(r.normal(size=(40, m)).astype(dtype))
        out, grad = dev(np.empty((70, m), dtype)), dev(np.empty((40, m), dtype))
        ops.input_matmul(prepared, batch, w, out)
        ops.input_grad(prepared, batch, dev(r.normal(size=(70, m)).astype(dtype)), grad)
        return np.concatenate([to_host(out).ravel(), to_host(grad).ravel()])

    ops, dev = fused
    np.testing.assert_allclose(run(ops, dev, np.float64, True), run(XpOps(np), np.asarray, np.float64, False),
                               rtol=1e-12, atol=1e-12)
    tol = _tolerance(lambda dt: run(XpOps(np), np.asarray, dt, False))
    np.testing.assert_allclose(run(ops, dev, np.float32, True), run(XpOps(np), np.asarray, np.float64, False),
                               rtol=0, atol=tol)


def test_numba_ops_fuse_every_step():
    """Each op the trainer calls is NumbaOps' own: one falling back to XpOps' still passes the tests above
    (XpOps is the reference) but runs several NumPy passes. (NumbaOps.bias_act hands tanh and sigmoid to
    XpOps on purpose: NumPy's SIMD tanh and exp beat Numba's calls into the C library.)"""
    from mnist_accel.backends.numba_ops import NumbaOps

    for name in ("input_matmul", "input_grad", "bias_act", "act_backward", "loss_grad", "bias_grad", "update"):
        assert getattr(NumbaOps, name) is not getattr(XpOps, name), name


def _gemm_ops(dtype):
    """NumbaOps after warm_up, where it runs the first layer's products by gemm_cpu (else the test skips)."""
    from mnist_accel.backends.numba_ops import NumbaOps
    from mnist_accel.kernels.cpu import gemm_cpu

    ops = NumbaOps()
    ops.prepare_inputs(np.zeros((4, 3), dtype), dtype)
    ops.warm_up(resolve(dtype=np.dtype(dtype).name))
    if ops._gemm is not gemm_cpu.gemm_parallel:
        pytest.skip("gemm_cpu does not run here (no AVX-512, BLAS uses it itself, or no fit threading layer)")
    return ops


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("lit", [0.2, 1.0])
@pytest.mark.parametrize("width", [40, 64])  # a width with a padded tail tile, and one of whole vectors
def test_first_layer_by_gemm_cpu(dtype, lit, width):
    """The first layer's two products through gemm_cpu (as NumbaOps runs them on AVX-512 machines) against
    XpOps: equal to within float64 rounding in float64, and to the dtype's own error in float32."""
    def run(ops, dt):
        r = np.random.default_rng(5)
        on = r.random((60, 50)) < lit
        inputs = ops.prepare_inputs(np.where(on, r.integers(1, 256, on.shape), 0).astype(np.uint8), dt)
        w, batch = r.normal(size=(50, width)).astype(dt), np.array([3, 59, 0, 17, 17, 42, 8, 31, 30, 1, 2])
        z, g = np.empty((len(batch), width), dt), np.zeros((50, width), dt)
        ops.input_matmul(inputs, batch, w, z)
        ops.input_grad(inputs, batch, r.normal(size=(len(batch), width)).astype(dt), g)
        lit_grad = getattr(ops, "_lit_grad", None)
        if lit_grad is not None:  # NumbaOps computed the lit rows only: the others are zero
            g[...] = 0
            g[lit_grad[2]] = lit_grad[1]
        return np.concatenate([z.ravel(), g.ravel()])

    ops = _gemm_ops(dtype)
    reference = run(XpOps(np), np.float64)
    tol = _tolerance(lambda dt: run(XpOps(np), dt)) if dtype == np.float32 else 1e-12 * np.abs(reference).max()
    np.testing.assert_allclose(run(ops, dtype), reference, rtol=0, atol=tol)


@pytest.mark.parametrize("hidden, blas", [((256,), 1), ((256, 256), 1), ((512, 512), 2), ((1024,), 1)])
def test_blas_keeps_its_threads_only_for_large_later_layers(hidden, blas):
    """Beside gemm_cpu, OpenBLAS's spinning workers take a core from ours: BLAS gets one thread unless the
    later layers hold half as many weights as the first (measured figures in NumbaOps.blas_threads)."""
    ops = _gemm_ops(np.float32)
    sizes = [784, *hidden, 10]
    params = [np.zeros((a, b), np.float32) for a, b in zip(sizes, sizes[1:])]
    ops.fused_step(resolve(hidden=hidden), params, [], None)
    assert ops.blas_threads(2) == blas
