"""The codebook, the matcher and the choice of quotes: pure functions, case tables."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.comments import CodebookError, load_codebook
from flows.comments.mart import QUOTE_CHARS, choose_quotes, trim
from flows.comments.matcher import compile_codebook, is_no_comment, themes
from flows.privacy import mask_personal

CODEBOOK = load_codebook()
MATCHER = compile_codebook(CODEBOOK)


@pytest.mark.parametrize(
    ("comment", "expected"),
    [
        ("Nhà vệ sinh bẩn quá", {"nha_ve_sinh"}),
        ("nha ve sinh ban qua", {"nha_ve_sinh"}),
        ("NHÀ VỆ SINH BẨN", {"nha_ve_sinh"}),
        # NFD input (a Mac keyboard) is the same text
        ("Nha\u0300 vê\u0323 sinh", {"nha_ve_sinh"}),
        ("Các khoản thu đầu năm nhiều quá", {"khoan_thu"}),
        ("cac khoan thu dau nam nhieu", {"khoan_thu"}),
        ("Con bị bạn bắt nạt", {"an_toan"}),
        ("con bi ban bat nat", {"an_toan"}),
        ("Cô ép học sinh đi học thêm", {"day_them"}),
        ("Sỉ số lớp quá đông", {"si_so"}),  # a common misspelling of sĩ số
        ("Bữa ăn bán trú ít thịt", {"ban_tru"}),
        ("vệ sinh an toàn thực phẩm ở bếp", {"ban_tru"}),  # the longest phrase wins
        ("Bàn ghế cũ, phòng học nóng", {"co_so_vat_chat"}),
        ("ban ghe cu", {"co_so_vat_chat"}),
        ("Cảm ơn cô đã tận tâm", {"khen_ngoi"}),
        ("Mong có thêm hoạt động trải nghiệm và học bơi", {"hoat_dong"}),
        ("Nhà vệ sinh bẩn, các khoản thu nhiều", {"nha_ve_sinh", "khoan_thu"}),
        ("Trường nên trồng thêm hoa", {"khac"}),
        # whole words only: "wc" is not inside "wcx", and an unaccented one-word phrase does
        # not hit an accented comment ("bàn" is not "bẩn")
        ("abc wcx", {"khac"}),
        ("Con thích bàn học mới", {"khac"}),
    ],
)
def test_a_comment_hits_the_themes_of_its_phrases(comment: str, expected: set[str]) -> None:
    assert themes(comment, MATCHER) == expected


@pytest.mark.parametrize(
    "answer",
    [
        "",
        "   ",
        ".",
        "-",
        "Không có ý kiến",
        "không có ý kiến.",
        "KHÔNG",
        "ko",
        "Ok",
        "không có",
        "Đồng ý",
        "ko co y kien",
        "Không có ý kiến gì thêm!",
        None,
        "0",
    ],
)
def test_no_comment_answers_are_not_comments(answer: str | None) -> None:
    assert is_no_comment(answer, CODEBOOK)
    assert themes(answer, MATCHER) == frozenset()


def test_an_officer_extends_and_overrides_the_codebook_from_their_folder(tmp_path: Path) -> None:
    (tmp_path / "so.yaml").write_text(
        """\
version: so-3
no_comment: [không có gì để nói]
themes:
  - code: dong_phuc
    label: Đồng phục
    phrases: [đồng phục, áo trường]
  - code: nha_ve_sinh
    phrases: [chỗ đi vệ sinh]
  - code: khen_ngoi
    label: Lời cảm ơn
    replace: true
    phrases: [cảm ơn]
  - code: si_so
    drop: true
""",
        encoding="utf-8",
    )
    book = load_codebook(tmp_path)
    matcher = compile_codebook(book)
    assert book.version == "2026.1+so-3"
    assert book.fingerprint != CODEBOOK.fingerprint
    assert themes("ao truong dat qua", matcher) == {"dong_phuc"}
    assert themes("Chỗ đi vệ sinh hẹp", matcher) == {"nha_ve_sinh"}
    assert themes("nhà vệ sinh bẩn", matcher) == {"nha_ve_sinh"}  # the built-in phrases stay
    assert themes("Cô rất tận tâm", matcher) == {"khac"}  # replaced: only "cảm ơn" now
    assert book.label("khen_ngoi") == "Lời cảm ơn"
    assert themes("Sĩ số đông", matcher) == {"khac"}  # dropped
    assert is_no_comment("Không có gì để nói.", book)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("themes: [{code: x, label: X}]", "`version` is missing"),
        ("version: 1\nthemes: [{code: Nha VS, label: X}]", "must be lower-case"),
        ("version: 1\nthemes: [{code: khac, label: X}]", "must be lower-case"),
        ("version: 1\nthemes: [{code: moi, phrases: [a]}]", "needs a `label`"),
        ("version: 1\nthemes: [{code: moi, label: M, dimension: CSCV}]", "is not one of"),
        ("version: 1\nthemes: {code: moi}", "`themes` must be a list"),
        ("version: [1", "not valid YAML"),
    ],
)
def test_a_codebook_that_cannot_be_used_is_one_line_naming_the_file(
    tmp_path: Path, text: str, message: str
) -> None:
    (tmp_path / "mine.yaml").write_text(text, encoding="utf-8")
    builtin = tmp_path / "none"
    builtin.mkdir()
    with pytest.raises(CodebookError, match="mine.yaml") as caught:
        load_codebook(tmp_path, builtin=builtin)
    assert message in str(caught.value)
    assert "\n" not in str(caught.value).split(": not valid YAML")[0]


def test_quotes_are_varied_masked_and_cut_at_a_word() -> None:
    long = "Nhà vệ sinh " + "rất bẩn và thiếu nước " * 30
    candidates = [
        "Nhà vệ sinh bẩn quá, con không dám đi vệ sinh ở trường, mong nhà trường sửa.",
        "Nhà vệ sinh bẩn quá, con không dám đi vệ sinh ở trường, mong nhà trường sửa!",
        "Nhà vệ sinh bẩn quá con không dám đi vệ sinh ở trường mong nhà trường sửa",
        "WC thiếu nước, gọi cô Hoa 0912345678 hoặc hoa@truong.edu.vn",
        "bẩn",
        long,
    ]
    chosen = choose_quotes(candidates)
    assert len(chosen) == 3
    assert sum(q.startswith("Nhà vệ sinh bẩn quá") for q in chosen) == 1  # one of the three
    assert "WC thiếu nước, gọi cô [tên] [số điện thoại] hoặc [email]" in chosen
    cut = next(q for q in chosen if q.startswith("Nhà vệ sinh rất"))
    assert len(cut) <= QUOTE_CHARS + 1 and cut.endswith("…") and not cut.endswith(" …")
    assert long.startswith(cut[:-1])


def test_trim_keeps_short_text_and_cuts_long_text_at_a_space() -> None:
    assert trim("ngắn") == "ngắn"
    assert trim("một hai ba bốn", limit=9) == "một hai…"


@pytest.mark.parametrize(
    ("text", "masked"),
    [
        ("Cô Lan dạy rất tốt", "Cô [tên] dạy rất tốt"),
        ("thầy Nguyễn Văn Hùng hay quát", "thầy [tên] hay quát"),
        ("cô giáo chủ nhiệm Hoa tận tâm", "cô giáo chủ nhiệm [tên] tận tâm"),
        ("cháu Minh Anh học lớp 3A", "cháu [tên] học lớp 3A"),
        ("Phụ huynh Trần Thị Mai, 0912 345 678", "Phụ huynh [tên], [số điện thoại]"),
        # schools and streets named after people stay as they are
        ("Trường THCS Lê Quý Đôn", "Trường THCS Lê Quý Đôn"),
        ("nhà ở đường Trần Phú", "nhà ở đường Trần Phú"),
        ("Con thấy vui, của Ông/Bà", "Con thấy vui, của Ông/Bà"),
    ],
)
def test_mask_personal_masks_names_as_comments_write_them(text: str, masked: str) -> None:
    assert mask_personal(text) == masked


def test_tallies_of_units_apart_add_up_to_the_tally_of_all() -> None:
    """The pipeline tallies groups of units in different processes (``split_units``): the
    counts and the quotes, the province's included, are those of one pass over every comment."""
    from flows.comments import split_units
    from flows.comments.mart import POOL, summarise, tally
    from warehouse.comments import Comment, Respondents

    matcher = compile_codebook(load_codebook())
    said = [
        "Nhà vệ sinh bẩn quá, cần sửa gấp",
        "Học phí và các khoản thu quá nhiều",
        "Thầy cô rất tận tâm, con tiến bộ nhiều",
        "Bếp ăn cần đảm bảo vệ sinh an toàn thực phẩm",
        "Không có ý kiến",
    ]
    units = {f"S{i}": f"U{i % 4}" for i in range(12)}
    respondents = [
        Respondents(school, unit, "CMHS_TH", 8 + i)
        for i, (school, unit) in enumerate(units.items())
    ]
    comments = [
        Comment(school, unit, "CMHS_TH", f"{said[(i + k) % len(said)]} ({'!' * (i * k % 50)})")
        for i, (school, unit) in enumerate(units.items())
        for k in range(2 * POOL)
    ]
    whole = summarise(
        "C", "P", respondents, [tally(respondents, comments, matcher)], matcher.codebook
    )
    groups = split_units(respondents, 3)
    assert sorted(u for g in groups for u in g) == ["U0", "U1", "U2", "U3"]
    assert sorted(split_units(respondents, 9)) == [["U0"], ["U1"], ["U2"], ["U3"]]  # none empty
    apart = summarise(
        "C",
        "P",
        respondents,
        [tally(respondents, [c for c in comments if c.unit_code in g], matcher) for g in groups],
        matcher.codebook,
    )
    assert apart == whole
    assert {q.scope for q in whole[1]} == {"unit", "province"}
    assert {c.scope for c in whole[0]} == {"school", "unit", "province"}
