"""The fused CUDA C kernels of the vectorized trainer (``vectorized_cuda.cu``): their source, names and
launch shape. ``mnist_accel.backends.cuda_ops.CudaOps`` compiles them with NVRTC (through the ``xp`` it is
given) and launches them; this module imports neither CuPy nor anything of ``mnist_accel``.
"""

from __future__ import annotations

from importlib import resources

KERNELS = ("bias_act", "act_backward", "loss_grad", "adam", "momentum", "sgd")
BLOCK = 256  # threads per block: every kernel is one thread per element (or per row, for loss_grad)


def source() -> str:
    return resources.files(__package__).joinpath("vectorized_cuda.cu").read_text()


def name_expressions() -> list[str]:
    """Every kernel at float and double, as NVRTC's name expressions (``bias_act<float>``)."""
    return [f"{k}<{t}>" for k in KERNELS for t in ("float", "double")]
