"""Training configuration: one dataclass with a comment per default, a preset with overrides resolved into it
(the presets themselves are ``mnist_accel.presets``), and validation."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from mnist_accel.data.datasets import NAMES as DATASETS
from mnist_accel.errors import ConfigError
from mnist_accel.kernels import OPTIMIZER_CODES
from mnist_accel.losses import LOSSES
from mnist_accel.model import ACTIVATIONS, INITS, parse_init
from mnist_accel.presets import LOOP_DEFAULTS, PRESETS

BACKENDS = ("auto", "numpy", "numba", "cuda")
PATHS = ("loop", "vectorized")
OPTIMIZERS = tuple(OPTIMIZER_CODES)
SCHEDULES = ("constant", "step", "cosine", "drop")
ADAM_FORMS = ("pytorch", "keras")  # where Adam's eps sits: see optim.adam_scalars
VAL_FROM = ("random", "end")
DTYPES = ("float32", "float64")


# What an option is for, which decides what may change when a run resumes and what a sweep may search:
MODEL = "model"  # what is trained: fixed when a run resumes, searchable by a sweep
RUN = "run"  # where and how the run goes or what it prints: may change when a run resumes; never searched
EVALUATION = "evaluation"  # what the run is seeded with or measured on: fixed, and not searched


def option(default: Any, help: str, *, choices: Sequence[str] | None = None, metavar: str | None = None,
           role: str = MODEL, flag: bool = True) -> Any:
    """A ``TrainConfig`` field with everything the commands need to know of it: its help, its choices and
    metavar for ``--flag`` (``flag=False``: no flag; set it in Python), and its role (above)."""
    return dataclasses.field(default=default, metadata={"help": help, "choices": choices, "metavar": metavar,
                                                        "role": role, "flag": flag})


@dataclass
class TrainConfig:
    """Every training option, defined once: the training command's flags, the sweep's fixed options and
    searchable set, what a resumed run may change, and the CLI reference are all made from these fields."""

    backend: str = option("auto", "compute backend; auto: cuda if a GPU works, else numba, else numpy",
                          choices=BACKENDS, role=RUN)
    path: str = option("vectorized", "vectorized mini-batch training, or the tutorial's per-sample loop",
                       choices=PATHS)
    epochs: int = option(5, "passes over the training data")
    batch_size: int = option(256, "mini-batch size (vectorized path)")
    lr: float = option(3e-3, "learning rate")
    hidden: tuple[int, ...] = option((512,), "hidden layer widths, e.g. --hidden 256 128", metavar="N")
    activation: str = option("relu", "hidden activation", choices=ACTIVATIONS)
    loss: str = option("cross-entropy", "softmax cross-entropy; the tutorial's squared error; deep-sgd's squared "
                       "error of the softmax (loop path); or, on the vectorized path, scikit-learn's losses: "
                       "logistic outputs' binary cross-entropy, half the squared error, half the Poisson deviance",
                       choices=LOSSES)
    optimizer: str = option("adam", "update rule", choices=OPTIMIZERS)
    dropout: float = option(0.0, "drop probability of hidden units (tutorial: 0.5)", metavar="P")
    bias: bool = option(True, "learn biases (the tutorial has none)")
    init: str = option("he", f"weight initialisation: {', '.join(INITS)} (S: a scale, e.g. normal:0.1)",
                       metavar="RULE")
    train_samples: int | None = option(None, "train on the first N images (default: all 60,000, less the "
                                       "validation split)", metavar="N")
    test_samples: int | None = option(None, "test on the first N images (default: all 10,000)", metavar="N",
                                      role=EVALUATION)
    seed: int = option(0, "random seed (initialisation, shuffling, dropout)", role=EVALUATION)
    shuffle: bool = option(True, "reshuffle the training set every epoch (vectorized path)", flag=False)
    dtype: str = option("float32", "floating-point precision (float64 reproduces the tutorial exactly)",
                        choices=DTYPES)
    weight_decay: float = option(0.0, "L2 penalty on weights (vectorized path)", metavar="L2")
    schedule: str = option("cosine", "learning-rate schedule (vectorized path)", choices=SCHEDULES)
    lr_drop_at: int | None = option(None, "--schedule drop: the first step (0-based) at the lower rate",
                                    metavar="STEP")
    lr_drop_to: float | None = option(None, "--schedule drop: the lower rate (default: a tenth of --lr)",
                                      metavar="LR")
    momentum: float = option(0.9, "the momentum optimizers' decay (mu)", flag=False)
    beta1: float = option(0.9, "Adam's first-moment decay", flag=False)
    beta2: float = option(0.999, "Adam's second-moment decay", flag=False)
    eps: float = option(1e-8, "Adam's denominator guard")
    adam_form: str = option("pytorch", "where Adam's eps sits: added to the square root of the bias-corrected v "
                            "(PyTorch's) or of v itself (Keras's)", choices=ADAM_FORMS)
    val_split: float = option(0.0, "share of training data held out for validation", metavar="F")
    val_from: str = option("random", "hold out a random subset, or the last images (as Keras does)",
                           choices=VAL_FROM)
    patience: int = option(0, "epochs without validation improvement before stopping (0: never)", metavar="N")
    target_accuracy: float | None = option(None, "stop after the first epoch whose validation accuracy reaches A "
                                           "(needs --val-split); the metrics give seconds_to_target", metavar="A")
    threads: int = option(0, "CPU threads for BLAS and our first-layer GEMMs (0: this process's share of the "
                          "cores)", metavar="N", role=RUN)
    graphs: bool = option(True, "GPU: replay each training step from a captured CUDA graph", role=RUN)
    dataset: str = option("mnist", "what to train and test on: MNIST's digits, Zalando's Fashion-MNIST or "
                          "Kuzushiji-MNIST (see docs/data.md)", choices=DATASETS, role=EVALUATION)
    data_dir: str | None = option(None, "folder with the dataset's IDX files (else $MNIST_ACCEL_DATA for MNIST, "
                                  "$MNIST_ACCEL_FASHION_MNIST_DATA, $MNIST_ACCEL_KMNIST_DATA; then its cache; then "
                                  "a download)", metavar="DIR", role=RUN)
    print_every: int = option(1, "print every N-th epoch's line and the last (a whole-set batch makes an "
                              "epoch one step)", metavar="N", role=RUN)
    print_cost: bool = option(False, "also print the training loss averaged over the 10 outputs (the full-batch "
                              "write-up's cost)", role=RUN)

    def replace(self, **changes: Any) -> TrainConfig:
        return dataclasses.replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        d = dataclasses.asdict(self)
        d["hidden"] = list(self.hidden)
        return d


def options(*, role: str | None = None, flag: bool | None = None) -> tuple[str, ...]:
    """The options' names, in order, of a role and with or without a flag (None: any)."""
    return tuple(f.name for f in dataclasses.fields(TrainConfig)
                 if role in (None, f.metadata["role"]) and flag in (None, f.metadata["flag"]))


def resolve(preset: str = "default", **overrides: Any) -> TrainConfig:
    """The preset's values, then every override that is not None; validated."""
    if preset not in PRESETS:
        raise ConfigError(f"unknown preset {preset!r}; choose one of {', '.join(PRESETS)}")
    given = {k: v for k, v in overrides.items() if v is not None}
    values = {**PRESETS[preset], **given}
    if values.get("path") == "loop":
        if "batch_size" in given:
            raise ConfigError("the loop path trains one sample at a time; drop --batch-size or use --path vectorized")
        values = {**LOOP_DEFAULTS, **values}
    if "hidden" in values:
        values["hidden"] = tuple(values["hidden"])
    try:
        cfg = TrainConfig(**values)
    except TypeError as exc:
        raise ConfigError(str(exc)) from None
    validate(cfg)
    return cfg


def _choice(name: str, value: Any, options: tuple[str, ...]) -> None:
    if value not in options:
        raise ConfigError(f"--{name.replace('_', '-')} {value!r} is not one of {', '.join(options)}")


def validate(cfg: TrainConfig) -> None:
    """Raise ConfigError with a one-line reason for any value training cannot honour."""
    for name, options in (("backend", BACKENDS), ("path", PATHS), ("activation", ACTIVATIONS),
                          ("loss", LOSSES), ("optimizer", OPTIMIZERS), ("schedule", SCHEDULES), ("dtype", DTYPES),
                          ("adam_form", ADAM_FORMS), ("val_from", VAL_FROM), ("dataset", DATASETS)):
        _choice(name, getattr(cfg, name), options)
    try:
        parse_init(cfg.init)
    except ValueError as exc:
        raise ConfigError(f"--{exc}") from None
    _check_schedule(cfg)
    if cfg.threads < 0:
        raise ConfigError(f"--threads must be 0 (every core) or more, got {cfg.threads}")
    for name in ("epochs", "batch_size"):
        if int(getattr(cfg, name)) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    for name in ("train_samples", "test_samples"):
        if getattr(cfg, name) is not None and getattr(cfg, name) < 1:
            raise ConfigError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(cfg, name)}")
    if any(h < 1 for h in cfg.hidden) or (not cfg.hidden and cfg.path == "loop"):
        # no hidden layer (scikit-learn's hidden_layer_sizes=()): a linear model, on the vectorized path only
        raise ConfigError(f"--hidden needs one or more positive widths, got {list(cfg.hidden)}")
    if not (math.isfinite(cfg.lr) and cfg.lr > 0):
        raise ConfigError(f"--lr must be a finite number above 0, got {cfg.lr}")
    if not 0 <= cfg.dropout < 1:
        raise ConfigError(f"--dropout is a drop probability in [0, 1), got {cfg.dropout}")
    if not 0 <= cfg.val_split < 1:
        raise ConfigError(f"--val-split must be in [0, 1), got {cfg.val_split}")
    if not (math.isfinite(cfg.weight_decay) and cfg.weight_decay >= 0):
        raise ConfigError(f"--weight-decay must be finite and at least 0, got {cfg.weight_decay}")
    if not (math.isfinite(cfg.eps) and cfg.eps > 0):
        raise ConfigError(f"--eps must be a finite number above 0, got {cfg.eps}")
    if cfg.print_every < 1:
        raise ConfigError(f"--print-every must be at least 1, got {cfg.print_every}")
    if cfg.patience < 0:
        raise ConfigError(f"--patience must be at least 0, got {cfg.patience}")
    if cfg.patience and not cfg.val_split:
        raise ConfigError("--patience needs a validation split: add --val-split, e.g. 0.1")
    if cfg.target_accuracy is not None and not 0 < cfg.target_accuracy <= 1:
        raise ConfigError(f"--target-accuracy must be in (0, 1], got {cfg.target_accuracy}")
    if cfg.target_accuracy is not None and not cfg.val_split:
        raise ConfigError("--target-accuracy is measured on a validation split, never on the test set: add "
                          "--val-split, e.g. 0.1")
    if cfg.loss == "softmax-mse" and cfg.path != "loop":
        raise ConfigError("--loss softmax-mse (deep-sgd's per-sample quirk) needs --path loop")
    if cfg.path == "loop" and cfg.loss not in ("mse", "cross-entropy", "softmax-mse"):
        raise ConfigError(f"--loss {cfg.loss} needs --path vectorized (the loop path takes mse, cross-entropy and "
                          "softmax-mse)")
    if cfg.path == "loop":
        if cfg.activation == "identity":
            raise ConfigError("the loop path supports relu, tanh and sigmoid; use --path vectorized for identity")
        if cfg.optimizer != "sgd":
            raise ConfigError("the loop path is plain per-sample SGD; use --optimizer sgd or --path vectorized")
        if cfg.threads > 1:
            raise ConfigError("the loop path runs on one thread (SGD's updates are sequential); drop --threads")
        if cfg.val_split or cfg.weight_decay or cfg.schedule != "constant":
            raise ConfigError("--val-split, --weight-decay and --schedule need --path vectorized")


def _check_schedule(cfg: TrainConfig) -> None:
    if cfg.schedule != "drop":
        if cfg.lr_drop_at is not None or cfg.lr_drop_to is not None:
            raise ConfigError("--lr-drop-at and --lr-drop-to belong to --schedule drop; add it or drop them")
        return
    if cfg.lr_drop_at is None or cfg.lr_drop_at < 1:
        raise ConfigError(f"--schedule drop needs --lr-drop-at N (the first step at the lower rate, at least 1), "
                          f"got {cfg.lr_drop_at}")
    if cfg.lr_drop_to is not None and not (math.isfinite(cfg.lr_drop_to) and cfg.lr_drop_to > 0):
        raise ConfigError(f"--lr-drop-to must be a finite number above 0, got {cfg.lr_drop_to}")
