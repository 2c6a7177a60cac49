"""Demo: a synthetic post-2025 province, with the submissions and the mess seen in the wild.

``generate_province`` writes a ready-to-run campaign folder (khaosat.yaml, schools.csv,
sources.csv, submissions/) for ``khaosat demo``, for the end-to-end tests and for benchmarks.
Answers are drawn from the questionnaire YAML (item texts, grids, aliases), so the demo follows
the schemas when they change.

Organisation after the 2025 reform: MN, TH and THCS schools report through their commune or ward
(xã/phường); THPT schools and the GDTX centre sit directly under the Sở, which is the last unit.

Which school carries which trap is fixed by position, not by the seed (the seed only changes
names and answers), so tests can rely on it: :func:`trap_locations` lists them, and
:data:`TRAPS` says what each one is. With the defaults (4 units of 5 schools; every file is
``submissions/<school>_<questionnaire>.<ext>``):

=========  ==================================================================================
MN001      CMHS_MN Forms xlsx, day-first text timestamps, e-mails, one response before opens
TH002      CMHS_TH typed paper xlsx: title block (merged), "Câu n." headers, blank rows, totals
           row of formulas without cached values, serial dates, label variants, "6" and
           "Không biết"; PAPI_TH as a CSV with BOM; DVGD_8TC
THCS003    CMHS_THCS Forms CSV with BOM and one exact duplicate response; DVGD_8TC
MN004      CMHS_MN Forms xlsx with English headers and datetime cells; low satisfaction
TH005      CMHS_TH renamed, reordered and extra questions, no KHU_VUC, name and phone
           columns; PAPI_TH
MN006      CMHS_MN typed paper xlsx, all text NFD, label variants
TH007      CMHS_TH corrupt .xlsx (random bytes); its DVGD_8TC has a failing service
THCS008    CMHS_THCS modified after the deadline (late); DVGD_8TC
MN009      CMHS_MN registered, file absent
TH010      CMHS_TH empty file (0 bytes)
MN011      in schools.csv, no source at all
TH012      CMHS_TH with comments starting "=", "-", "+"; PAPI_TH with HOC_THEM ~60 % "Có";
           DVGD_8TC
THCS013    CMHS_THCS Forms CSV; low satisfaction; DVGD_8TC
MN014      CMHS_MN Forms CSV without BOM, comments starting "=", "-", "+"
THPT016    HS_THPT with linear-scale numbers 1-5
THPT017    CMHS_THPT typed paper: "1)" headers, numeric totals row; DVGD_8TC
THPT018    CMHS_THPT timestamps as bare serial numbers; DVGD_8TC
=========  ==================================================================================
"""

from __future__ import annotations

import csv
import datetime as dt
import os
import random
import unicodedata
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook
from openpyxl.styles import Alignment, Font
from openpyxl.utils import get_column_letter

from flows.publish.xlsx import save_workbook, write_cell
from flows.registry import SCHOOL_COLUMNS, SOURCE_COLUMNS
from flows.settings import DEFAULT_TIMEZONE
from schemas.questionnaire import Item, Questionnaire, load_questionnaires
from schemas.records import Cell

# ---------------------------------------------------------------------------------------------
# The campaign

PROVINCE_NAME = "Hà Nội"
PROVINCE_CODE = "01"
CAMPAIGN_ID = "HN-2024"
CAMPAIGN_NAME = "Khảo sát sự hài lòng của người dân đối với dịch vụ giáo dục công năm học 2024-2025"
SCHOOL_YEAR = "2024-2025"
OPENS = dt.date(2024, 10, 21)
CLOSES = dt.date(2024, 11, 15)
DEADLINE = dt.date(2024, 11, 20)

#: unit_code of the Sở, the reporting unit of THPT schools and GDTX centres.
SO_UNIT_CODE = "SGD"
SO_UNIT_NAME = f"Sở Giáo dục và Đào tạo {PROVINCE_NAME}"

#: What each trap is; :func:`trap_locations` says where each one is.
TRAPS: dict[str, str] = {
    "forms_xlsx": "Google Forms download (.xlsx): timestamp column, then one column per question",
    "timestamp_text": "'Dấu thời gian' holds day-first text such as '29/10/2024 9:05:31'",
    "timestamp_datetime": "the timestamp column holds real datetime cells",
    "english_headers": "a Forms sheet from an English account: 'Timestamp', 'Email Address'",
    "email": "an 'Địa chỉ email' / 'Email Address' column of (fake) respondent e-mails",
    "grid_headers": "Likert grid columns headed 'Grid title [Row text]'",
    "labels_text": "Likert answers are option labels ('Hài lòng'), not numbers",
    "linear_scale": "Likert answers are the numbers 1-5 (a linear-scale question)",
    "csv_bom": "CSV download, UTF-8 with a byte-order mark",
    "csv_no_bom": "CSV download, UTF-8 without a byte-order mark",
    "paper_xlsx": "answers typed into Excel from paper forms",
    "title_block": "'SỞ GIÁO DỤC VÀ ĐÀO TẠO …' / 'TRƯỜNG …' title rows, merged, above the header",
    "numbered_headers": "headers numbered 'Câu 5. …' or '5) …'",
    "blank_rows": "empty rows between blocks of typed answers",
    "totals_row": "a last row 'Tổng cộng' with counts and an average",
    "formula_totals": "the totals row holds formulas without cached values",
    "serial_dates": "'Ngày khảo sát' dates typed as Excel serial numbers (e.g. 45593)",
    "serial_timestamps": "'Dấu thời gian' as bare serial numbers (45594.378…): a re-saved "
    "download that lost its date format",
    "nfd": "all text in Unicode NFD (decomposed accents)",
    "label_variants": "'Chưa hài lòng', 'Phân vân', '4 - Hài lòng', '(5)', bare numbers, case",
    "invalid_answers": "Likert cells '6' and 'Không biết'",
    "renamed": "questions headed by an alias ('Con học lớp', 'Mức độ hài lòng chung', …)",
    "reordered": "question columns in another order than the questionnaire",
    "extra_question": "a question the school added that no questionnaire has",
    "personal_data": "'Họ và tên' and 'Số điện thoại' columns (fake); must never reach outputs",
    "missing_question": "a questionnaire item the school's form left out (KHU_VUC)",
    "formula_like_text": "comments starting with '=', '-' or '+' (e.g. '=)) …')",
    "before_opens": "one response timestamped before the campaign opens (the officer's test)",
    "duplicate": "one response appears twice, identical",
    "corrupt": "a .xlsx file of random bytes",
    "empty": "a file of 0 bytes",
    "absent": "a source in sources.csv whose file does not exist",
    "no_source": "a school in schools.csv with no row in sources.csv",
    "late": "a file whose modified time is after the deadline",
    "low_satisfaction": "a school whose answers are mostly below 'Hài lòng' (red alerts)",
    "papi_low": "a PAPI indicator answered 'Có' by about 60 % (below the 80 % alert)",
    "service_low": "a service scored mostly Yếu/Trung bình with one 'Kém' criterion",
}

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
_FORCED_VARIANTS: tuple[tuple[Cell, int], ...] = (
    ("Chưa hài lòng", 2),
    ("Phân vân", 3),
    ("4 - Hài lòng", 4),
    ("(5)", 5),
)
LEVEL_LABELS = {10: "Tốt", 7: "Khá", 5: "Trung bình", 3: "Yếu", 0: "Kém"}

_LEVELS_CYCLE = ("MN", "TH", "THCS", "MN", "TH")
_ENROLLMENT = {
    "MN": (180, 450),
    "TH": (600, 1500),
    "THCS": (550, 1300),
    "THPT": (900, 1800),
    "GDTX": (200, 600),
}
_SCHOOL_PREFIX = {
    "MN": "Trường Mầm non",
    "TH": "Trường Tiểu học",
    "THCS": "Trường THCS",
    "THPT": "Trường THPT",
    "GDTX": "Trung tâm GDNN - GDTX",
}


def _split(text: str) -> tuple[str, ...]:
    """Names listed as one comma-separated string (keeps long lists short)."""
    return tuple(part.strip() for part in text.split(","))


_SCHOOL_NAMES = {
    "MN": _split(
        "Hoa Sen, Hoa Mai, Sơn Ca, Họa Mi, Ánh Sao, Tuổi Thơ, Hoa Hồng, Vành Khuyên, Bông Sen, "
        "Hoa Ban, Thỏ Ngọc, Búp Măng, Hướng Dương, Sao Mai"
    ),
    "TH": _split(
        "Kim Đồng, Lê Văn Tám, Trưng Vương, Quang Trung, Ngô Quyền, Võ Thị Sáu, Nguyễn Bá Ngọc, "
        "Đoàn Thị Điểm, Điện Biên, Thăng Long, Đống Đa, Khương Đình"
    ),
    "THCS": _split(
        "Nguyễn Du, Lý Thường Kiệt, Trần Phú, Giảng Võ, Nguyễn Trường Tộ, Ngô Sĩ Liên, Tô Hoàng, "
        "Láng Thượng, Phan Chu Trinh, Lê Lợi, Hoàng Hoa Thám, Thành Công"
    ),
    "THPT": _split(
        "Chu Văn An, Phan Đình Phùng, Việt Đức, Kim Liên, Yên Hòa, Trần Nhân Tông, Nguyễn Trãi, "
        "Lê Quý Đôn, Thăng Long, Cầu Giấy, Quang Trung, Đoàn Kết"
    ),
    "GDTX": _split("Ba Đình, Đống Đa, Cầu Giấy, Hoàng Mai, Long Biên, Sóc Sơn, Đông Anh"),
}
_COMMUNES = _split(
    "Phường Ba Đình, Phường Hoàn Kiếm, Phường Cầu Giấy, Phường Đống Đa, Phường Hai Bà Trưng, "
    "Phường Tây Hồ, Phường Long Biên, Phường Hoàng Mai, Phường Thanh Xuân, Phường Hà Đông, "
    "Xã Sóc Sơn, Xã Đông Anh, Xã Gia Lâm, Xã Thanh Trì, Xã Mê Linh, Xã Ba Vì, Xã Phúc Thọ, "
    "Xã Thạch Thất, Xã Quốc Oai, Xã Chương Mỹ, Xã Thường Tín, Xã Phú Xuyên, Xã Ứng Hòa, Xã Mỹ Đức"
)
_FAMILY = _split("Nguyễn, Trần, Lê, Phạm, Hoàng, Phan, Vũ, Võ, Đặng, Bùi, Đỗ, Hồ, Ngô, Dương")
_MIDDLE = _split("Văn, Thị, Hữu, Đức, Minh, Thu, Thanh, Ngọc, Quang, Thùy")
_GIVEN = _split(
    "An, Bình, Chi, Dũng, Giang, Hà, Hải, Hạnh, Hòa, Hùng, Hương, Khánh, Lan, Linh, Long, Mai, "
    "Nam, Nga, Phương, Quân, Sơn, Tâm, Thảo, Trang, Tuấn, Việt, Yến"
)
_PARENT_COMMENTS = (
    "Nhà trường cần bổ sung thêm cây xanh và sân chơi cho các con.",
    "Đề nghị nhà trường tăng cường trao đổi với phụ huynh qua Zalo.",
    "Cảm ơn các thầy cô đã tận tình với các cháu.",
    "Mong nhà trường giảm bớt các khoản thu đầu năm.",
    "Không có ý kiến.",
    "Phòng học hơi nóng, đề nghị lắp thêm quạt.",
    "Nhà vệ sinh cần được dọn thường xuyên hơn.",
)
_STUDENT_COMMENTS = (
    "Em mong trường có thêm câu lạc bộ thể thao.",
    "Thư viện nên mở cửa cả buổi trưa ạ.",
    "Em cảm ơn thầy cô.",
    "Mong nhà trường sửa lại máy chiếu ở các phòng học.",
    "Không có ý kiến.",
)
_LOW_COMMENTS = (
    "Cơ sở vật chất xuống cấp, phòng học dột khi trời mưa.",
    "Các khoản thu chưa được công khai rõ ràng.",
    "Giáo viên ít trao đổi với gia đình.",
)
#: Comments a spreadsheet program would take for a formula (the first is a common emoticon).
_FORMULA_LIKE_COMMENTS = (
    "=)) Con rất thích đi học",
    "- Đề nghị nhà trường tổ chức thêm hoạt động ngoại khóa.",
    "+ Cần thêm chỗ để xe cho phụ huynh.",
)
_EXTRA_QUESTION = "Ông/Bà biết đến cuộc khảo sát này qua kênh nào?"
_EXTRA_ANSWERS = ("Nhóm Zalo của lớp", "Giáo viên chủ nhiệm", "Trang web của trường", "Tin nhắn")

#: service -> group (DOMAIN.md: regulated, by agreement, voluntary).
_SERVICE_GROUPS = {
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
_COMMON_SERVICES = ("Bảo hiểm y tế học sinh", "Quỹ Ban đại diện CMHS")
_LEVEL_SERVICES = {
    "MN": ("Bán trú", "Nước uống", "Đồng phục", "Câu lạc bộ năng khiếu"),
    "TH": ("Bán trú", "Nước uống", "Dạy tăng cường ngoại ngữ", "Câu lạc bộ năng khiếu", "Quỹ Đội"),
    "THCS": ("Học phí", "Trông giữ xe", "Dạy tăng cường ngoại ngữ", "Đồng phục", "Quỹ Đội"),
    "THPT": ("Học phí", "Trông giữ xe", "Học nghề", "Câu lạc bộ năng khiếu", "Quỹ Đoàn", "Tài trợ"),
    "GDTX": ("Học phí", "Trông giữ xe", "Học nghề", "Quỹ Đoàn"),
}


# ---------------------------------------------------------------------------------------------
# The plan: which school has which sources and traps (structural, independent of the seed)


@dataclass(frozen=True)
class _Spec:
    """How one source's file is written."""

    layout: str  # forms | paper | review | corrupt | empty | absent
    ext: str = "xlsx"  # xlsx | csv
    traps: tuple[str, ...] = ()


_FORMS_TEXT = _Spec(
    "forms",
    "xlsx",
    ("forms_xlsx", "timestamp_text", "email", "grid_headers", "labels_text"),
)
_FORMS_DATETIME = _Spec(
    "forms", "xlsx", ("forms_xlsx", "timestamp_datetime", "grid_headers", "labels_text")
)
_FORMS_CSV = _Spec(
    "forms", "csv", ("csv_bom", "timestamp_text", "email", "grid_headers", "labels_text")
)
#: Layouts of sources without a trap role, taken in turn.
_DEFAULT_SPECS = (_FORMS_TEXT, _FORMS_DATETIME, _FORMS_CSV)
_PAPER = ("paper_xlsx", "title_block", "numbered_headers", "blank_rows", "serial_dates")

#: (level, n-th school of that level) -> spec of each satisfaction form (None: the first one).
_ROLES: dict[tuple[str, int], dict[str | None, _Spec]] = {
    ("MN", 0): {None: _Spec("forms", "xlsx", (*_FORMS_TEXT.traps, "before_opens"))},
    ("MN", 1): {
        None: _Spec(
            "forms",
            "xlsx",
            (
                "forms_xlsx",
                "english_headers",
                "timestamp_datetime",
                "email",
                "grid_headers",
                "labels_text",
            ),
        )
    },
    ("MN", 2): {None: _Spec("paper", "xlsx", (*_PAPER, "nfd", "label_variants"))},
    ("MN", 3): {None: _Spec("absent", "xlsx", ("absent",))},
    ("MN", 4): {},  # no_source
    ("MN", 5): {
        None: _Spec(
            "forms",
            "csv",
            ("csv_no_bom", "timestamp_text", "grid_headers", "labels_text", "formula_like_text"),
        )
    },
    ("TH", 0): {
        None: _Spec(
            "paper",
            "xlsx",
            (*_PAPER, "totals_row", "formula_totals", "label_variants", "invalid_answers"),
        )
    },
    ("TH", 1): {
        None: _Spec(
            "forms",
            "xlsx",
            (
                "forms_xlsx",
                "timestamp_datetime",
                "email",
                "labels_text",
                "renamed",
                "reordered",
                "extra_question",
                "personal_data",
                "missing_question",
                "numbered_headers",
            ),
        )
    },
    ("TH", 2): {None: _Spec("corrupt", "xlsx", ("corrupt",))},
    ("TH", 3): {None: _Spec("empty", "csv", ("empty",))},
    ("TH", 4): {None: _Spec("forms", "xlsx", (*_FORMS_TEXT.traps, "formula_like_text"))},
    ("TH", 5): {None: _FORMS_DATETIME},
    ("THCS", 0): {None: _Spec("forms", "csv", (*_FORMS_CSV.traps, "duplicate"))},
    ("THCS", 1): {None: _Spec("forms", "xlsx", (*_FORMS_DATETIME.traps, "late"))},
    ("THCS", 2): {None: _FORMS_CSV},
    ("THPT", 0): {
        "CMHS_THPT": _FORMS_DATETIME,
        "HS_THPT": _Spec(
            "forms", "xlsx", ("forms_xlsx", "timestamp_text", "grid_headers", "linear_scale")
        ),
    },
    ("THPT", 1): {
        "CMHS_THPT": _Spec("paper", "xlsx", (*_PAPER, "totals_row", "label_variants")),
        "HS_THPT": _FORMS_CSV,
    },
    ("THPT", 2): {
        "CMHS_THPT": _Spec(
            "forms", "xlsx", ("forms_xlsx", "serial_timestamps", "grid_headers", "labels_text")
        )
    },
}
_NO_SOURCE = ("MN", 4)
_LOW = {("MN", 1), ("THCS", 2)}
#: TH schools that also submit PAPI_TH, with the spec of that file.
_PAPI_ROLES: dict[int, _Spec] = {
    0: _Spec("forms", "csv", ("csv_bom", "timestamp_text", "labels_text")),
    1: _Spec("forms", "xlsx", ("forms_xlsx", "timestamp_datetime", "email", "labels_text")),
    4: _Spec("forms", "xlsx", ("forms_xlsx", "timestamp_text", "labels_text", "papi_low")),
}
_REVIEW = _Spec("review", "xlsx", ("title_block",))
#: Positions within each unit whose school submits DVGD_8TC (rankings need several per unit).
_REVIEW_POSITIONS = (1, 2)
#: (level, n-th school) whose DVGD_8TC has a failing service.
_SERVICE_LOW = ("TH", 2)


@dataclass(frozen=True)
class _School:
    code: str
    level: str
    unit_index: int  # 0-based; the last unit is the Sở
    position: int  # 0-based within its unit
    level_index: int  # n-th school of its level in the province
    unit_code: str

    @property
    def role(self) -> tuple[str, int]:
        return (self.level, self.level_index)


@dataclass(frozen=True)
class _Source:
    school: _School
    questionnaire: str
    spec: _Spec
    low: bool = False

    @property
    def location(self) -> str:
        return f"submissions/{self.school.code}_{self.questionnaire}.{self.spec.ext}"

    @property
    def kind(self) -> str:
        return "csv" if self.spec.ext == "csv" else "excel"


@dataclass
class _Plan:
    schools: list[_School]
    sources: list[_Source]
    #: school-level traps (no_source) -> school codes.
    school_traps: dict[str, list[str]] = field(default_factory=dict)


def _plan(
    questionnaires: Mapping[str, Questionnaire], n_units: int, schools_per_unit: int
) -> _Plan:
    if n_units < 2 or schools_per_unit < 1:
        raise ValueError("a demo province needs at least 2 units and 1 school per unit")
    schools: list[_School] = []
    seen: dict[str, int] = {}
    for u in range(n_units):
        is_so = u == n_units - 1
        unit_code = SO_UNIT_CODE if is_so else f"XP{u + 1:02d}"
        for p in range(schools_per_unit):
            if is_so:
                level = "GDTX" if p == schools_per_unit - 1 and schools_per_unit > 1 else "THPT"
            else:
                level = _LEVELS_CYCLE[p % len(_LEVELS_CYCLE)]
            idx = seen.get(level, 0)
            seen[level] = idx + 1
            code = f"{level}{len(schools) + 1:03d}"
            schools.append(_School(code, level, u, p, idx, unit_code))
    missing = [f"{lvl} #{i + 1}" for lvl, i in _ROLES if seen.get(lvl, 0) <= i]
    if missing:
        raise ValueError(
            f"n_units={n_units}, schools_per_unit={schools_per_unit} is too small to place every "
            f"trap (needs {', '.join(missing)}); use at least 4 units of 5 schools"
        )

    satisfaction = [q for q in questionnaires.values() if q.kind == "satisfaction"]
    sources: list[_Source] = []
    plan = _Plan(schools, sources)
    defaults = 0
    for s in schools:
        if s.role == _NO_SOURCE:
            plan.school_traps.setdefault("no_source", []).append(s.code)
            continue
        role = _ROLES.get(s.role, {})
        forms = [q.code for q in satisfaction if s.level in q.levels]
        for i, code in enumerate(forms):
            spec = role.get(code) or (role.get(None) if i == 0 else None)
            if spec is None:
                spec = _DEFAULT_SPECS[defaults % len(_DEFAULT_SPECS)]
                defaults += 1
            sources.append(_Source(s, code, spec, low=s.role in _LOW))
        if s.level == "TH" and "PAPI_TH" in questionnaires:
            papi = _PAPI_ROLES.get(s.level_index)
            if papi is None and s.level_index >= 6 and s.level_index % 2 == 0:
                papi = _PAPI_ROLES[1]
            if papi is not None:
                sources.append(_Source(s, "PAPI_TH", papi))
        reviews = s.position in _REVIEW_POSITIONS or s.role == _SERVICE_LOW
        if reviews and "DVGD_8TC" in questionnaires:
            traps = (*_REVIEW.traps, "service_low") if s.role == _SERVICE_LOW else _REVIEW.traps
            sources.append(_Source(s, "DVGD_8TC", _Spec("review", "xlsx", traps)))
    return plan


def trap_locations(
    n_units: int = 4,
    schools_per_unit: int = 5,
    questionnaires: Mapping[str, Questionnaire] | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Where each trap of :data:`TRAPS` is: trap -> [(school_code, sources.csv location)].

    The location is "" for school-level traps (``no_source``). ``low_satisfaction`` lists the
    school's satisfaction sources. Independent of the seed.
    """
    qs = load_questionnaires() if questionnaires is None else questionnaires
    plan = _plan(qs, n_units, schools_per_unit)
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in TRAPS}
    for src in plan.sources:
        for trap in src.spec.traps:
            out[trap].append((src.school.code, src.location))
        if src.low:
            out["low_satisfaction"].append((src.school.code, src.location))
    for trap, codes in plan.school_traps.items():
        out[trap].extend((code, "") for code in codes)
    return out


# ---------------------------------------------------------------------------------------------
# Answers


@dataclass
class _Response:
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
        pool = _LOW_COMMENTS if low else (_STUDENT_COMMENTS if student else _PARENT_COMMENTS)
        return rng.choice(pool)
    return ""


def _satisfaction_responses(
    q: Questionnaire, level: str, n: int, low: bool, rng: random.Random
) -> list[_Response]:
    """Answers with a school-wide mood per dimension and a per-respondent lean."""
    # Calibrated so most schools land near the published 85-92 % satisfied, low ones near 40 %.
    base = rng.uniform(3.2, 3.45) if low else rng.uniform(4.25, 4.6)
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
        out.append(_Response(ts, values, email, name, phone, rng.choice(_EXTRA_ANSWERS)))
    return out


def _papi_responses(
    q: Questionnaire, n: int, low_indicator: str | None, rng: random.Random
) -> list[_Response]:
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
        out.append(_Response(ts, values, email, name, phone, ""))
    return out


# ---------------------------------------------------------------------------------------------
# Sheets: what a file holds, before it is written as xlsx or CSV


@dataclass
class _Sheet:
    name: str
    header: list[str]
    rows: list[list[Cell]]  # an empty list is a blank row
    #: title rows above the header: each a list of (first column, last column, text), merged.
    title: list[list[tuple[int, int, str]]] = field(default_factory=list)
    #: 0-based column -> number format (datetime columns).
    formats: dict[int, str] = field(default_factory=dict)


Column = tuple[str, Callable[[_Response], Cell]]


class _Formula(str):
    """A formula typed into a sheet (written as a formula, with no cached value)."""

    __slots__ = ()


def _as_int(value: Cell) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"expected a whole number, got {value!r}")
    return value


def _header(item: Item, grid: bool) -> str:
    return f"{item.grid} [{item.text}]" if grid and item.grid else item.text


def _forms_label(item: Item, value: Cell, linear: bool) -> Cell:
    if value is None or value == "":
        return None
    if item.kind == "likert":
        return value if linear else LIKERT_LABELS[_as_int(value)]
    if item.kind == "yesno":
        return "Có" if value else "Không"
    if item.kind == "level":
        return LEVEL_LABELS[_as_int(value)]
    return value


def _timestamp_text(ts: dt.datetime) -> str:
    # Google Sheets in a Vietnamese locale: day first, hour without a leading zero.
    return f"{ts:%d/%m/%Y} {ts.hour}:{ts:%M:%S}"


def _item_getter(item: Item, linear: bool) -> Callable[[_Response], Cell]:
    return lambda r: _forms_label(item, r.values.get(item.code), linear)


def _stamp(text: bool, traps: Sequence[str]) -> Callable[[_Response], Cell]:
    """How the timestamp column shows a response's time."""
    if text:
        return lambda r: _timestamp_text(r.submitted_at)
    if "serial_timestamps" in traps:
        return lambda r: _serial_time(r.submitted_at)
    return lambda r: r.submitted_at


def _forms_sheet(
    q: Questionnaire, responses: list[_Response], traps: Sequence[str], csv_file: bool
) -> _Sheet:
    """A Google Forms response sheet (the download of its linked Google Sheet)."""
    english = "english_headers" in traps
    text_ts = csv_file or "timestamp_text" in traps
    linear = "linear_scale" in traps
    grid = "grid_headers" in traps
    columns: list[Column] = [("Timestamp" if english else "Dấu thời gian", _stamp(text_ts, traps))]
    if "email" in traps:
        columns.append(("Email Address" if english else "Địa chỉ email", lambda r: r.email))
    if "personal_data" in traps:
        columns.append(("Họ và tên", lambda r: r.name))
        columns.append(("Số điện thoại", lambda r: r.phone))
    items = list(q.items)
    if "missing_question" in traps:
        items = [i for i in items if i.code != "KHU_VUC"]
    if "reordered" in traps:
        # Background first, then the Likert blocks last-to-first, the school's own question
        # in the middle, and the closing questions.
        background = [i for i in items if i.kind == "text" and i.code != "Y_KIEN"]
        likert = [i for i in items if i.kind == "likert" and i.code != "CHUNG"][::-1]
        rest = [i for i in items if i not in background and i not in likert]
        items = background + likert + rest
    renamed_likert = 0
    for n, item in enumerate(items, start=1):
        head = _header(item, grid)
        if "renamed" in traps and item.aliases:
            is_grid_row = item.kind == "likert" and item.code != "CHUNG"
            # Every renamed background/closing question, and the first two grid rows.
            if not is_grid_row or renamed_likert < 2:
                head = item.aliases[0]
                renamed_likert += is_grid_row
        if "numbered_headers" in traps and item.kind == "likert":
            # Schools rebuilding the form number its questions; extra spaces come along.
            head = f"Câu {n}.  {head} "
        columns.append((head, _item_getter(item, linear)))
        if "extra_question" in traps and item.code == "CHUNG":
            columns.append((_EXTRA_QUESTION, lambda r: r.extra))
    rows = [[get(r) for _, get in columns] for r in responses]
    formats = {} if text_ts or "serial_timestamps" in traps else {0: "dd/mm/yyyy hh:mm:ss"}
    name = "Form Responses 1" if english else "Câu trả lời biểu mẫu 1"
    return _Sheet(name, [h for h, _ in columns], rows, formats=formats)


def _title_block(school_name: str, heading: str, width: int) -> list[list[tuple[int, int, str]]]:
    half = max(3, width // 2)
    right = max(half + 4, width)
    return [
        [
            (1, half, f"SỞ GIÁO DỤC VÀ ĐÀO TẠO {PROVINCE_NAME.upper()}"),
            (half + 1, right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM"),
        ],
        [(1, half, school_name.upper()), (half + 1, right, "Độc lập - Tự do - Hạnh phúc")],
        [],
        [(1, right, heading)],
        [(1, right, f"Năm học {SCHOOL_YEAR}")],
        [],
    ]


def _serial(day: dt.date) -> int:
    """Excel's serial day number (1900 date system), as typed without a date format."""
    return (day - dt.date(1899, 12, 30)).days


def _serial_time(when: dt.datetime) -> float:
    """Excel's serial date-time: days since 1899-12-30 plus the fraction of the day."""
    return (when - dt.datetime(1899, 12, 30)) / dt.timedelta(days=1)


def _paper_cell(item: Item, value: Cell, variants: bool, rng: random.Random) -> Cell:
    if value is None or value == "":
        return None
    if item.kind == "likert" and variants:
        return rng.choice(LIKERT_VARIANTS[_as_int(value)])
    return _forms_label(item, value, linear=False)


def _paper_sheet(
    q: Questionnaire,
    school_name: str,
    responses: list[_Response],
    traps: Sequence[str],
    rng: random.Random,
) -> _Sheet:
    """Paper forms typed into Excel by a teacher, one row per form."""
    variants = "label_variants" in traps
    background = [i for i in q.items if i.kind == "text" and i.code != "Y_KIEN"]
    numbered = [i for i in q.items if i not in background]
    header = ["STT", "Ngày khảo sát"] + [i.text for i in background]
    style = "paren" if "totals_row" in traps and "formula_totals" not in traps else "cau"
    for n, item in enumerate(numbered, start=1):
        header.append(f"{n}) {item.text}" if style == "paren" else f"Câu {n}. {item.text}")
    items = background + numbered
    rows: list[list[Cell]] = []
    for k, r in enumerate(responses):
        row: list[Cell] = [k + 1, _serial(r.submitted_at.date())]
        for item in items:
            # Paper respondents skip a question now and then; an empty cell is no answer.
            skipped = item.kind == "likert" and rng.random() < 0.01
            cell = _paper_cell(item, r.values.get(item.code), variants, rng)
            row.append(None if skipped else cell)
        rows.append(row)
    first = len(header) - len(numbered)  # 0-based column of the first numbered item
    if variants:
        likert_cols = [first + j for j, i in enumerate(numbered) if i.kind == "likert"]
        for (label, value), col in zip(_FORCED_VARIANTS, likert_cols, strict=False):
            rows[0][col] = label
            responses[0].values[items[col - 2].code] = value
    if "invalid_answers" in traps:
        likert_cols = [first + j for j, i in enumerate(numbered) if i.kind == "likert"]
        rows[2][likert_cols[1]] = "6"
        chung = next((first + j for j, i in enumerate(numbered) if i.code == "CHUNG"), None)
        rows[4][chung if chung is not None else likert_cols[2]] = "Không biết"
    heading = f"TỔNG HỢP {q.name.upper()}"
    title = _title_block(school_name, heading, 12)
    data_first = len(title) + 2  # 1-based sheet row of the first form (after the header)
    out_rows: list[list[Cell]] = []
    for k, row in enumerate(rows):
        if "blank_rows" in traps and k and k % 10 == 0:
            out_rows.append([])  # the typist's gap between piles of forms
        out_rows.append(row)
    if "totals_row" in traps:
        last = data_first + len(out_rows) - 1
        totals: list[Cell] = ["Tổng cộng", None, *([None] * len(background))]
        for j, item in enumerate(numbered):
            col = first + j
            letter = get_column_letter(col + 1)
            if "formula_totals" in traps:
                fn = "AVERAGE" if item.kind == "percent" else "COUNTA"
                formula = _Formula(f"={fn}({letter}{data_first}:{letter}{last})")
                totals.append(None if item.kind == "text" else formula)
            elif item.kind == "percent":
                vals = [v for r in rows if isinstance(v := r[col], int)]
                totals.append(round(sum(vals) / len(vals), 1) if vals else None)
            elif item.kind == "text":
                totals.append(None)
            else:
                totals.append(sum(1 for r in rows if r[col] not in (None, "")))
        out_rows.append(totals)
    return _Sheet("Tổng hợp phiếu", header, out_rows, title)


def _review_sheet(
    q: Questionnaire, school_name: str, level: str, low: bool, rng: random.Random
) -> _Sheet:
    """DVGD_8TC: the review board's M2 form, one row per service and a level per criterion."""
    pool = [s for s in _LEVEL_SERVICES[level] if s not in _COMMON_SERVICES]
    services = list(_COMMON_SERVICES) + rng.sample(pool, k=min(len(pool), rng.randint(2, 4)))
    criteria = [i for i in q.items if i.kind == "level"]
    header = ["STT"] + [i.text for i in q.items]
    rows: list[list[Cell]] = []
    for k, service in enumerate(services):
        failing = low and k == len(services) - 1
        weights = (0, 10, 40, 35, 15) if failing else (50, 35, 12, 3, 0)
        points = rng.choices((10, 7, 5, 3, 0), weights=weights, k=len(criteria))
        if failing:
            points[0] = 0  # at least one criterion "Kém"
        levels = dict(zip((i.code for i in criteria), points, strict=True))
        row: list[Cell] = [k + 1]
        for item in q.items:
            if item.code == q.service_item:
                row.append(service)
            elif item.kind == "level":
                row.append(LEVEL_LABELS[levels[item.code]])
            elif "NHOM" in item.code:
                row.append(_SERVICE_GROUPS.get(service, ""))
            else:
                row.append("Cần rà soát lại hợp đồng với đơn vị cung cấp." if failing else None)
        rows.append(row)
    heading = "BẢNG ĐÁNH GIÁ CHẤT LƯỢNG DỊCH VỤ GIÁO DỤC (Mẫu M2)"
    return _Sheet("M2", header, rows, _title_block(school_name, heading, len(header)))


# ---------------------------------------------------------------------------------------------
# Writing


def _nfd(value: Cell) -> Cell:
    return unicodedata.normalize("NFD", value) if isinstance(value, str) else value


def _to_nfd(sheet: _Sheet) -> _Sheet:
    return _Sheet(
        unicodedata.normalize("NFD", sheet.name),
        [unicodedata.normalize("NFD", h) for h in sheet.header],
        [[_nfd(v) for v in row] for row in sheet.rows],
        [[(a, b, unicodedata.normalize("NFD", t)) for a, b, t in r] for r in sheet.title],
        sheet.formats,
    )


def _write_xlsx(path: Path, sheet: _Sheet) -> None:
    wb = Workbook()
    ws = wb.active
    assert ws is not None  # noqa: S101 - a new Workbook always has one sheet
    ws.title = sheet.name
    r = 0
    for r, segments in enumerate(sheet.title, start=1):
        for first, last, text in segments:
            write_cell(ws, r, first, text, font=Font(bold=True))
            ws.cell(r, first).alignment = Alignment(horizontal="center")
            if last > first:
                ws.merge_cells(start_row=r, start_column=first, end_row=r, end_column=last)
    header_row = r + 1
    for c, text in enumerate(sheet.header, start=1):
        write_cell(ws, header_row, c, text, font=Font(bold=True) if sheet.title else None)
    for k, row in enumerate(sheet.rows, start=header_row + 1):
        for c, value in enumerate(row, start=1):
            if value is None:
                continue
            if isinstance(value, _Formula):
                ws.cell(k, c, str(value))  # openpyxl stores it with no cached value
                continue
            write_cell(ws, k, c, value, number_format=sheet.formats.get(c - 1))
    save_workbook(wb, path)


def _write_csv(path: Path, sheet: _Sheet, bom: bool) -> None:
    with path.open("w", encoding="utf-8-sig" if bom else "utf-8", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(sheet.header)
        for row in sheet.rows:
            writer.writerow(["" if v is None else v for v in row])


def _set_mtime(path: Path, when: dt.datetime) -> None:
    """Set the file's modified time, given in the campaign's local time."""
    ts = when.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE)).timestamp()
    os.utime(path, (ts, ts))


@dataclass(frozen=True)
class _SchoolRow:
    code: str
    name: str
    level: str
    unit_code: str
    unit_name: str
    enrollment: int


def _names(plan: _Plan, rng: random.Random) -> tuple[dict[str, str], dict[int, str]]:
    """School names (by code) and unit names (by index), Vietnamese, unique."""
    units = list(_COMMUNES)
    rng.shuffle(units)
    n_units = plan.schools[-1].unit_index + 1
    unit_names: dict[int, str] = {}
    for u in range(n_units - 1):
        base = units[u % len(units)]
        unit_names[u] = base if u < len(units) else f"{base} {u // len(units) + 1}"
    unit_names[n_units - 1] = SO_UNIT_NAME
    pools = {lvl: list(names) for lvl, names in _SCHOOL_NAMES.items()}
    for names in pools.values():
        rng.shuffle(names)
    used: dict[str, int] = {}
    school_names: dict[str, str] = {}
    for s in plan.schools:
        pool = pools[s.level]
        base = f"{_SCHOOL_PREFIX[s.level]} {pool[s.level_index % len(pool)]}"
        used[base] = used.get(base, 0) + 1
        school_names[s.code] = base if used[base] == 1 else f"{base} số {used[base]}"
    return school_names, unit_names


def _config_text() -> str:
    return f"""\
# Demo province written by `khaosat demo` (flows/cli/demo.py): synthetic schools and answers.
campaign:
  id: {CAMPAIGN_ID}
  name: "{CAMPAIGN_NAME}"
  school_year: "{SCHOOL_YEAR}"
  opens: {OPENS.isoformat()}
  closes: {CLOSES.isoformat()}
  deadline: {DEADLINE.isoformat()}
  province_code: "{PROVINCE_CODE}"
registry:
  schools: schools.csv
  sources: sources.csv
output: output
"""


def generate_province(
    folder: Path,
    seed: int = 2024,
    *,
    n_units: int = 4,
    schools_per_unit: int = 5,
    respondents: tuple[int, int] = (35, 70),
    questionnaires: Mapping[str, Questionnaire] | None = None,
) -> Path:
    """Write a synthetic province into ``folder`` and return the path of its khaosat.yaml.

    ``n_units`` counts the reporting units including the Sở (the last one, holding THPT and
    GDTX); each has ``schools_per_unit`` schools, and each satisfaction or PAPI source gets a
    number of respondents drawn from ``respondents`` (inclusive; at least 8, so the traps placed
    in the first rows always have rows to sit in). The same seed and arguments give
    byte-identical files (workbooks included) and modified times.

    Traps are placed as :func:`trap_locations` says; a province too small to hold them all (the
    default 4 units of 5 schools is the smallest regular shape) raises ValueError.
    ``questionnaires`` defaults to ``schemas.load_questionnaires()``.
    """
    qs = load_questionnaires() if questionnaires is None else questionnaires
    plan = _plan(qs, n_units, schools_per_unit)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducibility is the point
    school_names, unit_names = _names(plan, rng)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submissions").mkdir(exist_ok=True)

    rows = [
        _SchoolRow(
            s.code,
            school_names[s.code],
            s.level,
            s.unit_code,
            unit_names[s.unit_index],
            rng.randint(*_ENROLLMENT[s.level]),
        )
        for s in plan.schools
    ]
    with (folder / "schools.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SCHOOL_COLUMNS)
        for r in rows:
            w.writerow([r.code, r.name, r.level, r.unit_code, r.unit_name, r.enrollment])
    with (folder / "sources.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SOURCE_COLUMNS)
        for src in plan.sources:
            w.writerow([src.school.code, src.questionnaire, src.kind, src.location])

    for src in plan.sources:
        _write_source(
            folder, src, qs[src.questionnaire], school_names[src.school.code], respondents, rng
        )

    config = folder / "khaosat.yaml"
    config.write_text(_config_text(), encoding="utf-8")
    return config


def _write_source(
    folder: Path,
    src: _Source,
    q: Questionnaire,
    school_name: str,
    respondents: tuple[int, int],
    rng: random.Random,
) -> None:
    path = folder / src.location
    spec = src.spec
    traps = spec.traps
    on_time = dt.datetime.combine(CLOSES, dt.time(16, 30)) + dt.timedelta(
        minutes=rng.randrange(600)
    )
    if spec.layout == "absent":
        path.unlink(missing_ok=True)  # a previous generation must not leave it behind
        return
    if spec.layout == "corrupt":
        path.write_bytes(rng.randbytes(rng.randint(2048, 4096)))
    elif spec.layout == "empty":
        path.write_bytes(b"")
    elif spec.layout == "review":
        low = "service_low" in traps
        _write_xlsx(path, _review_sheet(q, school_name, src.school.level, low, rng))
    else:
        # Traps are placed in the first rows; a handful of respondents always holds them.
        n = max(8, rng.randint(*respondents))
        if q.kind == "papi":
            codes = [i.code for i in q.items if i.kind == "yesno"]
            low_indicator = None
            if "papi_low" in traps:
                low_indicator = "HOC_THEM" if "HOC_THEM" in codes else codes[len(codes) // 2]
            responses = _papi_responses(q, n, low_indicator, rng)
        else:
            responses = _satisfaction_responses(q, src.school.level, n, src.low, rng)
        _add_traps(responses, traps)
        if spec.layout == "paper":
            sheet = _paper_sheet(q, school_name, responses, traps, rng)
        else:
            sheet = _forms_sheet(q, responses, traps, csv_file=spec.ext == "csv")
        if "duplicate" in traps:
            k = len(sheet.rows) // 2
            sheet.rows.insert(k + 1, list(sheet.rows[k]))
        if "nfd" in traps:
            sheet = _to_nfd(sheet)
        if spec.ext == "csv":
            _write_csv(path, sheet, bom="csv_bom" in traps)
        else:
            _write_xlsx(path, sheet)
        last = max(r.submitted_at for r in responses)
        on_time = min(last + dt.timedelta(hours=2), dt.datetime.combine(DEADLINE, dt.time(17)))
    if "late" in traps:
        on_time = dt.datetime.combine(DEADLINE + dt.timedelta(days=2), dt.time(9, 30))
    _set_mtime(path, on_time)


def _test_value(code: str, value: Cell) -> Cell:
    if code == "MONG_DOI":
        return 100
    if isinstance(value, int) and not isinstance(value, bool):
        return 5
    return value


def _add_traps(responses: list[_Response], traps: Sequence[str]) -> None:
    """Response-level traps that do not depend on the file layout, placed by position."""
    if "before_opens" in traps:
        # The officer tried the form out before the campaign: everything "Rất hài lòng".
        responses.insert(
            0,
            _Response(
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
