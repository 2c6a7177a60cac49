"""The archive: every fetched submission stored under ``archive/`` by its SHA-256.

Archived before anything else happens, so nothing fetched is ever lost, whatever parsing or
loading makes of it.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path


def fingerprint_of(content: bytes) -> str:
    """The fingerprint of a file's bytes, as the ledger records it and the archive names it:
    their SHA-256, in hex."""
    return hashlib.sha256(content).hexdigest()


def archive(content: bytes, archive_dir: Path, suffix: str, sighting: dict[str, str]) -> Path:
    """Store ``content`` under its SHA-256 (once) and note where and when it was seen.

    The sidecar ``<sha>.json`` lists every sighting (source, file name, modified time), so the
    archive answers "which school sent this, and when" without the warehouse.
    """
    digest = fingerprint_of(content)
    folder = archive_dir / digest[:2]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{digest}{suffix.lower()}"
    if not path.exists():
        tmp = path.with_suffix(path.suffix + ".part")
        tmp.write_bytes(content)
        os.replace(tmp, path)  # atomic: a crash never leaves a half-written archive entry
    meta_path = folder / f"{digest}.json"
    sightings = json.loads(meta_path.read_text(encoding="utf-8")) if meta_path.exists() else []
    if sighting not in sightings:
        sightings.append(sighting)
        tmp_meta = meta_path.with_suffix(".json.part")
        tmp_meta.write_text(json.dumps(sightings, ensure_ascii=False, indent=1), encoding="utf-8")
        os.replace(tmp_meta, meta_path)
    return path
