"""What every command group shares: the console, the ``--config`` option, reading the config."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.markup import escape

from flows.settings import Settings, SettingsError, load_settings

# Logs and CI capture output without a terminal: give tables room instead of rich's 80 columns.
console = Console(width=None if sys.stdout.isatty() else 160)

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
