"""PyTorch (CPU) training the default preset's model as a command, for the ``shared`` group to start one or
two at once as it starts ours: prints one JSON line with each epoch's seconds and the test accuracy.

    python -m bench.torch_epochs --epochs 3 [--samples 60000] [--hidden 512] [--batch 256]
"""

from __future__ import annotations

import argparse
import json
import time

from bench.workloads import torch_run
from mnist_accel.data.mnist import load_mnist


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--samples", type=int, default=60000)
    p.add_argument("--hidden", type=int, default=512)
    p.add_argument("--batch", type=int, default=256)
    args = p.parse_args(argv)
    run = torch_run("cpu", load_mnist(progress=False), args.samples, hidden=args.hidden, batch=args.batch)
    seconds = []
    for _ in range(args.epochs):
        start = time.perf_counter()
        run.step()
        seconds.append(time.perf_counter() - start)
    print(json.dumps({"epochs": [{"seconds": s} for s in seconds], "test_accuracy": run.accuracy()}))


if __name__ == "__main__":
    main()
