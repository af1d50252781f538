"""The CUDA C kernels compile (nvcc, for Hopper) on machines without a GPU; on a GPU, tests/test_ops.py
checks them against the plain-xp reference."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest

from mnist_accel.kernels import vectorized_cuda


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


def test_cuda_enum_matches_the_shared_activation_codes():
    from mnist_accel.kernels import ACTIVATION_CODES

    enum = re.search(r"enum \{([^}]*)\}", vectorized_cuda.source()).group(1)
    values = {name.strip().lower(): int(code) for name, code in (m.split("=") for m in enum.split(","))}
    assert values == ACTIVATION_CODES
