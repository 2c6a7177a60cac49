"""Peak memory of reading hostile uploads: tests/hostile_files.py's corpus at the default limits.

    python benchmarks/hostile_memory.py [--bound-mb 512] [--calamine] [--flow] [--keep DIR]

Each case of ``corpus(Limits())``, plus two large honest sheets (20,000 rows × 30 columns, alone
and with a blank cell at XFD1), is read by ``read_tables`` in a child of its own; the table
gives the outcome, seconds, and the child's memory after its imports, at its peak and grown
between the two: growth beyond ``--bound-mb`` makes the exit code 1. ``--calamine`` adds what
python-calamine alone does with the bytes (capped at 4 GB of address space): what the checks are
for. ``--flow`` also runs ``khaosat run`` over tests/hostile_files.py's end-to-end province and
reports its peak memory. Memory is the claim; the seconds are indicative.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

MB = 1024 * 1024
#: The address-space cap of the calamine-alone children (bytes): enough for any honest file
#: here, and far below the machine, so an allocation bomb fails in the child.
CALAMINE_AS_LIMIT = 4 * 1024 * MB


def _rss_mb() -> float:
    """This process's peak resident set so far, in MiB (ru_maxrss is KiB on Linux)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def child_read(path: Path) -> dict[str, object]:
    """In a child: read one file as the nightly flow would, report what happened."""
    from flows.read import read_tables
    from flows.settings import Limits
    from schemas.records import SourceError

    content = path.read_bytes()
    base = _rss_mb()
    start = time.perf_counter()
    try:
        tables = read_tables(content, path.name, Limits())
        result = f"loaded {sum(len(t.rows) for t in tables):,} rows"
    except SourceError as exc:
        result = str(exc).removeprefix(f"{path.name}: ")
    return {
        "result": result,
        "seconds": time.perf_counter() - start,
        "base_mb": base,
        "peak_mb": _rss_mb(),
    }


def child_calamine(path: Path) -> dict[str, object]:
    """In a child: what python-calamine alone makes of the bytes (every sheet, as read.py
    would ask for them), under an address-space cap."""
    resource.setrlimit(resource.RLIMIT_AS, (CALAMINE_AS_LIMIT, CALAMINE_AS_LIMIT))
    import io

    from python_calamine import CalamineWorkbook

    content = path.read_bytes()
    base = _rss_mb()
    start = time.perf_counter()
    try:
        with CalamineWorkbook.from_filelike(io.BytesIO(content)) as wb:
            n = sum(len(wb.get_sheet_by_name(s).to_python()) for s in wb.sheet_names)
        result = f"read {n:,} rows"
    except Exception as exc:  # noqa: BLE001 - any outcome is the measurement
        result = f"{type(exc).__name__}: {str(exc).splitlines()[0][:60] if str(exc) else ''}"
    return {
        "result": result,
        "seconds": time.perf_counter() - start,
        "base_mb": base,
        "peak_mb": _rss_mb(),
    }


def write_corpus(folder: Path) -> list[tuple[str, Path]]:
    """Every case of the hostile corpus at the default limits, plus two large honest sheets."""
    import openpyxl

    from flows.settings import Limits
    from tests.hostile_files import corpus, with_sheet_xml

    cases = [(c.name, c.filename, c.content) for c in corpus(Limits())]
    wb = openpyxl.Workbook(write_only=True)
    ws = wb.create_sheet("S")
    ws.append([f"Câu {j}" for j in range(30)])
    for i in range(20_000):
        ws.append([f"29/10/2024 09:{i % 60:02d}:00", *(["Hài lòng", 4, "5A"] * 10)[:29]])
    big = folder / "large.xlsx"
    wb.save(big)
    large = big.read_bytes()
    blank = b'<c r="XFD1" t="inlineStr"><is><t> </t></is></c></row>'
    cases.append(("large_sheet", "large.xlsx", large))
    cases.append(
        (
            "large_sheet_blank_xfd1",
            "large_xfd1.xlsx",
            with_sheet_xml(large, lambda xml: xml.replace(b"</row>", blank, 1)),
        )
    )
    written = []
    for name, filename, content in cases:
        path = folder / f"{name}__{filename}"
        path.write_bytes(content)
        written.append((name, path))
    return written


def _num(value: object) -> float:
    return float(value) if isinstance(value, int | float | str) else float("nan")


def run_child(mode: str, path: Path) -> dict[str, object]:
    """Spawn a child reading ``path``; its report, or how it died."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, f"--child-{mode}", str(path)],
        capture_output=True,
        text=True,
        cwd=ROOT,
        timeout=600,
    )
    if done.returncode == 0 and done.stdout.strip():
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    why = f"killed by signal {-done.returncode}" if done.returncode < 0 else "crashed"
    last = (done.stderr.strip().splitlines() or [""])[0][:50]
    return {
        "result": f"{why} ({last})" if last else why,
        "seconds": time.perf_counter() - start,
        "base_mb": float("nan"),
        "peak_mb": float("nan"),
    }


def run_flow(folder: Path) -> tuple[int, float, float]:
    """``khaosat run`` over the end-to-end hostile province: exit code, seconds, peak MiB of the
    child and everything it reaped (the Prefect API server among them)."""
    config = folder / "province" / "khaosat.yaml"  # written by the corpus child
    khaosat = Path(sys.executable).with_name("khaosat")
    start = time.perf_counter()
    proc = subprocess.Popen(
        [str(khaosat), "run", "--config", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    # wait4, not Popen.wait: the child's own rusage, its reaped children included.
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, time.perf_counter() - start, usage.ru_maxrss / 1024


def _row(cells: list[str], widths: list[int]) -> str:
    return "  ".join(
        c.ljust(w) if i < 2 else c.rjust(w)
        for i, (c, w) in enumerate(zip(cells, widths, strict=True))
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bound-mb", type=float, default=512.0)
    parser.add_argument("--calamine", action="store_true", help="also calamine alone, capped")
    parser.add_argument("--flow", action="store_true", help="also khaosat run on the province")
    parser.add_argument("--keep", type=Path, help="write the corpus here and keep it")
    parser.add_argument("--child-read", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-calamine", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--child-corpus", type=Path, help=argparse.SUPPRESS)
    return parser


def child_corpus(folder: Path, flow: bool) -> None:
    """In a child: write the corpus and its list (cases.tsv) to ``folder``, and with ``flow``
    the end-to-end hostile province beside it."""
    written = write_corpus(folder)
    lines = [f"{name}\t{path}" for name, path in written]
    (folder / "cases.tsv").write_text("\n".join(lines), encoding="utf-8")
    if flow:
        from tests.hostile_files import make_hostile_province

        (folder / "province").mkdir(exist_ok=True)
        make_hostile_province(folder / "province")


def _corpus(folder: Path, flow: bool) -> list[tuple[str, Path]]:
    """The corpus written to ``folder`` by a child: each case's name and file."""
    # The corpus is built in a child too: Linux keeps ru_maxrss across fork and exec, so a
    # parent grown by building it would lend every child its own peak as a floor.
    subprocess.run(
        [sys.executable, __file__, "--child-corpus", str(folder), *(["--flow"] if flow else [])],
        check=True,
        cwd=ROOT,
    )
    return [
        (line.split("\t")[0], Path(line.split("\t")[1]))
        for line in (folder / "cases.tsv").read_text(encoding="utf-8").splitlines()
    ]


def _case_cells(name: str, path: Path, calamine: bool) -> tuple[list[str], float]:
    """A case's cells in the table, and how much reading it grew the child (MB)."""
    got = run_child("read", path)
    grown = _num(got["peak_mb"]) - _num(got["base_mb"])
    cells = [
        name,
        str(got["result"])[:58],
        f"{path.stat().st_size:,}",
        f"{_num(got['seconds']):.2f}",
        f"{_num(got['base_mb']):.0f}",
        f"{_num(got['peak_mb']):.0f}",
        f"{grown:.0f}",
    ]
    if calamine:
        raw = run_child("calamine", path)
        cells += [
            str(raw["result"])[:40],
            f"{_num(raw['seconds']):.2f}",
            f"{_num(raw['peak_mb']):.0f}",
        ]
    return cells, grown


def _report(cases: list[tuple[str, Path]], calamine: bool) -> float:
    """Read every case in a child of its own, print the table; the largest growth (MB)."""
    head = ["case", "read_tables", "bytes", "s", "base MB", "peak MB", "+MB"]
    widths = [24, 58, 11, 6, 8, 8, 7]
    if calamine:
        head += ["calamine alone", "s", "peak MB"]
        widths += [40, 6, 8]
    print(_row(head, widths))
    worst = 0.0
    for name, path in cases:
        cells, grown = _case_cells(name, path, calamine)
        worst = max(worst, grown)
        print(_row(cells, widths), flush=True)
    return worst


def main() -> int:
    """Measure every case (or, with a hidden ``--child-*`` option, be one of the children);
    1 if a case grew beyond the bound."""
    args = _parser().parse_args()
    if args.child_read:
        print(json.dumps(child_read(args.child_read)))
        return 0
    if args.child_calamine:
        print(json.dumps(child_calamine(args.child_calamine)))
        return 0
    if args.child_corpus:
        child_corpus(args.child_corpus, args.flow)
        return 0

    folder = args.keep or Path(tempfile.mkdtemp(prefix="khaosat-hostile-"))
    folder.mkdir(parents=True, exist_ok=True)
    worst = _report(_corpus(folder, args.flow), args.calamine)
    print(f"\nlargest growth over the imports: {worst:.0f} MB (bound {args.bound_mb:.0f} MB)")
    if args.flow:
        code, seconds, peak = run_flow(folder)
        print(f"khaosat run, hostile province: exit {code}, {seconds:.1f} s, peak {peak:.0f} MB")
    if not args.keep:
        import shutil

        shutil.rmtree(folder, ignore_errors=True)
    return 1 if worst > args.bound_mb else 0


if __name__ == "__main__":
    sys.exit(main())
