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

# After the path is set:
from flows.fetch.files import fetch_file  # noqa: E402
from flows.parse.header import pick_table  # noqa: E402
from flows.parse.sheet import parse_table  # noqa: E402
from flows.pipeline.context import prepare  # noqa: E402
from flows.pipeline.workbook_pool import write_workbooks  # noqa: E402
from flows.read import read_tables  # noqa: E402
from flows.settings import load_settings  # noqa: E402
from flows.validate import validate  # noqa: E402
from warehouse import ledger, load, marts  # noqa: E402


def _ingest(ctx: Any, sources: list[Any], times: dict[str, float]) -> list[Any]:
    """Fetch, read and parse each source in turn: (fetched, parsed) pairs."""
    settings = ctx.settings
    staged: list[Any] = []
    for source in sources:
        started = time.perf_counter()
        fetched = fetch_file(
            source,
            settings.archive_dir,
            settings.limits,
            settings.campaign.timezone,
            settings.source_folders,
        )
        fetched_at = time.perf_counter()
        tables = read_tables(fetched.content, fetched.filename, settings.limits)
        read_at = time.perf_counter()
        questionnaire = ctx.questionnaires[source.questionnaire]
        parsed = parse_table(
            pick_table(tables, questionnaire, source.worksheet), questionnaire, ctx.salt
        )
        parsed_at = time.perf_counter()
        times["fetch"] += fetched_at - started
        times["read"] += read_at - fetched_at
        times["parse"] += parsed_at - read_at
        staged.append((fetched, parsed))
    return staged


def _validate(ctx: Any, staged: list[Any]) -> list[Any]:
    """Validate the parsed sources, one questionnaire at a time: (fetched, checked) pairs."""
    by_code: dict[str, list[Any]] = defaultdict(list)
    for pair in staged:
        by_code[pair[0].source.questionnaire].append(pair)
    checked: list[Any] = []
    for code, pairs in sorted(by_code.items()):
        window = ctx.settings.campaign.window
        out = validate(ctx.questionnaires[code], [p for _, p in pairs], window)
        checked.extend(zip([f for f, _ in pairs], out, strict=True))
    return checked


def _load_and_publish(ctx: Any, checked: list[Any], times: dict[str, float]) -> None:
    """Load every checked source, rebuild the marts and write the workbooks, each timed."""
    started = time.perf_counter()
    for fetched, parsed in checked:
        load.replace_source(ctx.engine, ctx.campaign_id, ctx.run_id, fetched, parsed)
    times["load"] = time.perf_counter() - started
    started = time.perf_counter()
    campaign = ctx.settings.campaign
    marts.rebuild_marts(
        ctx.engine, campaign.id, as_of=dt.datetime(2024, 12, 1), deadline_at=campaign.deadline_at
    )
    times["marts"] = time.perf_counter() - started
    started = time.perf_counter()
    write_workbooks(ctx.engine, campaign.id, ctx.settings.output, ctx.questionnaires)
    times["workbooks"] = time.perf_counter() - started


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.002)
    profiler.start()
    return profiler


def _write_profile(profiler: Any, prefix: str) -> None:
    profiler.stop()
    Path(prefix + ".txt").write_text(
        profiler.output_text(unicode=True, color=False), encoding="utf-8"
    )
    Path(prefix + ".html").write_text(profiler.output_html(), encoding="utf-8")


def main(argv: list[str] | None = None) -> int:
    """Run the steps once, in order, on a fresh warehouse; print their times as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("config", type=Path)
    parser.add_argument("--limit", type=int, default=0, help="only the first N sources")
    parser.add_argument("--profile", help="write OUT.txt and OUT.html (pyinstrument)")
    args = parser.parse_args(argv)

    settings = load_settings(args.config)
    if settings.warehouse_url.startswith("sqlite:///"):
        Path(settings.warehouse_url.removeprefix("sqlite:///")).unlink(missing_ok=True)
    profiler = _start_profiler() if args.profile else None
    times: dict[str, float] = defaultdict(float)

    started = time.perf_counter()
    ctx = prepare(settings, "profile")
    ledger.start_run(ctx.engine, ctx.run_id, ctx.campaign_id)
    times["prepare"] = time.perf_counter() - started
    sources = ctx.sources[: args.limit] if args.limit else ctx.sources
    staged = _ingest(ctx, sources, times)
    started = time.perf_counter()
    checked = _validate(ctx, staged)
    times["validate"] = time.perf_counter() - started
    _load_and_publish(ctx, checked, times)
    ledger.finish_run(ctx.engine, ctx.run_id)
    if profiler is not None:
        _write_profile(profiler, args.profile)
    report = {
        "sources": len(sources),
        "responses": sum(len(p.responses) for _, p in checked),
        "answers": sum(len(p.answers) for _, p in checked),
        **{k: round(v, 3) for k, v in times.items()},
    }
    print(json.dumps(report))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
