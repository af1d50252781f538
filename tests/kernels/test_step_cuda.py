"""The fused whole-step kernels (kernels/cuda/step_cuda.cu), run unchanged on the CPU by the CUDA stand-in, against
NumPy references built from XpOps and optim.update: every kernel at float and double over ragged shapes,
activations, losses, optimizers, dropout and bias; finish_step's fixed-order sums; and the launches of one
whole step against VectorizedTrainer.train_step. float64 agrees to rounding; float32 within 4x the gap
between the reference in float32 and in float64, as tests/backends/test_ops.py."""

from __future__ import annotations

import re
import shutil
import struct
import subprocess
from importlib import resources

import numpy as np
import pytest
from cuda_standin.cpu_runtime import CpuModule

from mnist_accel import losses, model, optim, rng as crng
from mnist_accel.backends import XpOps
from mnist_accel.backends.selection import get_backend
from mnist_accel.config import resolve
from mnist_accel.kernels import ACTIVATION_CODES, LABEL_LOSSES, LOSS_CODES, OPTIMIZER_CODES
from mnist_accel.kernels.cuda import signatures, step_cuda
from mnist_accel.trainers.vectorized import VectorizedTrainer

pytestmark = pytest.mark.standin
REF, ACTS, DTYPES = XpOps(np), list(ACTIVATION_CODES), [np.float32, np.float64]
K, BS, TABLE, N_KEYS = 2, 40, 130, 3  # the step within the epoch, batch size, table rows, hidden layers
KIND = step_cuda.INPUT_KINDS


@pytest.fixture(scope="module")
def mod():
    return CpuModule(step_cuda.source(), options=("-std=c++17",), name_expressions=step_cuda.name_expressions())


def launch(mod, kernel, dtype, shape, **values):
    """``kernel`` with its arguments by name, as CudaStep gives them (step_cuda.arguments), each checked against
    the parameter the CPU runtime read from the compiled source: a pointer's pointee, a value's exact width."""
    fn = mod.get_function(step_cuda.kernel_name(kernel, dtype))
    raw = []
    for p, a in zip(fn.params, step_cuda.arguments(kernel, dtype, **values), strict=True):
        if p.pointer:
            assert a is None or (a.dtype == p.pointee and a.flags.c_contiguous), (p, None if a is None else a.dtype)
            raw.append(struct.pack("<Q", 0 if a is None else a.ctypes.data))
        else:
            assert a.dtype == np.dtype(f"{p.kind}{p.size}"), (p, a.dtype)
            raw.append(a.tobytes())
    fn.launch(grid=shape[0], block=shape[1], args=raw)


def check(got, ref, dtype, terms):
    """``ref(dt)`` is the reference computed in dtype ``dt`` from the same inputs; ``terms`` is the length of
    the longest sum behind an output. The kernels sum in plain sequence where NumPy's BLAS blocks its sums,
    so their float32 rounding grows as sqrt(terms) ulps of the output's scale (measured: up to 17x the
    reference's own float32 gap, 1.2e-6 of scale at 784 terms): that allowance is added to the 4x gap."""
    r64 = np.asarray(ref(np.float64), np.float64)
    scale = max(1.0, float(np.abs(r64).max(initial=0)))
    gap = np.abs(np.asarray(ref(np.float32), np.float64) - r64).max(initial=0) if dtype == np.float32 else 0
    atol = 1e-12 * scale if dtype == np.float64 else 4 * gap + np.sqrt(terms) * np.finfo(np.float32).eps * scale
    np.testing.assert_allclose(np.asarray(got, np.float64), r64, rtol=0, atol=atol)


class Epoch:
    """What a step reads from device memory: the order, step counter, dropout keys, schedule, tables."""

    def __init__(self, f: int, m: int = 10, seed: int = 0) -> None:
        r = np.random.default_rng(seed)
        self.order, self.k = r.permutation(TABLE).astype(np.int64), np.array(K, np.int64)
        self.keys = r.integers(0, 2 ** 32, (4, N_KEYS), dtype=np.uint32)
        self.sched = r.uniform(0.01, 0.1, (4, 3)).astype(np.float32)  # other rows catch a wrong *k
        self.sched[K, 2] = 1e-8
        self.pixels = r.integers(0, 256, (TABLE, f), dtype=np.uint8)
        self.features = r.normal(0, 1, (TABLE, f)).astype(np.float32)
        self.labels = r.integers(0, m, TABLE).astype(np.int32)
        self.rng = r

    def rows(self, n):
        return self.order[K * BS:K * BS + n]

    def batch(self):
        return dict(order=self.order, k=self.k, bs=BS)

    def input(self, kind, x, dt):
        """(x, pixels, x_kind) for the kernel, and the batch's input rows as XpOps.input_matmul builds them."""
        if kind == "pixels":
            x_arg, pixels, rows = None, self.pixels, self.pixels[self.rows(len(x))].astype(dt) / dt(255)
        elif kind == "features":
            x_arg, pixels, rows = self.features.astype(dt), None, self.features[self.rows(len(x))].astype(dt)
        else:
            x_arg, pixels, rows = x.astype(dt), None, x.astype(dt)
        return dict(x=x_arg, pixels=pixels, x_kind=KIND[kind]), rows

    def mask(self, layer, shape, p, dt):
        return crng.dropout_mask(self.keys[K, layer], shape, p, dt, np) if p else None


def hidden_args(act, p, layer, keys):
    """A hidden layer's activation and dropout mask, as the kernels take them."""
    return dict(act=ACTIVATION_CODES[act], keys=keys, n_keys=keys.shape[1], layer=layer,
                threshold=crng.threshold(p) if p else 0, scale=1 / (1 - p), use_dropout=p > 0)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout,bias", [(0.3, True), (0.0, False)])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n,f,m,kind", [(33, 50, 17, "dense"), (1, 50, 40, "features"), (36, 784, 1, "pixels")])
def test_dense_forward(mod, dtype, dropout, bias, act, n, f, m, kind):
    ep, layer = Epoch(f), 1
    x, w, b = ep.rng.uniform(-1, 1, (n, f)), ep.rng.normal(0, 0.3, (f, m)), ep.rng.normal(0, 0.5, m)

    def ref(dt):
        z = ep.input(kind, x, dt)[1] @ w.astype(dt)
        REF.bias_act(z, b.astype(dt) if bias else None, act, ep.mask(layer, (n, m), dropout, dt))
        return z

    y = np.full((n, m), np.nan, dtype)
    launch(mod, "dense_forward", dtype, step_cuda.dense_forward_shape(n, m), **ep.input(kind, x, dtype)[0],
           **ep.batch(), W=w.astype(dtype), b=b.astype(dtype) if bias else None, use_bias=bias, y=y, n=n, f=f, m=m,
           **hidden_args(act, dropout, layer, ep.keys))
    check(y, ref, dtype, f)


def hidden(ep, n, f, act, dropout, layer):
    """A hidden layer's output h = act(z) * mask, in float32 values (the kernels' inputs at both types)."""
    h = ep.rng.normal(0, 1.5, (n, f)).astype(np.float32)
    REF.bias_act(h, None, act, ep.mask(layer, (n, f), dropout, np.float32))
    return h


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout,bias", [(0.25, False), (0.0, True)])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("loss", LABEL_LOSSES)  # the others: CudaOps.fused_step leaves them to the cuBLAS step
@pytest.mark.parametrize("n,f,m", [(33, 50, 10), (1, 20, 1), (17, 70, 16)])
def test_output_loss(mod, dtype, dropout, bias, act, loss, n, f, m):
    ep, layer = Epoch(f, m), 2
    h, w, b = hidden(ep, n, f, act, dropout, layer), ep.rng.normal(0, 0.5, (f, m)), ep.rng.normal(0, 0.5, m)
    labels = ep.labels[ep.rows(n)]

    def ref(dt):
        z = h.astype(dt) @ w.astype(dt) + (b.astype(dt) if bias else 0)
        dz = np.empty_like(z)
        REF.loss_grad(z, labels, dz, loss)
        diff, at = z.copy(), (np.arange(n), labels)
        diff[at] -= 1
        peak = z.max(axis=1)
        row_loss = (diff * diff).sum(1) if loss == "mse" else np.log(np.exp(z - peak[:, None]).sum(1)) + peak - z[at]
        delta = dz @ w.astype(dt).T
        REF.act_backward(delta, h.astype(dt), act, ep.mask(layer, (n, f), dropout, dt), 1.0 / (1 - dropout))
        return dz, row_loss, delta, z.argmax(1) == labels

    dz, delta = np.full((n, m), np.nan, dtype), np.full((n, f), np.nan, dtype)
    row_loss, row_hit = np.full(n, np.nan), np.full(n, -1, np.int32)
    launch(mod, "output_loss", dtype, step_cuda.output_loss_shape(n), h=h.astype(dtype), W=w.astype(dtype),
           b=b.astype(dtype) if bias else None, use_bias=bias, labels=ep.labels, targets=None, **ep.batch(), n=n, f=f,
           m=m,
           loss=LOSS_CODES[loss], dz=dz, row_loss=row_loss, row_hit=row_hit, delta=delta,
           **hidden_args(act, dropout, layer, ep.keys))
    for i, got in enumerate((dz, row_loss, delta)):
        check(got, lambda dt, i=i: ref(dt)[i], dtype, f)
    np.testing.assert_array_equal(row_hit, ref(dtype)[3])


def float_targets(rng, loss, shape):
    """Targets of ``loss``'s kind: 0/1 labels, real values, or counts."""
    if loss == "binary-cross-entropy":
        return (rng.random(shape) < 0.4).astype(np.float32)
    if loss == "poisson":
        return rng.poisson(1.5, shape).astype(np.float32)
    return rng.normal(0, 1, shape).astype(np.float32)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout,bias", [(0.25, False), (0.0, True)])
@pytest.mark.parametrize("act", ["relu", "tanh"])
@pytest.mark.parametrize("loss", [name for name in LOSS_CODES if name not in LABEL_LOSSES])
@pytest.mark.parametrize("n,f,m", [(33, 50, 3), (1, 20, 1), (17, 70, 16)])
def test_output_loss_of_float_targets(mod, dtype, dropout, bias, act, loss, n, f, m):
    """Each row against its own float targets (row order[*k * bs + r] of the table): loss, hit and dz as
    losses.loss_sum, correct_count and output_grad over n; the delta below as for the label losses."""
    ep, layer = Epoch(f, m), 2
    h, w, b = hidden(ep, n, f, act, dropout, layer), ep.rng.normal(0, 0.5, (f, m)), ep.rng.normal(0, 0.5, m)
    table = float_targets(ep.rng, loss, (TABLE, m))
    y = table[ep.rows(n)]

    def ref(dt):
        z = h.astype(dt) @ w.astype(dt) + (b.astype(dt) if bias else 0)
        yt = y.astype(dt)
        dz = np.empty_like(z)
        REF.loss_grad(z, yt, dz, loss)
        row_loss = np.array([losses.loss_sum(z[r:r + 1], yt[r:r + 1], loss, np) for r in range(n)])
        hits = np.array([losses.correct_count(z[r:r + 1], yt[r:r + 1], loss) for r in range(n)])
        delta = dz @ w.astype(dt).T
        REF.act_backward(delta, h.astype(dt), act, ep.mask(layer, (n, f), dropout, dt), 1.0 / (1 - dropout))
        return dz, row_loss, delta, hits

    dz, delta = np.full((n, m), np.nan, dtype), np.full((n, f), np.nan, dtype)
    row_loss, row_hit = np.full(n, np.nan), np.full(n, -1, np.int32)
    launch(mod, "output_loss", dtype, step_cuda.output_loss_shape(n), h=h.astype(dtype), W=w.astype(dtype),
           b=b.astype(dtype) if bias else None, use_bias=bias, labels=None, targets=table.astype(dtype), **ep.batch(),
           n=n, f=f, m=m, loss=LOSS_CODES[loss], dz=dz, row_loss=row_loss, row_hit=row_hit, delta=delta,
           **hidden_args(act, dropout, layer, ep.keys))
    for i, got in enumerate((dz, row_loss, delta)):
        check(got, lambda dt, i=i: ref(dt)[i], dtype, f)
    np.testing.assert_array_equal(row_hit, ref(dtype)[3])


@pytest.mark.parametrize("dtype", DTYPES)
def test_output_loss_hit_is_the_first_maximum(mod, dtype):
    ep, n, f, m = Epoch(8), 20, 8, 10
    b = np.array([0, 2, 2, 1, 2, 0, 0, 0, 0, 0], dtype)  # z = b on every row: class 1 is the first maximum
    row_hit = np.full(n, -1, np.int32)
    launch(mod, "output_loss", dtype, step_cuda.output_loss_shape(n), h=np.ones((n, f), dtype),
           W=np.zeros((f, m), dtype), b=b, use_bias=1, labels=ep.labels, targets=None, **ep.batch(), n=n, f=f, m=m,
           loss=LOSS_CODES["cross-entropy"], dz=np.empty((n, m), dtype), row_loss=np.empty(n), row_hit=row_hit,
           delta=np.empty((n, f), dtype), **hidden_args("relu", 0, 0, ep.keys))
    np.testing.assert_array_equal(row_hit, ep.labels[ep.rows(n)] == 1)


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("dropout", [0.4, 0.0])
@pytest.mark.parametrize("act", ACTS)
@pytest.mark.parametrize("n,f,m", [(33, 50, 17), (1, 40, 1), (40, 17, 45)])
def test_dense_backward(mod, dtype, dropout, act, n, f, m):
    ep, layer = Epoch(f), 0
    h_prev, w, d = hidden(ep, n, f, act, dropout, layer), ep.rng.normal(0, 0.5, (f, m)), ep.rng.normal(0, 1, (n, m))

    def ref(dt):
        delta = d.astype(dt) @ w.astype(dt).T
        REF.act_backward(delta, h_prev.astype(dt), act, ep.mask(layer, (n, f), dropout, dt), 1.0 / (1 - dropout))
        return delta

    out = np.full((n, f), np.nan, dtype)
    launch(mod, "dense_backward", dtype, step_cuda.dense_backward_shape(n, f), delta=d.astype(dtype),
           W=w.astype(dtype), h_prev=h_prev.astype(dtype), delta_prev=out, n=n, f=f, m=m, k=ep.k,
           **hidden_args(act, dropout, layer, ep.keys))
    check(out, ref, dtype, m)


def slot_values(rng, optimizer, shape):
    """Optimizer state mid-run: velocity, or Adam's m and v (v large enough that eps does not dominate)."""
    return [rng.normal(0, 0.05, shape), rng.uniform(0.005, 0.02, shape)][:optim.SLOTS[optimizer]]


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("weight_decay", [0.0, 0.01])
@pytest.mark.parametrize("optimizer", list(OPTIMIZER_CODES))
@pytest.mark.parametrize("n,f,m,kind,bias", [(33, 50, 17, "dense", True), (36, 784, 3, "pixels", False),
                                             (1, 50, 40, "features", True)])
def test_grad_update(mod, dtype, weight_decay, optimizer, n, f, m, kind, bias):
    ep, cfg = Epoch(f), resolve(optimizer=optimizer, weight_decay=weight_decay)
    x, d = ep.rng.uniform(-1, 1, (n, f)), ep.rng.normal(0, 0.3, (n, m))
    params = [ep.rng.normal(0, 0.3, (f, m))] + [ep.rng.normal(0, 0.3, m)] * bias
    state = [slot_values(ep.rng, optimizer, p.shape) for p in params]

    def ref(dt):
        a, dd = ep.input(kind, x, dt)[1], d.astype(dt)
        ps, st = [p.astype(dt) for p in params], [[s.astype(dt) for s in slots] for slots in state]
        optim.update(ps, [a.T @ dd, dd.sum(0)][:len(ps)], st, cfg, ep.sched[K].astype(dt), np)
        return np.concatenate([v.ravel() for v in ps + [s for slots in st for s in slots]])

    ps, st = [p.astype(dtype) for p in params], [[s.astype(dtype) for s in slots] for slots in state]
    slots = [sl + [None] * (2 - len(sl)) for sl in st] + [[None, None]]
    launch(mod, "grad_update", dtype, step_cuda.grad_update_shape(f, m), **ep.input(kind, x, dtype)[0], **ep.batch(),
           d=d.astype(dtype), n=n, f=f, m=m, W=ps[0], W_s1=slots[0][0], W_s2=slots[0][1],
           b=ps[1] if bias else None, b_s1=slots[1][0], b_s2=slots[1][1], use_bias=bias, sched=ep.sched.astype(dtype),
           **update_args(cfg))
    check(np.concatenate([a.ravel() for a in ps + [s for sl in st for s in sl]]), ref, dtype, n)


def update_args(cfg):
    beta1, beta1c, beta2, beta2c = step_cuda.update_constants(cfg.optimizer, cfg.momentum, cfg.beta1, cfg.beta2)
    return dict(opt=OPTIMIZER_CODES[cfg.optimizer], beta1=beta1, beta1c=beta1c, beta2=beta2, beta2c=beta2c,
                wd=cfg.weight_decay)


def fixed_order_sum(values, threads=step_cuda.FINISH_THREADS):
    """finish_step's order: thread t sums rows t, t + threads, ...; then halves pair up."""
    part = [0.0] * threads
    for t in range(threads):
        for v in values[t::threads]:
            part[t] += float(v)
    while threads > 1:
        threads //= 2
        part = [part[t] + part[t + threads] for t in range(threads)]
    return part[0]


@pytest.mark.parametrize("n", [5000, 3])
def test_finish_step_sums_in_a_fixed_order_and_advances_k(mod, n):
    r = np.random.default_rng(n)
    row_loss = r.normal(0, 1, n) * 10 ** r.uniform(-8, 8, n)  # mixed magnitudes: each order rounds its own way
    row_hit = r.integers(0, 2, n).astype(np.int32)
    k, step_loss, loss_sum, hits = np.array(5, np.int64), np.zeros(8), np.array(1.25), np.array(7.0)
    launch(mod, "finish_step", np.float64, step_cuda.finish_step_shape(), row_loss=row_loss, row_hit=row_hit, n=n,
           k=k, step_loss=step_loss, loss_sum=loss_sum, hits=hits)
    total = fixed_order_sum(row_loss)
    if n > 1000:  # the data tell orders apart
        assert total != fixed_order_sum(row_loss[::-1]) and total != sum(row_loss.tolist())
    assert step_loss[5] == total and loss_sum == 1.25 + total and hits == 7 + row_hit.sum()
    assert int(k) == 6 and not step_loss[[0, 1, 2, 3, 4, 6, 7]].any()


@pytest.mark.parametrize("dtype", DTYPES)
def test_pixels_scale_as_numpy_bit_for_bit(mod, dtype):
    ep, n = Epoch(1), 36  # one input and a unit weight: the output is the scaled pixel itself
    y = np.empty((n, 1), dtype)
    launch(mod, "dense_forward", dtype, step_cuda.dense_forward_shape(n, 1), x=None, pixels=ep.pixels,
           x_kind=KIND["pixels"], **ep.batch(), W=np.ones((1, 1), dtype), b=None, use_bias=0, y=y, n=n, f=1, m=1,
           **hidden_args("identity", 0, 0, ep.keys))
    expected = np.empty((n, 1), dtype)
    np.divide(ep.pixels[ep.rows(n)], dtype(255), out=expected)  # as XpOps.input_matmul
    assert y.tobytes() == expected.tobytes()


SIZES, IMAGES = [784, 24, 40, 10], 70


def trainer(variant, dtype):
    """A numpy-backend trainer on 70 synthetic images, planned for its first epoch, with a shuffled order
    and optimizer state mid-run (the same values at either dtype)."""
    cfg = resolve(backend="numpy", hidden=tuple(SIZES[1:-1]), batch_size=32, epochs=1,
                  dtype=np.dtype(dtype).name, **variant)
    r = np.random.default_rng(0)
    params = model.init_params(r, SIZES, "he", cfg.bias, np.float32)
    images, labels = r.integers(0, 256, (IMAGES, 28, 28), dtype=np.uint8), r.integers(0, 10, IMAGES)
    tr = VectorizedTrainer(cfg, get_backend("numpy"), [p.astype(dtype) for p in params], np.random.default_rng(1),
                           images, labels)
    tr._plan()
    tr._order[...] = r.permutation(IMAGES)
    for p, slots in zip(params, tr.state):
        for slot, value in zip(slots, slot_values(r, cfg.optimizer, p.shape)):
            slot[...] = value.astype(np.float32)
    return tr


def fused_step(mod, tr, k, n):
    """launch_order's launches for step ``k`` on ``n`` rows, reading the trainer's device state (copied);
    returns the parameters and optimizer state after the step, and (k, step_loss[k], loss_sum, hits)."""
    cfg, dt = tr.cfg, np.dtype(tr.cfg.dtype).type
    params, state = [p.copy() for p in tr.params], [[s.copy() for s in slots] for slots in tr.state]
    at = [i for i, p in enumerate(params) if p.ndim == 2]  # each layer's W; its b follows where 1-D
    h, delta = ([np.zeros((n, params[w].shape[1]), dt) for w in at] for _ in "hd")  # delta[-1] is dz
    row_loss, row_hit, kd = np.zeros(n), np.zeros(n, np.int32), np.array(k, np.int64)
    step_loss, loss_sum, hits = np.zeros(tr.steps_per_epoch), np.zeros(()), np.zeros(())
    batch = dict(order=tr._order, k=kd, bs=cfg.batch_size)

    def slots(i):
        return (state[i] + [None] * 2)[:2] if i is not None else [None, None]

    for kernel, i in step_cuda.launch_order(len(at)):
        if kernel == "finish_step":
            launch(mod, kernel, dt, step_cuda.finish_step_shape(), row_loss=row_loss, row_hit=row_hit, n=n, k=kd,
                   step_loss=step_loss, loss_sum=loss_sum, hits=hits)
            continue
        wi = at[i]
        bi = wi + 1 if wi + 1 < len(params) and params[wi + 1].ndim == 1 else None
        (f, m), w, b, use_b = params[wi].shape, params[wi], bi and params[bi], bi is not None
        x = dict(x=None, pixels=tr.inputs, x_kind=KIND["pixels"]) if i == 0 else \
            dict(x=h[i - 1], pixels=None, x_kind=KIND["dense"])
        below = hidden_args(cfg.activation, cfg.dropout, i - 1, tr._keys)  # the hidden layer this one reads
        if kernel == "dense_forward":
            launch(mod, kernel, dt, step_cuda.dense_forward_shape(n, m), **x, **batch, W=w, b=b, use_bias=use_b,
                   y=h[i], n=n, f=f, m=m, **hidden_args(cfg.activation, cfg.dropout, i, tr._keys))
        elif kernel == "output_loss":
            targets = dict(labels=tr.labels, targets=None) if tr.labels.ndim == 1 else \
                dict(labels=None, targets=tr.labels)
            launch(mod, kernel, dt, step_cuda.output_loss_shape(n), h=h[i - 1], W=w, b=b, use_bias=use_b, **targets,
                   **batch, n=n, f=f, m=m, loss=LOSS_CODES[cfg.loss], dz=delta[i], row_loss=row_loss,
                   row_hit=row_hit, delta=delta[i - 1], **below)
        elif kernel == "dense_backward":
            launch(mod, kernel, dt, step_cuda.dense_backward_shape(n, f), delta=delta[i], W=w, h_prev=h[i - 1],
                   delta_prev=delta[i - 1], n=n, f=f, m=m, k=kd, **below)
        else:
            (w_s1, w_s2), (b_s1, b_s2) = slots(wi), slots(bi)
            launch(mod, kernel, dt, step_cuda.grad_update_shape(f, m), **x, **batch, d=delta[i], n=n, f=f, m=m, W=w,
                   W_s1=w_s1, W_s2=w_s2, b=b, b_s1=b_s1, b_s2=b_s2, use_bias=use_b, sched=tr._sched,
                   **update_args(cfg))
    return params, state, (int(kd), step_loss[k], float(loss_sum), float(hits))


def trainer_step(tr, k, n):
    """One step of VectorizedTrainer: a full batch through the captured-step path (device counter), the
    short last batch as the trainer runs it, from a host slice."""
    if n == tr.cfg.batch_size:
        tr._k[...] = k
        tr._device_step()
    else:
        tr._step(tr._order[k * tr.cfg.batch_size:k * tr.cfg.batch_size + n], k)
    return list(tr.params), tr.state, (int(tr._k), tr._step_loss[k], float(tr._loss_sum), float(tr._hits))


VARIANTS = [
    dict(activation="relu", loss="cross-entropy", optimizer="adam", dropout=0.3, lr=1e-3),
    dict(activation="tanh", loss="mse", optimizer="momentum", dropout=0.25, bias=False, weight_decay=1e-3, lr=0.05),
    dict(activation="sigmoid", optimizer="sgd", weight_decay=1e-4, lr=0.1),
    dict(activation="identity", loss="mse", optimizer="adam", dropout=0.1, weight_decay=1e-2, lr=3e-3),
    dict(activation="relu", optimizer="nesterov", momentum=0.8, weight_decay=1e-3, lr=0.05),
    dict(activation="tanh", optimizer="classical-momentum", momentum=0.7, dropout=0.2, lr=0.05),
    dict(activation="relu", loss="binary-cross-entropy", optimizer="nesterov", dropout=0.2, lr=0.05),
    dict(activation="sigmoid", loss="squared-error", optimizer="adam", weight_decay=1e-3, lr=3e-3),
    dict(activation="tanh", loss="poisson", optimizer="sgd", bias=False, lr=0.01),
]


def arrays(result):
    """Parameters, optimizer slots and (step loss, loss sum) of a step's result."""
    params, state, counters = result
    return params + [s for slots in state for s in slots] + [np.array(counters[1:3])]


@pytest.mark.parametrize("k,n", [(1, 32), (2, 6)])  # a full batch, and the short last one
@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("variant", VARIANTS)
def test_whole_step_matches_the_trainer(mod, variant, dtype, k, n):
    fused = fused_step(mod, trainer(variant, dtype), k, n)
    refs = {dt: trainer_step(trainer(variant, dt), k, n) for dt in DTYPES}
    assert fused[2][0] == k + 1 and fused[2][3] == refs[dtype][2][3]  # the counter advanced; hits agree
    for i, got in enumerate(arrays(fused)):
        check(got, lambda dt, i=i: arrays(refs[dt])[i], dtype, SIZES[0])


def test_whole_step_is_deterministic(mod):
    tr = trainer(VARIANTS[0], np.float32)
    first, second = fused_step(mod, tr, 1, 32), fused_step(mod, tr, 1, 32)
    assert [a.tobytes() for a in arrays(first)] == [a.tobytes() for a in arrays(second)]
    assert first[2] == second[2]


@pytest.mark.skipif(shutil.which("nvcc") is None, reason="nvcc is not on PATH")
def test_every_kernel_compiles_for_sm90(tmp_path):
    src, ptx = tmp_path / "step_cuda.cu", tmp_path / "out.ptx"
    src.write_text(step_cuda.source())
    proc = subprocess.run(["nvcc", "--ptx", "-arch=sm_90", "-std=c++17", str(src), "-o", str(ptx)],
                          capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0 and "warning" not in proc.stderr, proc.stderr
    entries = re.findall(r"\.entry\s+(\w+)", ptx.read_text())
    for kernel in step_cuda.KERNELS:
        assert sum(kernel in e for e in entries) == 2, f"{kernel} is not instantiated for float and double"
    assert sum("finish_step" in e for e in entries) == 1


# ---- Each kernel's parameters are declared once (step_cuda.PARAMS), and nothing else spells them ----------

def raw_text():
    return resources.files(step_cuda.__package__).joinpath("step_cuda.cu").read_text()


def test_the_cu_file_spells_no_parameter_list():
    text = raw_text()
    definitions = re.findall(r"__global__\s+void\s+(\w+)\s*\(([^)]*)\)", text)
    assert sorted(name for name, _ in definitions) == sorted(step_cuda.PARAMS)
    for name, params in definitions:
        assert params.strip() == signatures.placeholder(name), name
    assert not re.search(r"template\s+__global__", text)  # the instantiations are generated too


@pytest.mark.parametrize("dtype", DTYPES)
def test_every_kernel_takes_the_declared_parameters(mod, dtype):
    """The compiled source's signatures, as the CPU runtime reads them, are the declarations."""
    for kernel, params in step_cuda.PARAMS.items():
        got = mod.get_function(step_cuda.kernel_name(kernel, dtype)).params
        assert [p.name for p in got] == [name for name, _ in params], kernel
        for p, (name, ctype) in zip(got, params):
            assert p.pointer == ctype.endswith("*"), name
            if not p.pointer:
                want = dtype if ctype == "T" else signatures.VALUE_TYPES[ctype]
                assert np.dtype(f"{p.kind}{p.size}") == np.dtype(want), name


def test_render_refuses_a_kernel_that_spells_its_parameters_or_is_not_declared():
    text = raw_text()
    by_hand = signatures.c_list(step_cuda.PARAMS["finish_step"])
    spelled = text.replace("finish_step(FINISH_STEP_PARAMS)", f"finish_step({by_hand})")
    with pytest.raises(ValueError, match="finish_step must be defined once"):
        signatures.render(spelled, step_cuda.PARAMS)
    with pytest.raises(ValueError, match="'extra_kernel'"):
        signatures.render(text + "__global__ void extra_kernel(int n) {}\n", step_cuda.PARAMS)
    with pytest.raises(ValueError, match="'finish_step'"):
        signatures.render(text, {k: v for k, v in step_cuda.PARAMS.items() if k != "finish_step"})


def test_a_name_the_body_uses_but_nobody_declared_does_not_compile():
    params = dict(step_cuda.PARAMS)
    params["dense_forward"] = tuple(p for p in params["dense_forward"] if p[0] != "scale")
    with pytest.raises(RuntimeError, match="scale. was not declared"):
        CpuModule(signatures.render(raw_text(), params), options=("-std=c++17",),
                  name_expressions=step_cuda.name_expressions())


def test_a_launch_names_every_argument_once_and_gets_each_at_its_width():
    out = np.zeros(4)
    given = dict(row_loss=out, row_hit=None, n=3, k=None, step_loss=out, loss_sum=out, hits=out)
    args = step_cuda.arguments("finish_step", np.float64, **given)
    assert args[0] is out and args[1] is None and type(args[2]) is np.int32 and args[2] == 3
    with pytest.raises(TypeError, match=r"finish_step: missing hits \(it takes row_loss, "):
        step_cuda.arguments("finish_step", np.float64, **{k: v for k, v in given.items() if k != "hits"})
    with pytest.raises(TypeError, match=r"finish_step: unexpected hit \("):
        step_cuda.arguments("finish_step", np.float64, **given, hit=out)
    with pytest.raises(TypeError, match="row_loss is a pointer"):
        step_cuda.arguments("finish_step", np.float64, **{**given, "row_loss": 0})
    with pytest.raises(TypeError, match="n is passed by value"):
        step_cuda.arguments("finish_step", np.float64, **{**given, "n": np.arange(3)})
    ep = Epoch(4)
    forward = dict(**ep.input("dense", np.zeros((2, 4)), np.float32)[0], **ep.batch(), W=None, b=None, use_bias=False,
                   y=None, n=2, f=4, m=3, **hidden_args("relu", 0.5, 1, ep.keys))
    args = dict(zip([name for name, _ in step_cuda.PARAMS["dense_forward"]],
                    step_cuda.arguments("dense_forward", np.float32, **forward)))
    assert [type(args[k]) for k in ("x_kind", "threshold", "scale", "use_dropout")] == \
        [np.int32, np.uint32, np.float32, np.int32]
    assert args["scale"] == 2 and args["threshold"] == crng.threshold(0.5) and args["order"] is ep.order


def test_constants_and_codes_match_the_source():
    text = step_cuda.source()
    consts = dict((name, int(v)) for name, v in re.findall(r"\b([A-Z_0-9]+) = (\d+)\b", text))
    for name in ("TILE", "KT", "THREADS_1D", "OL_ROWS", "OL_MAX_M", "FINISH_THREADS"):
        assert consts[name] == getattr(step_cuda, name), name
    for names in (ACTIVATION_CODES, LOSS_CODES, OPTIMIZER_CODES, step_cuda.INPUT_KINDS):
        for name, code in names.items():
            assert consts[name.upper().replace("-", "_")] == code, name


def test_launch_order_and_the_fused_rule():
    assert [k for k, _ in step_cuda.launch_order(2)] == \
        ["dense_forward", "output_loss", "grad_update", "grad_update", "finish_step"]
    assert step_cuda.launch_order(3) == [("dense_forward", 0), ("dense_forward", 1), ("output_loss", 2),
                                         ("grad_update", 2), ("dense_backward", 1), ("grad_update", 1),
                                         ("grad_update", 0), ("finish_step", -1)]
    assert step_cuda.step_flops(128, [784, 256, 10]) == 2 * 128 * (3 * (784 * 256 + 2560) - 784 * 256)
    assert step_cuda.use_fused(256, [784, 512, 10], np.float32)
    assert step_cuda.use_fused(128, [784, 256, 128, 10], np.float64)
    assert not step_cuda.use_fused(4096, [784, 2048, 10], np.float32)  # 27 GFLOP: cuBLAS
    assert not step_cuda.use_fused(128, [784, 4096, 10], np.float32)  # wider than FUSED_MAX_WIDTH
    assert not step_cuda.use_fused(128, [784, 256, 100], np.float32)  # more outputs than output_loss holds
    assert not step_cuda.use_fused(128, [784, 10], np.float32)  # no hidden layer
