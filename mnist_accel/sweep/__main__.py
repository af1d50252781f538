"""``python -m mnist_accel.sweep``: the sweep command (``mnist_accel.sweep.run``)."""

from mnist_accel.sweep.run import main

if __name__ == "__main__":
    raise SystemExit(main())
