"""Hand-written kernels, installed as ``mnist_accel.kernels``: Numba CPU kernels here, CUDA ones beside them.

Every kernel has a plain reference in ``mnist_accel`` and is tested against it.
"""
