"""Google Sheets sources (kind ``gsheet``): the IO half, with quotas, retries and clear errors.

A ``gsheet`` source's location is a spreadsheet key (a pasted ``…/spreadsheets/d/<key>/…`` URL
is accepted too), optionally followed by ``#<worksheet title>`` (or ``#gid=<sheet id>``); without
it the first worksheet is read. Calls, per fetched sheet:

- Sheets ``spreadsheets.get`` (titles and ids of the worksheets, locale, time zone);
- Drive ``files.get`` (``modifiedTime``, ``version``: the revision used for change detection);
- Sheets ``values:batchGet`` twice for the one worksheet, ``UNFORMATTED_VALUE`` (numbers as
  numbers, dates as serial numbers: locale-free) and ``FORMATTED_VALUE`` (what the sheet shows,
  which says which serials are dates). Both are needed: formatted text alone is ambiguous
  (an English-account form writes "10/5/2024", month first, and a whole campaign can fall in
  days 1–12), serials alone do not say which numbers are timestamps.

``sheet_revision`` makes the Drive call alone, so the flow can skip a sheet whose revision has
not changed since its last successful load without spending Sheets quota on it.

Quotas: Sheets allows about 60 read requests per minute per service account. A process-wide
``RateLimiter`` per (API root, service account) keeps Sheets requests under
``gsheets.requests_per_minute`` across all threads, and Drive requests under their own, larger
budget. 429, 5xx, 408 and Drive's rate-limit 403s are retried with capped exponential backoff
and jitter, bounded in count and total time (``RetryPolicy``). A 403 that means "not shared" is
never retried (gspread's BackOffHTTPClient retries every 403, so it is not used).

Secrets: the access token, the private key and the Authorization header never appear in a
message, a log line or an exception raised from here. Errors are re-raised as ``SourceError``
built from status codes and Google's error text only, outside the ``except`` block, so no
exception holding the HTTP request (and so the Authorization header) is chained to them.

The pure half is ``tables_from_content``: the archived JSON back into a ``Table``.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import re
import threading
import time
import unicodedata
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import gspread
import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient
from gspread.urls import DRIVE_FILES_API_V3_URL

from flows.fetch.files import archive
from flows.settings import GSheets, Limits
from schemas.records import Cell, Fetched, Source, SourceError, Table

log = logging.getLogger(__name__)

#: Read-only scopes: khaosat never writes to a school's sheet, and a leaked key then cannot.
SCOPES = (
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.metadata.readonly",
)
#: The real API roots gspread's URL constants point at; requests to them are redirected when
#: ``gsheets.endpoint`` names another root (an emulator, or the tests' fake).
DEFAULT_ENDPOINT = "https://sheets.googleapis.com"
_GOOGLE_SHEETS_PREFIX = "https://sheets.googleapis.com/"
_GOOGLE_DRIVE_PREFIX = "https://www.googleapis.com/drive/"
#: Drive's quota is per project and far larger than Sheets' (thousands a minute); it gets its
#: own limiter so the nightly "has it changed?" calls do not queue behind Sheets' 60 a minute.
DRIVE_REQUESTS_PER_MINUTE = 600
#: (connect, read) seconds. gspread sends no timeout at all, and one hung socket must not hold
#: a worker thread for the whole night.
HTTP_TIMEOUT = (10.0, 120.0)
#: Not plain ".json": the archive keeps its sightings sidecar at ``<sha>.json``.
ARCHIVE_SUFFIX = ".gsheet.json"
#: Version tag of the archived JSON, so a later reader can tell layouts apart.
CONTENT_FORMAT = "khaosat-gsheet/1"
#: Day 0 of Sheets' serial numbers (no 1900 leap-year bug in Sheets).
_SHEETS_EPOCH = dt.datetime(1899, 12, 30)
#: Largest serial that is still a date (9999-12-31).
_MAX_SERIAL = 2_958_465
_SPREADSHEET_FIELDS = (
    "spreadsheetId,properties(title,locale,timeZone),"
    "sheets(properties(sheetId,title,index,sheetType,gridProperties(rowCount,columnCount)))"
)
_DRIVE_FIELDS = "id,name,modifiedTime,version"
_KEY = re.compile(r"[A-Za-z0-9_-]+")
_URL_KEY = re.compile(r"/spreadsheets/d/([A-Za-z0-9_-]+)")
_GID = re.compile(r"gid\s*=\s*(\d+)", re.IGNORECASE)
# A formatted cell is a date when it shows three numbers joined by / or - (29/10/2024,
# 2024-10-29); "." is left out because Vietnamese number formats group thousands with it.
_DATE_TEXT = re.compile(r"\d{1,4}\s*[/-]\s*\d{1,2}\s*[/-]\s*\d{1,4}")
_TIME_TEXT = re.compile(r"\d{1,2}:\d{2}")
#: Drive's 403 reasons that mean "slow down", the only 403s worth retrying.
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})

Sleep = Callable[[float], None]
Clock = Callable[[], float]
T = TypeVar("T")


# --------------------------------------------------------------------------------------------
# Quotas: rate limiting and retries


class RateLimiter:
    """At most ``per_minute`` acquisitions in any sliding 60-second window, across threads.

    A sliding window (not a token bucket) because Google counts requests per minute: a burst
    allowed by a bucket after a quiet spell could still cross the per-minute quota.
    """

    def __init__(self, per_minute: int, *, clock: Clock = time.monotonic, window: float = 60.0):
        if per_minute < 1:
            raise ValueError(f"requests per minute must be at least 1, not {per_minute}")
        self.per_minute = per_minute
        self.window = window
        self._clock = clock
        self._lock = threading.Lock()
        self._stamps: deque[float] = deque()

    def acquire(self, sleep: Sleep = time.sleep) -> float:
        """Block until one more request fits in the window; return the seconds waited."""
        waited = 0.0
        while True:
            with self._lock:
                now = self._clock()
                while self._stamps and now - self._stamps[0] >= self.window:
                    self._stamps.popleft()
                if len(self._stamps) < self.per_minute:
                    self._stamps.append(now)
                    return waited
                wait = self._stamps[0] + self.window - now
            # Sleep outside the lock so other threads can still see the window; whoever wakes
            # first takes the freed slot and the others wait again.
            sleep(wait)
            waited += wait


_LIMITERS: dict[tuple[Any, ...], RateLimiter] = {}
_LIMITERS_LOCK = threading.Lock()


def _shared_limiter(key: tuple[Any, ...], per_minute: int, clock: Clock) -> RateLimiter:
    """The process-wide limiter for ``key``: the quota belongs to the account, not a client."""
    with _LIMITERS_LOCK:
        limiter = _LIMITERS.get(key)
        if limiter is None:
            limiter = _LIMITERS[key] = RateLimiter(per_minute, clock=clock)
        return limiter


@dataclass(frozen=True)
class RetryPolicy:
    """Backoff for transient answers (429, 408, 5xx, Drive rate-limit 403, network errors).

    Retry n (0-based) waits between half and all of ``min(max_sleep, base * 2**n)`` seconds
    (jitter spreads out threads that were throttled together), or longer if the server sent
    Retry-After. Gives up after ``max_retries`` retries or when the next wait would take the
    request past ``max_total_seconds``, whichever comes first.
    """

    max_retries: int = 6
    base_seconds: float = 1.0
    max_sleep_seconds: float = 32.0
    max_total_seconds: float = 180.0
    rng: random.Random = field(default_factory=random.Random, compare=False, repr=False)

    @classmethod
    def from_settings(cls, settings: GSheets) -> RetryPolicy:
        """The policy from the ``gsheets.retry_*`` settings."""
        return cls(
            max_retries=settings.retry_max_retries,
            base_seconds=settings.retry_base_seconds,
            max_sleep_seconds=settings.retry_max_sleep_seconds,
            max_total_seconds=settings.retry_max_total_seconds,
        )

    def delay(self, retry: int, retry_after: float | None = None) -> float:
        """Seconds to wait before retry number ``retry`` (0-based)."""
        ceiling = min(self.max_sleep_seconds, self.base_seconds * 2**retry)
        jittered = ceiling / 2 + self.rng.uniform(0, ceiling / 2)
        return max(jittered, retry_after or 0.0)


class RetriesExhausted(Exception):
    """Google kept answering with a transient failure past the retry bounds."""

    def __init__(self, api: str, failure: str, attempts: int, seconds: float):
        super().__init__(
            f"Google {api} API still answered {failure} after {attempts} attempts over "
            f"{seconds:.0f} s (quota or outage); the next run will try again"
        )


def _retry_after(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After", "")
    return float(value) if value.strip().isdigit() else None


def _is_transient(response: requests.Response) -> bool:
    status = response.status_code
    if status in (408, 429) or status >= 500:
        return True
    if status != 403:
        return False
    # Drive answers 403 both for "slow down" and for "no access"; only the first is retried.
    try:
        errors = response.json()["error"].get("errors", [])
        return any(e.get("reason") in _RATE_LIMIT_REASONS for e in errors)
    except (ValueError, KeyError, TypeError, AttributeError):
        return False


class _GoogleSession(AuthorizedSession):
    """An authorized session that redirects, rate-limits and retries every API request.

    gspread 6 copies its URL constants into its modules at import time, so the API root cannot
    be changed there; every request passes through ``send`` here, so rewriting the URL in
    ``send`` catches them all. Retrying in ``send`` (below AuthorizedSession.request) keeps
    google-auth's own 401 → refresh → retry path intact, and every attempt, retries included,
    takes a rate-limiter slot, as every attempt counts against the quota.
    """

    def __init__(
        self,
        credentials: service_account.Credentials,
        *,
        endpoint: str,
        sheets_limiter: RateLimiter,
        drive_limiter: RateLimiter,
        policy: RetryPolicy,
        sleep: Sleep,
        clock: Clock,
    ):
        super().__init__(credentials)
        root = endpoint.rstrip("/")
        self._root = None if root == DEFAULT_ENDPOINT else root
        self._sheets_limiter = sheets_limiter
        self._drive_limiter = drive_limiter
        self._policy = policy
        self._sleep = sleep
        self._clock = clock

    def _redirect(self, url: str) -> str:
        if self._root is None:
            return url
        if url.startswith(_GOOGLE_SHEETS_PREFIX):
            return f"{self._root}/{url[len(_GOOGLE_SHEETS_PREFIX) :]}"
        if url.startswith(_GOOGLE_DRIVE_PREFIX):
            return f"{self._root}/drive/{url[len(_GOOGLE_DRIVE_PREFIX) :]}"
        return url

    def send(self, request: requests.PreparedRequest, **kwargs: Any) -> requests.Response:
        request.url = self._redirect(request.url or "")
        is_drive = "/drive/" in request.path_url
        api = "Drive" if is_drive else "Sheets"
        limiter = self._drive_limiter if is_drive else self._sheets_limiter
        path = request.path_url.split("?", 1)[0]
        started = self._clock()
        retry = 0
        while True:
            limiter.acquire(self._sleep)
            retry_after = None
            try:
                response = super().send(request, **kwargs)
            except (requests.ConnectionError, requests.Timeout) as exc:
                failure = f"a network error ({type(exc).__name__})"
            else:
                if not _is_transient(response):
                    return response
                failure = f"HTTP {response.status_code}"
                retry_after = _retry_after(response)
                response.close()
            elapsed = self._clock() - started
            delay = self._policy.delay(retry, retry_after)
            if (
                retry >= self._policy.max_retries
                or elapsed + delay > self._policy.max_total_seconds
            ):
                log.warning("Google %s API %s for %s: giving up", api, failure, path)
                raise RetriesExhausted(api, failure, retry + 1, elapsed)
            retry += 1
            log.warning(
                "Google %s API %s for %s; retry %d of %d in %.1f s",
                api,
                failure,
                path,
                retry,
                self._policy.max_retries,
                delay,
            )
            self._sleep(delay)


# --------------------------------------------------------------------------------------------
# The client


class _LocalApiCredentials(service_account.Credentials):
    """Service-account credentials used with a non-Google API root (an emulator, the fake).

    google-auth looks up the account's "regional access boundary" at
    iamcredentials.googleapis.com after each token refresh, sending the token along; with a
    local API root that would send a local token to Google, and reach the network from tests.
    """

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


class GSheetsClient:
    """Everything needed to call Google for ``gsheet`` sources; safe to share across threads.

    Made by ``open_client``. Each thread gets its own HTTP session (requests sessions are not
    thread-safe); credentials (so the access token) and rate limiters are shared.
    """

    def __init__(
        self,
        settings: GSheets,
        *,
        credentials: service_account.Credentials | None,
        service_account_email: str | None,
        problem: str | None,
        sheets_limiter: RateLimiter | None,
        drive_limiter: RateLimiter | None,
        policy: RetryPolicy,
        sleep: Sleep,
        clock: Clock,
    ):
        self.settings = settings
        #: the e-mail schools share their sheets with (None if the key could not be read).
        self.service_account = service_account_email
        #: why no call can be made (missing or invalid key), reported per source.
        self.problem = problem
        self._credentials = credentials
        self._sheets_limiter = sheets_limiter
        self._drive_limiter = drive_limiter
        self._policy = policy
        self._sleep = sleep
        self._clock = clock
        self._local = threading.local()
        self._sessions: list[_GoogleSession] = []
        self._sessions_lock = threading.Lock()

    def __repr__(self) -> str:
        return f"GSheetsClient(service_account={self.service_account!r})"

    def http(self, where: str) -> HTTPClient:
        """This thread's gspread HTTP client; ``SourceError`` (prefixed ``where``) if no key."""
        if self.problem is not None:
            raise SourceError(f"{where}: {self.problem}")
        http: HTTPClient | None = getattr(self._local, "http", None)
        if http is None:
            assert self._credentials is not None  # noqa: S101 - set whenever problem is None
            assert self._sheets_limiter is not None and self._drive_limiter is not None  # noqa: S101
            session = _GoogleSession(
                self._credentials,
                endpoint=self.settings.endpoint,
                sheets_limiter=self._sheets_limiter,
                drive_limiter=self._drive_limiter,
                policy=self._policy,
                sleep=self._sleep,
                clock=self._clock,
            )
            http = gspread.Client(auth=self._credentials, session=session).http_client
            http.set_timeout(HTTP_TIMEOUT)
            self._local.http = http
            with self._sessions_lock:
                self._sessions.append(session)
        return http

    def close(self) -> None:
        """Close the HTTP sessions of every thread."""
        with self._sessions_lock:
            for session in self._sessions:
                session.close()
            self._sessions.clear()
        self._local = threading.local()


class _KeyProblem(Exception):
    """The service-account key cannot be used; the message says why (never quoting the key)."""


def _load_key(path: Path | None, local_api: bool) -> tuple[service_account.Credentials, str]:
    """(credentials, client_email) from the key file; raises ``_KeyProblem``."""
    if path is None:
        raise _KeyProblem(
            "no Google service-account key is configured "
            "(gsheets.credentials in khaosat.yaml or KHAOSAT_GSHEETS__CREDENTIALS)"
        )
    try:
        info = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise _KeyProblem(f"the Google service-account key file {path} does not exist") from None
    except OSError as exc:
        raise _KeyProblem(
            f"cannot read the Google service-account key file {path}: {exc.strerror}"
        ) from None
    except ValueError:
        raise _KeyProblem(f"the Google service-account key file {path} is not JSON") from None
    if not isinstance(info, dict) or info.get("type") != "service_account":
        kind = info.get("type") if isinstance(info, dict) else None
        raise _KeyProblem(
            f"{path} is not a Google service-account key (type {kind!r}); "
            "download a JSON key of a service account"
        )
    cls = _LocalApiCredentials if local_api else service_account.Credentials
    try:
        credentials = cls.from_service_account_info(info, scopes=list(SCOPES))
    except (ValueError, KeyError, TypeError, google_exceptions.GoogleAuthError):
        # Never echo the exception: its text may quote the key material.
        raise _KeyProblem(
            f"the Google service-account key file {path} is incomplete or its private key "
            "cannot be read; download a new JSON key"
        ) from None
    return credentials, str(info["client_email"])


def open_client(
    settings: GSheets,
    *,
    sleep: Sleep = time.sleep,
    clock: Clock = time.monotonic,
    limiter: RateLimiter | None = None,
    retry: RetryPolicy | None = None,
) -> GSheetsClient:
    """A client for ``gsheet`` sources from the ``gsheets`` settings section.

    Never raises for a missing or unusable key file: the client then carries the problem and
    every ``sheet_revision``/``fetch_gsheet`` raises a one-line ``SourceError`` naming the
    school, so each Google source fails alone in the run's table instead of the whole run.
    ``sleep`` and ``clock`` serve the backoff and the rate limiter (tests pass fakes);
    ``limiter`` replaces the process-wide Sheets limiter; ``retry`` the settings' policy.
    """
    root = settings.endpoint.rstrip("/")
    credentials: service_account.Credentials | None = None
    email = problem = None
    sheets_limiter = drive_limiter = None
    try:
        credentials, email = _load_key(settings.credentials, local_api=root != DEFAULT_ENDPOINT)
    except _KeyProblem as exc:
        problem = str(exc)
    else:
        sheets_limiter = limiter or _shared_limiter(
            ("sheets", root, email, settings.requests_per_minute, clock),
            settings.requests_per_minute,
            clock,
        )
        drive_rpm = settings.drive_requests_per_minute
        drive_limiter = _shared_limiter(("drive", root, email, drive_rpm, clock), drive_rpm, clock)
    return GSheetsClient(
        settings,
        credentials=credentials,
        service_account_email=email,
        problem=problem,
        sheets_limiter=sheets_limiter,
        drive_limiter=drive_limiter,
        policy=retry or RetryPolicy.from_settings(settings),
        sleep=sleep,
        clock=clock,
    )


# --------------------------------------------------------------------------------------------
# Errors


def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _error_parts(exc: APIError) -> tuple[int, str, str, set[str]]:
    """(status, Google's status word, message, reasons) of an API error answer."""
    error = exc.error if isinstance(exc.error, Mapping) else {}
    status = exc.response.status_code
    reasons = {str(e.get("reason")) for e in error.get("errors", []) if isinstance(e, Mapping)}
    for detail in error.get("details", []) or []:
        if isinstance(detail, Mapping) and detail.get("reason"):
            reasons.add(str(detail["reason"]))
    return status, str(error.get("status", "")), str(error.get("message", "")), reasons


def _describe(client: GSheetsClient, api: str, exc: APIError) -> str:
    status, word, message, reasons = _error_parts(exc)
    share = client.service_account or "the service account"
    if status == 403 and (reasons & {"SERVICE_DISABLED", "accessNotConfigured"}):
        return (
            f"the Google {api} API is not enabled in the service account's Google Cloud "
            "project; enable it in the Cloud console"
        )
    if status == 403:
        return f"permission denied: the sheet is not shared with {share} (Viewer is enough)"
    if status == 404:
        return "spreadsheet not found: check the key in sources.csv"
    if status == 401:
        return f"Google {api} API refused the service account's access token (HTTP 401)"
    detail = _one_line(message or word or "no details")
    return f"Google {api} API answered HTTP {status}: {detail}"


def _refresh_problem(exc: google_exceptions.RefreshError) -> str:
    # RefreshError args: (message, response data); take only the OAuth error code.
    code = ""
    for arg in exc.args[1:]:
        if isinstance(arg, Mapping) and arg.get("error"):
            code = str(arg["error"])
    reason = f" ({_one_line(code, 60)})" if code else ""
    return (
        f"Google's token endpoint refused the service-account key{reason}; "
        "the key may have been deleted or disabled: download a new one"
    )


class _NotFound(SourceError):
    """HTTP 404: for Drive this may also mean "not shared", see ``_drive_file``."""


def _call(client: GSheetsClient, where: str, api: str, fn: Callable[[], T]) -> T:
    """Run one API call; any failure becomes a one-line ``SourceError`` prefixed ``where``."""
    # The SourceError is raised after the except block, so it carries no __context__: gspread's
    # APIError holds the response, whose request holds the Authorization header.
    failure: SourceError
    try:
        return fn()
    except APIError as exc:
        error_class = _NotFound if exc.response.status_code == 404 else SourceError
        failure = error_class(f"{where}: {_describe(client, api, exc)}")
    except RetriesExhausted as exc:
        failure = SourceError(f"{where}: {exc}")
    except google_exceptions.RefreshError as exc:
        failure = SourceError(f"{where}: {_refresh_problem(exc)}")
    except google_exceptions.TransportError as exc:
        failure = SourceError(
            f"{where}: cannot reach Google's token endpoint ({type(exc).__name__})"
        )
    except requests.JSONDecodeError:
        failure = SourceError(f"{where}: Google {api} API answered with something not JSON")
    except requests.RequestException as exc:
        failure = SourceError(f"{where}: cannot reach the Google {api} API ({type(exc).__name__})")
    raise failure


# --------------------------------------------------------------------------------------------
# Locations and worksheets


def sheet_key(location: str) -> str:
    """The spreadsheet key of a ``gsheet`` location (``key``, ``key#worksheet`` or a URL)."""
    target = location.partition("#")[0].strip()
    m = _URL_KEY.search(target)
    return m.group(1) if m else target


def _where(source: Source) -> tuple[str, str]:
    """(key, message prefix) of a source; ``SourceError`` for a key that cannot be one."""
    key = sheet_key(source.location)
    where = f"{source.school_code}: Google Sheet {key}"
    # The key becomes part of the API URL path: anything but key characters would change it.
    if not _KEY.fullmatch(key):
        raise SourceError(
            f"{source.school_code}: {source.location!r} is not a Google spreadsheet key "
            "(the part of the sheet's address after /d/)"
        )
    return key, where


def _fold(text: str) -> str:
    return " ".join(unicodedata.normalize("NFC", text).casefold().split())


def _choose_worksheet(
    sheets: Sequence[Mapping[str, Any]], wanted: str | None, where: str
) -> Mapping[str, Any]:
    """The worksheet's properties: the one named in the location, else the first grid."""
    grids = sorted(
        (s.get("properties", {}) for s in sheets),
        key=lambda p: p.get("index", 0),
    )
    grids = [p for p in grids if p.get("sheetType", "GRID") == "GRID" and "title" in p]
    if not grids:
        raise SourceError(f"{where}: the spreadsheet has no worksheet with cells")
    if wanted is None or not wanted.strip():
        return grids[0]
    gid = _GID.fullmatch(wanted.strip())
    if gid:
        found = [p for p in grids if str(p.get("sheetId")) == gid.group(1)]
    else:
        found = [p for p in grids if p["title"] == wanted]
        if not found:
            # NFC and case: titles typed into sources.csv by hand, on another keyboard.
            found = [p for p in grids if _fold(p["title"]) == _fold(wanted)]
    if len(found) == 1:
        return found[0]
    titles = ", ".join(repr(p["title"]) for p in grids)
    raise SourceError(
        f"{where}: worksheet {wanted!r} not found (renamed?); the spreadsheet has {titles}"
    )


def _a1(title: str) -> str:
    """A whole-worksheet A1 range: the title quoted, quotes doubled."""
    return "'" + title.replace("'", "''") + "'"


# --------------------------------------------------------------------------------------------
# Drive revision


def _drive_file(client: GSheetsClient, http: HTTPClient, key: str, where: str) -> dict[str, Any]:
    url = f"{DRIVE_FILES_API_V3_URL}/{key}"
    params: dict[str, Any] = {"fields": _DRIVE_FIELDS, "supportsAllDrives": "true"}
    try:
        return dict(_call(client, where, "Drive", lambda: http.request("get", url, params).json()))
    except _NotFound:
        pass
    # Drive says 404 both for "no such file" and for "not shared with you"; Sheets tells them
    # apart (403 vs 404), so ask it once to give the school the right instruction.
    _call(
        client, where, "Sheets", lambda: http.fetch_sheet_metadata(key, {"fields": "spreadsheetId"})
    )
    # Sheets opened it: Drive's 404 was a glitch (or a race with a move); the next run retries.
    raise SourceError(
        f"{where}: Google Drive did not find the spreadsheet that Sheets can open; "
        "its revision is unknown this time"
    )


def _parse_rfc3339(text: str | None) -> dt.datetime | None:
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return None


def _naive_local(moment: dt.datetime | None, timezone: str) -> dt.datetime | None:
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


def sheet_revision(
    client: GSheetsClient, source: Source, *, timezone: str | None = None
) -> tuple[dt.datetime | None, str | None]:
    """(modified_at, version) of the source's spreadsheet from one Drive ``files.get`` call.

    Cheap (no Sheets quota): the flow compares ``version`` with the revision of the source's
    last successful load and skips fetching values when they are equal. Drive's version grows
    with every change to the file, so an equal version means unchanged. ``modified_at`` is
    aware UTC, or naive local time of ``timezone`` when given. Raises ``SourceError``.
    """
    key, where = _where(source)
    http = client.http(where)
    meta = _drive_file(client, http, key, where)
    modified = _parse_rfc3339(meta.get("modifiedTime"))
    version = str(meta["version"]) if meta.get("version") is not None else None
    if timezone is not None:
        modified = _naive_local(modified, timezone)
    return modified, version


# --------------------------------------------------------------------------------------------
# Values


def _is_blank(value: Any) -> bool:
    return value is None or value == ""


def _grids(
    values: list[list[Any]], shown: list[list[Any]]
) -> tuple[list[list[Any]], list[list[Any]]]:
    """Both grids cut to the unformatted one's used area and padded to one width.

    The API leaves out trailing blank rows and cells, so rows come back ragged; a formula that
    yields "" is blank too. The formatted grid follows the unformatted one's shape: it was
    fetched a moment later and a new response may have arrived in between.
    """
    height = 0
    width = 0
    for i, row in enumerate(values):
        used = [j for j, v in enumerate(row) if not _is_blank(v)]
        if used:
            height = i + 1
            width = max(width, used[-1] + 1)

    def shape(grid: list[list[Any]]) -> list[list[Any]]:
        out = []
        for i in range(height):
            row = grid[i] if i < len(grid) else []
            cells = [None if _is_blank(v) else v for v in row[:width]]
            out.append(cells + [None] * (width - len(cells)))
        return out

    return shape(values), shape(shown)


def _values(http: HTTPClient, key: str, title: str, render: str) -> list[list[Any]]:
    params: dict[str, Any] = {"valueRenderOption": render, "majorDimension": "ROWS"}
    if render == "UNFORMATTED_VALUE":
        params["dateTimeRenderOption"] = "SERIAL_NUMBER"
    data = http.values_batch_get(key, [_a1(title)], params=params)
    ranges = data.get("valueRanges") or [{}]
    rows = ranges[0].get("values") or []
    return [list(r) for r in rows]


def _canonical(doc: Mapping[str, Any]) -> bytes:
    """One byte string per content: sorted keys, no spaces, UTF-8, so equal sheets hash equal."""
    return json.dumps(
        doc, ensure_ascii=False, sort_keys=True, separators=(",", ":"), allow_nan=False
    ).encode("utf-8")


def fetch_gsheet(
    client: GSheetsClient,
    source: Source,
    archive_dir: Path,
    timezone: str,
    *,
    limits: Limits | None = None,
) -> Fetched:
    """Fetch one worksheet's values, archive them as JSON, and return them with metadata.

    ``content`` is canonical JSON (format, spreadsheet id and title, worksheet title and id,
    locale, time zone, ``values`` unformatted and ``formatted``, row-major, equal width), so
    the fingerprint changes exactly when the data does. ``filename`` is "<spreadsheet> /
    <worksheet>"; ``modified_at`` is Drive's modifiedTime in naive local time of ``timezone``;
    ``revision`` is Drive's version, read before the values so it is never newer than them.
    Raises a one-line ``SourceError`` naming the school for a missing key, a sheet not shared
    with the service account (naming its e-mail), a missing sheet or worksheet (listing the
    worksheets), quota trouble past the retry bounds, or a sheet over ``limits``.
    """
    limits = limits or Limits()
    key, where = _where(source)
    http = client.http(where)
    meta = _call(
        client,
        where,
        "Sheets",
        lambda: http.fetch_sheet_metadata(key, {"fields": _SPREADSHEET_FIELDS}),
    )
    props = meta.get("properties", {})
    title = str(props.get("title") or key)
    sheet = _choose_worksheet(meta.get("sheets", []), source.worksheet, where)
    worksheet = str(sheet["title"])
    drive = _drive_file(client, http, key, where)
    values = _call(
        client, where, "Sheets", lambda: _values(http, key, worksheet, "UNFORMATTED_VALUE")
    )
    shown = _call(client, where, "Sheets", lambda: _values(http, key, worksheet, "FORMATTED_VALUE"))
    values, shown = _grids(values, shown)
    n_rows, n_cells = len(values), len(values) * (len(values[0]) if values else 0)
    if n_rows > limits.max_rows or n_cells > limits.max_cells:
        raise SourceError(
            f"{where}: worksheet {worksheet!r} has {n_rows:,} rows and {n_cells:,} cells, over "
            f"the limits of {limits.max_rows:,} rows (limits.max_rows) and {limits.max_cells:,} "
            "cells (limits.max_cells)"
        )
    content = _canonical(
        {
            "format": CONTENT_FORMAT,
            "spreadsheet_id": key,
            "spreadsheet": title,
            "worksheet": worksheet,
            "sheet_id": sheet.get("sheetId"),
            "locale": props.get("locale"),
            "time_zone": props.get("timeZone"),
            "values": values,
            "formatted": shown,
        }
    )
    filename = f"{title} / {worksheet}"
    modified_at = _naive_local(_parse_rfc3339(drive.get("modifiedTime")), timezone)
    revision = str(drive["version"]) if drive.get("version") is not None else None
    stored = archive(
        content,
        archive_dir,
        ARCHIVE_SUFFIX,
        {
            "source": source.key,
            "file": filename,
            "modified_at": modified_at.isoformat(timespec="seconds") if modified_at else "",
            "revision": revision or "",
        },
    )
    return Fetched(
        source=source,
        content=content,
        fingerprint=stored.name.split(".")[0],
        archive_path=stored,
        filename=filename,
        modified_at=modified_at,
        revision=revision,
    )


# --------------------------------------------------------------------------------------------
# Content → Table (pure)


def _from_serial(serial: float) -> dt.datetime:
    # Rounded to the millisecond: serials carry float noise (…:59.9999 for …:00).
    return _SHEETS_EPOCH + dt.timedelta(milliseconds=round(serial * 86_400_000))


def _shift(
    moment: dt.datetime, source_tz: ZoneInfo | None, target_tz: ZoneInfo | None
) -> dt.datetime:
    if source_tz is None or target_tz is None or source_tz.key == target_tz.key:
        return moment
    return moment.replace(tzinfo=source_tz).astimezone(target_tz).replace(tzinfo=None)


def _cell(value: Any, shown: Any, source_tz: ZoneInfo | None, target_tz: ZoneInfo | None) -> Cell:
    """One cell from its unformatted value and its formatted text."""
    if _is_blank(value):
        return None
    if isinstance(value, bool | str):
        return value
    if isinstance(value, int | float):
        text = shown if isinstance(shown, str) else ""
        is_date, is_time = bool(_DATE_TEXT.search(text)), bool(_TIME_TEXT.search(text))
        if is_date and 1 <= value <= _MAX_SERIAL:
            moment = _from_serial(float(value))
            # A date and time (a Forms timestamp) is an instant written in the spreadsheet's
            # time zone; a bare date is a calendar day and is not shifted.
            return _shift(moment, source_tz, target_tz) if is_time else moment.date()
        if is_time and 0 <= value < 1:
            return _from_serial(float(value)).time()
        if is_time and value >= 1:
            return dt.timedelta(milliseconds=round(value * 86_400_000))  # a duration: 25:30:00
        return value
    return str(value)  # the API sends only the types above; anything else is kept as text


def _zone(name: Any) -> ZoneInfo | None:
    if not isinstance(name, str) or not name:
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        return None


def tables_from_content(content: bytes, *, timezone: str | None = None) -> list[Table]:
    """The worksheet archived by ``fetch_gsheet`` as one ``Table`` (name: worksheet title).

    Cells: None for blank, int/float for numbers, str for text, bool, and for numbers the sheet
    shows as dates: ``datetime`` (date and time), ``date``, ``time`` or ``timedelta``. Headers
    are kept exactly as the sheet has them (grid ``Title [Row]``, blank, duplicated): matching
    them is parse's job. With ``timezone`` (the campaign's), date-and-time cells are converted
    from the spreadsheet's time zone, in which Forms writes its timestamps, when it differs.
    Raises ``SourceError`` if the content is not such JSON.
    """
    try:
        doc = json.loads(content.decode("utf-8"))
        if doc.get("format") != CONTENT_FORMAT:
            raise ValueError(doc.get("format"))
        name = str(doc["worksheet"])
        values = doc["values"]
        shown = doc.get("formatted") or []
        if not isinstance(values, list) or not all(isinstance(r, list) for r in values):
            raise ValueError("values")
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError):
        raise SourceError(
            "archived Google Sheet content is not khaosat's JSON layout "
            f"({CONTENT_FORMAT}); fetch the sheet again"
        ) from None
    source_tz = _zone(doc.get("time_zone"))
    target_tz = _zone(timezone) if timezone else None
    rows: list[list[Cell]] = []
    for i, row in enumerate(values):
        shown_row = shown[i] if i < len(shown) and isinstance(shown[i], list) else []
        rows.append(
            [
                _cell(v, shown_row[j] if j < len(shown_row) else None, source_tz, target_tz)
                for j, v in enumerate(row)
            ]
        )
    return [Table(name=name, rows=rows)]
