"""The search space of a sweep: the ``--space`` syntax, the default spaces, and how a trial's parameters
become training options.

One term per option, ``NAME=SPEC``:

- ``lr=1e-4:1e-1:log``  a range, sampled on a log scale
- ``dropout=0:0.5``     a range, uniform
- ``batch_size=32:512:32`` a range in steps of 32 (also the way to put a range on a grid)
- ``hidden=64,128,256`` choices; ``hidden=256x128,512`` gives layer stacks (256 then 128, or 512)
- ``optimizer=adam``    one value: fixed for every trial

Integer options (``hidden``, ``batch_size``, ``epochs``, ...) get integer ranges.
"""

from __future__ import annotations

import dataclasses
import math
import typing
from collections.abc import Mapping, Sequence
from typing import Any

from mnist_accel.config import EVALUATION, RUN, TrainConfig, options, validate
from mnist_accel.errors import ConfigError

try:
    from optuna.distributions import BaseDistribution, CategoricalDistribution, FloatDistribution, IntDistribution
except ImportError:  # the syntax and the defaults stay readable (--help); sweep() says what to install
    BaseDistribution = CategoricalDistribution = FloatDistribution = IntDistribution = None  # type: ignore

# Searched when --space is not given: the four options that matter most, around the default preset
# (Adam at 3e-3, 512 hidden units, batches of 256, no dropout).
DEFAULT_SPACE = ("lr=3e-4:3e-2:log", "hidden=128,256,512,1024", "batch_size=64,128,256,512", "dropout=0:0.5")
# The same options as a 24-point grid, for --sampler grid (a grid needs finite lists).
DEFAULT_GRID = ("lr=1e-3,3e-3,1e-2", "hidden=256,512", "batch_size=128,256", "dropout=0,0.2")
# Options that say where or how a trial runs, or what it is measured on, rather than what is trained.
NOT_SEARCHED = options(role=RUN) + options(role=EVALUATION)
_FIELDS = [f.name for f in dataclasses.fields(TrainConfig)]
_HINTS = typing.get_type_hints(TrainConfig)
SYNTAX = "write NAME=LOW:HIGH[:log|:STEP] for a range or NAME=A,B,C for choices"


def searchable() -> list[str]:
    return [name for name in _FIELDS if name not in NOT_SEARCHED]


def _kind(name: str) -> type:
    """int, float, bool or str: what the option holds (hidden: its widths), optional or not."""
    if name == "hidden":
        return int
    hint = _HINTS[name]
    return next((a for a in typing.get_args(hint) if a is not type(None)), hint)


def _number(text: str, name: str, term: str, integer: bool) -> float | int:
    try:
        value = float(text)
    except ValueError:
        raise ConfigError(f"--space {term}: {text!r} is not a number; {SYNTAX}") from None
    if not math.isfinite(value):
        raise ConfigError(f"--space {term}: {text!r} is not a finite number")
    if integer:
        if value != int(value):
            raise ConfigError(f"--space {term}: {name} takes whole numbers, got {text}")
        return int(value)
    return value


def _choice(text: str, name: str, term: str) -> Any:
    if name == "hidden":
        widths = text.split("x")
        if not all(w.strip().isdigit() for w in widths):
            raise ConfigError(f"--space {term}: hidden choices are widths like 128 or stacks like 256x128")
        return int(widths[0]) if len(widths) == 1 else "x".join(w.strip() for w in widths)
    if _kind(name) is bool:
        if text.lower() not in ("true", "false"):
            raise ConfigError(f"--space {term}: {name} is true or false, got {text!r}")
        return text.lower() == "true"
    if _kind(name) in (int, float):
        return _number(text, name, term, _kind(name) is int)
    return text


def _range(parts: list[str], name: str, term: str) -> BaseDistribution:
    integer = _kind(name) is int
    if _kind(name) not in (int, float):
        raise ConfigError(f"--space {term}: {name} is not numeric; give choices, e.g. {name}=A,B")
    if len(parts) > 3:
        raise ConfigError(f"--space {term}: too many ':'; {SYNTAX}")
    low, high = (_number(p, name, term, integer) for p in parts[:2])
    if not low < high:
        raise ConfigError(f"--space {term}: the low end must be below the high end")
    scale = parts[2] if len(parts) == 3 else None
    if scale == "log":
        if low <= 0:
            raise ConfigError(f"--space {term}: a log scale needs a low end above 0")
        return IntDistribution(low, high, log=True) if integer else FloatDistribution(low, high, log=True)
    step = None if scale is None else _number(scale, name, term, integer)
    if step is not None and step <= 0:
        raise ConfigError(f"--space {term}: the step must be above 0")
    if integer:
        return IntDistribution(low, high, step=step or 1)
    return FloatDistribution(low, high, step=step)


def parse_space(terms: Sequence[str]) -> dict[str, BaseDistribution]:
    """``["lr=1e-4:1e-1:log", "hidden=64,128"]`` -> Optuna distributions by option name."""
    space: dict[str, BaseDistribution] = {}
    for term in terms:
        name, sep, spec = term.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name or not spec.strip():
            raise ConfigError(f"--space {term!r}: {SYNTAX}")
        if name not in _FIELDS or name in NOT_SEARCHED:
            why = " (set it with its flag; it applies to every trial)" if name in NOT_SEARCHED else ""
            raise ConfigError(f"--space {term}: {name!r} is not a searchable option{why}; "
                              f"choose from {', '.join(searchable())}")
        if name in space:
            raise ConfigError(f"--space names {name} twice; give it once")
        if ":" in spec:
            space[name] = _range(spec.split(":"), name, term)
        else:
            choices = [_choice(c.strip(), name, term) for c in spec.split(",")]
            if len(set(map(repr, choices))) != len(choices):
                raise ConfigError(f"--space {term}: a choice is listed twice")
            space[name] = CategoricalDistribution(choices)
    return space


def suggest(trial: Any, space: Mapping[str, BaseDistribution]) -> dict[str, Any]:
    """The trial's value for each searched option through Optuna's suggest API (the sampler's pick, or the
    fixed values of a trial queued to run again)."""
    params: dict[str, Any] = {}
    for name, d in space.items():
        if isinstance(d, CategoricalDistribution):
            params[name] = trial.suggest_categorical(name, d.choices)
        elif isinstance(d, IntDistribution):
            params[name] = trial.suggest_int(name, d.low, d.high, step=d.step, log=d.log)
        else:
            params[name] = trial.suggest_float(name, d.low, d.high, step=d.step, log=d.log)
    return params


def overrides(params: Mapping[str, Any]) -> dict[str, Any]:
    """A trial's parameters as TrainConfig values (hidden widths become a tuple of layers)."""
    out = dict(params)
    if "hidden" in out:
        h = out["hidden"]
        out["hidden"] = tuple(int(w) for w in h.split("x")) if isinstance(h, str) else (int(h),)
    return out


def check_space(space: Mapping[str, BaseDistribution], base: TrainConfig) -> None:
    """Refuse, before any trial, a value the options cannot take (a dropout of 1, a zero batch)."""
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            values = list(dist.choices)
        else:
            values = [dist.low, dist.high]
        for value in values:
            try:
                validate(base.replace(**overrides({name: value})))
            except ConfigError as exc:
                raise ConfigError(f"--space {name}: the value {value} is refused: {exc}") from None


def grid(space: Mapping[str, BaseDistribution]) -> dict[str, list[Any]]:
    """Every point of each option, for a grid search: choices, or a range with a step."""
    points: dict[str, list[Any]] = {}
    for name, dist in space.items():
        if isinstance(dist, CategoricalDistribution):
            points[name] = list(dist.choices)
        elif getattr(dist, "step", None) is not None and not dist.log:
            n = int(round((dist.high - dist.low) / dist.step)) + 1
            points[name] = [dist.low + i * dist.step for i in range(n)]
            if isinstance(dist, FloatDistribution):
                points[name] = [round(v, 12) for v in points[name]]  # 0.1 + 0.2 is not 0.3
        else:
            raise ConfigError(f"--sampler grid needs a finite list for {name}: give choices "
                              f"({name}=A,B,C) or a range with a step ({name}=LOW:HIGH:STEP)")
    return points


def grid_size(points: Mapping[str, Sequence[Any]]) -> int:
    return math.prod(len(v) for v in points.values())


def describe(params: Mapping[str, Any]) -> str:
    """``lr=0.003 hidden=256`` for the terminal."""
    return " ".join(f"{k}={v:.3g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items())
