"""Why CUDA cannot run, in one line with what to do: no driver at all is told apart from an old one (the
CUDA runtime calls both "insufficient"), and a toolkit piece a loader could not find is named."""

from __future__ import annotations

from pathlib import Path

import pytest
import tomllib

from mnist_accel.backends import cuda_reasons as cr

ROOT = Path(__file__).parents[2]
INSUFFICIENT = "CUDARuntimeError: cudaErrorInsufficientDriver: CUDA driver version is insufficient for CUDA runtime"


def test_no_driver_at_all_is_not_sent_to_upgrade_it():
    reason = cr.explain(INSUFFICIENT, runtime=13000, driver=None)
    assert reason.startswith("no NVIDIA driver found") and "upgrade" not in reason and "--backend numba" in reason


@pytest.mark.parametrize("driver, runtime, minimum, other", [
    (12040, 13000, "580.65.06", ", or install mnist-accel[cuda12] instead"),
    (11080, 12080, "525.60.13", ""),
    (11080, 13000, "580.65.06", ""),  # a CUDA 11 driver runs neither extra
])
def test_a_driver_older_than_the_wheels_names_the_minimum(driver, runtime, minimum, other):
    reason = cr.explain(INSUFFICIENT, runtime=runtime, driver=driver)
    assert reason == (f"the NVIDIA driver supports CUDA {driver // 1000}.{driver % 1000 // 10}, but CuPy was built "
                      f"for CUDA {runtime // 1000}.{runtime % 1000 // 10}: upgrade the driver to {minimum} or later"
                      f"{other}")


@pytest.mark.parametrize("text, piece", [
    ("CompileException: libnvrtc.so.13: cannot open shared object file: No such file or directory", "NVRTC"),
    ("RuntimeError: CuPy failed to load libcublas.so.13: OSError", "cuBLAS"),
    ("NvvmSupportError: libNVVM cannot be found. Do `conda install cudatoolkit`", "NVVM"),
    ("OSError: libnvJitLink.so.13: cannot open shared object file", "nvJitLink"),
])
def test_a_missing_toolkit_piece_is_named_with_its_extra(text, piece):
    reason = cr.explain(text, runtime=13000, driver=13000)
    assert reason.startswith(f"{piece} is missing (") and "pip install 'mnist-accel[cuda13]' brings it" in reason


def test_other_failures_keep_the_runtime_s_words():
    assert cr.explain("cudaErrorNoDevice: no CUDA-capable device is detected", 13000, 13000).startswith(
        "no CUDA device found (cudaErrorNoDevice")
    assert cr.missing_piece("cudaErrorUnknown") is None


def test_the_driver_is_read_from_libcuda_itself():
    version = cr.driver_version()  # None on a machine without the NVIDIA driver, as here in CI
    assert version is None or version >= 1000


def test_the_minimums_cover_the_extras():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert {f"cuda{major}" for major in cr.DRIVER_MINIMUM} <= set(project["optional-dependencies"])
    readme = (ROOT / "README.md").read_text()
    assert all(minimum in readme for minimum in cr.DRIVER_MINIMUM.values())  # the README states each minimum
