"""The demo's previous campaign: the same schools a year earlier, clean Google Forms downloads of
their satisfaction questionnaires, so that the current campaign's year-on-year page has real
changes to show.

Schools that are low this year were satisfied last year (their drop is what year-on-year
alerts are for); one school that is fine this year was low last year (an improvement). Written
with a random generator of its own, so the current campaign's files are the same with or
without it.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime as dt
import random
from collections.abc import Mapping, Sequence
from pathlib import Path

from flows.cli.demo.answers import satisfaction_responses
from flows.cli.demo.province import (
    CLOSES,
    PREVIOUS_FOLDER,
    SchoolRow,
    a_year_before,
    previous_config_text,
)
from flows.cli.demo.traps import write_forms_file
from flows.registry import SCHOOL_COLUMNS, SOURCE_COLUMNS
from schemas.questionnaire import Questionnaire

#: Schools (by their place among the schools of their level) low a year earlier; every other
#: school, those low this year included, was satisfied.
LOW_LAST_YEAR = {("TH", 1)}
#: Last year's mood against this year's: most schools have improved a little since, as the
#: published reports show year after year.
LAST_YEAR_SHIFT = -0.4


def generate_previous(
    folder: Path,
    schools: Sequence[SchoolRow],
    roles: Mapping[str, tuple[str, int]],
    questionnaires: Mapping[str, Questionnaire],
    respondents: tuple[int, int],
    seed: int,
) -> Path:
    """Write the previous campaign into ``folder/previous`` and return its khaosat.yaml.

    ``schools`` are this year's registry rows, ``roles`` each school's (level, n-th of its
    level); each school gets one clean xlsx per satisfaction questionnaire of its level.
    """
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducibility is the point
    root = folder / PREVIOUS_FOLDER
    (root / "submissions").mkdir(parents=True, exist_ok=True)
    sources: list[tuple[str, str, str]] = []
    satisfaction = [q for q in questionnaires.values() if q.kind == "satisfaction"]
    modified = dt.datetime.combine(a_year_before(CLOSES), dt.time(18, 0))
    for school in schools:
        role = roles[school.code]
        for q in (q for q in satisfaction if school.level in q.levels):
            location = f"submissions/{school.code}_{q.code}.xlsx"
            n = rng.randint(*respondents)
            low = role in LOW_LAST_YEAR
            answers = satisfaction_responses(q, school.level, n, low, rng, LAST_YEAR_SHIFT)
            earlier = [
                dataclasses.replace(r, submitted_at=_a_year_before(r.submitted_at)) for r in answers
            ]
            write_forms_file(root / location, q, earlier, modified)
            sources.append((school.code, q.code, location))
    with (root / "schools.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SCHOOL_COLUMNS)
        for r in schools:
            w.writerow([r.code, r.name, r.level, r.unit_code, r.unit_name, r.enrollment])
    with (root / "sources.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SOURCE_COLUMNS)
        w.writerows((code, q, "excel", location) for code, q, location in sources)
    config = root / "khaosat.yaml"
    config.write_text(previous_config_text(), encoding="utf-8")
    return config


def _a_year_before(moment: dt.datetime) -> dt.datetime:
    return moment.replace(year=moment.year - 1)
