"""Publish: the leadership workbooks, written with openpyxl from the marts.

One workbook per reporting unit, ``<campaign_id>_<unit_code>.xlsx``, and one for the province,
``<campaign_id>_<province_code>.xlsx``. Each sheet is a module here (summary, dimensions,
questions, schools, services, papi, yoy, alerts with its detail sheet, info): a function taking
the workbook, the campaign's data (``data.CampaignData``) and the scope. Figures are written
unrounded, and any figure from fewer than ``labels.MIN_RESPONDENTS`` respondents as ``"<5"``
(DOMAIN.md, Privacy).
Output is reproducible: the same warehouse gives byte-identical files; between two runs over
the same data only the run stamp on "Thông tin" (``labels.STAMP_LABELS``) differs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import sqlalchemy as sa
from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.alerts import Thresholds
from flows.publish.workbooks.alerts import write_alert_detail_sheet, write_alert_sheet
from flows.publish.workbooks.comments import write_comment_sheet
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
    province_scope,
    read_campaign,
    unit_scope,
)
from flows.publish.workbooks.dimensions import write_dimension_sheet
from flows.publish.workbooks.info import write_info_sheet
from flows.publish.workbooks.papi import write_papi_sheet
from flows.publish.workbooks.questions import write_question_sheet
from flows.publish.workbooks.schools import write_school_sheet
from flows.publish.workbooks.services import write_service_sheet
from flows.publish.workbooks.summary import write_summary_sheet
from flows.publish.workbooks.yoy import write_yoy_sheet
from flows.publish.xlsx import safe_file_part, save_workbook
from schemas.questionnaire import Questionnaire

#: Writes one sheet of a workbook.
SheetWriter = Callable[[Workbook, CampaignData, Scope], Worksheet | None]

#: Sheets of every workbook, in tab order.
SHEETS: tuple[SheetWriter, ...] = (
    write_summary_sheet,
    write_dimension_sheet,
    write_question_sheet,
    write_school_sheet,
    write_service_sheet,
    write_papi_sheet,
    write_yoy_sheet,
    write_comment_sheet,
    write_alert_sheet,
    write_alert_detail_sheet,
    write_info_sheet,
)


def _expects(data: CampaignData, scope: Scope, kind: str) -> bool:
    """True when a questionnaire of ``kind`` is meant for a level of the scope's schools."""
    levels = {data.schools[code]["level"] for code in scope.school_codes if code in data.schools}
    return any(q.kind == kind and levels & set(q.levels) for q in data.questionnaires.values())


def shows_sheet(sheet: SheetWriter, data: CampaignData, scope: Scope) -> bool:
    """Whether the scope's workbook has ``sheet``: a page with nothing for the scope is left
    out. PAPI and the service review only where a questionnaire of theirs is meant for the
    scope's schools (or figures exist anyway): the Sở's own THPT/GDTX unit has no PAPI."""
    if sheet is write_papi_sheet:
        return _expects(data, scope, "papi") or any(
            r["scope"] == "school" and scope.has_school(r["scope_code"]) for r in data.papi
        )
    if sheet is write_service_sheet:
        return _expects(data, scope, "service_review") or any(
            r["unit_code"] in scope.unit_codes for r in data.services
        )
    return True


def build_workbook(data: CampaignData, scope: Scope) -> Workbook:
    """The workbook of one scope, in memory: the sheets of ``SHEETS`` it shows."""
    wb = Workbook()
    default = wb.active
    for sheet in SHEETS:
        if shows_sheet(sheet, data, scope):
            sheet(wb, data, scope)
    if default is not None:
        wb.remove(default)
    wb.active = 0
    wb.properties.title = f"{data.name} · {scope.name}"
    return wb


def unit_workbook_path(output_dir: Path, campaign_id: str, unit_code: str) -> Path:
    """``output_dir/<campaign_id>_<unit_code>.xlsx`` with both parts safe for a file name."""
    return output_dir / f"{safe_file_part(campaign_id)}_{safe_file_part(unit_code)}.xlsx"


def province_workbook_path(output_dir: Path, campaign_id: str, province_code: str) -> Path:
    """``output_dir/<campaign_id>_<province_code>.xlsx``."""
    return unit_workbook_path(output_dir, campaign_id, province_code)


def plan_workbooks(
    engine: sa.Engine,
    campaign_id: str,
    output_dir: Path,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
) -> tuple[CampaignData, list[tuple[Scope, Path]]]:
    """The campaign's data and the (scope, path) of every workbook: the province's first,
    then the units' by unit code.

    Units come from the ``unit`` table (a unit with no figures yet still gets a workbook
    saying so) plus any unit found only in mart_unit_dimension. ``run_id`` is the run whose
    stamp and ledger the workbooks carry (default: the campaign's latest run); ``thresholds``
    is khaosat.yaml ``thresholds`` or a ``flows.alerts.Thresholds``: the alert rules' own, so
    colours and flags agree with the alerts (an unknown key raises ``ThresholdError``);
    ``actions`` is khaosat.yaml ``actions``, the follow-up the Cảnh báo sheet suggests for
    each alert. Labels and item wording come from ``questionnaires``.
    """
    data = read_campaign(
        engine, campaign_id, questionnaires, run_id=run_id, thresholds=thresholds, actions=actions
    )
    province = province_scope(data)
    units = [unit_scope(data, code) for code in province.unit_codes]
    province_path = province_workbook_path(output_dir, campaign_id, data.province_code)
    unit_paths = [unit_workbook_path(output_dir, campaign_id, u.code) for u in units]
    if province_path in unit_paths:
        # A unit coded like the province must not overwrite (or be overwritten by) it.
        province_path = province_path.with_name(province_path.stem + "_toan-tinh.xlsx")
    return data, [(province, province_path), *zip(units, unit_paths, strict=True)]


def write_scopes(data: CampaignData, jobs: Sequence[tuple[Scope, Path]]) -> list[Path]:
    """Build and save the workbook of each (scope, path); the paths written, in order."""
    return [write_scope(data, scope, path) for scope, path in jobs]


def write_scope(data: CampaignData, scope: Scope, path: Path) -> Path:
    """Build and save the workbook of ``scope`` to ``path``."""
    return save_workbook(build_workbook(data, scope), path)
