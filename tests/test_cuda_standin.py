"""The CuPy stand-in (tests/cuda_standin): each rule it takes from CuPy and CUDA is shown to fail where
CuPy fails (no implicit host copies, kernel arguments that do not fit their C parameters, host syncs and
cuBLAS during stream capture) and to work where CuPy works (capture and replay, memory from the
allocator in force, RawModule kernels, ``activate()`` and the subprocess runner)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import cuda_standin
import numpy as np
import pytest
from cuda_standin import _stream, xp as cp
from cuda_standin._runtime import CUDARuntimeError

pytestmark = pytest.mark.standin
TESTS = Path(__file__).resolve().parent
needs_cxx = pytest.mark.skipif(shutil.which(os.environ.get("CXX", "g++")) is None,
                               reason="RawModule compiles kernels with g++ (cuda_standin.cpu_runtime)")
SCALE = r"""
extern "C" __global__ void scale(float* x, int n, float a) {
    int i = blockIdx.x * blockDim.x + threadIdx.x;
    if (i < n) x[i] *= a;
}
"""


@pytest.fixture(autouse=True)
def no_capture_left():
    """A test that fails mid-capture must not leave a stream capturing for the next one."""
    yield
    for stream in list(_stream._capturing):
        try:
            stream.end_capture()
        except CUDARuntimeError:
            pass


@pytest.fixture
def stream():
    return cp.cuda.Stream(non_blocking=True)


# --- the device array -------------------------------------------------------------------------------

@pytest.mark.parametrize("convert", [np.asarray, np.array, lambda a: np.asarray(a, dtype=np.float64)])
def test_no_implicit_conversion_to_numpy(convert):
    with pytest.raises(TypeError, match="Implicit conversion to a NumPy array is not allowed"):
        convert(cp.zeros(3))


@pytest.mark.parametrize("op", [lambda d, h: d + h, lambda d, h: h * d, lambda d, h: cp.add(d, h),
                                lambda d, h: d.__iadd__(h), lambda d, h: np.maximum(h, d),
                                lambda d, h: d + np.array(2.0)])  # a 0-d NumPy array is refused too
def test_numpy_arrays_are_refused_in_device_operations(op):
    with pytest.raises(TypeError, match="Unsupported type <class 'numpy.ndarray'>"):
        op(cp.ones(3), np.ones(3))


def test_scalars_mix_with_device_arrays_and_results_stay_on_the_device():
    a = cp.arange(3, dtype=cp.float32)
    for result in (a * 2.5, np.float32(2) * a, 1 - a, a ** 2, a.sum(), a.max(axis=0), a == np.array(1.0)):
        assert isinstance(result, cp.ndarray)
    assert (a * 2.5).dtype == np.float32 and a.sum().shape == () and (a + np.float64(1)).dtype == np.float64
    np.testing.assert_array_equal((a - 1).get(), [-1, 0, 1])
    assert float(a.sum()) == 3.0 and int(a.argmax()) == 2


def test_basic_indexing_gives_views_and_the_cuda_array_interface_points_into_the_same_memory():
    a = cp.zeros((3, 4), cp.float32)
    row, col = a[1], a[:, 2]
    row[...] = 5
    col += 1
    np.testing.assert_array_equal(a.get()[1], [5, 5, 6, 5])
    cai, row_cai, col_cai = (x.__cuda_array_interface__ for x in (a, row, col))
    assert cai["version"] == 3 and cai["typestr"] == "<f4" and cai["strides"] is None and cai["stream"] != 0
    assert row_cai["data"] == (cai["data"][0] + 16, False) and col_cai["strides"] == (16,)
    assert isinstance(a[1, 2], cp.ndarray) and a[1, 2].shape == ()  # a 0-d view, not a host scalar


def test_take_and_integer_indexing_wrap_out_of_range_indices_as_cupys_kernels_do():
    a = cp.arange(5) * 10
    np.testing.assert_array_equal(cp.take(a, cp.asarray([0, 6, -1])).get(), [0, 10, 40])
    np.testing.assert_array_equal(a[cp.asarray([7])].get(), [20])
    grad = cp.zeros((2, 3))
    grad[cp.arange(2), cp.asarray([2, 0])] -= 1
    np.testing.assert_array_equal(grad.get(), [[0, 0, -1], [-1, 0, 0]])


def test_assigning_a_host_array_through_basic_indexing_is_refused():
    a = cp.zeros(3)
    with pytest.raises(ValueError, match="non-scalar numpy.ndarray cannot be used for fill"):
        a[...] = np.ones(3)
    a[...] = cp.asarray(np.ones(3))  # the explicit copy works
    a[cp.asarray([0])] = np.array([7.0])  # advanced indexing copies host values to the device
    np.testing.assert_array_equal(a.get(), [7, 1, 1])


def test_uncovered_names_say_so():
    for get in (lambda: cp.concatenate, lambda: cp.cuda.ExternalStream, lambda: cp.zeros(2).flags):
        with pytest.raises(AttributeError, match="stand-in .* does not cover"):
            get()



# --- streams --------------------------------------------------------------------------------------------

def test_a_streams_work_waits_for_a_synchronisation_point_so_a_missing_wait_reads_stale_data():
    """Work on a stream other than the legacy one runs when something waits for it, in issue order; until
    then, another stream that did not wait for it sees the memory as it was."""
    producer = cp.cuda.Stream(non_blocking=True)
    x = cp.zeros(4, cp.float32)
    with producer:
        x += 1
        x *= 3  # after the += on the same stream
    stale = x * 10  # the legacy stream does not wait for a non-blocking stream
    np.testing.assert_array_equal(stale.get(), np.zeros(4))
    assert not producer.done
    with producer:
        np.testing.assert_array_equal(x.get(), np.full(4, 3))  # a read on the producer's own stream waits
    assert producer.done


def test_events_order_streams_and_wait_only_for_the_work_before_them():
    producer, consumer = cp.cuda.Stream(non_blocking=True), cp.cuda.Stream(non_blocking=True)
    x = cp.zeros(4, cp.float32)
    with producer:
        x += 1
        ready = producer.record()
        x += 100  # after the event
    assert not ready.done
    consumer.wait_event(ready)
    with consumer:
        y = x * 10  # runs after the += 1 the event follows, never after the += 100 it does not wait for
        np.testing.assert_array_equal(y.get(), np.full(4, 10))
    assert ready.done and not producer.done
    ready.synchronize()
    np.testing.assert_array_equal(x.get(), np.ones(4))  # the += 100 is still queued
    cp.cuda.Device().synchronize()
    np.testing.assert_array_equal(x.get(), np.full(4, 101))


def test_the_legacy_stream_waits_for_blocking_streams_and_not_for_non_blocking_ones():
    """CuPy's streams are blocking by default (cupy/cuda/stream.pyx ``non_blocking=False``): work on the
    legacy stream waits for their earlier work, never for a non-blocking stream's."""
    blocking, non_blocking = cp.cuda.Stream(), cp.cuda.Stream(non_blocking=True)
    assert not blocking.is_non_blocking
    x, z = cp.zeros(4, cp.float32), cp.zeros(4, cp.float32)
    with blocking:
        x += 1
    with non_blocking:
        z += 1
    np.testing.assert_array_equal(x.get(), np.ones(4))  # the legacy stream's copy waited for `blocking`
    np.testing.assert_array_equal(z.get(), np.zeros(4))
    non_blocking.synchronize()
    np.testing.assert_array_equal(z.get(), np.ones(4))

# --- stream capture -----------------------------------------------------------------------------------

def test_capture_records_host_values_frozen_and_replays_device_contents_read_anew(stream):
    x, counter = cp.arange(4, dtype=cp.float32), cp.zeros((), cp.int64)
    factor = 3.0
    pool = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        y = x * factor + 1  # two nodes; y's memory comes from the pool given to using_allocator
        total = y.sum()
        counter += 1
        assert stream.is_capturing() and pool.used_bytes() > 0
        graph = stream.end_capture()
    assert graph.num_nodes == 4 and int(counter) == 0  # recorded, not run
    factor = 100.0  # the graph keeps the 3.0 it captured
    graph.launch(stream)
    stream.synchronize()  # the legacy stream's reads do not wait for a non-blocking stream
    np.testing.assert_array_equal(y.get(), [1, 4, 7, 10])
    x[...] = 1  # device memory is read at replay
    graph.launch(stream)
    stream.synchronize()
    assert float(total) == 16.0 and int(counter) == 2 and factor == 100.0


@pytest.mark.parametrize("read", [lambda t: t.get(), lambda t: t.item(), float, int, bool, str, repr,
                                  cp.asnumpy, lambda t: cp.asarray(np.ones(3))])
def test_host_transfers_during_capture_raise(stream, read):
    total = cp.ones(3).sum()
    with stream:
        stream.begin_capture()
        with pytest.raises(RuntimeError, match="the current stream is capturing, so (D2H|H2D) transfers"):
            read(total)
        stream.end_capture()  # refused before any CUDA call: the capture stays valid
    assert not stream.is_capturing()


@pytest.mark.parametrize("sync", [lambda s: s.synchronize(), lambda s: cp.cuda.Device().synchronize()])
def test_synchronizing_during_capture_invalidates_it(stream, sync):
    with stream:
        stream.begin_capture()
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            sync(stream)
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            stream.end_capture()
    assert not stream.is_capturing()


@pytest.mark.parametrize("product", [cp.matmul, cp.dot, lambda a, b: a @ b])
def test_cublas_is_refused_during_capture(stream, product):
    a, b = cp.ones((3, 4), cp.float32), cp.ones((4, 5), cp.float32)
    with stream:
        stream.begin_capture()
        with pytest.raises(NotImplementedError, match="calling cuBLAS API during stream capture is currently "
                                                      "unsupported"):
            product(a, b)
        ints = cp.matmul(a.astype(cp.int32), b.astype(cp.int32))  # CuPy's own kernel, not cuBLAS
        graph = stream.end_capture()
    graph.launch(stream)
    stream.synchronize()
    assert int(ints[0, 0]) == 4


def test_legacy_stream_work_during_a_blocking_capture_is_refused():
    blocking, other = cp.cuda.Stream(), cp.cuda.Stream(non_blocking=True)
    blocking.begin_capture()
    with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureImplicit"):
        cp.zeros(3)  # issued on the legacy stream, which would have to wait for the capture
    with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
        blocking.end_capture()
    other.begin_capture()
    assert float(cp.ones(2).sum()) == 2.0  # a non-blocking capture leaves the legacy stream alone
    other.end_capture()


def test_global_capture_mode_refuses_growing_a_pool_which_cupys_default_relaxed_mode_allows(stream):
    pool = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture(mode=cp.cuda.runtime.streamCaptureModeGlobal)
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureUnsupported"):
            cp.zeros(10)  # the pool has no free block: cudaMalloc, an unsafe call in global mode
        with pytest.raises(CUDARuntimeError, match="cudaErrorStreamCaptureInvalidated"):
            stream.end_capture()
        stream.begin_capture()  # relaxed
        cp.zeros(10)
        assert stream.end_capture().num_nodes == 1


def test_capture_needs_a_stream_of_its_own_and_pairs(stream):
    with pytest.raises(RuntimeError, match="cannot capture on the default"):
        cp.cuda.Stream.null.begin_capture()
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalState"):
        stream.end_capture()
    stream.begin_capture()
    with pytest.raises(CUDARuntimeError, match="cudaErrorIllegalState"):
        stream.begin_capture()
    stream.end_capture()


def test_a_graphs_temporaries_freed_to_a_shared_pool_are_lent_again_and_overwritten_by_replays(stream):
    """Why mnist_accel.trainers.graphs gives each graph a pool of its own: the stand-in reuses freed blocks as
    CuPy's pool does, while a graph keeps writing to the memory it captured."""
    pool, x = cp.cuda.MemoryPool(), cp.ones(256, cp.float32)
    with cp.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        (x * 2).sum()  # the temporary x * 2 (1 KiB) is freed at once, back to the pool
        graph = stream.end_capture()
        other = cp.zeros(256, cp.float32)  # 1 KiB on the same stream: the temporary's block
        graph.launch(stream)
        assert float(other.sum()) == 512.0  # the replay wrote its 2s into `other`


def test_graph_steps_fall_back_to_direct_steps_when_capture_refuses_cublas():
    from mnist_accel.trainers.graphs import GraphSteps

    a, out, count = cp.ones((4, 4), cp.float32), cp.empty((4, 4), cp.float32), cp.zeros((), cp.int64)
    with_cublas = GraphSteps(cp, lambda: (cp.add(count, 1, out=count), cp.matmul(a, a, out=out)))
    without = GraphSteps(cp, lambda: cp.add(count, 1, out=count))
    for steps in (with_cublas, without):
        with steps.epoch():
            for _ in range(3):
                steps()
        assert not steps.stream.is_capturing()
    assert with_cublas.status.startswith("off (NotImplementedError: calling cuBLAS API")
    assert without.status == "on" and without.graph.num_nodes == 1
    assert int(count) == 6  # every step ran once: the failed capture ran nothing



def test_a_graphs_freed_temporary_is_split_for_a_smaller_request_and_the_replay_overwrites_it(stream):
    """CuPy's pool splits a larger free block for a smaller request, so memory a graph keeps writing to comes
    back at any size, not only at the size it was freed with."""
    pool, x = cp.cuda.MemoryPool(), cp.ones(1024, cp.float32)
    with cp.cuda.using_allocator(pool.malloc), stream:
        stream.begin_capture()
        total = (x * 2).sum()  # the temporary x * 2 (4 KiB) is freed at once, back to the pool
        graph = stream.end_capture()
        other = cp.zeros(100, cp.float32)  # 512 bytes: the front of the temporary's block
        graph.launch(stream)
        assert float(other.sum()) == 200.0 and float(total) == 2048.0


# --- memory -------------------------------------------------------------------------------------------

def test_pools_lend_and_take_back_memory_and_mem_get_info_counts_it():
    pool = cp.cuda.MemoryPool()
    free_before = cp.cuda.runtime.memGetInfo()[0]
    with cp.cuda.using_allocator(pool.malloc):
        a = cp.empty(1000, cp.float32)  # 4000 bytes, rounded up to 4096
        with pytest.raises(ValueError, match="Can't change the global allocator"):
            cp.cuda.set_allocator(None)
    assert pool.used_bytes() == pool.total_bytes() == 4096
    assert cp.cuda.runtime.memGetInfo()[0] == free_before - 4096
    address = a.data.ptr
    del a
    assert pool.used_bytes() == 0 and pool.n_free_blocks() == 1
    with cp.cuda.using_allocator(pool.malloc):
        assert cp.empty(1024, cp.float32).data.ptr == address  # the freed block is lent again
    pool.free_all_blocks()
    assert pool.total_bytes() == 0 and cp.cuda.runtime.memGetInfo()[0] == free_before



def test_the_pool_lends_the_best_fitting_block_split_and_merges_freed_neighbours():
    """cupy/cuda/memory.pyx: the smallest free chunk that fits is taken, its front lent and the rest kept
    free (``_Chunk.split``); freed neighbours of one allocation merge again (``try_merge_chunk``); and
    ``free_all_blocks`` releases only unsplit chunks."""
    pool = cp.cuda.MemoryPool()
    with cp.cuda.using_allocator(pool.malloc):
        big, medium = cp.empty(2048, cp.float32), cp.empty(1024, cp.float32)  # 8 KiB and 4 KiB
        big_at, medium_at = big.data.ptr, medium.data.ptr
        del big, medium
        small = cp.empty(100, cp.float32)  # 512 bytes from the 4 KiB block, the smallest that fits
        assert small.data.ptr == medium_at and pool.n_free_blocks() == 2 and pool.total_bytes() == 12288
        rest = cp.empty(896, cp.float32)  # 3584 bytes: the remainder of the 4 KiB block, exactly
        assert rest.data.ptr == medium_at + 512 and pool.total_bytes() == 12288
        pieces = [cp.empty(128, cp.float32) for _ in range(16)]  # the 8 KiB block in 512-byte pieces
        assert sorted(p.data.ptr for p in pieces) == [big_at + 512 * i for i in range(16)]
        del rest, pieces
        pool.free_all_blocks()  # the 8 KiB block, merged back whole, goes; the split 4 KiB one stays
        assert pool.total_bytes() == 4096 and pool.n_free_blocks() == 1
        del small
        assert pool.n_free_blocks() == 1 and cp.empty(1024, cp.float32).data.ptr == medium_at

# --- RawModule / RawKernel ----------------------------------------------------------------------------

@needs_cxx
def test_raw_kernel_arguments_are_converted_as_cupy_does_and_checked_against_the_c_parameters():
    kernel = cp.RawModule(code=SCALE).get_function("scale")
    x = cp.arange(8, dtype=cp.float32)
    kernel((1,), (32,), (x, np.int32(8), np.float32(2)))
    np.testing.assert_array_equal(x.get(), np.arange(8) * 2)
    bad = [((x, 8, np.float32(2)), TypeError, r"argument 1 \(int n\).*8 bytes given, 4 expected"),
           ((x, np.int32(8), 2.0), TypeError, r"argument 2 \(float a\).*8 bytes given, 4 expected"),
           ((x.astype(cp.float64), np.int32(8), np.float32(2)), TypeError, "points to float32: got a device "
                                                                           "array of float64"),
           ((x[::2], np.int32(4), np.float32(2)), ValueError, "not C-contiguous"),
           ((np.ones(1, np.float32), np.int32(1), np.float32(2)), TypeError, "pass a device array, not a host"),
           ((np.ones(8, np.float32), np.int32(8), np.float32(2)), TypeError, "Only numpy.ndarrays of size one"),
           ((x, np.int32(8)), TypeError, "takes 3 arguments, 2 given")]
    for args, error, message in bad:
        with pytest.raises(error, match=message):
            kernel((1,), (32,), args)
    with pytest.raises(TypeError, match="expected tuple, got int"):
        kernel(1, 32, (x, np.int32(8), np.float32(2)))


@needs_cxx
def test_raw_kernel_launches_are_recorded_during_capture(stream):
    kernel = cp.RawModule(code=SCALE).get_function("scale")
    x = cp.ones(4, cp.float32)
    factor = np.float32(3)
    with stream:
        stream.begin_capture()
        kernel((1,), (32,), (x, np.int32(4), factor))
        graph = stream.end_capture()
    factor = np.float32(10)
    assert graph.num_nodes == 1 and float(x.sum()) == 4.0
    graph.launch(stream)
    graph.launch(stream)
    stream.synchronize()
    np.testing.assert_array_equal(x.get(), [9, 9, 9, 9])


@needs_cxx
def test_the_projects_sgd_kernel_runs_from_its_cu_file():
    from mnist_accel.kernels.cuda import vectorized_cuda

    module = cp.RawModule(code=vectorized_cuda.source(), options=("-std=c++17",),
                          name_expressions=vectorized_cuda.name_expressions())
    rng = np.random.default_rng(0)
    p, g = rng.standard_normal(300).astype(np.float32), rng.standard_normal(300).astype(np.float32)
    scalars = np.array([0.1, 0.0, 0.0], np.float32)
    dp = cp.asarray(p)
    module.get_function("sgd<float>")((2,), (256,), (dp, cp.asarray(g), np.int64(300), cp.asarray(scalars),
                                                     np.float32(0.01)))
    np.testing.assert_allclose(dp.get(), p - np.float32(0.1) * (g + np.float32(0.01) * p), rtol=1e-6)
    with pytest.raises(Exception, match="CUDA_ERROR_NOT_FOUND"):
        module.get_function("sgd<half>")



NAMES = r"""
extern "C" __global__ void c_kernel(int* x) { x[0] = 1; }
__global__ void cpp_kernel(int* x) { x[0] = 2; }
__global__ void listed(int* x) { x[0] = 3; }
template <typename T> __global__ void tmpl(T* x) { x[0] = 4; }
"""


@needs_cxx
def test_get_function_finds_name_expressions_and_extern_c_kernels_only():
    """cupy/_core/raw.pyx get_function: a name expression given at compile time is looked up by its lowered
    (mangled) name, anything else by the name as given, which for a C++ kernel is not its symbol."""
    mod = cp.RawModule(code=NAMES, name_expressions=["listed", "tmpl<int>"])
    for name in ("cpp_kernel", "tmpl<long>", "tmpl< int >", "tmpl"):  # not listed, or not as listed
        with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_NOT_FOUND: named symbol not found"):
            mod.get_function(name)
    x = cp.zeros(1, cp.int32)
    for name, value in (("c_kernel", 1), ("listed", 3), ("tmpl<int>", 4), ("_Z10cpp_kernelPi", 2)):
        mod.get_function(name)((1,), (1,), (x,))  # the last: the C++ kernel by its symbol
        assert int(x[0]) == value, name
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_NOT_FOUND"):
        cp.RawKernel(NAMES, "cpp_kernel")((1,), (1,), (x,))
    cp.RawKernel(NAMES, "c_kernel")((1,), (1,), (x,))
    assert int(x[0]) == 1


SHARED = r"""
extern "C" __global__ void dynamic_only(float* out) {
    extern __shared__ float buf[];
    buf[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = buf[blockDim.x - 1 - threadIdx.x];
}
extern "C" __global__ void static_and_dynamic(float* out) {
    __shared__ float fixed[4096];  // 16 KiB
    extern __shared__ float buf[];
    fixed[threadIdx.x] = buf[threadIdx.x] = threadIdx.x;
    __syncthreads();
    out[threadIdx.x] = fixed[blockDim.x - 1 - threadIdx.x] + buf[threadIdx.x];
}
"""


@needs_cxx
def test_shared_memory_over_48_kib_needs_the_kernels_opt_in():
    """CUDA's limits: static plus dynamic shared memory above 48 KiB is CUDA_ERROR_INVALID_VALUE at launch
    unless max_dynamic_shared_size_bytes was raised (up to the device's opt-in maximum less the static
    size), and static __shared__ above 48 KiB does not build (ptxas refuses it)."""
    mod = cp.RawModule(code=SHARED)
    dyn, both = mod.get_function("dynamic_only"), mod.get_function("static_and_dynamic")
    out = cp.zeros(32, cp.float32)
    optin = cp.cuda.runtime.getDeviceProperties(0)["sharedMemPerBlockOptin"]
    assert optin == 227 * 1024
    assert dyn.max_dynamic_shared_size_bytes == 48 * 1024 and both.shared_size_bytes == 16 * 1024
    assert both.max_dynamic_shared_size_bytes == 32 * 1024
    dyn((1,), (32,), (out,), shared_mem=48 * 1024)
    both((1,), (32,), (out,), shared_mem=32 * 1024)
    for kernel, shared in ((dyn, 48 * 1024 + 4), (both, 32 * 1024 + 4)):
        with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_INVALID_VALUE: invalid argument"):
            kernel((1,), (32,), (out,), shared_mem=shared)
    dyn.max_dynamic_shared_size_bytes = 100_000
    dyn((1,), (32,), (out,), shared_mem=100_000)
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_INVALID_VALUE"):
        dyn((1,), (32,), (out,), shared_mem=100_004)
    with pytest.raises(cp.cuda.driver.CUDADriverError, match="CUDA_ERROR_INVALID_VALUE"):
        both.max_dynamic_shared_size_bytes = optin - 16 * 1024 + 1
    both.max_dynamic_shared_size_bytes = optin - 16 * 1024
    both((1,), (32,), (out,), shared_mem=optin - 16 * 1024)
    np.testing.assert_array_equal(out.get(), np.full(32, 31, np.float32))
    too_big = 'extern "C" __global__ void k(float* o) { __shared__ float s[12289]; s[threadIdx.x] = 1; o[0] = s[1]; }'
    with pytest.raises(RuntimeError, match=r"uses too much shared data \(0xc004 bytes, 0xc000 max\)"):
        cp.RawModule(code=too_big).get_function("k")


# --- activate() and the subprocess runner ------------------------------------------------------------

def test_activate_serves_the_stand_in_to_the_backend_and_restores_everything(monkeypatch):
    from mnist_accel.backends import selection as backend

    sentinel = object()
    monkeypatch.setitem(sys.modules, "cupy", sentinel)
    reason = backend.cuda_unavailable_reason
    with cuda_standin.activate() as stand_in:
        import cupy

        assert cupy is stand_in is cp
        assert backend.get_backend("cuda").xp is cp and backend.get_backend("cuda").on_gpu
        assert backend.get_backend("auto").name == "numba"
        assert backend.cuda_unavailable_reason() == cuda_standin.REASON
    assert sys.modules["cupy"] is sentinel and backend.cuda_unavailable_reason is reason
    assert backend._cuda_probe.cache_info().currsize == 0  # the stand-in's probe is forgotten


def test_the_runner_runs_code_under_the_stand_in_and_passes_the_exit_code_on():
    code = ("import sys; from mnist_accel.backends.selection import get_backend; "
            "print(get_backend('cuda').device, get_backend('auto').name, sys.argv[1:]); sys.exit(7)")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(TESTS), os.environ.get("PYTHONPATH", "")])}
    proc = subprocess.run([sys.executable, "-m", "cuda_standin.run", "-c", code, "x"], capture_output=True,
                          text=True, env=env, cwd=TESTS.parent, timeout=120)
    assert proc.returncode == 7, proc.stderr
    assert proc.stdout.split("\n")[0] == "CuPy stand-in (NumPy on the CPU) numba ['x']"
