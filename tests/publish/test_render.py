"""The workbooks render: LibreOffice converts them to PDF with pages (what leadership prints).

Needs LibreOffice's ``soffice`` (Debian: libreoffice-calc-nogui; ``.ci/run`` installs it). Like
the PostgreSQL tests, these FAIL rather than skip without it, so a green run means the rendering
was really checked.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from flows.pipeline.workbook_pool import write_workbooks
from flows.publish.template import write_template
from schemas import load_questionnaires
from tests.factories import CAMPAIGN, load_both_campaigns, to_pdf
from warehouse.db import connect, migrate

pytestmark = [pytest.mark.soffice, pytest.mark.slow]

#: A PDF page object (not the /Pages tree node).
_PAGE = re.compile(rb"/Type\s*/Page(?![a-zA-Z])")
SHEETS_PER_WORKBOOK = 10


def pages(pdf: Path) -> int:
    return len(_PAGE.findall(pdf.read_bytes()))


@pytest.fixture(scope="module")
def workbooks(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """The test province's workbooks (see tests/factories.py), from an SQLite warehouse:
    rendering does not depend on the backend."""
    folder = tmp_path_factory.mktemp("render")
    engine = connect(f"sqlite:///{folder / 'warehouse.sqlite'}")
    migrate(engine)
    load_both_campaigns(engine)
    paths = write_workbooks(engine, CAMPAIGN.id, folder / "out", load_questionnaires())
    engine.dispose()
    return paths


@pytest.mark.parametrize("which", [0, 1], ids=["province", "unit"])
def test_workbook_converts_to_a_pdf_with_pages(
    workbooks: list[Path], which: int, tmp_path: Path
) -> None:
    [pdf] = to_pdf([workbooks[which]], tmp_path)
    assert pdf.read_bytes().startswith(b"%PDF")
    # Every sheet starts a page of its own.
    assert pages(pdf) >= SHEETS_PER_WORKBOOK


def test_blank_form_converts_to_a_pdf(tmp_path: Path) -> None:
    path = write_template(load_questionnaires()["CMHS_TH"], tmp_path / "CMHS_TH.xlsx", rows=30)
    [pdf] = to_pdf([path], tmp_path)
    assert pages(pdf) >= 2  # the form and its instructions
