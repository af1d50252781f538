"""``python -m mnist_accel.export`` (and the ``mnist-accel-export`` script): ONNX export, kept where users type
it; it lives in ``mnist_accel.cli.export``."""

from mnist_accel.cli.export import main

if __name__ == "__main__":
    raise SystemExit(main())
