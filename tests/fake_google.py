"""A fake Google on 127.0.0.1: OAuth2 token endpoint, Sheets API v4 and Drive API v3.

It speaks enough of the real wire protocol for the real gspread client and google-auth:

- ``POST /token``: the OAuth2 JWT-bearer grant a service account makes (any assertion is
  accepted; its claims are kept in ``assertions``); issues opaque short-lived tokens.
- ``GET /v4/spreadsheets/{key}``: metadata (properties.title/locale/timeZone, sheets[].properties
  sheetId/title/index/sheetType/gridProperties).
- ``GET /v4/spreadsheets/{key}/values:batchGet`` and ``GET /v4/spreadsheets/{key}/values/{range}``
  with valueRenderOption (FORMATTED_VALUE, UNFORMATTED_VALUE, FORMULA treated as unformatted),
  dateTimeRenderOption (SERIAL_NUMBER, FORMATTED_STRING) and majorDimension; like the real API
  it leaves out trailing blank cells and rows, and sends interior blank rows as ``[]``.
- ``GET /drive/v3/files/{id}`` (files.get): a spreadsheet's or a Drive file's metadata, ``fields``
  honoured (nested ``a(b,c)`` and ``a/b`` masks, ``*``); with ``alt=media`` the file's bytes, or
  403 ``fileNotDownloadable`` for a native Google file or a folder, and 403
  ``insufficientPermissions`` for a token without a Drive read scope.
- ``GET /drive/v3/files`` (files.list): ``q`` made of ``'<id>' in parents``, ``trashed =|!=
  true|false``, ``mimeType =|!= '…'`` and ``name =|contains '…'`` joined by ``and`` (anything else:
  400); ``pageSize``/``pageToken``/``nextPageToken`` paging, at most ``drive_page_size`` files a
  page (small, so tests page; Google may also return fewer than asked); ``fields``;
  ``supportsAllDrives``, ``includeItemsFromAllDrives``, ``corpora`` (user, drive with ``driveId``,
  allDrives) for shared drives, whose items only come back when all of them ask for them.

Drive holds folders, shared drives, files (bytes, their md5Checksum, size, modifiedTime, version),
shortcuts (``shortcutDetails.targetId/targetMimeType``), trashed items and the spreadsheets
(native Google Sheets, which may sit in a folder). What the service account sees follows Drive's
sharing: an item shared with it, or inside a folder (or shared drive) that is. An item it cannot
see gives 404 notFound from files.get (403 insufficientFilePermissions for one ``deny``'d with 403)
and is simply left out of files.list, which answers an unseen folder with an empty list, as Google
does. ``downloads()`` lists the files whose bytes were served, from the request log.

Every API call needs ``Authorization: Bearer <token issued here and not expired or revoked>``,
else 401 as Google answers it. Errors use Google's JSON error bodies: Sheets
``{"error": {"code", "message", "status"}}``, Drive ``{"error": {"code", "message", "errors":
[{"domain", "reason", ...}]}}``. A sheet that is not shared gives 403 PERMISSION_DENIED from
Sheets and 404 notFound from Drive, as the real services do.

Programmable faults (``fail``): the next N matching requests (or all, ``times=None``) answer a
given status: bursts of 429, 500/503, Drive's rate-limit 403, a token endpoint refusing the key.
``expire_tokens`` revokes every issued token so the client must refresh. Cells are Python
values: None, str, int, float, bool, datetime, date, or ``Shown(value, text)`` for a number with
a custom display format (a percent, a currency).
"""

from __future__ import annotations

import base64
import datetime as dt
import hashlib
import json
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

FOLDER = "application/vnd.google-apps.folder"
SHORTCUT = "application/vnd.google-apps.shortcut"
SPREADSHEET = "application/vnd.google-apps.spreadsheet"
#: what Drive records for a file uploaded with one of these extensions.
MIME_TYPES = {
    ".xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    ".xls": "application/vnd.ms-excel",
    ".ods": "application/vnd.oasis.opendocument.spreadsheet",
    ".csv": "text/csv",
    ".pdf": "application/pdf",
    ".docx": "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
}
_DRIVE_READ_SCOPES = frozenset(
    f"https://www.googleapis.com/auth/{s}" for s in ("drive", "drive.readonly")
)

SHEETS_EPOCH = dt.datetime(1899, 12, 30)
JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Shown:
    """A number the sheet displays with its own format, e.g. Shown(0.8, "80%")."""

    value: float
    text: str


@dataclass
class FakeWorksheet:
    title: str
    rows: list[list[Any]]
    sheet_id: int
    sheet_type: str = "GRID"


@dataclass
class FakeSpreadsheet:
    key: str
    title: str
    worksheets: list[FakeWorksheet]
    locale: str = "vi_VN"
    time_zone: str = "Asia/Ho_Chi_Minh"
    modified_time: str = "2024-10-29T02:05:31.000Z"
    version: int = 1
    shared: bool = True
    #: Drive folders it sits in (a native sheet in a folder source).
    parents: list[str] = field(default_factory=list)
    trashed: bool = False
    denied: int | None = None

    @property
    def id(self) -> str:
        return self.key

    @property
    def name(self) -> str:
        return self.title

    mime_type = SPREADSHEET
    drive_id: str | None = None
    target_id: str | None = None


@dataclass
class FakeDriveFile:
    """A Drive item that is not a spreadsheet: a file (bytes), a folder or a shortcut."""

    id: str
    name: str
    mime_type: str
    parents: list[str]
    content: bytes = b""
    modified_time: str = "2024-10-29T02:05:31.000Z"
    version: int = 1
    trashed: bool = False
    #: shared with the service account itself (else only through a folder it sits in).
    shared: bool = False
    #: 404 or 403: refused to the service account whatever its folders say.
    denied: int | None = None
    #: the shared drive it belongs to (None: someone's My Drive).
    drive_id: str | None = None
    #: a shortcut's target.
    target_id: str | None = None

    @property
    def native(self) -> bool:
        return self.mime_type.startswith("application/vnd.google-apps.")


@dataclass
class Fault:
    status: int
    remaining: int | None  # None: for ever
    api: str | None  # "sheets" | "drive" | "token" | None (any API call, not the token endpoint)
    key: str | None
    reason: str | None
    retry_after: int | None

    def matches(self, api: str, key: str | None) -> bool:
        if self.remaining == 0:
            return False
        if self.api is None and api == "token":
            return False
        return (self.api in (None, api)) and (self.key in (None, key))


@dataclass
class Recorded:
    """One request the fake answered."""

    method: str
    api: str  # token | sheets | drive | other
    path: str
    query: dict[str, list[str]]
    status: int
    at: float = 0.0  # time.monotonic() at arrival, or the test's clock (see FakeGoogle.clock)


@dataclass
class FakeGoogle:
    """The fake server; use ``with FakeGoogle() as google:`` or ``start()``/``stop()``."""

    #: seconds an issued token lives (server-side, and the ``expires_in`` sent to the client).
    token_lifetime: int = 3600
    #: read for ``Recorded.at``; tests with a fake clock pass it so request times share it.
    clock: Callable[[], float] = time.monotonic
    spreadsheets: dict[str, FakeSpreadsheet] = field(default_factory=dict)
    drive_files: dict[str, FakeDriveFile] = field(default_factory=dict)
    #: the most files one files.list page holds, whatever pageSize asks (Google's own cap is
    #: 1000 and it may send fewer): small, so tests page.
    drive_page_size: int = 3
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: every access token issued, in order (tests assert none leaks into messages or logs).
    issued_tokens: list[str] = field(default_factory=list)
    #: claims of every JWT assertion received at the token endpoint.
    assertions: list[dict[str, Any]] = field(default_factory=list)
    _valid: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
    _scopes: dict[str, frozenset[str]] = field(default_factory=dict)  # token -> scopes
    _lock: threading.Lock = field(default_factory=threading.Lock)
    _server: ThreadingHTTPServer | None = None
    _thread: threading.Thread | None = None

    # ---- lifecycle -------------------------------------------------------------------------

    def start(self) -> FakeGoogle:
        fake = self

        class Handler(_Handler):
            google = fake

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.02}, daemon=True
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGoogle:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        """The API root, for ``gsheets.endpoint``."""
        assert self._server is not None, "start() the fake first"
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    @property
    def token_uri(self) -> str:
        """The token endpoint, for the ``token_uri`` of a service-account key."""
        return f"{self.url}/token"

    # ---- content ---------------------------------------------------------------------------

    def add_spreadsheet(
        self,
        key: str,
        title: str,
        worksheets: Mapping[str, Sequence[Sequence[Any]]],
        **properties: Any,
    ) -> FakeSpreadsheet:
        """A spreadsheet with worksheets (title -> rows), in order; sheet ids 0, 1, 2 …"""
        sheets = [
            FakeWorksheet(t, [list(r) for r in rows], sheet_id=i * 1111)
            for i, (t, rows) in enumerate(worksheets.items())
        ]
        spreadsheet = FakeSpreadsheet(key, title, sheets, **properties)
        with self._lock:
            self.spreadsheets[key] = spreadsheet
        return spreadsheet

    def touch(self, key: str, modified_time: str | None = None) -> None:
        """Mark a spreadsheet edited: its Drive version grows, modifiedTime moves."""
        with self._lock:
            s = self.spreadsheets[key]
            s.version += 1
            s.modified_time = modified_time or dt.datetime.now(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )

    def deny(self, key: str, status: int | None = None) -> None:
        """The spreadsheet or Drive item exists but is not shared with the service account;
        ``status`` 403 makes Drive answer insufficientFilePermissions instead of notFound."""
        with self._lock:
            item = self._item(key)
            assert item is not None, key
            item.shared = False
            item.denied = status

    # ---- Drive content -----------------------------------------------------------------------

    def add_folder(
        self, folder_id: str, name: str, parent: str | None = None, *, shared: bool | None = None
    ) -> FakeDriveFile:
        """A folder, in ``parent`` or at the top of someone's My Drive; a top folder is shared
        with the service account unless ``shared=False``."""
        item = FakeDriveFile(
            folder_id, name, FOLDER, [parent] if parent else [], shared=parent is None
        )
        if shared is not None:
            item.shared = shared
        return self._put(item)

    def add_shared_drive(self, drive_id: str, name: str, *, member: bool = True) -> FakeDriveFile:
        """A shared drive (its root folder has the drive's id); ``member``: the service account
        is one of its members."""
        return self._put(
            FakeDriveFile(drive_id, name, FOLDER, [], shared=member, drive_id=drive_id)
        )

    def add_file(
        self,
        file_id: str,
        name: str,
        content: bytes,
        parent: str,
        *,
        mime_type: str | None = None,
        modified_time: str = "2024-10-29T02:05:31.000Z",
        shared: bool = False,
    ) -> FakeDriveFile:
        """A file uploaded to ``parent``; its mimeType from its extension unless given."""
        suffix = "." + name.rsplit(".", 1)[-1].lower() if "." in name else ""
        mime = mime_type or MIME_TYPES.get(suffix, "application/octet-stream")
        item = FakeDriveFile(
            file_id, name, mime, [parent], content, modified_time=modified_time, shared=shared
        )
        return self._put(item)

    def add_shortcut(self, shortcut_id: str, name: str, target: str, parent: str) -> FakeDriveFile:
        """A shortcut in ``parent`` to the item ``target``."""
        return self._put(FakeDriveFile(shortcut_id, name, SHORTCUT, [parent], target_id=target))

    def upload(self, file_id: str, content: bytes, modified_time: str | None = None) -> None:
        """A new version of a file's bytes: md5Checksum, size, version and modifiedTime move."""
        with self._lock:
            item = self.drive_files[file_id]
            item.content = content
            item.version += 1
            item.modified_time = modified_time or dt.datetime.now(dt.UTC).strftime(
                "%Y-%m-%dT%H:%M:%S.000Z"
            )

    def trash(self, item_id: str) -> None:
        """Move an item to the trash (it stays readable, and listed unless ``trashed = false``)."""
        with self._lock:
            item = self._item(item_id)
            assert item is not None, item_id
            item.trashed = True

    def downloads(self) -> list[str]:
        """Ids of the files whose bytes were served (files.get?alt=media answered 200), in order."""
        return [
            r.path.rsplit("/", 1)[-1]
            for r in self.calls("drive")
            if r.query.get("alt") == ["media"] and r.status == 200
        ]

    def _put(self, item: FakeDriveFile) -> FakeDriveFile:
        with self._lock:
            if item.drive_id is None and item.parents:
                parent = self._item(item.parents[0])
                item.drive_id = parent.drive_id if parent is not None else None
            self.drive_files[item.id] = item
        return item

    def _item(self, item_id: str) -> FakeDriveFile | FakeSpreadsheet | None:
        """The Drive item with this id (caller holds the lock)."""
        return self.drive_files.get(item_id) or self.spreadsheets.get(item_id)

    def _visible(self, item: FakeDriveFile | FakeSpreadsheet, depth: int = 0) -> bool:
        """Whether the service account sees ``item``: shared with it, or inside what is."""
        if item.denied is not None or depth > 50:
            return False
        if item.shared:
            return True
        parents = (self._item(p) for p in item.parents)
        return any(p is not None and self._visible(p, depth + 1) for p in parents)

    # ---- faults and tokens -----------------------------------------------------------------

    def fail(
        self,
        status: int,
        times: int | None = 1,
        *,
        api: str | None = None,
        key: str | None = None,
        reason: str | None = None,
        retry_after: int | None = None,
    ) -> Fault:
        """Answer ``status`` to the next ``times`` matching requests (None: all of them)."""
        fault = Fault(status, times, api, key, reason, retry_after)
        with self._lock:
            self.faults.append(fault)
        return fault

    def expire_tokens(self) -> None:
        """Revoke every issued token: the next API call gets 401 and must refresh."""
        with self._lock:
            self._valid.clear()

    # ---- what happened ---------------------------------------------------------------------

    def calls(self, api: str | None = None) -> list[Recorded]:
        """Requests answered so far, of one API (token, sheets, drive) or all."""
        with self._lock:
            return [r for r in self.requests if api is None or r.api == api]

    @property
    def token_requests(self) -> int:
        return len(self.calls("token"))

    # ---- internals used by the handler -----------------------------------------------------

    def _take_fault(self, api: str, key: str | None) -> Fault | None:
        with self._lock:
            for fault in self.faults:
                if fault.matches(api, key):
                    if fault.remaining is not None:
                        fault.remaining -= 1
                    return fault
        return None

    def _issue(self, scope: str = "") -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.append(token)
            self._valid[token] = time.monotonic() + self.token_lifetime
            self._scopes[token] = frozenset(scope.split())
        return token

    def _token_scopes(self, header: str | None) -> frozenset[str]:
        with self._lock:
            return self._scopes.get((header or "")[len("Bearer ") :], frozenset())

    def _authorized(self, header: str | None) -> bool:
        if not header or not header.startswith("Bearer "):
            return False
        with self._lock:
            expiry = self._valid.get(header[len("Bearer ") :])
        return expiry is not None and time.monotonic() < expiry

    def _record(self, rec: Recorded) -> None:
        rec.at = self.clock()
        with self._lock:
            self.requests.append(rec)


# ---- rendering ---------------------------------------------------------------------------------


def _serial(value: dt.datetime | dt.date) -> float | int:
    if isinstance(value, dt.datetime):
        return (value - SHEETS_EPOCH) / dt.timedelta(days=1)
    return (value - SHEETS_EPOCH.date()).days


def _show_date(value: dt.datetime | dt.date, locale: str) -> str:
    day_first = not locale.startswith("en_US")
    d, m = (value.day, value.month) if day_first else (value.month, value.day)
    text = f"{d}/{m}/{value.year}"
    if isinstance(value, dt.datetime):
        text += f" {value.hour}:{value.minute:02d}:{value.second:02d}"
    return text


def _show_number(value: float | int, locale: str) -> str:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    text = str(value) if isinstance(value, int) else repr(value)
    return text.replace(".", ",") if locale.startswith("vi") else text


def _render(value: Any, render: str, date_render: str, locale: str) -> Any:
    if value is None:
        return ""
    formatted = render == "FORMATTED_VALUE"
    if isinstance(value, bool):
        return ("TRUE" if value else "FALSE") if formatted else value
    if isinstance(value, Shown):
        return value.text if formatted else value.value
    if isinstance(value, dt.date):
        if formatted or date_render == "FORMATTED_STRING":
            return _show_date(value, locale)
        return _serial(value)
    if isinstance(value, int | float):
        if formatted:
            return _show_number(value, locale)
        return int(value) if isinstance(value, float) and value.is_integer() else value
    return str(value)


def _trim(grid: list[list[Any]]) -> list[list[Any]]:
    """As the API answers: no trailing blank cells in a row, no trailing blank rows."""
    rows = []
    for row in grid:
        cells = list(row)
        while cells and cells[-1] == "":
            cells.pop()
        rows.append(cells)
    while rows and not rows[-1]:
        rows.pop()
    return rows


def _column_number(letters: str) -> int:
    n = 0
    for ch in letters.upper():
        n = n * 26 + ord(ch) - 64
    return n


def _column_letters(n: int) -> str:
    out = ""
    while n:
        n, rem = divmod(n - 1, 26)
        out = chr(65 + rem) + out
    return out or "A"


_BOUNDS = re.compile(r"([A-Za-z]{0,3})(\d*)(?::([A-Za-z]{0,3})(\d*))?")


# ---- Drive ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Media:
    """A download's answer: bytes, not JSON."""

    content: bytes
    mime_type: str


def _parse_fields(text: str) -> dict[str, Any] | None:
    """A ``fields`` mask as a tree: name -> subtree (None: the whole value); None for ``*``."""
    tree: dict[str, Any] = {}
    pos = 0

    def items(end: str) -> dict[str, Any]:
        nonlocal pos
        out: dict[str, Any] = {}
        while pos < len(text) and text[pos] != end:
            m = re.compile(r"\s*([A-Za-z_*][\w/*]*)\s*").match(text, pos)
            if not m:
                raise _drive_error(400, f"Invalid field selection {text}", "invalidParameter")
            pos = m.end()
            path = m.group(1).split("/")
            sub: dict[str, Any] | None = None
            if pos < len(text) and text[pos] == "(":
                pos += 1
                sub = items(")")
                pos += 1
            node = out
            for name in path[:-1]:
                node = node.setdefault(name, {}) or {}
            node[path[-1]] = sub
            if pos < len(text) and text[pos] == ",":
                pos += 1
        return out

    tree = items("")
    return None if "*" in tree else tree


def _mask(value: Any, tree: dict[str, Any] | None) -> Any:
    if tree is None:
        return value
    if isinstance(value, list):
        return [_mask(v, tree) for v in value]
    if isinstance(value, dict):
        return {k: _mask(value[k], sub) for k, sub in tree.items() if k in value}
    return value


def _drive_resource(g: FakeGoogle, item: FakeDriveFile | FakeSpreadsheet) -> dict[str, Any]:
    """Everything Drive v3 says of an item (int64 values as strings, as Google sends them)."""
    out: dict[str, Any] = {
        "kind": "drive#file",
        "id": item.id,
        "name": item.name,
        "mimeType": item.mime_type,
        "parents": list(item.parents),
        "trashed": item.trashed,
        "modifiedTime": item.modified_time,
        "version": str(item.version),
    }
    if item.drive_id is not None:
        out["driveId"] = item.drive_id
    if isinstance(item, FakeDriveFile) and not item.native:
        out["md5Checksum"] = hashlib.md5(item.content).hexdigest()  # noqa: S324 - Drive's checksum
        out["size"] = str(len(item.content))
    if item.mime_type == SHORTCUT and item.target_id is not None:
        target = g._item(item.target_id)
        out["shortcutDetails"] = {
            "targetId": item.target_id,
            "targetMimeType": target.mime_type if target is not None else FOLDER,
        }
    return out


def _true(query: dict[str, list[str]], name: str) -> bool:
    return query.get(name, ["false"])[0].lower() == "true"


def _drive_get(
    g: FakeGoogle, key: str, query: dict[str, list[str]], scopes: frozenset[str]
) -> dict[str, Any] | Media:
    """files.get: metadata, or with ``alt=media`` the bytes."""
    with g._lock:
        item = g._item(key)
        visible = item is not None and g._visible(item)
        resource = _drive_resource(g, item) if item is not None else {}
    if item is not None and item.denied == 403:
        raise _drive_error(
            403,
            "The user does not have sufficient permissions for this file.",
            "insufficientFilePermissions",
        )
    if item is None or not visible or (item.drive_id and not _true(query, "supportsAllDrives")):
        raise _drive_error(404, f"File not found: {key}.")
    if query.get("alt", [""])[0] == "media":
        if not scopes & _DRIVE_READ_SCOPES:
            raise _drive_error(
                403, "Request had insufficient authentication scopes.", "insufficientPermissions"
            )
        if not isinstance(item, FakeDriveFile) or item.native:
            raise _drive_error(
                403,
                "Only files with binary content can be downloaded. Use Export with Docs Editors "
                "files.",
                "fileNotDownloadable",
            )
        return Media(item.content, item.mime_type)
    fields = query.get("fields", [""])[0]
    if not fields:
        return {k: resource[k] for k in ("kind", "id", "name", "mimeType")}
    return dict(_mask(resource, _parse_fields(fields)))


_QUOTED = r"'((?:[^'\\]|\\.)*)'"
_CLAUSES = (
    ("parent", re.compile(rf"\s*{_QUOTED}\s+in\s+parents\s*", re.IGNORECASE)),
    ("trashed", re.compile(r"\s*trashed\s*(=|!=)\s*(true|false)\s*", re.IGNORECASE)),
    ("mimeType", re.compile(rf"\s*mimeType\s*(=|!=)\s*{_QUOTED}\s*")),
    ("name", re.compile(rf"\s*name\s*(=|contains)\s*{_QUOTED}\s*")),
)
_AND = re.compile(r"and\b", re.IGNORECASE)
Item = FakeDriveFile | FakeSpreadsheet


def _unquote(text: str) -> str:
    return re.sub(r"\\(.)", r"\1", text)


def _clause(kind: str, m: re.Match[str]) -> tuple[Callable[[Item], bool], str | None]:
    """(predicate, the parent it names) of one ``q`` clause."""
    if kind == "parent":
        parent = _unquote(m.group(1))
        return (lambda i: parent in i.parents), parent
    if kind == "trashed":
        want = (m.group(2).lower() == "true") == (m.group(1) == "=")
        return (lambda i: i.trashed == want), None
    if kind == "mimeType":
        mime, equal = _unquote(m.group(2)), m.group(1) == "="
        return (lambda i: (i.mime_type == mime) == equal), None
    name, op = _unquote(m.group(2)), m.group(1)
    if op == "=":
        return (lambda i: i.name == name), None
    return (lambda i: name.casefold() in i.name.casefold()), None


def _parse_q(q: str) -> tuple[list[Callable[[Item], bool]], str | None]:
    """(predicates, the parent folder named) of a files.list ``q``; 400 for what is not known."""
    tests: list[Callable[[Item], bool]] = []
    parent = None
    pos = 0
    while q.strip():
        matched = [(k, m) for k, p in _CLAUSES if (m := p.match(q, pos))]
        if not matched:
            raise _drive_error(400, "Invalid Value", "invalid")
        kind, m = matched[0]
        test, named = _clause(kind, m)
        tests.append(test)
        parent = parent or named
        pos = m.end()
        if pos == len(q):
            break
        joined = _AND.match(q, pos)
        if not joined:
            raise _drive_error(400, "Invalid Value", "invalid")
        pos = joined.end()
    return tests, parent


class _DriveList:
    """files.list: one page of the items the service account sees that match ``q``."""

    def __init__(
        self,
        g: FakeGoogle,
        query: dict[str, list[str]],
        raise_fault: Callable[[str, str | None], None],
    ):
        self.g = g
        self.query = query
        self.raise_fault = raise_fault

    def _arg(self, name: str, default: str = "") -> str:
        return self.query.get(name, [default])[0]

    def _drives(self) -> Callable[[Item], bool]:
        """Which items' drives the request covers (My Drive, one shared drive, all)."""
        corpora, drive_id = self._arg("corpora", "user"), self._arg("driveId")
        all_drives = _true(self.query, "includeItemsFromAllDrives")
        if (corpora == "drive") != bool(drive_id):
            raise _drive_error(
                400,
                "The driveId parameter must be specified if and only if corpora is set to drive.",
                "invalid",
            )
        if (all_drives or corpora != "user") and not _true(self.query, "supportsAllDrives"):
            raise _drive_error(
                403,
                "The includeItemsFromAllDrives parameter can only be set to true when "
                "supportsAllDrives is also set to true.",
                "teamDriveIncludeItemsFromAllDrivesNotSupported",
            )
        if corpora not in ("user", "drive", "allDrives"):
            raise _drive_error(400, "Invalid Value", "invalid")
        if corpora == "drive":
            return lambda i: all_drives and i.drive_id == drive_id
        if corpora == "allDrives":
            return lambda i: i.drive_id is None or all_drives
        return lambda i: i.drive_id is None

    def _page(self, sign: str) -> tuple[int, int]:
        """(offset, size) of the page asked for."""
        try:
            size = int(self._arg("pageSize", "100"))
        except ValueError:
            raise _drive_error(400, "Invalid Value", "invalid") from None
        if not 1 <= size <= 1000:
            raise _drive_error(400, "Invalid Value", "invalid")
        token = self._arg("pageToken")
        offset = 0
        if token:
            try:
                got = json.loads(base64.urlsafe_b64decode(token.encode()))
                offset, signed = int(got["o"]), str(got["s"])
            except (ValueError, KeyError, TypeError):
                raise _drive_error(400, "Invalid Value", "invalid") from None
            if signed != sign:
                raise _drive_error(400, "Invalid Value", "invalid")
        return offset, min(size, self.g.drive_page_size)

    def answer(self) -> dict[str, Any]:
        tests, parent = _parse_q(self._arg("q"))
        self.raise_fault("drive", parent)
        in_drives = self._drives()
        sign = hashlib.sha256(
            repr(sorted((k, v) for k, v in self.query.items() if k != "pageToken")).encode()
        ).hexdigest()[:16]
        offset, size = self._page(sign)
        g = self.g
        with g._lock:
            items = [*g.drive_files.values(), *g.spreadsheets.values()]
            found = [
                _drive_resource(g, i)
                for i in items
                if g._visible(i) and in_drives(i) and all(t(i) for t in tests)
            ]
        page: dict[str, Any] = {
            "kind": "drive#fileList",
            "incompleteSearch": False,
            "files": found[offset : offset + size],
        }
        if offset + size < len(found):
            page["nextPageToken"] = base64.urlsafe_b64encode(
                json.dumps({"o": offset + size, "s": sign}).encode()
            ).decode()
        fields = self._arg("fields")
        if not fields:
            keep = ("kind", "id", "name", "mimeType")
            page["files"] = [{k: f[k] for k in keep} for f in page["files"]]
            return page
        return dict(_mask(page, _parse_fields(fields)))


# ---- the request handler -------------------------------------------------------------------------


class _ApiError(Exception):
    def __init__(self, status: int, body: dict[str, Any], headers: dict[str, str] | None = None):
        super().__init__(status)
        self.status = status
        self.body = body
        self.headers = headers or {}


_STATUS_WORDS = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    404: "NOT_FOUND",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
    502: "UNAVAILABLE",
    503: "UNAVAILABLE",
    504: "DEADLINE_EXCEEDED",
}
_MESSAGES = {
    400: "Invalid request.",
    401: (
        "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
        "cookie or other valid authentication credential."
    ),
    403: "The caller does not have permission",
    404: "Requested entity was not found.",
    429: (
        "Quota exceeded for quota metric 'Read requests' and limit 'Read requests per minute "
        "per user' of service 'sheets.googleapis.com' for consumer 'project_number:1234567890'."
    ),
    500: "Internal error encountered.",
    502: "Bad gateway.",
    503: "The service is currently unavailable.",
    504: "Deadline exceeded.",
}


def _sheets_error(status: int, message: str | None = None, reason: str | None = None) -> _ApiError:
    error: dict[str, Any] = {
        "code": status,
        "message": message or _MESSAGES.get(status, "Error."),
        "status": _STATUS_WORDS.get(status, "UNKNOWN"),
    }
    if reason:
        error["details"] = [
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": reason,
                "domain": "googleapis.com",
            }
        ]
    return _ApiError(status, {"error": error})


def _drive_error(status: int, message: str | None = None, reason: str | None = None) -> _ApiError:
    default_reasons = {403: "forbidden", 404: "notFound", 429: "rateLimitExceeded"}
    reason = reason or default_reasons.get(status, "backendError")
    domain = "usageLimits" if "RateLimit" in reason or "rateLimit" in reason else "global"
    text = message or _MESSAGES.get(status, "Error.")
    return _ApiError(
        status,
        {
            "error": {
                "code": status,
                "message": text,
                "errors": [{"message": text, "domain": domain, "reason": reason}],
            }
        },
    )


class _Handler(BaseHTTPRequestHandler):
    google: FakeGoogle
    protocol_version = "HTTP/1.1"
    # Headers and body in one segment: two small writes meet the client's delayed ACK
    # (about 40 ms a request on Linux) and make the suite slow.
    wbufsize = -1
    disable_nagle_algorithm = True

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 - stdlib signature
        pass  # keep pytest output clean

    # -- plumbing --

    def _send(self, status: int, body: Any, headers: Mapping[str, str] | None = None) -> None:
        payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json; charset=UTF-8")
        self.send_header("Content-Length", str(len(payload)))
        for name, value in (headers or {}).items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(payload)

    def _answer(self, method: str) -> None:
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        api = "other"
        if parts.path == "/token":
            api = "token"
        elif parts.path.startswith("/v4/spreadsheets/"):
            api = "sheets"
        elif parts.path == "/drive/v3/files" or parts.path.startswith("/drive/v3/files/"):
            api = "drive"
        try:
            status, answer, headers = self._route(method, api, parts.path, query, body)
        except _ApiError as err:
            status, answer, headers = err.status, err.body, err.headers
        self.google._record(Recorded(method, api, path, query, status))
        if isinstance(answer, Media):
            self._send_bytes(status, answer)
        else:
            self._send(status, answer, headers)

    def _send_bytes(self, status: int, media: Media) -> None:
        self.send_response(status)
        self.send_header("Content-Type", media.mime_type)
        self.send_header("Content-Length", str(len(media.content)))
        self.end_headers()
        self.wfile.write(media.content)

    def do_GET(self) -> None:  # noqa: N802 - http.server naming
        self._answer("GET")

    def do_POST(self) -> None:  # noqa: N802 - http.server naming
        self._answer("POST")

    # -- routing --

    def _route(
        self, method: str, api: str, raw_path: str, query: dict[str, list[str]], body: bytes
    ) -> tuple[int, Any, dict[str, str]]:
        if api == "token":
            if method != "POST":
                raise _ApiError(405, {"error": "invalid_request"})
            return self._token(body)
        self._admit(method, api, raw_path)
        segments = raw_path.split("/")
        if api == "drive":
            # /drive/v3/files (list) or /drive/v3/files/{id} (get, alt=media)
            if len(segments) == 4:
                return 200, _DriveList(self.google, query, self._raise_fault).answer(), {}
            key = unquote(segments[4])
            self._raise_fault(api, key)
            scopes = self.google._token_scopes(self.headers.get("Authorization"))
            return 200, _drive_get(self.google, key, query, scopes), {}
        # /v4/spreadsheets/{key}[/values/{range} | /values:batchGet]
        key_segment = segments[3]
        key = unquote(key_segment.split(":")[0])
        self._raise_fault(api, key)
        with self.google._lock:
            spreadsheet = self.google.spreadsheets.get(key)
        if spreadsheet is None:
            raise _sheets_error(404)
        if not spreadsheet.shared:
            raise _sheets_error(403)
        return self._sheets(spreadsheet, key, key_segment, segments, query, raw_path)

    def _admit(self, method: str, api: str, raw_path: str) -> None:
        """Refuse what the real API refuses before looking at the file: unknown paths, other
        methods than GET, requests without a valid token."""
        if api == "other":
            raise _sheets_error(404, "Not found: " + raw_path)
        if method != "GET":
            raise _sheets_error(405, "Method not allowed.")
        if not self.google._authorized(self.headers.get("Authorization")):
            raise _ApiError(
                401,
                _sheets_error(401).body,
                {"WWW-Authenticate": 'Bearer realm="https://accounts.google.com/"'},
            )

    def _raise_fault(self, api: str, key: str | None) -> None:
        """Answer with the next fault planted for ``key`` on ``api``, if any."""
        fault = self.google._take_fault(api, key)
        if fault is not None:
            make = _sheets_error if api == "sheets" else _drive_error
            err = make(fault.status, reason=fault.reason)
            if fault.retry_after is not None:
                err.headers["Retry-After"] = str(fault.retry_after)
            raise err

    def _sheets(
        self,
        spreadsheet: Any,
        key: str,
        key_segment: str,
        segments: list[str],
        query: dict[str, list[str]],
        raw_path: str,
    ) -> tuple[int, Any, dict[str, str]]:
        """A Sheets v4 read: the spreadsheet's metadata, a batch of ranges, or one range."""
        if len(segments) == 4 and ":" not in key_segment:
            return 200, self._metadata(spreadsheet), {}
        if len(segments) == 5 and segments[4] == "values:batchGet":
            ranges = query.get("ranges", [])
            value_ranges = [self._value_range(spreadsheet, r, query) for r in ranges]
            return 200, {"spreadsheetId": key, "valueRanges": value_ranges}, {}
        if len(segments) >= 6 and segments[4] == "values":
            a1 = unquote("/".join(segments[5:]))
            return 200, self._value_range(spreadsheet, a1, query), {}
        raise _sheets_error(404, "Not found: " + raw_path)

    def _token(self, body: bytes) -> tuple[int, Any, dict[str, str]]:
        g = self.google
        form = parse_qs(body.decode("utf-8"))
        fault = g._take_fault("token", None)
        if fault is not None:
            error = fault.reason or "invalid_grant"
            return fault.status, {"error": error, "error_description": "Invalid JWT Signature."}, {}
        if form.get("grant_type", [""])[0] != JWT_BEARER or not form.get("assertion"):
            return (
                400,
                {"error": "unsupported_grant_type", "error_description": "Invalid grant_type"},
                {},
            )
        try:
            payload = form["assertion"][0].split(".")[1]
            claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (IndexError, ValueError):
            return 400, {"error": "invalid_grant", "error_description": "Invalid JWT."}, {}
        with g._lock:
            g.assertions.append(claims)
        token = g._issue(str(claims.get("scope", "")))
        return (
            200,
            {"access_token": token, "expires_in": g.token_lifetime, "token_type": "Bearer"},
            {},
        )

    @staticmethod
    def _metadata(s: FakeSpreadsheet) -> dict[str, Any]:
        return {
            "spreadsheetId": s.key,
            "properties": {
                "title": s.title,
                "locale": s.locale,
                "autoRecalc": "ON_CHANGE",
                "timeZone": s.time_zone,
            },
            "sheets": [
                {
                    "properties": {
                        "sheetId": w.sheet_id,
                        "title": w.title,
                        "index": i,
                        "sheetType": w.sheet_type,
                        "gridProperties": {
                            "rowCount": max(1000, len(w.rows)),
                            "columnCount": max(26, max((len(r) for r in w.rows), default=0)),
                        },
                    }
                }
                for i, w in enumerate(s.worksheets)
            ],
            "spreadsheetUrl": f"https://docs.google.com/spreadsheets/d/{s.key}/edit",
        }

    @staticmethod
    def _find_sheet(s: FakeSpreadsheet, a1: str) -> tuple[FakeWorksheet, str]:
        """(worksheet, bounds) of an A1 range: 'Title'!A1:B2, Title!A:B, Title, or A1:B2."""
        if a1.startswith("'"):
            i, title = 1, ""
            while i < len(a1):
                if a1[i] == "'" and a1[i + 1 : i + 2] == "'":
                    title, i = title + "'", i + 2
                elif a1[i] == "'":
                    break
                else:
                    title, i = title + a1[i], i + 1
            rest = a1[i + 1 :]
            bounds = rest[1:] if rest.startswith("!") else ""
        elif "!" in a1:
            title, bounds = a1.split("!", 1)
        else:
            title, bounds = a1, ""
        for w in s.worksheets:
            if w.title == title:
                return w, bounds
        if not a1.startswith("'") and "!" not in a1 and _BOUNDS.fullmatch(a1) and s.worksheets:
            return s.worksheets[0], a1  # a range without a sheet name: the first sheet
        raise _sheets_error(400, f"Unable to parse range: {a1}")

    def _value_range(
        self, s: FakeSpreadsheet, a1: str, query: dict[str, list[str]]
    ) -> dict[str, Any]:
        render = query.get("valueRenderOption", ["FORMATTED_VALUE"])[0]
        date_render = query.get("dateTimeRenderOption", ["SERIAL_NUMBER"])[0]
        major = query.get("majorDimension", ["ROWS"])[0]
        sheet, bounds = self._find_sheet(s, a1)
        width = max((len(r) for r in sheet.rows), default=0)
        top, left, bottom, right = 1, 1, max(1000, len(sheet.rows)), max(26, width)
        m = _BOUNDS.fullmatch(bounds) if bounds else None
        if bounds and not m:
            raise _sheets_error(400, f"Unable to parse range: {a1}")
        if m:
            c1, r1, c2, r2 = m.groups()
            left = _column_number(c1) if c1 else 1
            top = int(r1) if r1 else 1
            right = _column_number(c2) if c2 else (left if c1 and c2 is None else right)
            bottom = int(r2) if r2 else (top if r1 and r2 is None else bottom)
        grid = [
            [
                _render(row[j] if j < len(row) else None, render, date_render, s.locale)
                for j in range(left - 1, min(right, width))
            ]
            for row in sheet.rows[top - 1 : bottom]
        ]
        grid = _trim(grid)
        if major == "COLUMNS":
            cols = max((len(r) for r in grid), default=0)
            grid = _trim([[r[j] if j < len(r) else "" for r in grid] for j in range(cols)])
        quoted = "'" + sheet.title.replace("'", "''") + "'"
        answer: dict[str, Any] = {
            "range": f"{quoted}!{_column_letters(left)}{top}:{_column_letters(right)}{bottom}",
            "majorDimension": major,
        }
        if grid:
            answer["values"] = grid
        return answer


@contextmanager
def running(**kwargs: Any) -> Iterator[FakeGoogle]:
    """A started FakeGoogle, stopped on exit."""
    google = FakeGoogle(**kwargs).start()
    try:
        yield google
    finally:
        google.stop()
