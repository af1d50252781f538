"""The backend shim: auto-selection, remembered CUDA failures, and the two moves between host and device."""

from __future__ import annotations

import sys
import types

import numpy as np
import pytest

from mnist_accel.backends import selection as backend
from mnist_accel.errors import BackendUnavailable


@pytest.fixture
def fresh_probe():
    backend._cuda_probe.cache_clear()
    yield
    backend._cuda_probe.cache_clear()


def _fake_cupy(error: str) -> types.ModuleType:
    """A CuPy that imports but whose first device call fails, as on a machine without a GPU."""
    fake = types.ModuleType("cupy")

    def zeros(*args, **kwargs):
        raise RuntimeError(error)

    fake.zeros = zeros
    return fake


@pytest.mark.parametrize("error, driver, reason", [
    ("cudaErrorNoDevice: no CUDA-capable device is detected", 13000, "no CUDA device found"),
    ("cudaErrorInsufficientDriver: CUDA driver version is insufficient", None, "no NVIDIA driver found"),
    ("cudaErrorUnknown", 13000, "not usable"),
    ("CompileException: libnvrtc.so.13: cannot open shared object file", 13000, "NVRTC is missing"),
])
def test_cupy_without_a_device_is_remembered_not_raised(monkeypatch, fresh_probe, error, driver, reason):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error))
    monkeypatch.setattr(backend.cuda_reasons, "driver_version", lambda: driver)
    assert backend.get_backend("auto").name == "numba"  # auto never fails
    with pytest.raises(BackendUnavailable, match=reason) as info:
        backend.get_backend("cuda")
    assert "\n" not in str(info.value)


def test_the_gpu_loop_says_when_nvvm_is_missing(monkeypatch):
    from numba.cuda.cudadrv import nvvm
    from numba.cuda.cudadrv.error import NvvmSupportError

    def missing():
        raise NvvmSupportError("libNVVM cannot be found. Do `conda install cudatoolkit`:\nlibnvvm.so: cannot open")

    monkeypatch.setattr(nvvm, "NVVM", missing)
    reason = backend.loop_on_gpu_reason()
    assert reason.startswith("NVVM is missing (numba-cuda compiles the GPU loop with it): pip install")
    assert "\n" not in reason


def test_cupy_not_installed_names_the_install_command(monkeypatch, fresh_probe):
    monkeypatch.setitem(sys.modules, "cupy", None)  # makes `import cupy` raise ImportError
    with pytest.raises(BackendUnavailable, match=r"CuPy is not installed; pip install 'mnist-accel\[cuda12\]'"):
        backend.get_backend("cuda")


def test_auto_without_numba_is_numpy(monkeypatch, fresh_probe):
    monkeypatch.setitem(sys.modules, "cupy", None)
    monkeypatch.setattr(backend, "numba_available", lambda: False)
    assert backend.get_backend("auto").name == "numpy"
    with pytest.raises(BackendUnavailable, match="pip install numba"):
        backend.get_backend("numba")


def test_cpu_backends_and_moves():
    be = backend.get_backend("numpy")
    assert be.xp is np and not be.on_gpu and "CPU" in be.device
    a = np.arange(3.0)
    assert backend.to_host(backend.to_device(a, be)) is not None
    np.testing.assert_array_equal(backend.to_host(backend.to_device(a, be)), a)
    assert backend.to_host(2.5) == 2.5
