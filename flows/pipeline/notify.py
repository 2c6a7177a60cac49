"""Failure notices by e-mail: when a run fails outright, or finishes with failed sources.

Nobody reads a nightly log at 01:30. ``notify_failed_sources`` (called at the end of a run)
lists each failed source with the command that re-runs them; ``on_failure`` (a Prefect flow
hook) says why a run did not finish at all. Nothing is sent without ``notify.smtp_host`` and a
recipient. Sending never breaks a run: an unreachable SMTP server is logged. The SMTP password
and the warehouse URL's password are masked in everything written, exception text included,
in their plain, URL-encoded and base64 forms (a server may echo the AUTH exchange back).
"""

from __future__ import annotations

import base64
import logging
import smtplib
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from pathlib import Path
from typing import TYPE_CHECKING, Any

from flows.privacy import mask_secrets
from flows.settings import Notify, Settings, SettingsError, load_settings

if TYPE_CHECKING:
    from prefect import Flow
    from prefect.client.schemas.objects import FlowRun
    from prefect.states import State

    from schemas.records import RunSummary

log = logging.getLogger(__name__)

#: Seconds to wait for the SMTP server before giving up on a notice.
SMTP_TIMEOUT = 30
#: Port of SMTP over implicit TLS ("SMTPS"); any other port uses plain SMTP (+ STARTTLS if set).
SMTPS_PORT = 465


def enabled(notify: Notify) -> bool:
    """True if notices are configured: an SMTP host and at least one recipient."""
    return bool(notify.smtp_host and notify.recipients)


def secrets_of(settings: Settings) -> list[str]:
    """Every secret that could appear in text we write: SMTP password, warehouse password;
    with an SMTP user, also the ``"\\0user\\0password"`` whose base64 AUTH PLAIN sends."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    password = _password(settings.notify)
    found = [password]
    if password and settings.notify.smtp_user:
        found.append(f"\0{settings.notify.smtp_user}\0{password}")
    try:
        found.append(make_url(settings.warehouse_url).password or "")
    except ArgumentError:
        pass
    return [s for s in found if s]


def _described(exc: BaseException) -> str:
    """``exc`` as one line, an SMTP server's reply decoded (smtplib keeps it as bytes, whose
    repr would escape a non-ASCII password out of reach of the masking)."""
    if isinstance(exc, smtplib.SMTPResponseException):
        reply = exc.smtp_error
        text = reply.decode("utf-8", "replace") if isinstance(reply, bytes) else str(reply)
        return f"{type(exc).__name__}: {exc.smtp_code} {text}"
    return f"{type(exc).__name__}: {exc}"


def send_mail(notify: Notify, subject: str, body: str) -> None:
    """Send one plain-text message to ``notify.recipients`` through ``notify``'s SMTP server.

    Port 465 speaks TLS from the start; otherwise STARTTLS is used if ``smtp_starttls`` is set.
    Logs in if ``smtp_user`` is set. Raises smtplib.SMTPException or OSError on failure.
    """
    if not notify.smtp_host:
        raise ValueError("notify.smtp_host is not set")
    msg = EmailMessage()
    msg["Subject"] = subject
    msg["From"] = notify.sender
    msg["To"] = ", ".join(notify.recipients)
    msg["Date"] = formatdate(localtime=True)
    msg["Message-ID"] = make_msgid(domain=notify.sender.rpartition("@")[2] or None)
    msg.set_content(body)
    context = ssl.create_default_context()
    smtp: smtplib.SMTP
    if notify.smtp_port == SMTPS_PORT:
        smtp = smtplib.SMTP_SSL(
            notify.smtp_host, notify.smtp_port, timeout=SMTP_TIMEOUT, context=context
        )
    else:
        smtp = smtplib.SMTP(notify.smtp_host, notify.smtp_port, timeout=SMTP_TIMEOUT)
    with smtp:
        if notify.smtp_starttls and notify.smtp_port != SMTPS_PORT:
            smtp.starttls(context=context)
        if notify.smtp_user:
            _login(smtp, notify.smtp_user, _password(notify))
        smtp.send_message(msg)


def _password(notify: Notify) -> str:
    return notify.smtp_password.get_secret_value() if notify.smtp_password else ""


def _login(smtp: smtplib.SMTP, user: str, password: str) -> None:
    """Log in; AUTH PLAIN in UTF-8 (RFC 4616) where smtplib would refuse a non-ASCII password."""
    if (user + password).isascii():
        smtp.login(user, password)
        return
    smtp.ehlo_or_helo_if_needed()
    token = base64.b64encode(f"\0{user}\0{password}".encode()).decode("ascii")
    code, response = smtp.docmd("AUTH", f"PLAIN {token}")
    if code != 235:
        raise smtplib.SMTPAuthenticationError(code, response)


def _deliver(settings: Settings, subject: str, body: str) -> bool:
    """Send, masking secrets; log (never raise) if the server cannot be reached."""
    notify, secrets = settings.notify, secrets_of(settings)
    where = f"{notify.smtp_host}:{notify.smtp_port}"
    try:
        send_mail(notify, mask_secrets(subject, secrets), mask_secrets(body, secrets))
    except (smtplib.SMTPException, OSError, ValueError) as exc:
        log.warning(
            "could not send the notice to %d recipient(s) via %s: %s",
            len(notify.recipients),
            where,
            mask_secrets(_described(exc), secrets),
        )
        return False
    log.info("notice sent to %d recipient(s) via %s", len(notify.recipients), where)
    return True


def failed_sources_message(settings: Settings, summary: RunSummary) -> tuple[str, str]:
    """Subject and body listing a run's failed sources and what to do about them."""
    c = settings.campaign
    failed = [o for o in summary.outcomes if o.status == "failed"]
    counts = ", ".join(
        f"{summary.count(s)} {s}" for s in ("loaded", "unchanged", "failed", "absent")
    )
    lines = [
        f"Campaign {c.id} ({c.name}), run {summary.run_id}: {counts}.",
        "",
        f"{len(failed)} source(s) could not be loaded; every other source was loaded:",
        "",
    ]
    for o in failed:
        reason = o.message.removeprefix(f"{o.source.school_code} {o.source.location}: ")
        lines.append(
            f"- {o.source.school_code} {o.source.questionnaire} "
            f"{o.filename or o.source.location}: {reason}"
        )
    config = settings.config_path
    lines += [
        "",
        f"Fix the file, then: khaosat rerun --failed --config {config}",
        f"Where every source stands: khaosat status --config {config}",
    ]
    subject = f"[khaosat] {c.id}: {len(failed)} source(s) failed"
    return subject, "\n".join(lines) + "\n"


def notify_failed_sources(settings: Settings, summary: RunSummary) -> bool:
    """E-mail the run's failed sources, if any and if notices are configured.

    Called by the nightly flow once its summary is known. Returns True if a message was sent.
    """
    if not enabled(settings.notify) or not summary.count("failed"):
        return False
    return _deliver(settings, *failed_sources_message(settings, summary))


def notify_stopped_sources(settings: Settings, summary: RunSummary) -> bool:
    """E-mail that the machine stopped some sources' processes (not the schools' fault), if
    notices are configured. Returns True if a message was sent."""
    stopped = [o for o in summary.outcomes if o.status == "stopped"]
    if not enabled(settings.notify) or not stopped:
        return False
    c = settings.campaign
    lines = [
        f"Campaign {c.id} ({c.name}), run {summary.run_id}: the machine stopped the process "
        f"reading or loading {len(stopped)} source(s) (out of memory? killed?). They were not "
        "judged, keep what they had, and will be tried again on the next run:",
        "",
        *(
            f"- {o.source.school_code} {o.source.questionnaire} {o.source.location}"
            for o in stopped
        ),
        "",
        f"Where every source stands: khaosat status --config {settings.config_path}",
    ]
    subject = f"[khaosat] {c.id}: the machine stopped {len(stopped)} source(s)"
    return _deliver(settings, subject, "\n".join(lines) + "\n")


def run_failed_message(
    settings: Settings, run_name: str, run_id: str, state_message: str
) -> tuple[str, str]:
    """Subject and body for a run that did not finish."""
    c = settings.campaign
    body = (
        f"The consolidation run {run_name} ({run_id}) of campaign {c.id} ({c.name}) failed "
        f"before finishing:\n\n    {state_message}\n\n"
        "Sources loaded before the failure stay loaded; the next run carries on from there.\n"
        f"Where every source stands: khaosat status --config {settings.config_path}\n"
        f"Run it again: khaosat run --config {settings.config_path}\n"
    )
    return f"[khaosat] {c.id}: run failed", body


def notify_run_stopped(settings: Settings, run_id: str, reason: str) -> bool:
    """E-mail that a run stopped before its flow started (a registry or questionnaire file
    that cannot be read), when ``notify`` is configured; whether a notice went out."""
    if not enabled(settings.notify):
        return False
    return _deliver(settings, *run_failed_message(settings, "khaosat run", run_id, reason))


def on_failure(flow: Flow[Any, Any], flow_run: FlowRun, state: State[Any]) -> None:
    """Prefect ``on_failure`` hook of the nightly flow: e-mail that the run failed.

    The SMTP settings come from the run's own ``config`` parameter; a run whose config cannot
    be read has no one to tell, which is logged.
    """
    from flows.pipeline import prefect_ui

    if prefect_ui.is_verdict(state):  # the night ran to its end: notify_failed_sources told
        return
    config = (flow_run.parameters or {}).get("config")
    if not config:
        log.warning("flow run %s failed; it has no config parameter to notify from", flow_run.id)
        return
    try:
        settings = load_settings(Path(str(config)))
    except SettingsError as exc:
        log.warning(
            "flow run %s failed and its config is unusable (%s): no notice", flow_run.id, exc
        )
        return
    if not enabled(settings.notify):
        return
    message = state.message or f"ended in state {state.name}"
    _deliver(settings, *run_failed_message(settings, flow_run.name, str(flow_run.id), message))
