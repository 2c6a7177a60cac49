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
- ``GET /drive/v3/files/{key}``: id, name, mimeType, modifiedTime, version (``fields`` honoured
  at the top level).

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
    requests: list[Recorded] = field(default_factory=list)
    faults: list[Fault] = field(default_factory=list)
    #: every access token issued, in order (tests assert none leaks into messages or logs).
    issued_tokens: list[str] = field(default_factory=list)
    #: claims of every JWT assertion received at the token endpoint.
    assertions: list[dict[str, Any]] = field(default_factory=list)
    _valid: dict[str, float] = field(default_factory=dict)  # token -> expiry (monotonic)
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

    def deny(self, key: str) -> None:
        """The spreadsheet exists but is not shared with the service account."""
        with self._lock:
            self.spreadsheets[key].shared = False

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

    def _issue(self) -> str:
        token = "ya29.fake-" + secrets.token_urlsafe(24)
        with self._lock:
            self.issued_tokens.append(token)
            self._valid[token] = time.monotonic() + self.token_lifetime
        return token

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
        elif parts.path.startswith("/drive/v3/files/"):
            api = "drive"
        try:
            status, answer, headers = self._route(method, api, parts.path, query, body)
        except _ApiError as err:
            status, answer, headers = err.status, err.body, err.headers
        self.google._record(Recorded(method, api, path, query, status))
        self._send(status, answer, headers)

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
        # /v4/spreadsheets/{key}[/values/{range} | /values:batchGet]; /drive/v3/files/{key}
        key_segment = segments[3] if api == "sheets" else segments[4]
        key = unquote(key_segment.split(":")[0])
        self._raise_fault(api, key)
        with self.google._lock:
            spreadsheet = self.google.spreadsheets.get(key)
        if api == "drive":
            if spreadsheet is None or not spreadsheet.shared:
                raise _drive_error(404, f"File not found: {key}.")
            return 200, self._drive_file(spreadsheet, query), {}
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

    def _raise_fault(self, api: str, key: str) -> None:
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
        token = g._issue()
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
    def _drive_file(s: FakeSpreadsheet, query: dict[str, list[str]]) -> dict[str, Any]:
        full = {
            "kind": "drive#file",
            "id": s.key,
            "name": s.title,
            "mimeType": "application/vnd.google-apps.spreadsheet",
            "modifiedTime": s.modified_time,
            "version": str(s.version),
        }
        fields = query.get("fields", [""])[0]
        if not fields:
            return {k: full[k] for k in ("kind", "id", "name", "mimeType")}
        wanted = {f.strip() for f in fields.split(",")}
        return {k: v for k, v in full.items() if k in wanted}

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
