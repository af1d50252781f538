"""The named presets: each a recipe from a write-up (or the speedrun's), as the options it sets over
``TrainConfig``'s defaults; ``config.resolve`` applies one, then the caller's overrides.
"""

from __future__ import annotations

from typing import Any

TUTORIAL_SEED = 884736743

PRESETS: dict[str, dict[str, Any]] = {
    "default": {},
    # numpy-tutorials' "Deep learning on MNIST", reproduced row for row.
    "tutorial": dict(path="loop", epochs=20, lr=0.005, hidden=(100,), activation="relu", loss="mse",
                     optimizer="sgd", dropout=0.5, bias=False, init="tutorial", train_samples=1000,
                     test_samples=1000, seed=TUTORIAL_SEED, dtype="float64", schedule="constant"),
    # "Neural Network From Scratch with NumPy and MNIST": per-sample SGD on 784-128-64-10, sigmoid, no biases,
    # and its squared error through the softmax's elementwise derivative.
    "deep-sgd": dict(path="loop", epochs=10, lr=0.001, hidden=(128, 64), activation="sigmoid", loss="softmax-mse",
                     optimizer="sgd", dropout=0.0, bias=False, init="normal-fan-out", dtype="float64",
                     schedule="constant"),
    # Keras's first-neural-network tutorial: Sequential Dense(128, relu), Dense(128, relu), Dense(10, softmax),
    # Adam with Keras's defaults, fit(batch_size=128, epochs=10, validation_split=0.2).
    "keras-mlp": dict(path="vectorized", epochs=10, batch_size=128, lr=1e-3, hidden=(128, 128), activation="relu",
                      loss="cross-entropy", optimizer="adam", beta1=0.9, beta2=0.999, eps=1e-7, adam_form="keras",
                      bias=True, init="glorot-uniform", schedule="constant", val_split=0.2, val_from="end",
                      dtype="float32"),
    # "Building Your First Neural Network From Scratch", vectorized: gradient descent on all 60,000 images
    # at once, lr 1.0 and 0.1 from iteration 76 (``if i > 75``), the cost and accuracy every 10 iterations.
    "full-batch": dict(path="vectorized", epochs=150, batch_size=60000, lr=1.0, hidden=(16, 16), activation="tanh",
                       loss="cross-entropy", optimizer="sgd", bias=True, init="normal:0.1", schedule="drop",
                       lr_drop_at=76, lr_drop_to=0.1, print_every=10, print_cost=True, dtype="float32"),
    # The speedrun: the fastest fixed recipe we found to its accuracy target, under the rules in docs/training.md.
    "speedrun": dict(path="vectorized", epochs=3, batch_size=64, lr=4e-3, hidden=(256,), activation="relu",
                     loss="cross-entropy", optimizer="adam", bias=True, init="he", schedule="cosine",
                     dropout=0.0, weight_decay=0.0, train_samples=None, val_split=0.0, dtype="float32"),
}

# What the loop path means by default: plain SGD at the tutorial's rate (explicit flags still win).
LOOP_DEFAULTS: dict[str, Any] = dict(optimizer="sgd", lr=0.005, schedule="constant")
