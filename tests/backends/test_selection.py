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


@pytest.mark.parametrize("error, reason", [
    ("cudaErrorNoDevice: no CUDA-capable device is detected", "no CUDA device found"),
    ("cudaErrorInsufficientDriver: CUDA driver version is insufficient", "no usable CUDA driver"),
    ("cudaErrorUnknown", "not usable"),
])
def test_cupy_without_a_device_is_remembered_not_raised(monkeypatch, fresh_probe, error, reason):
    monkeypatch.setitem(sys.modules, "cupy", _fake_cupy(error))
    assert backend.get_backend("auto").name == "numba"  # auto never fails
    with pytest.raises(BackendUnavailable, match=reason) as info:
        backend.get_backend("cuda")
    assert "\n" not in str(info.value)


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
