"""Google Drive folders and ``drive`` sources: the real gspread, google-auth and requests against
the fake Google on 127.0.0.1 (tests/fake_google.py), which pages files.list a few files at a time.

Files are written by real writers (openpyxl, csv) and uploaded to the fake as bytes; the fake's
request log proves what was downloaded. Backoff runs on a fake clock (no real waiting).
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import hashlib
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import openpyxl
import pytest

from flows.fetch import fetch
from flows.fetch.drive import DriveFile, drive_id, fetch_drive_file, kind_of, list_drive_folder
from flows.fetch.files import SourceAbsent
from flows.fetch.google import GSheetsClient, RetryPolicy, open_client
from flows.parse import read_fetched
from flows.read import read_tables
from flows.settings import GSheets, Limits
from schemas.records import Fetched, Found, Source, SourceError
from tests.factories import SERVICE_ACCOUNT, FakeClock, write_key
from tests.fake_google import FakeGoogle

pytestmark = pytest.mark.usefixtures("no_network")

TZ = "Asia/Ho_Chi_Minh"
ROOT = "1RootFolder_CMHS"
XLSX = "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"
ANSWERS = [
    ["Dấu thời gian", "Lớp", "Mức độ hài lòng nói chung"],
    [dt.datetime(2024, 10, 10, 8, 0), "5A", "Hài lòng"],
    [dt.datetime(2024, 10, 11, 9, 30), "5B", "Rất hài lòng"],
]


def xlsx_bytes(rows: list[list[Any]], title: str = "Phiếu") -> bytes:
    book = openpyxl.Workbook()
    sheet = book.active
    assert sheet is not None
    sheet.title = title
    for row in rows:
        sheet.append(row)
    out = io.BytesIO()
    book.save(out)
    return out.getvalue()


def csv_bytes(rows: list[list[Any]]) -> bytes:
    out = io.StringIO()
    csv.writer(out).writerows(rows)
    return out.getvalue().encode("utf-8")


def md5(content: bytes) -> str:
    return hashlib.md5(content, usedforsecurity=False).hexdigest()


@pytest.fixture
def google() -> Iterator[FakeGoogle]:
    with FakeGoogle() as fake:
        fake.add_folder(ROOT, "Khảo sát CMHS 2024")
        yield fake


@pytest.fixture
def settings(google: FakeGoogle, tmp_path: Path, private_key_pem: str) -> GSheets:
    key = write_key(tmp_path / "service-account.json", google.token_uri, private_key_pem)
    return GSheets(credentials=key, endpoint=google.url, requests_per_minute=10_000)


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def client(settings: GSheets, clock: FakeClock) -> Iterator[GSheetsClient]:
    c = open_client(settings, sleep=clock.sleep, clock=clock)
    yield c
    c.close()


def listing_pages(google: FakeGoogle) -> list[dict[str, list[str]]]:
    return [c.query for c in google.calls("drive") if c.path == "/drive/v3/files"]


# ---- locations ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("location", "folder", "expected"),
    [
        ("1AbC-d_E", True, "1AbC-d_E"),
        (" 1AbC-d_E#{school_code}_*.xlsx ", True, "1AbC-d_E"),
        ("https://drive.google.com/drive/folders/1AbC-d_E?usp=sharing", True, "1AbC-d_E"),
        ("https://drive.google.com/drive/u/0/folders/1AbC-d_E", True, "1AbC-d_E"),
        ("https://drive.google.com/open?id=1AbC-d_E", True, "1AbC-d_E"),
        ("https://drive.google.com/file/d/1AbC-d_E/view?usp=drive_link", False, "1AbC-d_E"),
        ("https://docs.google.com/spreadsheets/d/1AbC-d_E/edit", False, "1AbC-d_E"),
        ("../thư mục/x.xlsx", True, None),
        ("1AbC' in parents or '1", True, None),
        ("", False, None),
    ],
)
def test_drive_id(location: str, folder: bool, expected: str | None) -> None:
    assert drive_id(location, folder=folder) == expected


@pytest.mark.parametrize(
    ("name", "mime", "kind"),
    [
        ("TH0101.xlsx", XLSX, "excel"),
        ("TH0101.XLS", "application/vnd.ms-excel", "excel"),
        ("TH0101.ods", "application/vnd.oasis.opendocument.spreadsheet", "excel"),
        ("TH0101.csv", "text/csv", "csv"),
        ("TH0101.csv", "application/octet-stream", "csv"),  # Drive guessed vaguely: extension
        ("TH0101", XLSX, "excel"),  # no extension: mimeType
        ("Câu trả lời", "application/vnd.google-apps.spreadsheet", "gsheet"),
        ("TH0101.xlsx", "application/vnd.google-apps.document", None),  # a Doc named .xlsx
        ("TH0101.pdf", "application/pdf", None),
        ("ảnh.jpg", "image/jpeg", None),
    ],
)
def test_kind_of(name: str, mime: str, kind: str | None) -> None:
    assert kind_of(name, mime) == kind


# ---- listing a folder ---------------------------------------------------------------------------


def test_listing_pages_subfolders_trash_and_kinds(
    client: GSheetsClient, google: FakeGoogle
) -> None:
    files = {
        "1F_a": ("TH0101_cmhs.xlsx", xlsx_bytes(ANSWERS), None),
        "1F_b": ("TH0102_cmhs.xls", b"\xd0\xcf\x11\xe0xls", None),
        "1F_c": ("TH0103_cmhs.ods", b"PK\x03\x04ods", None),
        "1F_d": ("TH0104_cmhs.csv", csv_bytes(ANSWERS), None),
        "1F_e": ("TH0105_cmhs.csv", csv_bytes(ANSWERS), "application/octet-stream"),
        "1F_f": ("Hướng dẫn.pdf", b"%PDF-1.4", None),
        "1F_g": ("Công văn.docx", b"PK\x03\x04docx", None),
    }
    for fid, (name, content, mime) in files.items():
        google.add_file(fid, name, content, ROOT, mime_type=mime)
    google.add_spreadsheet("1Sheet_TH0106", "TH0106 câu trả lời", {"Sheet1": [["x"]]})
    google.spreadsheets["1Sheet_TH0106"].parents.append(ROOT)
    google.add_file("1Old", "TH0101_cmhs (cũ).xlsx", b"old", ROOT)
    google.trash("1Old")
    google.add_folder("1Sub_XA01", "XA01", ROOT)
    google.add_folder("1Sub_TH0107", "TH0107", "1Sub_XA01")
    late = "2024-11-20T17:30:00.000Z"
    google.add_file("1F_h", "phiếu.xlsx", b"PK\x03\x04sub", "1Sub_TH0107", modified_time=late)
    google.add_file("1F_i", "TH0108.csv", b"a,b\n", "1Sub_XA01")
    google.trash("1F_i")

    found = list_drive_folder(f"https://drive.google.com/drive/folders/{ROOT}?usp=sharing", client)

    modified = dt.datetime(2024, 10, 29, 2, 5, 31, tzinfo=dt.UTC)
    assert found == sorted(
        [
            Found("TH0101_cmhs.xlsx", "1F_a", "excel", modified, md5(files["1F_a"][1])),
            Found("TH0102_cmhs.xls", "1F_b", "excel", modified, md5(files["1F_b"][1])),
            Found("TH0103_cmhs.ods", "1F_c", "excel", modified, md5(files["1F_c"][1])),
            Found("TH0104_cmhs.csv", "1F_d", "csv", modified, md5(files["1F_d"][1])),
            Found("TH0105_cmhs.csv", "1F_e", "csv", modified, md5(files["1F_e"][1])),
            Found("TH0106 câu trả lời", "1Sheet_TH0106", "gsheet", modified, None),
            Found(
                "XA01/TH0107/phiếu.xlsx",
                "1F_h",
                "excel",
                dt.datetime(2024, 11, 20, 17, 30, tzinfo=dt.UTC),
                md5(b"PK\x03\x04sub"),
            ),
        ],
        key=lambda f: f.name,
    )
    assert all(f.modified is not None and f.modified.tzinfo is not None for f in found)
    pages = listing_pages(google)
    # 9 items in the folder out of the trash, 3 a page: 3 pages; then XA01, then TH0107
    assert len(pages) == 5
    assert [("pageToken" in p) for p in pages] == [False, True, True, False, False]
    assert all(p["q"][0].endswith("in parents and trashed = false") for p in pages)
    assert not google.downloads()  # listing downloads nothing


def test_shortcuts_are_followed_to_their_targets(client: GSheetsClient, google: FakeGoogle) -> None:
    # elsewhere in Drive, shared with the service account directly
    google.add_folder("1Elsewhere", "Trường TH0201", shared=False)
    google.add_file("1Target", "TH0201_cmhs.xlsx", b"PK\x03\x04t", "1Elsewhere", shared=True)
    google.add_folder("1Folder2", "TH0202", shared=True)
    google.add_file("1InFolder2", "TH0202.csv", b"a,b\n1,2\n", "1Folder2")
    google.add_file("1Private", "TH0203.xlsx", b"PK\x03\x04p", "1Elsewhere")  # not shared
    google.add_shortcut("1Sc_file", "TH0201_cmhs.xlsx", "1Target", ROOT)
    google.add_shortcut("1Sc_folder", "TH0202", "1Folder2", ROOT)
    google.add_shortcut("1Sc_private", "TH0203.xlsx", "1Private", ROOT)
    google.add_shortcut("1Sc_loop", "vòng lặp", ROOT, "1Folder2")  # back to the top

    found = list_drive_folder(ROOT, client)

    assert [(f.name, f.location, f.kind) for f in found] == [
        ("TH0201_cmhs.xlsx", "1Target", "excel"),
        ("TH0202/TH0202.csv", "1InFolder2", "csv"),
    ]
    assert found[0].checksum == md5(b"PK\x03\x04t")
    gets = [c.path.rsplit("/", 1)[-1] for c in google.calls("drive") if c.path != "/drive/v3/files"]
    assert sorted(gets) == sorted([ROOT, "1Target", "1Folder2", "1Private", ROOT])


def test_shared_drive_folder(client: GSheetsClient, google: FakeGoogle) -> None:
    google.add_shared_drive("0ASharedDrive", "Phòng GDĐT")
    google.add_folder("1InShared", "Khảo sát 2024", "0ASharedDrive")
    google.add_file("1Shared_a", "TH0301.xlsx", b"PK\x03\x04s", "1InShared")
    google.add_folder("1InShared_sub", "XA03", "1InShared")
    google.add_file("1Shared_b", "TH0302.csv", b"x\n", "1InShared_sub")

    found = list_drive_folder("https://drive.google.com/drive/u/0/folders/1InShared", client)

    assert [(f.name, f.location) for f in found] == [
        ("TH0301.xlsx", "1Shared_a"),
        ("XA03/TH0302.csv", "1Shared_b"),
    ]
    for page in listing_pages(google):
        assert page["corpora"] == ["drive"] and page["driveId"] == ["0ASharedDrive"]
        assert page["includeItemsFromAllDrives"] == ["true"]
        assert page["supportsAllDrives"] == ["true"]


def test_fake_leaves_shared_drive_items_out_unless_asked(
    client: GSheetsClient, google: FakeGoogle
) -> None:
    """What the client's parameters are for: without them, Google lists a shared drive's folder
    as empty, and files.get does not find its items."""
    google.add_shared_drive("0ASharedDrive", "Phòng GDĐT")
    google.add_file("1Shared_a", "TH0301.xlsx", b"PK\x03\x04s", "0ASharedDrive")
    http = client.http("test")
    url = f"{google.url}/drive/v3/files"
    plain = http.session.get(url, params={"q": "'0ASharedDrive' in parents"}).json()
    assert plain["files"] == []
    assert http.session.get(f"{url}/1Shared_a").status_code == 404
    asked = {
        "q": "'0ASharedDrive' in parents",
        "corpora": "drive",
        "driveId": "0ASharedDrive",
        "includeItemsFromAllDrives": "true",
        "supportsAllDrives": "true",
    }
    assert [f["id"] for f in http.session.get(url, params=asked).json()["files"]] == ["1Shared_a"]
    bad = http.session.get(url, params={"q": "'x' in parents or name = 'y'"})
    assert bad.status_code == 400


@pytest.mark.parametrize("status", [404, 403])
def test_unshared_folder_is_one_line_naming_the_account(
    client: GSheetsClient, google: FakeGoogle, clock: FakeClock, status: int
) -> None:
    google.add_folder("1NotShared", "Khảo sát", shared=False)
    google.add_file("1Inside", "TH0101.xlsx", b"PK", "1NotShared")
    if status == 403:
        google.deny("1NotShared", status=403)

    with pytest.raises(SourceError) as excinfo:
        list_drive_folder("https://drive.google.com/drive/folders/1NotShared", client)

    message = str(excinfo.value)
    assert message == (
        f"thư mục Drive 1NotShared chưa được chia sẻ với {SERVICE_ACCOUNT} (hoặc không còn tồn "
        "tại); hãy chia sẻ quyền Người xem"
    )
    assert excinfo.value.__cause__ is None and excinfo.value.__context__ is None
    assert [c.status for c in google.calls("drive")] == [status]  # asked once, not retried
    assert clock.sleeps == []


def test_not_a_folder(client: GSheetsClient, google: FakeGoogle) -> None:
    google.add_file("1AFile", "TH0101.xlsx", b"PK", ROOT)
    with pytest.raises(SourceError, match=r"^thư mục Drive 1AFile: is a file \('TH0101.xlsx'\)"):
        list_drive_folder("1AFile", client)
    with pytest.raises(SourceError, match="is not a Google Drive folder"):
        list_drive_folder("thư mục/khảo sát", client)


def test_429_burst_while_listing_is_ridden_out(
    client: GSheetsClient, google: FakeGoogle, clock: FakeClock
) -> None:
    for i in range(5):
        google.add_file(f"1F_{i}", f"TH010{i}.xlsx", b"PK\x03\x04", ROOT)
    google.fail(429, times=3, api="drive", key=ROOT)
    google.fail(403, times=1, api="drive", reason="userRateLimitExceeded")

    found = list_drive_folder(ROOT, client)

    assert [f.location for f in found] == [f"1F_{i}" for i in range(5)]
    assert [c.status for c in google.calls("drive")] == [429, 429, 429, 403, 200, 200, 200]
    assert len(clock.sleeps) == 4
    for n, slept in enumerate(clock.sleeps):
        assert 2**n / 2 <= slept <= 2**n


# ---- fetching drive sources ---------------------------------------------------------------------


@dataclasses.dataclass(frozen=True)
class Last:
    """A source's last successful load, as the ledger gives it back (flows.fetch.LastFetch)."""

    fingerprint: str
    archive_path: str | None
    filename: str | None
    revision: str | None
    modified_at: dt.datetime | None


def last_of(got: Fetched) -> Last:
    return Last(got.fingerprint, str(got.archive_path), got.filename, got.revision, got.modified_at)


def drive_source(file_id: str, school: str = "TH0101") -> Source:
    return Source(school, "CMHS_TH", "drive", file_id)


def fetch_drive(
    client: GSheetsClient, tmp_path: Path, source: Source, last: Last | None = None, **kw: Any
) -> Fetched:
    limits = kw.pop("limits", Limits())
    return fetch(
        source, tmp_path / "archive", limits, TZ, folders=[tmp_path], gsheets=client, last=last
    )


def test_fetch_downloads_archives_and_reads_like_a_local_file(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    content = xlsx_bytes(ANSWERS)
    google.add_file("1F_a", "TH0101_cmhs.xlsx", content, ROOT, modified_time="2024-11-20T17:30:00Z")

    got = fetch_drive(client, tmp_path, drive_source("https://drive.google.com/file/d/1F_a/view"))

    assert got.content == content
    assert got.filename == "TH0101_cmhs.xlsx"
    assert got.revision == md5(content)
    assert got.modified_at == dt.datetime(2024, 11, 21, 0, 30)  # UTC+7, naive: after midnight
    assert got.fingerprint == hashlib.sha256(content).hexdigest()
    assert got.archive_path.name == f"{got.fingerprint}.xlsx"
    assert got.archive_path.read_bytes() == content
    sightings = json.loads((got.archive_path.parent / f"{got.fingerprint}.json").read_text())
    assert sightings == [
        {
            "source": got.source.key,
            "file": "TH0101_cmhs.xlsx",
            "modified_at": "2024-11-21T00:30:00",
            "revision": md5(content),
        }
    ]
    assert google.downloads() == ["1F_a"]
    # read as the same file from the drop folder would be
    tables = read_fetched(got.content, got.filename, "drive", Limits(), TZ)
    assert tables == read_tables(content, "TH0101_cmhs.xlsx", Limits())
    assert tables[0].rows[1][1:] == ["5A", "Hài lòng"]


def test_second_night_downloads_only_the_reuploaded_file(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    first = {
        "1F_a": xlsx_bytes(ANSWERS),
        "1F_b": csv_bytes(ANSWERS),
        "1F_c": xlsx_bytes(ANSWERS[:2]),
    }
    for i, (fid, content) in enumerate(first.items()):
        suffix = ".csv" if fid == "1F_b" else ".xlsx"
        google.add_file(fid, f"TH010{i}{suffix}", content, ROOT)
    sources = {fid: drive_source(fid, f"TH010{i}") for i, fid in enumerate(first)}

    night1 = {fid: fetch_drive(client, tmp_path, s) for fid, s in sources.items()}
    assert sorted(google.downloads()) == sorted(first)

    google.requests.clear()
    night2 = {
        fid: fetch_drive(client, tmp_path, s, last_of(night1[fid])) for fid, s in sources.items()
    }
    assert google.downloads() == []  # the log proves it: metadata only
    assert len(google.calls("drive")) == 3
    for fid, got in night2.items():
        assert got.content == b"" and got.fingerprint == night1[fid].fingerprint
        assert got.revision == night1[fid].revision

    google.requests.clear()
    changed = csv_bytes([*ANSWERS, [dt.datetime(2024, 10, 12, 7, 0), "5C", "Bình thường"]])
    google.upload("1F_b", changed)
    night3 = {
        fid: fetch_drive(client, tmp_path, s, last_of(night1[fid])) for fid, s in sources.items()
    }
    assert google.downloads() == ["1F_b"]
    assert night3["1F_b"].content == changed and night3["1F_b"].revision == md5(changed)
    assert night3["1F_a"].content == b""


def test_oversized_file_is_refused_before_downloading(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    google.add_file("1Big", "TH0101.csv", b"x" * 5000, ROOT)
    with pytest.raises(SourceError) as excinfo:
        fetch_drive(client, tmp_path, drive_source("1Big"), limits=Limits(max_file_bytes=4096))
    assert str(excinfo.value) == (
        "TH0101: Drive file 1Big: file is 5,000 bytes, over the limit of 4,096 "
        "(limits.max_file_bytes)"
    )
    assert google.downloads() == []
    assert not (tmp_path / "archive").exists()


def test_oversized_download_is_cut_off(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    """A file whose size Drive does not give (or that grew since) is not read to its end."""
    google.add_file("1Big", "TH0101.csv", b"x" * 300_000, ROOT)
    meta = DriveFile("1Big", "TH0101.csv", None, None, size=None, modified_time=None)
    with pytest.raises(SourceError, match="over the limit of 100,000"):
        fetch_drive_file(
            client,
            drive_source("1Big"),
            meta,
            tmp_path / "archive",
            TZ,
            Limits(max_file_bytes=100_000),
        )
    assert google.downloads() == ["1Big"]
    assert not (tmp_path / "archive").exists()


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ("unshared", f"chưa được chia sẻ với {SERVICE_ACCOUNT}"),
        ("missing", f"chưa được chia sẻ với {SERVICE_ACCOUNT} (hoặc không còn tồn tại)"),
        ("folder", "'Khảo sát CMHS 2024' is a folder, not a file"),
        ("sheet", "'Câu trả lời' is a Google Sheet: list it with kind gsheet"),
        ("not an id", "is not a Google Drive file id"),
    ],
)
def test_drive_source_that_cannot_be_fetched(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path, setup: str, expected: str
) -> None:
    google.add_folder("1Private", "Riêng", shared=False)
    google.add_file("1Unshared", "TH0101.xlsx", b"PK", "1Private")
    google.add_spreadsheet("1Sheet", "Câu trả lời", {"Sheet1": [["x"]]})
    location = {
        "unshared": "1Unshared",
        "missing": "1Gone",
        "folder": ROOT,
        "sheet": "1Sheet",
        "not an id": "bài nộp/TH0101.xlsx",
    }[setup]
    with pytest.raises(SourceError) as excinfo:
        fetch_drive(client, tmp_path, drive_source(location))
    message = str(excinfo.value)
    assert message.startswith("TH0101: ") and expected in message and "\n" not in message
    assert excinfo.value.__context__ is None
    assert google.downloads() == []


def test_trashed_drive_source_is_absent(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    google.add_file("1F_a", "TH0101.xlsx", b"PK", ROOT)
    google.trash("1F_a")
    with pytest.raises(SourceAbsent, match="TH0101: Drive file 1F_a: 'TH0101.xlsx' is in Drive's"):
        fetch_drive(client, tmp_path, drive_source("1F_a"))


def test_fake_refuses_to_download_native_files(
    client: GSheetsClient, google: FakeGoogle, tmp_path: Path
) -> None:
    """Only files with binary content can be downloaded: a native Sheet is read through Sheets."""
    google.add_spreadsheet("1Sheet", "Câu trả lời", {"Sheet1": [["x"]]})
    meta = DriveFile("1Sheet", "Câu trả lời", None, None, None, None)
    with pytest.raises(SourceError) as excinfo:
        fetch_drive_file(client, drive_source("1Sheet"), meta, tmp_path, TZ, Limits())
    assert str(excinfo.value) == (
        "TH0101: Drive file 1Sheet: Google Drive refused to download 'Câu trả lời' "
        "(fileNotDownloadable)"
    )
    assert [c.status for c in google.calls("drive")] == [403]


def test_download_survives_a_429_burst(
    client: GSheetsClient, google: FakeGoogle, clock: FakeClock, tmp_path: Path
) -> None:
    content = xlsx_bytes(ANSWERS)
    google.add_file("1F_a", "TH0101.xlsx", content, ROOT)
    google.fail(429, times=2, api="drive", key="1F_a")
    google.fail(503, times=1, api="drive", key="1F_a")
    got = fetch_drive(client, tmp_path, drive_source("1F_a"))
    assert got.content == content
    assert [c.status for c in google.calls("drive")] == [429, 429, 503, 200, 200]
    assert len(clock.sleeps) == 3


def test_no_secret_in_messages_or_logs(
    settings: GSheets,
    google: FakeGoogle,
    private_key_pem: str,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(logging.getLogger("google"), "propagate", True)
    caplog.set_level(logging.DEBUG)
    caplog.set_level(logging.DEBUG, logger="google")
    caplog.set_level(logging.DEBUG, logger="urllib3")
    clock = FakeClock()
    client = open_client(settings, sleep=clock.sleep, clock=clock, retry=RetryPolicy(2))
    google.add_file("1F_a", "TH0101.xlsx", xlsx_bytes(ANSWERS), ROOT)
    google.add_folder("1NotShared", "Riêng", shared=False)
    google.add_shortcut("1Sc", "TH0102.xlsx", "1Gone", ROOT)
    messages: list[str] = []

    def attempt(what: str) -> None:
        try:
            if what.startswith("folder:"):
                list_drive_folder(what.removeprefix("folder:"), client)
            else:
                fetch_drive(client, tmp_path, drive_source(what), limits=Limits(max_file_bytes=99))
        except SourceError as exc:
            messages.append(str(exc))

    attempt(f"folder:{ROOT}")  # listed, shortcut to nothing logged
    attempt("folder:1NotShared")
    google.fail(429, times=None, api="drive")
    attempt(f"folder:{ROOT}")  # gives up
    google.faults.clear()
    google.expire_tokens()
    attempt("1F_a")  # 401, refreshed, then over the limit
    attempt("1Gone")
    google.fail(400, api="token", reason="invalid_grant")
    google.expire_tokens()
    attempt("1F_a")  # the token endpoint refuses the key
    assert len(messages) == 5 and google.token_requests == 3

    secrets = [*google.issued_tokens, "Bearer ", "PRIVATE KEY"]
    secrets += [line for line in private_key_pem.splitlines() if "-----" not in line][:5]
    texts = messages + [caplog.text] + [repr(vars(record)) for record in caplog.records]
    for text in texts:
        for secret in secrets:
            assert secret not in text
    assert any("points to a file not shared" in r.getMessage() for r in caplog.records)
    client.close()
