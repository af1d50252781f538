"""``python -m mnist_accel.predict``: the predict command, kept where users type it; it lives in
``mnist_accel.cli.predict``."""

from mnist_accel.cli.predict import main

if __name__ == "__main__":
    raise SystemExit(main())
