"""File sources (kinds ``excel`` and ``csv``): read from the drop folder, archived as they are."""

from __future__ import annotations

import datetime as dt
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.fetch.archive import archive, fingerprint_of
from flows.settings import Limits
from schemas.records import Fetched, Source, SourceError


class SourceAbsent(SourceError):
    """The registered file is not there (yet): pending or missing, not failed."""


def _local(ts: float, timezone: str) -> dt.datetime:
    """A POSIX timestamp as naive local time of the campaign."""
    return dt.datetime.fromtimestamp(ts, ZoneInfo(timezone)).replace(tzinfo=None)


def fetch_file(source: Source, archive_dir: Path, limits: Limits, timezone: str) -> Fetched:
    """Read a file source, archive it, and return it with its fingerprint and modified time."""
    assert source.path is not None  # noqa: S101 - registry resolves paths of file sources
    path = source.path
    try:
        stat = path.stat()
    except FileNotFoundError:
        raise SourceAbsent(f"{source.school_code}: file {source.location} not found") from None
    except OSError as exc:
        raise SourceError(f"{source.school_code}: {source.location}: {exc.strerror}") from exc
    if stat.st_size > limits.max_file_bytes:
        raise SourceError(
            f"{source.school_code}: {source.location}: file is {stat.st_size:,} bytes, over "
            f"the limit of {limits.max_file_bytes:,} (limits.max_file_bytes)"
        )
    content = path.read_bytes()
    modified_at = _local(stat.st_mtime, timezone)
    stored = archive(
        content,
        archive_dir,
        path.suffix,
        {
            "source": source.key,
            "file": path.name,
            "modified_at": modified_at.isoformat(timespec="seconds"),
        },
    )
    return Fetched(
        source=source,
        content=content,
        fingerprint=stored.name.split(".")[0],
        archive_path=stored,
        filename=path.name,
        modified_at=modified_at,
    )


def unchanged_file(
    source: Source,
    fingerprint: str,
    modified_at: dt.datetime | None,
    archive_path: str | None,
    timezone: str,
) -> Fetched | None:
    """The file as it was last loaded, if it still is: same modified time and same bytes.

    A stat and a hash, no archiving and no Prefect task: the archive already holds these bytes
    with this sighting. Anything else (a new file, new bytes, a touched file, an unreadable
    one) returns None and goes through ``fetch_file``, which archives and reports it.
    """
    path = source.path
    if path is None or modified_at is None or not archive_path:
        return None
    try:
        stat = path.stat()
        if _local(stat.st_mtime, timezone) != modified_at:
            return None
        content = path.read_bytes()
    except OSError:
        return None
    if fingerprint_of(content) != fingerprint:
        return None
    return Fetched(
        source=source,
        content=b"",
        fingerprint=fingerprint,
        archive_path=Path(archive_path),
        filename=path.name,
        modified_at=modified_at,
    )
