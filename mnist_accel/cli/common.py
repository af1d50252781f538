"""What every command-line entry point shares: one-line errors with documented exit codes.

Bad input exits 2, runtime failures exit 1, Ctrl-C exits 130, and the stop signals of job schedulers
(SIGTERM, SIGHUP, SIGUSR1; see ``mnist_accel.training.signals``) 128 + the signal's number; ``--debug`` shows
the traceback.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import traceback
import typing
from collections.abc import Callable, Sequence
from typing import NoReturn

from mnist_accel.config import TrainConfig, options
from mnist_accel.errors import BackendUnavailable, ConfigError, DataError, DataUnavailable, Stopped
from mnist_accel.presets import LOOP_DEFAULTS, PRESETS
from mnist_accel.training.signals import stop_on_signals

# Each command as users type it (python -m mnist_accel.<name>) and the module that builds its parser.
COMMANDS = {"train": "mnist_accel.cli.train", "predict": "mnist_accel.cli.predict", "sweep": "mnist_accel.sweep.run",
            "export": "mnist_accel.cli.export", "serve": "mnist_accel.cli.serve"}
USAGE_ERRORS = (ConfigError, BackendUnavailable)
RUNTIME_ERRORS = (DataError, DataUnavailable, OSError, FloatingPointError, RuntimeError, ValueError)


class Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr and exit code 2."""

    def error(self, message: str) -> NoReturn:
        print(f"{self.prog}: error: {message} (see --help)", file=sys.stderr)
        raise SystemExit(2)


def _preset_default(name: str, value) -> str:
    """What the default preset sets an option to, and the loop path where it differs, for its help (None:
    the help says what happens)."""
    def show(v):
        return {True: "on", False: "off"}[v] if isinstance(v, bool) else " ".join(map(str, v)) \
            if isinstance(v, tuple) else v

    if value is None:
        return ""
    loop = f"; loop path: {show(LOOP_DEFAULTS[name])}" if name in LOOP_DEFAULTS else ""
    return f" (default preset: {show(value)}{loop})"


def add_training_options(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--preset`` and a flag for every ``TrainConfig`` option that has one, made from the field (its help,
    choices, metavar and type), in the fields' order. Each defaults to None: what is not given is the
    preset's."""
    parser.add_argument("--preset", choices=sorted(PRESETS), default="default",
                        help="named set of defaults (default: %(default)s)")
    hints = typing.get_type_hints(TrainConfig)
    for field in dataclasses.fields(TrainConfig):
        meta = field.metadata
        if not meta["flag"]:
            continue
        kind = hints[field.name]
        kwargs: dict = {"help": meta["help"] + _preset_default(field.name, field.default), "default": None}
        if kind is bool:
            kwargs["action"] = argparse.BooleanOptionalAction
        else:
            args = [a for a in typing.get_args(kind) if a is not type(None) and a is not Ellipsis]
            if typing.get_origin(kind) is tuple:
                kwargs["nargs"] = "+"
            kwargs.update(type=args[0] if args else kind, choices=meta["choices"], metavar=meta["metavar"])
        parser.add_argument("--" + field.name.replace("_", "-"), **kwargs)


def given_training_options(args: argparse.Namespace) -> dict:
    """The training options the command line set (those ``add_training_options`` made and the user gave)."""
    return {k: getattr(args, k) for k in options(flag=True) if getattr(args, k) is not None}


def reference(parser: argparse.ArgumentParser) -> str:
    """The parser's options as a Markdown table (option, meaning, default), read from the parser itself, so
    the documentation's CLI page lists exactly what ``--help`` lists."""
    rows = ["| option | meaning | default |", "|---|---|---|"]
    for action in parser._actions:  # argparse's own list, as its help formatter reads it
        if isinstance(action, argparse._HelpAction):
            continue
        flags = ", ".join(f"`{f}`" for f in action.option_strings) or f"`{action.metavar or action.dest}`"
        if action.choices:
            flags += " {" + ",".join(str(c) for c in action.choices) + "}"
        elif action.nargs != 0 and action.option_strings:
            flags += f" `{action.metavar or action.dest.upper()}`" + (" ..." if action.nargs in ("+", "*") else "")
        text = (action.help or "") % {**vars(action), "prog": parser.prog}
        default = "-" if action.default in (None, False, argparse.SUPPRESS) else f"`{action.default}`"
        rows.append(f"| {flags} | {text.replace('|', '&#124;')} | {default} |")
    return "\n".join(rows) + "\n"


def fail(prog: str, message: str, code: int) -> int:
    print(f"{prog}: error: {message}", file=sys.stderr)
    return code


def run_guarded(prog: str, debug: bool, body: Callable[[], int]) -> int:
    """Run ``body`` and turn known failures into a one-line message and exit code."""
    try:
        return body()
    except KeyboardInterrupt as exc:
        return fail(prog, str(exc) or "interrupted", getattr(exc, "exit_code", 130))
    except USAGE_ERRORS as exc:
        if debug:
            traceback.print_exc()
        return fail(prog, str(exc), 2)
    except RUNTIME_ERRORS as exc:
        if debug:
            traceback.print_exc()
        return fail(prog, str(exc) or type(exc).__name__, 1)
    except Exception as exc:
        if debug:
            traceback.print_exc()
        return fail(prog, f"unexpected {type(exc).__name__}: {exc} (rerun with --debug for the traceback)", 1)


def entry(prog: str, build_parser: Callable[[], argparse.ArgumentParser],
          run: Callable[[argparse.Namespace], int]) -> Callable[..., int]:
    """A command's ``main(argv=None) -> exit code``: parse, then run guarded (every parser has --debug),
    stopping on a scheduler's signals as on Ctrl-C; the process's signal handlers are restored after."""

    def main(argv: Sequence[str] | None = None) -> int:
        args = build_parser().parse_args(argv)
        try:
            with stop_on_signals():
                return run_guarded(prog, args.debug, lambda: run(args))
        except Stopped as exc:  # after the command's own handling, before the handlers were put back
            return fail(prog, str(exc), exc.exit_code)

    return main
