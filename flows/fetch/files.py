"""File sources (kinds ``excel`` and ``csv``): read from the drop folder, archived as they are.

A file source is read only from inside the folders ``Settings.source_folders`` names (the
campaign folder, the folder of sources.csv, ``registry.allowed_folders``), symbolic links
followed, and only when it is a regular file: anything else (a path outside, a folder, a named
pipe, a device, a socket) fails its source in one line without being opened. Every read of a
file's bytes goes through ``read_confined``, within ``limits.read_seconds``, so a stalled disk
or network mount fails the source and not the night.
"""

from __future__ import annotations

import datetime as dt
import errno
import os
import queue
import stat as st
import threading
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TypeVar
from zoneinfo import ZoneInfo

from flows.fetch.archive import archive, fingerprint_of
from flows.settings import Limits
from schemas.records import Fetched, Source, SourceError

T = TypeVar("T")


class SourceAbsent(SourceError):
    """The registered file is not there (yet): pending or missing, not failed."""


def _local(ts: float, timezone: str) -> dt.datetime:
    """A POSIX timestamp as naive local time of the campaign."""
    return dt.datetime.fromtimestamp(ts, ZoneInfo(timezone)).replace(tzinfo=None)


_OUTSIDE = (
    "is outside the campaign folder (symbolic links followed), so it is not read; move the "
    "file into the campaign folder, or add its folder to registry.allowed_folders in khaosat.yaml"
)
_KINDS = (
    (st.S_ISDIR, "is a folder, not a file; give the file's path in sources.csv"),
    (st.S_ISFIFO, "is a named pipe, not a file; give a regular file's path in sources.csv"),
    (st.S_ISSOCK, "is a socket, not a file; give a regular file's path in sources.csv"),
    (st.S_ISCHR, "is a device, not a file; give a regular file's path in sources.csv"),
    (st.S_ISBLK, "is a device, not a file; give a regular file's path in sources.csv"),
)
_OPEN_FLAGS = os.O_RDONLY | os.O_NONBLOCK | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0)


def _inside(path: Path, folders: Sequence[Path]) -> bool:
    return any(path == f or f in path.parents for f in folders)


def _regular(source: Source, mode: int) -> None:
    """Raise the one-line SourceError for anything but a regular file."""
    for test, why in _KINDS:
        if test(mode):
            raise SourceError(f"{source.school_code}: {source.location}: {why}")
    if not st.S_ISREG(mode):
        raise SourceError(f"{source.school_code}: {source.location}: is not a regular file")


def _opened_path(fd: int, real: Path) -> Path:
    """The path the kernel opened (Linux), else the path resolved again now."""
    try:
        return Path(os.readlink(f"/proc/self/fd/{fd}"))
    except OSError:
        return Path(os.path.realpath(real))


def _open(source: Source, real: Path) -> int:
    """``real`` opened for reading without blocking and without following a symbolic link put
    in its place since it was resolved. A file another program holds a lease on (Samba or NFS
    handing it to a client that writes it) is waited for: the lease's holder is asked to let
    go, within the read's time limit."""
    try:
        return os.open(real, _OPEN_FLAGS)
    except BlockingIOError:
        return os.open(real, _OPEN_FLAGS & ~os.O_NONBLOCK)
    except OSError as exc:
        if exc.errno == errno.ELOOP:  # replaced by a symbolic link after it was checked
            raise SourceError(f"{source.school_code}: {source.location}: {_OUTSIDE}") from None
        raise


def _read_fd(fd: int, limit: int) -> bytes:
    chunks, size = [], 0
    while size <= limit:
        chunk = os.read(fd, min(1 << 20, limit + 1 - size))
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _over_limit(source: Source, size: int, limits: Limits) -> SourceError:
    return SourceError(
        f"{source.school_code}: {source.location}: file is {size:,} bytes, over "
        f"the limit of {limits.max_file_bytes:,} (limits.max_file_bytes)"
    )


def _status(source: Source, real: Path, folders: Sequence[Path]) -> os.stat_result:
    """The status of the resolved path: checked inside ``folders`` first (what lies outside
    is not even looked at), then a regular file."""
    where = f"{source.school_code}: {source.location}"
    if not _inside(real, folders):
        raise SourceError(f"{where}: {_OUTSIDE}")
    try:
        seen = os.stat(real, follow_symlinks=False)
    except FileNotFoundError:
        raise SourceAbsent(f"{where}: file {source.location} not found") from None
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror}") from exc
    _regular(source, seen.st_mode)
    return seen


def _read(
    source: Source,
    folders: Sequence[Path],
    limits: Limits,
    wanted: Callable[[os.stat_result], bool],
) -> tuple[bytes, os.stat_result] | None:
    """The confined read itself (see ``read_confined``); runs in a thread of its own."""
    assert source.path is not None  # noqa: S101 - registry resolves paths of file sources
    real = Path(os.path.realpath(source.path))
    where = f"{source.school_code}: {source.location}"
    seen = _status(source, real, folders)
    if seen.st_size > limits.max_file_bytes:
        raise _over_limit(source, seen.st_size, limits)
    if not wanted(seen):
        return None
    try:
        fd = _open(source, real)
    except FileNotFoundError:
        raise SourceAbsent(f"{where}: file {source.location} not found") from None
    except SourceError:
        raise
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror}") from exc
    try:
        # What was opened is what counts: a regular file, still inside the folders.
        opened = os.fstat(fd)
        _regular(source, opened.st_mode)
        if not _inside(_opened_path(fd, real), folders):
            raise SourceError(f"{where}: {_OUTSIDE}")
        content = _read_fd(fd, limits.max_file_bytes) if wanted(opened) else None
    except OSError as exc:
        raise SourceError(f"{where}: {exc.strerror}") from exc
    finally:
        os.close(fd)
    if content is None:
        return None
    if len(content) > limits.max_file_bytes:
        raise _over_limit(source, len(content), limits)
    return content, opened


def in_time(seconds: float, work: Callable[[], T], late: Callable[[], Exception]) -> T:
    """``work()``'s result, or ``late()`` raised when it has not returned within ``seconds``.

    The work runs in a daemon thread, left behind when late: a read blocked by a mount that
    does not answer cannot be interrupted, and must not hold the night (nor the process's exit).
    """
    done: queue.SimpleQueue[tuple[bool, object]] = queue.SimpleQueue()

    def run() -> None:
        try:
            done.put((True, work()))
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting thread
            done.put((False, exc))

    threading.Thread(target=run, name="khaosat-read", daemon=True).start()
    try:
        ok, value = done.get(timeout=seconds)
    except queue.Empty:
        raise late() from None
    if not ok:
        assert isinstance(value, BaseException)  # noqa: S101
        raise value
    return value  # type: ignore[return-value]


def read_confined(
    source: Source,
    folders: Sequence[Path],
    limits: Limits,
    wanted: Callable[[os.stat_result], bool] = lambda _: True,
) -> tuple[bytes, os.stat_result] | None:
    """A file source's bytes and status, read only if it resolves inside ``folders`` and is a
    regular file, within ``limits.read_seconds``; None when ``wanted`` (asked of the file's
    status before reading) says no.

    Raises SourceAbsent for a file not there, and a one-line SourceError for a path outside
    the folders, anything but a regular file, a file over ``limits.max_file_bytes``, an
    unreadable one, or one not read in time.
    """

    def late() -> SourceError:
        return SourceError(
            f"{source.school_code}: {source.location}: could not be read within "
            f"{limits.read_seconds:g} s: the folder's disk or network mount is not answering; "
            f"check the mount (or raise limits.read_seconds)"
        )

    return in_time(limits.read_seconds, lambda: _read(source, folders, limits, wanted), late)


def fetch_file(
    source: Source, archive_dir: Path, limits: Limits, timezone: str, folders: Sequence[Path]
) -> Fetched:
    """Read a file source (confined to ``folders``, see ``read_confined``), archive it, and
    return it with its fingerprint and modified time."""
    got = read_confined(source, folders, limits)
    assert got is not None  # noqa: S101 - every file is wanted
    content, stat = got
    assert source.path is not None  # noqa: S101 - read_confined has read it
    path = source.path
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
    folders: Sequence[Path],
    limits: Limits,
) -> Fetched | None:
    """The file as it was last loaded, if it still is: same modified time and same bytes.

    A stat and a hash, no archiving and no Prefect task: the archive already holds these bytes
    with this sighting. Anything else (a new file, new bytes, a touched file, an unreadable
    one, a path outside ``folders`` or not a regular file) returns None and goes through
    ``fetch_file``, which archives or reports it.
    """
    path = source.path
    if path is None or modified_at is None or not archive_path:
        return None
    try:
        got = read_confined(
            source, folders, limits, lambda s: _local(s.st_mtime, timezone) == modified_at
        )
    except SourceError:
        return None
    if got is None or fingerprint_of(got[0]) != fingerprint:
        return None
    return Fetched(
        source=source,
        content=b"",
        fingerprint=fingerprint,
        archive_path=Path(archive_path),
        filename=path.name,
        modified_at=modified_at,
    )
