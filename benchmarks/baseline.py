"""The naive baseline: what a competent analyst writes with pandas to consolidate a province.

    python benchmarks/baseline.py CONFIG_FOLDER --db OUT.sqlite

For every row of sources.csv: ``pandas.read_excel(engine="openpyxl")``, headers mapped to item
codes (question texts and Google Forms grid headers "Title [Row]"), melt to one row per answer,
labels mapped to 1-5, one ``to_sql`` of all answers into SQLite, then a ``groupby`` by unit ×
questionnaire × dimension written back with ``to_sql``: khaosat's consolidation of a clean
province, minus validation, archives, the ledger, per-school marts, workbooks and re-runs. Fair,
not a strawman: vectorised pandas, one bulk ``to_sql``, the mapping dicts built once (from the
questionnaire YAML, where the question texts are; an analyst would paste the same texts).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import unicodedata
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from schemas import load_questionnaires  # noqa: E402 - after the path is set

LIKERT = {
    "rất không hài lòng": 1,
    "không hài lòng": 2,
    "chưa hài lòng": 2,
    "bình thường": 3,
    "phân vân": 3,
    "hài lòng": 4,
    "rất hài lòng": 5,
}


def _norm(text: object) -> str:
    return " ".join(unicodedata.normalize("NFC", str(text)).split())


def header_maps() -> tuple[dict[str, dict[str, str]], pd.DataFrame]:
    """Per questionnaire, header text → item code (scored items only); and the item table."""
    maps: dict[str, dict[str, str]] = {}
    items = []
    for code, q in load_questionnaires().items():
        m: dict[str, str] = {}
        for item in q.items:
            if item.kind == "text":
                continue
            for text in (item.text, *item.aliases):
                m[_norm(text)] = item.code
                if item.grid:
                    m[_norm(f"{item.grid} [{text}]")] = item.code
            items.append((code, item.code, item.kind, item.dimension or ""))
        maps[code] = m
    columns = ["questionnaire", "question_code", "kind", "dimension"]
    return maps, pd.DataFrame(items, columns=columns)


def _answers_of(df: pd.DataFrame, src: Any, header_map: dict[str, str]) -> pd.DataFrame:
    """One submission's scored answers, one row per answer, labels mapped to 1-5."""
    df.columns = [_norm(c) for c in df.columns]
    df = df.rename(columns=header_map)
    scored = [c for c in df.columns if c in set(header_map.values())]
    df["response_no"] = range(1, len(df) + 1)
    long = df.melt(
        id_vars=["response_no"], value_vars=scored, var_name="question_code", value_name="raw"
    ).dropna(subset=["raw"])
    labels = long["raw"].astype(str).str.strip().str.lower().map(LIKERT)
    long["value"] = pd.to_numeric(long["raw"], errors="coerce").fillna(labels)
    long["school_code"] = src.school_code
    long["questionnaire"] = src.questionnaire
    return long.drop(columns="raw")


def read_answers(
    folder: Path, sources: pd.DataFrame, maps: dict[str, dict[str, str]]
) -> tuple[pd.DataFrame, int, float]:
    """Every source's answers in one frame, the number of responses, and the seconds spent in
    ``read_excel``."""
    frames = []
    n_responses = 0
    read_s = 0.0
    for src in sources.itertuples(index=False):
        started = time.perf_counter()
        df = pd.read_excel(folder / src.location, engine="openpyxl")
        read_s += time.perf_counter() - started
        n_responses += len(df)
        frames.append(_answers_of(df, src, maps[src.questionnaire]))
    return pd.concat(frames, ignore_index=True), n_responses, read_s


def unit_dimension_mart(
    answers: pd.DataFrame, items: pd.DataFrame, schools: pd.DataFrame
) -> pd.DataFrame:
    """Likert answers by reporting unit × questionnaire × dimension: schools, answers, mean
    score, % satisfied and % dissatisfied."""
    a = answers.merge(items, on=["questionnaire", "question_code"]).merge(
        schools[["school_code", "unit_code", "level"]], on="school_code"
    )
    likert = a[(a["kind"] == "likert") & a["value"].between(1, 5)]
    likert = likert.assign(
        satisfied=likert["value"] >= 4,
        dissatisfied=likert["value"] <= 2,
        dimension=likert["dimension"].where(likert["dimension"] != "", likert["question_code"]),
    )
    mart = (
        likert.groupby(["unit_code", "level", "questionnaire", "dimension"])
        .agg(
            n_schools=("school_code", "nunique"),
            n_answers=("value", "size"),
            mean_score=("value", "mean"),
            pct_satisfied=("satisfied", "mean"),
            pct_dissatisfied=("dissatisfied", "mean"),
        )
        .reset_index()
    )
    mart["pct_satisfied"] *= 100
    mart["pct_dissatisfied"] *= 100
    return mart


def consolidate(folder: Path, db: Path) -> dict[str, float]:
    """Run the whole consolidation; returns seconds per step and row counts."""
    times: dict[str, float] = {}
    began = time.perf_counter()
    maps, items = header_maps()
    schools = pd.read_csv(folder / "schools.csv", dtype=str)
    sources = pd.read_csv(folder / "sources.csv", dtype=str)
    answers, n_responses, read_s = read_answers(folder, sources, maps)
    times["read"] = read_s
    times["transform"] = time.perf_counter() - began - read_s

    started = time.perf_counter()
    engine = sa.create_engine(f"sqlite:///{db}")
    answers.to_sql("answer", engine, if_exists="replace", index=False, chunksize=100_000)
    times["load"] = time.perf_counter() - started

    started = time.perf_counter()
    mart = unit_dimension_mart(answers, items, schools)
    mart.to_sql("mart_unit_dimension", engine, if_exists="replace", index=False)
    engine.dispose()
    times["marts"] = time.perf_counter() - started
    times["total"] = time.perf_counter() - began
    times["n_sources"] = len(sources)
    times["n_responses"] = n_responses
    times["n_answers"] = len(answers)
    return times


def main(argv: list[str] | None = None) -> int:
    """Consolidate the province folder into the SQLite file; print the step times as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path, help="province folder (schools.csv, sources.csv)")
    parser.add_argument("--db", type=Path, required=True, help="SQLite file to write")
    args = parser.parse_args(argv)
    args.db.unlink(missing_ok=True)
    print(json.dumps(consolidate(args.folder, args.db)))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
