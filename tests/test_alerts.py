"""Alert rules as case tables (pure), the lifecycle on SQLite and PostgreSQL, and the CLI.

Rules are tested on hand-made rows with every boundary of DOMAIN.md's tiers; Wilson bounds are
worked out by hand in the comments. The lifecycle tests write mart rows by hand into a migrated
warehouse (``engine`` fixture: both backends), evaluate, change the marts, and evaluate again.
"""

from __future__ import annotations

import datetime as dt
import re
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import typer
from sqlalchemy.engine import Engine
from typer.testing import CliRunner

from flows import alerts as fa
from flows.alerts import (
    AMBER,
    INFO,
    RED,
    ThresholdError,
    Thresholds,
    action_for,
    completeness_alerts,
    evaluate_alerts,
    evaluate_rules,
    item_alerts,
    papi_alerts,
    rejection_alerts,
    sample_alerts,
    satisfaction_alerts,
    service_alerts,
    wilson_interval,
    yoy_alerts,
)
from flows.cli import alerts as alerts_cli
from flows.cli.alerts import alerts_app
from schemas.questionnaire import Item, Questionnaire
from schemas.records import Fetched, School, Source
from tests.factories import make_campaign, make_parsed
from warehouse import alert_actions as acts
from warehouse import alerts as wa
from warehouse import tables as t
from warehouse.alerts import (
    AlertCandidate,
    AlertError,
    AlertInputs,
    CompletenessFigures,
    CriterionFigures,
    DimensionFigures,
    ItemFigures,
    PapiFigures,
    ServiceFigures,
    SourceFigures,
)
from warehouse.ledger import start_run
from warehouse.load import replace_source
from warehouse.marts import rebuild_marts
from warehouse.registry import sync_registry

TH = Thresholds()


def keys(candidates: list[AlertCandidate]) -> set[tuple[Any, ...]]:
    """(rule, severity, threshold) of each candidate: what a case table compares."""
    return {(c.rule, c.severity, c.threshold) for c in candidates}


# ---------------------------------------------------------------------------------------------
# Wilson interval, by hand: p̂ = x/n, z = 1.96, z² = 3.8416,
#   centre = (p̂ + z²/2n) / (1 + z²/n),  half = z·√(p̂(1−p̂)/n + z²/4n²) / (1 + z²/n)


@pytest.mark.parametrize(
    ("pct", "n", "low", "high"),
    [
        # 5/10: 1 + z²/n = 1.38416; centre = 0.69208/1.38416 = 0.5;
        # half = 1.96·√(0.025 + 0.009604)/1.38416 = 1.96·0.186021/1.38416 = 0.263410
        (50.0, 10, 23.659, 76.341),
        # 0/10: centre = 0.19208/1.38416 = 0.138770; half = 1.96·√0.009604/1.38416 = 0.138770
        (0.0, 10, 0.0, 27.754),
        (100.0, 10, 72.246, 100.0),
        # 12/20: 1 + z²/n = 1.19208; centre = 0.69604/1.19208 = 0.583887;
        # half = 1.96·√(0.012 + 0.0024010)/1.19208 = 0.197309
        (60.0, 20, 38.658, 78.120),
        # 3/10: centre = 0.49208/1.38416 = 0.355508; half = 1.96·√(0.021 + 0.009604)/1.38416
        # = 0.247719
        (30.0, 10, 10.779, 60.323),
    ],
)
def test_wilson_interval_by_hand(pct: float, n: int, low: float, high: float) -> None:
    got = wilson_interval(pct, n)
    assert got == (pytest.approx(low, abs=1e-3), pytest.approx(high, abs=1e-3))


def test_wilson_interval_of_nothing_is_everything() -> None:
    assert wilson_interval(50.0, 0) == (0.0, 100.0)


# ---------------------------------------------------------------------------------------------
# Satisfaction: pct_satisfied red < 70, amber 70–85; mean_score red < 3.5; small samples


def dim(
    n: int,
    pct: float | None,
    mean: float | None = 4.0,
    *,
    scope: str = "school",
    code: str = "S1",
    dimension: str = "CSVC",
    questionnaire: str = "CMHS_TH",
    level: str | None = None,
) -> DimensionFigures:
    return DimensionFigures(scope, code, questionnaire, dimension, n, mean, pct, level=level)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (dim(100, 69.9), {("pct_satisfied_low", RED, 70.0)}),
        (dim(100, 70.0), {("pct_satisfied_low", AMBER, 85.0)}),  # 70 is amber, not red
        (dim(100, 84.99), {("pct_satisfied_low", AMBER, 85.0)}),
        (dim(100, 85.0), set()),  # the national target met
        (dim(100, 90.0, 3.49), {("mean_score_low", RED, 3.5)}),
        (dim(100, 90.0, 3.5), set()),
        (dim(100, 60.0, 3.0), {("pct_satisfied_low", RED, 70.0), ("mean_score_low", RED, 3.5)}),
        (dim(30, 69.0), {("pct_satisfied_low", RED, 70.0)}),  # 30 respondents is enough
        # small samples: never red; raised only if the Wilson upper bound is below a threshold
        (dim(10, 50.0, 3.0), {("pct_satisfied_low", AMBER, 85.0)}),  # upper 76.3: < 85, ≥ 70
        (dim(10, 0.0, 1.0), {("pct_satisfied_low", AMBER, 70.0)}),  # upper 27.8 < 70: amber
        (dim(20, 60.0), {("pct_satisfied_low", AMBER, 85.0)}),  # upper 78.1
        (dim(10, 90.0, 4.5), set()),
        (dim(10, 70.0), set()),  # upper 89.2 ≥ 85: cannot tell, insufficient sample instead
        (dim(100, None, 85.0, dimension="MONG_DOI"), set()),  # 0–100 mean, no rate
    ],
)
def test_satisfaction_rule(row: DimensionFigures, expected: set[tuple[Any, ...]]) -> None:
    assert keys(satisfaction_alerts([row], TH)) == expected


def test_small_sample_boundary_uses_the_upper_bound() -> None:
    # 69% of 29: z²/n = 0.132469; centre = 0.756234/1.132469 = 0.667776;
    # half = 1.96·√(0.0073759 + 0.0011420)/1.132469 = 0.159733; upper 82.75 (< 85), so amber
    # at 85, and not red although 69 < 70.
    _, upper = wilson_interval(69.0, 29)
    assert upper == pytest.approx(82.75, abs=0.01)
    (alert,) = satisfaction_alerts([dim(29, 69.0, 3.0)], TH)
    assert (alert.rule, alert.severity, alert.threshold, alert.value) == (
        "pct_satisfied_low",
        AMBER,
        85.0,
        69.0,
    )


def test_dimension_subjects_name_level_questionnaire_and_dimension() -> None:
    school = satisfaction_alerts([dim(100, 50.0)], TH)[0]
    unit = satisfaction_alerts([dim(100, 50.0, scope="unit", code="U1", level="THPT")], TH)[0]
    assert (school.scope, school.scope_code, school.subject) == ("school", "S1", "CMHS_TH/CSVC")
    assert (unit.scope, unit.scope_code, unit.subject) == ("unit", "U1", "THPT/CMHS_TH/CSVC")


@pytest.mark.parametrize(
    ("overrides", "row", "expected"),
    [
        ({"pct_satisfied_red": 60, "pct_satisfied_amber": 75}, dim(100, 65.0), {AMBER}),
        ({"pct_satisfied_red": 60, "pct_satisfied_amber": 75}, dim(100, 59.0), {RED}),
        ({"pct_satisfied_red": 60, "pct_satisfied_amber": 75}, dim(100, 80.0), set()),
        ({"min_respondents": 5}, dim(10, 50.0, 4.0), {RED}),  # 10 is enough now
        ({"wilson_z": 1.0}, dim(10, 70.0), {AMBER}),  # narrower interval: upper 82.1 < 85
    ],
)
def test_threshold_overrides(
    overrides: dict[str, float], row: DimensionFigures, expected: set[str]
) -> None:
    th = Thresholds.from_mapping(overrides)
    assert {a.severity for a in satisfaction_alerts([row], th)} == expected


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"pct_satisfied_rde": 60}, "unknown key(s) pct_satisfied_rde"),
        ({"pct_satisfied_red": 90}, "pct_satisfied_red must not be above"),
        ({"min_response_share": 10}, "min_response_share is a share"),
        ({"wilson_z": 0}, "wilson_z must be positive"),
    ],
)
def test_bad_thresholds_are_refused_by_name(overrides: dict[str, float], message: str) -> None:
    with pytest.raises(ThresholdError, match=message.replace("(", r"\(").replace(")", r"\)")):
        Thresholds.from_mapping(overrides)


def test_defaults_are_the_domain_tiers() -> None:
    assert (TH.pct_satisfied_red, TH.pct_satisfied_amber, TH.mean_score_red) == (70, 85, 3.5)
    assert (TH.item_pct_dissatisfied_red, TH.min_respondents, TH.yoy_drop_points) == (20, 30, 5)
    assert (TH.papi_pct_yes_min, TH.service_total_min, TH.service_criterion_poor) == (80, 40, 0)
    assert (TH.min_response_share, TH.max_rejected_share, TH.wilson_z) == (0.1, 0.1, 1.96)


# ---------------------------------------------------------------------------------------------
# Small samples, items, year on year


def test_insufficient_sample_per_questionnaire_uses_its_largest_dimension() -> None:
    rows = [
        dim(25, 90.0, dimension="CSVC"),
        dim(28, 90.0, dimension="CHUNG"),
        dim(40, 90.0, scope="unit", code="U1", level="TH"),
        dim(12, 90.0, scope="unit", code="U2", level="TH"),
    ]
    got = {(a.scope, a.scope_code, a.subject, a.value, a.severity) for a in sample_alerts(rows, TH)}
    assert got == {
        ("school", "S1", "CMHS_TH", 28.0, INFO),
        ("unit", "U2", "TH/CMHS_TH", 12.0, INFO),
    }


def item(n: int, n_dis: int, scope: str = "unit", level: str | None = "TH") -> ItemFigures:
    code = "U1" if scope == "unit" else "S1"
    return ItemFigures(scope, code, "CMHS_TH", "CS1", "CSVC", n, n_dis, level=level)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (item(100, 20), {("item_dissatisfied_high", RED, 20.0)}),  # 20% is red (≥)
        (item(100, 19), set()),
        (item(10, 5), {("item_dissatisfied_high", AMBER, 20.0)}),  # lower bound 23.7 ≥ 20
        (item(10, 3), set()),  # 30% of 10: lower bound 10.8 < 20, cannot tell
        (item(0, 0), set()),
    ],
)
def test_item_rule(row: ItemFigures, expected: set[tuple[Any, ...]]) -> None:
    assert keys(item_alerts([row], TH)) == expected


def test_item_subjects_and_value() -> None:
    (unit,) = item_alerts([item(100, 25)], TH)
    (school,) = item_alerts([item(40, 10, scope="school", level=None)], TH)
    assert (unit.subject, unit.value) == ("TH/CMHS_TH/CSVC/CS1", 25.0)
    assert (school.scope_code, school.subject) == ("S1", "CMHS_TH/CSVC/CS1")


@pytest.mark.parametrize(
    ("before", "now", "expected"),
    [
        (dim(50, 90.0), dim(50, 85.0), {("yoy_drop", AMBER, 5.0)}),  # exactly 5 points
        (dim(50, 90.0), dim(50, 85.5), set()),
        (dim(50, 90.0), dim(50, 95.0), set()),  # a rise
        (dim(20, 90.0), dim(50, 70.0), set()),  # last year's sample too small to compare
        (dim(50, 90.0), dim(20, 70.0), set()),
        (dim(50, 90.0, dimension="TIEP_CAN"), dim(50, 70.0), set()),  # nothing to compare
    ],
)
def test_yoy_rule(
    before: DimensionFigures, now: DimensionFigures, expected: set[tuple[Any, ...]]
) -> None:
    got = yoy_alerts([now], [before], TH)
    assert keys(got) == expected
    if got:
        assert got[0].value == pytest.approx(5.0)


# ---------------------------------------------------------------------------------------------
# PAPI, services, completeness, rejected share


@pytest.mark.parametrize(
    ("row", "flagged"),
    [
        (PapiFigures("school", "S1", "KIEN_CO", 100, 79.9), True),
        (PapiFigures("school", "S1", "KIEN_CO", 100, 80.0), False),
        (PapiFigures("province", "HCM", "KIEN_CO", 900, 70.0), True),
        (PapiFigures("school", "S1", "KIEN_CO", 10, 50.0), True),  # upper 76.3 < 80
        (PapiFigures("school", "S1", "KIEN_CO", 10, 70.0), False),  # upper 89.2
        (PapiFigures("school", "S1", "KIEN_CO", 0, 0.0), False),
    ],
)
def test_papi_rule(row: PapiFigures, flagged: bool) -> None:
    got = papi_alerts([row], TH)
    assert bool(got) is flagged
    if got:
        assert (got[0].scope, got[0].subject, got[0].severity) == (row.scope, "KIEN_CO", AMBER)


def test_service_rules() -> None:
    services = [
        ServiceFigures("S1", "Bán trú", 39.9),
        ServiceFigures("S1", "Nước uống", 40.0),
    ]
    criteria = [
        CriterionFigures("S1", "Bán trú", "C2", 0.0),
        CriterionFigures("S1", "Bán trú", "C3", 3.0),
    ]
    got = {(a.rule, a.subject, a.value) for a in service_alerts(services, criteria, TH)}
    assert got == {
        ("service_total_low", "Bán trú", 39.9),
        ("service_criterion_poor", "Bán trú/C2", 0.0),
    }
    # A province that also wants Yếu (3 points) flagged:
    yeu = Thresholds.from_mapping({"service_criterion_poor": 3})
    assert {a.subject for a in service_alerts([], criteria, yeu)} == {"Bán trú/C2", "Bán trú/C3"}


def comp(
    status: str, n_valid: int, enrollment: int | None = 300, kind: str = "satisfaction"
) -> CompletenessFigures:
    return CompletenessFigures("S1", "CMHS_TH", kind, status, n_valid, enrollment)


@pytest.mark.parametrize(
    ("row", "expected"),
    [
        (comp("missing", 0), {("submission_missing", AMBER, None)}),
        (comp("failed", 0), {("submission_failed", AMBER, None)}),
        (comp("late", 40), {("submission_late", INFO, None)}),
        (comp("pending", 0), set()),  # before the deadline: nothing to say yet
        (comp("submitted", 30), set()),  # 30/300 = 10%: the target met
        (comp("submitted", 29), {("low_response", AMBER, 0.1)}),  # 9.7% of enrolment
        (comp("late", 29), {("submission_late", INFO, None), ("low_response", AMBER, 0.1)}),
        # enrolment unknown: no share to judge, "chưa có sĩ số" said instead
        (comp("submitted", 5, enrollment=None), {("enrollment_unknown", INFO, None)}),
        (comp("submitted", 5, enrollment=0), {("enrollment_unknown", INFO, None)}),
        (comp("missing", 0, enrollment=None), {("submission_missing", AMBER, None)}),
        (comp("submitted", 5, kind="service_review"), set()),  # answered by a board
    ],
)
def test_completeness_rules(row: CompletenessFigures, expected: set[tuple[Any, ...]]) -> None:
    assert keys(completeness_alerts([row], TH)) == expected


def test_low_response_override_and_value() -> None:
    th = Thresholds.from_mapping({"min_response_share": 0.2})
    (alert,) = completeness_alerts([comp("submitted", 45)], th)
    assert (alert.value, alert.threshold) == (pytest.approx(0.15), 0.2)


@pytest.mark.parametrize(
    ("n_answers", "n_rejected", "flagged"),
    [(90, 10, False), (89, 11, True), (0, 0, False), (0, 3, True)],  # 10% is not more than 10%
)
def test_rejected_share_rule(n_answers: int, n_rejected: int, flagged: bool) -> None:
    got = rejection_alerts([SourceFigures("S1", "CMHS_TH", "s1.xlsx", n_answers, n_rejected)], TH)
    assert bool(got) is flagged
    if got:
        assert got[0].subject == "CMHS_TH/s1.xlsx"


def test_rules_never_give_one_identity_twice() -> None:
    inputs = AlertInputs(
        dimensions=[
            dim(n, p, m, dimension=d) for n, p, m, d in [(10, 0, 1, "CSVC"), (100, 50, 2, "CHUNG")]
        ],
        items=[item(100, 50), item(10, 9, scope="school", level=None)],
        papi=[PapiFigures("school", "S1", "KIEN_CO", 10, 0.0)],
        completeness=[comp("late", 1)],
    )
    found = evaluate_rules(inputs, TH)
    assert len({c.key for c in found}) == len(found)


# ---------------------------------------------------------------------------------------------
# Suggested follow-up


def test_actions_by_dimension_then_rule_and_overrides() -> None:
    csvc = action_for("pct_satisfied_low", "CMHS_TH/CSVC")
    assert csvc.startswith("Rà soát cơ sở vật chất, trang thiết bị dạy học")
    assert action_for("item_dissatisfied_high", "TH/CMHS_TH/CSVC/CS1") == csvc
    assert action_for("papi_low", "NUOC_SACH") == fa.DEFAULT_ACTIONS["NUOC_SACH"]
    assert action_for("submission_missing", "CMHS_TH") == fa.DEFAULT_ACTIONS["submission_missing"]
    overrides = {"CSVC": "Báo cáo Sở trước 15/12", "yoy_drop.CSVC": "Giải trình lý do giảm"}
    assert action_for("pct_satisfied_low", "CMHS_TH/CSVC", overrides) == "Báo cáo Sở trước 15/12"
    assert action_for("yoy_drop", "CMHS_TH/CSVC", overrides) == "Giải trình lý do giảm"
    assert action_for("no_such_rule", "X") == ""


def test_every_rule_and_dimension_has_a_default_action() -> None:
    for name in [*fa.RULES, "TIEP_CAN", "CSVC", "MOI_TRUONG", "HOAT_DONG", "PHAT_TRIEN", "CHUNG"]:
        assert fa.DEFAULT_ACTIONS.get(name), name


# ---------------------------------------------------------------------------------------------
# Lifecycle on both backends: hand-built mart rows


CAMPAIGN = make_campaign()
C = CAMPAIGN.id
PREVIOUS = make_campaign(id="HCM-2023", school_year="2023-2024")
T1, T2, T3, T4, T5 = (dt.datetime(2024, 12, d, 2, 0) for d in (1, 2, 3, 4, 5))

CMHS = Questionnaire(
    code="CMHS_TH",
    version="1",
    name="Phiếu cha mẹ học sinh tiểu học",
    respondent="Cha mẹ học sinh",
    kind="satisfaction",
    levels=("TH",),
    dimensions={"CSVC": "Cơ sở vật chất", "CHUNG": "Hài lòng chung"},
    items=(
        Item(code="CS1", text="Phòng học đủ diện tích", kind="likert", dimension="CSVC"),
        Item(code="CHUNG", text="Hài lòng chung", kind="likert", dimension="CHUNG"),
    ),
)
SCHOOLS = [
    School("S1", "Trường 1", "TH", "U1", "Phường 1", 500),
    School("S2", "Trường 2", "TH", "U1", "Phường 1", 400),
    School("S3", "Trường 3", "TH", "U2", "Xã 2", 100),
    School("S4", "Trường 4", "TH", "U1", "Phường 1", None),
]


def school_dim(school: str, dimension: str, n: int, mean: float, pct: float) -> dict[str, Any]:
    return {
        "campaign_id": C,
        "school_code": school,
        "questionnaire": "CMHS_TH",
        "dimension": dimension,
        "n_respondents": n,
        "n_answers": n,
        "mean_score": mean,
        "pct_satisfied": pct,
        "pct_dissatisfied": 100.0 - pct,
    }


#: Every alert the marts below raise: (rule, severity, scope, scope_code, subject).
EXPECTED = {
    ("pct_satisfied_low", RED, "school", "S1", "CMHS_TH/CSVC"),  # 60% of 50
    ("mean_score_low", RED, "school", "S1", "CMHS_TH/CSVC"),  # 3.2
    ("pct_satisfied_low", AMBER, "school", "S2", "CMHS_TH/CSVC"),  # 80% of 50
    ("insufficient_sample", INFO, "school", "S3", "CMHS_TH"),  # 10 respondents
    ("pct_satisfied_low", AMBER, "unit", "U1", "TH/CMHS_TH/CSVC"),  # exactly 70% of 100
    ("item_dissatisfied_high", RED, "unit", "U1", "TH/CMHS_TH/CSVC/CS1"),  # (10 + 15)/100
    ("submission_missing", AMBER, "school", "S4", "CMHS_TH"),
    ("papi_low", AMBER, "school", "S1", "KIEN_CO"),  # 70% Có of 100
    ("service_total_low", AMBER, "school", "S1", "Bán trú"),  # 35/80
}


def write_rows(engine: Engine, table: sa.Table, rows: list[dict[str, Any]]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(table).where(table.c.campaign_id == rows[0]["campaign_id"]))
        conn.execute(table.insert(), rows)


def set_s1_csvc(engine: Engine, mean: float, pct: float) -> None:
    with engine.begin() as conn:
        conn.execute(
            sa.update(t.mart_school_dimension)
            .where(
                t.mart_school_dimension.c.school_code == "S1",
                t.mart_school_dimension.c.dimension == "CSVC",
            )
            .values(mean_score=mean, pct_satisfied=pct, pct_dissatisfied=100.0 - pct)
        )


@pytest.fixture
def marts(engine: Engine) -> Engine:
    """A campaign whose marts are written by hand to raise exactly EXPECTED."""
    sync_registry(engine, CAMPAIGN, SCHOOLS, {"CMHS_TH": CMHS})
    write_rows(
        engine,
        t.mart_school_dimension,
        [
            school_dim("S1", "CSVC", 50, 3.2, 60.0),
            school_dim("S1", "CHUNG", 50, 4.3, 90.0),
            school_dim("S2", "CSVC", 50, 4.0, 80.0),
            school_dim("S3", "CSVC", 10, 4.5, 90.0),  # upper bound 98.2: nothing but the sample
        ],
    )
    write_rows(
        engine,
        t.mart_unit_dimension,
        [
            {
                "campaign_id": C,
                "unit_code": "U1",
                "level": "TH",
                "questionnaire": "CMHS_TH",
                "dimension": "CSVC",
                "n_schools": 2,
                "n_respondents": 100,
                "n_answers": 100,
                "mean_score": 3.6,
                "pct_satisfied": 70.0,
                "pct_dissatisfied": 25.0,
            }
        ],
    )
    counts = {"n_1": 10, "n_2": 15, "n_3": 5, "n_4": 40, "n_5": 30}
    write_rows(
        engine,
        t.mart_unit_question,
        [
            {
                "campaign_id": C,
                "unit_code": "U1",
                "level": "TH",
                "questionnaire": "CMHS_TH",
                "question_code": "CS1",
                "n_answers": 100,
                **counts,
                "mean_score": 3.65,
                "pct_satisfied": 70.0,
            }
        ],
    )
    write_rows(
        engine,
        t.mart_papi,
        [
            {
                "campaign_id": C,
                "scope": "school",
                "scope_code": "S1",
                "indicator": "KIEN_CO",
                "n_answers": 100,
                "pct_yes": 70.0,
            },
            {
                "campaign_id": C,
                "scope": "school",
                "scope_code": "S1",
                "indicator": "VE_SINH",
                "n_answers": 100,
                "pct_yes": 95.0,
            },
        ],
    )
    write_rows(
        engine,
        t.mart_service_ranking,
        [
            {
                "campaign_id": C,
                "unit_code": "U1",
                "service": "Bán trú",
                "school_code": "S1",
                "total_points": 35.0,
                "rank": 1,
            }
        ],
    )
    write_rows(
        engine,
        t.mart_completeness,
        [
            {
                "campaign_id": C,
                "school_code": code,
                "questionnaire": "CMHS_TH",
                "status": status,
                "n_valid": n,
                "n_rejected": 0,
                "last_loaded_at": None if status == "missing" else T1,
            }
            for code, status, n in [("S1", "submitted", 50), ("S2", "submitted", 50)]
            + [("S3", "submitted", 10), ("S4", "missing", 0)]
        ],
    )
    return engine


def alerts_by_key(engine: Engine) -> dict[tuple[str, str, str, str], dict[str, Any]]:
    with engine.connect() as conn:
        got = [dict(r._mapping) for r in conn.execute(sa.select(t.alerts))]
    by_key = {(r["rule"], r["scope"], r["scope_code"], r["subject"]): r for r in got}
    assert len(by_key) == len(got), "an identity appears twice"
    return by_key


def held(engine: Engine) -> set[tuple[str, str, str, str, str]]:
    """(rule, severity, scope, code, subject) of the alerts whose condition holds."""
    return {
        (k[0], r["severity"], *k[1:])
        for k, r in alerts_by_key(engine).items()
        if r["status"] != "resolved"
    }


S1_CSVC = ("pct_satisfied_low", "school", "S1", "CMHS_TH/CSVC")
S1_MEAN = ("mean_score_low", "school", "S1", "CMHS_TH/CSVC")
S2_CSVC = ("pct_satisfied_low", "school", "S2", "CMHS_TH/CSVC")


@pytest.mark.slow
def test_first_evaluation_opens_the_expected_alerts(marts: Engine) -> None:
    sync = evaluate_alerts(marts, C, now=T1)
    assert sync == wa.AlertSync(opened=len(EXPECTED))
    assert held(marts) == EXPECTED
    for row in alerts_by_key(marts).values():
        assert (row["status"], row["first_seen_at"], row["last_seen_at"]) == ("open", T1, T1)
        assert row["note"] is None
    s1 = alerts_by_key(marts)[S1_CSVC]
    assert (s1["value"], s1["threshold"]) == (pytest.approx(60.0), 70.0)


@pytest.mark.slow
def test_second_evaluation_adds_nothing_and_updates_last_seen(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    ids = {k: r["alert_id"] for k, r in alerts_by_key(marts).items()}
    sync = evaluate_alerts(marts, C, now=T2)
    assert sync == wa.AlertSync(held=len(EXPECTED))
    after = alerts_by_key(marts)
    assert {k: r["alert_id"] for k, r in after.items()} == ids
    assert {(r["first_seen_at"], r["last_seen_at"], r["status"]) for r in after.values()} == {
        (T1, T2, "open")
    }


@pytest.mark.slow
def test_acknowledged_alert_survives_follows_its_value_and_opens_when_worse(
    marts: Engine,
) -> None:
    evaluate_alerts(marts, C, now=T1)
    alert_id = alerts_by_key(marts)[S2_CSVC]["alert_id"]
    acked = acts.acknowledge(marts, C, alert_id, "Trường đã lập kế hoạch sửa phòng học")
    assert acked.status == "acknowledged" and acked.scope_name == "Trường 2"
    assert alerts_by_key(marts)[S2_CSVC]["severity"] == AMBER

    def set_s2_csvc(pct: float) -> None:
        with marts.begin() as conn:
            conn.execute(
                sa.update(t.mart_school_dimension)
                .where(t.mart_school_dimension.c.school_code == "S2")
                .values(pct_satisfied=pct)
            )

    # still amber, a little lower: still acknowledged, its value followed
    set_s2_csvc(80.0)
    assert evaluate_alerts(marts, C, now=T2) == wa.AlertSync(held=len(EXPECTED))
    row = alerts_by_key(marts)[S2_CSVC]
    assert (row["status"], row["severity"], row["value"]) == (
        "acknowledged",
        AMBER,
        pytest.approx(80.0),
    )

    # worse, from amber to red: what was acknowledged is not what holds now, so it opens again
    set_s2_csvc(65.0)
    sync = evaluate_alerts(marts, C, now=T3)
    assert sync == wa.AlertSync(held=len(EXPECTED) - 1, reopened=1)
    row = alerts_by_key(marts)[S2_CSVC]
    assert (row["alert_id"], row["status"], row["severity"], row["value"]) == (
        alert_id,
        "open",
        RED,
        pytest.approx(65.0),
    )
    assert (row["note"], row["first_seen_at"], row["last_seen_at"]) == (
        "Trường đã lập kế hoạch sửa phòng học",  # the officer's note is kept
        T1,
        T3,
    )

    # acknowledged again at red: it stays so at red, and when it eases back to amber
    acts.acknowledge(marts, C, alert_id, "Sở đã làm việc với trường")
    for pct, severity, when in ((64.0, RED, T4), (78.0, AMBER, T5)):
        set_s2_csvc(pct)
        assert evaluate_alerts(marts, C, now=when) == wa.AlertSync(held=len(EXPECTED))
        row = alerts_by_key(marts)[S2_CSVC]
        assert (row["status"], row["severity"]) == ("acknowledged", severity)


@pytest.mark.slow
def test_recovered_school_is_resolved_and_a_returning_condition_reopens(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    ids = {k: r["alert_id"] for k, r in alerts_by_key(marts).items()}
    acts.acknowledge(marts, C, ids[S1_MEAN], "Đang xử lý")

    set_s1_csvc(marts, mean=4.2, pct=88.0)  # S1 recovers
    assert evaluate_alerts(marts, C, now=T2) == wa.AlertSync(held=len(EXPECTED) - 2, resolved=2)
    rows = alerts_by_key(marts)
    assert rows[S1_CSVC]["status"] == "resolved" and rows[S1_MEAN]["status"] == "resolved"
    assert rows[S1_CSVC]["last_seen_at"] == T1  # the last run in which it held
    assert held(marts) == EXPECTED - {
        ("pct_satisfied_low", RED, "school", "S1", "CMHS_TH/CSVC"),
        ("mean_score_low", RED, "school", "S1", "CMHS_TH/CSVC"),
    }

    assert evaluate_alerts(marts, C, now=T3) == wa.AlertSync(held=len(EXPECTED) - 2)

    set_s1_csvc(marts, mean=3.4, pct=75.0)  # it comes back, amber this time
    assert evaluate_alerts(marts, C, now=T4) == wa.AlertSync(held=len(EXPECTED) - 2, reopened=2)
    rows = alerts_by_key(marts)
    assert {k: r["alert_id"] for k, r in rows.items()} == ids  # the same rows, no duplicates
    again = rows[S1_CSVC]
    assert (again["status"], again["severity"], again["first_seen_at"], again["last_seen_at"]) == (
        "open",
        AMBER,
        T1,
        T4,
    )
    assert rows[S1_MEAN]["status"] == "open"  # acknowledged before it cleared: open again


@pytest.mark.slow
def test_manual_resolve_is_reopened_while_the_condition_holds(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    alert_id = alerts_by_key(marts)[S2_CSVC]["alert_id"]
    resolved = acts.resolve(marts, C, alert_id, "Đã kiểm tra")
    assert resolved.status == "resolved" and resolved.note == "Đã kiểm tra"
    with pytest.raises(AlertError, match="is resolved"):
        acts.acknowledge(marts, C, alert_id, "muộn")
    assert evaluate_alerts(marts, C, now=T2).reopened == 1
    assert alerts_by_key(marts)[S2_CSVC]["status"] == "open"


@pytest.mark.slow
def test_unknown_or_foreign_alert_ids_are_refused(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    with pytest.raises(AlertError, match="no alert 999999"):
        acts.acknowledge(marts, C, 999999, "x")
    any_id = next(iter(alerts_by_key(marts).values()))["alert_id"]
    with pytest.raises(AlertError, match="campaign HCM-2023"):
        acts.resolve(marts, "HCM-2023", any_id, "x")


@pytest.mark.slow
def test_threshold_overrides_change_what_is_raised(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1, thresholds={"pct_satisfied_amber": 75.0})
    # S2 (80%) and U1 (70% vs red 70: amber at 75) — only S2 drops out
    assert held(marts) == EXPECTED - {("pct_satisfied_low", AMBER, "school", "S2", "CMHS_TH/CSVC")}


@pytest.mark.slow
def test_year_on_year_against_the_previous_campaign_in_the_warehouse(marts: Engine) -> None:
    sync_registry(marts, PREVIOUS, SCHOOLS, {"CMHS_TH": CMHS})
    previous = [
        {**school_dim("S1", "CHUNG", 60, 4.5, 96.0), "campaign_id": PREVIOUS.id},  # 96 → 90
        {**school_dim("S2", "CSVC", 60, 4.1, 84.0), "campaign_id": PREVIOUS.id},  # 84 → 80
    ]
    write_rows(marts, t.mart_school_dimension, previous)
    evaluate_alerts(marts, C, previous_id=PREVIOUS.id, now=T1)
    yoy = {k: r for k, r in alerts_by_key(marts).items() if k[0] == "yoy_drop"}
    assert set(yoy) == {("yoy_drop", "school", "S1", "CMHS_TH/CHUNG")}
    assert yoy[("yoy_drop", "school", "S1", "CMHS_TH/CHUNG")]["value"] == pytest.approx(6.0)
    # a previous campaign that is not in the warehouse is no comparison at all
    evaluate_alerts(marts, C, previous_id="HCM-2019", now=T2)
    assert all(k[0] != "yoy_drop" for k in held_keys(marts))


def held_keys(engine: Engine) -> set[tuple[str, str, str, str]]:
    return {k for k, r in alerts_by_key(engine).items() if r["status"] != "resolved"}


@pytest.mark.slow
def test_list_alerts_filters(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    everything = wa.list_alerts(marts, C)
    assert [a.severity for a in everything] == sorted(
        (a.severity for a in everything), key=wa.SEVERITIES.index
    )
    assert {a.scope_code for a in wa.list_alerts(marts, C, unit="U1")} == {"S1", "S2", "S4", "U1"}
    assert {a.rule for a in wa.list_alerts(marts, C, severity=INFO)} == {"insufficient_sample"}
    names = {a.scope_code: a.scope_name for a in everything}
    assert names["S1"] == "Trường 1" and names["U1"] == "Phường 1"
    s2 = next(a for a in everything if a.scope_code == "S2")
    acts.acknowledge(marts, C, s2.alert_id, "ok")
    assert [a.alert_id for a in wa.list_alerts(marts, C, statuses=["acknowledged"])] == [
        s2.alert_id
    ]


def test_an_empty_evaluation_resolves_everything(marts: Engine) -> None:
    evaluate_alerts(marts, C, now=T1)
    assert wa.sync_alerts(marts, C, [], now=T2) == wa.AlertSync(resolved=len(EXPECTED))
    assert held(marts) == set()


# ---------------------------------------------------------------------------------------------
# Facts the marts do not hold: per-school items, service criteria, rejected values per source

SVC = Questionnaire(
    code="SVC",
    version="1",
    name="Rà soát dịch vụ",
    respondent="Hội đồng",
    kind="service_review",
    levels=("TH",),
    required=False,
    service_item="DICH_VU",
    items=(
        Item(code="DICH_VU", text="Dịch vụ", kind="text"),
        Item(code="C1", text="Chất lượng", kind="level"),
        Item(code="C2", text="Giá cả", kind="level"),
    ),
)


def _bad(row: int, raw: str) -> dict[str, Any]:
    return {
        "scope": "value",
        "sheet": "Câu trả lời 1",
        "row": row,
        "col": 3,
        "question_code": "CS1",
        "raw_value": raw,
        "rule": "likert_unreadable",
        "reason": "Không phải mức hài lòng",
        "response_no": row - 1,
    }


@pytest.mark.slow
def test_evaluation_reads_facts_for_items_services_and_rejections(engine: Engine) -> None:
    s1_cmhs = Source("S1", "CMHS_TH", "excel", "s1.xlsx")
    s1_svc = Source("S1", "SVC", "excel", "s1-dv.xlsx")
    sync_registry(
        engine, CAMPAIGN, SCHOOLS[:1], {"CMHS_TH": CMHS, "SVC": SVC}, sources=[s1_cmhs, s1_svc]
    )
    start_run(engine, "r1", C)
    # CS1: 1, 2, 4, 5 → 2 of 4 dissatisfied (50%); CHUNG: 4, 4, 5, 5 → none. Two more values
    # were rejected: 2 of 8 + 2 = 20% of the values (> 10%).
    cmhs = make_parsed(
        CMHS,
        [{"CS1": 1, "CHUNG": 4}, {"CS1": 2, "CHUNG": 4}, {"CS1": 4, "CHUNG": 5}]
        + [{"CS1": 5, "CHUNG": 5}],
        rejections=[_bad(6, "abc"), _bad(7, "?")],
    )
    svc = make_parsed(
        SVC,
        [
            {"service": "Bán trú", "DICH_VU": "Bán trú", "C1": 10, "C2": 0},  # C2 Kém
            {"service": "Nước uống", "DICH_VU": "Nước uống", "C1": 7, "C2": 7},
        ],
    )
    for source, parsed in ((s1_cmhs, cmhs), (s1_svc, svc)):
        fetched = Fetched(
            source=source,
            content=b"",
            fingerprint=source.location,
            archive_path=Path(source.location),
            filename=source.location,
        )
        replace_source(engine, C, "r1", fetched, parsed)
    rebuild_marts(engine, C, T1, CAMPAIGN.deadline_at)

    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        statements.append(statement)

    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        inputs = wa.read_inputs(engine, C)
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    # the answers (millions of rows in a province) are never read: figures and ledger instead
    assert statements and not [s for s in statements if re.search(r"\b(FROM|JOIN) answer\b", s)]
    school_items = {(i.question_code, i.n_answers, i.n_dissatisfied) for i in inputs.items}
    assert ("CS1", 4, 2) in school_items and ("CHUNG", 4, 0) in school_items
    assert {(c.service, c.criterion, c.points) for c in inputs.criteria} == {
        ("Bán trú", "C1", 10.0),
        ("Bán trú", "C2", 0.0),
        ("Nước uống", "C1", 7.0),
        ("Nước uống", "C2", 7.0),
    }
    assert {(s.location, s.n_answers, s.n_rejected_values) for s in inputs.sources} == {
        ("s1.xlsx", 8, 2),
        ("s1-dv.xlsx", 4, 0),
    }

    # four respondents: red only once the province lowers min_respondents
    evaluate_alerts(engine, C, now=T1, thresholds={"min_respondents": 1})
    got = held(engine)
    assert ("item_dissatisfied_high", RED, "school", "S1", "CMHS_TH/CSVC/CS1") in got
    assert ("item_dissatisfied_high", RED, "unit", "U1", "TH/CMHS_TH/CSVC/CS1") in got
    assert ("service_criterion_poor", AMBER, "school", "S1", "Bán trú/C2") in got
    # two criteria only: totals 10 and 14 of 80, both below 40
    assert ("service_total_low", AMBER, "school", "S1", "Bán trú") in got
    assert ("service_total_low", AMBER, "school", "S1", "Nước uống") in got
    assert ("rejected_share_high", AMBER, "school", "S1", "CMHS_TH/s1.xlsx") in got
    assert ("low_response", AMBER, "school", "S1", "CMHS_TH") in got  # 4 of 500 pupils


# ---------------------------------------------------------------------------------------------
# CLI


@pytest.fixture
def cli_config(marts: Engine, warehouse_url: str, tmp_path: Path) -> Path:
    evaluate_alerts(marts, C, now=T1)
    config = tmp_path / "khaosat.yaml"
    config.write_text(
        f"""\
campaign:
  id: {C}
  name: Khảo sát
  school_year: 2024-2025
  opens: 2024-10-01
  closes: 2024-11-30
  deadline: 2024-11-30
registry:
  schools: schools.csv
  sources: sources.csv
warehouse:
  url: {warehouse_url}
actions:
  CSVC: Sở kiểm tra cơ sở vật chất
""",
        encoding="utf-8",
    )
    return config


def cli(*args: str) -> Any:
    app = typer.Typer()
    app.add_typer(alerts_app, name="alerts")
    return CliRunner().invoke(app, ["alerts", *args])


@pytest.mark.slow
def test_cli_list_ack_resolve(
    cli_config: Path, marts: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(alerts_cli.console, "width", 400)  # no wrapping inside cells
    listed = cli("list", "--all", "-c", str(cli_config), "--severity", "red", "--unit", "U1")
    assert listed.exit_code == 0, listed.output
    assert "Tỷ lệ hài lòng thấp: CMHS_TH/CSVC" in listed.output
    assert "Sở kiểm tra cơ sở vật chất" in listed.output  # the actions: override
    assert "S3" not in listed.output and "Không đủ mẫu" not in listed.output

    alert_id = alerts_by_key(marts)[S2_CSVC]["alert_id"]
    acked = cli("ack", str(alert_id), "--note", "Đã nhắc trường", "-c", str(cli_config))
    assert acked.exit_code == 0, acked.output
    assert "acknowledged" in acked.output and "Đã nhắc trường" in acked.output

    only = cli("list", "--all", "-c", str(cli_config), "--status", "acknowledged")
    assert only.exit_code == 0 and "Đã nhắc trường" in only.output

    done = cli("resolve", str(alert_id), "--note", "Đã sửa", "-c", str(cli_config))
    assert done.exit_code == 0 and alerts_by_key(marts)[S2_CSVC]["status"] == "resolved"
    assert "Đã nhắc trường" not in cli("list", "-c", str(cli_config)).output  # active only

    missing = cli("ack", "999999", "--note", "x", "-c", str(cli_config))
    assert missing.exit_code == 2 and "no alert 999999" in missing.output
    no_note = cli("ack", str(alert_id), "-c", str(cli_config))
    assert no_note.exit_code == 2  # --note is required


def test_cli_bad_config_exits_2(tmp_path: Path) -> None:
    result = cli("list", "-c", str(tmp_path / "nope.yaml"))
    assert result.exit_code == 2 and "cannot read" in result.output
