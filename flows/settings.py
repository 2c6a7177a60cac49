"""Settings: khaosat.yaml plus environment overrides, read in this one place and passed in.

Environment variables are ``KHAOSAT_<SECTION>__<KEY>`` (``KHAOSAT_WAREHOUSE__URL``,
``KHAOSAT_GSHEETS__CREDENTIALS``); ``KHAOSAT_WAREHOUSE_URL`` is accepted as well. Relative paths
are relative to the config file.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)

from schemas.campaign import DEFAULT_TIMEZONE, Campaign


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid")


class Registry(_Section):
    """khaosat.yaml ``registry``: where schools.csv and sources.csv are, and the folders file
    sources may be read from besides the campaign's (``Settings.source_folders``)."""

    schools: Path
    sources: Path
    #: folders outside the campaign folder whose files sources.csv may name (relative to the
    #: config); any other path outside it fails its source without being opened.
    allowed_folders: list[Path] = Field(default_factory=list)


class Warehouse(_Section):
    """khaosat.yaml ``warehouse``: the SQLAlchemy URL (written plainly or as ``url:``)."""

    #: SQLAlchemy URL; default an SQLite file beside the config.
    url: str | None = None


class GSheets(_Section):
    """Google Sheets sources: the service-account key, the API root and the quotas."""

    credentials: Path | None = None
    #: API root; Sheets calls go to {endpoint}/v4/..., Drive to {endpoint}/drive/v3/...
    endpoint: str = "https://sheets.googleapis.com"
    #: Sheets reads across the whole run (Google's default quota is 60 per minute per user).
    requests_per_minute: int = Field(default=55, ge=1)
    drive_requests_per_minute: int = Field(default=600, ge=1)
    #: 429 and 5xx answers are retried with exponential backoff and jitter, within both bounds.
    retry_max_retries: int = Field(default=6, ge=0)
    retry_base_seconds: float = Field(default=1.0, ge=0)
    retry_max_sleep_seconds: float = Field(default=32.0, ge=0)
    retry_max_total_seconds: float = Field(default=180.0, ge=0)


class Run(_Section):
    """khaosat.yaml ``run``: how a night is carried out (concurrency, processes, schedule)."""

    #: sources processed at once (threads, or Dask tasks in flight).
    concurrency: int = 4
    #: sources fetched, parsed, validated and loaded together; memory holds at most two
    #: batches, however many schools the province has.
    batch_sources: int = Field(default=200, ge=1)
    #: processes that read and parse submissions beside the flow (0: in the flow's threads;
    #: default: one per CPU but one). Not used with the Dask task runner (its workers are
    #: processes already).
    parse_processes: int | None = Field(default=None, ge=0)
    #: processes that load sources into the warehouse beside the flow (0: in the flow's
    #: thread; default: one on SQLite, which takes one writer at a time, one per CPU on
    #: PostgreSQL). Not used with the Dask task runner.
    load_processes: int | None = Field(default=None, ge=0)
    #: "threads" (default, in-process) or "dask" (an existing Dask cluster at dask_address).
    task_runner: Literal["threads", "dask"] = "threads"
    dask_address: str | None = None
    #: a second run of the same campaign waits this long for the first to finish, then exits.
    lock_wait_seconds: float = 0
    #: nightly schedule of `khaosat serve` (cron, in timezone).
    cron: str = "30 1 * * *"
    timezone: str = DEFAULT_TIMEZONE
    #: where raw submissions are archived by content hash.
    archive: Path = Path("archive")


class Notify(_Section):
    """Optional e-mail when a run fails or finishes with failed sources."""

    smtp_host: str | None = None
    smtp_port: int = 25
    smtp_user: str | None = None
    #: a SecretStr: never shown by repr, str or a settings dump (logs, errors, digests).
    smtp_password: SecretStr | None = None
    smtp_starttls: bool = False
    sender: str = "khaosat@localhost"
    recipients: list[str] = Field(default_factory=list)

    @field_validator("recipients", mode="before")
    @classmethod
    def _split(cls, value: Any) -> Any:
        # KHAOSAT_NOTIFY__RECIPIENTS="a@x.vn, b@x.vn" from a cron environment
        if isinstance(value, str):
            return [v.strip() for v in value.split(",") if v.strip()]
        return value


class Limits(_Section):
    """Bounds on one source, so one hostile upload cannot exhaust the machine."""

    max_file_bytes: int = 50_000_000
    max_uncompressed_bytes: int = 300_000_000
    #: honest LibreOffice files of repetitive answers reach ~200:1; zip bombs go far beyond,
    #: and unpacking is bounded by max_uncompressed_bytes anyway.
    max_compression_ratio: float = 1000.0
    max_rows: int = 200_000
    max_cells: int = 5_000_000
    #: a source file not read within this many seconds (a stalled disk or network mount)
    #: fails that source; the night goes on.
    read_seconds: float = Field(default=60.0, gt=0)
    #: characters one CSV cell may hold (a comment); a longer one fails the file, naming the cell.
    max_cell_chars: int = Field(default=1_000_000, gt=0)


class Settings(_Section):
    """Everything a run needs, resolved: paths absolute, overrides applied."""

    config_path: Path
    campaign: Campaign
    registry: Registry
    warehouse: Warehouse = Warehouse()
    output: Path = Path("output")
    thresholds: dict[str, float] = Field(default_factory=dict)
    schemas_dir: Path | None = None
    gsheets: GSheets = GSheets()
    run: Run = Run()
    notify: Notify = Notify()
    limits: Limits = Limits()
    #: Vietnamese follow-up action per alert rule or dimension, overriding the built-in ones.
    actions: dict[str, str] = Field(default_factory=dict)

    @property
    def base_dir(self) -> Path:
        """The folder of khaosat.yaml: relative paths are relative to it."""
        return self.config_path.parent

    @property
    def warehouse_url(self) -> str:
        """The warehouse's SQLAlchemy URL (default: khaosat.sqlite beside the config)."""
        if self.warehouse.url:
            return self.warehouse.url
        return f"sqlite:///{self.base_dir / 'khaosat.sqlite'}"

    @property
    def source_folders(self) -> tuple[Path, ...]:
        """The folders file sources must resolve into (symbolic links followed): the
        campaign folder, the folder of sources.csv, and ``registry.allowed_folders``."""
        folders = (self.base_dir, self.registry.sources.parent, *self.registry.allowed_folders)
        return tuple(dict.fromkeys(Path(os.path.realpath(f)) for f in folders))

    @property
    def archive_dir(self) -> Path:
        """Where fetched submissions are kept by content hash (``run.archive``)."""
        return self.run.archive


class SettingsError(ValueError):
    """khaosat.yaml cannot be used; the message names the file and the field."""


def _env_value(text: str) -> Any:
    """An environment value as YAML would read it (numbers, booleans, lists), else the text."""
    try:
        value = yaml.safe_load(text)
    except yaml.YAMLError:
        return text
    return value if isinstance(value, int | float | bool | list) else text


def _env_overrides(env: Mapping[str, str]) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    if "KHAOSAT_WAREHOUSE_URL" in env:
        out.setdefault("warehouse", {})["url"] = env["KHAOSAT_WAREHOUSE_URL"]
    for name, value in env.items():
        if not name.startswith("KHAOSAT_") or "__" not in name:
            continue
        section, _, key = name[len("KHAOSAT_") :].partition("__")
        out.setdefault(section.lower(), {})[key.lower()] = _env_value(value)
    return out


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def load_settings(config_path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read khaosat.yaml, apply ``KHAOSAT_*`` overrides from ``env`` (default os.environ)."""
    env = os.environ if env is None else env
    config_path = config_path.resolve()
    try:
        raw: Any = yaml.safe_load(config_path.read_text(encoding="utf-8")) or {}
    except OSError as exc:
        raise SettingsError(f"{config_path}: cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        raise SettingsError(f"{config_path}: not valid YAML: {exc}") from exc
    if not isinstance(raw, dict):
        raise SettingsError(f"{config_path}: expected a mapping at the top level")
    for section, values in _env_overrides(env).items():
        current = raw.get(section)
        if isinstance(current, dict) or current is None:
            raw[section] = {**(current or {}), **values}
        else:  # a scalar section such as `output`
            raw[section] = next(iter(values.values()))
    raw["config_path"] = config_path
    try:
        s = Settings.model_validate(raw)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise SettingsError(f"{config_path}: field {where}: {first['msg']}") from exc
    base = config_path.parent
    return s.model_copy(
        update={
            "registry": Registry(
                schools=_resolve(base, s.registry.schools),
                sources=_resolve(base, s.registry.sources),
                allowed_folders=[_resolve(base, f) for f in s.registry.allowed_folders],
            ),
            "output": _resolve(base, s.output),
            "schemas_dir": _resolve(base, s.schemas_dir) if s.schemas_dir else None,
            "run": s.run.model_copy(update={"archive": _resolve(base, s.run.archive)}),
            "gsheets": s.gsheets.model_copy(
                update={
                    "credentials": _resolve(base, s.gsheets.credentials)
                    if s.gsheets.credentials
                    else None
                }
            ),
        }
    )


#: Defaults for Prefect's own environment: no telemetry from an offline department server, a
#: patient start for the temporary local API, and Prefect's chatter kept out of the officer's
#: terminal. Anything already set in the environment wins.
PREFECT_DEFAULTS = {
    "DO_NOT_TRACK": "1",
    "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
    "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "60",
    "PREFECT_LOGGING_LEVEL": "WARNING",
}


#: For one run without a Prefect server (``khaosat run``, ``rerun``, ``publish``, ``demo``):
#: the temporary API Prefect starts stops with the run, so nobody can browse its task runs,
#: event feed or automations; recording them took the API as much CPU as loading a
#: 1,000-school province (benchmarks/README.md). The flow run is still recorded, and each
#: source's outcome is in the warehouse's ledger (``khaosat status``). A Prefect server of
#: one's own (PREFECT_API_URL) is unaffected: these settings are read only by a server this
#: process starts. Setting any of them in the environment overrides it.
TEMPORARY_API_DEFAULTS = {
    "PREFECT_SERVER_SERVICES_TASK_RUN_RECORDER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_EVENT_PERSISTER_ENABLED": "false",
    "PREFECT_SERVER_SERVICES_TRIGGERS_ENABLED": "false",
    # Nor does it register Prefect's block types as it boots (that imports every installed
    # Prefect collection to find them, Dask's among them); the flows use no blocks, and a block
    # saved through it registers its own type.
    "PREFECT_SERVER_REGISTER_BLOCKS_ON_START": "false",
    "PREFECT_SERVER_MEMOIZE_BLOCK_AUTO_REGISTRATION": "false",
}


def apply_prefect_defaults(*, one_run: bool = False) -> None:
    """Set PREFECT_DEFAULTS where unset, and TEMPORARY_API_DEFAULTS for ``one_run`` (a
    command that runs once and exits, not ``khaosat serve``); call before Prefect is
    imported."""
    defaults = {**PREFECT_DEFAULTS, **(TEMPORARY_API_DEFAULTS if one_run else {})}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
