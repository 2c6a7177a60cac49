"""The draft báo cáo laid out with python-docx: an A4 administrative document (NĐ 30/2020:
margins 20 mm top and bottom, 30 mm left, 15 mm right; Times New Roman 13 pt), the header
block of a Sở's report, the title marked DỰ THẢO, then the blocks in order, tables and charts
numbered as they come ("Bảng 1.", "Biểu đồ 1.").

LibreOffice renders Times New Roman with Liberation Serif, which has its metrics.
"""

from __future__ import annotations

import copy
import io
import os
import uuid
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from pathlib import Path

from docx import Document
from docx.document import Document as DocxDocument
from docx.enum.section import WD_ORIENT, WD_SECTION
from docx.enum.table import WD_TABLE_ALIGNMENT
from docx.enum.text import WD_ALIGN_PARAGRAPH
from docx.oxml import OxmlElement
from docx.oxml.ns import qn
from docx.oxml.xmlchemy import BaseOxmlElement
from docx.shared import Mm, Pt, RGBColor
from docx.table import Table as DocxTable
from docx.text.paragraph import Paragraph
from docx.text.run import Run

from flows.publish.report.blocks import (
    Block,
    Chart,
    Heading,
    PageBreak,
    Para,
    Signature,
    Table,
)

FONT = "Times New Roman"
BODY_PT = 13
TABLE_PT = 11
APPENDIX_PT = 10
PAGE = (Mm(210), Mm(297))
MARGINS = {"top": Mm(20), "bottom": Mm(20), "left": Mm(30), "right": Mm(15)}
CAPTION_TABLE = "Bảng"
CAPTION_CHART = "Biểu đồ"
DRAFT = "DỰ THẢO"


@dataclass(frozen=True)
class Front:
    """What the first page says above the body: who issues the report and its title."""

    issuer_parent: str  # "UBND TỈNH …"
    issuer: str  # "SỞ GIÁO DỤC VÀ ĐÀO TẠO"
    title: str  # "BÁO CÁO"
    subject: list[str]  # the lines under it
    doc_title: str  # the file's title property


def build_document(front: Front, blocks: Sequence[Block]) -> DocxDocument:
    """The report as a python-docx document, in memory."""
    doc = Document()
    _styles(doc)
    _page(doc.sections[0], landscape=False)
    _front(doc, front)
    counters = {CAPTION_TABLE: 0, CAPTION_CHART: 0}
    text = _Text()
    landscape = False
    for block in blocks:
        if isinstance(block, PageBreak):
            landscape = block.landscape
            _page(doc.add_section(WD_SECTION.NEW_PAGE), landscape=landscape)
        elif isinstance(block, Heading):
            doc.add_heading(block.text, level=block.level)
        elif isinstance(block, Para):
            text.para(doc, block)
        elif isinstance(block, Table):
            counters[CAPTION_TABLE] += 1
            _table(doc, text, block, counters[CAPTION_TABLE], landscape=landscape)
        elif isinstance(block, Chart):
            counters[CAPTION_CHART] += 1
            _chart(doc, block, counters[CAPTION_CHART], landscape=landscape)
        else:
            _signature(doc, block)
    doc.core_properties.title = front.doc_title
    doc.core_properties.author = front.issuer
    return doc


def save_document(doc: DocxDocument, path: Path) -> Path:
    """Write ``doc`` to ``path`` whole: a reader never sees half a file."""
    path.parent.mkdir(parents=True, exist_ok=True)
    # Not mkstemp, whose file only its owner may read: the report is shared as the workbooks
    # beside it are, with the permissions the umask gives every new file.
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
    try:
        with open(tmp, "xb") as f:
            doc.save(f)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return path


def _set_font(style_font: object, size: float | None = None, bold: bool | None = None) -> None:
    font = style_font
    font.name = FONT  # type: ignore[attr-defined]
    if size is not None:
        font.size = Pt(size)  # type: ignore[attr-defined]
    if bold is not None:
        font.bold = bold  # type: ignore[attr-defined]
    font.color.rgb = RGBColor(0, 0, 0)  # type: ignore[attr-defined]
    # Word takes Vietnamese text's font from eastAsia and cs too, not only from ascii.
    rpr = font.element.get_or_add_rPr()  # type: ignore[attr-defined]
    fonts = rpr.get_or_add_rFonts()
    for attr in ("w:ascii", "w:hAnsi", "w:eastAsia", "w:cs"):
        fonts.set(qn(attr), FONT)
    # A theme font (the headings' Calibri Light) would win over the font named above.
    for attr in ("w:asciiTheme", "w:hAnsiTheme", "w:eastAsiaTheme", "w:cstheme"):
        fonts.attrib.pop(qn(attr), None)


def _styles(doc: DocxDocument) -> None:
    normal = doc.styles["Normal"]
    _set_font(normal.font, BODY_PT)
    normal.paragraph_format.space_after = Pt(4)
    normal.paragraph_format.line_spacing = 1.15
    for name, size in (
        ("Heading 1", 13),
        ("Heading 2", 13),
        ("List Bullet", BODY_PT),
        ("Title", 14),
    ):
        style = doc.styles[name]
        _set_font(style.font, size, bold=name.startswith("Heading"))
        if name.startswith("Heading"):
            style.paragraph_format.space_before = Pt(10)
            style.paragraph_format.space_after = Pt(4)
            style.paragraph_format.keep_with_next = True


def _page(section: object, *, landscape: bool) -> None:
    s = section
    width, height = PAGE
    s.orientation = WD_ORIENT.LANDSCAPE if landscape else WD_ORIENT.PORTRAIT  # type: ignore[attr-defined]
    s.page_width, s.page_height = (height, width) if landscape else (width, height)  # type: ignore[attr-defined]
    s.top_margin = MARGINS["top"]  # type: ignore[attr-defined]
    s.bottom_margin = MARGINS["bottom"]  # type: ignore[attr-defined]
    s.left_margin = MARGINS["left"]  # type: ignore[attr-defined]
    s.right_margin = MARGINS["right"]  # type: ignore[attr-defined]
    header = s.header.paragraphs[0]  # type: ignore[attr-defined]
    if not header.text:
        header.alignment = WD_ALIGN_PARAGRAPH.RIGHT
        run = header.add_run(DRAFT)
        run.italic = True
        run.font.size = Pt(10)
    footer = s.footer.paragraphs[0]  # type: ignore[attr-defined]
    if not footer.runs:
        footer.alignment = WD_ALIGN_PARAGRAPH.CENTER
        _page_number(footer)


def _text_width(landscape: bool) -> int:
    width = PAGE[1] if landscape else PAGE[0]
    return int(width - MARGINS["left"] - MARGINS["right"])


def _page_number(paragraph: Paragraph) -> None:
    run = paragraph.add_run()
    for kind, text in (("begin", None), (None, "PAGE"), ("end", None)):
        if kind is None:
            instr = OxmlElement("w:instrText")
            instr.set(qn("xml:space"), "preserve")
            instr.text = text
            run._r.append(instr)
        else:
            char = OxmlElement("w:fldChar")
            char.set(qn("w:fldCharType"), kind)
            run._r.append(char)
    run.font.size = Pt(11)


def _centred(
    cell_or_doc: object,
    text: str,
    *,
    bold: bool = False,
    italic: bool = False,
    size: float | None = None,
) -> Paragraph:
    paragraph: Paragraph = cell_or_doc.add_paragraph()  # type: ignore[attr-defined]
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.space_after = Pt(0)
    run = paragraph.add_run(text)
    run.bold, run.italic = bold, italic
    if size is not None:
        run.font.size = Pt(size)
    return paragraph


def _borderless(table: DocxTable) -> None:
    borders = OxmlElement("w:tblBorders")
    for edge in ("top", "left", "bottom", "right", "insideH", "insideV"):
        element = OxmlElement(f"w:{edge}")
        element.set(qn("w:val"), "nil")
        borders.append(element)
    table._tbl.tblPr.append(borders)


def _fixed_widths(table: DocxTable, widths: Sequence[int]) -> None:
    """Columns of these widths, whatever their text (LibreOffice honours the grid)."""
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
        for cell in column.cells:
            cell.width = width


def _front(doc: DocxDocument, front: Front) -> None:
    """The two-column header block, then DỰ THẢO and the title."""
    head = doc.add_table(rows=1, cols=2)
    _borderless(head)
    _fixed_widths(head, [Mm(68), Mm(97)])
    left, right = head.rows[0].cells
    left.paragraphs[0].text = ""
    _centred(left, front.issuer_parent, size=12)
    _centred(left, front.issuer, bold=True, size=12)
    _centred(left, "Số:        /BC-SGDĐT", size=12)
    _centred(right, "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", bold=True, size=12)
    _centred(right, "Độc lập - Tự do - Hạnh phúc", bold=True, size=13)
    _centred(right, "…………, ngày …… tháng …… năm ……", italic=True, size=13)
    draft = _centred(doc, DRAFT, bold=True, size=14)
    draft.paragraph_format.space_before = Pt(12)
    _box(draft)
    title = _centred(doc, front.title, bold=True, size=14)
    title.paragraph_format.space_before = Pt(12)
    for line in front.subject:
        _centred(doc, line, bold=True, size=14)
    doc.add_paragraph()


def _box(paragraph: Paragraph) -> None:
    """A border around the paragraph (DỰ THẢO stands out as it does on a printed draft)."""
    ppr = paragraph._p.get_or_add_pPr()
    borders = OxmlElement("w:pBdr")
    for edge in ("top", "left", "bottom", "right"):
        element = OxmlElement(f"w:{edge}")
        for key, value in (
            ("w:val", "single"),
            ("w:sz", "8"),
            ("w:space", "2"),
            ("w:color", "000000"),
        ):
            element.set(qn(key), value)
        borders.append(element)
    ppr.append(borders)
    paragraph.paragraph_format.left_indent = Mm(60)
    paragraph.paragraph_format.right_indent = Mm(60)


class _Text:
    """Adds the body's paragraphs and the tables' text: many thousands for a province.

    python-docx formats a paragraph or a run one property at a time, each finding its place
    among every property the schema allows, and assigning a style scans the document's styles
    for the default each time. Here the first paragraph (run) of each formatting is formatted
    through python-docx and later ones get a copy of its properties: the same XML.
    """

    def __init__(self) -> None:
        self._formats: dict[Hashable, BaseOxmlElement] = {}

    def para(self, doc: DocxDocument, block: Para) -> None:
        """A paragraph of body text, or a list item in the List Bullet style."""
        paragraph = doc.add_paragraph()
        kind = ("para", block.bullet, block.bold)
        self._format(kind, paragraph._p, lambda: _para_format(paragraph, block))
        self.run(paragraph, block.text, bold=block.bold, italic=block.italic)

    def cell(self, paragraph: Paragraph, *, centred: bool) -> None:
        """A table cell's (new, empty) paragraph: no space after, centred or not."""
        self._format(("cell", centred), paragraph._p, lambda: _cell_format(paragraph, centred))

    def run(
        self,
        paragraph: Paragraph,
        text: str,
        *,
        bold: bool | None = None,
        italic: bool | None = None,
        size: float | None = None,
    ) -> None:
        """``paragraph.add_run(text)`` with these properties (None leaves one unset)."""
        # python-docx turns a tab or a line break into its own element: let it.
        if any(ch in text for ch in "\t\r\n"):
            _run_format(paragraph.add_run(text), bold, italic, size)
            return
        r = paragraph._p.add_r()
        self._format(
            ("run", bold, italic, size),
            r,
            lambda: _run_format(Run(r, paragraph), bold, italic, size),
        )
        if text:
            r.add_t(text)

    def _format(self, kind: Hashable, element: BaseOxmlElement, apply: Callable[[], None]) -> None:
        """Give ``element`` (a new paragraph or run) the properties of ``kind``: ``apply``
        them the first time, a copy of those after."""
        properties = self._formats.get(kind)
        if properties is not None:
            element.insert(0, copy.deepcopy(properties))
            return
        apply()
        found = element[0] if len(element) and element[0].tag in _PROPERTIES else None
        if found is not None:
            self._formats[kind] = copy.deepcopy(found)


#: The elements a paragraph's and a run's properties are held in (always their first child).
_PROPERTIES = (qn("w:pPr"), qn("w:rPr"))


def _para_format(paragraph: Paragraph, block: Para) -> None:
    if block.bullet:
        paragraph.style = "List Bullet"
    else:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.JUSTIFY
        paragraph.paragraph_format.first_line_indent = Mm(10) if not block.bold else None


def _cell_format(paragraph: Paragraph, centred: bool) -> None:
    paragraph.paragraph_format.space_after = Pt(0)
    paragraph.paragraph_format.first_line_indent = None
    # Text columns (the first, or a long one) read from the left; figures are centred.
    if centred:
        paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER


def _run_format(run: Run, bold: bool | None, italic: bool | None, size: float | None) -> None:
    if bold is not None:
        run.bold = bold
    if italic is not None:
        run.italic = italic
    if size is not None:
        run.font.size = Pt(size)


def _caption(doc: DocxDocument, text: str, *, italic: bool) -> Paragraph:
    paragraph = _centred(doc, text, bold=True, italic=italic, size=12)
    paragraph.paragraph_format.space_before = Pt(6)
    paragraph.paragraph_format.space_after = Pt(4)
    return paragraph


def _table(doc: DocxDocument, text: _Text, block: Table, n: int, *, landscape: bool) -> None:
    caption = _caption(doc, f"{CAPTION_TABLE} {n}. {block.title}", italic=False)
    caption.paragraph_format.keep_with_next = True
    size = APPENDIX_PT if len(block.headers) > 8 else TABLE_PT
    table = doc.add_table(rows=1, cols=len(block.headers))
    table.style = doc.styles["Table Grid"]
    table.alignment = WD_TABLE_ALIGNMENT.CENTER
    weights = block.widths or [1.0] * len(block.headers)
    total = _text_width(landscape)
    widths = [int(total * w / sum(weights)) for w in weights]
    table.autofit = False
    for column, width in zip(table.columns, widths, strict=True):
        column.width = width
    _row(text, table.rows[0], block.headers, widths, size, bold=True)
    # The header row repeats on every page the table runs onto.
    header_pr = table.rows[0]._tr.get_or_add_trPr()
    repeat = OxmlElement("w:tblHeader")
    repeat.set(qn("w:val"), "true")
    header_pr.append(repeat)
    for values in block.rows:
        # An added row's cells take their widths from the columns.
        _row(text, table.add_row(), values, None, size, bold=False)
    if block.note:
        note = doc.add_paragraph()
        run = note.add_run(f"Ghi chú: {block.note}")
        run.italic = True
        run.font.size = Pt(TABLE_PT)
    else:
        doc.add_paragraph().paragraph_format.space_after = Pt(0)


def _row(
    text: _Text,
    row: object,
    values: Sequence[str],
    widths: Sequence[int] | None,
    size: float,
    *,
    bold: bool,
) -> None:
    for i, (cell, value) in enumerate(zip(row.cells, values, strict=True)):  # type: ignore[attr-defined]
        if widths is not None:
            cell.width = widths[i]
        paragraph = cell.paragraphs[0]
        text.cell(paragraph, centred=bold or not _is_text(value))
        text.run(paragraph, value, bold=bold, size=size)


def _is_text(value: str) -> bool:
    return any(ch.isalpha() for ch in value) and len(value) > 6


def _chart(doc: DocxDocument, block: Chart, n: int, *, landscape: bool) -> None:
    paragraph = doc.add_paragraph()
    paragraph.alignment = WD_ALIGN_PARAGRAPH.CENTER
    paragraph.paragraph_format.keep_with_next = True
    paragraph.paragraph_format.first_line_indent = None
    paragraph.add_run().add_picture(io.BytesIO(block.png), width=Mm(160))
    _caption(doc, f"{CAPTION_CHART} {n}. {block.title}", italic=True)


def _signature(doc: DocxDocument, block: Signature) -> None:
    table = doc.add_table(rows=1, cols=2)
    _borderless(table)
    _fixed_widths(table, [Mm(85), Mm(80)])
    left, right = table.rows[0].cells
    first = left.paragraphs[0]
    run = first.add_run("Nơi nhận:")
    run.bold, run.italic = True, True
    run.font.size = Pt(12)
    for line in block.recipients:
        paragraph = left.add_paragraph()
        paragraph.paragraph_format.space_after = Pt(0)
        paragraph.add_run(line).font.size = Pt(11)
    right.paragraphs[0].text = ""
    _centred(right, block.signer, bold=True, size=13)
