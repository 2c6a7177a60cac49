"""The performance harness itself runs: benchmarks/ is how speed is measured and recorded, so a
change to a step's signature that breaks it fails here, not on the next night of measuring."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCHMARKS = Path(__file__).resolve().parents[2] / "benchmarks"

pytestmark = pytest.mark.slow


def _run(script: str, *args: str) -> str:
    done = subprocess.run(  # noqa: S603 - our interpreter and our scripts
        [sys.executable, str(BENCHMARKS / script), *args],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return done.stdout


def test_the_runner_and_the_step_profile_measure_a_small_province(tmp_path: Path) -> None:
    """run.py measures the baseline, a full run and a no-change re-run of a generated province
    and finds the same figures; profile_steps.py times every step of the same province."""
    out = tmp_path / "run.json"
    printed = _run(
        "run.py", "--schools", "3", "--responses", "20", "--repeat", "1",
        "--work", str(tmp_path), "--json", str(out),
    )  # fmt: skip
    assert "baseline/khaosat" in printed
    measured = json.loads(out.read_text(encoding="utf-8"))
    assert measured["figures"].startswith("same figures")
    full, again = measured["results"]["sqlite"][0], measured["results"]["sqlite-rerun"][0]
    assert full["statuses"] == {"loaded": 3, "unchanged": 0, "failed": 0}
    assert again["statuses"] == {"loaded": 0, "unchanged": 3, "failed": 0}
    marks = full["marks"]
    assert marks["prepare:start"] < marks["parse:end"] <= marks["load:end"] < marks["workbooks:end"]

    config = next(tmp_path.glob("province-3x20/khaosat.yaml"))
    steps = json.loads(_run("profile_steps.py", str(config)).strip().splitlines()[-1])
    assert steps["sources"] == 3
    assert steps["responses"] == 60
    assert {"read", "parse", "validate", "load", "marts", "workbooks"} <= steps.keys()
