"""Benchmark khaosat against the naive pandas baseline, side by side in one run.

    python benchmarks/run.py --schools 100 [--responses 250] [--repeat 2] [--postgres URL|auto]

Each repeat runs, one child process after the other (the order alternating): the baseline
(benchmarks/baseline.py) into a fresh SQLite file; khaosat's full nightly run on a fresh SQLite
warehouse, then the no-change re-run; with ``--postgres``, the same on a fresh PostgreSQL
database. Wall time runs from spawning a child to reaping it; peak memory is its ``ru_maxrss``
(reaped children included) and the sampled sum of its process tree; stage times come from the
child, which wraps the flow's steps with timers. ``--profile`` adds a run under pyinstrument,
``--prefect-overhead N`` N sources × 3 no-op tasks through the same runner and API.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from pathlib import Path
from typing import Any, NoReturn

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

PYTHON = sys.executable
HERE = Path(__file__).resolve().parent
STAGES = (
    "fetch",
    "parse",
    "validate",
    "load",
    "marts",
    "alerts",
    "comments",
    "workbooks",
    "feedback",
    "report",
)


# ------------------------------------------------------------------------------------------
# Child processes


def spawn(args: list[str], env: dict[str, str] | None = None, cwd: Path = ROOT) -> dict[str, Any]:
    """Run a child in ``cwd``; its wall time, peak RSS (MB), exit code and the JSON it printed
    last."""
    out = tempfile.TemporaryFile()
    err = tempfile.TemporaryFile()
    started = time.perf_counter()
    proc = subprocess.Popen(args, stdout=out, stderr=err, env=env, cwd=cwd)  # noqa: S603
    tree = _TreeMemory(proc.pid)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    tree.stop()
    proc.returncode = os.waitstatus_to_exitcode(status)
    out.seek(0)
    err.seek(0)
    text = out.read().decode("utf-8", "replace")
    payload: dict[str, Any] = {}
    for line in reversed(text.splitlines()):
        if line.startswith("{"):
            payload = json.loads(line)
            break
    if proc.returncode not in (0, 1) or not payload:
        tail = err.read().decode("utf-8", "replace")[-3000:]
        raise RuntimeError(
            f"{' '.join(args[:3])} exited {proc.returncode}:\n{tail}\n{text[-2000:]}"
        )
    return {
        "wall": wall,
        "rss_mb": usage.ru_maxrss / 1024,
        "tree_rss_mb": tree.peak_mb,
        "cpu_seconds": tree.cpu_seconds,
        "exit": proc.returncode,
        **payload,
    }


class _TreeMemory:
    """The peak of the summed RSS of a process and all its descendants, sampled every 0.2 s,
    and the CPU seconds each of them used, by role.

    ``ru_maxrss`` of a reaped child is the largest single process of its tree, not their sum:
    with parse and load processes beside the flow, the machine holds the sum. Sampling can miss
    a peak shorter than the interval, and the last 0.2 s of a process's CPU. On 2 cores the
    CPU seconds say where the time goes once every core is busy: the wall time is then about
    their sum over the cores.
    """

    def __init__(self, pid: int) -> None:
        self.peak_mb = 0.0
        self._cpu: dict[int, tuple[str, float]] = {}
        self._done = threading.Event()
        self._thread = threading.Thread(target=self._watch, args=(pid,), daemon=True)
        self._thread.start()

    @property
    def cpu_seconds(self) -> dict[str, float]:
        """CPU seconds (user + system) by role: flow, worker processes, Prefect API, other."""
        roles: dict[str, float] = {}
        for role, seconds in self._cpu.values():
            roles[role] = roles.get(role, 0.0) + seconds
        return roles

    @staticmethod
    def _role(p: Any, root_pid: int) -> str:
        if p.pid == root_pid:
            return "flow process"
        line = " ".join(p.cmdline())
        if "uvicorn" in line or "prefect.server" in line:
            return "Prefect API"
        if "multiprocessing.forkserver" in line and "main(" in line and p.ppid() != root_pid:
            return "parse and load processes"
        return "other (forkserver, postgres, ...)"

    def _watch(self, pid: int) -> None:
        import psutil

        try:
            root = psutil.Process(pid)
        except psutil.Error:
            return
        while not self._done.wait(0.2):
            total = 0
            try:
                for p in [root, *root.children(recursive=True)]:
                    with contextlib.suppress(psutil.Error):
                        total += p.memory_info().rss
                        times = p.cpu_times()
                        known = self._cpu.get(p.pid)
                        role = known[0] if known else self._role(p, pid)
                        self._cpu[p.pid] = (role, times.user + times.system)
            except psutil.Error:
                return
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> None:
        self._done.set()
        self._thread.join()


#: The flow's step functions the child times, as (stage, module attribute): the flows call
#: these module globals (nightly, batches, publishing), so wrapping them times each step
#: without touching flows/pipeline (build_marts and publish_workbooks stay tasks).
TIMED_STEPS = (
    ("prepare", "prepare"),
    ("fetch", "unchanged_files"),
    ("parse", "collect_ingested"),
    ("validate", "validate_staged"),
    ("load", "load_all"),
    ("load", "finish_loads"),
    ("marts", "build_marts"),
    ("alerts", "raise_alerts"),
    ("comments", "finish_comment_mart"),
    ("workbooks", "publish_workbooks"),
    ("feedback", "publish_feedback"),
    ("report", "finish_report"),
)


class _StepTimer:
    """Seconds per stage of the flow's steps, summed over their calls and threads, and when
    each stage first started and last ended (``marks``)."""

    def __init__(self) -> None:
        self.stages: dict[str, float] = {}
        self.marks: dict[str, float] = {}
        self._lock = threading.Lock()

    def install(self, modules: tuple[Any, ...]) -> None:
        """Wrap every step of ``TIMED_STEPS`` found in ``modules`` with a timer."""
        for name, attr in TIMED_STEPS:
            for module in modules:
                if hasattr(module, attr):  # steps appear as the flow grows
                    setattr(module, attr, self._timed(name, getattr(module, attr)))

    def _timed(self, name: str, fn: Any) -> Any:
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            started = time.perf_counter()
            self.marks.setdefault(f"{name}:start", started)
            try:
                return fn(*args, **kwargs)
            finally:
                end = time.perf_counter()
                self.marks[f"{name}:end"] = end
                with self._lock:
                    self.stages[name] = self.stages.get(name, 0.0) + end - started

        return wrapper


def _start_profiler() -> Any:
    from pyinstrument import Profiler

    profiler = Profiler(interval=0.005, async_mode="disabled")
    profiler.start()
    return profiler


def _write_profile(profiler: Any, prefix: str) -> None:
    profiler.stop()
    Path(prefix + ".txt").write_text(
        profiler.output_text(unicode=True, color=False, show_all=False), encoding="utf-8"
    )
    Path(prefix + ".html").write_text(profiler.output_html(), encoding="utf-8")


def child_khaosat(config: str, profile: str | None) -> int:
    """Run the nightly flow once in this process; print stage times and counts as JSON."""
    import_started = time.perf_counter()
    from flows.pipeline.prefect_api import start_temporary_api
    from flows.pipeline.processes import long_lived_imports
    from flows.settings import load_settings

    api = start_temporary_api()  # as `khaosat run` does
    with long_lived_imports():
        from flows.pipeline import batches, context, nightly, publishing

    imported = time.perf_counter() - import_started
    timer = _StepTimer()
    timer.install((nightly, batches, publishing))
    settings = load_settings(Path(config))
    profiler = _start_profiler() if profile else None
    ahead = time.perf_counter()
    context.read_ahead(settings)  # as `khaosat run` does, while the API boots
    waiting = time.perf_counter()
    with api.serving():
        flow_started = time.perf_counter()
        summary = nightly.run(settings)
        returned = time.perf_counter()
    # Before the flow body (the flow run created) and after it (the flow run finishing).
    marks = timer.marks
    last_end = max((v for k, v in marks.items() if k.endswith(":end")), default=returned)
    if profiler is not None and profile:
        _write_profile(profiler, profile)
    statuses = ("loaded", "unchanged", "failed")
    report = {
        "imports": imported,
        "read_ahead": waiting - ahead,
        "api_wait": flow_started - waiting,
        "flow": returned - flow_started,
        "flow_startup": marks.get("prepare:start", flow_started) - flow_started,
        "flow_teardown": returned - last_end,
        "stages": timer.stages,
        "marks": {k: v - flow_started for k, v in sorted(marks.items(), key=lambda kv: kv[1])},
        "published": summary.published,
        "statuses": {status: summary.count(status) for status in statuses},
        "n_sources": len(summary.outcomes),
        "warehouse_url": settings.warehouse_url,
        "exit_code": summary.exit_code,
    }
    print(json.dumps(report, default=str))
    return 0


def child_prefect_overhead(n_sources: int, concurrency: int) -> int:
    """N × 3 no-op tasks (fetch, parse, load pattern) under the flow's runner and API."""
    from flows.pipeline.prefect_api import start_temporary_api

    api = start_temporary_api()  # as `khaosat run` does
    from prefect import flow, task
    from prefect.cache_policies import NONE
    from prefect.futures import as_completed
    from prefect.task_runners import ThreadPoolTaskRunner

    @task(name="noop", cache_policy=NONE)
    def noop(x: int) -> int:
        return x

    timings: dict[str, float] = {}

    @flow(name="overhead", log_prints=False)
    def overhead(n: int) -> None:
        for stage in ("fetch", "parse", "load"):
            t = time.perf_counter()
            futures = [noop.submit(i) for i in range(n)]
            for f in as_completed(futures):
                f.result()
            timings[stage] = time.perf_counter() - t

    runner: Any = ThreadPoolTaskRunner(max_workers=concurrency)
    t = time.perf_counter()
    with api.serving():
        overhead.with_options(task_runner=runner)(n_sources)
    total = time.perf_counter() - t
    tasks = 3 * n_sources
    in_tasks = sum(timings.values())
    print(
        json.dumps(
            {
                "tasks": tasks,
                "flow": total,
                "stages": timings,
                "ms_per_task": 1000 * in_tasks / tasks,
                "startup": total - in_tasks,
            }
        )
    )
    return 0


# ------------------------------------------------------------------------------------------
# PostgreSQL


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Cluster:
    """A throwaway PostgreSQL cluster (the logic of tests/conftest.py, for the benchmark)."""

    def __init__(self) -> None:
        import glob

        def pg_bin(name: str) -> str:
            found = (
                shutil.which(name)
                or (sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"))[-1:] or [None])[0]
            )
            if not found:
                raise RuntimeError(f"no {name}: install PostgreSQL or pass --postgres URL")
            return found

        initdb, self.pg_ctl = pg_bin("initdb"), pg_bin("pg_ctl")
        self.prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        self.root = Path(tempfile.mkdtemp(prefix="khaosat-bench-pg-"))
        if self.prefix:
            shutil.chown(self.root, user="postgres")
        self.data = self.root / "data"
        port = _free_port()
        # Production-like durability settings are the server's business; these match the
        # test cluster (no fsync) so the benchmark measures khaosat, not this machine's disk.
        options = (
            f"-c listen_addresses=127.0.0.1 -p {port} -k {self.root} "
            "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
        )
        self._run(initdb, "-D", str(self.data), "-U", "postgres", "-A", "trust", "-E", "UTF8")
        self._run(
            self.pg_ctl,
            "-D",
            str(self.data),
            "-l",
            str(self.root / "log"),
            "-w",
            "-o",
            options,
            "start",
        )
        self.url = f"postgresql://postgres@127.0.0.1:{port}/postgres"

    def _run(self, *args: str) -> None:
        done = subprocess.run(  # noqa: S603
            [*self.prefix, *args], capture_output=True, text=True, timeout=120
        )
        if done.returncode != 0:
            raise RuntimeError(f"{args[0]} failed: {done.stderr.strip() or done.stdout.strip()}")

    def stop(self) -> None:
        """Stop the server and delete its files."""
        try:
            self._run(self.pg_ctl, "-D", str(self.data), "-m", "immediate", "stop")
        finally:
            shutil.rmtree(self.root, ignore_errors=True)


def _pg_database(admin_url: str, name: str, drop: bool = False) -> str:
    import sqlalchemy as sa
    from sqlalchemy.engine import make_url

    url = make_url(admin_url).set(drivername="postgresql+psycopg")
    admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        if drop:
            conn.exec_driver_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        else:
            conn.exec_driver_sql(f'CREATE DATABASE "{name}"')
    admin.dispose()
    return make_url(admin_url).set(database=name).render_as_string(hide_password=False)


# ------------------------------------------------------------------------------------------
# The benchmark


def run_dir(work: Path, province: Path, name: str, warehouse_url: str | None) -> Path:
    """A fresh folder with its own config, warehouse, archive and output, over the province."""
    from benchmarks.generate import config_text

    run = work / "runs" / name
    shutil.rmtree(run, ignore_errors=True)
    run.mkdir(parents=True)
    url = warehouse_url or f"sqlite:///{run / 'khaosat.sqlite'}"
    text = (
        config_text(url)
        .replace("schools: schools.csv", f"schools: {province / 'schools.csv'}")
        .replace("sources: sources.csv", f"sources: {province / 'sources.csv'}")
    )
    (run / "khaosat.yaml").write_text(text, encoding="utf-8")
    return run


def khaosat(
    run: Path,
    profile: str | None = None,
    tree: Path = ROOT,
    extra_env: dict[str, str] | None = None,
) -> dict[str, Any]:
    """khaosat's nightly run over ``run``'s config, in a child of its own running ``tree``'s
    code (its benchmarks/run.py, importing from ``tree``) with ``extra_env`` added to the
    environment: what the child reported, and what it left in the warehouse."""
    args = [
        PYTHON,
        str(tree / "benchmarks" / "run.py"),
        "--child-khaosat",
        str(run / "khaosat.yaml"),
    ]
    if profile:
        args += ["--child-profile", profile]
    env = {**os.environ, "PYTHONPATH": str(tree), **(extra_env or {})}
    env.pop("KHAOSAT_WAREHOUSE_URL", None)
    result = spawn(args, env, cwd=tree)
    result.update(_warehouse_facts(result.pop("warehouse_url")))
    return result


#: The mart both runs end with, khaosat's and the baseline's (same columns), for comparing.
_MART_UNIT_DIMENSION = (
    "SELECT unit_code, level, questionnaire, dimension, n_schools, n_answers, "
    "mean_score, pct_satisfied, pct_dissatisfied FROM mart_unit_dimension"
)


def _warehouse_facts(url: str) -> dict[str, Any]:
    """What the run left in its warehouse: counts and the unit × dimension mart. Read here,
    after the run's process has exited, so the reading is not part of its time."""
    from warehouse.db import connect

    engine = connect(url)
    with engine.connect() as conn:
        facts = {
            "n_responses": conn.exec_driver_sql("SELECT count(*) FROM response").scalar_one(),
            "n_answers": conn.exec_driver_sql("SELECT count(*) FROM answer").scalar_one(),
            "mart_unit_dimension": [tuple(r) for r in conn.exec_driver_sql(_MART_UNIT_DIMENSION)],
        }
    engine.dispose()
    return facts


def _baseline(province: Path, work: Path) -> dict[str, Any]:
    db = work / "baseline.sqlite"
    return spawn([PYTHON, str(HERE / "baseline.py"), str(province), "--db", str(db)])


def _compare_figures(khaosat: dict[str, Any], work: Path) -> str:
    """Whether khaosat's mart_unit_dimension agrees with the baseline's (likert dimensions)."""
    import sqlite3

    con = sqlite3.connect(work / "baseline.sqlite")
    base = {tuple(r[:4]): r[4:] for r in con.execute(_MART_UNIT_DIMENSION)}
    con.close()
    ours = {tuple(r[:4]): r[4:] for r in khaosat["mart_unit_dimension"] if r[3] != "MONG_DOI"}
    if set(base) != set(ours):
        return f"DIFFERENT keys: {len(base)} baseline rows, {len(ours)} khaosat rows"
    worst = 0.0
    for key, b in base.items():
        o = ours[key]
        if int(b[0]) != int(o[0]) or int(b[1]) != int(o[1]):
            return f"DIFFERENT counts at {key}: baseline {b}, khaosat {o}"
        worst = max(worst, *(abs(float(x) - float(y)) for x, y in zip(b[2:], o[2:], strict=True)))
    return f"same figures ({len(base)} unit × dimension rows, max difference {worst:.1e})"


def _fmt_stages(result: dict[str, Any]) -> list[str]:
    stages = result["stages"]
    counts = {
        "fetch": (result["n_sources"], "sources"),
        "parse": (result["n_responses"], "responses"),
        "validate": (result["n_answers"], "answers"),
        "load": (result["n_answers"], "answers"),
        "marts": (result["n_answers"], "answers"),
    }
    lines = []
    accounted = 0.0
    for stage in ("prepare", *STAGES):
        if stage not in stages:
            lines.append(f"    {stage:<10} n/a (no such step in the flow)")
            continue
        s = stages[stage]
        accounted += s
        n, unit = counts.get(stage, (0, ""))
        rate = f"{n / s:>12,.0f} {unit}/s" if n and s > 0 else ""
        lines.append(f"    {stage:<10} {s:8.2f} s {rate}")
    start = result["wall"] - accounted
    detail = f"imports {result['imports']:.1f} s"
    if "read_ahead" in result:
        detail += f", reading ahead {result['read_ahead']:.1f} s"
    if "api_wait" in result:
        detail += f", waiting for the temporary Prefect API {result['api_wait']:.1f} s"
    if "flow_startup" in result:
        detail += (
            f", flow start {result['flow_startup']:.1f} s, flow end {result['flow_teardown']:.1f} s"
        )
    lines.append(f"    {'other':<10} {start:8.2f} s ({detail}, interpreter, between steps)")
    return lines


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--schools", type=int, default=100)
    parser.add_argument("--responses", type=int, default=250)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--postgres", help="admin URL of a PostgreSQL server, or 'auto'")
    parser.add_argument("--work", type=Path, default=Path(tempfile.gettempdir()) / "khaosat-bench")
    parser.add_argument("--no-baseline", action="store_true", help="khaosat only")
    parser.add_argument("--no-sqlite", action="store_true", help="with --postgres: PostgreSQL only")
    parser.add_argument("--profile", action="store_true", help="one more run under pyinstrument")
    parser.add_argument("--prefect-overhead", type=int, default=0, metavar="N")
    parser.add_argument("--json", type=Path, help="write all measurements here")
    parser.add_argument("--child-khaosat", help=argparse.SUPPRESS)
    parser.add_argument("--child-profile", help=argparse.SUPPRESS)
    parser.add_argument("--child-overhead", type=int, help=argparse.SUPPRESS)
    return parser


def _child(args: argparse.Namespace) -> NoReturn:
    """Be one of the benchmark's children, and exit as the khaosat command does."""
    from flows.pipeline.processes import leave

    if args.child_khaosat:
        leave(child_khaosat(args.child_khaosat, args.child_profile))
    leave(child_prefect_overhead(args.child_overhead, 4))


def _arm_line(repeat: int, label: str, result: dict[str, Any]) -> str:
    """One line of the progress: wall time and peak memory of a child (and its outcomes)."""
    line = (
        f"[{repeat + 1}] {label:<13} {result['wall']:7.1f} s  {result['rss_mb']:6.0f} MB  "
        f"(tree {result['tree_rss_mb']:.0f} MB)"
    )
    return f"{line}  {result['statuses']}" if "statuses" in result else line


Results = dict[str, list[dict[str, Any]]]


def _khaosat_arms(
    repeat: int, backend: str, province: Path, work: Path, admin_url: str | None, results: Results
) -> None:
    """khaosat's full run on a fresh warehouse of ``backend``, then the no-change re-run."""
    db_name = None
    url = None
    if backend == "postgresql":
        assert admin_url is not None  # the backend is only chosen with a URL
        db_name = f"khaosat_bench_{uuid.uuid4().hex[:8]}"
        url = _pg_database(admin_url, db_name)
    run = run_dir(work, province, f"{backend}-{repeat}", url)
    try:
        for key, label in ((backend, backend), (f"{backend}-rerun", f"{backend} re-run")):
            result = khaosat(run)
            results[key].append(result)
            print(_arm_line(repeat, label, result))
    finally:
        if db_name:
            assert admin_url is not None
            _pg_database(admin_url, db_name, drop=True)


def _repeats(
    args: argparse.Namespace, province: Path, work: Path, backends: list[str], admin_url: str | None
) -> tuple[Results, str]:
    """Every repeat, baseline and khaosat in alternating order; the results by arm, and how
    khaosat's figures compare with the baseline's."""
    results: Results = {"baseline": []}
    for backend in backends:
        results[backend] = []
        results[f"{backend}-rerun"] = []
    figures = ""
    for repeat in range(args.repeat):
        order = ["baseline", *backends]
        if repeat % 2:
            order.reverse()
        for what in order:
            if what != "baseline":
                _khaosat_arms(repeat, what, province, work, admin_url, results)
            elif not args.no_baseline:
                result = _baseline(province, work)
                results["baseline"].append(result)
                print(_arm_line(repeat, "baseline", result))
        if not figures and results["baseline"] and backends and results[backends[0]]:
            figures = _compare_figures(results[backends[0]][-1], work)
    return results, figures


def _profile_run(work: Path, province: Path, name: str) -> None:
    """One more khaosat run, under pyinstrument; its reports go beside the results."""
    run = run_dir(work, province, "profile", None)
    prefix = str(work / f"profile-{name}")
    result = khaosat(run, profile=prefix)
    print(f"profile: {prefix}.txt / .html (run took {result['wall']:.1f} s)")


def _median(results: Results, key: str, field: str = "wall") -> float:
    if not results.get(key):
        return float("nan")
    return statistics.median(result[field] for result in results[key])


def _walls(results: list[dict[str, Any]]) -> str:
    return ", ".join(f"{result['wall']:.1f}" for result in results)


def _print_backend(backend: str, results: Results) -> None:
    """The medians of a backend's full and no-change runs, and the fastest full run's stages."""
    rerun = f"{backend}-rerun"
    ratio = float("nan")
    if results["baseline"]:
        ratio = _median(results, "baseline") / _median(results, backend)
    print(
        f"  khaosat {backend:<10} full run       {_median(results, backend):7.1f} s  "
        f"peak {_median(results, backend, 'rss_mb'):5.0f} MB"
        f" (tree {_median(results, backend, 'tree_rss_mb'):.0f})   [{_walls(results[backend])}]"
        f"  baseline/khaosat = {ratio:.2f}×"
    )
    print(
        f"  khaosat {backend:<10} no-change run  {_median(results, rerun):7.1f} s  "
        f"peak {_median(results, rerun, 'rss_mb'):5.0f} MB "
        f"(tree {_median(results, rerun, 'tree_rss_mb'):.0f})   [{_walls(results[rerun])}]"
    )
    best = min(results[backend], key=lambda result: result["wall"])
    print(f"  stages of the fastest {backend} full run:")
    for line in _fmt_stages(best):
        print(line)
    cpu = best.get("cpu_seconds", {})
    print(
        f"  CPU seconds of that run, {sum(cpu.values()):.1f} in all: "
        + ", ".join(f"{role} {sec:.1f}" for role, sec in sorted(cpu.items()))
    )


def _print_summary(
    args: argparse.Namespace,
    results: Results,
    backends: list[str],
    figures: str,
    overhead: dict[str, Any] | None,
) -> None:
    print()
    first = results[backends[0]][0] if backends and results[backends[0]] else None
    if first:
        print(
            f"{args.schools} schools, {first['n_sources']} sources, "
            f"{first['n_responses']:,} responses, {first['n_answers']:,} answers; "
            f"{args.repeat} repeat(s), medians; load average now {os.getloadavg()[0]:.2f}"
        )
    if results["baseline"]:
        print(
            f"  baseline (pandas+openpyxl+to_sql) {_median(results, 'baseline'):7.1f} s  "
            f"peak {_median(results, 'baseline', 'rss_mb'):5.0f} MB "
            f"(tree {_median(results, 'baseline', 'tree_rss_mb'):.0f})   "
            f"[{_walls(results['baseline'])}]"
        )
    for backend in backends:
        _print_backend(backend, results)
    if figures:
        print(f"  figures: {figures}")
    if overhead:
        stages = ", ".join(f"{k} {v:.1f} s" for k, v in overhead["stages"].items())
        print(
            f"  Prefect: {overhead['tasks']} no-op tasks, {overhead['ms_per_task']:.1f} ms each "
            f"(stages {stages}); flow start-up and teardown {overhead['startup']:.1f} s"
        )


def _write_json(
    args: argparse.Namespace, results: Results, figures: str, overhead: dict[str, Any] | None
) -> None:
    for arm in results.values():
        for result in arm:
            result.pop("mart_unit_dimension", None)
    args.json.write_text(
        json.dumps(
            {"args": vars(args), "results": results, "figures": figures, "overhead": overhead},
            default=str,
            indent=1,
        )
    )


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark as its options say (or, with a hidden ``--child-*`` option, one of
    its children) and print the comparison."""
    args = _parser().parse_args(argv)
    if args.child_khaosat or args.child_overhead:
        _child(args)

    from benchmarks.generate import generate

    work = args.work.resolve()
    name = f"{args.schools}x{args.responses}"
    province = work / f"province-{name}"
    started = time.perf_counter()
    generate(province, args.schools, args.responses)
    print(f"province {province} ready ({time.perf_counter() - started:.1f} s)")
    print(f"machine: {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.2f} at start")

    cluster = None
    admin_url = args.postgres
    if admin_url == "auto":
        cluster = Cluster()
        admin_url = cluster.url
    backends = ([] if args.no_sqlite else ["sqlite"]) + (["postgresql"] if admin_url else [])
    overhead = None
    try:
        results, figures = _repeats(args, province, work, backends, admin_url)
        if args.profile:
            _profile_run(work, province, name)
        if args.prefect_overhead:
            overhead = spawn(
                [PYTHON, str(HERE / "run.py"), "--child-overhead", str(args.prefect_overhead)],
                {**os.environ, "PYTHONPATH": str(ROOT)},
            )
    finally:
        if cluster is not None:
            cluster.stop()
    _print_summary(args, results, backends, figures, overhead)
    if args.json:
        _write_json(args, results, figures, overhead)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
