"""``python -m mnist_accel.train``: the training command line.

Flags left out take the preset's value (``--preset default`` unless given); every resolved option is
printed in ``--metrics-json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mnist_accel.cli.common import Parser, add_training_options, entry, given_training_options
from mnist_accel.config import resolve
from mnist_accel.errors import ConfigError
from mnist_accel.persist import check_writable, save_model, write_json
from mnist_accel.plots import FIGURES, PRESET_FIGURES, per_class_accuracy
from mnist_accel.version import __version__

PROG = "mnist_accel.train"
# where Ctrl-C or a scheduler's stop signal saves the state when --checkpoint is not given
INTERRUPT_PATH = "mnist_accel-interrupted.npz"


def build_parser() -> argparse.ArgumentParser:
    p = Parser(prog=PROG, description="Train an MLP on MNIST from scratch, on NumPy, Numba or CUDA.")
    add_training_options(p)
    a = p.add_argument
    a("--save", metavar="PATH", help="write the trained model (.npz; a name ending in .onnx writes ONNX, which "
      "needs the onnx extra)")
    a("--metrics-json", metavar="PATH", help="write the run's metrics as JSON")
    a("--plot", metavar="PATH", help="write a PNG of --figures (matplotlib)")
    a("--figures", choices=FIGURES, help="what --plot draws: report (curves, confusion matrix, misclassified "
      "digits), curves, or keras (the Keras tutorial's four); default: the preset's")
    a("--checkpoint", metavar="PATH", help="write the full training state after every epoch (and on Ctrl-C or SIGTERM)")
    a("--resume", metavar="PATH", help="continue the run saved in this checkpoint")
    a("--quiet", action="store_true", help="print only the summary")
    a("--debug", action="store_true", help="show tracebacks on errors")
    a("--version", action="version", version=f"mnist-accel {__version__}")
    return p


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
    if args.save is not None and args.save.lower().endswith(".onnx"):
        from mnist_accel.onnx_export import require_onnx

        try:
            require_onnx()
        except ImportError as exc:
            raise ConfigError(f"--save {args.save}: {exc}") from None
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


def metrics_payload(result, per_class: dict[str, float] | None = None) -> dict:
    """The run's metrics; ``per_class``: each class's test accuracy, by name (see plots.per_class_accuracy)."""
    name = result.config.dataset
    return {"backend": result.backend, "path": result.config.path, "config": result.config.to_dict(),
            "dataset": {"name": name, "description": result.dataset, "official": result.official,
                        "official_mnist": result.official and name == "mnist", "per_class_test_accuracy": per_class},
            "epochs": result.history, "test_accuracy": result.test_accuracy,
            "train_seconds": result.train_seconds, "compile_seconds": result.compile_seconds,
            "device": result.device, "cuda_graphs": result.graphs, "stopped_early": result.stopped_early,
            "seconds_to_target": result.seconds_to_target, "version": __version__}


def _config(args: argparse.Namespace):
    """The run's options: the preset plus flags, or, with --resume, the saved run's plus what may change."""
    given = given_training_options(args)
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


def _hardest(per_class: dict[str, float], n: int = 3) -> str:
    """The ``n`` classes with the lowest test accuracy, by name: "; hardest classes: Shirt 61.9%, ..."."""
    worst = sorted(per_class.items(), key=lambda kv: kv[1])[:n]
    return "; hardest classes: " + ", ".join(f"{k} {v:.1%}" for k, v in worst) if worst else ""


def _write_outputs(args: argparse.Namespace, cfg, result, data, per_class: dict[str, float] | None = None) -> None:
    if args.save and result.history:
        meta = {"activation": cfg.activation, "loss": cfg.loss, "dtype": cfg.dtype, "classes": list(range(10)),
                "normalisation": "pixels / 255", "version": __version__, "config": cfg.to_dict(),
                "dataset": cfg.dataset, "class_names": list(data.classes), "official_data": result.official}
        if args.save.lower().endswith(".onnx"):  # the same model and metadata, as an ONNX graph
            from mnist_accel.onnx_export.saved import save_onnx

            save_onnx(args.save, result.params, meta)
        else:
            save_model(args.save, result.params, meta)
    if args.metrics_json:
        write_json(args.metrics_json, metrics_payload(result, per_class))
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
    data = load_mnist(cfg.data_dir, progress=progress, dataset=cfg.dataset)

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
    counted = f"{epochs} epoch{'s' if epochs != 1 else ''}"
    graphs = f"; CUDA graphs {result.graphs}" if result.backend == "cuda" else ""
    per_class = per_class_accuracy(result, data)
    print(f"{result.backend}/{cfg.path}: test accuracy {result.test_accuracy:.4f} after {counted}, "
          f"{result.train_seconds:.2f}s training "
          f"(+{result.compile_seconds:.2f}s compile) on {result.device}; data: {result.dataset}{graphs}"
          f"{_hardest(per_class)}")
    if cfg.target_accuracy is not None:
        target = f"validation accuracy {cfg.target_accuracy:g}"
        print(f"{target} reached after {counted}, {result.seconds_to_target:.2f}s training"
              if result.seconds_to_target is not None else f"{target} not reached in {counted}")
    _write_outputs(args, cfg, result, data, per_class)
    return 0


main = entry(PROG, build_parser, _run)


if __name__ == "__main__":
    sys.exit(main())
