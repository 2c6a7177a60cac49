"""Publish: the draft báo cáo (``output/<campaign>_BAO_CAO.docx``) from the marts.

The outline is a Sở's (DOMAIN.md): I. tình hình chung, II. kết quả, III. ý kiến, IV. vấn đề
cần quan tâm và kiến nghị, then the Phụ lục of per-question tables and a last page on the run,
the data cut-off and the method. ``sections.py`` and ``comments.py`` build it as plain blocks
from the rows the workbooks read (``workbooks.data.read_campaign``), ``charts.py`` draws the
charts, ``document.py`` lays it out with python-docx; reading and writing happen here only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import sqlalchemy as sa

from flows.alerts import Thresholds
from flows.publish.report.blocks import Block, PageBreak, Signature
from flows.publish.report.comments import comment_section
from flows.publish.report.document import Front, build_document, save_document
from flows.publish.report.sections import (
    appendix,
    concerns,
    join,
    method,
    overview,
    results,
)
from flows.publish.workbooks.data import CampaignData, province_scope, read_campaign
from flows.publish.workbooks.figures import summarise
from flows.publish.xlsx import safe_file_part
from schemas.questionnaire import Questionnaire

#: Who a Sở's report goes to, for the officer to adjust before signing.
RECIPIENTS = [
    "- UBND tỉnh (để báo cáo);",
    "- Bộ GDĐT (để báo cáo);",
    "- Lãnh đạo Sở;",
    "- Các phòng, đơn vị thuộc Sở;",
    "- Lưu: VT.",
]


def report_path(output_dir: Path, campaign_id: str) -> Path:
    """``output_dir/<campaign_id>_BAO_CAO.docx``, the campaign id made safe for a file name."""
    return output_dir / f"{safe_file_part(campaign_id)}_BAO_CAO.docx"


def report_blocks(data: CampaignData) -> list[Block]:
    """The report's body, in order, from the campaign's rows and its comment mart."""
    province = province_scope(data)
    groups = summarise(data, province)
    names = {code: q.name for code, q in data.questionnaires.items()}  # tells the levels apart
    themes = [t for t in data.comment_themes if t.scope == "province"]
    quotes = [q for q in data.comment_quotes if q.scope == "province"]
    return join(
        [
            overview(data, province, groups),
            results(data, groups),
            comment_section(themes, quotes, names),
            concerns(data),
            [Signature(RECIPIENTS, "GIÁM ĐỐC"), PageBreak(landscape=True)],
            appendix(data, province),
            [PageBreak(landscape=False)],
            method(data),
        ]
    )


def front_of(data: CampaignData) -> Front:
    """The first page's header block and title."""
    return Front(
        issuer_parent="UBND TỈNH ……………",
        issuer="SỞ GIÁO DỤC VÀ ĐÀO TẠO",
        title="BÁO CÁO",
        subject=[
            "Kết quả khảo sát sự hài lòng của người dân",
            "đối với dịch vụ giáo dục công",
            f"năm học {data.school_year}" if data.school_year else data.name,
        ],
        doc_title=f"Báo cáo kết quả khảo sát: {data.name}",
    )


def write_report(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
) -> Path:
    """Write the campaign's draft báo cáo to ``report_path(output_dir, campaign_id)``.

    Arguments as ``workbooks.plan_workbooks``: the report shows the rows the workbooks show,
    with the same thresholds, follow-up actions and run stamp."""
    data = read_campaign(
        engine, campaign_id, questionnaires, run_id=run_id, thresholds=thresholds, actions=actions
    )
    doc = build_document(front_of(data), report_blocks(data))
    return save_document(doc, report_path(output_dir, campaign_id))
