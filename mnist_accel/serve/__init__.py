"""The drawing pad: ``python -m mnist_accel.serve --model model.npz`` (the command is
``mnist_accel.cli.serve``) serves a page to draw a digit on and shows what the model reads, live. What the
server computes (``predictor``), what a request may send (``payloads``), its routes (``handlers``), the
server itself (``server``), and the page's files (``static/``, package data: no CDN, no build step)."""

from mnist_accel.cli.serve import main

__all__ = ["main"]
