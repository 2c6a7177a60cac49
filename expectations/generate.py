"""Write the Great Expectations suites (``expectations/<CODE>.json``) from one rule catalogue.

The JSON files are what runs; this script is how they are made, so that a rule reads the same in
every suite and a new questionnaire gets its suite without copy-paste. Edit the catalogue here,
then run ``python -m expectations.generate`` and commit the JSON;
``tests/validate/test_validate.py`` fails while a JSON file differs from what this script
would write.

Every expectation validates one of two frames that ``flows.validate`` builds per questionnaire
and run (all sources together):

- ``answers``: one row per non-empty scored cell: row_key, question_code, kind, value, raw;
- ``responses``: one row per response: row_key, submitted_at, and for service reviews
  source_idx (which sheet) and service (the service name, normalised for comparison).

``meta`` of every expectation: ``rule`` (snake_case id, the same meaning in every suite),
``reason`` and ``fix`` (Vietnamese, for the school's data officer), ``frame`` (which frame) and
``scope`` (``value``: the answer alone is rejected; ``response``: the whole response is).
Suite parameters are filled in at run time: ``question_codes`` from the loaded questionnaire
(so a province's own form needs no suite edit), ``opens``/``closes`` from the campaign window.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from expectations import SUITES_DIR
from schemas.questionnaire import Questionnaire, load_questionnaires

#: Answer values each kind may take after normalisation (DOMAIN.md scales).
LIKERT_VALUES = [1, 2, 3, 4, 5]
YESNO_VALUES = [0, 1]
LEVEL_VALUES = [0, 3, 5, 7, 10]


def _when_kind(kind: str) -> dict[str, Any]:
    # GX >= 1.9 condition object (serialised form of Column("kind") == kind); the older
    # condition_parser="pandas" string form is deprecated and warns on every load.
    return {"type": "comparison", "column": {"name": "kind"}, "operator": "==", "parameter": kind}


def _expectation(
    type_: str,
    kwargs: dict[str, Any],
    *,
    rule: str,
    frame: str,
    scope: str,
    reason: str,
    fix: str,
    notes: str,
) -> dict[str, Any]:
    return {
        "type": type_,
        "kwargs": kwargs,
        "meta": {"rule": rule, "reason": reason, "fix": fix, "frame": frame, "scope": scope},
        "notes": notes,
    }


def _likert_rules() -> list[dict[str, Any]]:
    """Rules on Likert-5 answers: unreadable first, then out of range."""
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": "value", "row_condition": _when_kind("likert")},
            rule="likert_unreadable",
            frame="answers",
            scope="value",
            reason="Ô này không phải một mức hài lòng của thang 1-5",
            fix=(
                "Chọn một trong 5 mức: Rất không hài lòng, Không hài lòng, Bình thường, "
                "Hài lòng, Rất hài lòng (hoặc số 1 đến 5); để trống nếu người trả lời bỏ qua."
            ),
            notes=(
                "Parse keeps a label it cannot read (a typo, a free-text answer, a number "
                "outside 1-5) as NaN with its raw text; such an answer must not count as "
                "any level, and the school needs to see which cell it was."
            ),
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            {
                "column": "value",
                "value_set": LIKERT_VALUES,
                "row_condition": _when_kind("likert"),
            },
            rule="likert_out_of_range",
            frame="answers",
            scope="value",
            reason="Mức hài lòng phải là số nguyên từ 1 đến 5",
            fix=(
                "Sửa thành số từ 1 đến 5 hoặc nhãn tương ứng; kiểm tra câu hỏi trên biểu mẫu "
                "dùng thang 1-5 (không phải 0-10)."
            ),
            notes=(
                "A linear-scale question set to 0-10, or a typed 6 or 3.5, gives a number "
                "outside the Likert scale. A set rather than 'between 1 and 5': a fraction "
                "would fall into none of the n_1..n_5 counts of mart_unit_question."
            ),
        ),
    ]


def _percent_rules() -> list[dict[str, Any]]:
    """Rules on MONG_DOI, the % of expectations met: unreadable first, then out of range."""
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": "value", "row_condition": _when_kind("percent")},
            rule="percent_unreadable",
            frame="answers",
            scope="value",
            reason="Không đọc được tỷ lệ % nhà trường đáp ứng mong đợi",
            fix="Ghi một số từ 0 đến 100 (có thể kèm dấu %), ví dụ 80 hoặc 80%.",
            notes="MONG_DOI is averaged as a number; text such as 'khá tốt' cannot be.",
        ),
        _expectation(
            "expect_column_values_to_be_between",
            {
                "column": "value",
                "min_value": 0,
                "max_value": 100,
                "row_condition": _when_kind("percent"),
            },
            rule="percent_out_of_range",
            frame="answers",
            scope="value",
            reason="Tỷ lệ % đáp ứng mong đợi phải từ 0 đến 100",
            fix=(
                "Sửa thành số từ 0 đến 100; trên Google Forms, đặt xác thực câu trả lời là "
                "số từ 0 đến 100 để tránh lỗi này."
            ),
            notes="A share of expectations met cannot exceed 100% or be negative.",
        ),
    ]


def _yesno_rules() -> list[dict[str, Any]]:
    """Rules on Có/Không answers: unreadable first, then out of range."""
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": "value", "row_condition": _when_kind("yesno")},
            rule="yesno_unreadable",
            frame="answers",
            scope="value",
            reason="Ô này không phải câu trả lời Có hoặc Không",
            fix="Ghi Có hoặc Không (đánh dấu x được hiểu là Có); để trống nếu không trả lời.",
            notes=(
                "pct_yes counts Có over answered; an unreadable answer is neither and must "
                "not change the denominator silently."
            ),
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            {
                "column": "value",
                "value_set": YESNO_VALUES,
                "row_condition": _when_kind("yesno"),
            },
            rule="yesno_invalid",
            frame="answers",
            scope="value",
            reason="Câu hỏi Có/Không chỉ nhận hai câu trả lời: Có hoặc Không",
            fix="Sửa ô này thành Có hoặc Không.",
            notes="A number typed into a Có/Không column (e.g. 2) is not an answer to it.",
        ),
    ]


def _level_rules() -> list[dict[str, Any]]:
    """Rules on service review levels: unreadable first, then out of range."""
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": "value", "row_condition": _when_kind("level")},
            rule="level_unreadable",
            frame="answers",
            scope="value",
            reason="Ô này không phải một trong 5 mức Tốt, Khá, Trung bình, Yếu, Kém",
            fix=(
                "Ghi một trong 5 mức: Tốt, Khá, Trung bình, Yếu, Kém "
                "(hoặc điểm tương ứng 10, 7, 5, 3, 0)."
            ),
            notes=(
                "A service's total is the sum of its eight criteria; an unreadable level "
                "must be shown to the school rather than summed as nothing."
            ),
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            {
                "column": "value",
                "value_set": LEVEL_VALUES,
                "row_condition": _when_kind("level"),
            },
            rule="level_invalid",
            frame="answers",
            scope="value",
            reason="Điểm tiêu chí chỉ nhận 10, 7, 5, 3 hoặc 0",
            fix=(
                "Sửa thành Tốt (10), Khá (7), Trung bình (5), Yếu (3) hoặc Kém (0); không ghi "
                "điểm lẻ như 8 hay 6."
            ),
            notes=(
                "The review scale has five levels only; a typed 8 would inflate the 0-80 "
                "total and the ranking."
            ),
        ),
    ]


#: Per answer kind, its rules, in the order they are checked.
_KIND_RULES = {
    "likert": _likert_rules,
    "percent": _percent_rules,
    "yesno": _yesno_rules,
    "level": _level_rules,
}


def _answer_rules(kinds: Sequence[str]) -> list[dict[str, Any]]:
    """Rules on the answers frame, in precedence order (an answer is reported by the first)."""
    common = [
        _expectation(
            "expect_column_values_to_be_in_set",
            {"column": "question_code", "value_set": {"$PARAMETER": "question_codes"}},
            rule="question_code_unknown",
            frame="answers",
            scope="value",
            reason="Câu trả lời thuộc một câu hỏi không có trong phiếu khảo sát này",
            fix=(
                "Dùng đúng mẫu phiếu của Sở; nếu trường đã thêm câu hỏi riêng, báo Sở để bổ sung "
                "vào mẫu phiếu trước khi nộp."
            ),
            notes=(
                "Parse maps headers to the questionnaire's item codes, so any other code means "
                "parse and schema disagree. The codes are the suite parameter question_codes, "
                "taken from the questionnaire actually loaded (a province's schemas_dir form "
                "included), so this JSON never goes stale when items are added."
            ),
        ),
        _expectation(
            "expect_column_values_to_be_in_set",
            {"column": "kind", "value_set": kinds},
            rule="kind_unexpected",
            frame="answers",
            scope="value",
            reason="Loại câu trả lời không đúng với câu hỏi của phiếu này",
            fix="Báo Sở: cột này trong tệp của trường khác với mẫu phiếu đã khai báo.",
            notes=(
                "The range rules below only look at the kinds this questionnaire has; an answer "
                "of any other kind would pass unchecked, so it is stopped here."
            ),
        ),
    ]
    by_kind = [rule for kind, rules in _KIND_RULES.items() if kind in kinds for rule in rules()]
    return common + by_kind


def _response_rules(q: Questionnaire) -> list[dict[str, Any]]:
    """Rules on the responses frame, in precedence order."""
    rules = [
        _expectation(
            "expect_column_values_to_be_between",
            {
                "column": "submitted_at",
                "min_value": {"$PARAMETER": "opens"},
                "max_value": {"$PARAMETER": "closes"},
            },
            rule="submitted_outside_window",
            frame="responses",
            scope="response",
            reason="Phiếu được gửi ngoài thời gian khảo sát của đợt này",
            fix=(
                "Kiểm tra ngày giờ ở cột Dấu thời gian (ngày/tháng/năm). Phiếu gửi thử trước khi "
                "mở khảo sát hoặc phiếu của đợt trước: xóa dòng đó."
            ),
            notes=(
                "Test submissions before the form opened and last year's rows left in a reused "
                "sheet are not part of this campaign. The window is the campaign's (suite "
                "parameters opens/closes), so one JSON serves every campaign. A missing time "
                "(paper forms typed in) is null and therefore kept."
            ),
        )
    ]
    if q.kind == "service_review":
        rules += _service_rules()
    return rules


def _service_rules() -> list[dict[str, Any]]:
    """Rules on a service review's responses: each row names one service, once per sheet."""
    return [
        _expectation(
            "expect_column_values_to_not_be_null",
            {"column": "service"},
            rule="service_missing",
            frame="responses",
            scope="response",
            reason="Dòng có điểm đánh giá nhưng không ghi tên dịch vụ",
            fix=(
                "Ghi tên dịch vụ vào cột Tên dịch vụ, hoặc xóa dòng nếu dòng đó không phải "
                "một dịch vụ (ví dụ dòng tổng cộng)."
            ),
            notes=(
                "Services are ranked by name across schools; scores without a service "
                "cannot be placed in any ranking."
            ),
        ),
        _expectation(
            "expect_compound_columns_to_be_unique",
            {"column_list": ["source_idx", "service"]},
            rule="service_duplicate",
            frame="responses",
            scope="response",
            reason="Dịch vụ này được ghi hơn một lần trong cùng một bảng",
            fix=(
                "Mỗi dịch vụ chỉ ghi một dòng: giữ dòng có điểm đã được hội đồng thống nhất và "
                "xóa các dòng trùng (tên trùng dù khác chữ hoa, chữ thường hay khoảng trắng)."
            ),
            notes=(
                "A school's review lists each service once (form M1); two rows would give "
                "the service two totals. All copies are rejected, since which one the board "
                "meant cannot be told. service is compared case- and space-insensitively."
            ),
        ),
    ]


def build_suite(q: Questionnaire) -> dict[str, Any]:
    """The suite of one questionnaire as a JSON-ready dict, normalised by GX's own serialiser."""
    import great_expectations as gx

    order = ["likert", "percent", "yesno", "level"]
    kinds = sorted({i.kind for i in q.scored_items}, key=order.index)
    suite: dict[str, Any] = {
        "name": q.code,
        "expectations": [*_answer_rules(kinds), *_response_rules(q)],
        "meta": {
            "questionnaire": q.code,
            "generated_by": "python -m expectations.generate",
            "frames": {
                "answers": "one row per non-empty scored cell: row_key, question_code, kind, "
                "value (float, NaN when unreadable), raw",
                "responses": "one row per response: row_key, submitted_at (NaT allowed)"
                + (", source_idx, service" if q.kind == "service_review" else ""),
            },
            "suite_parameters": {
                "question_codes": "scored item codes of the loaded questionnaire",
                "opens": "start of the campaign window (naive local datetime)",
                "closes": "end of the campaign window (naive local datetime)",
            },
        },
        "notes": (
            f"Validation rules for {q.code} ({q.name}). Generated by expectations/generate.py; "
            "edit the generator, not this file."
        ),
    }
    # Round-trip through GX so the file is exactly what GX itself would save and load.
    out: dict[str, Any] = dict(gx.ExpectationSuite(**suite).to_json_dict())
    out["meta"].pop("great_expectations_version", None)  # keep files stable across GX patches
    return out


def dumps(suite: dict[str, Any]) -> str:
    """The file text of a suite: stable key order, readable Vietnamese, trailing newline."""
    return json.dumps(suite, ensure_ascii=False, indent=2) + "\n"


def main(folder: Path = SUITES_DIR) -> list[Path]:
    """Write one suite per questionnaire of ``schemas/``; returns the files written."""
    written = []
    for code, q in load_questionnaires().items():
        path = folder / f"{code}.json"
        path.write_text(dumps(build_suite(q)), encoding="utf-8")
        written.append(path)
    return written


if __name__ == "__main__":
    for p in main():
        print(p)
