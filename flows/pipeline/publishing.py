"""Publishing a campaign: marts, alerts, the leadership workbooks, the schools' feedback and
the draft báo cáo.

``publish_all`` skips the whole step when nothing it depends on changed since the last publish
(``_publish_inputs``, stored in the warehouse's meta under ``published:<campaign id>``).
"""

from __future__ import annotations

import datetime as dt
import importlib.metadata
import json
import logging
from pathlib import Path

from flows.comments import load_codebook
from flows.pipeline.context import Context
from flows.pipeline.faults import stop_if_signalled
from flows.pipeline.pools import Beside, parse_pool
from flows.pipeline.tasks import (
    build_marts,
    finish_comment_mart,
    leadership_outputs,
    publish_feedback,
    publish_workbooks,
    raise_alerts,
    start_comment_mart,
)
from flows.privacy import mask_personal
from flows.publish.report import report_path, write_report
from warehouse import alerts as warehouse_alerts
from warehouse import marts

log = logging.getLogger(__name__)


def publish_all(
    ctx: Context, now: dt.datetime, *, skip_unchanged: bool = False
) -> tuple[list[Path], list[Path]] | None:
    """Marts, then alerts on them, then the workbooks, the schools' feedback and the report.

    With ``skip_unchanged`` nothing is rebuilt when the warehouse, the settings and the side of
    the deadline are what the last publish saw and its files are still there: a quiet night
    then rebuilds nothing. Returns None when it skipped.
    """
    if skip_unchanged:
        stored = json.loads(marts.last_publish(ctx.engine, ctx.campaign_id) or "{}")
        kept = ("workbooks", "feedback", "report")
        files = [Path(p) for key in kept for p in stored.get(key, [])]
        if stored.get("inputs") == _publish_inputs(ctx, now) and all(p.exists() for p in files):
            warehouse_alerts.mark_seen(ctx.engine, ctx.campaign_id, now)
            return None
    # The comments are tallied in a parse and a load process, and the report written in a
    # parse process (when there are), beside what this thread does meanwhile: each would
    # otherwise hold one core alone.
    stop_if_signalled()
    comments = start_comment_mart(ctx)
    build_marts(ctx, now)
    raise_alerts(ctx, now)
    finish_comment_mart(ctx, comments)
    stop_if_signalled()
    report = start_report(ctx)
    workbooks, feedback = publish_workbooks(ctx), publish_feedback(ctx)
    state = {
        "inputs": _publish_inputs(ctx, now),
        "workbooks": [str(p) for p in workbooks],
        "feedback": [str(p) for p in feedback],
        # Recorded even when it failed, so that the next night writes the missing report again.
        "report": [str(finish_report(ctx, report))],
    }
    marts.record_publish(ctx.engine, ctx.campaign_id, json.dumps(state, ensure_ascii=False))
    return workbooks, feedback


def start_report(ctx: Context) -> Beside[Path]:
    """Start writing the draft báo cáo from the marts, alerts and comment mart, in a parse
    process beside the workbooks (``finish_report`` waits for it)."""
    return Beside(parse_pool(ctx.settings), ctx.engine, write_report, **leadership_outputs(ctx))


def finish_report(ctx: Context, started: Beside[Path]) -> Path:
    """The report's path once written; one logged line if it failed."""
    try:
        return started.result()
    except Exception as exc:  # noqa: BLE001 - the workbooks leadership reads are written: keep them
        log.warning(
            "the draft report was not written: %s", mask_personal(f"{type(exc).__name__}: {exc}")
        )
        return report_path(ctx.settings.output, ctx.campaign_id)


def _publish_inputs(ctx: Context, now: dt.datetime) -> str:
    """What the published outputs depend on: the warehouse's inputs (``published_inputs``),
    the settings, the side of the deadline ``now`` is on, the previous campaign's publish
    (year-on-year figures), and the codebook's content (the comment mart)."""
    campaign = ctx.settings.campaign
    previous = marts.last_publish(ctx.engine, campaign.previous) if campaign.previous else ""
    return marts.published_inputs(
        ctx.engine,
        ctx.campaign_id,
        ctx.settings.model_dump(mode="json"),
        now > campaign.deadline_at,
        previous,
        importlib.metadata.version("khaosat"),
        load_codebook(ctx.settings.codebook_dir).fingerprint,
    )
