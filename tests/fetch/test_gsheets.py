"""Google Sheets sources: the real gspread and google-auth against the fake Google on 127.0.0.1.

No network: the fake serves the token endpoint, Sheets v4 and Drive v3, and the ``no_network``
fixture fails any DNS lookup of another host (google-auth would otherwise call iamcredentials).
The service-account key is a throwaway RSA key made here. Backoff and rate limiting run on a fake
clock whose ``sleep`` only advances it, so these tests take no real waiting time.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import json
import logging
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flows.fetch.google import RateLimiter, RetryPolicy, open_client
from flows.fetch.gsheets import fetch_gsheet, sheet_key, sheet_revision
from flows.read.gsheet import tables_from_content
from flows.settings import GSheets, Limits
from schemas.records import Source, SourceError
from tests.factories import SERVICE_ACCOUNT, FakeClock, write_key
from tests.fake_google import FakeGoogle, Shown

#: no host but the fake's is looked up (conftest.no_network).
pytestmark = pytest.mark.usefixtures("no_network")

TZ = "Asia/Ho_Chi_Minh"
KEY = "1FormsResponsesKey_abc-123"
SCHOOL = "TH_HOA_BINH"
RESPONSES = "Câu trả lời biểu mẫu 1"
GRID = "Mức độ hài lòng của cha mẹ học sinh"

#: A Google Forms response sheet as a Vietnamese account gets it: timestamp, e-mail, a grid
#: question (one column per row), a blank header over data, a duplicated header, a percent;
#: an interior blank row, ragged rows, trailing blank rows and columns.
FORMS_ROWS: list[list[Any]] = [
    [
        "Dấu thời gian",
        "Địa chỉ email",
        "Lớp",
        f"{GRID} [Cơ sở vật chất]",
        f"{GRID} [Đội ngũ giáo viên]",
        None,
        "Ý kiến khác",
        "Ý kiến khác",
        "Mong đợi (%)",
        None,
    ],
    [
        dt.datetime(2024, 10, 29, 9, 5, 31),
        "ph1@example.vn",
        "5A",
        "Hài lòng",
        5,
        "ghi chú",
        "Tốt",
        "",
        Shown(0.8, "80%"),
        None,
    ],
    [dt.datetime(2024, 10, 3, 14, 0, 0), "", "5B", "Rất hài lòng", 4, None, None, "ok", 70],
    [],
    [dt.datetime(2024, 11, 1, 7, 30, 0), None, "5A", "Bình thường", 3.5],
    [None, None, ""],
    [None],
]


# ---- fixtures ---------------------------------------------------------------------------------


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.add_spreadsheet(
            KEY,
            "Khảo sát CMHS 2024 - TH Hòa Bình",
            {RESPONSES: FORMS_ROWS, "Trang tính 2": [["Ghi chú"], ["x"]]},
            version=7,
            modified_time="2024-10-29T02:05:31.250Z",
        )
        yield fake


@pytest.fixture
def key_file(tmp_path: Path, google: FakeGoogle, private_key_pem: str) -> Path:
    return write_key(tmp_path / "service-account.json", google.token_uri, private_key_pem)


@pytest.fixture
def settings(google: FakeGoogle, key_file: Path) -> GSheets:
    return GSheets(credentials=key_file, endpoint=google.url, requests_per_minute=10_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(settings: GSheets, clock: FakeClock) -> Iterator[Any]:
    c = open_client(settings, sleep=clock.sleep, clock=clock)
    yield c
    c.close()


def source(location: str = KEY, school: str = SCHOOL) -> Source:
    _, _, worksheet = location.partition("#")
    return Source(school, "CMHS_TH", "gsheet", location, worksheet=worksheet or None)


def fetch(client: Any, tmp_path: Path, location: str = KEY, **kw: Any) -> Any:
    return fetch_gsheet(client, source(location), tmp_path / "archive", TZ, **kw)


def one_line_error(excinfo: pytest.ExceptionInfo[SourceError]) -> str:
    message = str(excinfo.value)
    assert "\n" not in message
    assert message.startswith(f"{SCHOOL}: ")
    # Built after the except block: nothing holding the HTTP request is chained to it.
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    return message


# ---- fetching a Forms sheet -------------------------------------------------------------------


def test_fetch_forms_sheet(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    got = fetch(client, tmp_path)

    assert got.filename == f"Khảo sát CMHS 2024 - TH Hòa Bình / {RESPONSES}"
    assert got.revision == "7"
    assert got.modified_at == dt.datetime(2024, 10, 29, 9, 5, 31, 250000)  # UTC+7, naive
    assert got.fingerprint == hashlib.sha256(got.content).hexdigest()
    assert got.archive_path.read_bytes() == got.content
    assert got.archive_path.name == f"{got.fingerprint}.gsheet.json"
    sightings = json.loads((got.archive_path.parent / f"{got.fingerprint}.json").read_text())
    assert sightings[0]["source"] == source().key and sightings[0]["revision"] == "7"

    [table] = tables_from_content(got.content)
    assert table.name == RESPONSES
    assert len(table.rows) == 5 and {len(r) for r in table.rows} == {9}  # trailing blanks cut
    header, first, second, blank, third = table.rows
    assert header == [
        "Dấu thời gian",
        "Địa chỉ email",
        "Lớp",
        f"{GRID} [Cơ sở vật chất]",
        f"{GRID} [Đội ngũ giáo viên]",
        None,  # blank header kept in place: its column still has data
        "Ý kiến khác",
        "Ý kiến khác",  # duplicates kept: parse decides
        "Mong đợi (%)",
    ]
    assert first == [
        dt.datetime(2024, 10, 29, 9, 5, 31),
        "ph1@example.vn",
        "5A",
        "Hài lòng",
        5,
        "ghi chú",
        "Tốt",
        None,
        0.8,
    ]
    # Day 3, month 10: a day-first text would be ambiguous; the serial is not.
    assert second[0] == dt.datetime(2024, 10, 3, 14, 0, 0)
    assert second[1] is None and second[4] == 4 and type(second[4]) is int
    assert blank == [None] * 9
    assert third[:5] == [dt.datetime(2024, 11, 1, 7, 30), None, "5A", "Bình thường", 3.5]
    assert third[5:] == [None] * 4

    # One metadata, one Drive, two values calls; one token; read-only scopes asked for.
    assert [c.api for c in google.calls()] == ["token", "sheets", "drive", "sheets", "sheets"]
    batch = google.calls("sheets")[1]
    assert batch.query["ranges"] == [f"'{RESPONSES}'"]
    assert batch.query["valueRenderOption"] == ["UNFORMATTED_VALUE"]
    assert batch.query["dateTimeRenderOption"] == ["SERIAL_NUMBER"]
    assert google.calls("sheets")[2].query["valueRenderOption"] == ["FORMATTED_VALUE"]
    assert google.assertions[0]["iss"] == SERVICE_ACCOUNT
    assert set(google.assertions[0]["scope"].split()) == {
        "https://www.googleapis.com/auth/spreadsheets.readonly",
        "https://www.googleapis.com/auth/drive.readonly",
    }


def test_english_account_month_first(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    """An English account shows 10/5/2024 (month first): the serial still gives 5 October."""
    rows: list[list[Any]] = [["Timestamp", "Class"], [dt.datetime(2024, 10, 5, 8, 0, 0), "5A"]]
    google.add_spreadsheet("enKey", "Survey", {"Form Responses 1": rows}, locale="en_US")
    [table] = tables_from_content(fetch(client, tmp_path, "enKey").content)
    assert json.loads(fetch(client, tmp_path, "enKey").content)["formatted"][1][0] == (
        "10/5/2024 8:00:00"
    )
    assert table.rows[1] == [dt.datetime(2024, 10, 5, 8, 0, 0), "5A"]


def test_sheet_time_zone_converted_to_campaign_time(
    client: Any, google: FakeGoogle, tmp_path: Path
) -> None:
    rows: list[list[Any]] = [
        ["Dấu thời gian", "Ngày sinh"],
        [dt.datetime(2024, 10, 28, 19, 0), dt.date(2015, 3, 2)],
    ]
    google.add_spreadsheet("laKey", "Survey", {"Sheet1": rows}, time_zone="America/Los_Angeles")
    content = fetch(client, tmp_path, "laKey").content
    assert tables_from_content(content)[0].rows[1] == [
        dt.datetime(2024, 10, 28, 19, 0),
        dt.date(2015, 3, 2),
    ]
    # 19:00 PDT is 09:00 next day in Vietnam; a bare date is a calendar day, not shifted.
    assert tables_from_content(content, timezone=TZ)[0].rows[1] == [
        dt.datetime(2024, 10, 29, 9, 0),
        dt.date(2015, 3, 2),
    ]


def test_content_is_canonical(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    first = fetch(client, tmp_path)
    google.touch(KEY)  # edited, but the values are the same
    again = fetch(client, tmp_path)
    assert again.fingerprint == first.fingerprint and again.revision == "8"
    google.spreadsheets[KEY].worksheets[0].rows.append([dt.datetime(2024, 11, 2), "x", "5C"])
    assert fetch(client, tmp_path).fingerprint != first.fingerprint


@pytest.mark.parametrize(
    ("location", "title"),
    [
        (f"{KEY}#Trang tính 2", "Trang tính 2"),
        (f"{KEY}#  trang TÍNH 2 ", "Trang tính 2"),  # case and spaces, as typed by hand
        (f"{KEY}#gid=1111", "Trang tính 2"),
        (f"https://docs.google.com/spreadsheets/d/{KEY}/edit#gid=0", RESPONSES),
        (KEY, RESPONSES),
    ],
)
def test_choosing_the_worksheet(client: Any, tmp_path: Path, location: str, title: str) -> None:
    assert sheet_key(location) == KEY
    [table] = tables_from_content(fetch(client, tmp_path, location).content)
    assert table.name == title


def test_renamed_worksheet_lists_titles(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path, f"{KEY}#Form Responses 1")
    message = one_line_error(excinfo)
    assert "'Form Responses 1' not found" in message
    assert f"'{RESPONSES}', 'Trang tính 2'" in message
    assert len(google.calls("sheets")) == 1  # decided from the metadata alone


def test_not_a_key(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path, "../../v4/other?x=1")
    assert "is not a Google spreadsheet key" in one_line_error(excinfo)
    assert google.calls() == []


def test_over_the_limits(client: Any, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path, limits=Limits(max_rows=3))
    assert "limits.max_rows" in one_line_error(excinfo)
    assert not (tmp_path / "archive").exists()  # refused before archiving


SHEETS_URL = "https://sheets.googleapis.com/v4/spreadsheets/K/values:batchGet?ranges=A"
DRIVE_URL = "https://www.googleapis.com/drive/v3/files/K?fields=version"


@pytest.mark.parametrize(
    ("endpoint", "url", "expected"),
    [
        ("https://sheets.googleapis.com", SHEETS_URL, SHEETS_URL),
        ("https://sheets.googleapis.com/", DRIVE_URL, DRIVE_URL),
        (
            "http://emulator:9000/",
            SHEETS_URL,
            "http://emulator:9000/v4/spreadsheets/K/values:batchGet?ranges=A",
        ),
        ("http://emulator:9000", DRIVE_URL, "http://emulator:9000/drive/v3/files/K?fields=version"),
        ("http://emulator:9000", "https://example.org/x", "https://example.org/x"),
    ],
)
def test_api_root(key_file: Path, endpoint: str, url: str, expected: str) -> None:
    """gspread's fixed Google URLs go to ``gsheets.endpoint`` when it is not Google's."""
    client = open_client(GSheets(credentials=key_file, endpoint=endpoint))
    session: Any = client.http("x").session
    assert session._redirect(url) == expected


# ---- change detection ---------------------------------------------------------------------------


def test_sheet_revision_is_one_drive_call(client: Any, google: FakeGoogle) -> None:
    modified, version = sheet_revision(client, source())
    assert (modified, version) == (dt.datetime(2024, 10, 29, 2, 5, 31, 250000, dt.UTC), "7")
    local, _ = sheet_revision(client, source(), timezone=TZ)
    assert local == dt.datetime(2024, 10, 29, 9, 5, 31, 250000)
    google.touch(KEY, "2024-10-30T01:00:00.000Z")
    assert sheet_revision(client, source()) == (dt.datetime(2024, 10, 30, 1, 0, tzinfo=dt.UTC), "8")
    assert {c.api for c in google.calls()} == {"token", "drive"}  # no Sheets quota spent


# ---- permission, not found, key problems ---------------------------------------------------


def test_not_shared_names_the_service_account_and_is_not_retried(
    client: Any, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    google.deny(KEY)
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path)
    message = one_line_error(excinfo)
    assert SERVICE_ACCOUNT in message and "not shared" in message
    assert [c.status for c in google.calls("sheets")] == [403]  # exactly one request
    assert clock.sleeps == []


def test_not_shared_seen_from_drive(client: Any, google: FakeGoogle, clock: FakeClock) -> None:
    """Drive says 404 for a file not shared; one Sheets call tells the school what to do."""
    google.deny(KEY)
    with pytest.raises(SourceError) as excinfo:
        sheet_revision(client, source())
    assert SERVICE_ACCOUNT in one_line_error(excinfo)
    assert [(c.api, c.status) for c in google.calls() if c.api != "token"] == [
        ("drive", 404),
        ("sheets", 403),
    ]
    assert clock.sleeps == []


def test_not_found(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path, "1NoSuchSpreadsheet")
    assert "1NoSuchSpreadsheet: spreadsheet not found" in one_line_error(excinfo)
    assert [c.status for c in google.calls("sheets")] == [404]
    with pytest.raises(SourceError, match="spreadsheet not found"):
        sheet_revision(client, source("1NoSuchSpreadsheet"))


def test_drive_api_disabled(client: Any, google: FakeGoogle) -> None:
    google.fail(403, api="drive", reason="accessNotConfigured")
    with pytest.raises(SourceError) as excinfo:
        sheet_revision(client, source())
    assert "Drive API is not enabled" in one_line_error(excinfo)


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        (None, "does not exist"),
        ("{not json", "is not JSON"),
        ('{"type": "authorized_user", "refresh_token": "1//x"}', "not a Google service-account"),
        ("BROKEN_KEY", "private key cannot be read"),
    ],
)
def test_key_file_problems_fail_each_source(
    tmp_path: Path,
    google: FakeGoogle,
    private_key_pem: str,
    content: str | None,
    expected: str,
) -> None:
    path = tmp_path / "key.json"
    if content == "BROKEN_KEY":
        write_key(path, google.token_uri, private_key_pem[:400] + "\n-----END PRIVATE KEY-----\n")
    elif content is not None:
        path.write_text(content, encoding="utf-8")
    client = open_client(GSheets(credentials=path, endpoint=google.url))  # does not raise
    for call in (lambda: fetch(client, tmp_path), lambda: sheet_revision(client, source())):
        with pytest.raises(SourceError) as excinfo:
            call()
        message = one_line_error(excinfo)
        assert expected in message and str(path) in message
        assert "PRIVATE KEY" not in message and private_key_pem[40:80] not in message
    assert google.calls() == []


def test_no_key_configured(google: FakeGoogle) -> None:
    client = open_client(GSheets(endpoint=google.url))
    with pytest.raises(SourceError, match=f"^{SCHOOL}: .*KHAOSAT_GSHEETS__CREDENTIALS"):
        sheet_revision(client, source())


def test_token_endpoint_refuses_the_key(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    google.fail(400, api="token", reason="invalid_grant")
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path)
    message = one_line_error(excinfo)
    assert "token endpoint refused" in message and "(invalid_grant)" in message


# ---- tokens -----------------------------------------------------------------------------------


def test_token_refresh_after_expiry(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    first = fetch(client, tmp_path)
    assert google.token_requests == 1
    google.expire_tokens()  # the server no longer accepts the client's token
    again = fetch(client, tmp_path)
    assert again.fingerprint == first.fingerprint
    assert google.token_requests == 2
    assert 401 in [c.status for c in google.calls("sheets")]


def test_short_lived_tokens_are_refreshed(private_key_pem: str, tmp_path: Path) -> None:
    """Tokens that live less than google-auth's refresh margin are renewed before each call."""
    with FakeGoogle(token_lifetime=120) as google:
        google.add_spreadsheet(KEY, "S", {RESPONSES: FORMS_ROWS})
        key = write_key(tmp_path / "k.json", google.token_uri, private_key_pem)
        client = open_client(GSheets(credentials=key, endpoint=google.url))
        fetch(client, tmp_path)
        n_api = len([c for c in google.calls() if c.api != "token"])
        assert google.token_requests == n_api == 4
        assert all(c.status == 200 for c in google.calls())


# ---- quotas: retries -------------------------------------------------------------------------


def test_429_burst_is_ridden_out(
    client: Any, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    google.fail(429, times=3, api="sheets")
    got = fetch(client, tmp_path)
    assert got.revision == "7"
    assert [c.status for c in google.calls("sheets")] == [429, 429, 429, 200, 200, 200]
    # exponential with jitter: retry n waits between 2**n / 2 and 2**n seconds
    assert len(clock.sleeps) == 3
    for n, slept in enumerate(clock.sleeps):
        assert 2**n / 2 <= slept <= 2**n


def test_retry_after_is_honoured(
    client: Any, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    google.fail(429, times=1, api="sheets", retry_after=20)
    fetch(client, tmp_path)
    assert clock.sleeps == [20.0]


def test_server_errors_and_drive_rate_limits_are_retried(
    client: Any, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    google.fail(500, times=1, api="sheets")
    google.fail(503, times=1, api="sheets")
    google.fail(403, times=2, api="drive", reason="userRateLimitExceeded")
    fetch(client, tmp_path)
    assert [c.status for c in google.calls("sheets")][:3] == [500, 503, 200]
    assert [c.status for c in google.calls("drive")] == [403, 403, 200]
    assert len(clock.sleeps) == 4


def test_permanent_429_gives_up_after_the_bound(
    settings: GSheets, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    policy = RetryPolicy(max_retries=4)
    client = open_client(settings, sleep=clock.sleep, clock=clock, retry=policy)
    google.fail(429, times=None, api="sheets")
    with pytest.raises(SourceError) as excinfo:
        fetch(client, tmp_path)
    message = one_line_error(excinfo)
    assert "HTTP 429 after 5 attempts" in message
    assert len(google.calls("sheets")) == 5 and len(clock.sleeps) == 4


def test_retries_are_bounded_in_time(
    settings: GSheets, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    policy = RetryPolicy(max_retries=100, max_sleep_seconds=8, max_total_seconds=30)
    client = open_client(settings, sleep=clock.sleep, clock=clock, retry=policy)
    google.fail(503, times=None, api="sheets")
    with pytest.raises(SourceError, match="HTTP 503 after"):
        fetch(client, tmp_path)
    assert sum(clock.sleeps) <= 30
    assert len(clock.sleeps) < 10


# ---- quotas: the rate limiter ----------------------------------------------------------------


def _max_in_window(times: list[float], window: float = 60.0) -> int:
    times = sorted(times)
    return max((sum(1 for u in times if t <= u < t + window) for t in times), default=0)


def test_rate_limiter_sliding_window(clock: FakeClock) -> None:
    limiter = RateLimiter(3, clock=clock)
    granted = []
    for _ in range(7):
        limiter.acquire(clock.sleep)
        granted.append(clock())
    assert granted == [0, 0, 0, 60, 60, 60, 120]


def test_rate_limiter_across_threads(clock: FakeClock) -> None:
    limiter = RateLimiter(5, clock=clock)
    granted: list[float] = []
    lock = threading.Lock()

    def work() -> None:
        for _ in range(10):
            limiter.acquire(clock.sleep)
            with lock:
                granted.append(clock())

    threads = [threading.Thread(target=work) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(granted) == 40
    assert _max_in_window(granted) <= 5


def test_client_keeps_sheets_requests_under_the_limit(private_key_pem: str, tmp_path: Path) -> None:
    clock = FakeClock()
    with FakeGoogle(clock=clock) as google:
        google.add_spreadsheet(KEY, "S", {RESPONSES: FORMS_ROWS})
        key = write_key(tmp_path / "k.json", google.token_uri, private_key_pem)
        settings = GSheets(credentials=key, endpoint=google.url, requests_per_minute=2)
        client = open_client(settings, sleep=clock.sleep, clock=clock)
        fetch(client, tmp_path)
        fetch(client, tmp_path)
        sheets = [c.at for c in google.calls("sheets")]
        assert len(sheets) == 6
        assert _max_in_window(sheets) == 2
        assert sheets[-1] >= 120  # six requests at two a minute
        # Drive has its own, larger budget: its calls did not wait for Sheets' slots.
        assert len(google.calls("drive")) == 2


@pytest.mark.slow
def test_threads_share_one_client(client: Any, google: FakeGoogle, tmp_path: Path) -> None:
    for i in range(8):
        google.add_spreadsheet(f"key{i}", f"S{i}", {RESPONSES: FORMS_ROWS[: 2 + i % 3]})
    results: dict[int, str] = {}

    def work(i: int) -> None:
        results[i] = fetch(client, tmp_path, f"key{i}").filename

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert results == {i: f"S{i} / {RESPONSES}" for i in range(8)}


# ---- secrets --------------------------------------------------------------------------------


def test_no_secret_in_messages_or_logs(
    settings: GSheets,
    google: FakeGoogle,
    private_key_pem: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # google-auth's loggers do not propagate unless configured: make them, to see everything.
    monkeypatch.setattr(logging.getLogger("google"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="google")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    clock = FakeClock()
    client = open_client(settings, sleep=clock.sleep, clock=clock, retry=RetryPolicy(2))
    messages = []

    def attempt(location: str = KEY) -> None:
        try:
            fetch(client, tmp_path, location)
        except SourceError as exc:
            messages.append(str(exc))

    attempt()  # success, token issued
    google.fail(429, times=1)
    attempt()  # retried
    google.expire_tokens()
    attempt()  # 401, refreshed
    google.fail(500, times=None, api="sheets")
    attempt()  # gives up
    google.faults.clear()
    google.deny(KEY)
    attempt()  # 403
    attempt("1Missing")  # 404
    google.fail(400, api="token", reason="invalid_grant")
    google.expire_tokens()
    attempt()  # 401, and the token endpoint refuses the key
    assert len(messages) == 4 and google.token_requests == 3

    secrets = [*google.issued_tokens, "Bearer ", "PRIVATE KEY"]
    secrets += [line for line in private_key_pem.splitlines() if "-----" not in line][:5]
    texts = messages + [caplog.text]
    texts += [repr(vars(record)) for record in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert any("retry 1 of 2" in r.getMessage() for r in caplog.records)


# ---- tables_from_content ----------------------------------------------------------------------


def test_tables_from_content_rejects_other_bytes() -> None:
    for content in (b"\xff\xfe", b"[]", b'{"format": "other"}', b'{"format": "khaosat-gsheet/1"}'):
        with pytest.raises(SourceError, match="not khaosat's JSON layout"):
            tables_from_content(content)


@pytest.mark.parametrize(
    ("value", "shown", "expected"),
    [
        (45594.37883101852, "29/10/2024 9:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        (45594.37883101852, "2024-10-29 09:05:31", dt.datetime(2024, 10, 29, 9, 5, 31)),
        (45594, "29/10/2024", dt.date(2024, 10, 29)),
        (0.5, "12:00:00", dt.time(12, 0)),
        (1.0625, "25:30:00", dt.timedelta(hours=25, minutes=30)),
        (1234567, "1.234.567", 1234567),  # thousands dots are not a date
        (0.5, "1/2", 0.5),  # a fraction format is not a date
        (0.8, "80%", 0.8),
        (4.5, "4,5", 4.5),
        (True, "TRUE", True),
        ("Hài lòng", "Hài lòng", "Hài lòng"),
        ("", "", None),
        (None, None, None),
    ],
)
def test_cells(value: Any, shown: Any, expected: Any) -> None:
    doc = {
        "format": "khaosat-gsheet/1",
        "worksheet": "W",
        "values": [[value]],
        "formatted": [[shown]],
    }
    [table] = tables_from_content(json.dumps(doc).encode())
    assert table.rows == [[expected]]
    assert type(table.rows[0][0]) is type(expected)
