"""What Prefect's UI shows of a night: the run's name, final state, log lines and artifacts.

A data officer watches the nights in Prefect's UI (``khaosat serve``'s server, or any at
``PREFECT_API_URL``). There:

- the flow run is named for the campaign and the night (``HN-2024 · 2026-12-07 01:30``) or the
  re-run (``HN-2024 · rerun failed``, ``HN-2024 · rerun TH015``), each source's task for the
  school and questionnaire (``TH015 · CMHS_TH``), a batch's for what it holds
  (``validate CMHS_TH (37)``);
- the night ends in the state its sources earned (``verdict``): Failed with "3/36 nguồn lỗi" when
  a source failed or the machine stopped one, Completed named "Thiếu bài nộp" when files are
  only absent, Completed otherwise; the flow's result is still its RunSummary (``summary_of``);
- the run's page holds one line per failed source with its reason and one summary line
  (``report``), kept off the console of ``khaosat run``, whose table says it already;
- each night replaces two artifacts keyed per campaign (``artifact_key``): a table of its
  sources and a Markdown summary with the rerun command and where the workbooks are.

All of it costs a few API calls a night (a rename, the logs in a batch or two, two artifacts),
none per source. The messages quoted are the ledger's, masked when they were made.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar, cast
from zoneinfo import ZoneInfo

from prefect.logging import get_run_logger
from prefect.logging.handlers import PrefectConsoleHandler
from prefect.runtime import flow_run
from prefect.states import Completed, Failed, State

from flows.settings import Settings, load_settings
from schemas.records import RunSummary, SourceOutcome

if TYPE_CHECKING:
    from prefect.tasks import TaskRunNameCallbackWithParameters

log = logging.getLogger(__name__)

R = TypeVar("R")

#: Name of the Completed state of a night whose only problem is files not (yet) submitted.
ABSENT_STATE = "Thiếu bài nộp"

#: What a night's own verdict says (``verdict``): "<n>/<total> nguồn …".
_VERDICT = re.compile(r"\d+/\d+ nguồn ")

#: A log record carrying this attribute goes to the run's page only, not to the console.
RUN_PAGE_ONLY = "khaosat_run_page_only"

#: Order of the sources in the table artifact: what needs the officer first.
_STATUS_ORDER = {"failed": 0, "stopped": 1, "absent": 2, "loaded": 3, "unchanged": 4}


# -- names --------------------------------------------------------------------------------------


def _campaign_of(config: object) -> tuple[str, Settings | None]:
    """The campaign id of ``config`` (its folder's name if the config cannot be read: the flow
    itself then says why)."""
    try:
        settings = load_settings(Path(str(config)))
    except Exception:  # noqa: BLE001 - a name must not fail the run; the flow reports the config
        return Path(str(config)).parent.name or "khaosat", None
    return settings.campaign.id, settings


def night_name(parameters: dict[str, Any], settings: Settings | None, campaign: str) -> str:
    """The flow run's name for these nightly ``parameters``: the campaign and what it runs."""
    if parameters.get("failed_only"):
        return f"{campaign} · rerun failed"
    school = parameters.get("school")
    if school:
        questionnaire = parameters.get("questionnaire")
        return f"{campaign} · rerun {school}" + (f" {questionnaire}" if questionnaire else "")
    when = flow_run.scheduled_start_time
    if settings is not None:
        when = when.astimezone(ZoneInfo(settings.campaign.timezone))
    return f"{campaign} · {when:%Y-%m-%d %H:%M}" + (" · force" if parameters.get("force") else "")


def flow_run_name() -> str:
    """``flow_run_name`` of the nightly flow: ``HN-2024 · 2026-12-07 01:30`` (the night, in the
    campaign's time zone), ``HN-2024 · rerun failed`` or ``HN-2024 · rerun TH015``."""
    parameters = dict(flow_run.parameters)
    campaign, settings = _campaign_of(parameters.get("config", ""))
    return night_name(parameters, settings, campaign)


def _task_name(fn: Callable[[dict[str, Any]], str]) -> TaskRunNameCallbackWithParameters:
    """``fn`` as a ``task_run_name``: Prefect gives it the task's parameters, by that name."""
    return cast("TaskRunNameCallbackWithParameters", fn)


@_task_name
def ingest_name(parameters: dict[str, Any]) -> str:
    """An ingest task's name: ``TH015 · CMHS_TH`` (and the sheet, for one of several)."""
    source = parameters["source"]
    return f"{source.school_code} · {source.questionnaire}"


@_task_name
def validate_name(parameters: dict[str, Any]) -> str:
    """A validation task's name: ``validate CMHS_TH (37)``, the sheets it checks."""
    return f"validate {parameters['code']} ({len(parameters['parsed'])})"


@_task_name
def load_batch_name(parameters: dict[str, Any]) -> str:
    """A batch load task's name: ``load CMHS_TH (37)``, its questionnaire(s) and sources."""
    checked = parameters["checked"]
    codes = sorted({fetched.source.questionnaire for fetched, _ in checked})
    return f"load {', '.join(codes)} ({len(checked)})"


@_task_name
def load_source_name(parameters: dict[str, Any]) -> str:
    """One source's load task's name: ``load TH015 · CMHS_TH``."""
    source = parameters["fetched"].source
    return f"load {source.school_code} · {source.questionnaire}"


# -- the final state ----------------------------------------------------------------------------


def counts(summary: RunSummary) -> str:
    """The night in a few words: ``3/36 nguồn lỗi; 5/36 nguồn chưa nộp``, or the clean total."""
    total = len(summary.outcomes)
    parts = [
        f"{n}/{total} nguồn {words}"
        for status, words in (
            ("failed", "lỗi"),
            ("stopped", "bị máy dừng, chạy lại đêm sau"),
            ("absent", "chưa nộp"),
        )
        if (n := summary.count(status))
    ]
    done = summary.count("loaded") + summary.count("unchanged")
    return "; ".join(parts) or f"{done}/{total} nguồn đã nạp hoặc không đổi"


class NightFailed(Exception):  # noqa: N818 - it is the night's verdict, not an error of khaosat
    """What a Failed night holds as its data: ``value``, the night's result (its summary, or its
    exit code). Prefect's engine asks a deployment's run for its result and raises a failed
    run's data, which therefore must be an exception; ``summary_of`` gives ``value`` back."""

    def __init__(self, message: str, value: object) -> None:
        super().__init__(message)
        self.value = value


def verdict(summary: RunSummary, data: R) -> State[R]:
    """The state a night ends in, holding ``data`` as its result: Failed when a source failed
    or the machine stopped one (exit codes 1 and 5), Completed named ``ABSENT_STATE`` when
    files are only absent (3), Completed otherwise (0). The message counts them."""
    message = counts(summary)
    if summary.count("failed") or summary.count("stopped"):
        return cast("State[R]", Failed(message=message, data=NightFailed(message, data)))
    if summary.count("absent"):
        return Completed(message=message, name=ABSENT_STATE, data=data)
    return Completed(message=message, data=data)


def is_verdict(state: State[Any]) -> bool:
    """Whether ``state`` is a night's own verdict (it ran to its end and counted its sources),
    not a run that stopped on an exception."""
    return bool(state.message and _VERDICT.match(state.message))


def summary_of(state: State[R]) -> R:
    """The result a flow run's ``state`` holds (a night's verdict holds its summary, Failed or
    not); the exception a run that stopped ended with is raised again."""
    got = state.result(raise_on_failure=False)
    if isinstance(got, NightFailed):
        return cast("R", got.value)
    if isinstance(got, BaseException):
        raise got
    return got


# -- the run's page: log lines and artifacts ----------------------------------------------------


def artifact_key(campaign_id: str, what: str) -> str:
    """A per-campaign artifact key (Prefect's keys: lowercase letters, digits, dashes):
    ``khaosat-hn-2024-sources``."""
    slug = re.sub(r"[^a-z0-9-]+", "-", campaign_id.lower()).strip("-")
    return f"khaosat-{slug}-{what}"


def _sorted(outcomes: list[SourceOutcome]) -> list[SourceOutcome]:
    return sorted(
        outcomes,
        key=lambda o: (_STATUS_ORDER.get(o.status, 9), o.source.school_code, o.source.key),
    )


def source_table(summary: RunSummary) -> list[dict[str, Any]]:
    """One row per source of the night: school, questionnaire, status, responses loaded
    tonight (blank when none were), and the reason for a failed, stopped or absent one."""
    return [
        {
            "school": _cell(o.source.school_code),
            "questionnaire": o.source.questionnaire,
            "status": o.status,
            "responses": o.n_responses if o.status == "loaded" else None,
            "reason": _cell(o.message),
        }
        for o in _sorted(summary.outcomes)
    ]


def _cell(text: str) -> str:
    """``text`` as a table artifact's cell shows it: the UI reads each cell as Markdown, where
    a leading "*" (the school of a file no school could be told from) makes a bullet."""
    return "\\" + text if text.startswith("*") else text


def summary_markdown(settings: Settings, summary: RunSummary) -> str:
    """The night's totals, how to re-run what failed, and where the workbooks are."""
    c = settings.campaign
    rows = "\n".join(
        f"| {label} | {summary.count(status)} |"
        for status, label in (
            ("loaded", "đã nạp (loaded)"),
            ("unchanged", "không đổi (unchanged)"),
            ("failed", "lỗi (failed)"),
            ("absent", "chưa nộp (absent)"),
            ("stopped", "máy dừng (stopped)"),
        )
    )
    config = settings.config_path
    if summary.published:
        books = f"{len(summary.workbooks)} bảng tổng hợp trong `{settings.output}`"
    else:
        books = f"không đổi từ lần trước, trong `{settings.output}`"
    feedback = (
        f"\n- Phản hồi cho {len(summary.feedback)} trường: `{summary.feedback[0].parent}`"
        if summary.feedback
        else ""
    )
    return (
        f"## {c.id} · {c.name}\n\n**{counts(summary)}**\n\n"
        f"| nguồn | số |\n|---|---|\n{rows}\n| tổng | {len(summary.outcomes)} |\n\n"
        "### Chạy lại\n\n"
        f"- Sửa tệp, rồi: `khaosat rerun --failed --config {config}`, hoặc ở đây: "
        "Run → Custom run, `failed_only` = true\n"
        f"- Một trường: `khaosat rerun --school MÃ --config {config}`, hoặc Custom run, "
        "`school` = MÃ\n"
        f"- Trạng thái từng nguồn: `khaosat status --config {config}`\n\n"
        f"### Kết quả\n\n- Workbooks: {books}{feedback}\n"
        f"- Kho dữ liệu: `{summary.warehouse_url}`\n"
    )


def _log_lines(summary: RunSummary) -> None:
    """One line per failed or stopped source with its reason, then the night's count."""
    logger = get_run_logger()
    page_only = {RUN_PAGE_ONLY: True}
    for o in _sorted(summary.outcomes):
        if o.status in ("failed", "stopped"):
            logger.warning(
                "%s %s: %s", o.status, o.source.questionnaire, o.message, extra=page_only
            )
    bad = summary.count("failed") or summary.count("stopped")
    logger.log(
        logging.WARNING if bad else logging.INFO,
        "%s: %s",
        summary.campaign_id,
        counts(summary),
        extra=page_only,
    )


def report(settings: Settings, summary: RunSummary) -> None:
    """Put the night on its run's page: the log lines and the two artifacts. An API that does
    not take them (gone, refusing) costs the night nothing: it is logged here."""
    from prefect.artifacts import create_markdown_artifact, create_table_artifact

    _log_lines(summary)
    c = settings.campaign
    try:
        create_table_artifact(
            source_table(summary),
            key=artifact_key(c.id, "sources"),
            description=f"{c.id}: every source of the night, failed first ({counts(summary)})",
        )
        create_markdown_artifact(
            summary_markdown(settings, summary),
            key=artifact_key(c.id, "summary"),
            description=f"{c.id}: the night's totals, how to re-run, where the workbooks are",
        )
    except Exception as exc:  # noqa: BLE001 - the night is done and recorded; only the page lacks it
        log.info("the night's artifacts could not be published: %s", exc)


class _VerdictIsNoCrash(logging.Filter):
    """Drops the engine's "exited with unexpected exception" record of a Failed night: its
    exception is the verdict (``NightFailed``), whose count the run's page has already."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], NightFailed))


def quiet_verdicts() -> None:
    """Keep a Failed night's verdict from being logged as a traceback by the engine that runs
    a deployment (``khaosat serve``, a work pool's worker) when it takes the run's result."""
    for name in ("prefect.flow_runs", "prefect.engine"):
        logger = logging.getLogger(name)
        if not any(isinstance(f, _VerdictIsNoCrash) for f in logger.filters):
            logger.addFilter(_VerdictIsNoCrash())


class _RunPageOnly(logging.Filter):
    """Drops the run's own lines (``report``) from a console handler."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not getattr(record, RUN_PAGE_ONLY, False)


def keep_off_console() -> None:
    """Keep the run's own lines off Prefect's console handler: ``khaosat run`` prints them in
    its table; the run's page (the API handler) still gets them."""
    for handler in logging.getLogger().handlers:
        if isinstance(handler, PrefectConsoleHandler) and not any(
            isinstance(f, _RunPageOnly) for f in handler.filters
        ):
            handler.addFilter(_RunPageOnly())
