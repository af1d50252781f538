"""The CUDA-on-CPU runtime (tests/cuda_standin): small CUDA C kernels, each proving one CUDA semantic the
runtime simulates (indices, barriers, warp collectives, atomics, device math), plus its Python interface."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
from cuda_standin import cpu_runtime
from cuda_standin.cpu_runtime import CpuModule, KernelError, Param

pytestmark = [pytest.mark.standin,
              pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None, reason="no C++ compiler")]

SOURCE = r"""
extern "C" __global__ void indices(unsigned* out) {
    unsigned block = blockIdx.x + gridDim.x * (blockIdx.y + gridDim.y * blockIdx.z);
    unsigned thread = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z);
    unsigned* o = out + 12 * (block * blockDim.x * blockDim.y * blockDim.z + thread);
    uint3 v[4] = {threadIdx, blockIdx, blockDim, gridDim};
    for (int i = 0; i < 4; ++i) { o[3 * i] = v[i].x; o[3 * i + 1] = v[i].y; o[3 * i + 2] = v[i].z; }
}

template <typename T>
__global__ void block_sum(const T* x, T* out, int n) {
    __shared__ T buf[1024];
    unsigned t = threadIdx.x, i = blockIdx.x * blockDim.x + t;
    buf[t] = i < n ? x[i] : T(0);
    __syncthreads();
    for (unsigned s = blockDim.x / 2; s > 0; s /= 2) {
        if (t < s) buf[t] += buf[t + s];
        __syncthreads();
    }
    if (t == 0) out[blockIdx.x] = buf[0];
}

// Each thread reads its neighbour's slot: right only if the barrier waits for every write.
extern "C" __global__ void rotate(int* out, int* counts) {
    __shared__ int slot[1024];
    int t = threadIdx.x;
    slot[t] = 1000 * blockIdx.x + t;
    __syncthreads();
    out[blockIdx.x * blockDim.x + t] = slot[(t + 1) % blockDim.x];
    int c = __syncthreads_count(t % 3 == 0), all = __syncthreads_and(t < 1000), any = __syncthreads_or(t == 5);
    if (t == 0) { counts[3 * blockIdx.x] = c; counts[3 * blockIdx.x + 1] = all; counts[3 * blockIdx.x + 2] = any; }
}

extern "C" __global__ void early_exit(int* out, int n) {
    __shared__ int s[256];
    int t = threadIdx.x;
    if (t >= n) return;
    s[t] = t * t;
    __syncthreads();
    out[t] = s[n - 1 - t];
}

extern "C" __global__ void barrier_vs_shuffle(int* out) {
    int v = threadIdx.x;
    if (threadIdx.x == 0) __syncthreads();
    out[threadIdx.x] = __shfl_sync(0xffffffffu, v, 0);
}

extern "C" __global__ void split_barriers(int* out) {
    if (threadIdx.x == 0) __syncthreads();
    else __syncthreads();
    out[threadIdx.x] = 1;
}

template <typename T>
__global__ void shuffles(const T* x, const int* arg, T* out, int width) {
    int t = blockIdx.x * blockDim.x + threadIdx.x;
    T v = x[t];
    out[4 * t] = __shfl_sync(0xffffffffu, v, arg[4 * t], width);
    out[4 * t + 1] = __shfl_up_sync(0xffffffffu, v, arg[4 * t + 1], width);
    out[4 * t + 2] = __shfl_down_sync(0xffffffffu, v, arg[4 * t + 2], width);
    out[4 * t + 3] = __shfl_xor_sync(0xffffffffu, v, arg[4 * t + 3], width);
}

extern "C" __global__ void votes(const int* pred, unsigned* out) {
    int t = threadIdx.x + blockDim.x * (threadIdx.y + blockDim.y * threadIdx.z), lane = t % 32;
    out[5 * t] = __ballot_sync(0xffffffffu, pred[t]);
    out[5 * t + 1] = __any_sync(0xffffffffu, pred[t]);
    out[5 * t + 2] = __all_sync(0xffffffffu, pred[t]);
    out[5 * t + 3] = lane < 16 ? __ballot_sync(0x0000ffffu, pred[t]) : __ballot_sync(0xffff0000u, !pred[t]);
    __shared__ int s[64];
    s[t] = 3 * t;
    __syncwarp();
    out[5 * t + 4] = s[t ^ 1];
}

extern "C" __global__ void shuffle_from_exited(float* out) {
    if (threadIdx.x == 3) return;
    out[threadIdx.x] = __shfl_down_sync(0xffffffffu, out[threadIdx.x], 1);
}

extern "C" __global__ void bad_width(float* out) { out[0] = __shfl_xor_sync(0xffffffffu, out[0], 1, 12); }
extern "C" __global__ void foreign_mask(unsigned* out) { out[threadIdx.x] = __ballot_sync(1u, 1); }
extern "C" __global__ void traps(int* out) { if (threadIdx.x == 7) __trap(); out[threadIdx.x] = 1; }
extern "C" __global__ void asserts(int* out) { assert(threadIdx.x < 5); out[threadIdx.x] = 1; }

extern "C" __global__ void atomics(const int* x, int n, unsigned* bins, unsigned long long* total, float* fsum,
                                   double* dsum, int* imax, unsigned* umin, int* ticket, int* fmax_bits) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    atomicAdd(&bins[x[i]], 1u);
    atomicAdd(total, (unsigned long long)x[i]);
    atomicAdd(fsum, 0.5f);
    atomicAdd(dsum, 0.25);
    atomicMax(imax, x[i] * 3 - 7);
    atomicMin(umin, (unsigned)x[i] + 2u);
    ticket[i] = atomicAdd(&ticket[n], 1);
    atomicSub(&ticket[n + 1], 2);
    float v = (float)x[i] * 0.5f;
    int old = *fmax_bits, assumed;
    do {  // the classic float atomicMax built from atomicCAS
        assumed = old;
        old = atomicCAS(fmax_bits, assumed, __float_as_int(fmaxf(v, __int_as_float(assumed))));
    } while (assumed != old);
}

template <typename T>
__global__ void math(const T* x, T* out, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    T v = x[i], a = fabs(v);
    T r[] = {exp(v), log(a + T(1)), tanh(v), sqrt(a), a, fmax(v, T(0.5)), fmin(v, T(0.5)), fma(v, v, T(1)),
             pow(a, T(1.5)), floor(v), ceil(v), rsqrt(a + T(1)), T(isfinite(v)), T(isnan(v))};
    static_assert(sizeof(exp(v)) == sizeof(T), "exp(float) computes in float");
    for (int j = 0; j < 14; ++j) out[14 * i + j] = r[j];
}

extern "C" __global__ void math_f(const float* x, float* out, int* iout, int n) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i >= n) return;
    float v = x[i], a = fabsf(v);
    float r[] = {expf(v), logf(a + 1.0f), tanhf(v), sqrtf(a), fmaxf(v, 0.5f), fminf(v, 0.5f), fmaf(v, v, 1.0f),
                 rsqrtf(a + 1.0f), __expf(v), __logf(a + 1.0f), __fdividef(v, 3.0f)};
    for (int j = 0; j < 11; ++j) out[11 * i + j] = r[j];
    iout[2 * i] = max(i, 7);
    iout[2 * i + 1] = min(i - 5, 3);
}

extern "C" __global__ void reverse_dynamic(const float* x, float* out) {
    extern __shared__ float tile[];
    int t = threadIdx.x, base = blockIdx.x * blockDim.x;
    tile[t] = x[base + t];
    __syncthreads();
    out[base + t] = tile[blockDim.x - 1 - t] + MAGIC;
}
"""

NAMES = ["block_sum<float>", "block_sum<double>", "shuffles<float>", "shuffles<double>", "shuffles<int>",
         "shuffles<long long>", "math<float>", "math<double>"]


@pytest.fixture(scope="module", params=["fibers", "ucontext"])
def mod(request):
    """The kernels above, built with the hand-written x86-64 switch and with the portable ucontext one."""
    options = ("-std=c++17", "-DMAGIC=0.25f", "--use_fast_math", "-arch=sm_90")
    if request.param == "ucontext":
        options += ("-DCUDA_ON_CPU_UCONTEXT",)
    return CpuModule(SOURCE, options, NAMES)


def ptr(a: np.ndarray) -> bytes:
    return a.ctypes.data.to_bytes(8, "little")


def i32(v: int) -> bytes:
    return np.int32(v).tobytes()


def test_index_variables_over_3d_grids_and_blocks(mod):
    grid, block = (3, 2, 2), (4, 3, 2)
    out = np.full((12, 24, 12), 99, np.uint32)
    mod.get_function("indices").launch(grid, block, [ptr(out)])
    bz, by, bx, tz, ty, tx = np.meshgrid(*(np.arange(d) for d in (*grid[::-1], *block[::-1])), indexing="ij")
    expected = np.stack([tx, ty, tz, bx, by, bz, *(np.full_like(tx, d) for d in (*block, *grid))], -1)
    np.testing.assert_array_equal(out, expected.reshape(12, 24, 12))


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
@pytest.mark.parametrize("block", [1, 32, 256, 1024])
def test_shared_memory_tree_reduction(mod, dtype, block):
    x = np.random.default_rng(block).integers(-50, 50, 3000).astype(dtype)  # exact sums in either dtype
    blocks = -(-x.size // block)
    out = np.zeros(blocks, dtype)
    name = f"block_sum<{'float' if dtype == np.float32 else 'double'}>"
    mod.get_function(name).launch((blocks, 1, 1), (block, 1, 1), [ptr(x), ptr(out), i32(x.size)])
    np.testing.assert_array_equal(out, np.add.reduceat(x, np.arange(0, x.size, block)))


def test_barrier_waits_for_every_write_and_reduces_predicates(mod):
    out, counts = np.zeros(3 * 100, np.int32), np.zeros(9, np.int32)
    mod.get_function("rotate").launch((3, 1, 1), (100, 1, 1), [ptr(out), ptr(counts)])
    t = np.arange(100)
    np.testing.assert_array_equal(out.reshape(3, 100), 1000 * np.arange(3)[:, None] + (t + 1) % 100)
    np.testing.assert_array_equal(counts, [34, 1, 1] * 3)


def test_threads_that_exit_before_a_barrier_do_not_block_it(mod):
    out = np.zeros(100, np.int32)
    mod.get_function("early_exit").launch((1, 1, 1), (256, 1, 1), [ptr(out), i32(100)])
    np.testing.assert_array_equal(out, (99 - np.arange(100)) ** 2)


def test_deadlock_raises_and_the_runtime_recovers(mod):
    out = np.zeros(64, np.int32)
    with pytest.raises(KernelError, match=r"deadlock in block \(0, 0, 0\)") as err:
        mod.get_function("barrier_vs_shuffle").launch((1, 1, 1), (64, 1, 1), [ptr(out)])
    assert "thread 0: waiting at __syncthreads" in str(err.value)
    assert "threads 1-31: waiting at __shfl_sync with mask 0xffffffff" in str(err.value)
    assert "threads 32-63: exited" in str(err.value)
    with pytest.raises(KernelError, match="different barriers"):
        mod.get_function("split_barriers").launch((1, 1, 1), (8, 1, 1), [ptr(out)])
    test_barrier_waits_for_every_write_and_reduces_predicates(mod)


def _shuffle_model(x, arg, width):
    """CUDA's documented semantics, lane by lane (not the PTX formula the runtime uses)."""
    lane = np.arange(x.size) % 32
    start = lane // width * width
    sources = [start + arg[:, 0] % width,
               np.where(lane - start >= arg[:, 1], lane - arg[:, 1], lane),
               np.where(lane - start + arg[:, 2] < width, lane + arg[:, 2], lane),
               np.where((lane ^ arg[:, 3]) < start + width, lane ^ arg[:, 3], lane)]  # earlier groups only
    warp = np.arange(x.size) // 32 * 32
    return np.stack([x[warp + s] for s in sources], 1)


@pytest.mark.parametrize("ctype, dtype", [("float", np.float32), ("double", np.float64), ("int", np.int32),
                                          ("long long", np.int64)])
@pytest.mark.parametrize("width", [1, 2, 4, 8, 16, 32])
def test_warp_shuffles_match_cuda_semantics(mod, ctype, dtype, width):
    r = np.random.default_rng(width)
    x = (r.normal(size=128) * 1e3).astype(dtype)
    arg = np.stack([r.integers(0, 64, 128), *(r.integers(0, 32, 128) for _ in range(3))], 1).astype(np.int32)
    out = np.zeros((128, 4), dtype)
    mod.get_function(f"shuffles<{ctype}>").launch((2, 1, 1), (64, 1, 1), [ptr(x), ptr(arg), ptr(out), i32(width)])
    np.testing.assert_array_equal(out, _shuffle_model(x, arg, width))


@pytest.mark.parametrize("block", [(48, 1, 1), (4, 3, 4)])  # lanes follow the linear thread id
def test_votes_and_syncwarp_over_a_partial_warp(mod, block):
    pred = (np.random.default_rng(3).random(48) < 0.5).astype(np.int32)
    pred[32:40] = 1
    out = np.zeros((48, 5), np.uint32)
    mod.get_function("votes").launch((1, 1, 1), block, [ptr(pred), ptr(out)])
    for w, lanes in ((0, 32), (1, 16)):  # warp 1 has 16 lanes: the missing ones do not take part
        p, o = pred[32 * w:32 * w + lanes], out[32 * w:32 * w + lanes]
        bits = int(np.sum(p.astype(np.uint64) << np.arange(lanes, dtype=np.uint64)))
        np.testing.assert_array_equal(o[:, :3], np.tile([bits, p.any(), p.all()], (lanes, 1)))
        low, high = bits & 0xFFFF, ~bits & 0xFFFF0000 & ((1 << lanes) - 1)
        np.testing.assert_array_equal(o[:, 3], np.where(np.arange(lanes) < 16, low, high))
    np.testing.assert_array_equal(out[:, 4], 3 * (np.arange(48) ^ 1))


def test_errors_inside_kernels_raise_without_killing_the_process(mod):
    out = np.zeros(32, np.float32)
    with pytest.raises(KernelError, match="reads lane 3, which has exited"):
        mod.get_function("shuffle_from_exited").launch((1, 1, 1), (32, 1, 1), [ptr(out)])
    with pytest.raises(KernelError, match="width 12; it must be a power of 2"):
        mod.get_function("bad_width").launch((1, 1, 1), (32, 1, 1), [ptr(out)])
    with pytest.raises(KernelError, match="mask 0x00000001, which does not name the calling lane 1"):
        mod.get_function("foreign_mask").launch((1, 1, 1), (32, 1, 1), [ptr(out)])
    with pytest.raises(KernelError, match=r"thread \(7, 0, 0\), line \d+: __trap"):
        mod.get_function("traps").launch((1, 1, 1), (32, 1, 1), [ptr(out)])
    with pytest.raises(KernelError, match=r"assertion failed: threadIdx.x < 5"):
        mod.get_function("asserts").launch((1, 1, 1), (32, 1, 1), [ptr(out)])


def test_atomics_over_many_blocks(mod):
    n = 5000
    x = np.random.default_rng(4).integers(0, 20, n).astype(np.int32)
    bins, total = np.zeros(20, np.uint32), np.zeros(1, np.uint64)
    fsum, dsum = np.zeros(1, np.float32), np.zeros(1, np.float64)
    imax, umin = np.array([-(2**31)], np.int32), np.array([2**32 - 1], np.uint32)
    ticket, fmax = np.zeros(n + 2, np.int32), np.array([-np.inf], np.float32)
    args = [ptr(x), i32(n), ptr(bins), ptr(total), ptr(fsum), ptr(dsum), ptr(imax), ptr(umin), ptr(ticket),
            ptr(fmax)]
    mod.get_function("atomics").launch((-(-n // 128), 1, 1), (128, 1, 1), args)
    np.testing.assert_array_equal(bins, np.bincount(x, minlength=20))
    assert (total[0], fsum[0], dsum[0]) == (x.sum(), 0.5 * n, 0.25 * n)
    assert (imax[0], umin[0], fmax[0]) == (3 * x.max() - 7, x.min() + 2, x.max() * 0.5)
    assert sorted(ticket[:n]) == list(range(n)) and ticket[n + 1] == -2 * n  # atomics return the old value


@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_device_math_matches_numpy(mod, dtype):
    x = np.concatenate([np.linspace(-5, 5, 97), [0.0, np.inf, -np.inf, np.nan]]).astype(dtype)
    out = np.zeros((x.size, 14), dtype)
    name = f"math<{'float' if dtype == np.float32 else 'double'}>"
    mod.get_function(name).launch((1, 1, 1), (128, 1, 1), [ptr(x), ptr(out), i32(x.size)])
    a, one = np.abs(x), dtype(1)
    with np.errstate(all="ignore"):
        expected = np.stack([np.exp(x), np.log(a + one), np.tanh(x), np.sqrt(a), a, np.fmax(x, dtype(0.5)),
                             np.fmin(x, dtype(0.5)), x * x + one, a ** dtype(1.5), np.floor(x), np.ceil(x),
                             one / np.sqrt(a + one), np.isfinite(x), np.isnan(x)], 1).astype(dtype)
    ulp = np.finfo(dtype).eps
    np.testing.assert_allclose(out, expected, rtol=4 * ulp, atol=0)


def test_float_intrinsics_and_integer_min_max(mod):
    x = np.linspace(-4, 4, 50).astype(np.float32)
    out, iout = np.zeros((50, 11), np.float32), np.zeros((50, 2), np.int32)
    mod.get_function("math_f").launch((2, 1, 1), (32, 1, 1), [ptr(x), ptr(out), ptr(iout), i32(50)])
    a, one = np.abs(x), np.float32(1)
    expected = np.stack([np.exp(x), np.log(a + one), np.tanh(x), np.sqrt(a), np.fmax(x, np.float32(0.5)),
                         np.fmin(x, np.float32(0.5)), x * x + one, one / np.sqrt(a + one), np.exp(x),
                         np.log(a + one), x / np.float32(3)], 1)
    np.testing.assert_allclose(out, expected, rtol=4 * np.finfo(np.float32).eps, atol=0)
    i = np.arange(50)
    np.testing.assert_array_equal(iout, np.stack([np.maximum(i, 7), np.minimum(i - 5, 3)], 1))


def test_dynamic_shared_memory_and_mapped_options(mod):
    x = np.arange(3 * 64, dtype=np.float32)
    out = np.zeros_like(x)
    kernel = mod.get_function("reverse_dynamic")
    kernel.launch((3, 1, 1), (64, 1, 1), [ptr(x), ptr(out)], shared_mem=64 * 4)
    np.testing.assert_array_equal(out, x.reshape(3, 64)[:, ::-1].ravel() + 0.25)  # -DMAGIC=0.25f reached g++
    with pytest.raises(ValueError, match="shared_mem"):
        kernel.launch((1, 1, 1), (64, 1, 1), [ptr(x), ptr(out)], shared_mem=10**6)


def test_signatures_are_parsed_from_templates_and_multi_line_declarations():
    code = """
    template <typename T, typename U = int>
    __global__ void
    __launch_bounds__(128, 2)
    multi(T* __restrict__ out,   // a comment, with a comma
          const T* in, long long n,
          unsigned int flags, bool on, U count, const int* idx,
          unsigned char* bytes, T scale, unsigned long long big) {}
    extern "C" __global__ void plain(const float* __restrict__ a, unsigned n) {}
    """
    mod = CpuModule(code, name_expressions=["multi<double>"])
    f64, f32, i32_, u8 = (np.dtype(t) for t in ("f8", "f4", "i4", "u1"))
    assert mod.get_function("multi<double>").params == (
        Param("out", "double*", True, f64, "p", 8), Param("in", "const double*", True, f64, "p", 8),
        Param("n", "long long", False, None, "i", 8), Param("flags", "unsigned int", False, None, "u", 4),
        Param("on", "bool", False, None, "b", 1), Param("count", "int", False, None, "i", 4),
        Param("idx", "const int*", True, i32_, "p", 8), Param("bytes", "unsigned char*", True, u8, "p", 8),
        Param("scale", "double", False, None, "f", 8), Param("big", "unsigned long long", False, None, "u", 8))
    assert mod.get_function("plain").params == (Param("a", "const float*", True, f32, "p", 8),
                                                Param("n", "unsigned int", False, None, "u", 4))
    with pytest.raises(LookupError, match=r"'multi<float>'.*\['multi<double>', 'plain'\]"):
        mod.get_function("multi<float>")
    with pytest.raises(LookupError, match="no __global__ kernel for 'missing'"):
        CpuModule(code, name_expressions=["missing"])
    with pytest.raises(ValueError, match="template arguments"):
        CpuModule(code, name_expressions=["multi"])


def test_launch_checks_arguments_and_configuration(mod):
    kernel, out = mod.get_function("early_exit"), np.zeros(8, np.int32)
    with pytest.raises(ValueError, match=r"takes 2 arguments \(out, n\), got 1"):
        kernel.launch((1, 1, 1), (8, 1, 1), [ptr(out)])
    with pytest.raises(ValueError, match=r"argument 1 \(int n\) takes 4 bytes, got 8"):
        kernel.launch((1, 1, 1), (8, 1, 1), [ptr(out), np.int64(8).tobytes()])
    with pytest.raises(ValueError, match="more than 1024 threads"):
        kernel.launch((1, 1, 1), (64, 32, 1), [ptr(out), i32(8)])
    for grid, block in (((0, 1, 1), (8, 1, 1)), ((1, 1, 1), (8, 0, 1)), ((1, 1, 1), (8, 1, 1, 1))):
        with pytest.raises(ValueError, match="dimensions"):
            kernel.launch(grid, block, [ptr(out), i32(8)])


def test_compile_errors_carry_the_compiler_output():
    with pytest.raises(RuntimeError, match=r"(?s)kernel.cu:1:.*undefined_name"):
        CpuModule('extern "C" __global__ void bad(int* x) { x[0] = undefined_name; }')


def test_libraries_are_cached_on_disk(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    code = 'extern "C" __global__ void one(int* x) { x[threadIdx.x] = 1; }'
    CpuModule(code)
    (lib,) = (tmp_path / "mnist-accel" / "cuda-on-cpu").iterdir()  # no partial file left behind
    assert lib.suffix == ".so"
    stamp = lib.stat().st_mtime_ns
    x = np.zeros(4, np.int32)
    monkeypatch.setattr(cpu_runtime, "_LOADED", {})  # as in a fresh process
    CpuModule(code).get_function("one").launch((1, 1, 1), (4, 1, 1), [ptr(x)])
    assert lib.stat().st_mtime_ns == stamp and x.tolist() == [1] * 4


def test_gnu_extensions_that_nvrtc_rejects_do_not_compile():
    """NVRTC refuses variable-length arrays (a GNU extension g++ accepts by default): the runtime compiles
    with -pedantic-errors, so a kernel that would not build on the GPU does not build in the tests either."""
    vla = 'extern "C" __global__ void vla(float* out, int n) { float buf[n]; buf[0] = 1; out[0] = buf[0]; }'
    with pytest.raises(RuntimeError, match=r"(?s)kernel.cu:1:.*variable length array"):
        CpuModule(vla)



def test_static_shared_memory_is_poisoned_at_each_blocks_start():
    """Shared memory starts undefined on a GPU: a slot no thread of the block wrote reads as NaN (0xff
    bytes), never as zero or as what the previous block (or launch) left there."""
    code = r"""
    extern "C" __global__ void half_written(float* out) {
        __shared__ float s[64];
        int t = threadIdx.x;
        if (t % 2 == 0) s[t] = blockIdx.x + 1;
        __syncthreads();
        out[blockIdx.x * blockDim.x + t] = s[t];
    }"""
    kernel = CpuModule(code).get_function("half_written")
    for _ in range(2):
        out = np.zeros((3, 64), np.float32)
        kernel.launch((3, 1, 1), (64, 1, 1), [ptr(out)])
        np.testing.assert_array_equal(out[:, ::2], np.repeat([[1], [2], [3]], 32, axis=1))
        assert np.isnan(out[:, 1::2]).all()
