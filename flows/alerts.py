"""Alert rules: pure functions from mart rows to alert candidates (DOMAIN.md "Alert tiers").

Each rule takes plain rows (``warehouse.alerts`` reads them) and a :class:`Thresholds` and
returns :class:`AlertCandidate` values; ``evaluate_alerts`` runs them all on a campaign and hands
the result to ``warehouse.alerts.sync_alerts``, which keeps the lifecycle (open → acknowledged →
resolved, reopened when a condition returns or an acknowledged one gets worse).

The rules and their default severities are listed at ``evaluate_alerts``; small samples
(fewer than ``min_respondents``) are judged by Wilson intervals, never red.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import math
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy.engine import Engine

from schemas.questionnaire import DIMENSIONS
from warehouse.alerts import (
    AlertCandidate,
    AlertInputs,
    AlertSync,
    CompletenessFigures,
    CriterionFigures,
    DimensionFigures,
    ItemFigures,
    PapiFigures,
    ServiceFigures,
    SourceFigures,
    read_inputs,
    sync_alerts,
)

# Percentages from SQL are exact for values at a threshold (100 × k computed before dividing),
# but a tolerance keeps a figure that is the threshold up to rounding from flipping sides.
_EPS = 1e-9

#: The dimension label of the 0–100 expectation item: not a satisfaction rate.
EXPECTATION_DIMENSION = "MONG_DOI"


# ------------------------------------------------------------------------------------------
# Thresholds: the one table of defaults; khaosat.yaml `thresholds:` overrides any of them
# ------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Thresholds:
    """Alert thresholds; each field name is a key of khaosat.yaml ``thresholds:``.

    Percentages are 0–100 like the marts; shares are fractions (0.1 = 10%).
    """

    #: pct_satisfied below this is red (DOMAIN: < 70).
    pct_satisfied_red: float = 70.0
    #: pct_satisfied below this (and not red) is amber: the national 2025 target of 85%.
    pct_satisfied_amber: float = 85.0
    #: mean_score (1–5) below this is red.
    mean_score_red: float = 3.5
    #: an item whose pct_dissatisfied (#1 + #2) is at or above this is red.
    item_pct_dissatisfied_red: float = 20.0
    #: fewer respondents than this: "insufficient sample", never red, Wilson-tested instead.
    min_respondents: float = 30.0
    #: z of the Wilson interval used for small samples (1.96: 95%).
    wilson_z: float = 1.96
    #: a drop of pct_satisfied by this many points or more since the previous campaign.
    yoy_drop_points: float = 5.0
    #: a PAPI indicator below this % "Có".
    papi_pct_yes_min: float = 80.0
    #: a reviewed service whose total (0–80) is below this.
    service_total_min: float = 40.0
    #: a review criterion at or below this many points (Kém = 0).
    service_criterion_poor: float = 0.0
    #: valid responses below this share of the school's enrolment.
    min_response_share: float = 0.1
    #: a source with more than this share of its values rejected.
    max_rejected_share: float = 0.1

    @classmethod
    def from_mapping(cls, overrides: Mapping[str, float] | None = None) -> Thresholds:
        """The defaults with ``overrides`` (Settings.thresholds) applied.

        Raises ThresholdError naming the key for an unknown key (a typo must not silently
        leave the default in force) or for values that make no sense together.
        """
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(overrides or {}) - known)
        if unknown:
            raise ThresholdError(
                f"thresholds: unknown key(s) {', '.join(unknown)}; "
                f"known: {', '.join(sorted(known))}"
            )
        values = {k: float(v) for k, v in (overrides or {}).items()}
        th = dataclasses.replace(cls(), **values)
        th._check()
        return th

    def _check(self) -> None:
        if self.pct_satisfied_red > self.pct_satisfied_amber:
            raise ThresholdError(
                "thresholds: pct_satisfied_red must not be above pct_satisfied_amber"
            )
        for name in ("min_response_share", "max_rejected_share"):
            if not 0 <= getattr(self, name) <= 1:
                raise ThresholdError(f"thresholds: {name} is a share between 0 and 1")
        if self.wilson_z <= 0:
            raise ThresholdError("thresholds: wilson_z must be positive")
        if self.min_respondents < 0:
            raise ThresholdError("thresholds: min_respondents must not be negative")


class ThresholdError(ValueError):
    """khaosat.yaml ``thresholds:`` cannot be used; the message names the key."""


# ------------------------------------------------------------------------------------------
# The rules' catalogue and their suggested follow-up
# ------------------------------------------------------------------------------------------

RED, AMBER, INFO = "red", "amber", "info"

PCT_SATISFIED_LOW = "pct_satisfied_low"
MEAN_SCORE_LOW = "mean_score_low"
ITEM_DISSATISFIED_HIGH = "item_dissatisfied_high"
INSUFFICIENT_SAMPLE = "insufficient_sample"
YOY_DROP = "yoy_drop"
PAPI_LOW = "papi_low"
SERVICE_TOTAL_LOW = "service_total_low"
SERVICE_CRITERION_POOR = "service_criterion_poor"
SUBMISSION_MISSING = "submission_missing"
SUBMISSION_LATE = "submission_late"
SUBMISSION_FAILED = "submission_failed"
LOW_RESPONSE = "low_response"
ENROLLMENT_UNKNOWN = "enrollment_unknown"
REJECTED_SHARE_HIGH = "rejected_share_high"


@dataclass(frozen=True)
class Rule:
    """How an alert of one rule reads: Vietnamese title and the unit of value/threshold."""

    title: str
    #: pct (0–100), score (1–5), points, share (0–1), count, or "" (no value).
    unit: str


RULES: dict[str, Rule] = {
    PCT_SATISFIED_LOW: Rule("Tỷ lệ hài lòng thấp", "pct"),
    MEAN_SCORE_LOW: Rule("Điểm trung bình thấp", "score"),
    ITEM_DISSATISFIED_HIGH: Rule("Câu hỏi có tỷ lệ không hài lòng cao", "pct"),
    INSUFFICIENT_SAMPLE: Rule("Không đủ mẫu để kết luận", "count"),
    YOY_DROP: Rule("Tỷ lệ hài lòng giảm so với năm trước (điểm %)", "points"),
    PAPI_LOW: Rule("Chỉ số PAPI thấp (% Có)", "pct"),
    SERVICE_TOTAL_LOW: Rule("Dịch vụ có tổng điểm thấp (/80)", "points"),
    SERVICE_CRITERION_POOR: Rule("Dịch vụ có tiêu chí xếp loại Kém", "points"),
    SUBMISSION_MISSING: Rule("Chưa nộp dữ liệu khi đã hết hạn", "count"),
    SUBMISSION_LATE: Rule("Nộp dữ liệu sau hạn", "count"),
    SUBMISSION_FAILED: Rule("Tệp nộp không đọc được", "count"),
    LOW_RESPONSE: Rule("Số phiếu dưới chỉ tiêu so với sĩ số", "share"),
    ENROLLMENT_UNKNOWN: Rule("Chưa có sĩ số: không tính được tỷ lệ phản hồi", "count"),
    REJECTED_SHARE_HIGH: Rule("Nhiều giá trị bị loại", "share"),
}

#: Suggested follow-up (Vietnamese), by dimension, PAPI indicator or rule. Overridden per
#: province by khaosat.yaml ``actions:`` (Settings.actions); see ``action_for`` for the order.
DEFAULT_ACTIONS: dict[str, str] = {
    # dimensions (and the overall item)
    "TIEP_CAN": "Công khai đầy đủ, kịp thời thông tin tuyển sinh, học phí và các khoản thu; "
    "đơn giản hóa thủ tục nhập học; thực hiện đúng chính sách miễn, giảm học phí",
    "CSVC": "Rà soát cơ sở vật chất, trang thiết bị dạy học; lập kế hoạch sửa chữa, bổ sung",
    "MOI_TRUONG": "Tăng cường trao đổi giữa giáo viên và gia đình; bảo đảm an toàn, phòng "
    "chống bạo lực học đường; đánh giá công bằng và công khai thu, chi",
    "HOAT_DONG": "Bồi dưỡng năng lực, đổi mới phương pháp giảng dạy; tăng cường hoạt động trải "
    "nghiệm, tư vấn, hỗ trợ học sinh; chấn chỉnh dạy thêm, học thêm",
    "PHAT_TRIEN": "Theo dõi và thông báo sự tiến bộ của học sinh cho gia đình; chú trọng giáo "
    "dục thể chất, kỹ năng sống, đạo đức",
    "CHUNG": "Đối thoại với cha mẹ học sinh để tìm nguyên nhân; lập kế hoạch cải thiện theo "
    "từng tiêu chí có tỷ lệ hài lòng thấp",
    # PAPI indicators
    "KIEN_CO": "Rà soát phòng học chưa kiên cố; đề xuất kế hoạch kiên cố hóa trường, lớp",
    "VE_SINH": "Kiểm tra nhà vệ sinh; bố trí nhân lực, kinh phí vệ sinh thường xuyên",
    "NUOC_SACH": "Bảo đảm nước uống sạch cho học sinh tại trường; kiểm tra thiết bị lọc nước",
    "SI_SO": "Rà soát sĩ số lớp theo quy định; điều chỉnh kế hoạch tuyển sinh, phân lớp",
    "CA_BA": "Sắp xếp lại phòng học, thời khóa biểu để không còn lớp học ca ba",
    "HOC_THEM": "Chấn chỉnh dạy thêm, học thêm; công khai quy định và kênh tiếp nhận phản ánh",
    "SU_PHAM": "Bồi dưỡng chuyên môn, nghiệp vụ sư phạm cho giáo viên",
    "PHAN_HOI": "Tăng cường liên lạc thường xuyên giữa giáo viên và cha mẹ học sinh",
    "THU_CHI": "Công khai đầy đủ các khoản thu, chi theo quy định",
    # rules
    PCT_SATISFIED_LOW: "Phân tích nguyên nhân theo từng câu hỏi; lập kế hoạch cải thiện và "
    "theo dõi ở đợt khảo sát sau",
    MEAN_SCORE_LOW: "Phân tích nguyên nhân theo từng câu hỏi; lập kế hoạch cải thiện và theo "
    "dõi ở đợt khảo sát sau",
    ITEM_DISSATISFIED_HIGH: "Đọc các ý kiến góp ý liên quan; làm rõ nguyên nhân không hài "
    "lòng và khắc phục",
    INSUFFICIENT_SAMPLE: "Đôn đốc trường mở rộng khảo sát cho đủ số phiếu tối thiểu trước khi "
    "kết luận",
    YOY_DROP: "So sánh với năm trước để tìm thay đổi (cơ sở vật chất, nhân sự, chính sách); "
    "báo cáo nguyên nhân giảm",
    PAPI_LOW: "Rà soát điều kiện tương ứng với chỉ số; lập kế hoạch khắc phục",
    SERVICE_TOTAL_LOW: "Hội đồng rà soát lại dịch vụ; điều chỉnh hoặc dừng nếu không bảo đảm "
    "chất lượng",
    SERVICE_CRITERION_POOR: "Khắc phục ngay tiêu chí xếp loại Kém; báo cáo Sở kết quả khắc phục",
    SUBMISSION_MISSING: "Liên hệ trường, đôn đốc nộp dữ liệu khảo sát",
    SUBMISSION_LATE: "Nhắc trường nộp đúng hạn ở các đợt sau",
    SUBMISSION_FAILED: "Trường xem phiếu phản hồi (thư mục feedback), sửa tệp và nộp lại",
    LOW_RESPONSE: "Đôn đốc trường mở rộng khảo sát để đạt số phiếu tối thiểu theo sĩ số",
    ENROLLMENT_UNKNOWN: "Bổ sung sĩ số của trường vào cột enrollment của schools.csv",
    REJECTED_SHARE_HIGH: "Trường sửa các giá trị bị loại theo phiếu phản hồi và nộp lại tệp",
}


def action_for(rule: str, subject: str, overrides: Mapping[str, str] | None = None) -> str:
    """The suggested follow-up of an alert (Vietnamese; "" if none is configured).

    ``overrides`` (khaosat.yaml ``actions:``) win over DEFAULT_ACTIONS key by key. Keys are
    tried from the most specific: ``<rule>.<part>`` then ``<part>`` for each part of the subject
    from the last (item, dimension or indicator code) to the first, then ``<rule>``. So
    ``CSVC`` gives every CSVC alert its action and ``yoy_drop.CSVC`` only the year-on-year one.
    """
    table = {**DEFAULT_ACTIONS, **(overrides or {})}
    parts = [p for p in reversed(subject.split("/")) if p]
    for key in [*(f"{rule}.{p}" for p in parts), *parts, rule]:
        if table.get(key):
            return table[key]
    return ""


def rule_title(rule: str) -> str:
    """The Vietnamese title of a rule (the rule name itself if unknown)."""
    known = RULES.get(rule)
    return known.title if known else rule


def format_value(rule: str, value: float | None) -> str:
    """A value or threshold as an officer reads it, in the rule's unit."""
    if value is None:
        return ""
    unit = RULES[rule].unit if rule in RULES else ""
    if unit == "pct":
        return f"{value:.1f}%"
    if unit == "share":
        return f"{100 * value:.1f}%"
    if unit == "score":
        return f"{value:.2f}"
    if unit == "count":
        return f"{value:.0f}"
    return f"{value:g}"


# ------------------------------------------------------------------------------------------
# Statistics
# ------------------------------------------------------------------------------------------


def wilson_interval(pct: float, n: float, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion given as a percentage of ``n`` trials.

    Returns (low, high) as percentages. With n ≤ 0 nothing is known: (0, 100). Unlike the
    normal approximation it stays inside 0–100 and is not degenerate at 0% or 100%, which is
    what small school samples need.
    """
    if n <= 0:
        return 0.0, 100.0
    p = min(max(pct / 100.0, 0.0), 1.0)
    z2 = z * z
    denominator = 1.0 + z2 / n
    centre = (p + z2 / (2.0 * n)) / denominator
    half = z * math.sqrt(p * (1.0 - p) / n + z2 / (4.0 * n * n)) / denominator
    return 100.0 * max(0.0, centre - half), 100.0 * min(1.0, centre + half)


def _below(value: float, threshold: float) -> bool:
    return value < threshold - _EPS


def _at_least(value: float, threshold: float) -> bool:
    return value >= threshold - _EPS


def _subject(*parts: str | None) -> str:
    return "/".join(p for p in parts if p)


# ------------------------------------------------------------------------------------------
# Rules
# ------------------------------------------------------------------------------------------


def _dimension_subject(r: DimensionFigures) -> str:
    # A unit may hold one questionnaire at two levels (THPT and GDTX): the level is part of it.
    return _subject(r.level, r.questionnaire, r.dimension)


def satisfaction_alerts(rows: Iterable[DimensionFigures], th: Thresholds) -> list[AlertCandidate]:
    """pct_satisfied_low (red/amber) and mean_score_low (red) per dimension and CHUNG row.

    With fewer than ``min_respondents`` respondents: pct_satisfied_low only when the Wilson
    upper bound is below the threshold, and amber at most; mean_score_low not at all.
    """
    out: list[AlertCandidate] = []
    for r in rows:
        if r.dimension == EXPECTATION_DIMENSION or r.pct_satisfied is None:
            continue
        subject = _dimension_subject(r)
        pct = r.pct_satisfied
        tiers = ((RED, th.pct_satisfied_red), (AMBER, th.pct_satisfied_amber))
        if r.n_respondents >= th.min_respondents:
            for severity, limit in tiers:
                if _below(pct, limit):
                    out.append(
                        AlertCandidate(
                            PCT_SATISFIED_LOW, severity, r.scope, r.scope_code, subject, pct, limit
                        )
                    )
                    break
            if r.mean_score is not None and _below(r.mean_score, th.mean_score_red):
                out.append(
                    AlertCandidate(
                        MEAN_SCORE_LOW,
                        RED,
                        r.scope,
                        r.scope_code,
                        subject,
                        r.mean_score,
                        th.mean_score_red,
                    )
                )
            continue
        # A small sample is never red: the first threshold its upper bound is below, as amber.
        _, upper = wilson_interval(pct, r.n_respondents, th.wilson_z)
        for _, limit in tiers:
            if _below(upper, limit):
                out.append(
                    AlertCandidate(
                        PCT_SATISFIED_LOW, AMBER, r.scope, r.scope_code, subject, pct, limit
                    )
                )
                break
    return out


def sample_alerts(rows: Iterable[DimensionFigures], th: Thresholds) -> list[AlertCandidate]:
    """insufficient_sample (info) per school or unit questionnaire with too few respondents.

    The questionnaire's respondents are taken as the most of any of its dimensions (a
    respondent who skipped a dimension still answered the questionnaire).
    """
    most: dict[tuple[str, str, str | None, str], int] = {}
    for r in rows:
        key = (r.scope, r.scope_code, r.level, r.questionnaire)
        most[key] = max(most.get(key, 0), r.n_respondents)
    return [
        AlertCandidate(
            INSUFFICIENT_SAMPLE,
            INFO,
            scope,
            code,
            _subject(level, questionnaire),
            float(n),
            th.min_respondents,
        )
        for (scope, code, level, questionnaire), n in most.items()
        if n < th.min_respondents
    ]


def item_alerts(rows: Iterable[ItemFigures], th: Thresholds) -> list[AlertCandidate]:
    """item_dissatisfied_high: pct_dissatisfied = 100 × (#1 + #2) / #valid ≥ the threshold.

    Red with enough answers; with fewer than ``min_respondents`` amber, and only when the
    Wilson lower bound reaches the threshold.
    """
    out: list[AlertCandidate] = []
    for r in rows:
        if r.n_answers <= 0:
            continue
        pct = 100.0 * r.n_dissatisfied / r.n_answers
        limit = th.item_pct_dissatisfied_red
        if r.n_answers >= th.min_respondents:
            severity = RED if _at_least(pct, limit) else ""
        else:
            low, _ = wilson_interval(pct, r.n_answers, th.wilson_z)
            severity = AMBER if _at_least(low, limit) else ""
        if severity:
            subject = _subject(r.level, r.questionnaire, r.dimension, r.question_code)
            out.append(
                AlertCandidate(
                    ITEM_DISSATISFIED_HIGH, severity, r.scope, r.scope_code, subject, pct, limit
                )
            )
    return out


def yoy_alerts(
    current: Iterable[DimensionFigures],
    previous: Iterable[DimensionFigures],
    th: Thresholds,
) -> list[AlertCandidate]:
    """yoy_drop (amber): pct_satisfied fell by ``yoy_drop_points`` or more since last year.

    Rows are matched on scope, code, level, questionnaire and dimension (a unit renamed by the
    2025 reform simply has no match). Both years need ``min_respondents``: a drop measured on a
    handful of parents is noise.
    """
    before = {
        (r.scope, r.scope_code, r.level, r.questionnaire, r.dimension): r
        for r in previous
        if r.pct_satisfied is not None and r.n_respondents >= th.min_respondents
    }
    out: list[AlertCandidate] = []
    for r in current:
        if r.pct_satisfied is None or r.n_respondents < th.min_respondents:
            continue
        p = before.get((r.scope, r.scope_code, r.level, r.questionnaire, r.dimension))
        if p is None or p.pct_satisfied is None:
            continue
        drop = p.pct_satisfied - r.pct_satisfied
        if _at_least(drop, th.yoy_drop_points):
            out.append(
                AlertCandidate(
                    YOY_DROP,
                    AMBER,
                    r.scope,
                    r.scope_code,
                    _dimension_subject(r),
                    drop,
                    th.yoy_drop_points,
                )
            )
    return out


def papi_alerts(rows: Iterable[PapiFigures], th: Thresholds) -> list[AlertCandidate]:
    """papi_low (amber): an indicator below ``papi_pct_yes_min`` % Có, at any scope; with
    fewer than ``min_respondents`` answers only if the Wilson upper bound is below it too."""
    out: list[AlertCandidate] = []
    for r in rows:
        if r.n_answers <= 0:
            continue
        tested = r.pct_yes
        if r.n_answers < th.min_respondents:
            _, tested = wilson_interval(r.pct_yes, r.n_answers, th.wilson_z)
        if _below(tested, th.papi_pct_yes_min):
            out.append(
                AlertCandidate(
                    PAPI_LOW,
                    AMBER,
                    r.scope,
                    r.scope_code,
                    r.indicator,
                    r.pct_yes,
                    th.papi_pct_yes_min,
                )
            )
    return out


def service_alerts(
    services: Iterable[ServiceFigures], criteria: Iterable[CriterionFigures], th: Thresholds
) -> list[AlertCandidate]:
    """service_total_low (total below ``service_total_min``) and service_criterion_poor (a
    criterion at or below ``service_criterion_poor`` points, Kém by default), both amber."""
    out = [
        AlertCandidate(
            SERVICE_TOTAL_LOW,
            AMBER,
            "school",
            s.school_code,
            s.service,
            s.total_points,
            th.service_total_min,
        )
        for s in services
        if _below(s.total_points, th.service_total_min)
    ]
    out += [
        AlertCandidate(
            SERVICE_CRITERION_POOR,
            AMBER,
            "school",
            c.school_code,
            _subject(c.service, c.criterion),
            c.points,
            th.service_criterion_poor,
        )
        for c in criteria
        if c.points <= th.service_criterion_poor + _EPS
    ]
    return out


_SUBMISSION_RULES = {
    "missing": (SUBMISSION_MISSING, AMBER),
    "failed": (SUBMISSION_FAILED, AMBER),
    "late": (SUBMISSION_LATE, INFO),
}


def completeness_alerts(
    rows: Iterable[CompletenessFigures], th: Thresholds
) -> list[AlertCandidate]:
    """submission_missing / _failed / _late from mart_completeness status, and low_response.

    low_response compares valid responses with ``min_response_share`` × enrolment; it skips
    service reviews (answered by a board, not a sample of families) and pairs with no valid
    response (those are missing, failed or still pending). Where the enrolment is unknown
    (blank or 0) it cannot be judged: the school gets one ``enrollment_unknown`` (info) instead,
    its value the responses it has, so the officer sees what waits for the figure.
    """
    out: list[AlertCandidate] = []
    unknown: dict[str, float] = {}
    for r in rows:
        if r.status in _SUBMISSION_RULES:
            rule, severity = _SUBMISSION_RULES[r.status]
            out.append(
                AlertCandidate(
                    rule, severity, "school", r.school_code, r.questionnaire, float(r.n_valid)
                )
            )
        if r.n_valid <= 0 or r.questionnaire_kind == "service_review":
            continue
        if not r.enrollment or r.enrollment < 0:
            unknown[r.school_code] = unknown.get(r.school_code, 0.0) + r.n_valid
            continue
        share = r.n_valid / r.enrollment
        if _below(share, th.min_response_share):
            out.append(
                AlertCandidate(
                    LOW_RESPONSE,
                    AMBER,
                    "school",
                    r.school_code,
                    r.questionnaire,
                    share,
                    th.min_response_share,
                )
            )
    out += [
        AlertCandidate(ENROLLMENT_UNKNOWN, INFO, "school", code, "", n)
        for code, n in unknown.items()
    ]
    return out


def rejection_alerts(rows: Iterable[SourceFigures], th: Thresholds) -> list[AlertCandidate]:
    """rejected_share_high (amber): rejected values / (kept answers + rejected values) above
    ``max_rejected_share``. Whole rejected rows (duplicates, outside the window) and unusable
    files are not values; the latter have submission_failed."""
    out: list[AlertCandidate] = []
    for r in rows:
        total = r.n_answers + r.n_rejected_values
        if total <= 0:
            continue
        share = r.n_rejected_values / total
        if share > th.max_rejected_share + _EPS:
            out.append(
                AlertCandidate(
                    REJECTED_SHARE_HIGH,
                    AMBER,
                    "school",
                    r.school_code,
                    _subject(r.questionnaire, r.location),
                    share,
                    th.max_rejected_share,
                )
            )
    return out


def evaluate_rules(inputs: AlertInputs, th: Thresholds) -> list[AlertCandidate]:
    """Every rule on one campaign's inputs: all the conditions that hold now."""
    return [
        *satisfaction_alerts(inputs.dimensions, th),
        *sample_alerts(inputs.dimensions, th),
        *item_alerts(inputs.items, th),
        *yoy_alerts(inputs.dimensions, inputs.previous_dimensions, th),
        *papi_alerts(inputs.papi, th),
        *service_alerts(inputs.services, inputs.criteria, th),
        *completeness_alerts(inputs.completeness, th),
        *rejection_alerts(inputs.sources, th),
    ]


# ------------------------------------------------------------------------------------------
# The digest: one line per school or unit, for the people who follow them up
# ------------------------------------------------------------------------------------------

#: Rules whose subject ends in a dimension (or CHUNG) of a questionnaire below its target.
_DIMENSION_RULES = (PCT_SATISFIED_LOW, MEAN_SCORE_LOW, YOY_DROP)
_SEVERITY_ORDER = (RED, AMBER, INFO)


@dataclass(frozen=True)
class DigestLine:
    """The alerts of one school or unit taken together (``digest``).

    ``dimensions`` are (questionnaire, dimension) pairs below target, ``items`` (questionnaire,
    dimension, item) triples with too many dissatisfied, ``others`` the rules of every other
    alert in ``RULES`` order with their subjects; ``lowest_pct`` the lowest satisfaction rate
    among its pct_satisfied_low alerts and ``shortfall`` how far that is below ``target``.
    """

    scope: str
    scope_code: str
    severity: str
    n_alerts: int
    n_red: int
    questionnaires: tuple[str, ...]
    dimensions: tuple[tuple[str, str], ...]
    items: tuple[tuple[str, str, str], ...]
    others: tuple[tuple[str, str], ...]
    lowest_pct: float | None
    shortfall: float
    alert_ids: tuple[int, ...]


def _dimension_rank(code: str) -> int:
    """CHUNG, then the five dimensions in their order, then anything else."""
    order = ("CHUNG", *DIMENSIONS)
    return order.index(code) if code in order else len(order)


def _questionnaire_parts(subject: str, questionnaires: Collection[str]) -> list[str]:
    """A subject's parts from its questionnaire on ("TH/CMHS_TH/CSVC/CS2" → CMHS_TH, CSVC,
    CS2); [] when it names none of ``questionnaires``."""
    parts = [p for p in subject.split("/") if p]
    for i, part in enumerate(parts):
        if part in questionnaires:
            return parts[i:]
    return []


def _digest_line(
    key: tuple[str, str],
    alerts: list[Mapping[str, Any]],
    questionnaires: Collection[str],
    target: float,
) -> DigestLine:
    """One school's or unit's alerts as a DigestLine."""
    dims: dict[tuple[str, str], None] = {}
    items: dict[tuple[str, str, str], None] = {}
    others: dict[tuple[str, str], None] = {}
    named: dict[str, None] = {}
    pcts: list[float] = []
    for a in alerts:
        rule, subject = a["rule"], a["subject"] or ""
        parts = _questionnaire_parts(subject, questionnaires)
        if parts:
            named[parts[0]] = None
        if rule in _DIMENSION_RULES and len(parts) == 2:
            dims[(parts[0], parts[1])] = None
        elif rule == ITEM_DISSATISFIED_HIGH and len(parts) == 3:
            items[(parts[0], parts[1], parts[2])] = None
        else:
            others[(rule, subject)] = None
        if rule == PCT_SATISFIED_LOW and a["value"] is not None:
            pcts.append(float(a["value"]))
    severities = [a["severity"] for a in alerts]
    worst = min(severities, key=lambda s: _SEVERITY_ORDER.index(s) if s in _SEVERITY_ORDER else 9)
    rule_order = list(RULES)
    lowest = min(pcts, default=None)
    qs = [*named]
    return DigestLine(
        scope=key[0],
        scope_code=key[1],
        severity=worst,
        n_alerts=len(alerts),
        n_red=severities.count(RED),
        questionnaires=tuple(named),
        dimensions=tuple(sorted(dims, key=lambda d: (qs.index(d[0]), _dimension_rank(d[1])))),
        items=tuple(sorted(items, key=lambda i: (qs.index(i[0]), _dimension_rank(i[1]), i[2]))),
        others=tuple(
            sorted(others, key=lambda o: rule_order.index(o[0]) if o[0] in rule_order else 99)
        ),
        lowest_pct=lowest,
        shortfall=max(0.0, target - lowest) if lowest is not None else 0.0,
        alert_ids=tuple(int(a["alert_id"]) for a in alerts if a.get("alert_id") is not None),
    )


def digest(
    alerts: Iterable[Mapping[str, Any]],
    questionnaires: Collection[str],
    target: float = Thresholds.pct_satisfied_amber,
) -> list[DigestLine]:
    """The alerts grouped by school or unit (rows of ``alerts``, or ``Alert`` values as dicts),
    one DigestLine each: the worst severity first, then the furthest below ``target`` (the
    national target, ``pct_satisfied_amber``), then the most red alerts, then by code.

    ``questionnaires`` are the questionnaire codes, to take subjects apart. The province's own
    alerts (scope province) get a line of their own too.
    """
    groups: dict[tuple[str, str], list[Mapping[str, Any]]] = {}
    for a in alerts:
        groups.setdefault((a["scope"], a["scope_code"]), []).append(a)
    lines = [_digest_line(k, v, questionnaires, target) for k, v in groups.items()]

    def order(line: DigestLine) -> tuple[Any, ...]:
        rank = _SEVERITY_ORDER.index(line.severity) if line.severity in _SEVERITY_ORDER else 9
        return (rank, -line.shortfall, -line.n_red, -line.n_alerts, line.scope, line.scope_code)

    return sorted(lines, key=order)


def sample_size(line: DigestLine, counts: Iterable[Mapping[str, Any]]) -> int:
    """The valid responses behind a digest line: of the questionnaires its alerts name (all
    when they name none), in its school, its unit's schools or the province. ``counts`` are
    rows with ``school_code``, ``unit_code``, ``questionnaire`` and ``n_valid``
    (``warehouse.read_models.response_counts``)."""
    total = 0
    for r in counts:
        if line.scope == "school" and r["school_code"] != line.scope_code:
            continue
        if line.scope == "unit" and r["unit_code"] != line.scope_code:
            continue
        if line.questionnaires and r["questionnaire"] not in line.questionnaires:
            continue
        total += int(r["n_valid"] or 0)
    return total


# ------------------------------------------------------------------------------------------
# The step
# ------------------------------------------------------------------------------------------


def evaluate_alerts(
    engine: Engine,
    campaign_id: str,
    *,
    previous_id: str | None = None,
    thresholds: Mapping[str, float] | Thresholds | None = None,
    now: dt.datetime | None = None,
) -> AlertSync:
    """Evaluate every rule on the campaign's marts and upsert the alerts (after the marts).

    ``previous_id`` is ``campaign.previous`` (year on year; ignored if not in the warehouse),
    ``thresholds`` is ``Settings.thresholds`` (or a Thresholds), ``now`` stamps the alerts
    (naive, campaign local time; default the current time there). One transaction.

    Rules (``RULES`` holds their Vietnamese titles; default severities in brackets):

    - ``pct_satisfied_low`` per school and unit, per dimension and CHUNG: pct_satisfied below
      ``pct_satisfied_red`` [red] or ``pct_satisfied_amber`` [amber];
    - ``mean_score_low``: mean_score below ``mean_score_red`` [red];
    - ``item_dissatisfied_high`` per unit item (mart_unit_question) and school item (per-source
      figures): pct_dissatisfied = 100 × (#1 + #2) / #valid at or above
      ``item_pct_dissatisfied_red`` [red];
    - ``insufficient_sample`` per school and unit questionnaire: fewer respondents than
      ``min_respondents`` [info];
    - ``yoy_drop`` per school and unit dimension: pct_satisfied fell by ``yoy_drop_points`` or more
      since the previous campaign in the same warehouse [amber];
    - ``papi_low`` per school, unit and province indicator: pct_yes below ``papi_pct_yes_min``
      [amber];
    - ``service_total_low`` a service's total below ``service_total_min`` of 80 [amber];
      ``service_criterion_poor`` a criterion at or below ``service_criterion_poor`` points, i.e.
      Kém [amber];
    - ``submission_missing`` [amber], ``submission_failed`` [amber], ``submission_late`` [info]
      from mart_completeness;
    - ``low_response``: valid responses below ``min_response_share`` × enrolment (skipped for
      service reviews, which a board answers) [amber]; ``enrollment_unknown`` per school whose
      enrolment is unknown but that has responses low_response would judge ("chưa có sĩ số")
      [info];
    - ``rejected_share_high`` per source: rejected values / (kept + rejected values) above
      ``max_rejected_share`` [amber].

    Red is kept for the tiers DOMAIN.md calls red; every other tier it lists is amber, "late" and
    "insufficient sample" are information.

    Small samples: with fewer respondents than ``min_respondents`` no alert is red. A low
    pct_satisfied (or pct_yes) is raised, amber, only when the upper bound of its Wilson interval
    (z = ``wilson_z``, 95%) is below the threshold; a high item pct_dissatisfied only when the lower
    bound is at or above it; mean_score and year-on-year rules are not applied (the marts hold no
    spread to test a mean with). The scope then carries an ``insufficient_sample`` alert. The
    respondent, not the answer, is the sampling unit (one parent's answers to a dimension's items
    move together), so the interval of a dimension uses n_respondents.
    """
    th = thresholds if isinstance(thresholds, Thresholds) else Thresholds.from_mapping(thresholds)
    inputs = read_inputs(engine, campaign_id, previous_id)
    return sync_alerts(engine, campaign_id, evaluate_rules(inputs, th), now=now)
