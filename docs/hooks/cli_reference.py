"""MkDocs hook: fills the CLI reference page from the commands' own parsers
(``mnist_accel.cli.common.reference``), so the page lists exactly what each command's ``--help`` lists."""

from __future__ import annotations

import importlib


def marker(command: str) -> str:
    return f"<!-- options of {command} -->"


def fill(markdown: str) -> str:
    """The CLI page's Markdown with each command's marker replaced by its table of options."""
    from mnist_accel.cli.common import COMMANDS, reference

    for command, module in COMMANDS.items():
        parser = importlib.import_module(module).build_parser()
        markdown = markdown.replace(marker(command), reference(parser))
    return markdown


def on_page_markdown(markdown, page, **_):  # MkDocs passes page, config and files by name
    return fill(markdown) if page.file.src_uri == "cli.md" else markdown
