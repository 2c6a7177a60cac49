"""What a campaign's workbooks show (CampaignData) and what one workbook covers (Scope).

The rows come from ``warehouse.read_models`` once per publish; ``CampaignData.lookups``
indexes them by the keys the sheets look them up by.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import functools
from collections import defaultdict
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from flows.alerts import DigestLine, Thresholds
from schemas.comments import Quote, ThemeCount
from schemas.questionnaire import Questionnaire
from warehouse.comments import read_quotes, read_theme_counts
from warehouse.read_models import Row, read_campaign_rows


@dataclass
class CampaignData:
    """Every row the workbooks of one campaign show (marts are aggregates: this stays small)."""

    campaign_id: str
    name: str
    school_year: str
    opens: dt.date | None
    closes: dt.date | None
    deadline: dt.date | None
    previous_id: str | None
    province_code: str
    units: dict[str, str]
    schools: dict[str, Row]
    unit_dimension: list[Row]
    province_dimension: list[Row]
    unit_question: list[Row]
    school_dimension: list[Row]
    papi: list[Row]
    services: list[Row]
    completeness: list[Row]
    alerts: list[Row]
    sources: list[Row]
    run: Row | None
    previous_unit_dimension: list[Row]
    previous_province_dimension: list[Row]
    questionnaires: Mapping[str, Questionnaire]
    thresholds: dict[str, float]
    #: khaosat.yaml ``actions:``: the province's own follow-up actions (``action_for``).
    actions: dict[str, str] = dataclasses.field(default_factory=dict)
    #: The comment mart (warehouse.comments) of every scope: the Ý kiến sheets show it.
    comment_themes: list[ThemeCount] = dataclasses.field(default_factory=list)
    comment_quotes: list[Quote] = dataclasses.field(default_factory=list)
    #: files of folder sources not used, their school having a newer one.
    superseded: list[Row] = dataclasses.field(default_factory=list)

    @functools.cached_property
    def lookups(self) -> Lookups:
        """The rows above indexed by the keys the sheets look them up by, built on first use.

        Built once per campaign rather than scanning every mart for each unit, school and
        alert; the rows must not change after this is first read."""
        return Lookups(self)


def grouped(rows: Iterable[Row], *columns: str) -> dict[tuple[Any, ...], list[Row]]:
    """``rows`` grouped by the values of ``columns``, each group in the rows' order."""
    out: dict[tuple[Any, ...], list[Row]] = defaultdict(list)
    for r in rows:
        out[tuple(r[c] for c in columns)].append(r)
    return dict(out)


class Lookups:
    """A campaign's mart rows indexed for the sheets (``CampaignData._lookups``).

    Every group keeps the rows' original order, so a sheet that used to filter a whole mart
    finds the same rows in the same order."""

    def __init__(self, data: CampaignData) -> None:
        """Index ``data``'s rows."""
        self.unit_dimension = grouped(data.unit_dimension, "unit_code")
        self.unit_dimension_q = grouped(data.unit_dimension, "unit_code", "questionnaire")
        self.unit_question = grouped(data.unit_question, "unit_code")
        self.unit_question_item = grouped(
            data.unit_question, "unit_code", "level", "questionnaire", "question_code"
        )
        self.school_dimension = grouped(data.school_dimension, "questionnaire", "school_code")
        self.school_dimension_q = grouped(data.school_dimension, "school_code", "questionnaire")
        self.school_questionnaires = {r["questionnaire"] for r in data.school_dimension}
        self.completeness = grouped(data.completeness, "school_code", "questionnaire")
        # school_code -> n_valid per questionnaire, the last row winning as in a dict literal.
        self.n_valid: dict[str, dict[str, int]] = defaultdict(dict)
        for r in data.completeness:
            self.n_valid[r["questionnaire"]][r["school_code"]] = int(r["n_valid"] or 0)
        self.papi = grouped(data.papi, "scope", "scope_code", "indicator")
        self.known_items = {i.code for q in data.questionnaires.values() for i in q.items}
        self.subjects: dict[str, Subject] = {}
        self.subject_texts: dict[str, str] = {}
        # The rows flows.alerts.sample_size counts (completeness with the school's unit), and
        # the same by school and by unit: a digest line only counts its own school's or unit's.
        self.response_counts = [
            {**r, "unit_code": data.schools.get(r["school_code"], {}).get("unit_code")}
            for r in data.completeness
        ]
        self.response_counts_by = {
            "school": grouped(self.response_counts, "school_code"),
            "unit": grouped(self.response_counts, "unit_code"),
        }
        # (scope kind, scope code) -> its digest (workbooks.alerts.scope_digest): the summary
        # and the Cảnh báo sheet show the same one.
        self.digests: dict[tuple[str, str], list[tuple[DigestLine, int]]] = {}


def read_campaign(
    engine: sa.Engine,
    campaign_id: str,
    questionnaires: Mapping[str, Questionnaire],
    *,
    run_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    actions: Mapping[str, str] | None = None,
) -> CampaignData:
    """Read what the campaign's workbooks show: registry, marts, alerts, the run and ledger.

    ``run_id`` names the run whose stamp and ledger the workbooks carry (default: the latest
    run of the campaign). Each source's state is its latest ledger row up to that run, so a
    re-run of one school still reports every source.
    """
    rows = read_campaign_rows(engine, campaign_id, run_id)
    if not isinstance(thresholds, Thresholds):
        thresholds = Thresholds.from_mapping(thresholds)
    camp = rows.campaign or {}
    return CampaignData(
        campaign_id=campaign_id,
        name=camp.get("name") or campaign_id,
        school_year=camp.get("school_year") or "",
        opens=camp.get("opens"),
        closes=camp.get("closes"),
        deadline=camp.get("deadline"),
        previous_id=camp.get("previous_id"),
        province_code=camp.get("province_code") or "TINH",
        units={r["unit_code"]: r["unit_name"] or r["unit_code"] for r in rows.units},
        schools={r["school_code"]: r for r in rows.schools},
        unit_dimension=rows.unit_dimension,
        province_dimension=rows.province_dimension,
        unit_question=rows.unit_question,
        school_dimension=rows.school_dimension,
        papi=rows.papi,
        services=rows.services,
        completeness=rows.completeness,
        alerts=rows.alerts,
        sources=rows.sources,
        run=rows.run,
        previous_unit_dimension=rows.previous_unit_dimension,
        previous_province_dimension=rows.previous_province_dimension,
        questionnaires=questionnaires,
        thresholds=dataclasses.asdict(thresholds),
        actions=dict(actions or {}),
        comment_themes=read_theme_counts(engine, campaign_id),
        comment_quotes=read_quotes(engine, campaign_id),
        superseded=rows.superseded,
    )


@dataclass
class Scope:
    """What one workbook covers: a reporting unit, or the whole province."""

    kind: str  # "unit" | "province"
    code: str
    name: str
    unit_codes: list[str]
    school_codes: list[str] = field(default_factory=list)
    _schools: frozenset[str] = field(init=False, repr=False)

    def __post_init__(self) -> None:
        """Index the school codes."""
        self._schools = frozenset(self.school_codes)

    @property
    def is_province(self) -> bool:
        """True for the province's workbook."""
        return self.kind == "province"

    def has_school(self, code: str) -> bool:
        """True if the school belongs to the scope."""
        return code in self._schools


def unit_scope(data: CampaignData, unit_code: str) -> Scope:
    """The scope of one unit's workbook."""
    codes = sorted(c for c, s in data.schools.items() if s["unit_code"] == unit_code)
    return Scope("unit", unit_code, data.units.get(unit_code, unit_code), [unit_code], codes)


def province_scope(data: CampaignData) -> Scope:
    """The scope of the province workbook."""
    units = sorted(set(data.units) | {r["unit_code"] for r in data.unit_dimension})
    return Scope("province", data.province_code, "Toàn tỉnh", units, sorted(data.schools))


@dataclass(frozen=True)
class Subject:
    """An alert subject taken apart: "TH/CMHS_TH/CSVC/CS2" (unit), "CMHS_TH/CSVC" (school),
    "HOC_THEM" (PAPI), "Bán trú/C3" (service). Parts not recognised stay in ``rest``."""

    level: str | None
    questionnaire: str | None
    dimension: str | None
    item: str | None
    rest: tuple[str, ...]
