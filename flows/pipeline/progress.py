"""What a data officer sees while a run goes: a progress bar over sources, then a table.

The flow reports to whatever reporter is active; the CLI installs the rich one, and anything
else (tests, the scheduled deployment) gets the silent default.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table
from rich.text import Text

from schemas.records import SourceOutcome

if TYPE_CHECKING:
    from schemas.records import RunSummary


class Reporter(Protocol):
    """What the flow tells as a run goes: how many sources, each one's outcome, the summary."""

    def start(self, total: int) -> None:
        """The run has ``total`` sources to process."""

    def advance(self, outcome: SourceOutcome) -> None:
        """One source is done."""

    def finish(self, summary: RunSummary) -> None:
        """The run is over."""


class Silent:
    """Reports nothing (scheduled runs log through Prefect instead)."""

    def start(self, total: int) -> None:
        """Nothing to show."""

    def advance(self, outcome: SourceOutcome) -> None:
        """Nothing to show."""

    def finish(self, summary: RunSummary) -> None:
        """Nothing to show."""


_active: list[Reporter] = [Silent()]


def active() -> Reporter:
    """The reporter the running flow reports to."""
    return _active[-1]


def use(reporter: Reporter) -> None:
    """Make ``reporter`` the active one (the CLI does this before running the flow)."""
    _active.append(reporter)


STATUS_STYLE = {
    "loaded": "green",
    "unchanged": "dim",
    "failed": "bold red",
    "absent": "yellow",
    "stopped": "bold magenta",
}


def outcomes_table(outcomes: list[SourceOutcome], title: str | None = None) -> Table:
    """One row per source: what was read, kept and rejected, and why it failed if it did."""
    table = Table(title=title, show_lines=False, header_style="bold")
    for col, justify in [
        ("school", "left"),
        ("questionnaire", "left"),
        ("file", "left"),
        ("rows read", "right"),
        ("responses kept", "right"),
        ("values rejected", "right"),
        ("status", "left"),
        ("form drift", "left"),
        ("reason", "left"),
    ]:
        table.add_column(col, justify=justify)  # type: ignore[arg-type]
    for o in outcomes:
        # school and file have their own columns: the reason need not repeat them
        reason = o.message.removeprefix(f"{o.source.school_code} {o.source.location}: ")
        if not reason and o.unknown_columns:
            names = "; ".join(c[:40] for c in o.unknown_columns)
            reason = f"ignored: {names}"
        style = STATUS_STYLE.get(o.status, "")
        table.add_row(
            o.source.school_code,
            o.source.questionnaire,
            # as plain text, not markup: a placeholder such as "[email]" is shown as it is
            Text(o.filename or o.source.location),
            str(o.n_rows_read) if o.status == "loaded" else "",
            str(o.n_responses) if o.status == "loaded" else "",
            str(o.n_rejected) if o.status == "loaded" else "",
            f"[{style}]{o.status}[/]" if style else o.status,
            o.drift,
            Text(reason),
        )
    return table


class RichReporter:
    """A progress bar over sources, then the per-source table and a one-line summary."""

    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]sources"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TextColumn("{task.description}"),
            console=console,
            transient=True,
        )
        self.task = self.progress.add_task("", total=0)

    def start(self, total: int) -> None:
        """Show the bar, over ``total`` sources."""
        self.progress.update(self.task, total=total)
        self.progress.start()

    def advance(self, outcome: SourceOutcome) -> None:
        """Advance the bar by one source."""
        self.progress.update(self.task, advance=1, description=outcome.source.school_code)

    def finish(self, summary: RunSummary) -> None:
        """Replace the bar with the per-source table and a one-line count."""
        self.progress.stop()
        self.console.print(outcomes_table(summary.outcomes, title=f"Run {summary.run_id}"))
        counts = ", ".join(
            f"{summary.count(s)} {s}" for s in ("loaded", "unchanged", "failed", "absent")
        )
        if summary.count("stopped"):
            counts += f", {summary.count('stopped')} stopped by the machine (tried again next run)"
        self.console.print(f"Sources: {counts}.")
