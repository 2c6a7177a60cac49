"""Each performance trick with and without, measured in one run.

    python benchmarks/tricks.py [--schools 100] [--responses 250] [--repeat 2] [--only NAME]

Every trick of the tree is a record below: its name, its home (module), and how to turn it off:
text edits applied to a throwaway copy of the source tree (each old text must be present, so a
recipe gone stale fails loudly), or environment variables. For each trick and repeat, khaosat's
full nightly run goes over the generated province on a fresh SQLite warehouse, once with the
tree as it is and once without the trick, in alternating order, each in a child of its own
(``benchmarks/run.py --child-khaosat`` of the tree measured). The table gives the medians and
the gain: (without - with) / with, in % of the run as it is.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.run import PYTHON, khaosat, run_dir  # noqa: E402 - after the path is set


@dataclass(frozen=True)
class Trick:
    """A performance trick, and how to run the tree without it: ``edits`` to a copy of the
    tree, as (relative path, old text, new text), and ``env`` added to the child's
    environment."""

    name: str
    home: str
    edits: tuple[tuple[str, str, str], ...] = ()
    env: dict[str, str] = field(default_factory=dict)


_GC_PAUSED = """\
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        if enabled:
            gc.enable()
"""

_WORKER_FROZEN = """\
    gc.freeze()
    end_with(parent)
"""

_READ_AHEAD_START = """\
    school, questionnaire = params.get("school"), params.get("questionnaire")
"""

_READ_AHEAD_CACHE = """\
    ahead = _READ_AHEAD.pop((content, filename), None)
"""

_GX_BEFORE_FLOW = """\
        with long_lived_imports():
            create_context()
"""

_API_STARTED = """\
    port = free_port()
    spec = importlib.util.find_spec("prefect")
"""

# A TemporaryApi whose process has already exited: ``serving()`` then takes the path of an API
# that did not come up (Prefect starts its own at the flow's first call), events still muted.
_API_NOT_STARTED = """\
    exited = subprocess.Popen(["true"])
    exited.wait()
    return TemporaryApi(exited, "http://127.0.0.1:9/api")
"""

_LEAVE_FAST = """\
    threading._shutdown()  # type: ignore[attr-defined]
    atexit._run_exitfuncs()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code or 0)
"""

_STYLE_IDS = """\
    wb = cell.parent.parent
    ids = _STYLE_IDS.get(wb)
    if ids is None:
        ids = _STYLE_IDS[wb] = {}
    style = _style_array(cell)
    if font is not None:
        style.fontId = _style_id(ids, wb, "_fonts", font)
    if fill is not None:
        style.fillId = _style_id(ids, wb, "_fills", fill)
    if border is not None:
        style.borderId = _style_id(ids, wb, "_borders", border)
    if alignment is not None:
        style.alignmentId = _style_id(ids, wb, "_alignments", alignment)
"""

_STYLE_ASSIGNED = """\
    if font is not None:
        cell.font = font
    if fill is not None:
        cell.fill = fill
    if border is not None:
        cell.border = border
    if alignment is not None:
        cell.alignment = alignment
"""

_MERGE_START = """\
    wb = ws.parent
    merged = MergedCellRange(
"""

_MERGE_BY_OPENPYXL = """\
    ws.merge_cells(
        start_row=first_row, start_column=first_col, end_row=last_row, end_column=last_col
    )
    return
"""

_ROW_WISE = """\
    if frame_name not in compiled.row_wise:
        return run_frame(code, compiled, suite, frame, parameters)
"""

_BESIDE_IN_A_PROCESS = """\
        if pool is not None and not in_memory(engine.url):
"""

_BY_QUESTIONNAIRE = """\
    return sorted(batch, key=lambda source: source.questionnaire)
"""

_WORKBOOKS_HERE = """\
    if pool is None or len(jobs) < 2:
        return write_scopes(data, jobs)
"""

_ON = "true"

TRICKS: tuple[Trick, ...] = (
    Trick(
        "gc freezing",
        "flows/pipeline/processes.py",
        edits=(
            ("flows/pipeline/processes.py", _GC_PAUSED, "    yield\n"),
            ("flows/pipeline/processes.py", _WORKER_FROZEN, "    end_with(parent)\n"),
        ),
    ),
    Trick(
        # Without it, GX is not imported before the flow either (read_ahead returns first).
        "read ahead",
        "flows/pipeline/context.py, read_ahead.py",
        edits=(
            ("flows/pipeline/context.py", _READ_AHEAD_START, "    return\n" + _READ_AHEAD_START),
            (
                "flows/pipeline/read_ahead.py",
                _READ_AHEAD_CACHE,
                "    return read_tables(content, filename, limits)\n" + _READ_AHEAD_CACHE,
            ),
        ),
    ),
    Trick(
        "GX imported early",
        "flows/pipeline/warmup.py, context.py",
        edits=(
            ("flows/pipeline/warmup.py", "target=create_context,", "target=None,"),
            ("flows/pipeline/context.py", _GX_BEFORE_FLOW, "        pass\n"),
        ),
    ),
    Trick(
        "parse processes",
        "flows/pipeline/pools.py",
        env={"KHAOSAT_RUN__PARSE_PROCESSES": "0"},
    ),
    Trick(
        "load process",
        "flows/pipeline/pools.py",
        env={"KHAOSAT_RUN__LOAD_PROCESSES": "0"},
    ),
    Trick(
        "Prefect argument walk avoided",
        "flows/pipeline/batches.py",
        edits=(("flows/pipeline/batches.py", "return cast(T, quote(value))", "return value"),),
    ),
    Trick(
        "temporary API started early",
        "flows/pipeline/prefect_api.py",
        edits=(("flows/pipeline/prefect_api.py", _API_STARTED, _API_NOT_STARTED + _API_STARTED),),
    ),
    Trick(
        "exit with os._exit",
        "flows/pipeline/processes.py",
        edits=(("flows/pipeline/processes.py", _LEAVE_FAST, "    sys.exit(code or 0)\n"),),
    ),
    Trick(
        "SQLite multi-row INSERT",
        "warehouse/bulk.py",
        edits=(("warehouse/bulk.py", "    whole = n - n % per  #", "    whole = 0  #"),),
    ),
    Trick(
        "units' workbooks in parse processes",
        "flows/pipeline/workbook_pool.py",
        edits=(
            (
                "flows/pipeline/workbook_pool.py",
                _WORKBOOKS_HERE,
                "    pool = None\n" + _WORKBOOKS_HERE,
            ),
        ),
    ),
    Trick(
        "comment mart and report beside the flow",
        "flows/pipeline/pools.py",
        edits=(("flows/pipeline/pools.py", _BESIDE_IN_A_PROCESS, "        if False:\n"),),
    ),
    Trick(
        "a batch ingested and validated one questionnaire at a time",
        "flows/pipeline/batches.py, context.py",
        edits=(("flows/pipeline/context.py", _BY_QUESTIONNAIRE, "    return batch\n"),),
    ),
    Trick(
        "calamine spared its merged-cell pass",
        "flows/read/calamine.py (without_merge_scan), xlsx.py",
        edits=(
            (
                "flows/read/xlsx.py",
                "STORED_COPY_MAX_BYTES = 32_000_000",
                "STORED_COPY_MAX_BYTES = -1",
            ),
        ),
    ),
    Trick(
        "openpyxl style ids",
        "flows/publish/xlsx.py",
        edits=(
            ("flows/publish/xlsx.py", _STYLE_IDS, _STYLE_ASSIGNED),
            ("flows/publish/xlsx.py", _MERGE_START, _MERGE_BY_OPENPYXL + _MERGE_START),
        ),
    ),
    Trick(
        "GX sees distinct rows, verdicts kept",
        "flows/validate/distinct.py",
        edits=(
            (
                "flows/validate/distinct.py",
                _ROW_WISE,
                _ROW_WISE.replace("if frame_name not in compiled.row_wise:", "if True:"),
            ),
        ),
    ),
    Trick(
        "temporary API records no events",
        "flows/settings.py",
        env={
            "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": _ON,
            "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": _ON,
            "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": _ON,
        },
    ),
)


def without(trick: Trick, work: Path) -> Path:
    """A copy of the tree with ``trick``'s edits applied (the tree itself if it has none);
    fails if an edit's old text is not found exactly once."""
    if not trick.edits:
        return ROOT
    tree = work / "trees" / re.sub(r"[^A-Za-z0-9._]+", "-", trick.name)
    shutil.rmtree(tree, ignore_errors=True)
    ignore = shutil.ignore_patterns(".git", ".venv", "*cache*", "__pycache__", "tests")
    shutil.copytree(ROOT, tree, ignore=ignore)
    for relative, old, new in trick.edits:
        path = tree / relative
        text = path.read_text(encoding="utf-8")
        if text.count(old) != 1:
            raise SystemExit(f"{trick.name}: stale recipe, {relative} lacks (once):\n{old}")
        path.write_text(text.replace(old, new), encoding="utf-8")
    found = subprocess.run(  # the child must import the copy, not the tree
        [PYTHON, "-c", "import flows; print(flows.__file__)"],
        capture_output=True,
        text=True,
        cwd=tree,
        env={**os.environ, "PYTHONPATH": str(tree)},
        check=True,
    ).stdout.strip()
    if not Path(found).is_relative_to(tree):
        raise SystemExit(f"{trick.name}: the copy imports {found}, not {tree}")
    return tree


def _arm(trick: Trick, arm: str, tree: Path, run: Path) -> dict[str, Any]:
    """One nightly run of an arm; fails unless every source loaded."""
    env = trick.env if arm == "without" else {}
    result = khaosat(run, tree=tree, extra_env=env)
    statuses = result["statuses"]
    if result["exit_code"] != 0 or statuses["failed"] or not statuses["loaded"]:
        raise SystemExit(f"{trick.name}, {arm}: the run did not load everything: {statuses}")
    return result


def measure(trick: Trick, repeat: int, work: Path, province: Path, first: int) -> dict[str, Any]:
    """Run ``trick`` with and without, ``repeat`` times each, in alternating order (``first``
    even: with it first)."""
    trees = {"with": ROOT, "without": without(trick, work)}
    walls: dict[str, list[float]] = {"with": [], "without": []}
    answers: set[int] = set()
    for i in range(repeat):
        order = ["with", "without"] if (first + i) % 2 == 0 else ["without", "with"]
        for arm in order:
            run = run_dir(work, province, f"trick-{arm}", None)
            result = _arm(trick, arm, trees[arm], run)
            walls[arm].append(result["wall"])
            answers.add(result["n_answers"])
            print(f"  [{i + 1}] {trick.name:<36} {arm:<8} {result['wall']:6.1f} s", flush=True)
    if len(answers) != 1:
        raise SystemExit(f"{trick.name}: the arms loaded different answers: {sorted(answers)}")
    with_s, without_s = statistics.median(walls["with"]), statistics.median(walls["without"])
    return {
        "trick": trick.name,
        "home": trick.home,
        "with": with_s,
        "without": without_s,
        "gain_pct": 100 * (without_s - with_s) / with_s,
        "walls": walls,
    }


def _table(rows: list[dict[str, Any]]) -> list[str]:
    lines = [f"{'trick':<36} {'home':<42} {'with':>7} {'without':>8} {'gain':>7}"]
    for row in rows:
        lines.append(
            f"{row['trick']:<36} {row['home']:<42} {row['with']:6.1f}s {row['without']:7.1f}s "
            f"{row['gain_pct']:+6.1f}%"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    """Measure the chosen tricks, print the table (and write it with ``--json``)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--responses", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--only", action="append", metavar="NAME", help="this trick (repeatable)")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("--json", type=Path, help="write the table here")
    args = parser.parse_args(argv)
    names = {trick.name for trick in TRICKS}
    unknown = sorted(set(args.only or ()) - names)
    if unknown:
        parser.error(f"no trick {', '.join(unknown)}; known: {', '.join(sorted(names))}")
    chosen = [trick for trick in TRICKS if not args.only or trick.name in args.only]

    from benchmarks.generate import generate

    work = args.work.resolve()
    province = work / f"province-{args.schools}x{args.responses}"
    generate(province, args.schools, args.responses)
    print(f"province {province}; {len(chosen)} trick(s), {args.repeat} repeat(s)", flush=True)
    rows = [measure(trick, args.repeat, work, province, k) for k, trick in enumerate(chosen)]
    print()
    for line in _table(rows):
        print(line)
    if args.json:
        args.json.write_text(
            json.dumps({"args": vars(args), "tricks": rows}, default=str, indent=1)
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
