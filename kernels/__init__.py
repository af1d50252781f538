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
# The vectorized trainer's losses. mse and cross-entropy compare the outputs with a class label; the other
# three are scikit-learn's, against float targets: binary-cross-entropy (a logistic output per label, its
# multilabel classifier), squared-error (identity outputs, half the squared error: MLPRegressor) and poisson
# (exp outputs, half the Poisson deviance: MLPRegressor(loss='poisson')). Code 2 is the loop's softmax-mse.
LOSS_CODES = {"mse": 0, "cross-entropy": 1, "binary-cross-entropy": 3, "squared-error": 4, "poisson": 5}
LABEL_LOSSES = ("mse", "cross-entropy")  # the losses the fused kernels compute from integer labels
# sgd; heavy-ball momentum as PyTorch writes it (velocity = mu * velocity + g, p -= lr * velocity); adam; and
# scikit-learn's two: Nesterov momentum (velocity = mu * velocity - lr * g, p += mu * velocity - lr * g) and
# classical momentum (velocity = mu * velocity - lr * g, p += velocity; nesterovs_momentum=False).
OPTIMIZER_CODES = {"sgd": 0, "momentum": 1, "adam": 2, "nesterov": 3, "classical-momentum": 4}
# The per-sample loop's kernels take the label losses and deep-sgd's squared error through the softmax's
# elementwise derivative, a quirk of one write-up that the vectorized kernels (and their CUDA C enums) do not
# offer.
LOOP_LOSS_CODES = {"mse": 0, "cross-entropy": 1, "softmax-mse": 2}
