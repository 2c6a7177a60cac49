"""Settings: khaosat.yaml plus environment overrides, read in this one place and passed in.

Environment variables are ``KHAOSAT_<SECTION>__<KEY>`` (``KHAOSAT_WAREHOUSE__URL``,
``KHAOSAT_GSHEETS__CREDENTIALS``); ``KHAOSAT_WAREHOUSE_URL`` is accepted as well. Relative paths
are relative to the config file.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

import yaml
from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
)
from pydantic_core import ErrorDetails
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from schemas.campaign import DEFAULT_TIMEZONE, Campaign, check_timezone


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
    """khaosat.yaml ``warehouse``: the SQLAlchemy URL, written plainly (``warehouse: URL``) or
    as ``url:``; a relative SQLite path is relative to the config file."""

    #: SQLAlchemy URL; default an SQLite file beside the config.
    url: str | None = None

    @field_validator("url")
    @classmethod
    def _parses(cls, value: str | None) -> str | None:
        if value is not None:
            check_database_url(value)
        return value


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

    @field_validator("endpoint")
    @classmethod
    def _http(cls, value: str) -> str:
        return check_address(value, schemes=("http", "https"), example="https://host[:port]")


class Run(_Section):
    """khaosat.yaml ``run``: how a night is carried out (concurrency, processes, schedule)."""

    #: sources processed at once (threads, or Dask tasks in flight).
    concurrency: int = Field(default=4, ge=1)
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
    lock_wait_seconds: float = Field(default=0, ge=0)
    #: nightly schedule of `khaosat serve` (cron, in timezone).
    cron: str = "30 1 * * *"
    timezone: str = DEFAULT_TIMEZONE
    #: where raw submissions are archived by content hash.
    archive: Path = Path("archive")

    @field_validator("dask_address")
    @classmethod
    def _dask(cls, value: str | None) -> str | None:
        if value is None:
            return None
        # Dask takes a bare host:port as TCP.
        full = value if "://" in value else f"tcp://{value}"
        check_address(full, schemes=DASK_SCHEMES, example="tcp://host:8786")
        return value

    @field_validator("cron")
    @classmethod
    def _cron(cls, value: str) -> str:
        return check_cron(value)

    @field_validator("timezone")
    @classmethod
    def _zone(cls, value: str) -> str:
        return check_timezone(value)


class Notify(_Section):
    """Optional e-mail when a run fails or finishes with failed sources."""

    smtp_host: str | None = None
    smtp_port: int = Field(default=25, ge=1, le=65535)
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

    max_file_bytes: int = Field(default=50_000_000, ge=1)
    max_uncompressed_bytes: int = Field(default=300_000_000, ge=1)
    #: honest LibreOffice files of repetitive answers reach ~200:1; zip bombs go far beyond,
    #: and unpacking is bounded by max_uncompressed_bytes anyway.
    max_compression_ratio: float = Field(default=1000.0, ge=1)
    max_rows: int = Field(default=200_000, ge=1)
    max_cells: int = Field(default=5_000_000, ge=1)
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

    @field_validator("warehouse", mode="before")
    @classmethod
    def _plain_url(cls, value: Any) -> Any:
        # `warehouse: sqlite:///x.db`, as the contract reads, is the same as `url: ...`
        return {"url": value} if isinstance(value, str) else value

    thresholds: dict[str, float] = Field(default_factory=dict)
    schemas_dir: Path | None = None
    #: A folder of codebook YAML extending or overriding the built-in comment themes.
    codebook_dir: Path | None = None
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


# ------------------------------------------------------------------------------------------
# Checks of the values pydantic's types do not cover: URLs, addresses, cron
# ------------------------------------------------------------------------------------------

#: The schemes of a Dask scheduler address (distributed's comm backends).
DASK_SCHEMES = ("tcp", "tls", "ucx", "ws", "wss", "inproc")
_USERINFO = re.compile(r"(?<=://)[^/@]*@")


def _shown(url: str) -> str:
    """``url`` without the user and password it may carry, for a message."""
    return _USERINFO.sub("***@", url)


def check_database_url(url: str) -> str:
    """``url`` if SQLAlchemy can parse it and its port is 1–65535; else ValueError saying so
    (with any password left out)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        # SQLAlchemy parses the port with int(): "invalid literal for int() ..."
        why = "the port is not a number" if isinstance(exc, ValueError) else "it does not parse"
        raise ValueError(
            f"{_shown(url)!r} is not a database URL ({why}); expected "
            "dialect://user@host:port/database or sqlite:///path"
        ) from None
    if parsed.port is not None and not 1 <= parsed.port <= 65535:
        raise ValueError(f"{_shown(url)!r}: port {parsed.port} is not in 1-65535")
    return url


def sqlite_beside(base: Path, url: str | None) -> str | None:
    """``url`` with a relative SQLite file path made relative to ``base`` (the config's
    folder), not to whatever folder the command was started from; other URLs as they are."""
    if url is None:
        return None
    parsed = make_url(url)
    database = parsed.database
    if parsed.get_backend_name() != "sqlite" or not database or database == ":memory:":
        return url
    if database.startswith("file:") or Path(database).is_absolute():
        return url
    return parsed.set(database=str(base / database)).render_as_string(hide_password=False)


def check_address(url: str, *, schemes: tuple[str, ...], example: str) -> str:
    """``url`` if its scheme is one of ``schemes`` and it has a host and a valid port."""
    shown = _shown(url)
    split = urlsplit(url)
    if split.scheme not in schemes:
        raise ValueError(f"{shown!r} is not a {'/'.join(schemes)} address like {example}")
    try:
        port = split.port  # raises on a port that is not a number in 0-65535
    except ValueError:
        port = 0
    if not split.hostname or port == 0:
        raise ValueError(f"{shown!r} needs a host and a port 1-65535 (if any), like {example}")
    return url


_CRON_MACROS = ("@yearly", "@annually", "@monthly", "@weekly", "@daily", "@midnight", "@hourly")
_MONTHS = ("JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC")
_WEEKDAYS = ("SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT")
#: Each cron field: its name, its numbers' range and the words it takes besides numbers
#: (croniter's: month and weekday names, L for last, nW the weekday nearest day n, d#n).
_CRON_FIELDS = (
    ("minute", 0, 59, ()),
    ("hour", 0, 23, ()),
    ("day of month", 1, 31, ("L", "W", "LW")),
    ("month", 1, 12, _MONTHS),
    ("day of week", 0, 7, (*_WEEKDAYS, "L")),
)
_CRON_TOKEN = re.compile(r"(\d+)|([A-Za-z]+)")
_CRON_SHAPE = re.compile(r"^(\*|\?|[0-9A-Za-z]+(-[0-9A-Za-z]+)?(#[1-5])?)(/[1-9][0-9]*)?$")


def _cron_field_ok(field: str, low: int, high: int, words: tuple[str, ...]) -> bool:
    for part in field.split(","):
        if not _CRON_SHAPE.match(part):
            return False
        for number, word in _CRON_TOKEN.findall(part.split("/")[0].split("#")[0]):
            if number and not low <= int(number) <= high:
                return False
            if word and word.upper() not in words:
                return False
    return True


def check_cron(expr: str) -> str:
    """``expr`` if it reads as a five-field cron (or @daily and the like): each field ``*``,
    numbers in range, names, ranges, lists and steps; else ValueError naming the field."""
    fields = expr.split()
    if len(fields) == 1 and fields[0].lower() in _CRON_MACROS:
        return expr
    if len(fields) != 5:
        raise ValueError(
            f"{expr!r} is not a cron schedule: expected 5 fields (minute hour day month "
            'weekday), like "30 1 * * *"'
        )
    for field, (name, low, high, words) in zip(fields, _CRON_FIELDS, strict=True):
        if not _cron_field_ok(field, low, high, words):
            raise ValueError(
                f"{expr!r} is not a cron schedule: {name} {field!r} is not * or numbers "
                f"{low}-{high}{' or names' if words else ''} (lists, ranges and /steps allowed)"
            )
    return expr


class _ConfigLoader(yaml.SafeLoader):
    """YAML's safe loader without its timestamps: ``opens: 2024-02-30`` stays text, for the
    settings' own validation to reject it by field, rather than the YAML parser raising a bare
    "day is out of range for month" from inside itself."""


_ConfigLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != "tag:yaml.org,2002:timestamp"]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}


def _env_value(text: str) -> Any:
    """An environment value as YAML would read it (numbers, booleans, lists), else the text."""
    try:
        value = yaml.load(text, _ConfigLoader)  # noqa: S506 - a SafeLoader
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


#: Fields whose value is never repeated in a message (it may be a secret).
_SECRET_FIELDS = ("smtp_password", "smtp_user", "credentials")


def _field_error(config_path: Path, error: ErrorDetails) -> SettingsError:
    """One line for pydantic's first complaint: the file, the field, the value and what is
    allowed (a validator of ours says the value itself, with any password left out)."""
    where = ".".join(str(p) for p in error["loc"])
    message = error["msg"]
    if error["type"] == "value_error":
        message = message.removeprefix("Value error, ")
    elif error["loc"] and error["loc"][-1] not in _SECRET_FIELDS:
        value = error.get("input")
        if isinstance(value, str | int | float | bool):
            message = f"{value!r}: {message}"
    return SettingsError(f"{config_path}: field {where}: {message}")


def _resolve(base: Path, p: Path) -> Path:
    return p if p.is_absolute() else (base / p).resolve()


def load_settings(config_path: Path, env: Mapping[str, str] | None = None) -> Settings:
    """Read khaosat.yaml, apply ``KHAOSAT_*`` overrides from ``env`` (default os.environ)."""
    env = os.environ if env is None else env
    config_path = config_path.resolve()
    try:
        text = config_path.read_text(encoding="utf-8")
        raw: Any = yaml.load(text, _ConfigLoader) or {}  # noqa: S506 - a SafeLoader
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
        raise _field_error(config_path, exc.errors()[0]) from exc
    base = config_path.parent
    return s.model_copy(
        update={
            "registry": Registry(
                schools=_resolve(base, s.registry.schools),
                sources=_resolve(base, s.registry.sources),
                allowed_folders=[_resolve(base, f) for f in s.registry.allowed_folders],
            ),
            "warehouse": Warehouse(url=sqlite_beside(base, s.warehouse.url)),
            "output": _resolve(base, s.output),
            "schemas_dir": _resolve(base, s.schemas_dir) if s.schemas_dir else None,
            "codebook_dir": _resolve(base, s.codebook_dir) if s.codebook_dir else None,
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
}


def apply_prefect_defaults(*, one_run: bool = False) -> None:
    """Set PREFECT_DEFAULTS where unset, and TEMPORARY_API_DEFAULTS for ``one_run`` (a
    command that runs once and exits, not ``khaosat serve``); call before Prefect is
    imported."""
    defaults = {**PREFECT_DEFAULTS, **(TEMPORARY_API_DEFAULTS if one_run else {})}
    for name, value in defaults.items():
        os.environ.setdefault(name, value)
    # The flow run's own lines (get_run_logger, at INFO) reach the run's page in Prefect's UI,
    # while the console shows only what PREFECT_LOGGING_LEVEL lets through, as it did; task
    # runs stay at that level, so that no line per source goes to the API.
    level = os.environ["PREFECT_LOGGING_LEVEL"]
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", level)
    os.environ.setdefault(
        "PREFECT_LOGGING_LOGGERS_PREFECT_FLOW_RUNS_LEVEL",
        level if level.upper() in ("DEBUG", "INFO") else "INFO",
    )
