"""Profile khaosat's steps without Prefect: one thread, each step timed, optionally pyinstrument.

    python benchmarks/profile_steps.py CONFIG [--limit N] [--profile OUT_PREFIX] [--only STEP]

Runs what the nightly flow's tasks run, in order and in this process, on a fresh warehouse (the
config's, deleted first when it is SQLite): prepare, read (calamine), parse, validate, load,
marts, workbooks. pyinstrument only sees the thread it starts on, and the flow runs its tasks
on a thread pool, so the flow's own profile shows little more than waiting: this script is
what the profile in benchmarks/README.md was taken with.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sources")
    parser.add_argument("--profile", help="write OUT.txt and OUT.html (pyinstrument)")
    args = parser.parse_args(argv)

    from flows.fetch.files import fetch_file
    from flows.parse.header import pick_table
    from flows.parse.sheet import parse_table
    from flows.pipeline.context import prepare
    from flows.pipeline.workbook_pool import write_workbooks
    from flows.read import read_tables
    from flows.settings import load_settings
    from flows.validate import validate
    from warehouse import ledger, load, marts

    settings = load_settings(args.config)
    if settings.warehouse_url.startswith("sqlite:///"):
        Path(settings.warehouse_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    profiler = None
    if args.profile:
        from pyinstrument import Profiler

        profiler = Profiler(interval=0.002)
        profiler.start()
    times: dict[str, float] = defaultdict(float)

    t = time.perf_counter()
    ctx = prepare(settings, "profile")
    ledger.start_run(ctx.engine, ctx.run_id, ctx.campaign_id)
    times["prepare"] = time.perf_counter() - t
    sources = ctx.sources[: args.limit] if args.limit else ctx.sources
    staged: list[Any] = []
    for source in sources:
        t = time.perf_counter()
        fetched = fetch_file(source, settings.archive_dir, settings.limits, "Asia/Ho_Chi_Minh")
        t1 = time.perf_counter()
        tables = read_tables(fetched.content, fetched.filename, settings.limits)
        t2 = time.perf_counter()
        q = ctx.questionnaires[source.questionnaire]
        parsed = parse_table(pick_table(tables, q, source.worksheet), q, ctx.salt)
        t3 = time.perf_counter()
        times["fetch"] += t1 - t
        times["read"] += t2 - t1
        times["parse"] += t3 - t2
        staged.append((fetched, parsed))
    t = time.perf_counter()
    by_code: dict[str, list[Any]] = defaultdict(list)
    for pair in staged:
        by_code[pair[0].source.questionnaire].append(pair)
    checked = []
    for code, pairs in sorted(by_code.items()):
        out = validate(ctx.questionnaires[code], [p for _, p in pairs], settings.campaign.window)
        checked.extend(zip([f for f, _ in pairs], out, strict=True))
    times["validate"] = time.perf_counter() - t
    t = time.perf_counter()
    for fetched, parsed in checked:
        load.replace_source(ctx.engine, ctx.campaign_id, ctx.run_id, fetched, parsed)
    times["load"] = time.perf_counter() - t
    t = time.perf_counter()
    c = settings.campaign
    marts.rebuild_marts(ctx.engine, c.id, as_of=dt.datetime(2024, 12, 1), deadline_at=c.deadline_at)
    times["marts"] = time.perf_counter() - t
    t = time.perf_counter()
    write_workbooks(ctx.engine, c.id, settings.output, ctx.questionnaires)
    times["workbooks"] = time.perf_counter() - t
    ledger.finish_run(ctx.engine, ctx.run_id)
    if profiler is not None:
        profiler.stop()
        Path(args.profile + ".txt").write_text(
            profiler.output_text(unicode=True, color=False), encoding="utf-8"
        )
        Path(args.profile + ".html").write_text(profiler.output_html(), encoding="utf-8")
    n_answers = sum(len(p.answers) for _, p in checked)
    n_responses = sum(len(p.responses) for _, p in checked)
    print(
        json.dumps(
            {
                "sources": len(sources),
                "responses": n_responses,
                "answers": n_answers,
                **{k: round(v, 3) for k, v in times.items()},
            }
        )
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
