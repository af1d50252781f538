"""Hand-written kernels, installed as ``mnist_accel.kernels``: Numba CPU kernels in ``cpu/``, CUDA C and Numba
CUDA kernels in ``cuda/``, and the per-sample loop's block layout, which both loops read, here.

Every kernel has a plain reference in ``mnist_accel`` and is tested against it. This folder holds kernels
alone and imports nothing from ``mnist_accel``: the code that calls them (``mnist_accel.backends``,
``mnist_accel.trainers.loop``) sits above it.
"""

# The names of the activations, losses and optimizers, defined here once with the integer code every kernel
# takes for each (the CUDA C enums match, checked by the kernels' tests); mnist_accel's options take their
# names from these.
ACTIVATION_CODES = {"relu": 0, "tanh": 1, "sigmoid": 2, "identity": 3}
LOSS_CODES = {"mse": 0, "cross-entropy": 1}
OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "adam": 2}
# The per-sample loop's kernels also take deep-sgd's squared error through the softmax's elementwise derivative,
# a quirk of one write-up that the vectorized kernels (and their CUDA C enums) do not offer.
LOOP_LOSS_CODES = {**LOSS_CODES, "softmax-mse": 2}
