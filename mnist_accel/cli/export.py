"""``python -m mnist_accel.export MODEL.npz MODEL.onnx``: a saved model (the training command's ``--save``,
``MLPClassifier.save``) as an ONNX file, for ONNX Runtime and every other ONNX consumer.

The graph and its input are described in docs/export.md and ``mnist_accel.onnx_export.graph``. Exit codes as
for training: 2 for bad arguments (no model file, an output that cannot be written, the onnx package
missing), 1 for a model file that cannot be read or exported.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from mnist_accel.cli.common import Parser, entry
from mnist_accel.errors import ConfigError
from mnist_accel.onnx_export import require_onnx
from mnist_accel.persist import check_writable
from mnist_accel.version import __version__

PROG = "mnist_accel.export"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Export a saved mnist-accel model to ONNX (float32, any batch size).")
    p.add_argument("model", metavar="MODEL", help="a model written by --save or MLPClassifier.save (.npz)")
    p.add_argument("output", metavar="OUTPUT", help="the ONNX file to write (e.g. model.onnx)")
    p.add_argument("--debug", action="store_true", help="show tracebacks on errors")
    p.add_argument("--version", action="version", version=f"mnist-accel {__version__}")
    return p


def check_args(model: str, output: str) -> None:
    """ConfigError for what can be seen before any work: the onnx package, the model file, the output."""
    try:
        require_onnx()
    except ImportError as exc:
        raise ConfigError(str(exc)) from None
    if not Path(model).is_file():
        raise ConfigError(f"{model}: no such file")
    if Path(model).suffix.lower() == ".onnx":
        raise ConfigError(f"{model} is an ONNX file already; give the model file (.npz) that --save wrote")
    try:
        check_writable(output, "OUTPUT")
    except ValueError as exc:
        raise ConfigError(str(exc)) from None
    if Path(output).exists() and os.path.samefile(model, output):
        raise ConfigError(f"OUTPUT {output} is the model file itself; give another name, e.g. model.onnx")


def _run(args: argparse.Namespace) -> int:
    check_args(args.model, args.output)
    from mnist_accel.onnx_export.graph import OPSET
    from mnist_accel.onnx_export.saved import export_file

    model = export_file(args.model, args.output)
    graph = model.graph
    n_in = graph.input[0].type.tensor_type.shape.dim[1].dim_value
    n_out = graph.output[0].type.tensor_type.shape.dim[1].dim_value
    layers = sum(node.op_type == "MatMul" for node in graph.node)
    print(f"wrote {args.output}: {layers} layer{'s' if layers != 1 else ''}, {n_in} inputs -> {n_out} "
          f"{graph.output[0].name}, float32, opset {OPSET}")
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
