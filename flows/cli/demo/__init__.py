"""Demo: a synthetic post-2025 province, with the submissions and the mess seen in the wild.

``generate_province`` writes a ready-to-run campaign folder (khaosat.yaml, schools.csv,
sources.csv, submissions/) for ``khaosat demo``, for the end-to-end tests and for benchmarks.
Every questionnaire is listed file by file in sources.csv but PAPI_TH, which a folder row finds
(``province.FOLDER_ROW``); one of its files names its school wrongly.
Answers are drawn from the questionnaire YAML, so the demo follows the schemas when they change.
Which school carries which trap is fixed by position, not by the seed:
``province.trap_locations`` lists them and ``province.TRAPS`` says what each one is.
"""

from __future__ import annotations

import csv
import random
import shutil
from collections.abc import Mapping
from pathlib import Path

from flows.cli.demo.previous import generate_previous
from flows.cli.demo.province import (
    ENROLLMENT,
    FOLDER_QUESTIONNAIRE,
    FOLDER_ROW,
    SchoolRow,
    config_text,
    misnamed_location,
    name_schools,
    plan_province,
)
from flows.cli.demo.traps import write_source
from flows.registry import SCHOOL_COLUMNS, SOURCE_COLUMNS
from schemas.questionnaire import Questionnaire, load_questionnaires


def generate_province(
    folder: Path,
    seed: int = 2024,
    *,
    n_units: int = 4,
    schools_per_unit: int = 5,
    respondents: tuple[int, int] = (35, 70),
    questionnaires: Mapping[str, Questionnaire] | None = None,
    previous: bool = False,
) -> Path:
    """Write a synthetic province into ``folder`` and return the path of its khaosat.yaml.

    ``n_units`` counts the reporting units including the Sở (the last one, holding THPT and
    GDTX); each has ``schools_per_unit`` schools, and each satisfaction or PAPI source gets a
    number of respondents drawn from ``respondents`` (inclusive; at least 8, so the traps placed
    in the first rows always have rows to sit in). The same seed and arguments give
    byte-identical files (workbooks included) and modified times.

    Traps are placed as :func:`trap_locations` says; a province too small to hold them all (the
    default 4 units of 5 schools is the smallest regular shape) raises ValueError.
    ``questionnaires`` defaults to ``schemas.load_questionnaires()``. With ``previous`` the
    campaign a year earlier is written too, into ``folder/previous`` (its config shares the
    warehouse: ``previous.generate_previous``), and this campaign's names it as its previous.
    """
    qs = load_questionnaires() if questionnaires is None else questionnaires
    plan = plan_province(qs, n_units, schools_per_unit)
    rng = random.Random(seed)  # noqa: S311 - synthetic data, reproducibility is the point
    school_names, unit_names = name_schools(plan, rng)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "submissions").mkdir(exist_ok=True)

    rows = [
        SchoolRow(
            s.code,
            school_names[s.code],
            s.level,
            s.unit_code,
            unit_names[s.unit_index],
            rng.randint(*ENROLLMENT[s.level]),
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
            if src.questionnaire != FOLDER_QUESTIONNAIRE:
                w.writerow([src.school.code, src.questionnaire, src.kind, src.location])
        if any(src.questionnaire == FOLDER_QUESTIONNAIRE for src in plan.sources):
            w.writerow(FOLDER_ROW)  # the rest are found in the folder, by their names

    for src in plan.sources:
        write_source(
            folder, src, qs[src.questionnaire], school_names[src.school.code], respondents, rng
        )
    folder_sources = [s for s in plan.sources if s.questionnaire == FOLDER_QUESTIONNAIRE]
    if folder_sources:  # one school names its file wrongly: the demo shows it unplaced
        first = folder_sources[0]
        shutil.copy2(folder / first.location, folder / misnamed_location(first))

    if previous:
        roles = {s.code: s.role for s in plan.schools}
        generate_previous(folder, rows, roles, qs, respondents, seed - 1)
    config = folder / "khaosat.yaml"
    config.write_text(config_text(previous=previous), encoding="utf-8")
    return config
