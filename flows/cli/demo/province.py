"""The demo province: its campaign, schools and units, and the plan of which school has which
sources and which traps (fixed by position, not by the seed; see ``trap_locations``)."""

from __future__ import annotations

import datetime as dt
import itertools
import random
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from schemas.questionnaire import Questionnaire, load_questionnaires

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
    "misnamed": "a PAPI_TH file in the folder row's folder whose name mistypes the school code "
    "(TH02 for TH002): it names no school, so it is not placed",
    "no_source": "a school in schools.csv with no row in sources.csv",
    "late": "a file whose modified time is after the deadline",
    "low_satisfaction": "a school whose answers are mostly below 'Hài lòng' (red alerts)",
    "papi_low": "a PAPI indicator answered 'Có' by about 60 % (below the 80 % alert)",
    "service_low": "a service scored mostly Yếu/Trung bình with one 'Kém' criterion",
}

_LEVELS_CYCLE = ("MN", "TH", "THCS", "MN", "TH")
ENROLLMENT = {
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


def comma_list(text: str) -> tuple[str, ...]:
    """Names listed as one comma-separated string (keeps long lists short)."""
    return tuple(part.strip() for part in text.split(","))


_SCHOOL_NAMES = {
    "MN": comma_list(
        "Hoa Sen, Hoa Mai, Sơn Ca, Họa Mi, Ánh Sao, Tuổi Thơ, Hoa Hồng, Vành Khuyên, Bông Sen, "
        "Hoa Ban, Thỏ Ngọc, Búp Măng, Hướng Dương, Sao Mai"
    ),
    "TH": comma_list(
        "Kim Đồng, Lê Văn Tám, Trưng Vương, Quang Trung, Ngô Quyền, Võ Thị Sáu, Nguyễn Bá Ngọc, "
        "Đoàn Thị Điểm, Điện Biên, Thăng Long, Đống Đa, Khương Đình"
    ),
    "THCS": comma_list(
        "Nguyễn Du, Lý Thường Kiệt, Trần Phú, Giảng Võ, Nguyễn Trường Tộ, Ngô Sĩ Liên, Tô Hoàng, "
        "Láng Thượng, Phan Chu Trinh, Lê Lợi, Hoàng Hoa Thám, Thành Công"
    ),
    "THPT": comma_list(
        "Chu Văn An, Phan Đình Phùng, Việt Đức, Kim Liên, Yên Hòa, Trần Nhân Tông, Nguyễn Trãi, "
        "Lê Quý Đôn, Thăng Long, Cầu Giấy, Quang Trung, Đoàn Kết"
    ),
    "GDTX": comma_list("Ba Đình, Đống Đa, Cầu Giấy, Hoàng Mai, Long Biên, Sóc Sơn, Đông Anh"),
}
_COMMUNES = comma_list(
    "Phường Ba Đình, Phường Hoàn Kiếm, Phường Cầu Giấy, Phường Đống Đa, Phường Hai Bà Trưng, "
    "Phường Tây Hồ, Phường Long Biên, Phường Hoàng Mai, Phường Thanh Xuân, Phường Hà Đông, "
    "Xã Sóc Sơn, Xã Đông Anh, Xã Gia Lâm, Xã Thanh Trì, Xã Mê Linh, Xã Ba Vì, Xã Phúc Thọ, "
    "Xã Thạch Thất, Xã Quốc Oai, Xã Chương Mỹ, Xã Thường Tín, Xã Phú Xuyên, Xã Ứng Hòa, Xã Mỹ Đức"
)


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
class PlannedSource:
    """One source of the plan: a school's questionnaire, written as ``spec`` says."""

    school: _School
    questionnaire: str
    spec: _Spec
    low: bool = False

    @property
    def location(self) -> str:
        """Its file, as sources.csv names it."""
        return f"submissions/{self.school.code}_{self.questionnaire}.{self.spec.ext}"

    @property
    def kind(self) -> str:
        """Its kind in sources.csv."""
        return "csv" if self.spec.ext == "csv" else "excel"


#: The questionnaire the demo takes from a folder row of sources.csv rather than a row per file:
#: every school's file in submissions/ named ``<school>_PAPI_TH.<ext>``.
FOLDER_QUESTIONNAIRE = "PAPI_TH"
FOLDER_ROW = ("*", FOLDER_QUESTIONNAIRE, "folder", "submissions#{school_code}_PAPI_TH.*")


def misnamed_location(source: PlannedSource) -> str:
    """Where the demo's misnamed copy of ``source``'s file is: its school code mistyped, one
    zero dropped (TH002 → TH02), which no school of the demo has."""
    code = source.school.code
    mistyped = code.replace("0", "", 1)
    return source.location.replace(f"/{code}_", f"/{mistyped}_", 1)


@dataclass
class _Plan:
    schools: list[_School]
    sources: list[PlannedSource]
    #: school-level traps (no_source) -> school codes.
    school_traps: dict[str, list[str]] = field(default_factory=dict)


def plan_province(
    questionnaires: Mapping[str, Questionnaire], n_units: int, schools_per_unit: int
) -> _Plan:
    """Which schools the province has, and each one's sources and traps (seed-independent)."""
    if n_units < 2 or schools_per_unit < 1:
        raise ValueError("a demo province needs at least 2 units and 1 school per unit")
    schools, seen = _place_schools(n_units, schools_per_unit)
    missing = [f"{lvl} #{i + 1}" for lvl, i in _ROLES if seen.get(lvl, 0) <= i]
    if missing:
        raise ValueError(
            f"n_units={n_units}, schools_per_unit={schools_per_unit} is too small to place every "
            f"trap (needs {', '.join(missing)}); use at least 4 units of 5 schools"
        )
    sources: list[PlannedSource] = []
    plan = _Plan(schools, sources)
    turn = itertools.count()  # sources without a trap role take the default layouts in turn
    for school in schools:
        if school.role == _NO_SOURCE:
            plan.school_traps.setdefault("no_source", []).append(school.code)
            continue
        sources.extend(_school_sources(school, questionnaires, turn))
    return plan


def _place_schools(n_units: int, schools_per_unit: int) -> tuple[list[_School], dict[str, int]]:
    """The schools, unit by unit (the Sở last), and how many there are of each level."""
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
    return schools, seen


def _school_sources(
    s: _School, questionnaires: Mapping[str, Questionnaire], turn: Iterator[int]
) -> list[PlannedSource]:
    """One school's sources: its satisfaction forms, its PAPI and its service review."""
    sources: list[PlannedSource] = []
    role = _ROLES.get(s.role, {})
    satisfaction = [q for q in questionnaires.values() if q.kind == "satisfaction"]
    forms = [q.code for q in satisfaction if s.level in q.levels]
    for i, code in enumerate(forms):
        spec = role.get(code) or (role.get(None) if i == 0 else None)
        if spec is None:
            spec = _DEFAULT_SPECS[next(turn) % len(_DEFAULT_SPECS)]
        sources.append(PlannedSource(s, code, spec, low=s.role in _LOW))
    if s.level == "TH" and "PAPI_TH" in questionnaires:
        papi = _PAPI_ROLES.get(s.level_index)
        if papi is None and s.level_index >= 6 and s.level_index % 2 == 0:
            papi = _PAPI_ROLES[1]
        if papi is not None:
            sources.append(PlannedSource(s, "PAPI_TH", papi))
    reviews = s.position in _REVIEW_POSITIONS or s.role == _SERVICE_LOW
    if reviews and "DVGD_8TC" in questionnaires:
        traps = (*_REVIEW.traps, "service_low") if s.role == _SERVICE_LOW else _REVIEW.traps
        sources.append(PlannedSource(s, "DVGD_8TC", _Spec("review", "xlsx", traps)))
    return sources


def trap_locations(
    n_units: int = 4,
    schools_per_unit: int = 5,
    questionnaires: Mapping[str, Questionnaire] | None = None,
) -> dict[str, list[tuple[str, str]]]:
    """Where each trap of :data:`TRAPS` is: trap -> [(school_code, sources.csv location)].

    The location is "" for school-level traps (``no_source``). ``low_satisfaction`` lists the
    school's satisfaction sources. Independent of the seed.

    With the defaults (4 units of 5 schools; every file is
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
    TH02       submissions/TH02_PAPI_TH.csv: TH002's PAPI_TH file under a mistyped code; every
               PAPI_TH file is found by the folder row ``*,PAPI_TH,folder,submissions#…``
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
    qs = load_questionnaires() if questionnaires is None else questionnaires
    plan = plan_province(qs, n_units, schools_per_unit)
    out: dict[str, list[tuple[str, str]]] = {t: [] for t in TRAPS}
    for src in plan.sources:
        for trap in src.spec.traps:
            out[trap].append((src.school.code, src.location))
        if src.low:
            out["low_satisfaction"].append((src.school.code, src.location))
    for trap, codes in plan.school_traps.items():
        out[trap].extend((code, "") for code in codes)
    first = next(s for s in plan.sources if s.questionnaire == FOLDER_QUESTIONNAIRE)
    out["misnamed"].append((first.school.code, misnamed_location(first)))
    return out


@dataclass(frozen=True)
class SchoolRow:
    """One row of schools.csv."""

    code: str
    name: str
    level: str
    unit_code: str
    unit_name: str
    enrollment: int


def name_schools(plan: _Plan, rng: random.Random) -> tuple[dict[str, str], dict[int, str]]:
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


#: The campaign a year earlier (``khaosat demo`` loads it first, for year-on-year figures).
PREVIOUS_ID = "HN-2023"
PREVIOUS_NAME = CAMPAIGN_NAME.replace("2024-2025", "2023-2024")
PREVIOUS_YEAR = "2023-2024"
#: The folder of the previous campaign inside the demo's, and its warehouse from there.
PREVIOUS_FOLDER = "previous"


def a_year_before(day: dt.date) -> dt.date:
    """The same day a year earlier (the demo's days are never 29 February)."""
    return day.replace(year=day.year - 1)


def config_text(previous: bool = False) -> str:
    """The demo's khaosat.yaml (with ``previous``: naming the campaign a year earlier)."""
    before = f"  previous: {PREVIOUS_ID}\n" if previous else ""
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
{before}registry:
  schools: schools.csv
  sources: sources.csv
output: output
"""


def previous_config_text() -> str:
    """khaosat.yaml of the campaign a year earlier: the same province and warehouse."""
    return f"""\
# The demo's previous campaign, loaded by `khaosat demo` before the current one.
campaign:
  id: {PREVIOUS_ID}
  name: "{PREVIOUS_NAME}"
  school_year: "{PREVIOUS_YEAR}"
  opens: {a_year_before(OPENS).isoformat()}
  closes: {a_year_before(CLOSES).isoformat()}
  deadline: {a_year_before(DEADLINE).isoformat()}
  province_code: "{PROVINCE_CODE}"
registry:
  schools: schools.csv
  sources: sources.csv
warehouse: sqlite:///../khaosat.sqlite
output: output
"""
