"""Fixtures of the trainers' tests: ``any_backend``, each backend the vectorized trainer runs on ("cuda" is the
CuPy stand-in of tests/cuda_standin: CudaOps, its kernels compiled for the CPU, and the step captured as a
graph and replayed, as on a GPU)."""

from __future__ import annotations

import pytest

from mnist_accel.backends.selection import get_backend


@pytest.fixture(params=["numpy", "numba", pytest.param("cuda", marks=pytest.mark.standin)])
def any_backend(request):
    if request.param != "cuda":
        yield get_backend(request.param)
        return
    from cuda_standin import activate

    with activate():
        yield get_backend("cuda")
