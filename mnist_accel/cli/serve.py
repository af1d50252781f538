"""``python -m mnist_accel.serve --model model.npz``: a page to draw a digit on, and what the model reads.

The page (``mnist_accel/serve/static``) sends the drawing to ``POST /api/predict`` while you draw; the
server prepares it as ``python -m mnist_accel.predict`` prepares a picture and answers the ten
probabilities and the 28x28 image the model saw. It listens on 127.0.0.1 (this machine only) unless
``--host`` says otherwise. Ctrl-C stops it (exit 0). Exit codes otherwise as for the other commands: 2 bad
arguments (no model file, a port in use), 1 a model file that cannot be read.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_accel.cli.common import Parser, entry
from mnist_accel.errors import ConfigError, Stopped

PROG = "mnist_accel.serve"
DEFAULT_PORT = 8028  # not 8000, where `mkdocs serve` and many other development servers listen


def build_parser() -> argparse.ArgumentParser:
    from mnist_accel.serve.server import DEFAULT_HOST

    p = Parser(prog=PROG, description="Serve a page to draw a digit on and see what a saved model reads.")
    p.add_argument("--model", required=True, metavar="PATH", help="a model written by --save or MLPClassifier.save")
    p.add_argument("--host", default=DEFAULT_HOST, metavar="HOST",
                   help="the address to listen on: %(default)s is this machine only; 0.0.0.0 (or ::) opens the "
                   "pad to every machine that can reach this one")
    p.add_argument("--port", type=int, default=DEFAULT_PORT, metavar="N",
                   help="the port (default: %(default)s; 0: any free one)")
    p.add_argument("--log-requests", action="store_true", help="print a line for every request")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    return p


def _run(args: argparse.Namespace) -> int:
    from mnist_accel.serve.predictor import Predictor
    from mnist_accel.serve.server import is_loopback, make_server

    if not Path(args.model).is_file():
        raise ConfigError(f"{args.model}: no such file")
    try:
        import PIL  # noqa: F401
    except ImportError:
        raise ConfigError("the pad reads drawings with Pillow: pip install 'mnist-accel[images]'") from None
    predictor = Predictor.load(args.model)
    server = make_server(predictor, args.host, args.port, args.log_requests)
    try:
        if not is_loopback(args.host):
            print(f"{PROG}: warning: listening on {args.host}: anyone who can reach this machine can use the pad",
                  file=sys.stderr, flush=True)
        classes = ", ".join(map(str, predictor.classes))
        print(f"{PROG}: drawing pad for {args.model} ({classes}) at {server.url}  (Ctrl-C to stop)", flush=True)
        server.serve_forever()
    except Stopped:  # a scheduler's stop signal: the exit code says which (128 + its number)
        raise
    except KeyboardInterrupt:  # Ctrl-C is how a server is stopped: no error
        print(f"{PROG}: stopped", flush=True)
        return 0
    finally:
        server.server_close()
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
