"""Sections I, II and IV of the draft báo cáo, the Phụ lục and the page on data and method,
built as blocks (``blocks.py``) from a campaign's mart rows (``workbooks.data.CampaignData``).

Every figure is a mart value, or the very figure the workbooks show (``workbooks.figures``:
the mean of the five dimension rates, the privacy rule, ranks; ``workbooks.questions``: the
province's item counts). The only figures made here are the ones a reader expects beside
them: the Wilson interval of a rate (``flows.alerts.wilson_interval``, the alert rules' own),
a response rate against enrolment, a year-on-year difference and an answer level's share.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from typing import Any

from flows.alerts import RULES, action_for, wilson_interval
from flows.privacy import mask_personal
from flows.publish.labels import (
    DIMENSION_SHORT,
    EXPECTATION,
    LEVEL_LABELS,
    MIN_RESPONDENTS,
    SEVERITY_LABELS,
    SUPPRESSED,
)
from flows.publish.report.blocks import (
    NO_FIGURE,
    Block,
    Chart,
    Heading,
    Para,
    Table,
    date,
    interval,
    mean,
    number,
    pct,
    plain,
)
from flows.publish.report.charts import MAX_BARS, grouped_bars, horizontal_bars
from flows.publish.workbooks.alerts import alert_respondents, subject_text
from flows.publish.workbooks.data import CampaignData, Scope
from flows.publish.workbooks.figures import (
    GroupSummary,
    by_group,
    competition_ranks,
    dimension_key,
    dimension_label,
    five_mean,
    group_key,
    is_satisfaction,
    questionnaire_label,
    shown_value,
)
from flows.publish.workbooks.questions import scope_questions
from schemas.questionnaire import DIMENSIONS
from warehouse.read_models import Row

Group = tuple[str, str]  # (level, questionnaire)
#: z of a 95% interval: the report's intervals are 95% whatever z the alert rules use.
Z_95 = 1.96


def group_name(data: CampaignData, group: Group) -> str:
    """ "Tiểu học – Cha mẹ học sinh": a level and who answered."""
    level, questionnaire = group
    return f"{LEVEL_LABELS.get(level, level)} – {questionnaire_label(data, questionnaire)}"


def _short_group(data: CampaignData, group: Group) -> str:
    q = data.questionnaires.get(group[1])
    who = "HS" if q is not None and q.respondent.startswith("Học sinh") else "CMHS"
    return f"{group[0]} ({who})"


# ------------------------------------------------------------------------------------------
# I. Tình hình chung
# ------------------------------------------------------------------------------------------


def overview(data: CampaignData, province: Scope, groups: list[GroupSummary]) -> list[Block]:
    """Section I: the campaign, submissions per cấp học, responses per respondent group, and
    the response rate against enrolment."""
    expected = sum(g.n_expected for g in groups)
    submitted = sum(g.n_submitted for g in groups)
    responses = sum(g.n_responses for g in groups)
    blocks: list[Block] = [
        Heading("I. TÌNH HÌNH CHUNG"),
        Para(
            f"Đợt khảo sát: {data.name} (mã {data.campaign_id}), năm học {data.school_year}. "
            f"Thời gian nhận phiếu từ ngày {date(data.opens)} đến ngày {date(data.closes)}; "
            f"hạn nộp ngày {date(data.deadline)}."
        ),
        Para(
            f"Toàn tỉnh có {number(len(province.school_codes))} trường thuộc diện khảo sát. "
            f"Đã nộp {number(submitted)}/{number(expected)} tệp phải nộp "
            f"({number(sum(g.n_late for g in groups))} nộp muộn, "
            f"{number(sum(g.n_not_submitted for g in groups))} chưa nộp, "
            f"{number(sum(g.n_failed for g in groups))} tệp lỗi chưa đọc được), với tổng số "
            f"{number(responses)} phiếu hợp lệ."
        ),
        Table(
            "Số trường phải nộp, đã nộp và số phiếu hợp lệ theo cấp học",
            [
                "Cấp học",
                "Đối tượng",
                "Trường phải nộp",
                "Đã nộp",
                "Nộp muộn",
                "Chưa nộp",
                "Tệp lỗi",
                "Phiếu hợp lệ",
            ],
            [
                [
                    LEVEL_LABELS.get(g.level, g.level),
                    questionnaire_label(data, g.questionnaire),
                    number(g.n_expected),
                    number(g.n_submitted),
                    number(g.n_late),
                    number(g.n_not_submitted),
                    number(g.n_failed),
                    number(g.n_responses),
                ]
                for g in groups
            ],
            [2.2, 2.6, 1.2, 1, 1, 1, 1, 1.2],
        ),
        _respondent_table(data, groups),
        _response_rate_table(data, province, groups),
    ]
    return blocks


def _respondent_table(data: CampaignData, groups: list[GroupSummary]) -> Table:
    """Valid responses per respondent group (who answered which form)."""
    counts: dict[str, int] = {}
    for g in groups:
        label = questionnaire_label(data, g.questionnaire)
        counts[label] = counts.get(label, 0) + g.n_responses
    return Table(
        "Số phiếu hợp lệ theo đối tượng khảo sát",
        ["Đối tượng khảo sát", "Phiếu hợp lệ"],
        [[label, number(n)] for label, n in counts.items()],
        [4, 1.5],
    )


def enrolment(data: CampaignData, province: Scope, group: Group) -> int | None:
    """Enrolment (schools.csv) of the schools expected to submit ``group``'s form; None when
    no such school has it."""
    level, questionnaire = group
    found = [
        data.schools[r["school_code"]].get("enrollment")
        for r in data.completeness
        if r["questionnaire"] == questionnaire
        and province.has_school(r["school_code"])
        and data.schools.get(r["school_code"], {}).get("level") == level
    ]
    known = [int(n) for n in found if n]
    return sum(known) if known else None


def _response_rate_table(data: CampaignData, province: Scope, groups: list[GroupSummary]) -> Table:
    """Responses of each satisfaction form against the enrolment of the schools expected."""
    rows = []
    for g in groups:
        if not is_satisfaction(data, g.questionnaire):
            continue
        pupils = enrolment(data, province, (g.level, g.questionnaire))
        rate = 100.0 * g.n_responses / pupils if pupils else None
        rows.append(
            [
                LEVEL_LABELS.get(g.level, g.level),
                questionnaire_label(data, g.questionnaire),
                number(pupils),
                number(g.n_responses),
                pct(rate),
            ]
        )
    return Table(
        "Tỷ lệ phản hồi so với số học sinh của các trường phải nộp",
        ["Cấp học", "Đối tượng", "Số học sinh", "Phiếu hợp lệ", "Tỷ lệ phản hồi (%)"],
        rows,
        [2.2, 2.6, 1.4, 1.4, 1.4],
        note="Số học sinh theo danh sách trường (schools.csv); trường chưa khai báo sĩ số "
        "không được tính.",
    )


# ------------------------------------------------------------------------------------------
# II. Kết quả
# ------------------------------------------------------------------------------------------


def satisfaction_groups(data: CampaignData) -> dict[Group, dict[str, Row]]:
    """The province's dimension rows of each satisfaction (level, questionnaire), in report
    order."""
    found = by_group(data.province_dimension)
    return {
        k: found[k]
        for k in sorted(found, key=lambda k: group_key(data, *k))
        if is_satisfaction(data, k[1])
    }


def results(data: CampaignData, groups: list[GroupSummary]) -> list[Block]:
    """Section II: per cấp học and tiêu chí, year on year, units ranked, PAPI, services."""
    dims = satisfaction_groups(data)
    target = data.thresholds["pct_satisfied_amber"]
    blocks: list[Block] = [
        Heading("II. KẾT QUẢ KHẢO SÁT"),
        Heading("1. Kết quả theo cấp học và tiêu chí", 2),
        _headline_table(data, groups),
    ]
    if dims:
        blocks.append(
            Chart(
                "Tỷ lệ hài lòng theo tiêu chí và cấp học (%)",
                grouped_bars(
                    [DIMENSION_SHORT[d] for d in DIMENSIONS],
                    [
                        (
                            _short_group(data, k),
                            [_shown(by_dim.get(d), "pct_satisfied") for d in DIMENSIONS],
                        )
                        for k, by_dim in dims.items()
                    ],
                    target=target,
                ),
            )
        )
    for key, by_dim in dims.items():
        blocks.append(dimension_table(data, key, by_dim))
    blocks += year_on_year(data)
    blocks += unit_ranking(data)
    blocks += papi(data)
    blocks += services(data)
    return blocks


def _shown(row: Row | None, column: str) -> Any:
    return None if row is None else shown_value(row[column], row["n_respondents"])


def _headline_table(data: CampaignData, groups: list[GroupSummary]) -> Table:
    """The headline figures of each satisfaction group, as the workbooks' summary has them."""
    rows = [
        [
            LEVEL_LABELS.get(g.level, g.level),
            questionnaire_label(data, g.questionnaire),
            number(g.n_responses),
            pct(g.pct_five),
            mean(g.mean_five),
            pct(g.pct_chung),
            pct(g.expectation),
        ]
        for g in groups
        if is_satisfaction(data, g.questionnaire)
    ]
    return Table(
        "Kết quả chung theo cấp học",
        [
            "Cấp học",
            "Đối tượng",
            "Phiếu hợp lệ",
            "Tỷ lệ hài lòng bình quân 5 tiêu chí (%)",
            "Điểm TB bình quân 5 tiêu chí",
            "Tỷ lệ hài lòng chung (%)",
            "Mức đáp ứng mong đợi (%)",
        ],
        rows,
        [2, 2.4, 1.2, 1.6, 1.4, 1.4, 1.4],
    )


def dimension_table(data: CampaignData, group: Group, by_dim: dict[str, Row]) -> Table:
    """One group's five tiêu chí and CHUNG: respondents, mean, % satisfied and its 95% Wilson
    interval (on the respondents, as the alert rules take it)."""
    q = data.questionnaires.get(group[1])
    rows = []
    for dim in sorted(by_dim, key=lambda d: dimension_key(d, q)):
        if dim == EXPECTATION:
            continue
        r = by_dim[dim]
        n = r["n_respondents"]
        low = high = None
        if r["pct_satisfied"] is not None and n:
            low, high = wilson_interval(r["pct_satisfied"], n, Z_95)
        rows.append(
            [
                dimension_label(data, group[1], dim),
                number(shown_value(n, n)),
                mean(shown_value(r["mean_score"], n)),
                pct(shown_value(r["pct_satisfied"], n)),
                SUPPRESSED if n is not None and n < MIN_RESPONDENTS else interval(low, high),
            ]
        )
    return Table(
        f"Kết quả theo tiêu chí: {group_name(data, group)}",
        ["Tiêu chí", "Số người trả lời", "Điểm TB", "Tỷ lệ hài lòng (%)", "Khoảng tin cậy 95% (%)"],
        rows,
        [4.2, 1.3, 1, 1.3, 1.6],
    )


def year_on_year(data: CampaignData) -> list[Block]:
    """Each satisfaction group's dimension rates against ``campaign.previous``'s."""
    blocks: list[Block] = [Heading("2. So sánh với năm trước", 2)]
    if not data.previous_id or not data.previous_province_dimension:
        why = "chưa khai báo đợt năm trước" if not data.previous_id else "kho không có số liệu"
        blocks.append(Para(f"Không có số liệu năm trước để so sánh ({why})."))
        return blocks
    before = by_group(data.previous_province_dimension)
    rows = []
    for key, by_dim in satisfaction_groups(data).items():
        q = data.questionnaires.get(key[1])
        for dim in sorted(by_dim, key=lambda d: dimension_key(d, q)):
            if dim == EXPECTATION:
                continue
            now = _shown(by_dim[dim], "pct_satisfied")
            then = _shown(before.get(key, {}).get(dim), "pct_satisfied")
            change = now - then if _numbers(now, then) else None
            rows.append(
                [
                    group_name(data, key),
                    dimension_label(data, key[1], dim),
                    pct(then),
                    pct(now),
                    NO_FIGURE if change is None else f"{'+' if change > 0 else ''}{pct(change)}",
                ]
            )
    blocks.append(
        Table(
            f"Tỷ lệ hài lòng so với đợt {data.previous_id}",
            [
                "Cấp học – đối tượng",
                "Tiêu chí",
                "Năm trước (%)",
                "Năm nay (%)",
                "Thay đổi (điểm %)",
            ],
            rows,
            [2.6, 3.6, 1.2, 1.2, 1.3],
        )
    )
    return blocks


def _numbers(*values: Any) -> bool:
    return all(isinstance(v, int | float) for v in values)


def unit_ranking(data: CampaignData) -> list[Block]:
    """Units ranked within each satisfaction group by the mean of their five dimension rates
    (ties share a rank; hidden figures are not ranked), with a chart of those rates."""
    by_unit: dict[Group, dict[str, dict[str, Row]]] = defaultdict(lambda: defaultdict(dict))
    for r in data.unit_dimension:
        by_unit[(r["level"], r["questionnaire"])][r["unit_code"]][r["dimension"]] = r
    rows: list[list[str]] = []
    bars: list[tuple[str, Any]] = []
    for key in sorted(by_unit, key=lambda k: group_key(data, *k)):
        if not is_satisfaction(data, key[1]):
            continue
        units = by_unit[key]
        rated = {u: five_mean(d, "pct_satisfied") for u, d in units.items()}
        ranked = [u for u, v in rated.items() if _numbers(v)]
        ranks = dict(zip(ranked, competition_ranks([rated[u] for u in ranked]), strict=True))
        for unit in sorted(units, key=lambda u: (u not in ranks, ranks.get(u, 0), u)):
            n = max(int(d["n_respondents"]) for d in units[unit].values())
            name = data.units.get(unit, unit)
            rows.append(
                [
                    group_name(data, key),
                    number(ranks.get(unit)),
                    name,
                    number(shown_value(n, n)),
                    pct(rated[unit]),
                    mean(five_mean(units[unit], "mean_score")),
                ]
            )
            bars.append((f"{name} · {_short_group(data, key)}", rated[unit]))
    blocks: list[Block] = [Heading("3. Xếp hạng các đơn vị", 2)]
    if not rows:
        return [*blocks, Para("Chưa có số liệu của đơn vị nào.")]
    blocks.append(
        Table(
            "Xếp hạng đơn vị theo tỷ lệ hài lòng bình quân 5 tiêu chí",
            ["Cấp học – đối tượng", "Hạng", "Đơn vị", "Số phiếu", "Tỷ lệ hài lòng (%)", "Điểm TB"],
            rows,
            [2.6, 0.8, 3, 1, 1.3, 1],
        )
    )
    title = "Tỷ lệ hài lòng bình quân 5 tiêu chí theo đơn vị (%)"
    for part_title, part in split_bars(title, bars):
        png = horizontal_bars(
            [b[0] for b in part],
            [b[1] for b in part],
            target=data.thresholds["pct_satisfied_amber"],
        )
        blocks.append(Chart(part_title, png))
    return blocks


def split_bars(title: str, bars: Sequence[tuple[str, Any]]) -> list[tuple[str, list[Any]]]:
    """``bars`` in charts of ``MAX_BARS`` at most, so that each prints on a page: one chart
    titled ``title``, or parts titled "title (phần 1/3)"."""
    parts = [list(bars[i : i + MAX_BARS]) for i in range(0, len(bars), MAX_BARS)]
    if len(parts) == 1:
        return [(title, parts[0])]
    return [(f"{title} (phần {i}/{len(parts)})", part) for i, part in enumerate(parts, start=1)]


def papi_items(data: CampaignData) -> list[tuple[str, str]]:
    """(indicator, wording) of the PAPI questionnaires, then any other indicator the mart has."""
    items: dict[str, str] = {}
    for q in data.questionnaires.values():
        if q.kind == "papi":
            items.update((i.code, i.text) for i in q.items if i.kind == "yesno")
    for code in sorted({r["indicator"] for r in data.papi} - set(items)):
        items[code] = code
    return list(items.items())


def papi(data: CampaignData) -> list[Block]:
    """The province's PAPI indicators: answers and % Có, and a chart of them."""
    found = {r["indicator"]: r for r in data.papi if r["scope"] == "province"}
    blocks: list[Block] = [Heading("4. Chỉ số PAPI (cấp tiểu học)", 2)]
    if not found:
        return [*blocks, Para("Chưa có số liệu PAPI.")]
    items = [(code, text) for code, text in papi_items(data) if code in found]
    values = [shown_value(found[c]["pct_yes"], found[c]["n_answers"]) for c, _ in items]
    blocks.append(
        Table(
            "Tỷ lệ trả lời “Có” theo chỉ số PAPI",
            ["Mã", "Chỉ số", "Số trả lời", "Tỷ lệ “Có” (%)"],
            [
                [
                    code,
                    text,
                    number(shown_value(found[code]["n_answers"], found[code]["n_answers"])),
                    pct(v),
                ]
                for (code, text), v in zip(items, values, strict=True)
            ],
            [1.4, 4.6, 1.2, 1.2],
        )
    )
    bars = [(code, v) for (code, _), v in zip(items, values, strict=True)]
    for title, part in split_bars("Tỷ lệ trả lời “Có” theo chỉ số PAPI (%)", bars):
        png = horizontal_bars(
            [code for code, _ in part],
            [v for _, v in part],
            target=data.thresholds["papi_pct_yes_min"],
        )
        blocks.append(Chart(title, png))
    return blocks


def services(data: CampaignData) -> list[Block]:
    """The 8-criteria review: each service's schools by total points, their rank in the unit."""
    blocks: list[Block] = [Heading("5. Rà soát dịch vụ giáo dục (8 tiêu chí)", 2)]
    if not data.services:
        return [*blocks, Para("Chưa có số liệu rà soát dịch vụ giáo dục.")]
    least = data.thresholds["service_total_min"]
    ordered = sorted(
        data.services,
        key=lambda r: (r["service"], -float(r["total_points"] or 0), r["school_code"]),
    )
    rows = [
        [
            mask_personal(r["service"]),
            data.schools.get(r["school_code"], {}).get("school_name") or r["school_code"],
            data.units.get(r["unit_code"], r["unit_code"]),
            number(r["total_points"], 0),
            number(r["rank"]),
            "Cần rà soát" if r["total_points"] is not None and r["total_points"] < least else "",
        ]
        for r in ordered
    ]
    low = sum(1 for r in rows if r[-1])
    blocks.append(
        Para(
            f"{number(len(rows))} lượt dịch vụ được rà soát; {number(low)} lượt dưới "
            f"{plain(least)}/80 điểm cần rà soát lại."
        )
    )
    blocks.append(
        Table(
            "Tổng điểm rà soát dịch vụ giáo dục (tối đa 80 điểm)",
            ["Dịch vụ", "Trường", "Đơn vị", "Tổng điểm", "Hạng trong đơn vị", "Đánh giá"],
            rows,
            [2.4, 2.6, 2, 1, 1, 1.3],
        )
    )
    return blocks


# ------------------------------------------------------------------------------------------
# IV. Những vấn đề cần quan tâm và kiến nghị
# ------------------------------------------------------------------------------------------

#: Alerts the report lists: what needs a decision, not information.
REPORTED_SEVERITIES = ("red", "amber")
REPORTED_STATUSES = ("open", "acknowledged")


def alert_value(data: CampaignData, alert: Row, value: Any) -> str:
    """An alert's value or threshold in its rule's unit, hidden like the figure it is."""
    if value is None or isinstance(value, str):
        return NO_FIGURE if value is None else value
    unit = RULES[alert["rule"]].unit if alert["rule"] in RULES else ""
    if unit == "pct":
        return f"{pct(value)}%"
    if unit == "share":
        return f"{pct(100 * value)}%"
    if unit == "score":
        return mean(value)
    if unit == "count":
        return number(value, 0)
    return number(value, 1).removesuffix(",0")


def reported_alerts(data: CampaignData) -> list[Row]:
    """The open and acknowledged red and amber alerts, red first, by scope and subject."""
    chosen = [
        a
        for a in data.alerts
        if a["severity"] in REPORTED_SEVERITIES and a["status"] in REPORTED_STATUSES
    ]
    scope_order = {"province": 0, "unit": 1, "school": 2}
    return sorted(
        chosen,
        key=lambda a: (
            scope_order.get(a["scope"], 3),
            a["scope_code"],
            REPORTED_SEVERITIES.index(a["severity"]),
            a["subject"] or "",
            a["rule"],
        ),
    )


def _scope_title(data: CampaignData, alert: Row) -> str:
    code = alert["scope_code"]
    if alert["scope"] == "school":
        school = data.schools.get(code, {})
        unit = data.units.get(school.get("unit_code", ""), "")
        return f"{school.get('school_name') or code} ({code})" + (f" – {unit}" if unit else "")
    if alert["scope"] == "unit":
        return f"{data.units.get(code, code)} ({code})"
    return "Toàn tỉnh"


def alert_line(data: CampaignData, alert: Row) -> str:
    """One alert as the report lists it: tier, rule, subject, value against threshold,
    follow-up, and the officer's latest note when it is acknowledged."""
    rule = RULES.get(alert["rule"])
    title = rule.title if rule else alert["rule"]
    subject = subject_text(data, mask_personal(alert["subject"] or ""))
    value = alert_value(data, alert, shown_value(alert["value"], alert_respondents(data, alert)))
    threshold = alert_value(data, alert, alert["threshold"])
    tier = SEVERITY_LABELS.get(alert["severity"], alert["severity"])
    text = (
        f"[{tier}] {title}"
        + (f": {subject}" if subject else "")
        + f": {value} (ngưỡng {threshold})."
    )
    action = action_for(alert["rule"], alert["subject"] or "", data.actions)
    if action:
        text += f" Đề xuất: {action.rstrip('.')}."
    if alert["status"] == "acknowledged":
        note = mask_personal(alert["note"]) if alert["note"] else ""
        text += " Đã ghi nhận" + (f": {note}" if note else "") + "."
    return text


def concerns(data: CampaignData) -> list[Block]:
    """Section IV: the open red and amber alerts grouped by school (unit and province ones
    first), each with its suggested follow-up, then the follow-ups as recommendations."""
    alerts = reported_alerts(data)
    count = Counter(a["severity"] for a in alerts)
    blocks: list[Block] = [
        Heading("IV. NHỮNG VẤN ĐỀ CẦN QUAN TÂM VÀ KIẾN NGHỊ"),
        Heading("1. Những vấn đề cần quan tâm", 2),
        Para(
            f"Có {number(count.get('red', 0))} cảnh báo mức đỏ và {number(count.get('amber', 0))} "
            "cảnh báo mức vàng chưa được xử lý xong (mức đỏ: tỷ lệ hài lòng dưới "
            f"{plain(data.thresholds['pct_satisfied_red'])}% hoặc điểm trung bình dưới "
            f"{plain(data.thresholds['mean_score_red'])}; mức vàng: dưới mục tiêu "
            f"{plain(data.thresholds['pct_satisfied_amber'])}%)."
        ),
    ]
    current = None
    for alert in alerts:
        title = _scope_title(data, alert)
        if title != current:
            blocks.append(Para(title, bold=True))
            current = title
        blocks.append(Para(alert_line(data, alert), bullet=True))
    blocks.append(Heading("2. Kiến nghị", 2))
    actions = Counter(action_for(a["rule"], a["subject"] or "", data.actions) for a in alerts)
    actions.pop("", None)
    if not actions:
        blocks.append(Para("Không có kiến nghị phát sinh từ cảnh báo."))
    for action, n in actions.most_common():
        blocks.append(Para(f"{action} ({number(n)} cảnh báo).", bullet=True))
    return blocks


# ------------------------------------------------------------------------------------------
# Phụ lục and the page on data and method
# ------------------------------------------------------------------------------------------


def appendix(data: CampaignData, province: Scope) -> list[Block]:
    """The per-question tables of each satisfaction cấp học: count and share at each level
    1–5, answers, % satisfied and mean, hidden under the minimum of respondents."""
    questions = scope_questions(data, province)
    blocks: list[Block] = [Heading("PHỤ LỤC: KẾT QUẢ THEO TỪNG CÂU HỎI")]
    for key in sorted(questions, key=lambda k: group_key(data, *k)):
        if not is_satisfaction(data, key[1]):
            continue
        found = questions[key]
        rows = [
            [code, text, *question_cells(found[code])] for code, text in _items(data, key[1], found)
        ]
        blocks.append(
            Table(
                f"Kết quả từng câu hỏi: {group_name(data, key)}",
                [
                    "Mã",
                    "Nội dung",
                    *(f"Mức {k}" for k in range(1, 6)),
                    "Số trả lời",
                    "Hài lòng (%)",
                    "Điểm TB",
                ],
                rows,
                [0.9, 5.2, 1.2, 1.2, 1.2, 1.2, 1.2, 1.1, 1.1, 0.9],
                note="Mỗi mức: số ý kiến (tỷ lệ %). Mức 1 Rất không hài lòng … mức 5 Rất hài lòng.",
            )
        )
    return blocks


def _items(data: CampaignData, questionnaire: str, found: dict[str, Row]) -> list[tuple[str, str]]:
    """(code, wording) of the Likert items the mart has, in the questionnaire's order."""
    q = data.questionnaires.get(questionnaire)
    listed = [(i.code, i.text) for i in (q.items if q else []) if i.kind == "likert"]
    known = {code for code, _ in listed}
    return [(c, t) for c, t in listed if c in found] + [(c, c) for c in sorted(set(found) - known)]


def question_cells(row: Row) -> list[str]:
    """One item's cells: "n (p%)" at each level, answers, % satisfied, mean."""
    n = int(row["n_answers"] or 0)
    cells = []
    for k in range(1, 6):
        count = int(row[f"n_{k}"] or 0)
        shown = shown_value(count, n)
        cells.append(
            shown
            if shown == SUPPRESSED
            else f"{number(count)} ({pct(100.0 * count / n if n else None)}%)"
        )
    return [
        *cells,
        number(shown_value(n, n)),
        pct(shown_value(row["pct_satisfied"], n)),
        mean(shown_value(row["mean_score"], n)),
    ]


def cutoff(data: CampaignData) -> Any:
    """The data cut-off: the newest load of any source of the campaign (the run's start if
    nothing loaded)."""
    loads = [r["last_loaded_at"] for r in data.completeness if r.get("last_loaded_at")]
    return max(loads) if loads else (data.run or {}).get("started_at")


def method(data: CampaignData) -> list[Block]:
    """The last page: the run, the data cut-off, and how every figure is computed."""
    run = data.run or {}
    lines: Sequence[str] = (
        "Thang đo: mỗi câu hỏi có 5 mức: 1 Rất không hài lòng, 2 Không hài lòng, "
        "3 Bình thường, 4 Hài lòng, 5 Rất hài lòng.",
        "Tỷ lệ hài lòng = (số ý kiến mức 4 + mức 5) / số ý kiến hợp lệ × 100; "
        "điểm trung bình = trung bình cộng các mức 1–5.",
        "Mỗi tiêu chí gộp mọi ý kiến của các câu hỏi thuộc tiêu chí (không lấy trung bình tỷ lệ "
        "từng câu); tỷ lệ bình quân 5 tiêu chí = trung bình cộng tỷ lệ của 5 tiêu chí; tỷ lệ "
        "hài lòng chung lấy từ câu hỏi chung.",
        "Mức đáp ứng mong đợi = trung bình các câu trả lời 0–100%.",
        f"Khoảng tin cậy 95% của tỷ lệ hài lòng: khoảng Wilson với z = {plain(Z_95)}, "
        "cỡ mẫu là số người trả lời.",
        "Chỉ số PAPI: tỷ lệ “Có” = số trả lời Có / số trả lời × 100.",
        "Rà soát dịch vụ: Tốt 10, Khá 7, Trung bình 5, Yếu 3, Kém 0 điểm; tổng 8 tiêu chí "
        "(tối đa 80), xếp hạng trong đơn vị từ cao xuống thấp, bằng điểm thì cùng hạng.",
        "Xếp hạng đơn vị theo tỷ lệ bình quân 5 tiêu chí, bằng nhau thì cùng hạng.",
        "Tỷ lệ phản hồi = số phiếu hợp lệ / số học sinh của các trường phải nộp × 100.",
        f"Số liệu tính từ ít hơn {MIN_RESPONDENTS} người trả lời được ẩn ({SUPPRESSED}), "
        "như trong các bảng tính tổng hợp; không có họ tên, thư điện tử hay số điện thoại "
        "của người trả lời trong báo cáo.",
    )
    return [
        Heading("THÔNG TIN VỀ SỐ LIỆU VÀ PHƯƠNG PHÁP"),
        Para(f"Lần chạy (run id): {run.get('run_id') or NO_FIGURE}", bullet=True),
        Para(f"Bắt đầu lần chạy: {date(run.get('started_at'))}", bullet=True),
        Para(f"Số liệu tính đến (lần nạp mới nhất): {date(cutoff(data))}", bullet=True),
        Para("Phương pháp tính", bold=True),
        *(Para(line, bullet=True) for line in lines),
        Para(
            "Báo cáo này là dự thảo được lập tự động từ kho dữ liệu khảo sát; số liệu trùng với "
            "các bảng tính tổng hợp cùng lần chạy. Cần rà soát trước khi trình ký.",
            italic=True,
        ),
    ]


def join(parts: Iterable[list[Block]]) -> list[Block]:
    """The blocks of several sections, in order."""
    return [b for part in parts for b in part]
