"""``python -m mnist_accel.train`` (and the ``mnist-accel-train`` script): the training command, kept where
users type it; it lives in ``mnist_accel.cli.train``."""

from mnist_accel.cli.train import main

if __name__ == "__main__":
    raise SystemExit(main())
