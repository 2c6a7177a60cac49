"""The validate step and its expectation suites, on hand-made Parsed objects.

Frames are built directly (no parsing), so each test states exactly which cells are good and
which are bad, and checks where each rejection points.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import math
import re
from typing import Any

import numpy as np
import pandas as pd
import pytest

from expectations import SUITES_DIR
from expectations.generate import build_suite, dumps
from flows.validate import fix_hint, validate
from flows.validate.distinct import distinct_rows, failed_rules
from flows.validate.frames import for_gx, service_key, stacked_timestamps, text_column
from flows.validate.gx import RESULT_FORMAT, SuiteError
from flows.validate.rejections import TIMESTAMP_CODE
from flows.validate.suites import (
    ANSWERS,
    RESPONSES,
    compiled_suite,
    judges_each_row,
    load_suite,
    run_frame,
)
from schemas import load_questionnaires
from schemas.records import REJECTION_COLUMNS, Parsed

QS = load_questionnaires()
CODES = sorted(QS)

OPENS = dt.datetime(2024, 10, 1)
CLOSES = dt.datetime.combine(dt.date(2024, 10, 31), dt.time.max)
WINDOW = (OPENS, CLOSES)
IN_WINDOW = dt.datetime(2024, 10, 15, 9, 5, 31)

#: A valid normalised answer per kind: (value, raw text as typed).
GOOD = {
    "likert": (4.0, "Hài lòng"),
    "percent": (80.0, "80%"),
    "yesno": (1.0, "Có"),
    "level": (7.0, "Khá"),
}
#: Each answer rule of the suites, and a cell that breaks it: (kind, value, raw).
BAD = {
    "likert_unreadable": ("likert", math.nan, "Hài lòng lắm"),
    "likert_out_of_range": ("likert", 6.0, "6"),
    "percent_unreadable": ("percent", math.nan, "khá tốt"),
    "percent_out_of_range": ("percent", 150.0, "150"),
    "yesno_unreadable": ("yesno", math.nan, "Chưa rõ"),
    "yesno_invalid": ("yesno", 2.0, "2"),
    "level_unreadable": ("level", math.nan, "Tốt lắm"),
    "level_invalid": ("level", 8.0, "8"),
}


# --- building Parsed by hand --------------------------------------------------------------


def make_parsed(
    code: str,
    responses: list[dict[str, Any]],
    answers: list[tuple[int, str, str, float, str, int]],
    sheet: str = "Câu trả lời biểu mẫu 1",
    rejections: pd.DataFrame | None = None,
) -> Parsed:
    """responses: dicts with response_no, submitted_at and optionally service; sheet row is
    response_no + 1. answers: (response_no, question_code, kind, value, raw, col)."""
    service_review = QS[code].kind == "service_review"
    resp = pd.DataFrame(
        {
            "response_no": pd.array([r["response_no"] for r in responses], dtype="int64"),
            "row": pd.array([r["response_no"] + 1 for r in responses], dtype="int64"),
            "submitted_at": pd.Series(
                [r.get("submitted_at") for r in responses], dtype="datetime64[us]"
            ),
            "respondent_hash": pd.Series([f"h{r['response_no']}" for r in responses], dtype="str"),
        }
    )
    if service_review:
        resp["service"] = pd.Series([r.get("service") for r in responses], dtype="str")
    ans = pd.DataFrame(
        {
            "response_no": pd.array([a[0] for a in answers], dtype="int64"),
            "question_code": pd.Series([a[1] for a in answers], dtype="str"),
            "kind": pd.Series([a[2] for a in answers], dtype="str"),
            "value": pd.array([a[3] for a in answers], dtype="float64"),
            "raw": pd.Series([a[4] for a in answers], dtype="str"),
            "row": pd.array([a[0] + 1 for a in answers], dtype="int64"),
            "col": pd.array([a[5] for a in answers], dtype="int64"),
        }
    )
    return Parsed(
        questionnaire=code,
        sheet=sheet,
        header_row=1,
        columns={},
        unknown_columns=[],
        missing_questions=[],
        responses=resp,
        answers=ans,
        rejections=(
            rejections if rejections is not None else pd.DataFrame(columns=REJECTION_COLUMNS)
        ),
        n_rows_read=len(responses),
    )


def full_answers(code: str, response_no: int, shift: int = 0) -> list[tuple]:
    """Every scored item of ``code`` answered validly; values vary over the whole scale."""
    scales = {
        "likert": [1, 2, 3, 4, 5],
        "percent": [0, 55.5, 100],
        "yesno": [0, 1],
        "level": [0, 3, 5, 7, 10],
    }
    out = []
    for col, item in enumerate(QS[code].scored_items, start=3):
        scale = scales[item.kind]
        value = float(scale[(col + shift) % len(scale)])
        out.append((response_no, item.code, item.kind, value, f"{value:g}", col))
    return out


def good_fixture(code: str, sheet: str = "Sheet1") -> Parsed:
    """Known-good: three complete responses, one on paper (no timestamp), bounds of window."""
    responses = [
        {"response_no": 1, "submitted_at": OPENS, "service": "Bán trú"},
        {"response_no": 2, "submitted_at": None, "service": "Học phí"},
        {"response_no": 3, "submitted_at": CLOSES, "service": "Trông giữ xe"},
    ]
    answers = [a for n in (1, 2, 3) for a in full_answers(code, n, shift=n)]
    return make_parsed(code, responses, answers, sheet=sheet)


def bad_fixture(code: str) -> tuple[Parsed, dict[str, tuple[int, int]]]:
    """Known-bad: one good response, then one cell or response breaking each rule of the suite.

    Returns the Parsed and rule -> (sheet row, col) where the rejection must point (col 0 for a
    whole response).
    """
    q = QS[code]
    kinds = {i.kind for i in q.scored_items}
    first = q.scored_items[0]
    responses: list[dict[str, Any]] = [
        {"response_no": 1, "submitted_at": IN_WINDOW, "service": "Bán trú"}
    ]
    answers = full_answers(code, 1)
    where: dict[str, tuple[int, int]] = {}
    n = 1

    def response(**kw: Any) -> int:
        nonlocal n
        n += 1
        responses.append({"response_no": n, "submitted_at": IN_WINDOW, **kw})
        return n

    # each bad answer in a response of its own whose other answers are good
    for rule, (kind, value, raw) in BAD.items():
        if kind not in kinds:
            continue
        no = response(service=f"Dịch vụ {rule}")
        item = next(i for i in q.scored_items if i.kind == kind)
        for a in full_answers(code, no):
            answers.append((no, a[1], a[2], value, raw, a[5]) if a[1] == item.code else a)
            if a[1] == item.code:
                where[rule] = (no + 1, a[5])
    no = response(service="Dịch vụ lạ")
    answers.append((no, "KHONG_CO", first.kind, GOOD[first.kind][0], "?", 40))
    where["question_code_unknown"] = (no + 1, 40)
    no = response(service="Dịch vụ chữ")
    answers.append((no, first.code, "text", 1.0, "một", 41))
    where["kind_unexpected"] = (no + 1, 41)
    no = response(submitted_at=dt.datetime(2024, 9, 30, 23, 59, 59), service="Nước uống")
    answers += full_answers(code, no)
    where["submitted_outside_window"] = (no + 1, 0)
    if q.kind == "service_review":
        no = response(service=None)
        answers += full_answers(code, no)
        where["service_missing"] = (no + 1, 0)
        dup1 = response(service="Câu lạc bộ")
        dup2 = response(service="  câu LẠC   bộ ")
        answers += full_answers(code, dup1) + full_answers(code, dup2)
        where["service_duplicate"] = (dup1 + 1, 0)
    return make_parsed(code, responses, answers), where


def rules_of(code: str) -> list[str]:
    return [e["meta"]["rule"] for e in load_suite(code)["expectations"]]


def meta_of(code: str, rule: str) -> dict[str, str]:
    return next(e["meta"] for e in load_suite(code)["expectations"] if e["meta"]["rule"] == rule)


# --- the suites ---------------------------------------------------------------------------


@pytest.mark.parametrize("code", CODES)
def test_suite_is_a_valid_gx_1x_suite(code):
    import great_expectations as gx

    data = load_suite(code)
    suite = gx.ExpectationSuite(**data)
    assert suite.name == code
    assert len(suite.expectations) == len(data["expectations"]) >= 3


@pytest.mark.parametrize("code", CODES)
def test_every_expectation_says_why_and_how_to_fix(code):
    for exp in load_suite(code)["expectations"]:
        meta = exp["meta"]
        assert set(meta) == {"rule", "reason", "fix", "frame", "scope"}
        assert re.fullmatch(r"[a-z][a-z0-9_]*", meta["rule"])
        assert (meta["frame"], meta["scope"]) in {("answers", "value"), ("responses", "response")}
        assert len(exp["notes"]) > 40
        assert meta["reason"] and meta["fix"]


def test_a_rule_means_the_same_in_every_suite():
    seen: dict[str, dict] = {}
    for code in CODES:
        for exp in load_suite(code)["expectations"]:
            key = {k: exp[k] for k in ("type", "notes")} | {"meta": exp["meta"]}
            assert seen.setdefault(exp["meta"]["rule"], key) == key, exp["meta"]["rule"]


@pytest.mark.parametrize("code", CODES)
def test_suite_matches_its_questionnaire(code):
    """The kinds a suite accepts are those of the questionnaire's scored items."""
    exps = load_suite(code)["expectations"]
    kind_rule = next(e for e in exps if e["meta"]["rule"] == "kind_unexpected")
    assert set(kind_rule["kwargs"]["value_set"]) == {i.kind for i in QS[code].scored_items}
    codes_rule = next(e for e in exps if e["meta"]["rule"] == "question_code_unknown")
    assert codes_rule["kwargs"]["value_set"] == {"$PARAMETER": "question_codes"}
    window = next(e for e in exps if e["meta"]["rule"] == "submitted_outside_window")
    assert window["kwargs"]["min_value"] == {"$PARAMETER": "opens"}
    assert window["kwargs"]["max_value"] == {"$PARAMETER": "closes"}


@pytest.mark.parametrize("code", CODES)
def test_committed_json_is_what_the_generator_writes(code):
    expected = dumps(build_suite(QS[code]))
    actual = (SUITES_DIR / f"{code}.json").read_text(encoding="utf-8")
    assert actual == expected, "run `python -m expectations.generate` and commit the JSON"


def test_fix_hint_reads_meta_fix():
    likert = meta_of("CMHS_TH", "likert_out_of_range")
    assert fix_hint("likert_out_of_range") == likert["fix"]
    assert "Có hoặc Không" in fix_hint("yesno_invalid")  # only in PAPI_TH's suite
    assert fix_hint("duplicate_row_from_parse") == ""


def test_load_suite_of_unknown_questionnaire_is_a_suite_error():
    with pytest.raises(SuiteError, match="NOPE.json"):
        load_suite("NOPE")


# --- known-good and known-bad fixture per suite (STYLE.md practice 7) ---------------------


@pytest.mark.parametrize("code", CODES)
def test_known_good_fixture_passes_untouched(code):
    p = good_fixture(code)
    (out,) = validate(QS[code], [p], WINDOW)
    assert out.rejections.empty
    pd.testing.assert_frame_equal(out.answers, p.answers)
    pd.testing.assert_frame_equal(out.responses, p.responses)


@pytest.mark.parametrize("code", CODES)
def test_known_bad_fixture_trips_every_rule_of_the_suite(code):
    p, where = bad_fixture(code)
    (out,) = validate(QS[code], [p], WINDOW)
    rej = out.rejections
    assert set(rej["rule"]) == set(rules_of(code)) == set(where)
    for rule, (row, col) in where.items():
        hit = rej[(rej["rule"] == rule) & (rej["row"] == row)]
        assert len(hit) == 1, rule
        if col:
            assert hit["col"].iloc[0] == col and hit["scope"].iloc[0] == "value", rule
        else:
            assert hit["scope"].iloc[0] == "response", rule
    # service_duplicate rejects every copy; everything else exactly one row per rule
    n_dup = 2 if QS[code].kind == "service_review" else 0
    assert len(rej) == len(where) + max(n_dup - 1, 0)
    # the good first response is untouched, and so are the good cells of bad-value responses
    assert 1 in set(out.responses["response_no"])
    assert len(out.answers[out.answers["response_no"] == 1]) == len(QS[code].scored_items)
    value_rejected = rej[rej["scope"] == "value"]
    for no in value_rejected["response_no"]:
        kept = out.answers[out.answers["response_no"] == no]
        total = p.answers[p.answers["response_no"] == no]
        assert len(kept) == len(total) - 1


# --- value rules: an answer is rejected alone ---------------------------------------------


@pytest.fixture
def cmhs_th_sheet() -> Parsed:
    responses = [
        {"response_no": 1, "submitted_at": IN_WINDOW},
        {"response_no": 2, "submitted_at": IN_WINDOW},
    ]
    answers = [
        (1, "TC1", "likert", 4.0, "Hài lòng", 4),
        (1, "TC2", "likert", 6.0, "6", 5),
        (1, "TC3", "likert", math.nan, "Hài lòng lắm", 6),
        (1, "MONG_DOI", "percent", 120.0, "120", 30),
        (1, "CHUNG", "likert", 5.0, "Rất hài lòng", 29),
        (2, "TC1", "likert", 3.0, "Bình thường", 4),
        (2, "MONG_DOI", "percent", 100.0, "100", 30),
    ]
    return make_parsed("CMHS_TH", responses, answers, sheet="Câu trả lời biểu mẫu 1")


def test_bad_answers_are_rejected_alone_with_rule_and_cell(cmhs_th_sheet):
    (out,) = validate(QS["CMHS_TH"], [cmhs_th_sheet], WINDOW)
    rej = out.rejections.set_index("question_code")
    assert sorted(rej.index) == ["MONG_DOI", "TC2", "TC3"]
    expected = {
        "TC2": ("likert_out_of_range", 5, "6"),
        "TC3": ("likert_unreadable", 6, "Hài lòng lắm"),
        "MONG_DOI": ("percent_out_of_range", 30, "120"),
    }
    for code, (rule, col, raw) in expected.items():
        r = rej.loc[code]
        assert (r["rule"], r["col"], r["raw_value"]) == (rule, col, raw)
        assert (r["scope"], r["sheet"], r["row"], r["response_no"]) == (
            "value",
            "Câu trả lời biểu mẫu 1",
            2,
            1,
        )
        assert r["reason"] == meta_of("CMHS_TH", rule)["reason"]
    # the respondent stays, with the answers that were fine
    assert list(out.responses["response_no"]) == [1, 2]
    kept = out.answers[out.answers["response_no"] == 1]
    assert sorted(kept["question_code"]) == ["CHUNG", "TC1"]
    assert len(out.answers[out.answers["response_no"] == 2]) == 2
    assert list(out.rejections.columns) == REJECTION_COLUMNS


def test_rejections_read_in_sheet_order_with_parse_dtypes():
    responses = [
        {"response_no": 1, "submitted_at": IN_WINDOW},
        {"response_no": 2, "submitted_at": dt.datetime(2024, 11, 2)},
        {"response_no": 3, "submitted_at": IN_WINDOW},
    ]
    answers = [
        (3, "TC1", "likert", 0.0, "0", 4),
        (1, "TC2", "likert", 9.0, "9", 5),
        (1, "TC1", "likert", 8.0, "8", 4),
        (2, "TC1", "likert", 4.0, "4", 4),
    ]
    (out,) = validate(QS["CMHS_TH"], [make_parsed("CMHS_TH", responses, answers)], WINDOW)
    rej = out.rejections
    assert list(zip(rej["row"], rej["col"].fillna(0), strict=True)) == [
        (2, 4),
        (2, 5),
        (3, 0),
        (4, 4),
    ]
    # as parse writes them, so quarantine rows of both steps concatenate cleanly
    assert {c: str(rej[c].dtype) for c in ("row", "col", "response_no")} == dict.fromkeys(
        ("row", "col", "response_no"), "Int64"
    )


def test_an_answer_failing_two_rules_is_reported_once_by_the_first():
    responses = [{"response_no": 1, "submitted_at": IN_WINDOW}]
    # unknown question and out of range: the suite lists question_code_unknown first
    answers = [(1, "KHONG_CO", "likert", 6.0, "6", 9), (1, "TC1", "likert", 4.0, "4", 4)]
    (out,) = validate(QS["CMHS_TH"], [make_parsed("CMHS_TH", responses, answers)], WINDOW)
    assert list(out.rejections["rule"]) == ["question_code_unknown"]
    assert list(out.answers["question_code"]) == ["TC1"]


def test_input_is_not_modified(cmhs_th_sheet):
    before = cmhs_th_sheet.answers.copy()
    validate(QS["CMHS_TH"], [cmhs_th_sheet], WINDOW)
    pd.testing.assert_frame_equal(cmhs_th_sheet.answers, before)
    assert cmhs_th_sheet.rejections.empty


def test_parse_rejections_are_kept_and_new_ones_follow(cmhs_th_sheet):
    row = ["response", "Câu trả lời biểu mẫu 1", 9, None, None, "", "duplicate_response"]
    earlier = pd.DataFrame([[*row, "Phiếu trùng", 8]], columns=REJECTION_COLUMNS)
    cmhs_th_sheet.rejections = earlier
    (out,) = validate(QS["CMHS_TH"], [cmhs_th_sheet], WINDOW)
    assert list(out.rejections["rule"])[0] == "duplicate_response"
    assert len(out.rejections) == 4


# --- response rules: a response is rejected whole -----------------------------------------


def test_response_outside_window_is_rejected_whole():
    responses = [
        {"response_no": 1, "submitted_at": dt.datetime(2024, 9, 28, 20, 15, 0)},
        {"response_no": 2, "submitted_at": IN_WINDOW},
        {"response_no": 3, "submitted_at": CLOSES + dt.timedelta(seconds=1)},
    ]
    answers = [
        (1, "TC1", "likert", 4.0, "Hài lòng", 4),
        (1, "TC2", "likert", 9.0, "9", 5),  # bad too, but reported with its response
        (2, "TC1", "likert", 5.0, "Rất hài lòng", 4),
        (3, "TC1", "likert", 2.0, "Không hài lòng", 4),
    ]
    (out,) = validate(QS["CMHS_TH"], [make_parsed("CMHS_TH", responses, answers)], WINDOW)
    assert list(out.responses["response_no"]) == [2]
    assert list(out.answers["response_no"]) == [2]
    rej = out.rejections
    assert list(rej["response_no"]) == [1, 3]
    assert set(rej["scope"]) == {"response"}
    assert set(rej["rule"]) == {"submitted_outside_window"}
    assert set(rej["question_code"]) == {TIMESTAMP_CODE}
    assert list(rej["row"]) == [2, 4]
    assert rej["raw_value"].iloc[0] == "28/09/2024 20:15:00"  # as the Vietnamese sheet shows it
    assert rej["col"].isna().all()


def test_paper_forms_without_timestamp_are_kept():
    responses = [
        {"response_no": 1, "submitted_at": None},
        {"response_no": 2, "submitted_at": pd.NaT},
    ]
    answers = [
        (1, "TC1", "likert", 4.0, "Hài lòng", 4),
        (2, "TC1", "likert", 2.0, "Không hài lòng", 4),
    ]
    (out,) = validate(QS["CMHS_TH"], [make_parsed("CMHS_TH", responses, answers)], WINDOW)
    assert out.rejections.empty
    assert list(out.responses["response_no"]) == [1, 2]
    assert out.responses["submitted_at"].isna().all()
    assert len(out.answers) == 2


@pytest.mark.slow
def test_window_comes_from_the_campaign_not_the_suite():
    responses = [{"response_no": 1, "submitted_at": dt.datetime(2025, 3, 10, 8, 0)}]
    answers = [(1, "TC1", "likert", 4.0, "Hài lòng", 4)]
    p = make_parsed("CMHS_TH", responses, answers)
    (out_2024,) = validate(QS["CMHS_TH"], [p], WINDOW)
    (out_2025,) = validate(
        QS["CMHS_TH"], [p], (dt.datetime(2025, 3, 1), dt.datetime(2025, 3, 31, 23, 59))
    )
    assert len(out_2024.responses) == 0 and len(out_2025.responses) == 1


def test_service_listed_twice_in_one_source_is_rejected():
    code = "DVGD_8TC"

    def sheet(name: str, services: list[str]) -> Parsed:
        responses = [
            {"response_no": n, "submitted_at": None, "service": s}
            for n, s in enumerate(services, start=1)
        ]
        answers = [a for n in range(1, len(services) + 1) for a in full_answers(code, n)]
        return make_parsed(code, responses, answers, sheet=name)

    a = sheet("M2 trường A", ["Bán trú", "Học phí", "bán  TRÚ "])
    b = sheet("M2 trường B", ["Bán trú", "Học phí"])
    out_a, out_b = validate(QS[code], [a, b], WINDOW)
    assert list(out_a.responses["service"]) == ["Học phí"]
    assert set(out_a.answers["response_no"]) == {2}
    rej = out_a.rejections
    assert list(rej["rule"]) == ["service_duplicate"] * 2
    assert list(rej["question_code"]) == ["DICH_VU"] * 2
    assert list(rej["raw_value"]) == ["Bán trú", "bán  TRÚ "]  # as typed, so it can be found
    assert list(rej["row"]) == [2, 4]
    # the same service in another school's sheet is no duplicate
    assert out_b.rejections.empty and len(out_b.responses) == 2


# --- many sources in one run --------------------------------------------------------------


def test_two_sources_in_one_call_come_back_separately():
    resp = [
        {"response_no": 1, "submitted_at": IN_WINDOW},
        {"response_no": 2, "submitted_at": IN_WINDOW},
    ]
    a = make_parsed(
        "CMHS_TH",
        resp,
        [(1, "TC1", "likert", 4.0, "Hài lòng", 4), (2, "TC1", "likert", 7.0, "7", 4)],
        sheet="Trường A",
    )
    b = make_parsed(
        "CMHS_TH",
        [{"response_no": 1, "submitted_at": dt.datetime(2023, 10, 15)}, resp[1]],
        [(1, "TC1", "likert", 5.0, "Rất hài lòng", 4), (2, "TC1", "likert", 1.0, "1", 4)],
        sheet="Trường B",
    )
    out_a, out_b = validate(QS["CMHS_TH"], [a, b], WINDOW)
    # A: its response 1 is untouched although B's response 1 was rejected
    assert list(out_a.responses["response_no"]) == [1, 2]
    assert list(out_a.answers["value"]) == [4.0]
    assert list(out_a.rejections["rule"]) == ["likert_out_of_range"]
    assert set(out_a.rejections["sheet"]) == {"Trường A"}
    # B: response 1 rejected whole, response 2 kept
    assert list(out_b.responses["response_no"]) == [2]
    assert list(out_b.answers["value"]) == [1.0]
    assert list(out_b.rejections["rule"]) == ["submitted_outside_window"]
    assert set(out_b.rejections["sheet"]) == {"Trường B"}


def test_one_gx_run_per_frame_whatever_the_number_of_sources(monkeypatch):
    calls: list[tuple[str, int]] = []
    real = failed_rules

    def spy(code, frame_name, frame, parameters):
        calls.append((frame_name, len(frame)))
        return real(code, frame_name, frame, parameters)

    monkeypatch.setattr("flows.validate.judge.failed_rules", spy)
    sheets = [good_fixture("CMHS_TH", sheet=f"S{i}") for i in range(5)]
    out = validate(QS["CMHS_TH"], sheets, WINDOW)
    assert len(out) == 5
    n_answers = sum(len(p.answers) for p in sheets)
    assert sorted(calls) == [("answers", n_answers), ("responses", 15)]


def test_empty_input_and_empty_sheets():
    assert validate(QS["CMHS_TH"], [], WINDOW) == []
    empty = make_parsed("CMHS_TH", [], [])
    (out,) = validate(QS["CMHS_TH"], [empty], WINDOW)
    assert out.answers.empty and out.responses.empty and out.rejections.empty


def test_many_rows_vectorised():
    """A few thousand rows across sources: rejections land on the right sheet and cell."""
    rng = np.random.default_rng(7)
    sheets = []
    for s in range(20):
        n = 50
        responses = [{"response_no": i, "submitted_at": IN_WINDOW} for i in range(1, n + 1)]
        answers = [a for i in range(1, n + 1) for a in full_answers("CMHS_TH", i, shift=i)]
        bad = rng.choice(len(answers), 5, replace=False)
        for k in bad:
            no, qc, kind, _, _, col = answers[k]
            if kind == "likert":
                answers[k] = (no, qc, kind, 0.0, f"bad{s}", col)
        sheets.append(make_parsed("CMHS_TH", responses, answers, sheet=f"S{s}"))
    out = validate(QS["CMHS_TH"], sheets, WINDOW)
    for s, (before, after) in enumerate(zip(sheets, out, strict=True)):
        planted = before.answers[before.answers["raw"] == f"bad{s}"]
        assert len(after.rejections) == len(planted)
        assert set(after.rejections["raw_value"]) <= {f"bad{s}"}
        assert sorted(zip(after.rejections["row"], after.rejections["col"], strict=True)) == sorted(
            zip(planted["row"], planted["col"], strict=True)
        )
        assert len(after.answers) == len(before.answers) - len(planted)


def test_an_expectation_that_cannot_run_stops_the_run(monkeypatch):
    data = json.loads(json.dumps(load_suite("CMHS_TH")))
    data["expectations"][0]["kwargs"]["column"] = "no_such_column"
    monkeypatch.setattr("flows.validate.suites.load_suite", lambda code, folder=SUITES_DIR: data)
    compiled_suite.cache_clear()
    try:
        with pytest.raises(SuiteError, match="question_code_unknown"):
            validate(QS["CMHS_TH"], [good_fixture("CMHS_TH")], WINDOW)
    finally:
        compiled_suite.cache_clear()


def test_result_format_lists_every_unexpected_row_by_row_key():
    assert RESULT_FORMAT["result_format"] == "COMPLETE"
    assert RESULT_FORMAT["unexpected_index_column_names"] == ["row_key"]


def test_sheets_of_another_questionnaire_are_refused():
    with pytest.raises(ValueError, match="PAPI_TH"):
        validate(QS["CMHS_TH"], [good_fixture("PAPI_TH")], WINDOW)


def test_importing_the_module_does_not_import_gx():
    """GX costs seconds to import; CLI commands that never validate must not pay for it."""
    import subprocess
    import sys

    code = "import sys, flows.validate; print('great_expectations' in sys.modules)"
    root = SUITES_DIR.parent  # the repository, whatever directory pytest was started from
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=root
    )
    assert done.stdout.strip() == "False"


@pytest.mark.parametrize("code", CODES)
def test_distinct_rows_give_every_copy_the_verdict_gx_gives_it(code):
    """GX is shown each distinct answer once; the verdicts equal GX's over every row."""
    p, _ = bad_fixture(code)
    copies = [p] * 7  # seven schools sending the same sheet: every answer has 6 twins
    answers = pd.concat([c.answers for c in copies], ignore_index=True)
    frame = pd.DataFrame(
        {
            "row_key": np.arange(len(answers), dtype="int64"),
            "question_code": answers["question_code"].astype("str"),
            "kind": answers["kind"].astype("str"),
            "value": pd.to_numeric(answers["value"], errors="coerce").astype("float64"),
            "raw": answers["raw"].astype("str"),
        }
    )
    compiled = compiled_suite(code)
    assert ANSWERS in compiled.row_wise
    params = {"question_codes": [i.code for i in QS[code].scored_items]}
    every_row = run_frame(code, compiled, compiled.suites[ANSWERS], frame, params)
    distinct = failed_rules(code, ANSWERS, frame, params)
    assert len(every_row) >= 7 and len(distinct_rows(frame)[0]) < len(frame) / 6
    pd.testing.assert_series_equal(distinct.sort_index(), every_row.sort_index())


def _frames_shown_to_gx(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int]]:
    shown: list[tuple[str, int]] = []
    real = run_frame

    def spy(code, compiled, suite, frame, parameters):
        shown.append((suite.name.rsplit(".", 1)[1], len(frame)))
        return real(code, compiled, suite, frame, parameters)

    monkeypatch.setattr("flows.validate.distinct.run_frame", spy)
    return shown


#: Schools in a batch sending the same sheet: each distinct row then repeats often enough to
#: be remembered (flows.validate.distinct._REPEATS).
SCHOOLS = 5


@pytest.mark.parametrize("code", CODES)
def test_rows_seen_in_an_earlier_batch_are_not_shown_to_gx_again(code, monkeypatch):
    compiled_suite.cache_clear()  # a suite of its own: no verdicts from other tests
    shown = _frames_shown_to_gx(monkeypatch)
    p, _ = bad_fixture(code)
    first = validate(QS[code], [p] * SCHOOLS, WINDOW)
    assert {frame for frame, _ in shown} == {ANSWERS, RESPONSES}
    shown.clear()
    # the next batch: the same rows again, from other schools' sheets
    other = dataclasses.replace(p, sheet="Trường khác")
    again = validate(QS[code], [other] * SCHOOLS, WINDOW)
    # every distinct row's verdict was known (a frame with a rule across rows, such as a
    # service listed twice, is always validated whole)
    whole = [(f, n) for f, n in shown if f not in compiled_suite(code).row_wise]
    assert shown == whole and len(whole) <= 1
    for a, b in zip(again, first, strict=True):
        pd.testing.assert_frame_equal(
            a.rejections.drop(columns="sheet"), b.rejections.drop(columns="sheet")
        )
        pd.testing.assert_frame_equal(a.answers, b.answers)
        pd.testing.assert_frame_equal(a.responses, b.responses)
    # one new answer value: only that row is shown, and judged
    late = p.answers.copy()
    late.loc[0, ["value", "raw"]] = [99.0, "99"]
    shown.clear()
    changed = validate(QS[code], [dataclasses.replace(p, answers=late)] * SCHOOLS, WINDOW)
    assert shown == [*whole, (ANSWERS, 1)]
    assert len(changed[0].rejections) == len(first[0].rejections) + 1


def test_rows_that_hardly_repeat_are_not_remembered(monkeypatch):
    compiled_suite.cache_clear()
    shown = _frames_shown_to_gx(monkeypatch)
    # every response at its own time, twice (two schools): each timestamp repeats only twice
    responses = [
        {"response_no": n, "submitted_at": IN_WINDOW + dt.timedelta(minutes=n)} for n in range(8)
    ]
    answers = [a for n in range(8) for a in full_answers("CMHS_TH", n)]
    p = make_parsed("CMHS_TH", responses, answers)
    for _ in range(2):
        validate(QS["CMHS_TH"], [p, p], WINDOW)
    assert [f for f, _ in shown].count(RESPONSES) == 2  # shown again: nothing remembered
    assert [f for f, _ in shown].count(ANSWERS) == 1  # answers repeat: remembered
    assert [frame for frame, _ in compiled_suite("CMHS_TH").verdicts] == [ANSWERS]
    compiled_suite.cache_clear()


def test_verdicts_are_per_window_and_survive_their_bound(monkeypatch):
    compiled_suite.cache_clear()
    p, where = bad_fixture("CMHS_TH")
    first = validate(QS["CMHS_TH"], [p] * SCHOOLS, WINDOW)
    assert "submitted_outside_window" in set(first[0].rejections["rule"])
    # another window is another set of verdicts: the early response is now inside it
    wider = (dt.datetime(2024, 9, 1), CLOSES)
    out = validate(QS["CMHS_TH"], [p] * SCHOOLS, wider)
    assert "submitted_outside_window" not in set(out[0].rejections["rule"])
    # with room for one verdict, the known ones are dropped as new ones come, and every row
    # still gets its own verdict
    monkeypatch.setattr("flows.validate.distinct.MAX_VERDICTS", 1)
    late = p.answers.copy()
    late.loc[0, ["value", "raw"]] = [99.0, "99"]
    changed = validate(QS["CMHS_TH"], [dataclasses.replace(p, answers=late)] * SCHOOLS, WINDOW)
    assert set(changed[0].rejections["rule"]) == set(where)
    assert len(changed[0].rejections) == len(first[0].rejections) + 1
    compiled_suite.cache_clear()


# --- frames as prepared for GX: same verdicts as GX over the rows as parsed ---------------


def _every_row_and_prepared(
    code: str, frame_name: str, plain: pd.DataFrame, prepared: pd.DataFrame, params: dict
) -> tuple[pd.Series, pd.Series]:
    """GX over every row of ``plain`` (as parse gives it), and what validate's path gives on
    ``prepared`` (the same rows as validate hands them to GX)."""
    compiled = compiled_suite(code)
    every_row = run_frame(code, compiled, compiled.suites[frame_name], plain, params)
    return every_row.sort_index(), failed_rules(code, frame_name, prepared, params).sort_index()


EDGE_TIMES = [
    None,  # paper form: kept
    OPENS,  # inclusive bounds: kept
    CLOSES,
    OPENS - dt.timedelta(microseconds=1),
    CLOSES + dt.timedelta(microseconds=1),
    IN_WINDOW,
    IN_WINDOW,  # a twin: the distinct-rows path
    dt.datetime(2023, 10, 15),
]


@pytest.mark.parametrize("code", CODES)
@pytest.mark.parametrize("beyond_ns", [False, True])
def test_timestamps_given_as_datetime64_ns_keep_gx_verdicts(code, beyond_ns):
    """GX compares datetime64[ns] vectorised and other units value by value: same verdicts,
    NaT kept and both bounds inclusive; a year beyond datetime64[ns] keeps parse's unit."""
    times = EDGE_TIMES + ([dt.datetime(3000, 1, 1)] if beyond_ns else [])
    submitted = pd.Series(times, dtype="datetime64[us]")
    prepared = stacked_timestamps([pd.DataFrame({"submitted_at": submitted})])
    assert str(prepared.dtype) == ("datetime64[us]" if beyond_ns else "datetime64[ns]")
    n = len(times)
    plain = pd.DataFrame({"row_key": np.arange(n, dtype="int64"), "submitted_at": submitted})
    ready = pd.DataFrame({"row_key": np.arange(n, dtype="int64"), "submitted_at": prepared})
    if QS[code].kind == "service_review":
        services = pd.Series([f"Dịch vụ {i % 3}" if i % 4 else None for i in range(n)])
        for f in (plain, ready):
            f["source_idx"] = np.arange(n) % 2
            f["service"] = service_key(services)
    params = {"opens": OPENS, "closes": CLOSES}
    every_row, prepared_verdicts = _every_row_and_prepared(code, RESPONSES, plain, ready, params)
    outside = every_row[every_row == "submitted_outside_window"].index
    assert sorted(outside) == [3, 4, 7] + ([8] if beyond_ns else [])
    pd.testing.assert_series_equal(prepared_verdicts, every_row)


def test_timestamps_at_the_bounds_and_missing_through_validate():
    responses = [{"response_no": i, "submitted_at": t} for i, t in enumerate(EDGE_TIMES, start=1)]
    answers = [(i, "TC1", "likert", 4.0, "Hài lòng", 4) for i in range(1, len(EDGE_TIMES) + 1)]
    (out,) = validate(QS["CMHS_TH"], [make_parsed("CMHS_TH", responses, answers)], WINDOW)
    assert list(out.rejections["response_no"]) == [4, 5, 8]
    assert list(out.responses["response_no"]) == [1, 2, 3, 6, 7]
    assert list(out.rejections["raw_value"]) == [
        "30/09/2024 23:59:59",
        "01/11/2024 00:00:00",
        "15/10/2023 00:00:00",
    ]


def _answers_frame(rows: list[tuple[Any, Any, float, Any]], as_text: bool) -> pd.DataFrame:
    """The answers frame of ``rows`` (question_code, kind, value, raw): plain str columns, or
    the text columns as ``validate`` builds them (codes)."""
    cols = list(zip(*rows, strict=True))

    def text(values: tuple) -> Any:
        array = np.array(values, dtype=object)
        return text_column(array) if as_text else pd.Series(array).astype("str")

    return pd.DataFrame(
        {
            "row_key": np.arange(len(rows), dtype="int64"),
            "question_code": text(cols[0]),
            "kind": text(cols[1]),
            "value": np.array(cols[2], dtype="float64"),
            "raw": text(cols[3]),
        }
    )


ODD_ANSWERS = [
    ("TC1", "likert", 4.0, "Hài lòng"),
    ("TC1", "likert", 4.0, "Hài lòng"),
    ("TC2", "likert", math.nan, "Hài lòng lắm"),
    ("TC2", "likert", math.nan, "Hài lòng lắm"),
    ("TC3", "likert", math.nan, None),
    ("TC3", "likert", 6.0, math.nan),
    (None, "likert", 3.0, "3"),
    ("TC4", None, 3.0, "3"),
    ("TC4", math.nan, math.nan, "?"),
    ("MONG_DOI", "percent", 100.0, "100"),
    ("MONG_DOI", "percent", -0.0, "-0"),
    ("MONG_DOI", "percent", 100.5, "100,5"),
    ("MONG_DOI", "percent", math.nan, "khá tốt"),
    ("KHONG_CO", "likert", 4.0, "4"),
    ("TC5", "text", 4.0, "4"),
]


def test_answers_held_as_codes_keep_gx_verdicts():
    """Text columns as codes (NaN values, NaN raw text, missing codes and kinds): GX is shown
    each distinct row once, as str, and every row gets the verdict GX gives it."""
    params = {"question_codes": [i.code for i in QS["CMHS_TH"].scored_items]}
    plain = _answers_frame(ODD_ANSWERS * 3, as_text=False)
    coded = _answers_frame(ODD_ANSWERS * 3, as_text=True)
    pd.testing.assert_frame_equal(for_gx(coded), plain)
    every_row, verdicts = _every_row_and_prepared("CMHS_TH", ANSWERS, plain, coded, params)
    assert set(every_row) == {
        "likert_unreadable",
        "likert_out_of_range",
        "question_code_unknown",
        "kind_unexpected",
        "percent_out_of_range",
        "percent_unreadable",
    }
    pd.testing.assert_series_equal(verdicts, every_row)
    distinct, inverse = distinct_rows(coded)
    pd.testing.assert_frame_equal(for_gx(distinct), distinct_rows(plain)[0])
    np.testing.assert_array_equal(inverse, distinct_rows(plain)[1])


def test_text_is_astype_str_whatever_the_objects():
    """1, 1.0 and True are equal to Python but not as text: each keeps its own text."""
    values = np.array([1, "1", 1.0, True, None, math.nan, pd.NA, "a", "a", "b"], dtype=object)
    got = pd.Series(text_column(values))
    pd.testing.assert_series_equal(
        got.astype(got.cat.categories.dtype), pd.Series(values).astype("str")
    )
    assert text_column(np.array([], dtype=object)).size == 0


def test_service_review_with_missing_services_and_timestamps_end_to_end():
    code = "DVGD_8TC"
    services = ["Bán trú", None, "bán TRÚ", "Học phí", "  ", "Nước uống"]
    times = [None, OPENS, CLOSES, CLOSES + dt.timedelta(microseconds=1), IN_WINDOW, None]
    responses = [
        {"response_no": n, "submitted_at": t, "service": s}
        for n, (s, t) in enumerate(zip(services, times, strict=True), start=1)
    ]
    answers = [a for n in range(1, len(services) + 1) for a in full_answers(code, n)]
    # a bad value in response 1 goes with its (duplicate) response; in response 6, alone
    answers[0] = (*answers[0][:3], math.nan, "Tốt lắm", answers[0][5])
    last = len(answers) - len(QS[code].scored_items)
    answers[last] = (*answers[last][:3], math.nan, "Tốt lắm", answers[last][5])
    (out,) = validate(QS[code], [make_parsed(code, responses, answers)], WINDOW)
    rej = out.rejections
    assert list(zip(rej["response_no"], rej["rule"], strict=True)) == [
        (1, "service_duplicate"),
        (2, "service_missing"),
        (3, "service_duplicate"),
        (4, "submitted_outside_window"),
        (5, "service_missing"),
        (6, "level_unreadable"),
    ]
    assert list(out.responses["response_no"]) == [6]
    assert len(out.answers) == len(QS[code].scored_items) - 1


def test_only_expectations_without_mostly_judge_each_row_alone():
    exp = {"type": "expect_column_values_to_be_in_set", "kwargs": {"column": "kind"}}
    assert judges_each_row(exp)
    assert not judges_each_row({**exp, "kwargs": {"column": "kind", "mostly": 0.9}})
    assert not judges_each_row({**exp, "type": "expect_compound_columns_to_be_unique"})


def test_a_batch_without_rejections_keeps_each_sheets_rejections():
    earlier = pd.DataFrame(
        [["response", "S", 9, None, None, "", "duplicate_response", "Phiếu trùng", 8]],
        columns=REJECTION_COLUMNS,
    )
    p = good_fixture("CMHS_TH")
    p.rejections = earlier
    (out,) = validate(QS["CMHS_TH"], [p], WINDOW)
    assert out.rejections is earlier and out.answers is p.answers


@pytest.mark.parametrize("code", CODES)
def test_answers_as_validate_prepares_them_keep_gx_verdicts(code):
    """Codes for text, raw text left out when no expectation reads it, each distinct row
    shown once: every row gets the verdict GX gives it over the full frame as parsed."""
    p, _ = bad_fixture(code)
    odd = [(qc, kind, value, raw) for qc, kind, value, raw in ODD_ANSWERS if kind != "likert"]
    rows = [tuple(r) for r in p.answers[["question_code", "kind", "value", "raw"]].to_numpy()]
    rows = (rows + odd) * 5
    plain = _answers_frame(rows, as_text=False)
    params = {"question_codes": [i.code for i in QS[code].scored_items]}
    compiled = compiled_suite(code)
    read = [c for c in plain.columns if c == "row_key" or compiled.reads(ANSWERS, c, params)]
    assert read == ["row_key", "question_code", "kind", "value"]
    prepared = _answers_frame(rows, as_text=True)[read]
    every_row, verdicts = _every_row_and_prepared(code, ANSWERS, plain, prepared, params)
    assert len(every_row) >= 5 * (len(BAD) // 4)
    pd.testing.assert_series_equal(verdicts, every_row)


def test_a_column_is_read_when_named_in_kwargs_or_parameters_or_frame_not_row_wise():
    compiled = compiled_suite("DVGD_8TC")
    assert not compiled.reads(ANSWERS, "raw", {"question_codes": ["C1"]})
    assert compiled.reads(ANSWERS, "raw", {"column": "raw"})
    assert compiled.reads(ANSWERS, "kind", {})  # row condition and kind rule
    assert RESPONSES not in compiled.row_wise  # service_duplicate compares rows
    assert compiled.reads(RESPONSES, "anything", {})


def test_timestamps_of_sheets_with_other_dtypes_stack_as_instants():
    """A sheet in datetime64[ns] (a nanosecond past the window is outside) beside one whose
    timestamps are objects: each instant is compared as it is."""
    a = make_parsed(
        "CMHS_TH",
        [{"response_no": 1, "submitted_at": IN_WINDOW}, {"response_no": 2, "submitted_at": None}],
        [(1, "TC1", "likert", 4.0, "4", 4), (2, "TC1", "likert", 4.0, "4", 4)],
        sheet="A",
    )
    a.responses["submitted_at"] = pd.Series(
        [pd.Timestamp(CLOSES) + pd.Timedelta(nanoseconds=500), pd.Timestamp(CLOSES)],
        dtype="datetime64[ns]",
    )
    b = make_parsed(
        "CMHS_TH",
        [{"response_no": 1, "submitted_at": IN_WINDOW}, {"response_no": 2, "submitted_at": None}],
        [(1, "TC1", "likert", 4.0, "4", 4)],
        sheet="B",
    )
    b.responses["submitted_at"] = pd.Series([OPENS - dt.timedelta(seconds=1), None], dtype=object)
    out_a, out_b = validate(QS["CMHS_TH"], [a, b], WINDOW)
    assert list(out_a.responses["response_no"]) == [2]
    assert list(out_a.rejections["rule"]) == ["submitted_outside_window"]
    assert list(out_b.responses["response_no"]) == [2]
    assert list(out_b.rejections["raw_value"]) == ["30/09/2024 23:59:59"]
