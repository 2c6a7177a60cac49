"""Failure notices through a real SMTP conversation with a small server on 127.0.0.1.

``SMTPServer`` speaks enough SMTP for smtplib (EHLO, AUTH PLAIN/LOGIN, MAIL, RCPT, DATA, QUIT)
and keeps what it received; it is written here because smtpd left the standard library in
Python 3.12 and aiosmtpd is not a dependency.
"""

from __future__ import annotations

import base64
import email
import email.policy
import logging
import socketserver
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from pathlib import Path

import pytest

from flows.pipeline import notify
from flows.settings import Notify, load_settings
from schemas.records import RunSummary, Source, SourceOutcome

#: Whole flows, servers and subprocesses: minutes, not seconds.
pytestmark = pytest.mark.slow

PASSWORD = "s3cr3t-Mật-khẩu"


@dataclass
class Received:
    """One message as the server got it."""

    sender: str
    recipients: list[str]
    message: EmailMessage

    @property
    def body(self) -> str:
        part = self.message.get_body(("plain",))
        assert part is not None
        return str(part.get_content()).replace("\r\n", "\n")


#: Commands answered with a fixed reply.
REPLIES = {
    "EHLO": "250-localhost\r\n250-AUTH PLAIN LOGIN\r\n250 8BITMIME",
    "HELO": "250 localhost",
    "RSET": "250 OK",
    "NOOP": "250 OK",
}


class _SMTPHandler(socketserver.StreamRequestHandler):
    """One SMTP session; what it receives goes to the ``SMTPServer`` it serves."""

    owner: SMTPServer

    def reply(self, text: str) -> None:
        self.wfile.write(text.encode() + b"\r\n")

    def handle(self) -> None:
        self.reply("220 localhost khaosat test SMTP")
        sender, rcpts = "", []
        while line := self.rfile.readline():
            self.owner.raw.append(line)
            cmd = line.decode("utf-8", "replace").rstrip("\r\n")
            verb = cmd.split(" ", 1)[0].upper()
            if verb == "QUIT":
                self.reply("221 bye")
                return
            if verb == "AUTH":
                self.auth(cmd.split(" ")[1:])
            elif verb == "MAIL":
                sender, rcpts = cmd.split(":", 1)[1].strip().strip("<>"), []
                self.reply("250 OK")
            elif verb == "RCPT":
                rcpts.append(cmd.split(":", 1)[1].strip().strip("<>"))
                self.reply("250 OK")
            elif verb == "DATA":
                self.reply("354 end with <CRLF>.<CRLF>")
                self.data(sender, rcpts)
            else:
                self.reply(REPLIES.get(verb, "502 not implemented"))

    def auth(self, args: list[str]) -> None:
        mechanism = args[0].upper()
        if mechanism == "PLAIN":
            if len(args) > 1:
                token = args[1]
            else:
                self.reply("334 ")
                token = self.rfile.readline().decode().strip()
            _, user, password = base64.b64decode(token).decode().split("\0")
        else:  # LOGIN
            self.reply("334 VXNlcm5hbWU6")
            user = base64.b64decode(self.rfile.readline().strip()).decode()
            self.reply("334 UGFzc3dvcmQ6")
            password = base64.b64decode(self.rfile.readline().strip()).decode()
        self.owner.logins.append((user, password))
        self.reply("235 2.7.0 authenticated")

    def data(self, sender: str, rcpts: list[str]) -> None:
        lines = []
        while (line := self.rfile.readline()) not in (b".\r\n", b".\n", b""):
            lines.append(line[1:] if line.startswith(b"..") else line)
        parsed = email.message_from_bytes(b"".join(lines), policy=email.policy.default)
        assert isinstance(parsed, EmailMessage)
        self.owner.messages.append(Received(sender, list(rcpts), parsed))
        self.reply("250 queued")


@dataclass
class SMTPServer:
    """A minimal SMTP server in a thread; ``messages`` and ``logins`` are what it received."""

    host: str = "127.0.0.1"
    port: int = 0
    messages: list[Received] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)
    raw: list[bytes] = field(default_factory=list)

    def __enter__(self) -> SMTPServer:
        handler = type("Handler", (_SMTPHandler,), {"owner": self})

        class Server(socketserver.ThreadingTCPServer):
            daemon_threads = True
            allow_reuse_address = True

        self._server = Server((self.host, self.port), handler)
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()


@pytest.fixture
def smtp_server() -> Iterator[SMTPServer]:
    with SMTPServer() as server:
        yield server


def notify_yaml(server: SMTPServer, *, user: str | None = "khaosat") -> str:
    login = f"  smtp_user: {user}\n  smtp_password: {PASSWORD}\n" if user else ""
    return (
        f"notify:\n  smtp_host: 127.0.0.1\n  smtp_port: {server.port}\n{login}"
        "  sender: khaosat@sgd.example.vn\n"
        "  recipients: [du-lieu@sgd.example.vn, it@sgd.example.vn]\n"
    )


def write_config(folder: Path, server: SMTPServer, url: str = "sqlite:///w.sqlite") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "khaosat.yaml").write_text(
        "campaign:\n  id: T-2024\n  name: Khảo sát thử nghiệm\n  school_year: 2024-2025\n"
        "  opens: 2024-10-01\n  closes: 2024-10-31\n  deadline: 2024-10-25\n"
        "registry:\n  schools: schools.csv\n  sources: sources.csv\n"
        f"warehouse:\n  url: {url}\n" + notify_yaml(server),
        encoding="utf-8",
    )
    return folder / "khaosat.yaml"


def summary_with(outcomes: list[SourceOutcome]) -> RunSummary:
    return RunSummary(run_id="run-1", campaign_id="T-2024", outcomes=outcomes)


def outcome(school: str, status: str, message: str = "") -> SourceOutcome:
    source = Source(school, "CMHS_TH", "excel", f"submissions/{school}.xlsx")
    return SourceOutcome(source, status, message=message, filename=f"{school}.xlsx")


def test_failed_sources_are_mailed_with_reason_and_the_rerun_command(
    tmp_path: Path, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, smtp_server), env={})
    summary = summary_with(
        [
            outcome("S1", "loaded"),
            outcome("S5", "failed", "S5 submissions/S5.xlsx: damaged file (not a readable zip)"),
            outcome("S6", "absent", "S6 submissions/S6.xlsx: file not found"),
        ]
    )
    with caplog.at_level(logging.DEBUG):
        assert notify.notify_failed_sources(settings, summary)

    [got] = smtp_server.messages
    assert got.sender == "khaosat@sgd.example.vn"
    assert got.recipients == ["du-lieu@sgd.example.vn", "it@sgd.example.vn"]
    assert got.message["Subject"] == "[khaosat] T-2024: 1 source(s) failed"
    assert "Khảo sát thử nghiệm" in got.body
    assert "- S5 CMHS_TH S5.xlsx: damaged file (not a readable zip)" in got.body
    assert "1 loaded, 0 unchanged, 1 failed, 1 absent" in got.body
    assert f"khaosat rerun --failed --config {settings.config_path}" in got.body
    assert "S6" not in got.body.split("could not be loaded")[1].split("Fix the file")[0]
    assert smtp_server.logins == [("khaosat", PASSWORD)]
    assert PASSWORD not in caplog.text and PASSWORD not in got.body
    assert "notice sent to 2 recipient(s)" in caplog.text


def test_nothing_is_sent_without_failures_or_configuration(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    settings = load_settings(write_config(tmp_path, smtp_server), env={})
    ok = summary_with([outcome("S1", "loaded"), outcome("S6", "absent", "not found")])
    assert not notify.notify_failed_sources(settings, ok)
    bad = summary_with([outcome("S5", "failed", "damaged")])
    unconfigured = settings.model_copy(update={"notify": Notify()})
    assert not notify.notify_failed_sources(unconfigured, bad)
    assert smtp_server.messages == []


def test_an_unreachable_smtp_server_is_logged_without_credentials(
    tmp_path: Path, smtp_server: SMTPServer, caplog: pytest.LogCaptureFixture
) -> None:
    settings = load_settings(write_config(tmp_path, smtp_server), env={})
    smtp_server.__exit__()  # nothing listens on the port any more
    bad = summary_with([outcome("S5", "failed", "damaged")])
    with caplog.at_level(logging.WARNING):
        assert not notify.notify_failed_sources(settings, bad)
    assert f"could not send the notice to 2 recipient(s) via 127.0.0.1:{smtp_server.port}" in (
        caplog.text
    )
    assert PASSWORD not in caplog.text


def test_secrets_are_masked_in_everything_sent(tmp_path: Path, smtp_server: SMTPServer) -> None:
    url = f"postgresql://khaosat:{PASSWORD}x@db.example:5432/khaosat"
    settings = load_settings(write_config(tmp_path, smtp_server, url), env={})
    assert sorted(notify.secrets_of(settings)) == sorted(
        [PASSWORD, f"\0khaosat\0{PASSWORD}", PASSWORD + "x"]
    )
    leaky = summary_with([outcome("S5", "failed", f"connection to {url} refused")])
    assert notify.notify_failed_sources(settings, leaky)
    body = smtp_server.messages[0].body
    assert PASSWORD not in body and "khaosat:***@db.example" in body


def test_the_smtp_password_is_never_shown_by_the_settings(
    tmp_path: Path, smtp_server: SMTPServer
) -> None:
    settings = load_settings(write_config(tmp_path, smtp_server), env={})
    for shown in (repr(settings), str(settings.notify), settings.model_dump_json()):
        assert PASSWORD not in shown
    assert settings.notify.smtp_password is not None
    assert settings.notify.smtp_password.get_secret_value() == PASSWORD
    # and from the environment, as cron jobs are advised to pass it
    env = {"KHAOSAT_NOTIFY__SMTP_PASSWORD": "từ-môi-trường"}
    from_env = load_settings(write_config(tmp_path, smtp_server), env=env)
    assert from_env.notify.smtp_password is not None
    assert from_env.notify.smtp_password.get_secret_value() == "từ-môi-trường"
    assert "từ-môi-trường" not in repr(from_env)


def test_on_failure_hook_mails_a_failed_flow_run(
    tmp_path: Path, smtp_server: SMTPServer, prefect_harness: None
) -> None:
    from prefect import flow

    config = write_config(tmp_path, smtp_server)

    @flow(name="khaosat-hook-test", on_failure=[notify.on_failure])
    def doomed(config: str) -> None:
        raise RuntimeError(f"warehouse refused the password {PASSWORD}")

    with pytest.raises(RuntimeError):
        doomed(config=str(config))

    [got] = smtp_server.messages
    assert got.message["Subject"] == "[khaosat] T-2024: run failed"
    assert "RuntimeError: warehouse refused the password ***" in got.body
    assert PASSWORD not in got.body
    assert f"khaosat status --config {config}" in got.body


def test_on_failure_hook_without_usable_config_sends_nothing(
    tmp_path: Path, smtp_server: SMTPServer, prefect_harness: None
) -> None:
    from prefect import flow

    @flow(name="khaosat-hook-test-2", on_failure=[notify.on_failure])
    def doomed(config: str) -> None:
        raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        doomed(config=str(tmp_path / "missing.yaml"))
    assert smtp_server.messages == []


# -- through the command line, as a scheduled night would (needs the lead's wiring) ------------


def test_khaosat_run_mails_its_failed_sources_and_keeps_the_password_out_of_its_output(
    tmp_path: Path, smtp_server: SMTPServer, prefect_harness: None
) -> None:
    from tests.factories import khaosat, make_province

    config = make_province(tmp_path / "p")
    with config.open("a", encoding="utf-8") as f:
        f.write(notify_yaml(smtp_server))
    done = khaosat("run", "--config", str(config))
    assert done.returncode == 1, done.stdout + done.stderr  # S5 is corrupt
    assert PASSWORD not in done.stdout + done.stderr

    [got] = smtp_server.messages
    assert got.message["Subject"] == "[khaosat] T-2024: 1 source(s) failed"
    assert "- S5 CMHS_THCS S5_cmhs.xlsx: " in got.body
    assert smtp_server.logins == [("khaosat", PASSWORD)]


def test_a_run_that_cannot_start_mails_why(
    tmp_path: Path, smtp_server: SMTPServer, prefect_harness: None
) -> None:
    """A campaign locked by a live run: the second run fails, and says so by e-mail."""
    from tests.factories import khaosat, make_province
    from warehouse.db import connect, migrate
    from warehouse.lock import RunLock

    config = make_province(tmp_path / "p")
    with config.open("a", encoding="utf-8") as f:
        f.write(notify_yaml(smtp_server, user=None))
    settings = load_settings(config, env={})
    engine = connect(settings.warehouse_url)
    migrate(engine)
    with RunLock(engine, "T-2024", "the-other-run"):
        done = khaosat("run", "--config", str(config))
    from tests.factories import rows

    # the night that could not start is on record, with why (khaosat status shows it)
    [run] = rows(engine, "SELECT status, message FROM run")
    engine.dispose()
    assert run["status"] == "failed"
    assert "is being consolidated by run the-other-run" in str(run["message"])
    assert done.returncode != 0
    assert "being consolidated by run the-other-run" in done.stdout + done.stderr
    [got] = smtp_server.messages
    assert got.message["Subject"] == "[khaosat] T-2024: run failed"
    assert "campaign T-2024 is being consolidated by run the-other-run on " in got.body


def test_smtp_server_helper_speaks_to_smtplib(smtp_server: SMTPServer) -> None:
    """The fake is only as good as its conversation with the real client."""
    n = Notify(
        smtp_host="127.0.0.1",
        smtp_port=smtp_server.port,
        recipients=["a@x.vn"],
        smtp_user="u",
        smtp_password="p",
    )
    notify.send_mail(n, "Tiêu đề", ".leading dot line\nsecond\n")
    [got] = smtp_server.messages
    assert got.message["Subject"] == "Tiêu đề"
    assert got.body == ".leading dot line\nsecond\n"
    assert smtp_server.logins == [("u", "p")]
