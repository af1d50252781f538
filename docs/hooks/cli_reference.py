"""MkDocs hook: fills the CLI reference page from the commands' own parsers (``mnist_accel.cli.reference``),
so the page lists exactly what each command's ``--help`` lists."""

from __future__ import annotations

import importlib

COMMANDS = ("train", "predict", "sweep")  # each mnist_accel.<command> has build_parser()


def marker(command: str) -> str:
    return f"<!-- options of {command} -->"


def fill(markdown: str) -> str:
    """The CLI page's Markdown with each command's marker replaced by its table of options."""
    from mnist_accel.cli import reference

    for command in COMMANDS:
        parser = importlib.import_module(f"mnist_accel.{command}").build_parser()
        markdown = markdown.replace(marker(command), reference(parser))
    return markdown


def on_page_markdown(markdown, page, **_):  # MkDocs passes page, config and files by name
    return fill(markdown) if page.file.src_uri == "cli.md" else markdown
