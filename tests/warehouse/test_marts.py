"""Every mart from a handful of hand-made answers, on SQLite and PostgreSQL (STYLE.md practice 9).

The registry: unit U1 holds S1, S2 (TH) and S5 (THCS); unit U2 holds S3 (TH). The expected rows
below are worked out by hand from the answers in ``loaded``; each figure's arithmetic is in the
comment beside it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from schemas.questionnaire import Item, Questionnaire
from schemas.records import Fetched, School, Source
from tests.factories import make_campaign, make_parsed, table_rows
from warehouse import tables as t
from warehouse.ledger import record_failure, start_run
from warehouse.load import replace_source
from warehouse.marts import ensure_figures, province_dimension, rebuild_marts
from warehouse.registry import sync_registry

CAMPAIGN = make_campaign()  # deadline 2024-11-30
C = CAMPAIGN.id
DEADLINE_AT = CAMPAIGN.deadline_at
AFTER_DEADLINE = dt.datetime(2024, 12, 5, 1, 30)
BEFORE_DEADLINE = dt.datetime(2024, 11, 20, 1, 30)

SAT = Questionnaire(
    code="SAT",
    version="1",
    name="Phiếu khảo sát cha mẹ học sinh",
    respondent="Cha mẹ học sinh",
    kind="satisfaction",
    levels=("TH", "THCS"),
    required=True,
    dimensions={"TIEP_CAN": "Tiếp cận", "CSVC": "Cơ sở vật chất", "CHUNG": "Hài lòng chung"},
    items=(
        Item(code="LOP", text="Lớp", kind="text"),
        Item(code="A1", text="Thông tin tuyển sinh", kind="likert", dimension="TIEP_CAN"),
        Item(code="A2", text="Thủ tục nhập học", kind="likert", dimension="TIEP_CAN"),
        Item(code="B1", text="Phòng học", kind="likert", dimension="CSVC"),
        Item(code="CHUNG", text="Hài lòng chung", kind="likert", dimension="CHUNG"),
        Item(code="MONG_DOI", text="Đáp ứng mong đợi (%)", kind="percent"),
        Item(code="Y_KIEN", text="Ý kiến", kind="text"),
    ),
)
PAPI = Questionnaire(
    code="PAPI",
    version="1",
    name="Chỉ số PAPI",
    respondent="Cha mẹ học sinh",
    kind="papi",
    levels=("TH",),
    required=False,
    items=(
        Item(code="K1", text="Lớp học là nhà kiên cố", kind="yesno"),
        Item(code="K2", text="Nhà vệ sinh sạch sẽ", kind="yesno"),
    ),
)
SVC = Questionnaire(
    code="SVC",
    version="1",
    name="Rà soát dịch vụ",
    respondent="Hội đồng",
    kind="service_review",
    levels=("TH", "THCS"),
    required=False,
    service_item="DICH_VU",
    # Three criteria keep the arithmetic short; the SQL sums whatever level items there are.
    items=(
        Item(code="DICH_VU", text="Dịch vụ", kind="text"),
        Item(code="C1", text="Chất lượng", kind="level"),
        Item(code="C2", text="Giá cả", kind="level"),
        Item(code="C3", text="Kịp thời", kind="level"),
    ),
)

SCHOOLS = [
    School(code="S1", name="Trường 1", level="TH", unit_code="U1", unit_name="Phường 1"),
    School(code="S2", name="Trường 2", level="TH", unit_code="U1", unit_name="Phường 1"),
    School(code="S3", name="Trường 3", level="TH", unit_code="U2", unit_name="Xã 2"),
    School(code="S5", name="Trường 5", level="THCS", unit_code="U1", unit_name="Phường 1"),
]


def src(school: str, questionnaire: str, location: str | None = None) -> Source:
    return Source(
        school_code=school,
        questionnaire=questionnaire,
        kind="excel",
        location=location or f"{school}-{questionnaire}.xlsx",
    )


ON_TIME = dt.datetime(2024, 11, 20, 10, 0)
LATE = dt.datetime(2024, 12, 2, 7, 0)

# fmt: off
#: source -> (modified_at, rows). A str is an unreadable answer; a missing key an empty cell.
SUBMISSIONS: dict[Source, tuple[dt.datetime | None, list[dict[str, Any]]]] = {
    src("S1", "SAT"): (ON_TIME, [
        {"LOP": "3A", "A1": 5, "A2": 4, "B1": 2, "CHUNG": 4, "MONG_DOI": 80},
        {"LOP": "3B", "A1": 3, "B1": 5, "CHUNG": 5, "MONG_DOI": 90},  # A2 left empty
        {"LOP": "3C", "A1": "abc", "A2": 7, "B1": "?", "CHUNG": 0},  # nothing valid
    ]),
    src("S2", "SAT"): (LATE, [
        {"A1": 4, "A2": 4, "B1": 1, "CHUNG": 3, "MONG_DOI": 50},
        {"A1": 2, "A2": 5, "B1": 4, "CHUNG": 4, "MONG_DOI": 120},  # 120% is not valid
    ]),
    src("S3", "SAT"): (None, [
        {"A1": 1, "A2": 2, "B1": 3, "CHUNG": 2, "MONG_DOI": 30},
    ]),
    # An old sheet of S3's, dropped from sources.csv: its rows must count nowhere.
    src("S3", "SAT", "S3-old.xlsx"): (ON_TIME, [
        {"A1": 5, "A2": 5, "B1": 5, "CHUNG": 5, "MONG_DOI": 100},
    ]),
    src("S1", "PAPI"): (ON_TIME, [
        {"K1": 1, "K2": 0},
        {"K1": 1, "K2": 1},
        {"K1": 0},
    ]),
    src("S3", "PAPI"): (ON_TIME, [
        {"K1": 0, "K2": "không rõ"},
    ]),
    src("S1", "SVC"): (ON_TIME, [
        {"DICH_VU": "Bán trú", "C1": 10, "C2": 7, "C3": 5},
        {"DICH_VU": "Nước uống", "C1": 10, "C2": 10, "C3": 10},
    ]),
    src("S2", "SVC"): (ON_TIME, [
        {"DICH_VU": "Bán trú", "C1": 10, "C2": 7, "C3": 5},
        {"DICH_VU": "Nước uống", "C1": 7, "C2": 7, "C3": 7},
    ]),
    src("S5", "SVC"): (ON_TIME, [
        {"DICH_VU": "Bán trú", "C1": 5, "C2": 5, "C3": 5},
    ]),
    src("S3", "SVC"): (ON_TIME, [
        {"DICH_VU": "Bán trú", "C1": 3, "C2": 0, "C3": 4},  # 4 is not a level
    ]),
}
# fmt: on
#: A PAPI source that has never loaded: its only ledger row is a failure.
FAILED = src("S2", "PAPI")
RETIRED = src("S3", "SAT", "S3-old.xlsx")
QUESTIONNAIRES = {"SAT": SAT, "PAPI": PAPI, "SVC": SVC}


def _rejection(row: int, col: int, raw: str, code: str) -> dict[str, Any]:
    return {
        "scope": "value",
        "sheet": "Câu trả lời 1",
        "row": row,
        "col": col,
        "question_code": code,
        "raw_value": raw,
        "rule": "label",
        "reason": f"'{raw}' is not an answer",
        "response_no": row - 1,
    }


#: Quarantine rows parse/validate would have written for S1's SAT sheet (third respondent).
S1_SAT_REJECTIONS = [_rejection(4, 4, "abc", "A1"), _rejection(4, 6, "?", "B1")]


@pytest.fixture
def loaded(engine: Engine) -> Engine:
    everything = [*SUBMISSIONS, FAILED]
    sync_registry(engine, CAMPAIGN, SCHOOLS, QUESTIONNAIRES, sources=everything)
    start_run(engine, "r1", C)
    for source, (modified_at, rows) in SUBMISSIONS.items():
        parsed = make_parsed(
            QUESTIONNAIRES[source.questionnaire],
            [{"service": r.get("DICH_VU"), **r} for r in rows],
            rejections=S1_SAT_REJECTIONS if source == src("S1", "SAT") else (),
        )
        got = Fetched(
            source=source,
            content=b"",
            fingerprint=source.location,
            archive_path=Path("archive") / source.location,
            filename=source.location,
            modified_at=modified_at,
        )
        replace_source(engine, C, "r1", got, parsed)
    record_failure(engine, C, "r1", FAILED, "S2 S2-PAPI.xlsx: not a workbook")
    # Next night's registry no longer lists the old sheet.
    sync_registry(
        engine, CAMPAIGN, SCHOOLS, QUESTIONNAIRES, sources=[s for s in everything if s != RETIRED]
    )
    return engine


def rows(engine: Engine, table: sa.Table) -> list[dict[str, Any]]:
    keys = [c for c in table.primary_key.columns]
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(table).order_by(*keys))]


def assert_rows(actual: Sequence[Mapping[Any, Any]], expected: Sequence[dict[str, Any]]) -> None:
    """Row by row, floats to 1e-9 relative (the backends round the last digit differently)."""
    assert [{k: r[k] for k in e} for r, e in zip(actual, expected, strict=False)] == [
        pytest.approx(e, rel=1e-9) for e in expected
    ]
    assert len(actual) == len(expected)


def dim(
    key: dict[str, Any],
    dimension: str,
    n_resp: int,
    n_ans: int,
    mean: float,
    sat: float | None,
    dis: float | None,
) -> dict[str, Any]:
    return {
        "campaign_id": C,
        **key,
        "questionnaire": "SAT",
        "dimension": dimension,
        "n_respondents": n_resp,
        "n_answers": n_ans,
        "mean_score": mean,
        "pct_satisfied": sat,
        "pct_dissatisfied": dis,
    }


@pytest.mark.slow
def test_rebuild_reports_rows_written(loaded: Engine) -> None:
    written = rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    assert written == {
        "mart_school_dimension": 12,
        "mart_unit_dimension": 8,
        "mart_unit_question": 8,
        "mart_papi": 8,
        "mart_service_ranking": 6,
        "mart_completeness": 11,
    }


@pytest.mark.slow
def test_school_dimension(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    s1, s2, s3 = {"school_code": "S1"}, {"school_code": "S2"}, {"school_code": "S3"}
    # S1's third respondent has no valid answer, so S1 has 2 respondents in every dimension.
    assert_rows(
        rows(loaded, t.mart_school_dimension),
        [
            dim(s1, "CHUNG", 2, 2, 4.5, 100.0, 0.0),  # 4, 5
            dim(s1, "CSVC", 2, 2, 3.5, 50.0, 50.0),  # 2, 5
            dim(s1, "MONG_DOI", 2, 2, 85.0, None, None),  # 80, 90
            dim(s1, "TIEP_CAN", 2, 3, 4.0, 200 / 3, 0.0),  # 5, 4, 3 (A2 empty for the 2nd)
            dim(s2, "CHUNG", 2, 2, 3.5, 50.0, 0.0),  # 3, 4
            dim(s2, "CSVC", 2, 2, 2.5, 50.0, 50.0),  # 1, 4
            dim(s2, "MONG_DOI", 1, 1, 50.0, None, None),  # 50 (120 invalid)
            dim(s2, "TIEP_CAN", 2, 4, 3.75, 75.0, 25.0),  # 4, 4, 2, 5
            dim(s3, "CHUNG", 1, 1, 2.0, 0.0, 100.0),  # 2 (the retired sheet's 5s do not count)
            dim(s3, "CSVC", 1, 1, 3.0, 0.0, 0.0),  # 3
            dim(s3, "MONG_DOI", 1, 1, 30.0, None, None),  # 30
            dim(s3, "TIEP_CAN", 1, 2, 1.5, 0.0, 100.0),  # 1, 2
        ],
    )


@pytest.mark.slow
def test_unit_dimension(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)

    def unit(code: str, n_schools: int) -> dict[str, Any]:
        return {"unit_code": code, "level": "TH", "n_schools": n_schools}

    u1, u2 = unit("U1", 2), unit("U2", 1)
    assert_rows(
        rows(loaded, t.mart_unit_dimension),
        [
            dim(u1, "CHUNG", 4, 4, 4.0, 75.0, 0.0),  # 4, 5, 3, 4
            dim(u1, "CSVC", 4, 4, 3.0, 50.0, 50.0),  # 2, 5, 1, 4
            dim(u1, "MONG_DOI", 3, 3, 220 / 3, None, None),  # 80, 90, 50
            # pooled, not a mean of the schools' rates: 5, 4, 3, 4, 4, 2, 5 -> 27/7, 5/7, 1/7
            dim(u1, "TIEP_CAN", 4, 7, 27 / 7, 500 / 7, 100 / 7),
            dim(u2, "CHUNG", 1, 1, 2.0, 0.0, 100.0),
            dim(u2, "CSVC", 1, 1, 3.0, 0.0, 0.0),
            dim(u2, "MONG_DOI", 1, 1, 30.0, None, None),
            dim(u2, "TIEP_CAN", 1, 2, 1.5, 0.0, 100.0),
        ],
    )


@pytest.mark.slow
def test_unit_question(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)

    def q(unit: str, code: str, counts: list[int], mean: float, sat: float) -> dict[str, Any]:
        return {
            "campaign_id": C,
            "unit_code": unit,
            "level": "TH",
            "questionnaire": "SAT",
            "question_code": code,
            "n_answers": sum(counts),
            **{f"n_{k}": n for k, n in enumerate(counts, start=1)},
            "mean_score": mean,
            "pct_satisfied": sat,
        }

    assert_rows(
        rows(loaded, t.mart_unit_question),
        [
            q("U1", "A1", [0, 1, 1, 1, 1], 3.5, 50.0),  # 5, 3, 4, 2
            q("U1", "A2", [0, 0, 0, 2, 1], 13 / 3, 100.0),  # 4, 4, 5 (7 invalid)
            q("U1", "B1", [1, 1, 0, 1, 1], 3.0, 50.0),  # 2, 5, 1, 4
            q("U1", "CHUNG", [0, 0, 1, 2, 1], 4.0, 75.0),  # 4, 5, 3, 4 (0 invalid)
            q("U2", "A1", [1, 0, 0, 0, 0], 1.0, 0.0),
            q("U2", "A2", [0, 1, 0, 0, 0], 2.0, 0.0),
            q("U2", "B1", [0, 0, 1, 0, 0], 3.0, 0.0),
            q("U2", "CHUNG", [0, 1, 0, 0, 0], 2.0, 0.0),
        ],
    )


def test_papi(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)

    def p(scope: str, code: str, indicator: str, n: int, pct: float) -> dict[str, Any]:
        return {
            "campaign_id": C,
            "scope": scope,
            "scope_code": code,
            "indicator": indicator,
            "n_answers": n,
            "pct_yes": pct,
        }

    assert_rows(
        rows(loaded, t.mart_papi),
        [
            p("province", "HCM", "K1", 4, 50.0),  # 1, 1, 0 | 0
            p("province", "HCM", "K2", 2, 50.0),  # 0, 1 | unreadable
            p("school", "S1", "K1", 3, 200 / 3),
            p("school", "S1", "K2", 2, 50.0),
            p("school", "S3", "K1", 1, 0.0),  # S3 has no valid K2: no row
            p("unit", "U1", "K1", 3, 200 / 3),
            p("unit", "U1", "K2", 2, 50.0),
            p("unit", "U2", "K1", 1, 0.0),
        ],
    )
    assert len(rows(loaded, t.mart_papi)) == 8


def test_service_ranking(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)

    def r(unit: str, service: str, school: str, total: float, rank: int) -> dict[str, Any]:
        return {
            "campaign_id": C,
            "unit_code": unit,
            "service": service,
            "school_code": school,
            "total_points": total,
            "rank": rank,
        }

    assert_rows(
        rows(loaded, t.mart_service_ranking),
        [
            r("U1", "Bán trú", "S1", 22.0, 1),  # 10 + 7 + 5
            r("U1", "Bán trú", "S2", 22.0, 1),  # tie: shares rank 1
            r("U1", "Bán trú", "S5", 15.0, 3),  # after a tie for 1st comes 3rd
            r("U1", "Nước uống", "S1", 30.0, 1),
            r("U1", "Nước uống", "S2", 21.0, 2),
            r("U2", "Bán trú", "S3", 3.0, 1),  # 3 + 0; the invalid 4 does not count
        ],
    )


def test_completeness_after_the_deadline(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    with loaded.connect() as conn:
        loaded_at = {
            location: finished_at
            for location, finished_at in conn.execute(
                sa.select(t.load_ledger.c.location, t.load_ledger.c.finished_at).where(
                    t.load_ledger.c.status == "loaded"
                )
            )
        }

    def c(school: str, q: str, status: str, n_valid: int, n_rejected: int = 0) -> dict[str, Any]:
        location = f"{school}-{q}.xlsx"
        return {
            "campaign_id": C,
            "school_code": school,
            "questionnaire": q,
            "status": status,
            "n_valid": n_valid,
            "n_rejected": n_rejected,
            "last_loaded_at": loaded_at.get(location),
        }

    assert_rows(
        rows(loaded, t.mart_completeness),
        [
            c("S1", "PAPI", "submitted", 3),
            c("S1", "SAT", "submitted", 2, 2),  # 3rd respondent invalid; 2 quarantined values
            c("S1", "SVC", "submitted", 2),
            c("S2", "PAPI", "failed", 0, 1),  # the failure's quarantine row
            c("S2", "SAT", "late", 2),  # modified 2024-12-02, after the deadline
            c("S2", "SVC", "submitted", 2),
            c("S3", "PAPI", "submitted", 1),
            c("S3", "SAT", "submitted", 1),  # no modified time: taken as on time
            c("S3", "SVC", "submitted", 1),
            c("S5", "SAT", "missing", 0),  # required of THCS, no source at all
            c("S5", "SVC", "submitted", 1),
        ],
    )


def test_completeness_before_the_deadline_is_pending(loaded: Engine) -> None:
    rebuild_marts(loaded, C, BEFORE_DEADLINE, DEADLINE_AT)
    status = {
        (r["school_code"], r["questionnaire"]): r["status"]
        for r in rows(loaded, t.mart_completeness)
    }
    assert status[("S5", "SAT")] == "pending"
    assert status[("S2", "PAPI")] == "failed"


def test_rebuild_replaces_only_this_campaigns_rows(loaded: Engine) -> None:
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    first = {tb.name: table_rows(loaded, tb) for tb in t.MART_TABLES}
    with loaded.begin() as conn:
        conn.execute(
            t.mart_papi.insert().values(
                campaign_id="OTHER",
                scope="province",
                scope_code="X",
                indicator="K1",
                n_answers=1,
                pct_yes=0.0,
            )
        )
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    again = {tb.name: table_rows(loaded, tb) for tb in t.MART_TABLES}
    other = [r for r in again["mart_papi"] if r["campaign_id"] == "OTHER"]
    again["mart_papi"] = [r for r in again["mart_papi"] if r["campaign_id"] == C]
    assert again == first and len(other) == 1


def test_province_dimension(loaded: Engine) -> None:
    frame = province_dimension(loaded, C)
    # NaN is how the frame says "not applicable" (MONG_DOI's percentages).
    got = frame.astype(object).where(frame.notna(), None).to_dict("records")
    th = {"level": "TH", "n_schools": 3}

    def row(dimension: str, *figures: Any) -> dict[str, Any]:
        d = dim(th, dimension, *figures)
        del d["campaign_id"]
        return d

    assert_rows(
        got,
        [
            row("CHUNG", 5, 5, 18 / 5, 60.0, 20.0),  # 4, 5, 3, 4, 2
            row("CSVC", 5, 5, 3.0, 40.0, 40.0),  # 2, 5, 1, 4, 3
            row("MONG_DOI", 4, 4, 62.5, None, None),  # 80, 90, 50, 30
            # 5, 4, 3, 4, 4, 2, 5, 1, 2: 30/9; satisfied 5 of 9, dissatisfied 3 of 9
            row("TIEP_CAN", 5, 9, 30 / 9, 500 / 9, 300 / 9),
        ],
    )
    assert list(frame.columns) == [
        "level",
        "questionnaire",
        "dimension",
        "n_schools",
        "n_respondents",
        "n_answers",
        "mean_score",
        "pct_satisfied",
        "pct_dissatisfied",
    ]


@pytest.mark.slow
def test_figures_from_stored_answers_equal_those_written_at_load(loaded: Engine) -> None:
    """A warehouse loaded before the figure tables existed gets the same figures on upgrade."""
    at_load = {tb.name: table_rows(loaded, tb) for tb in t.FIGURE_TABLES}
    assert at_load["figure_source"], "replace_source writes figures"
    with loaded.begin() as conn:
        for table in t.FIGURE_TABLES:
            conn.execute(sa.delete(table))
    assert ensure_figures(loaded, C) == len(at_load["figure_source"])
    assert {tb.name: table_rows(loaded, tb) for tb in t.FIGURE_TABLES} == at_load
    assert ensure_figures(loaded, C) == 0  # nothing left to compute


@pytest.mark.slow
def test_an_item_moving_dimension_recomputes_the_figures(loaded: Engine) -> None:
    def unit_th(dimension: str) -> dict[str, Any]:
        return next(
            r
            for r in rows(loaded, t.mart_unit_dimension)
            if (r["unit_code"], r["level"], r["dimension"]) == ("U1", "TH", dimension)
        )

    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    tiep_can, csvc = unit_th("TIEP_CAN"), unit_th("CSVC")
    # schemas/ now puts B1 under TIEP_CAN; the next run's registry sync drops stale figures
    items = tuple(
        i.model_copy(update={"dimension": "TIEP_CAN"}) if i.code == "B1" else i for i in SAT.items
    )
    moved = {**QUESTIONNAIRES, "SAT": SAT.model_copy(update={"items": items})}
    active = [s for s in [*SUBMISSIONS, FAILED] if s != RETIRED]
    sync_registry(loaded, CAMPAIGN, SCHOOLS, moved, sources=active)
    assert table_rows(loaded, t.figure_source) == []
    rebuild_marts(loaded, C, AFTER_DEADLINE, DEADLINE_AT)
    assert "CSVC" not in {r["dimension"] for r in rows(loaded, t.mart_unit_dimension)}
    merged = unit_th("TIEP_CAN")
    assert merged["n_answers"] == tiep_can["n_answers"] + csvc["n_answers"]
    total = tiep_can["mean_score"] * tiep_can["n_answers"] + csvc["mean_score"] * csvc["n_answers"]
    assert merged["mean_score"] == pytest.approx(total / merged["n_answers"])
