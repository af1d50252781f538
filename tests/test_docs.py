"""The documentation: the README stays a front door, and the built site's CLI reference lists every option
of every command's ``--help`` (the page is made from the parsers when the site is built)."""

from __future__ import annotations

import importlib
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from mnist_accel.cli.common import COMMANDS

REPO = Path(__file__).resolve().parent.parent


def test_the_readme_is_a_front_door():
    assert len((REPO / "README.md").read_text().splitlines()) <= 150


def _options(command: str) -> set[str]:
    """Every option string a command's ``--help`` lists: the flag column of its option lines (their text up
    to the first run of spaces that starts the help), not flags the help text mentions."""
    text = importlib.import_module(COMMANDS[command]).build_parser().format_help()
    columns = [line.strip().split("  ")[0] for line in text.splitlines() if line.startswith("  -")]
    return {flag for column in columns for flag in re.findall(r"--[a-z][\w-]*", column)} - {"--help"}


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    if importlib.util.find_spec("mkdocs") is None:  # run as python -m mkdocs below
        pytest.skip("mkdocs is not installed (pip install -e '.[dev]')")
    out = tmp_path_factory.mktemp("site")
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "-q", "-d", str(out)], cwd=REPO,
                          capture_output=True, text=True, timeout=300, env={**os.environ, "NO_MKDOCS_2_WARNING": "1"})
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.parametrize("command", COMMANDS)
def test_the_cli_reference_lists_every_option_of_help(site, command):
    page = (site / "cli" / "index.html").read_text()
    section = page.split(f"mnist_accel.{command}</code>", 1)[1].split("<h2", 1)[0]
    listed = set(re.findall(r"<code>(--[a-z][\w-]*)</code>", section))
    assert _options(command) <= listed, sorted(_options(command) - listed)
