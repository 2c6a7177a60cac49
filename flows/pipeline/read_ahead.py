"""Parse jobs for the parse processes, and the files they read ahead of the flow.

``khaosat run`` waits seconds for its temporary Prefect API with a core idle: meanwhile the
parse processes read the files of the first batch (``read_tables_ahead``, queued by
``nightly.read_ahead``), and the parse job of the very same bytes, name and limits uses what was
read instead of reading again (benchmarks/README.md has the gain). The steps stay plain:
this module only decides which tables a job parses.
"""

from __future__ import annotations

from dataclasses import dataclass

from flows.parse import parse_tables, read_fetched
from flows.privacy import mask_personal
from flows.read import read_tables
from flows.settings import Limits
from schemas.questionnaire import Questionnaire
from schemas.records import Parsed, SourceError, Table


@dataclass(frozen=True)
class ParseJob:
    """One fetched submission to parse: plain values, so it can travel to a parse process."""

    content: bytes
    filename: str
    kind: str  # excel | csv | gsheet (the source's kind)
    worksheet: str | None  # the sheet named in sources.csv, if any
    questionnaire: Questionnaire
    salt: str
    limits: Limits
    timezone: str


def parse_fetched(job: ParseJob) -> Parsed | SourceError:
    """Read a fetched submission's sheets (or take what was read ahead of them) and parse the
    right one against its questionnaire; a source that cannot be used comes back as its
    SourceError (an outcome to report in one line, not a crash).

    Whatever the error quotes of the file (cells, sheet names, a reader's complaint about a
    value) is masked here, before the message reaches the ledger, the console or a school.
    """
    try:
        if job.kind == "gsheet":
            tables = read_fetched(job.content, job.filename, job.kind, job.limits, job.timezone)
        else:
            tables = _tables(job.content, job.filename, job.limits)
        return parse_tables(tables, job.kind, job.worksheet, job.questionnaire, job.salt)
    except SourceError as exc:
        return SourceError(mask_personal(str(exc)))


#: Files this process read ahead (``read_tables_ahead``), by bytes and file name, with the
#: limits they were read under: each is used by the one parse job that asks for the same.
_READ_AHEAD: dict[tuple[bytes, str], tuple[Limits, list[Table]]] = {}


def read_tables_ahead(content: bytes, filename: str, limits: Limits) -> None:
    """Read a file's sheets now, for a parse job of the same bytes expected in this process
    soon (the flow's first batch, read while the command waits for its Prefect API).

    A file that cannot be read is not kept: its parse job reads it again and reports why.
    """
    try:
        tables = read_tables(content, filename, limits)
    except Exception:  # noqa: BLE001 - the parse job meets the same problem and reports it
        return
    # Most cells hold one of a few answer labels, each its own str from calamine: one copy of
    # each text makes a batch of files held ahead a fraction of the memory.
    texts: dict[str, str] = {}
    for table in tables:
        for row in table.rows:
            row[:] = [texts.setdefault(v, v) if v.__class__ is str else v for v in row]
    _READ_AHEAD[content, filename] = (limits, tables)


def drop_read_ahead() -> list[str]:
    """Forget what this process holds read ahead; the names of the files it held."""
    names = sorted(name for _, name in _READ_AHEAD)
    _READ_AHEAD.clear()
    return names


def _tables(content: bytes, filename: str, limits: Limits) -> list[Table]:
    """The file's tables, or what ``read_tables_ahead`` read of these bytes under these limits."""
    ahead = _READ_AHEAD.pop((content, filename), None)
    if ahead is None:
        # Files are read ahead in the order the flow asks for them: once one is not there,
        # those left were fetched with other bytes or by another process. Free them.
        _READ_AHEAD.clear()
    elif ahead[0] == limits:
        return ahead[1]
    return read_tables(content, filename, limits)
