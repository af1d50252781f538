"""Every kernel through the real CUDA compilers, which need no GPU: NVRTC with the options CuPy gives it for the
``.cu`` kernels, NVVM (through Numba) for the Numba kernels, then ``ptxas -v`` for sm_80, sm_90 and sm_100. Each
kernel's registers, static plus dynamic shared memory and spills must fit the block the project launches it
with, so that a tile or block size that would not launch, or that spills, fails here and not on a GPU.

The compilers are the ``dev`` extra's wheels (``cuda_compilers``); the tests that run them skip, saying so,
only where those are not installed. The tests of ``check`` itself run everywhere.
"""

from __future__ import annotations

import dataclasses
import inspect
import re

import cuda_compilers
import pytest
from cuda_compilers import ARCHS, LOOP_KERNELS, Launch, Usage, check

from mnist_accel.backends import cuda_ops, fused_cuda
from mnist_accel.kernels.cuda import loop_cuda, step_cuda


@pytest.fixture(scope="module")
def compiled() -> cuda_compilers.Compiled:
    reason = cuda_compilers.missing()
    if reason:
        pytest.skip(reason)
    return cuda_compilers.compile_all()


def _register_problems(messages: list[str]) -> list[str]:
    return [m for m in messages if " registers" in m]


@pytest.mark.nvcc
@pytest.mark.parametrize("arch", ARCHS)
def test_every_kernel_fits_the_block_it_is_launched_with(compiled, arch):
    launched = cuda_compilers.launches()
    assert sorted(launch.label for launch in launched) == sorted(label for label, a in compiled.usage if a == arch)
    problems = [m for launch in launched for m in check(launch, compiled.usage[launch.label, arch], arch)]
    problems += [f"{name} on sm_{arch} (called by a kernel, not inlined): spills {u.spill_stores} bytes of stores"
                 for (name, a), u in compiled.callees.items() if a == arch and (u.spill_stores or u.spill_loads)]
    assert not problems, "\n".join(problems) + "\n\n" + cuda_compilers.figures(compiled, launched)


@pytest.mark.nvcc
def test_every_numba_kernel_is_checked(compiled):
    assert compiled.numba_kernels == sorted(LOOP_KERNELS), (
        "every @cuda.jit kernel of mnist_accel.kernels.cuda needs its launch in cuda_compilers.LOOP_KERNELS")
    assert compiled.nvvm == str(cuda_compilers.find("NVVM")), "Numba's NVVM is not the nvidia-nvvm wheel's"


def test_the_sources_need_no_include_path_and_no_launch_passes_shared_memory():
    """What the compiled figures leave out: CuPy's include paths (``cupy_nvrtc_options``), and dynamic shared
    memory for the ``.cu`` kernels (``cu_launch``), which CuPy's kernel call takes as ``shared_mem``."""
    for module in cuda_compilers.cu_modules():
        assert "#include" not in module.source(), f"{module.__name__}: give NVRTC CuPy's include paths"
    for caller in (cuda_ops, fused_cuda):
        assert "shared_mem" not in inspect.getsource(caller), f"{caller.__name__}: count its shared_mem in cu_launch"


# ---- The check fails where it must: launch sizes past the limits, on the kernels as compiled -------------------

@pytest.mark.nvcc
def test_a_block_past_the_register_file_is_reported(compiled, monkeypatch):
    """1024 threads a block for the Numba loop and the step's tiles: every kernel with more than 64 registers a
    thread (so more than 65,536 a block) is reported, by kernel, architecture and figures."""
    monkeypatch.setattr(loop_cuda, "THREADS", 1024)
    monkeypatch.setattr(step_cuda, "THREADS_1D", 32)
    reported = []
    for launch in cuda_compilers.launches():
        if launch.threads != 1024:
            continue
        for arch in ARCHS:
            usage = compiled.usage[launch.label, arch]
            found = _register_problems(check(launch, usage, arch))
            assert bool(found) == (usage.registers > 64), (launch, usage, found)
            reported += found
    assert {m.split("<")[0].split("[")[0] for m in reported} >= {"loop_cuda.sgd_epoch", "loop_cuda_deep.sgd_epoch"}
    pattern = r"loop_cuda\.sgd_epoch\[float64\] on sm_90: \d+ registers( \(allocated as \d+\))? x 1024 threads = " \
              r"\d+ > 65536"
    assert any(re.fullmatch(pattern, m) for m in reported), reported


@pytest.mark.nvcc
def test_shared_memory_past_48_kib_is_reported(compiled, monkeypatch):
    """The loop allowed 64 KiB of shared memory without the opt-in attribute: reported; with the attribute set,
    sm_80's 163 KiB and sm_90's and sm_100's 227 KiB hold it."""
    monkeypatch.setattr(loop_cuda, "SHARED_BYTES", 64 * 1024)
    for name in LOOP_KERNELS:
        launch = cuda_compilers.loop_launch(name, "float64")
        assert launch.dynamic_smem > 48 * 1024
        for arch in ARCHS:
            usage = compiled.usage[launch.label, arch]
            pattern = rf"{re.escape(launch.label)} on sm_{arch}: \d+ bytes static \+ {launch.dynamic_smem} dynamic " \
                      r"shared memory = \d+ > 49152 \(without max_dynamic_shared_size_bytes\)"
            assert any(re.fullmatch(pattern, m) for m in check(launch, usage, arch)), check(launch, usage, arch)
            assert not [m for m in check(dataclasses.replace(launch, opt_in=True), usage, arch) if "shared" in m]


# ---- check and the ptxas parser, on given figures ---------------------------------------------------------------

def _usage(**figures) -> Usage:
    return Usage(**{**dict(registers=32, smem=0, stack=0, spill_stores=0, spill_loads=0), **figures})


def test_check_takes_registers_as_allocated_to_whole_warps():
    assert check(Launch("dense_forward<double>", 1024), _usage(registers=96), 90) == [
        "dense_forward<double> on sm_90: 96 registers x 1024 threads = 98304 > 65536"]
    assert check(Launch("k", 1024), _usage(registers=64), 90) == []
    # 85 x 768 = 65,280 would fit, but a warp's registers come in units of 256: 88 a thread
    assert check(Launch("k", 768), _usage(registers=85), 80) == [
        "k on sm_80: 85 registers (allocated as 88) x 768 threads = 67584 > 65536"]
    assert check(Launch("k", 2048), _usage(registers=8), 100) == ["k on sm_100: 2048 threads > 1024 a block"]


def test_check_reports_shared_memory_and_spills():
    assert check(Launch("k", 256, dynamic_smem=40 * 1024), _usage(smem=16896), 90) == [
        "k on sm_90: 16896 bytes static + 40960 dynamic shared memory = 57856 > 49152 "
        "(without max_dynamic_shared_size_bytes)"]
    assert check(Launch("k", 256, dynamic_smem=40 * 1024, opt_in=True), _usage(smem=16896), 90) == []
    assert check(Launch("k", 256, dynamic_smem=160 * 1024, opt_in=True), _usage(smem=16896), 80) == [
        "k on sm_80: 16896 bytes static + 163840 dynamic shared memory = 180736 > 166912 (the opt-in maximum)"]
    assert check(Launch("k", 256), _usage(spill_stores=8, spill_loads=12), 90) == [
        "k on sm_90: spills 8 bytes of stores, 12 bytes of loads"]


def test_parse_ptxas_reads_kernels_and_the_functions_they_call():
    report = """\
ptxas info    : 44 bytes gmem
ptxas info    : Function properties for helper
    8 bytes stack frame, 4 bytes spill stores, 4 bytes spill loads
ptxas info    : Compiling entry function '_Z1kIfEvPT_' for 'sm_90'
ptxas info    : Function properties for _Z1kIfEvPT_
    0 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 82 registers, used 1 barriers, 16896 bytes smem, 400 bytes cmem[0]
ptxas info    : Compile time = 117.162 ms
ptxas info    : Compiling entry function 'plain' for 'sm_90'
ptxas info    : Function properties for plain
    16 bytes stack frame, 0 bytes spill stores, 0 bytes spill loads
ptxas info    : Used 144 registers, used 1 barriers
"""
    assert cuda_compilers.parse_ptxas(report) == {
        "helper": Usage(0, 0, 8, 4, 4, entry=False),
        "_Z1kIfEvPT_": Usage(82, 16896, 0, 0, 0),
        "plain": Usage(144, 0, 16, 0, 0),
    }


def test_cupy_options_follow_the_module_options():
    assert cuda_compilers.cupy_nvrtc_options(step_cuda.NVRTC_OPTIONS, 90) == (
        *step_cuda.NVRTC_OPTIONS, "-ftz=true", "-arch=sm_90", "--device-as-default-execution-space")
    assert cuda_compilers.cupy_nvrtc_options((), 100)[0] == "--std=c++17"
