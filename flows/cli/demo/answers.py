"""The demo's respondents and their answers, drawn from the questionnaires' items (labels,
grids, aliases), with the response-level traps (a test response, formula-like comments)."""

from __future__ import annotations

import datetime as dt
import random
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass

from flows.cli.demo.comments import LOW_COMMENTS, PARENT_COMMENTS, STUDENT_COMMENTS
from flows.cli.demo.province import CLOSES, OPENS, comma_list
from schemas.questionnaire import Item, Questionnaire
from schemas.records import Cell

LIKERT_LABELS = {
    1: "Rất không hài lòng",
    2: "Không hài lòng",
    3: "Bình thường",
    4: "Hài lòng",
    5: "Rất hài lòng",
}
#: What typists write for each value (DOMAIN.md "labels found in the wild").
LIKERT_VARIANTS: dict[int, tuple[Cell, ...]] = {
    1: ("Rất không hài lòng", 1, "1 - Rất không hài lòng", "(1)"),
    2: ("Không hài lòng", "Chưa hài lòng", 2, "không hài lòng"),
    3: ("Bình thường", "Phân vân", "Trung lập", "Tạm hài lòng", 3),
    4: ("Hài lòng", 4, "4 - Hài lòng", "hài lòng ", "4"),
    5: ("Rất hài lòng", 5, "(5)", "RẤT HÀI LÒNG", "5"),
}
#: Written into the first typed rows of a label_variants file, so each variant surely appears.
FORCED_VARIANTS: tuple[tuple[Cell, int], ...] = (
    ("Chưa hài lòng", 2),
    ("Phân vân", 3),
    ("4 - Hài lòng", 4),
    ("(5)", 5),
)
LEVEL_LABELS = {10: "Tốt", 7: "Khá", 5: "Trung bình", 3: "Yếu", 0: "Kém"}
_FAMILY = comma_list("Nguyễn, Trần, Lê, Phạm, Hoàng, Phan, Vũ, Võ, Đặng, Bùi, Đỗ, Hồ, Ngô, Dương")
_MIDDLE = comma_list("Văn, Thị, Hữu, Đức, Minh, Thu, Thanh, Ngọc, Quang, Thùy")
_GIVEN = comma_list(
    "An, Bình, Chi, Dũng, Giang, Hà, Hải, Hạnh, Hòa, Hùng, Hương, Khánh, Lan, Linh, Long, Mai, "
    "Nam, Nga, Phương, Quân, Sơn, Tâm, Thảo, Trang, Tuấn, Việt, Yến"
)
#: Comments a spreadsheet program would take for a formula (the first is a common emoticon).
_FORMULA_LIKE_COMMENTS = (
    "=)) Con rất thích đi học",
    "- Đề nghị nhà trường tổ chức thêm hoạt động ngoại khóa.",
    "+ Cần thêm chỗ để xe cho phụ huynh.",
)
EXTRA_QUESTION = "Ông/Bà biết đến cuộc khảo sát này qua kênh nào?"
_EXTRA_ANSWERS = ("Nhóm Zalo của lớp", "Giáo viên chủ nhiệm", "Trang web của trường", "Tin nhắn")

#: service -> group (DOMAIN.md: regulated, by agreement, voluntary).
SERVICE_GROUPS = {
    "Học phí": "Dịch vụ do Nhà nước định giá",
    "Trông giữ xe": "Dịch vụ do Nhà nước định giá",
    "Bảo hiểm y tế học sinh": "Dịch vụ do Nhà nước định giá",
    "Học nghề": "Dịch vụ do Nhà nước định giá",
    "Bán trú": "Dịch vụ theo thỏa thuận",
    "Câu lạc bộ năng khiếu": "Dịch vụ theo thỏa thuận",
    "Dạy tăng cường ngoại ngữ": "Dịch vụ theo thỏa thuận",
    "Đồng phục": "Dịch vụ theo thỏa thuận",
    "Nước uống": "Dịch vụ theo thỏa thuận",
    "Tài trợ": "Dịch vụ tự nguyện",
    "Quỹ Đội": "Dịch vụ tự nguyện",
    "Quỹ Đoàn": "Dịch vụ tự nguyện",
    "Quỹ Ban đại diện CMHS": "Dịch vụ tự nguyện",
}
#: Every reviewing school runs these two, so each unit has a ranking with several schools.
COMMON_SERVICES = ("Bảo hiểm y tế học sinh", "Quỹ Ban đại diện CMHS")
LEVEL_SERVICES = {
    "MN": ("Bán trú", "Nước uống", "Đồng phục", "Câu lạc bộ năng khiếu"),
    "TH": ("Bán trú", "Nước uống", "Dạy tăng cường ngoại ngữ", "Câu lạc bộ năng khiếu", "Quỹ Đội"),
    "THCS": ("Học phí", "Trông giữ xe", "Dạy tăng cường ngoại ngữ", "Đồng phục", "Quỹ Đội"),
    "THPT": ("Học phí", "Trông giữ xe", "Học nghề", "Câu lạc bộ năng khiếu", "Quỹ Đoàn", "Tài trợ"),
    "GDTX": ("Học phí", "Trông giữ xe", "Học nghề", "Quỹ Đoàn"),
}


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass
class Response:
    """One respondent's form: when it was sent and what it answered."""

    submitted_at: dt.datetime
    #: item code -> canonical value (likert 1-5, yesno bool, level points, percent int, text).
    values: dict[str, Cell]
    email: str
    name: str
    phone: str
    extra: str


def _ascii(text: str) -> str:
    decomposed = unicodedata.normalize("NFD", text.replace("Đ", "D").replace("đ", "d"))
    return "".join(c for c in decomposed if not unicodedata.combining(c))


def _person(rng: random.Random) -> tuple[str, str, str]:
    """A fake name, e-mail (reserved example domains) and mobile number."""
    name = f"{rng.choice(_FAMILY)} {rng.choice(_MIDDLE)} {rng.choice(_GIVEN)}"
    user = _ascii(name).lower().replace(" ", rng.choice(("", ".", "_")))
    email = f"{user}{rng.randint(70, 99)}@{rng.choice(('example.com', 'example.org'))}"
    phone = f"0{rng.choice((3, 7, 8, 9))}{rng.randrange(10**8):08d}"
    return name, email, phone


def _class_name(level: str, rng: random.Random) -> str:
    if level == "MN":
        return rng.choice(("Nhà trẻ 24-36 tháng", "Mẫu giáo bé", "Mẫu giáo nhỡ", "Mẫu giáo lớn"))
    grades = {"TH": (1, 5), "THCS": (6, 9), "THPT": (10, 12), "GDTX": (10, 12)}[level]
    grade = rng.randint(*grades)
    if level == "TH":
        return f"{grade}{rng.choice('ABCDE')}"
    return f"{grade}A{rng.randint(1, 8)}"


def _clamp(value: float, low: int, high: int) -> int:
    return max(low, min(high, round(value)))


def _timestamps(n: int, rng: random.Random) -> list[dt.datetime]:
    start = dt.datetime.combine(OPENS, dt.time(6, 0))
    span = int((dt.datetime.combine(CLOSES, dt.time(22, 0)) - start).total_seconds())
    return sorted(start + dt.timedelta(seconds=rng.randrange(span)) for _ in range(n))


def _text_value(item: Item, level: str, student: bool, low: bool, rng: random.Random) -> str:
    if item.code == "LOP":
        return _class_name(level, rng)
    if item.code == "GIOI_TINH":
        return rng.choice(("Nam", "Nữ"))
    if item.code == "KHU_VUC":
        return rng.choice(("Thành thị", "Nông thôn"))
    if item.code == "Y_KIEN" and rng.random() < 0.3:
        pool = LOW_COMMENTS if low else (STUDENT_COMMENTS if student else PARENT_COMMENTS)
        return rng.choice(pool)
    return ""


def satisfaction_responses(
    q: Questionnaire,
    level: str,
    n: int,
    low: bool,
    rng: random.Random,
    shift: float = 0.0,
) -> list[Response]:
    """Answers with a school-wide mood per dimension and a per-respondent lean; ``shift``
    moves the school's mood (a year when schools were a little less liked)."""
    # Calibrated so most schools land near the published 85-92 % satisfied, low ones near 40 %.
    base = (rng.uniform(3.2, 3.45) if low else rng.uniform(4.25, 4.6)) + shift
    mood = {d: base + rng.uniform(-0.25, 0.2) for d in q.dimensions}
    student = q.respondent.startswith("Học sinh")
    out = []
    for ts in _timestamps(n, rng):
        lean = rng.gauss(0, 0.3)
        values: dict[str, Cell] = {}
        scores: list[int] = []
        for item in q.items:
            if item.kind == "likert" and item.code != "CHUNG":
                v = _clamp(rng.gauss(mood.get(item.dimension or "", base) + lean, 0.7), 1, 5)
                values[item.code] = v
                scores.append(v)
        mean = sum(scores) / len(scores) if scores else base
        for item in q.items:
            if item.code == "CHUNG":
                values[item.code] = _clamp(rng.gauss(mean, 0.5), 1, 5)
            elif item.kind == "percent":
                values[item.code] = 5 * _clamp(((mean - 1) * 25 + rng.gauss(0, 8)) / 5, 6, 20)
            elif item.kind == "text":
                values[item.code] = _text_value(item, level, student, low, rng)
            elif item.kind == "yesno":
                values[item.code] = rng.random() < 0.9
        name, email, phone = _person(rng)
        out.append(Response(ts, values, email, name, phone, rng.choice(_EXTRA_ANSWERS)))
    return out


def papi_responses(
    q: Questionnaire, n: int, low_indicator: str | None, rng: random.Random
) -> list[Response]:
    """``n`` PAPI forms; ``low_indicator`` answered 'Có' by about 60 %."""
    out = []
    for ts in _timestamps(n, rng):
        values: dict[str, Cell] = {}
        for item in q.items:
            if item.kind == "yesno":
                p_yes = 0.6 if item.code == low_indicator else rng.uniform(0.88, 0.98)
                values[item.code] = rng.random() < p_yes
            elif item.kind == "text":
                values[item.code] = _text_value(item, "TH", False, False, rng)
        name, email, phone = _person(rng)
        out.append(Response(ts, values, email, name, phone, ""))
    return out


def _test_value(code: str, value: Cell) -> Cell:
    if code == "MONG_DOI":
        return 100
    if isinstance(value, int) and not isinstance(value, bool):
        return 5
    return value


def add_traps(responses: list[Response], traps: Sequence[str]) -> None:
    """Response-level traps that do not depend on the file layout, placed by position."""
    if "before_opens" in traps:
        # The officer tried the form out before the campaign: everything "Rất hài lòng".
        responses.insert(
            0,
            Response(
                dt.datetime.combine(OPENS - dt.timedelta(days=4), dt.time(20, 14, 5)),
                {code: _test_value(code, v) for code, v in responses[0].values.items()},
                "thu.bieu.mau@example.com",
                "Thử biểu mẫu",
                "0900000000",
                _EXTRA_ANSWERS[0],
            ),
        )
    if "formula_like_text" in traps:
        for k, comment in enumerate(_FORMULA_LIKE_COMMENTS):
            target = responses[min(len(responses) - 1, 3 + 7 * k)]
            if "Y_KIEN" in target.values:
                target.values["Y_KIEN"] = comment
