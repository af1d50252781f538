"""``python -m mnist_accel.serve`` (and the ``mnist-accel-serve`` script): the drawing pad's command, kept
where users type it; it lives in ``mnist_accel.cli.serve``."""

from mnist_accel.cli.serve import main

if __name__ == "__main__":
    raise SystemExit(main())
