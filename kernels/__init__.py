"""Hand-written kernels, installed as ``mnist_accel.kernels``: Numba CPU kernels here, CUDA ones beside them.

Every kernel has a plain reference in ``mnist_accel`` and is tested against it. This folder holds kernels
alone and imports nothing from ``mnist_accel``: the code that calls them (``mnist_accel.ops``,
``mnist_accel.loop``) sits above it.
"""

# The integer codes every kernel takes for an activation and a loss (vectorized_cuda.cu's enum matches).
ACTIVATION_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2, "identity": 3}
LOSS_CODES = {"mse": 0, "cross-entropy": 1}
