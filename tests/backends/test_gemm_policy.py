"""Whether gemm_cpu runs here, and Numba's threading layer for it (``mnist_accel.backends.gemm_policy``), each case in
a fresh interpreter: the layer is picked once per process, at its first parallel region, and OpenBLAS
picks its kernels when it loads."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from importlib import metadata

import pytest

from mnist_accel.backends import gemm_policy


def _has_tbb() -> bool:
    try:
        metadata.version("tbb")
        return True
    except metadata.PackageNotFoundError:
        return False


needs_tbb = pytest.mark.skipif(not _has_tbb(), reason="the tbb wheel is not installed (not x86-64?)")


def _python(code: str, **env: str) -> subprocess.CompletedProcess:
    environ = {k: v for k, v in os.environ.items() if k not in ("NUMBA_THREADING_LAYER", "LD_LIBRARY_PATH")}
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          timeout=300, env={**environ, **env})


ASK = """
    import numba
    from mnist_accel.backends import gemm_policy
    {before}
    print(gemm_policy.parallel_ok(), numba.threading_layer())
"""


@needs_tbb
def test_tbb_from_its_wheel_is_the_layer():
    out = _python(ASK.format(before=""))
    assert out.stdout.split() == ["True", "tbb"], out.stderr


def test_without_tbb_the_default_openmp_is_not_used():
    """Where TBB cannot load, Numba falls back to OpenMP, whose forked children die: the ops keep to BLAS."""
    out = _python(ASK.format(before="gemm_policy._load_tbb = lambda: None"))
    ok, layer = out.stdout.split()
    assert layer != "tbb" and ok == "False", out.stderr


def test_openmp_named_by_the_user_is_used():
    out = _python(ASK.format(before=""), NUMBA_THREADING_LAYER="omp")
    assert out.stdout.split() == ["True", "omp"], out.stderr


def test_a_named_layer_that_cannot_load_leaves_the_work_to_blas():
    out = _python("""
        from mnist_accel.backends import gemm_policy
        gemm_policy._load_tbb = lambda: None  # as where the tbb wheel is missing
        print(gemm_policy.parallel_ok())
    """, NUMBA_THREADING_LAYER="tbb")
    assert out.stdout.split() == ["False"], out.stderr


def test_workqueue_is_never_used():
    """100 us a hand-off against OpenMP's 1.3, and it aborts when two threads launch kernels at once."""
    out = _python(ASK.format(before=""), NUMBA_THREADING_LAYER="workqueue")
    assert out.stdout.split() == ["False", "workqueue"], out.stderr


def _openblas() -> bool:
    import numpy  # noqa: F401  (loads its BLAS)
    from threadpoolctl import threadpool_info

    return any(i.get("internal_api") == "openblas" for i in threadpool_info())


needs_avx512_openblas = pytest.mark.skipif(not (gemm_policy.AVX512 and _openblas()),
                                           reason="the rule's BLAS cases need an AVX-512 CPU and OpenBLAS")


@needs_tbb
@needs_avx512_openblas
@pytest.mark.parametrize("coretype", ["Haswell", "SkylakeX"])
def test_gemm_cpu_runs_whatever_kernels_openblas_picked(coretype):
    """Held to AVX2 kernels or running its own AVX-512 ones, OpenBLAS's threads stall on a shared machine
    and its products change with its thread count: gemm_cpu runs in both cases."""
    out = _python("from mnist_accel.backends import gemm_policy; print(gemm_policy.runs_here())",
                  OPENBLAS_CORETYPE=coretype)
    assert out.stdout.split() == ["True"], out.stderr


def _fit_script(samples: int, features: int, classes: int, width: int, batch: int, then: str) -> str:
    """A fresh interpreter's script: ``fit()`` trains the drop-in on random data of that shape; ``then`` runs."""
    return f"""
        import os, warnings
        import numpy as np
        from mnist_accel import MLPClassifier

        r = np.random.default_rng(0)
        x, y = r.random(({samples}, {features}), dtype=np.float32), r.integers(0, {classes}, {samples})

        def fit():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return MLPClassifier(({width},), batch_size={batch}, max_iter=2, random_state=0,
                                     backend="numba").fit(x, y)
    """ + then


@needs_tbb
@needs_avx512_openblas
@pytest.mark.parametrize("coretype", ["Haswell", "SkylakeX"])
def test_a_fit_is_the_same_bits_on_one_thread_or_its_share(coretype):
    """The model does not depend on how many threads ran it: a grid search's worker (one thread) and the
    process that refits (every core it has) train the same model from the same seed."""
    out = _python(_fit_script(1024, 784, 10, 256, 128, """
        from threadpoolctl import threadpool_limits
        from mnist_accel.backends import cores

        many = fit()
        with threadpool_limits(1):
            one = fit()
        print(cores.share(), all(np.array_equal(a, b) for a, b in zip(many.coefs_, one.coefs_)))
    """), OPENBLAS_CORETYPE=coretype)
    share, same = out.stdout.split()
    if int(share) < 2:
        pytest.skip("this process may use one core: one thread is all it runs")
    assert same == "True", out.stderr


@needs_tbb
@needs_avx512_openblas
def test_a_forked_child_trains_after_the_parent_did():
    """scikit-learn users fork (multiprocessing's default on Linux before Python 3.14): a child must be able
    to train after its parent ran the parallel GEMMs. Under GNU OpenMP the child is killed instead."""
    out = _python(_fit_script(300, 50, 3, 64, 32, """
        parent = fit()
        pid = os.fork()
        if pid == 0:
            child = fit()
            os._exit(0 if np.array_equal(child.coefs_[0], parent.coefs_[0]) else 3)
        _, status = os.waitpid(pid, 0)
        import numba
        from mnist_accel.backends import gemm_policy
        print(gemm_policy.runs_here(), numba.threading_layer(), os.waitstatus_to_exitcode(status))
    """), OPENBLAS_CORETYPE="Haswell")
    assert out.stdout.split() == ["True", "tbb", "0"], out.stderr
