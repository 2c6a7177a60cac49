"""Google APIs for sources held on Google (Sheets, and Drive folders and files): the shared half.

One authorized session per thread; a process-wide ``RateLimiter`` per (API root, service
account) keeps requests under ``gsheets.requests_per_minute``. 429, 5xx, 408 and Drive's
rate-limit 403s are retried with capped exponential backoff and jitter (``RetryPolicy``); a 403
that means "not shared" never is. Secrets (token, private key, Authorization header) never
appear in a message, a log line or an exception raised from here: errors are built from status
codes and Google's error text only, outside the ``except`` block.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import random
import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from zoneinfo import ZoneInfo

import gspread
import requests
from google.auth import exceptions as google_exceptions
from google.auth.transport.requests import AuthorizedSession
from google.oauth2 import service_account
from gspread.exceptions import APIError
from gspread.http_client import HTTPClient

from flows.settings import GSheets
from schemas.records import SourceError

log = logging.getLogger(__name__)

#: Read-only scopes: khaosat never writes to a school's sheet or folder, and a leaked key then
#: cannot. Drive's read scope (not only its metadata one) because files in a Drive folder are
#: downloaded; it covers the metadata calls too.
SCOPES = (
    "https://www.googleapis.com/auth/spreadsheets.readonly",
    "https://www.googleapis.com/auth/drive.readonly",
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
#: Drive's 403 reasons that mean "slow down", the only 403s worth retrying.
_RATE_LIMIT_REASONS = frozenset({"rateLimitExceeded", "userRateLimitExceeded"})
#: 403 reasons that mean the API is off in the service account's project, not the file's access.
_API_DISABLED = frozenset({"SERVICE_DISABLED", "accessNotConfigured"})

Sleep = Callable[[float], None]
Clock = Callable[[], float]
T = TypeVar("T")


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


class _LocalApiCredentials(service_account.Credentials):
    """Service-account credentials used with a non-Google API root (an emulator, the fake).

    google-auth looks up the account's "regional access boundary" at
    iamcredentials.googleapis.com after each token refresh, sending the token along; with a
    local API root that would send a local token to Google, and reach the network from tests.
    """

    def _is_regional_access_boundary_lookup_required(self) -> bool:
        return False


class GSheetsClient:
    """Everything needed to call Google for ``gsheet`` and ``drive`` sources and Drive folders;
    safe to share across threads.

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
        """The account only: never the credentials."""
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
    """A client for the sources held on Google (``gsheet``, ``drive``) from the ``gsheets``
    settings section.

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


def parse_rfc3339(text: str | None) -> dt.datetime | None:
    """An RFC 3339 time as Google sends it (``2024-10-29T02:05:31.250Z``), aware UTC; None for
    none or a malformed one."""
    if not text:
        return None
    try:
        return dt.datetime.fromisoformat(text).astimezone(dt.UTC)
    except ValueError:
        return None


def naive_local(moment: dt.datetime | None, timezone: str) -> dt.datetime | None:
    """An aware time as naive local time of ``timezone`` (how the campaign's times are kept)."""
    if moment is None:
        return None
    return moment.astimezone(ZoneInfo(timezone)).replace(tzinfo=None)


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
    if status == 403 and (reasons & _API_DISABLED):
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


class Refused(SourceError):
    """Google refused the call for what was asked (HTTP 403 or 404), not for a quota or a
    disabled API; ``reasons`` are Google's error reasons (``fileNotDownloadable`` …)."""

    reasons: frozenset[str] = frozenset()


class NotFound(Refused):
    """HTTP 404: for Drive this may also mean "not shared", see ``_drive_file``."""


class Denied(Refused):
    """HTTP 403 that is not "slow down" nor a disabled API: not shared, or not allowed."""


def _failure(where: str, client: GSheetsClient, api: str, exc: APIError) -> SourceError:
    """The one-line error for an API error answer: ``Refused`` for what the caller may explain
    better (a 404, a 403 about the file), else a plain ``SourceError``."""
    status, _, _, reasons = _error_parts(exc)
    message = f"{where}: {_describe(client, api, exc)}"
    if status not in (403, 404) or reasons & _API_DISABLED:
        return SourceError(message)
    failure = NotFound(message) if status == 404 else Denied(message)
    failure.reasons = frozenset(reasons)
    return failure


def call(client: GSheetsClient, where: str, api: str, fn: Callable[[], T]) -> T:
    """Run one API call; any failure becomes a one-line ``SourceError`` prefixed ``where``."""
    # The SourceError is raised after the except block, so it carries no __context__: gspread's
    # APIError holds the response, whose request holds the Authorization header.
    failure: SourceError
    try:
        return fn()
    except APIError as exc:
        failure = _failure(where, client, api, exc)
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
