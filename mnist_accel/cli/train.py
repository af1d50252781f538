"""``python -m mnist_accel.train``: the training command line.

Flags left out take the preset's value (``--preset default`` unless given); every resolved option is
printed in ``--metrics-json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_accel.cli.common import Parser, entry
from mnist_accel.config import ADAM_FORMS, BACKENDS, DTYPES, OPTIMIZERS, PATHS, PRESETS, SCHEDULES, VAL_FROM, resolve
from mnist_accel.errors import ConfigError
from mnist_accel.model import INITS, LOSSES
from mnist_accel.persist import check_writable, save_model, write_json
from mnist_accel.plots import FIGURES, PRESET_FIGURES
from mnist_accel.version import __version__

PROG = "mnist_accel.train"
# where Ctrl-C or a scheduler's stop signal saves the state when --checkpoint is not given
INTERRUPT_PATH = "mnist_accel-interrupted.npz"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Train an MLP on MNIST from scratch, on NumPy, Numba or CUDA.")
    a = p.add_argument
    a("--preset", choices=sorted(PRESETS), default="default", help="named set of defaults (default: %(default)s)")
    a("--backend", choices=BACKENDS, help="compute backend (default: auto)")
    a("--path", choices=PATHS, help="vectorized mini-batch training or the tutorial's per-sample loop")
    a("--epochs", type=int, help="passes over the training data")
    a("--batch-size", type=int, help="mini-batch size (vectorized path)")
    a("--lr", type=float, help="learning rate")
    a("--hidden", type=int, nargs="+", metavar="N", help="hidden layer widths, e.g. --hidden 256 128")
    a("--activation", choices=("relu", "tanh", "sigmoid"), help="hidden activation")
    a("--loss", choices=LOSSES, help="softmax cross-entropy, or the tutorial's squared error")
    a("--optimizer", choices=OPTIMIZERS, help="update rule (the loop path is sgd)")
    a("--dropout", type=float, metavar="P", help="drop probability of hidden units (tutorial: 0.5)")
    a("--bias", action=argparse.BooleanOptionalAction, default=None, help="learn biases")
    a("--init", metavar="RULE", help=f"weight initialisation: {', '.join(INITS)} (S: a scale, e.g. normal:0.1)")
    a("--weight-decay", type=float, metavar="L2", help="L2 penalty on weights (vectorized path)")
    a("--schedule", choices=SCHEDULES, help="learning-rate schedule (vectorized path)")
    a("--lr-drop-at", type=int, metavar="STEP", help="--schedule drop: the first step (0-based) at the lower rate")
    a("--lr-drop-to", type=float, metavar="LR", help="--schedule drop: the lower rate (default: a tenth of --lr)")
    a("--eps", type=float, help="Adam's denominator guard (default 1e-8)")
    a("--adam-form", choices=ADAM_FORMS, help="where Adam's eps sits: PyTorch's (default) or Keras's")
    a("--val-split", type=float, metavar="F", help="share of training data held out for validation")
    a("--val-from", choices=VAL_FROM, help="hold out a random subset (default) or the last images, as Keras does")
    a("--patience", type=int, metavar="N", help="epochs without validation improvement before stopping (0: never)")
    a("--train-samples", type=int, metavar="N", help="train on the first N images")
    a("--test-samples", type=int, metavar="N", help="test on the first N images")
    a("--seed", type=int, help="random seed (initialisation, shuffling, dropout)")
    a("--dtype", choices=DTYPES, help="floating-point precision")
    a("--threads", type=int, metavar="N",
      help="CPU threads for BLAS and our first-layer GEMMs (default 0: this process's share of the cores)")
    a("--graphs", action=argparse.BooleanOptionalAction, default=None,
      help="GPU: replay each training step from a captured CUDA graph (default: on)")
    a("--data-dir", metavar="DIR", help="folder with the MNIST IDX files (else $MNIST_ACCEL_DATA, cache, download)")
    a("--save", metavar="PATH", help="write the trained model (.npz)")
    a("--metrics-json", metavar="PATH", help="write the run's metrics as JSON")
    a("--plot", metavar="PATH", help="write a PNG of --figures (matplotlib)")
    a("--figures", choices=FIGURES, help="what --plot draws: report (curves, confusion matrix, misclassified "
      "digits), curves, or keras (the Keras tutorial's four); default: the preset's")
    a("--print-every", type=int, metavar="N", help="print every N-th epoch's line and the last (default 1)")
    a("--print-cost", action=argparse.BooleanOptionalAction, default=None,
      help="also print the training loss averaged over the 10 outputs (the full-batch write-up's cost)")
    a("--checkpoint", metavar="PATH", help="write the full training state after every epoch (and on Ctrl-C or SIGTERM)")
    a("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    a("--quiet", action="store_true", help="print only the summary")
    a("--debug", action="store_true", help="show tracebacks on errors")
    a("--version", action="version", version=f"mnist-accel {__version__}")
    return p


OPTION_NAMES = ("backend", "path", "epochs", "batch_size", "lr", "hidden", "activation", "loss", "optimizer",
                "dropout", "bias", "init", "weight_decay", "schedule", "val_split", "patience", "train_samples",
                "test_samples", "seed", "dtype", "threads", "graphs", "data_dir", "lr_drop_at", "lr_drop_to", "eps",
                "adam_form", "val_from", "print_every", "print_cost")


def _epoch_line(r: dict, total: int, cost: bool = False) -> str:
    val = f"  val loss {r['val_loss']:.4f} acc {r['val_accuracy']:.4f}" if "val_loss" in r else ""
    # the write-up's cost is the mean over every (sample, output) entry; our loss is summed over the outputs
    per_entry = f" cost {r['train_loss'] / 10:.4f}" if cost else ""
    return (f"epoch {r['epoch'] + 1:>3}/{total}  train loss {r['train_loss']:.4f}{per_entry} acc "
            f"{r['train_accuracy']:.4f}{val}  test loss {r['test_loss']:.4f} acc {r['test_accuracy']:.4f}"
            f"  {r['seconds']:.2f}s")


def _printed(r: dict, cfg) -> bool:
    """Every ``print_every``-th epoch from the first (the write-ups' ``if i % 10 == 0``), and the last."""
    return r["epoch"] % cfg.print_every == 0 or r["epoch"] == cfg.epochs - 1


def _check_args(args: argparse.Namespace) -> None:
    if args.plot is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise ConfigError("--plot needs matplotlib: pip install 'mnist-accel[plot]'") from None
    if args.resume is not None and not Path(args.resume).is_file():
        raise ConfigError(f"--resume {args.resume}: no such file")
    for flag, value in (("--save", args.save), ("--metrics-json", args.metrics_json), ("--plot", args.plot),
                        ("--checkpoint", args.checkpoint)):
        if value is not None:
            try:
                check_writable(value, flag)
            except ValueError as exc:
                raise ConfigError(str(exc)) from None
    if args.data_dir is not None and not Path(args.data_dir).is_dir():
        raise ConfigError(f"--data-dir {args.data_dir} is not a directory")


def metrics_payload(result) -> dict:
    return {"backend": result.backend, "path": result.config.path, "config": result.config.to_dict(),
            "dataset": {"description": result.dataset, "official_mnist": result.official},
            "epochs": result.history, "test_accuracy": result.test_accuracy,
            "train_seconds": result.train_seconds, "compile_seconds": result.compile_seconds,
            "device": result.device, "cuda_graphs": result.graphs, "stopped_early": result.stopped_early,
            "version": __version__}


def _config(args: argparse.Namespace):
    """The run's options: the preset plus flags, or, with --resume, the saved run's plus what may change."""
    given = {k: getattr(args, k) for k in OPTION_NAMES if getattr(args, k) is not None}
    if args.resume is None:
        return resolve(args.preset, **given)
    from mnist_accel.config import TrainConfig, validate
    from mnist_accel.training import checkpoint as ckpt

    fixed = sorted(k for k in given if k not in ckpt.MAY_CHANGE) + (["preset"] if args.preset != "default" else [])
    if fixed:
        flags = ", ".join("--" + k.replace("_", "-") for k in fixed)
        free = ["--" + k.replace("_", "-") for k in ckpt.MAY_CHANGE]
        raise ConfigError(f"--resume continues the saved run with its own options; drop {flags} "
                          f"(only {', '.join(free[:-1])} and {free[-1]} may change)")
    saved = ckpt.load(args.resume)[1]["config"]
    cfg = TrainConfig(**{**saved, "hidden": tuple(saved["hidden"])}).replace(**given)
    validate(cfg)
    return cfg


def _write_outputs(args: argparse.Namespace, cfg, result, data) -> None:
    if args.save and result.history:
        save_model(args.save, result.params, {"activation": cfg.activation, "loss": cfg.loss, "dtype": cfg.dtype,
                                              "classes": list(range(10)), "normalisation": "pixels / 255",
                                              "version": __version__})
    if args.metrics_json:
        write_json(args.metrics_json, metrics_payload(result))
    if args.plot and result.history:
        from mnist_accel.plots import write_figures

        write_figures(args.plot, args.figures or PRESET_FIGURES.get(args.preset, "report"), result, data)


def _run(args: argparse.Namespace) -> int:
    from mnist_accel.data.mnist import load_mnist
    from mnist_accel.errors import TrainingDiverged
    from mnist_accel.training.fit import fit

    _check_args(args)  # before _config, which reads the --resume checkpoint
    cfg = _config(args)
    say = (lambda *_, **__: None) if args.quiet else print
    progress = not args.quiet and sys.stderr.isatty()
    data = load_mnist(cfg.data_dir, progress=progress)

    def on_epoch(r: dict) -> None:
        if _printed(r, cfg):
            say(_epoch_line(r, cfg.epochs, cfg.print_cost), flush=True)

    try:
        result = fit(cfg, data, on_epoch=on_epoch, progress=progress, checkpoint=args.checkpoint,
                     resume=args.resume, interrupt_path=INTERRUPT_PATH)
    except TrainingDiverged as exc:
        _write_outputs(args, cfg, exc.result, data)  # the last sound epoch's model, if there was one
        raise
    epochs = len(result.history)
    graphs = f"; CUDA graphs {result.graphs}" if result.backend == "cuda" else ""
    print(f"{result.backend}/{cfg.path}: test accuracy {result.test_accuracy:.4f} after {epochs} "
          f"epoch{'s' if epochs != 1 else ''}, {result.train_seconds:.2f}s training "
          f"(+{result.compile_seconds:.2f}s compile) on {result.device}; data: {result.dataset}{graphs}")
    _write_outputs(args, cfg, result, data)
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
