"""Fetch: the only step that touches the drop folder (and, later, Google).

Every fetched submission is archived under ``archive/`` by its SHA-256 before anything else
happens, so nothing fetched is ever lost, whatever parsing or loading makes of it.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import os
from pathlib import Path
from zoneinfo import ZoneInfo

from flows.settings import Limits
from schemas.records import Fetched, Source, SourceError


class SourceAbsent(SourceError):
    """The registered file is not there (yet): pending or missing, not failed."""


def _local(ts: float, timezone: str) -> dt.datetime:
    """A POSIX timestamp as naive local time of the campaign."""
    return dt.datetime.fromtimestamp(ts, ZoneInfo(timezone)).replace(tzinfo=None)


def fingerprint_of(content: bytes) -> str:
    """The fingerprint of a file's bytes, as the ledger records it and the archive names it:
    their SHA-256, in hex."""
    return hashlib.sha256(content).hexdigest()


def archive(content: bytes, archive_dir: Path, suffix: str, sighting: dict[str, str]) -> Path:
    """Store ``content`` under its SHA-256 (once) and note where and when it was seen.

    The sidecar ``<sha>.json`` lists every sighting (source, file name, modified time), so the
    archive answers "which school sent this, and when" without the warehouse.
    """
    digest = fingerprint_of(content)
    folder = archive_dir / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{suffix.lower()}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written archive entry
    meta_path = folder / f"{digest}.json"
    sightings = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else []
    if sighting not in sightings:
        sightings.append(sighting)
        tmp_meta = meta_path.with_suffix(".json.part")
        tmp_meta.write_text(json.dumps(sightings, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp_meta, meta_path)
    return path


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
