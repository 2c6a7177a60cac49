"""Sheets "Cảnh báo" and "Cảnh báo chi tiết": the scope's alerts.

"Cảnh báo" is the digest leadership acts on: one line per school or unit (``flows.alerts.digest``:
worst severity, the dimensions and items below target, other alerts, responses), the worst and
furthest below target first. "Cảnh báo chi tiết" lists every alert, its subject in words and its
suggested follow-up. Free text (subjects, notes) has e-mails and phone numbers masked.
"""

from __future__ import annotations

from typing import Any

from openpyxl import Workbook
from openpyxl.worksheet.worksheet import Worksheet

from flows.alerts import RULES, DigestLine, action_for, digest, sample_size
from flows.privacy import mask_personal
from flows.publish.labels import (
    ALERT_SHEET,
    ALERT_STATUS_LABELS,
    DIMENSION_SHORT,
    EXPECTATION,
    LEVEL_LABELS,
    SCOPE_LABELS,
    SEVERITY_LABELS,
)
from flows.publish.workbooks.data import (
    CampaignData,
    Scope,
    Subject,
)
from flows.publish.workbooks.figures import (
    dimension_label,
    questionnaire_label,
    scope_alerts,
    shown_value,
    to_seconds,
)
from flows.publish.workbooks.sheet import (
    new_sheet,
    put,
    set_widths,
    write_empty,
    write_header,
)
from flows.publish.xlsx import (
    DATETIME_FORMAT,
    INT_FORMAT,
    MEAN_FORMAT,
    PCT_FORMAT,
    POINTS_FORMAT,
    SEVERITY_STYLE,
    VALUE_FORMAT,
    print_setup,
    set_style,
)
from schemas.questionnaire import DIMENSIONS
from schemas.records import column_letter
from warehouse.read_models import Row

ALERT_HEADERS = (
    "Mức",
    "Quy tắc",
    "Phạm vi",
    "Mã",
    "Tên",
    "Nội dung",
    "Giá trị",
    "Ngưỡng",
    "Trạng thái",
    "Lần đầu",
    "Lần gần nhất",
    "Ghi chú",
    "Hướng xử lý đề xuất",
)


#: The sheet that lists every alert on its own line.
ALERT_DETAIL_SHEET = f"{ALERT_SHEET} chi tiết"

DIGEST_HEADERS = (
    "Mức",
    "Mã",
    "Trường / đơn vị",
    "Số phiếu",
    "Tỷ lệ hài lòng thấp nhất (%)",
    "Tiêu chí dưới mục tiêu",
    "Câu hỏi nhiều ý kiến không hài lòng",
    "Cảnh báo khác",
    "Số cảnh báo",
)
_DIGEST_WIDTHS = (8, 10, 22, 8, 11, 34, 20, 34, 8)
#: A digest this long still prints legibly on one page; a longer one flows onto more.
_ONE_PAGE_LINES = 40


def scope_digest(data: CampaignData, scope: Scope) -> list[tuple[DigestLine, int]]:
    """The scope's unresolved alerts as digest lines (``flows.alerts.digest``), each with the
    valid responses behind it."""
    lookups = data.lookups
    key = (scope.kind, scope.code)
    if key not in lookups.digests:
        active = [a for a in scope_alerts(data, scope) if a["status"] != "resolved"]
        lines = digest(active, data.questionnaires, data.thresholds["pct_satisfied_amber"])
        lookups.digests[key] = [
            (line, sample_size(line, _line_counts(data, line))) for line in lines
        ]
    return list(lookups.digests[key])


def _line_counts(data: CampaignData, line: DigestLine) -> list[dict[str, Any]]:
    """The response counts ``sample_size`` may add up for ``line``: its school's or its
    unit's rows, every row for the province's own line."""
    by = data.lookups.response_counts_by.get(line.scope)
    if by is None:
        return data.lookups.response_counts
    return by.get((line.scope_code,), [])


def scope_name(data: CampaignData, scope: str, code: str) -> str:
    """The name of a school, a unit, or the province."""
    if scope == "school":
        return str(data.schools.get(code, {}).get("school_name") or code)
    if scope == "unit":
        return data.units.get(code, code)
    return "Toàn tỉnh"


def dimensions_text(data: CampaignData, line: DigestLine) -> str:
    """The dimensions below target in words, by questionnaire ("Cha mẹ học sinh: Hài lòng
    chung, Tiếp cận")."""
    return _by_questionnaire(
        data, [(q, DIMENSION_SHORT.get(d, d)) for q, d in line.dimensions], ", "
    )


def items_text(data: CampaignData, line: DigestLine) -> str:
    """The items with too many dissatisfied, by code, by questionnaire."""
    return _by_questionnaire(data, [(q, item) for q, _, item in line.items], " ")


def _by_questionnaire(data: CampaignData, pairs: list[tuple[str, str]], sep: str) -> str:
    """ "label: a, b" per questionnaire, one a line; the label left out when there is one."""
    out: dict[str, list[str]] = {}
    for q, text in pairs:
        out.setdefault(q, []).append(text)
    if len(out) == 1:
        return sep.join(next(iter(out.values())))
    return "\n".join(f"{digest_questionnaire(data, q)}: {sep.join(t)}" for q, t in out.items())


def digest_questionnaire(data: CampaignData, code: str) -> str:
    """A questionnaire named with its levels, where the digest has no level column
    ("Cha mẹ học sinh THCS", "Học sinh THPT/GDTX", "Cha mẹ học sinh (PAPI)")."""
    q = data.questionnaires.get(code)
    if q is None or q.kind != "satisfaction":
        return questionnaire_label(data, code)
    return f"{q.respondent} {'/'.join(q.levels)}"


def _subject_words(data: CampaignData, subject: str) -> str:
    """What an alert outside the satisfaction figures was raised on, in words: a
    questionnaire, a PAPI indicator's wording, or the subject itself (a service)."""
    parts = [p for p in subject.split("/") if p]
    if len(parts) == 1 and parts[0] in data.questionnaires:
        return digest_questionnaire(data, parts[0])
    if len(parts) == 1 and parts[0] in data.lookups.known_items:
        return _item_text(data, None, parts[0])
    return mask_personal(" / ".join(parts))


def others_text(data: CampaignData, line: DigestLine) -> str:
    """The other alerts of a line: each rule's title with what it was raised on."""
    by_rule: dict[str, list[str]] = {}
    for rule, subject in line.others:
        by_rule.setdefault(rule, []).append(_subject_words(data, subject or ""))
    return "\n".join(
        (RULES[rule].title if rule in RULES else rule)
        + (f" ({', '.join(dict.fromkeys(w for w in whats if w))})" if any(whats) else "")
        for rule, whats in by_rule.items()
    )


def write_alert_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Cảnh báo": one line per school or unit with unresolved alerts, the most severe
    and furthest below target first; every alert is on "Cảnh báo chi tiết"."""
    note = (
        f"Mỗi dòng gộp các cảnh báo chưa xử lý của một trường hoặc đơn vị; từng cảnh báo và "
        f"hướng xử lý ở trang {ALERT_DETAIL_SHEET}."
    )
    ws, hr = new_sheet(wb, ALERT_SHEET, data, scope, note)
    write_header(ws, hr, DIGEST_HEADERS)
    set_widths(ws, _DIGEST_WIDTHS)
    lines = scope_digest(data, scope)
    r = hr
    for line, n in lines:
        r += 1
        values: list[tuple[Any, str | None]] = [
            (SEVERITY_LABELS.get(line.severity, line.severity), None),
            (line.scope_code, None),
            (scope_name(data, line.scope, line.scope_code), None),
            (n, INT_FORMAT),
            (line.lowest_pct, PCT_FORMAT),
            (dimensions_text(data, line) or None, None),
            (items_text(data, line) or None, None),
            (others_text(data, line) or None, None),
            (line.n_alerts, INT_FORMAT),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            cell = put(ws, r, col, value, fmt, wrap=col in (3, 6, 7, 8))
            if col == 1 and line.severity in ("red", "amber"):
                fill, font = SEVERITY_STYLE[line.severity]
                set_style(cell, fill=fill, font=font)
    if not lines:
        write_empty(ws, hr + 1, "Không có cảnh báo nào cho phạm vi này.")
    print_setup(ws, (hr, hr), f"A{hr + 1}")
    if len(lines) <= _ONE_PAGE_LINES:
        ws.page_setup.fitToHeight = 1
    return ws


def write_alert_detail_sheet(wb: Workbook, data: CampaignData, scope: Scope) -> Worksheet:
    """Sheet "Cảnh báo chi tiết": the rows of ``alerts`` for the scope, unresolved and most
    severe first."""
    ws, hr = new_sheet(wb, ALERT_DETAIL_SHEET, data, scope)
    write_header(ws, hr, ALERT_HEADERS)
    set_widths(ws, [9, 22, 8, 9, 24, 34, 9, 9, 11, 15, 15, 28, 40])
    alerts = scope_alerts(data, scope)
    r = hr
    for a in alerts:
        r += 1
        name = scope_name(data, a["scope"], a["scope_code"])
        rule = RULES.get(a["rule"])
        unit_fmt = UNIT_FORMATS.get(rule.unit, VALUE_FORMAT) if rule else VALUE_FORMAT
        values: list[tuple[Any, str | None]] = [
            (SEVERITY_LABELS.get(a["severity"], a["severity"]), None),
            (rule.title if rule else a["rule"], None),
            (SCOPE_LABELS.get(a["scope"], a["scope"]), None),
            (a["scope_code"], None),
            (name, None),
            (subject_text(data, mask_personal(a["subject"] or "")), None),
            (shown_value(a["value"], alert_respondents(data, a)), unit_fmt),
            (a["threshold"], unit_fmt),
            (ALERT_STATUS_LABELS.get(a["status"], a["status"]), None),
            (to_seconds(a["first_seen_at"]), DATETIME_FORMAT),
            (to_seconds(a["last_seen_at"]), DATETIME_FORMAT),
            (mask_personal(a["note"]) if a["note"] else None, None),
            (action_for(a["rule"], a["subject"] or "", data.actions) or None, None),
        ]
        for col, (value, fmt) in enumerate(values, start=1):
            cell = put(ws, r, col, value, fmt, wrap=col in (2, 5, 6, 9, 12, 13))
            if col == 1 and a["severity"] in ("red", "amber"):
                fill, font = SEVERITY_STYLE[a["severity"]]
                set_style(cell, fill=fill, font=font)
    if not alerts:
        write_empty(ws, hr + 1, "Không có cảnh báo nào cho phạm vi này.")
    else:
        ws.auto_filter.ref = f"A{hr}:{column_letter(len(ALERT_HEADERS))}{r}"
    print_setup(ws, (hr, hr), f"A{hr + 1}")
    return ws


def _parse_subject(data: CampaignData, subject: str) -> Subject:
    # Each alert's subject is taken apart for its text and again for its respondents.
    parsed = data.lookups.subjects.get(subject)
    if parsed is None:
        parsed = data.lookups.subjects[subject] = _split_subject(data, subject)
    return parsed


def _split_subject(data: CampaignData, subject: str) -> Subject:
    level = questionnaire = dimension = item = None
    rest: list[str] = []
    known_items = data.lookups.known_items
    for part in (p for p in subject.split("/") if p):
        if level is None and part in LEVEL_LABELS:
            level = part
        elif questionnaire is None and part in data.questionnaires:
            questionnaire = part
        elif dimension is None and part in (*DIMENSIONS, "CHUNG", EXPECTATION):
            dimension = part
        elif item is None and part in known_items:
            item = part
        else:
            rest.append(part)
    return Subject(level, questionnaire, dimension, item, tuple(rest))


def _item_text(data: CampaignData, questionnaire: str | None, code: str) -> str:
    """An item's wording: from its questionnaire, else the first questionnaire that has it."""
    first = data.questionnaires.get(questionnaire) if questionnaire else None
    ordered = [first] if first is not None else []
    for q in [*ordered, *data.questionnaires.values()]:
        for item in q.items:
            if item.code == code:
                return item.text
    return code


def subject_text(data: CampaignData, subject: str) -> str:
    """An alert subject in words ("Tiểu học · Cha mẹ học sinh · Cơ sở vật chất, …"), with the
    subject itself kept in brackets for the officer who acknowledges it."""
    texts = data.lookups.subject_texts
    if subject not in texts:
        texts[subject] = _describe_subject(data, subject)
    return texts[subject]


def _describe_subject(data: CampaignData, subject: str) -> str:
    parts = _parse_subject(data, subject)
    words = list(parts.rest)
    if parts.level:
        words.append(LEVEL_LABELS[parts.level])
    if parts.questionnaire:
        words.append(questionnaire_label(data, parts.questionnaire))
    if parts.dimension:
        words.append(dimension_label(data, parts.questionnaire or "", parts.dimension))
    if parts.item:
        words.append(_item_text(data, parts.questionnaire, parts.item))
    text = " · ".join(words)
    return text if text == subject else f"{text} ({subject})"


def alert_respondents(data: CampaignData, alert: Row) -> int | None:
    """How many respondents the alert's value was computed from, where it is an opinion
    figure (None otherwise: services are scored by a board, completeness has no answers).

    The alert rules raise small-sample alerts too (amber, on a Wilson bound), so their value
    may be a figure the privacy rule hides; this finds the count to decide.
    """
    rule, scope, code = alert["rule"], alert["scope"], alert["scope_code"]
    if rule.startswith(("service_", "submission_")) or rule in ("rejected_share_high",):
        return None
    s = _parse_subject(data, alert["subject"] or "")
    lookups = data.lookups
    if rule == "papi_low" or (s.item and not s.questionnaire and not s.dimension):
        indicator = s.item or (s.rest[0] if s.rest else "")
        papi = lookups.papi.get((scope, code, indicator))
        return int(papi[0]["n_answers"]) if papi else None
    if s.questionnaire is None:
        return None
    if scope == "school":
        dims = lookups.school_dimension_q.get((code, s.questionnaire), [])
    elif scope == "unit":
        dims = [
            r
            for r in lookups.unit_dimension_q.get((code, s.questionnaire), [])
            if s.level is None or r["level"] == s.level
        ]
        if s.item:
            item = lookups.unit_question_item.get((code, s.level, s.questionnaire, s.item))
            if item:
                return int(item[0]["n_answers"])
    else:
        return None
    if s.dimension:
        dims = [r for r in dims if r["dimension"] == s.dimension]
    counts = [int(r["n_respondents"]) for r in dims]
    if scope == "school" and s.item is None and s.dimension is None:
        for r in lookups.completeness.get((code, s.questionnaire), []):
            counts.append(int(r["n_valid"] or 0))
    return max(counts) if counts else None


#: Number formats of an alert's value and threshold, by the rule's unit (flows.alerts.RULES).
UNIT_FORMATS = {
    "pct": PCT_FORMAT,
    "score": MEAN_FORMAT,
    "points": POINTS_FORMAT,
    "share": "0.0%",
    "count": INT_FORMAT,
}
