"""What every command group shares: the console, the ``--config`` option, reading the config."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from flows.settings import Settings, SettingsError, load_settings

#: Width of a console without a terminal and without COLUMNS (logs, CI, pipes).
PIPE_WIDTH = 160


def make_console() -> Console:
    """A console as wide as the terminal, or as ``COLUMNS`` says when it is set; without either
    (logs and CI capture output without a terminal) PIPE_WIDTH, to give tables room."""
    wide = sys.stdout.isatty() or os.environ.get("COLUMNS", "").isdigit()
    return Console(width=None if wide else PIPE_WIDTH)


console = make_console()

ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="Path to khaosat.yaml.", show_default=True)
]


def print_error(message: object, out: Console = console) -> None:
    """``error: message`` as one line, however long (logs and scripts read it by the line);
    brackets in it are text, not markup."""
    out.print(f"[bold red]error:[/] {escape(str(message))}", soft_wrap=True)


def read_config(config: Path) -> Settings:
    """The settings of ``config``; an unusable config is reported and the command exits 2."""
    try:
        return load_settings(config)
    except SettingsError as exc:
        print_error(exc)
        raise typer.Exit(2) from None
