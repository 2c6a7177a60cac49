"""A deterministic large province for the benchmarks: Forms-style xlsx, one file per school.

    python benchmarks/generate.py --schools 1000 --responses 250 OUT

writes OUT/khaosat.yaml, schools.csv, sources.csv and submissions/<school>_<form>.xlsx: a Google
Forms download per school (30 columns, 24 scored answers per response), answers and sheets from
``flows.cli.demo`` written in openpyxl's write_only mode. Schools cycle through MN, TH, THCS and
THPT, answer their level's CMHS questionnaire and report through communes of 25 schools (THPT:
the Sở). Each school has its own seed and ``save_workbook`` fixes the timestamps, so the same
arguments give byte-identical files; a folder generated with the same arguments is reused
(``stamp.json``).
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import multiprocessing
import os
import random
import sys
import time
from pathlib import Path
from zoneinfo import ZoneInfo

from openpyxl import Workbook

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from flows.cli.demo import answers, province, traps  # noqa: E402 - after the path is set
from flows.publish.xlsx import save_workbook  # noqa: E402
from flows.registry import SCHOOL_COLUMNS, SOURCE_COLUMNS  # noqa: E402
from schemas import load_questionnaires  # noqa: E402
from schemas.campaign import DEFAULT_TIMEZONE  # noqa: E402

LEVELS = ("MN", "TH", "THCS", "THPT")
#: Schools per commune (MN/TH/THCS); THPT schools all report to the Sở.
SCHOOLS_PER_UNIT = 25
#: The Forms traps every file has (flows.cli.demo.province.TRAPS): the common case, not the mess.
FORMS_TRAPS = ("forms_xlsx", "timestamp_text", "email", "grid_headers", "labels_text")
#: Every file is modified the evening the campaign closes: all on time.
MODIFIED_AT = dt.datetime.combine(province.CLOSES, dt.time(20, 0))
GENERATOR_VERSION = 1


def school_plan(n_schools: int) -> list[dict[str, str | int]]:
    """The registry rows: code, name, level, unit, questionnaire, enrollment (deterministic)."""
    rows: list[dict[str, str | int]] = []
    commune_schools = 0
    for i in range(n_schools):
        level = LEVELS[i % len(LEVELS)]
        code = f"{level}{i + 1:05d}"
        if level == "THPT":
            unit_code, unit_name = province.SO_UNIT_CODE, province.SO_UNIT_NAME
        else:
            u = commune_schools // SCHOOLS_PER_UNIT
            commune_schools += 1
            unit_code, unit_name = f"XP{u + 1:03d}", f"Xã {u + 1:03d}"
        rows.append(
            {
                "school_code": code,
                "school_name": f"Trường {level} số {i + 1}",
                "level": level,
                "unit_code": unit_code,
                "unit_name": unit_name,
                "enrollment": 300 + (i * 37) % 900,
                "questionnaire": f"CMHS_{level}",
            }
        )
    return rows


def _write_forms_xlsx(path: Path, sheet: traps.Sheet) -> None:
    """A Forms download written in write_only mode (rows streamed, no cell objects)."""
    wb = Workbook(write_only=True)
    ws = wb.create_sheet(sheet.name)
    ws.append(sheet.header)
    for row in sheet.rows:
        ws.append(row)
    save_workbook(wb, path)


def _write_school(job: tuple[Path, dict[str, str | int], int, int, int]) -> int:
    """Write one school's file; returns the number of responses written."""
    folder, school, index, n_responses, seed = job
    qs = _questionnaires()
    q = qs[str(school["questionnaire"])]
    # One seed per school: the files do not depend on the number of worker processes.
    rng = random.Random(seed * 1_000_003 + index)  # noqa: S311 - synthetic data
    low = index % 17 == 5  # a few schools below target, so alerts and red cells have content
    responses = answers.satisfaction_responses(  # the demo's calibrated answers
        q, str(school["level"]), n_responses, low, rng
    )
    sheet = traps.forms_sheet(q, responses, FORMS_TRAPS, csv_file=False)
    path = folder / "submissions" / f"{school['school_code']}_{q.code}.xlsx"
    _write_forms_xlsx(path, sheet)
    ts = MODIFIED_AT.replace(tzinfo=ZoneInfo(DEFAULT_TIMEZONE)).timestamp()
    os.utime(path, (ts, ts))
    return len(sheet.rows)


_QS: dict[str, object] = {}


def _questionnaires():  # type: ignore[no-untyped-def]
    if "qs" not in _QS:
        _QS["qs"] = load_questionnaires()
    return _QS["qs"]


def config_text(warehouse_url: str | None = None) -> str:
    """khaosat.yaml of the benchmark province (the demo's campaign)."""
    text = f"""\
# Benchmark province written by benchmarks/generate.py: synthetic schools and answers.
campaign:
  id: {province.CAMPAIGN_ID}
  name: "{province.CAMPAIGN_NAME}"
  school_year: "{province.SCHOOL_YEAR}"
  opens: {province.OPENS.isoformat()}
  closes: {province.CLOSES.isoformat()}
  deadline: {province.DEADLINE.isoformat()}
  province_code: "{province.PROVINCE_CODE}"
registry:
  schools: schools.csv
  sources: sources.csv
output: output
"""
    if warehouse_url:
        text += f"warehouse:\n  url: {warehouse_url}\n"
    return text


def generate(
    folder: Path, n_schools: int, n_responses: int, *, seed: int = 2024, workers: int = 0
) -> Path:
    """Write (or reuse) the province in ``folder``; returns the path of its khaosat.yaml."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp_path = folder / "stamp.json"
    stamp = {
        "version": GENERATOR_VERSION,
        "schools": n_schools,
        "responses": n_responses,
        "seed": seed,
    }
    config = folder / "khaosat.yaml"
    if stamp_path.exists() and json.loads(stamp_path.read_text()) == stamp and config.exists():
        return config
    stamp_path.unlink(missing_ok=True)
    (folder / "submissions").mkdir(exist_ok=True)
    plan = school_plan(n_schools)
    with (folder / "schools.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SCHOOL_COLUMNS)
        for s in plan:
            w.writerow([s[c] for c in SCHOOL_COLUMNS])
    with (folder / "sources.csv").open("w", encoding="utf-8", newline="") as f:
        w = csv.writer(f)
        w.writerow(SOURCE_COLUMNS)
        for s in plan:
            location = f"submissions/{s['school_code']}_{s['questionnaire']}.xlsx"
            w.writerow([s["school_code"], s["questionnaire"], "excel", location])
    jobs = [(folder, s, i, n_responses, seed) for i, s in enumerate(plan)]
    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    if workers > 1:
        with multiprocessing.get_context("spawn").Pool(workers) as pool:
            for _ in pool.imap_unordered(_write_school, jobs, chunksize=8):
                pass
    else:
        for job in jobs:
            _write_school(job)
    config.write_text(config_text(), encoding="utf-8")
    stamp_path.write_text(json.dumps(stamp))
    return config


def main(argv: list[str] | None = None) -> int:
    """Generate (or reuse) the province the options describe."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, help="folder to write the province into")
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--responses", type=int, default=250, help="responses per school")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--workers", type=int, default=0, help="processes (default: CPUs)")
    args = parser.parse_args(argv)
    started = time.perf_counter()
    config = generate(args.out, args.schools, args.responses, seed=args.seed, workers=args.workers)
    print(f"{config} ({time.perf_counter() - started:.1f} s)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
