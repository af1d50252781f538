"""The fused CUDA C kernels of the vectorized trainer (``vectorized_cuda.cu``): their parameters (declared here
once, see ``signatures``), source, names and launch shape. ``mnist_accel.backends.cuda_ops.CudaOps`` compiles
them with NVRTC (through the ``xp`` it is given) and launches them; this module imports neither CuPy nor
anything of ``mnist_accel``.
"""

from __future__ import annotations

from importlib import resources
from typing import Any

from .signatures import arguments as _arguments, declare, render

# Each kernel's parameters, the one place they are written (T: the float type).
PARAMS = {
    "bias_act": declare("T* z, const T* b, int use_bias, const T* mask, int use_mask, long long rows, int cols, "
                        "int act"),
    "act_backward": declare("T* delta, const T* h, const T* mask, int use_mask, long long n, int act, T inv_scale"),
    "loss_grad": declare("const T* z, const int* labels, T* grad, double* row_loss, int* row_hit, int rows, int k, "
                         "int mse"),
    "adam": declare("T* p, const T* g, T* m, T* v, long long n, const T* s, T beta1, T beta1c, T beta2, T beta2c, "
                    "T wd"),
    "momentum": declare("T* p, const T* g, T* vel, long long n, const T* s, T mu, T wd"),
    "sklearn_momentum": declare("T* p, const T* g, T* vel, long long n, const T* s, T mu, T wd, int lookahead"),
    "sgd": declare("T* p, const T* g, long long n, const T* s, T wd"),
}
KERNELS = tuple(PARAMS)
BLOCK = 256  # threads per block: every kernel is one thread per element (or per row, for loss_grad)


def source() -> str:
    """The kernels' complete source, as every compiler of them (NVRTC, nvcc, the tests' CPU runtime) takes it."""
    return render(resources.files(__package__).joinpath("vectorized_cuda.cu").read_text(), PARAMS)


def arguments(kernel: str, dtype: Any, **values: Any) -> tuple:
    """``kernel``'s launch arguments, by the names of ``PARAMS[kernel]`` (see ``step_cuda.arguments``)."""
    return _arguments(kernel, PARAMS[kernel], dtype, values)


def name_expressions() -> list[str]:
    """Every kernel at float and double, as NVRTC's name expressions (``bias_act<float>``)."""
    return [f"{k}<{t}>" for k in KERNELS for t in ("float", "double")]


# The options this module's kernels are compiled with by NVRTC (CudaOps gives them to cupy.RawModule, which adds
# its own; tests/kernels/test_compilers.py compiles with the same).
NVRTC_OPTIONS = ("-std=c++17",)
