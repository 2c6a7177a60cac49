"""The questionnaire YAML files: they load, and they say what DOMAIN.md says."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path
from typing import Any

import pytest
import yaml

from schemas import SCHEMAS_DIR, QuestionnaireError, load_questionnaire, load_questionnaires
from schemas.questionnaire import DIMENSIONS

ALL_CODES = {"CMHS_MN", "CMHS_TH", "CMHS_THCS", "CMHS_THPT", "HS_THPT", "PAPI_TH", "DVGD_8TC"}
SATISFACTION = ["CMHS_MN", "CMHS_TH", "CMHS_THCS", "CMHS_THPT", "HS_THPT"]

#: DOMAIN.md, "The five satisfaction dimensions" (MN names in the second column).
DIMENSION_NAMES = {
    "TIEP_CAN": ("Tiếp cận dịch vụ giáo dục", "Tiếp cận dịch vụ giáo dục"),
    "CSVC": ("Cơ sở vật chất, trang thiết bị dạy học", "Cơ sở vật chất, trang thiết bị dạy học"),
    "MOI_TRUONG": ("Môi trường giáo dục", "Môi trường chăm sóc và giáo dục trẻ"),
    "HOAT_DONG": ("Hoạt động giáo dục", "Hoạt động chăm sóc và giáo dục trẻ"),
    "PHAT_TRIEN": ("Sự phát triển và tiến bộ của người học", "Kết quả chăm sóc và giáo dục trẻ"),
}

#: DOMAIN.md, "Working item wording for the CMHS forms": code -> dimension.
CMHS_ITEMS = {
    **{f"TC{i}": "TIEP_CAN" for i in range(1, 6)},
    **{f"CS{i}": "CSVC" for i in range(1, 6)},
    **{f"MT{i}": "MOI_TRUONG" for i in range(1, 6)},
    **{f"HD{i}": "HOAT_DONG" for i in range(1, 5)},
    **{f"PT{i}": "PHAT_TRIEN" for i in range(1, 4)},
    "CHUNG": "CHUNG",
}
PREFIX_DIMENSION = {
    "TC": "TIEP_CAN",
    "CS": "CSVC",
    "MT": "MOI_TRUONG",
    "HD": "HOAT_DONG",
    "PT": "PHAT_TRIEN",
}

PAPI_CODES = [
    "KIEN_CO",
    "VE_SINH",
    "NUOC_SACH",
    "SI_SO",
    "CA_BA",
    "HOC_THEM",
    "SU_PHAM",
    "PHAN_HOI",
    "THU_CHI",
]

#: DOMAIN.md, "The eight review criteria".
CRITERIA = [
    "Chất lượng sản phẩm của dịch vụ",
    "Giá cả",
    "Tính kịp thời, đúng hạn",
    "Chế độ chăm sóc khách hàng",
    "Được phê duyệt của cơ quan có thẩm quyền",
    "Thực hiện văn bản quy định",
    "Hoạt động khuyến học, nhân đạo, từ thiện, phối hợp với ngành",
    "Chế độ thông tin, báo cáo",
]


@pytest.fixture(scope="module")
def qs():
    return load_questionnaires()


def _norm(text: str) -> str:
    return re.sub(r"\s+", " ", unicodedata.normalize("NFC", text)).strip().casefold()


# --- every file ---------------------------------------------------------------------------


def test_all_seven_questionnaires_are_there(qs):
    assert set(qs) == ALL_CODES


@pytest.mark.parametrize("path", sorted(SCHEMAS_DIR.glob("*.yaml")), ids=lambda p: p.stem)
def test_every_yaml_loads(path):
    q = load_questionnaire(path)
    assert q.code == path.stem
    assert q.scored_items, "a questionnaire without scored items measures nothing"


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_header_texts_are_unambiguous(qs, code):
    """Headers are matched by normalised text, so no text or alias may name two items."""
    owner: dict[str, str] = {}
    for item in qs[code].items:
        for text in (item.text, *item.aliases):
            key = _norm(text)
            assert owner.setdefault(key, item.code) == item.code, (
                f"{code}: {text!r} names both {owner[key]} and {item.code}"
            )


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_every_text_and_alias_finds_its_item_in_the_header_matcher(qs, code):
    """What the aliases are for: a header written that way maps to that item, also as a
    Google Forms grid row ("Title [Row]")."""
    parse = pytest.importorskip("flows.parse.header")
    q = qs[code]
    for item in q.items:
        headers = [item.text, *item.aliases]
        if item.grid:
            headers += [f"{item.grid} [{text}]" for text in (item.text, *item.aliases)]
        for header in headers:
            found = parse.match_headers([header], q).items.get(0)
            assert found == item.code, f"{code}: {header!r} -> {found}, not {item.code}"


@pytest.mark.parametrize("code", sorted(ALL_CODES))
def test_texts_are_nfc(code):
    """Source files in NFD would never match NFC-normalised headers."""
    raw = (SCHEMAS_DIR / f"{code}.yaml").read_text(encoding="utf-8")
    assert unicodedata.normalize("NFC", raw) == raw


# --- satisfaction forms -------------------------------------------------------------------


@pytest.mark.parametrize("code", SATISFACTION)
def test_satisfaction_dimensions_and_names(qs, code):
    q = qs[code]
    assert q.kind == "satisfaction"
    assert list(q.dimensions) == [*DIMENSIONS, "CHUNG"]
    column = 1 if code == "CMHS_MN" else 0
    for dim, names in DIMENSION_NAMES.items():
        assert q.dimensions[dim] == names[column]
    # every dimension is measured, and grids are titled by their dimension's name
    for dim in DIMENSIONS:
        items = [i for i in q.items if i.dimension == dim]
        assert len(items) >= 3, f"{code}: {dim} has {len(items)} items"
        assert all(i.kind == "likert" and i.grid == q.dimensions[dim] for i in items)


@pytest.mark.parametrize("code", SATISFACTION)
def test_satisfaction_common_items(qs, code):
    q = qs[code]
    assert q.item("CHUNG").kind == "likert" and q.item("CHUNG").dimension == "CHUNG"
    assert q.item("MONG_DOI").kind == "percent" and q.item("MONG_DOI").dimension is None
    assert q.item("Y_KIEN").kind == "text"
    for code_ in ("LOP", "GIOI_TINH", "KHU_VUC"):
        assert q.item(code_).kind == "text"
    assert q.required is True


@pytest.mark.parametrize("code", ["CMHS_TH", "CMHS_THCS", "CMHS_THPT", "HS_THPT"])
def test_cmhs_item_codes_and_dimensions_as_domain(qs, code):
    q = qs[code]
    scored = {i.code: i.dimension for i in q.scored_items if i.kind == "likert"}
    assert scored == CMHS_ITEMS


@pytest.mark.parametrize("code", ["CMHS_THCS", "CMHS_THPT"])
def test_thcs_thpt_share_cmhs_th_items(qs, code):
    def shape(q):
        return [(i.code, i.kind, i.dimension, i.grid, i.text) for i in q.items]

    assert shape(qs[code]) == shape(qs["CMHS_TH"])
    # aliases may only add to CMHS_TH's, never drop one a school relies on
    for item in qs["CMHS_TH"].items:
        assert set(item.aliases) <= set(qs[code].item(item.code).aliases)


def test_levels(qs):
    assert qs["CMHS_MN"].levels == ("MN",)
    assert qs["CMHS_TH"].levels == ("TH",)
    assert qs["CMHS_THCS"].levels == ("THCS",)
    # GDTX centres may use the THPT forms (DOMAIN.md)
    assert set(qs["CMHS_THPT"].levels) == {"THPT", "GDTX"}
    assert set(qs["HS_THPT"].levels) == {"THPT", "GDTX"}


def test_hs_thpt_speaks_to_the_student(qs):
    q = qs["HS_THPT"]
    texts = [i.text for i in q.items]
    assert not [t for t in texts if "của con" in t or "Ông/Bà" in t]
    for code in ("MT4", "PT1", "PT2", "PT3", "CHUNG", "MONG_DOI"):
        assert "của em" in q.item(code).text, code
    # wording shared with the parents' form stays identical where it has no pronoun
    th = qs["CMHS_TH"]
    for item in th.scored_items:
        if "của con" not in item.text and "Ông/Bà" not in item.text:
            assert q.item(item.code).text == item.text
    # a student form copied from the parents' one still matches
    assert "Mức độ hài lòng nói chung của Ông/Bà đối với nhà trường" in q.item("CHUNG").aliases


def test_cmhs_mn_is_about_child_care(qs):
    q = qs["CMHS_MN"]
    for item in q.scored_items:
        if item.kind == "likert" and item.code != "CHUNG":
            assert PREFIX_DIMENSION[item.code[:2]] == item.dimension, item.code
            assert re.fullmatch(r"[A-Z]{2}\d", item.code)
    text = " ".join(_norm(i.text) for i in q.items)
    for topic in ("bán trú", "bữa ăn", "an toàn", "trẻ"):
        assert topic in text, topic
    # its own items, not the school-age ones
    assert q.item("CS2").text != qs["CMHS_TH"].item("CS2").text


# --- PAPI and the service review ----------------------------------------------------------


def test_papi_nine_yes_no_indicators(qs):
    q = qs["PAPI_TH"]
    assert q.kind == "papi"
    assert q.levels == ("TH",) and q.required is False
    assert [i.code for i in q.scored_items] == PAPI_CODES
    assert all(i.kind == "yesno" and i.dimension is None for i in q.scored_items)
    assert q.item("LOP").kind == "text" and q.item("Y_KIEN").kind == "text"
    assert q.item("CA_BA").text == "Không có lớp học ca ba"


def test_service_review_eight_criteria(qs):
    q = qs["DVGD_8TC"]
    assert q.kind == "service_review"
    assert q.service_item == "DICH_VU"
    assert set(q.levels) == {"MN", "TH", "THCS", "THPT", "GDTX"} and q.required is False
    assert q.item("DICH_VU").kind == "text" and q.item("DICH_VU").text == "Tên dịch vụ"
    assert {"Dịch vụ", "Tên dịch vụ giáo dục"} <= set(q.item("DICH_VU").aliases)
    assert q.item("NHOM_DICH_VU").text == "Nhóm dịch vụ"
    criteria = [i for i in q.scored_items]
    assert [i.code for i in criteria] == [f"C{n}" for n in range(1, 9)]
    assert [i.text for i in criteria] == CRITERIA
    assert all(i.kind == "level" and i.dimension is None for i in criteria)
    assert q.item("Y_KIEN").kind == "text"


# --- broken files -------------------------------------------------------------------------


def _write(tmp_path: Path, data: dict[str, Any], name: str = "CMHS_TH") -> Path:
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _cmhs_th() -> dict[str, Any]:
    return yaml.safe_load((SCHEMAS_DIR / "CMHS_TH.yaml").read_text(encoding="utf-8"))


def test_wrong_kind_names_file_and_field(tmp_path):
    data = _cmhs_th()
    data["items"][3]["kind"] = "likret"
    path = _write(tmp_path, data)
    with pytest.raises(QuestionnaireError) as err:
        load_questionnaire(path)
    assert str(path) in str(err.value)
    assert "items.3.kind" in str(err.value)


def test_missing_field_names_file_and_field(tmp_path):
    data = _cmhs_th()
    del data["items"][5]["text"]
    path = _write(tmp_path, data)
    with pytest.raises(QuestionnaireError, match=r"items\.5\.text") as err:
        load_questionnaire(path)
    assert str(path) in str(err.value)


def test_invalid_yaml_names_file(tmp_path):
    path = tmp_path / "CMHS_TH.yaml"
    path.write_text("code: CMHS_TH\nitems: [\n", encoding="utf-8")
    with pytest.raises(QuestionnaireError, match="not valid YAML") as err:
        load_questionnaire(path)
    assert str(path) in str(err.value)


def test_code_must_match_file_name(tmp_path):
    path = _write(tmp_path, _cmhs_th(), name="CMHS_XX")
    with pytest.raises(QuestionnaireError, match="field code"):
        load_questionnaire(path)


def test_unknown_dimension_of_an_item_is_rejected(tmp_path):
    data = _cmhs_th()
    tc1 = next(i for i in data["items"] if i["code"] == "TC1")
    tc1["dimension"] = "TIEPCAN"
    path = _write(tmp_path, data)
    with pytest.raises(QuestionnaireError) as err:
        load_questionnaire(path)
    message = str(err.value)
    assert str(path) in message and "TC1" in message and "TIEPCAN" in message


def test_dimension_codes_outside_domain_are_rejected(tmp_path):
    data = _cmhs_th()
    data["dimensions"] = {
        "TIEPCAN" if k == "TIEP_CAN" else k: v for k, v in data["dimensions"].items()
    }
    for item in data["items"]:
        if item.get("dimension") == "TIEP_CAN":
            item["dimension"] = "TIEPCAN"
    with pytest.raises(QuestionnaireError, match="TIEPCAN"):
        load_questionnaire(_write(tmp_path, data))
