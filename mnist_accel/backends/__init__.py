"""The elementwise parts of a training step, one implementation per backend, chosen once per run.

``XpOps`` (plain ``xp``: NumPy or CuPy) is the reference; ``NumbaOps`` fuses it into Numba kernels on the
CPU and ``CudaOps`` into CUDA C kernels on the GPU. The trainer calls whichever ``make_ops`` returns and
never branches on the backend.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from mnist_accel.backends.xp_ops import StepBuffers, XpOps

if TYPE_CHECKING:
    from mnist_accel.backends.selection import Backend

__all__ = ["StepBuffers", "XpOps", "make_ops"]


def make_ops(be: Backend) -> XpOps:
    """Fused Numba kernels for ``numba``, fused CUDA C kernels for ``cuda``, plain ``xp`` for ``numpy``
    (imported lazily: Numba's kernels take a while to load, and CUDA's need an ``xp`` with RawModule)."""
    if be.name == "numba":
        from mnist_accel.backends.numba_ops import NumbaOps

        return NumbaOps()
    if be.name == "cuda":
        from mnist_accel.backends.cuda_ops import CudaOps

        return CudaOps(be.xp)
    return XpOps(be.xp)
