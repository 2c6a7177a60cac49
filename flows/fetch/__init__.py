"""Fetch: the only step that touches the drop folder and Google; by source kind.

``fetch`` fetches and archives a file, a Google Sheet or a file in Google Drive. A source whose
content is that of its last load is recognised as cheaply as its kind allows: a sheet by its
Drive version (no Sheets quota), a Drive file by its md5Checksum (no download), a file by its
modified time and bytes (``unchanged``, no archiving); ``new_content``
gives a file's bytes only when they differ from its last load's. Every one of them reads a
file only inside the folders it is given, and only a regular file, within ``limits.read_seconds``
(``files.read_confined``).
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from flows.fetch.archive import fingerprint_of
from flows.fetch.drive import drive_file, fetch_drive_file
from flows.fetch.files import fetch_file, read_confined, unchanged_file
from flows.fetch.google import GSheetsClient, naive_local
from flows.fetch.gsheets import fetch_gsheet, sheet_revision
from flows.settings import Limits
from schemas.records import Fetched, Source, SourceError

#: kinds held on Google: fetched through a ``GSheetsClient``, never read from the drop folder.
GOOGLE_KINDS = ("gsheet", "drive")


class LastFetch(Protocol):
    """What a source's last successful load fetched (the warehouse's record of it)."""

    @property
    def fingerprint(self) -> str: ...  # noqa: D102
    @property
    def archive_path(self) -> str | None: ...  # noqa: D102
    @property
    def filename(self) -> str | None: ...  # noqa: D102
    @property
    def revision(self) -> str | None: ...  # noqa: D102
    @property
    def modified_at(self) -> dt.datetime | None: ...  # noqa: D102


def fetch(
    source: Source,
    archive_dir: Path,
    limits: Limits,
    timezone: str,
    *,
    folders: Sequence[Path],
    gsheets: GSheetsClient | None = None,
    last: LastFetch | None = None,
) -> Fetched:
    """Fetch and archive one source (IO). Raises SourceError for a source that cannot be used
    (a file outside ``folders`` among them), and any other exception for what may pass on a
    retry (network, file system).

    A Google Sheet whose Drive version, or a Drive file whose md5Checksum (modifiedTime without
    one), equals that of its last load is not read again: the last load's fingerprint comes
    back, and the flow records the source unchanged.
    """
    if source.kind not in GOOGLE_KINDS:
        return fetch_file(source, archive_dir, limits, timezone, folders)
    assert gsheets is not None  # noqa: S101 - the flow opens a client for Google sources
    if source.kind == "drive":
        return _fetch_drive(source, archive_dir, limits, timezone, gsheets, last)
    if last is not None and last.revision is not None:
        modified_at, version = sheet_revision(gsheets, source, timezone=timezone)
        if version == last.revision:
            return Fetched(
                source=source,
                content=b"",
                fingerprint=last.fingerprint,
                archive_path=Path(last.archive_path or ""),
                filename=last.filename or source.location,
                modified_at=modified_at,
                revision=version,
            )
    return fetch_gsheet(gsheets, source, archive_dir, timezone, limits=limits)


def _fetch_drive(
    source: Source,
    archive_dir: Path,
    limits: Limits,
    timezone: str,
    client: GSheetsClient,
    last: LastFetch | None,
) -> Fetched:
    """A Drive file: its metadata, then its bytes unless its revision is its last load's."""
    meta = drive_file(client, source)
    if last is not None and last.revision is not None and last.revision == meta.revision:
        return Fetched(
            source=source,
            content=b"",
            fingerprint=last.fingerprint,
            archive_path=Path(last.archive_path or ""),
            filename=meta.name,
            modified_at=naive_local(meta.modified, timezone),
            revision=meta.revision,
        )
    return fetch_drive_file(client, source, meta, archive_dir, timezone, limits)


def unchanged(
    source: Source,
    last: LastFetch | None,
    timezone: str,
    folders: Sequence[Path],
    limits: Limits,
) -> Fetched | None:
    """A local file as its last load fetched it, when its modified time and bytes are still
    those (a stat and a hash, nothing archived); None for anything to fetch (or to report)."""
    if last is None or source.kind in GOOGLE_KINDS:
        return None
    return unchanged_file(
        source, last.fingerprint, last.modified_at, last.archive_path, timezone, folders, limits
    )


def new_content(
    source: Source, limits: Limits, last: LastFetch | None, folders: Sequence[Path]
) -> bytes | None:
    """A file source's bytes as they are now, unless they are its last load's; None for a
    source held on Google, and for a file that is not there, outside ``folders``, not a regular
    file, unreadable, not read in time or over the limit (fetching reports those)."""
    if source.kind in GOOGLE_KINDS or source.path is None:
        return None
    try:
        got = read_confined(source, folders, limits)
    except SourceError:
        return None
    if got is None:
        return None
    content = got[0]
    if last is not None and fingerprint_of(content) == last.fingerprint:
        return None  # the bytes of its last load (touched or not): not parsed again
    return content
