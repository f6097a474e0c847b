"""The models of `config.yaml`: what each key may hold (tracker.loader reads the file).

The key names are a contract (scripts outside the repo write these files), so
unknown keys are refused rather than ignored: a typo must not silently turn a
collector off. Every mistake becomes one `ConfigError` line naming the dotted key.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
)

from tracker.model import DEFAULT_EVENTS, Event
from tracker.targets import TargetError, exclusion_entry, normalise_host, parse_target
from tracker.timetable import trigger_for

CONFIG_ENV = "TRACKER_CONFIG"
DB_URL_ENV = "TRACKER_DB_URL"
DEFAULT_CONFIG = Path("config.yaml")
DEFAULT_DATABASE = "sqlite:///data/tracker.db"


def _http_url(value: str) -> str:
    """A base URL a collector fetches: http(s), a host, no credentials in it."""
    parts = urlsplit(value.strip())
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ValueError("must be an http:// or https:// URL")
    if parts.username or parts.password:
        raise ValueError("must not contain credentials (use environment variables for secrets)")
    return value.strip().rstrip("/")


HttpUrl = Annotated[str, AfterValidator(_http_url)]
"""A collector's base URL: configurable so mirrors and loopback tests work."""


def _servers(value: list[str]) -> list[str]:
    for index, text in enumerate(value):
        try:
            parse_target(text)
        except TargetError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    return value


ServerList = Annotated[list[str], AfterValidator(_servers)]
"""Servers named as in `targets.parse_target`; a bad one is a config error naming its index."""
ServerUrlList = Annotated[list[HttpUrl], AfterValidator(_servers)]
"""The same, each given as an http(s) base URL."""


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, not silently dropped."""

    model_config = ConfigDict(extra="forbid", frozen=True)


def _allow_hosts(value: tuple[str, ...]) -> tuple[str, ...]:
    hosts: list[str] = []
    for index, text in enumerate(value):
        if "/" in text or (text.count(":") == 1 and not text.startswith("[")):
            raise ValueError(f"item {index}: {text!r}: give a host, without scheme, port or path")
        try:
            host = normalise_host(text)
        except TargetError as exc:
            raise ValueError(f"item {index}: {exc}") from None
        hosts.append(host[1:-1] if host.startswith("[") else host)
    return tuple(hosts)


AllowHosts = Annotated[tuple[str, ...], AfterValidator(_allow_hosts)]
"""Host names or IP literals (no port, no scheme) exempt from the address rule."""


class HttpSettings(Strict):
    """How hard and how long the collectors may talk to one server."""

    timeout: float = Field(20.0, gt=0, le=600, description="seconds per request")
    deadline: float = Field(60.0, gt=0, le=86400, description="seconds per target, all requests")
    concurrency: int = Field(32, ge=1, le=10000, description="targets in flight")
    per_host: int = Field(2, ge=1, le=100, description="connections per host")
    max_bytes: int = Field(5_000_000, ge=1024, le=1_000_000_000, description="body size cap")
    retries: int = Field(3, ge=0, le=10, description="retries on 429, 5xx, lost connections")
    allow_hosts: AllowHosts = ()
    """Hosts the address rule lets through: IP literals, `localhost`, or names on a
    private network (tracker/http/addresses.py). Global only: a collector's own
    `http:` cannot widen it."""


class HttpOverride(Strict):
    """A collector's own `http:` section: any key given replaces the global one."""

    timeout: float | None = Field(None, gt=0, le=600)
    deadline: float | None = Field(None, gt=0, le=86400)
    concurrency: int | None = Field(None, ge=1, le=10000)
    per_host: int | None = Field(None, ge=1, le=100)
    max_bytes: int | None = Field(None, ge=1024, le=1_000_000_000)
    retries: int | None = Field(None, ge=0, le=10)

    def apply(self, base: HttpSettings) -> HttpSettings:
        return base.model_copy(update=self.model_dump(exclude_none=True))


class CollectorSettings(Strict):
    """Keys every collector section accepts; collectors subclass this with their own."""

    enabled: bool = True
    http: HttpOverride = HttpOverride()


def _domains(value: list[str]) -> list[str]:
    domains = []
    for index, text in enumerate(value):
        try:
            domains.append(exclusion_entry(text))
        except ValueError as exc:
            raise ValueError(f"item {index}: {exc}") from None
    return domains


class DiscoverSettings(Strict):
    """`collectors.fediverse.discover`: the crawl from seeds (docs/crawl.md)."""

    seeds: ServerList = Field(min_length=1)
    max_servers: int = Field(100_000, ge=1, le=10_000_000)
    exclude: Annotated[list[str], AfterValidator(_domains)] = Field(default_factory=list)
    """Domains never contacted, with every name under them (suffix match)."""
    exclude_file: str | None = None
    """A do-not-crawl list, one domain a line (relative to the config file's folder)."""
    cluster_threshold: int = Field(20, ge=1, le=100_000)
    """New servers under one registrable domain in one crawl before they are flagged."""
    concurrency: int = Field(500, ge=1, le=5000)
    """Servers in flight during a crawl (each has its own 2 connections at most)."""
    requests_per_second: float = Field(4.0, gt=0, le=100)
    """Per server, at most."""
    measure_found: Literal["daily", "every_run"] = "daily"
    """How often `tracker collect` measures the servers only the crawl found: `daily`
    (only those no crawl or collect measured in the last 23 hours, so with the daily
    crawl they are read once a day; listed `instances` are measured every run), or
    `every_run`. At 30,000 servers each measurement adds about 1 kB of fetch log
    (README, "The fediverse crawl"): four a day cost four times the disk for readings
    that mostly repeat."""


def _families(value: dict[str, list[str]]) -> dict[str, list[str]]:
    """Family names are one lowercase word; patterns a host or `*.` and a domain."""
    for family, patterns in value.items():
        if not family or not family.replace("_", "").isalnum() or family != family.lower():
            raise ValueError(f"{family!r}: a family is one lowercase word, like bsky or bridge")
        for index, pattern in enumerate(patterns):
            try:
                normalise_host(pattern.removeprefix("*."))
            except TargetError as exc:
                raise ValueError(f"{family} item {index}: {exc}") from None
    return {family: [p.strip().lower() for p in patterns] for family, patterns in value.items()}


DEFAULT_FAMILIES: dict[str, list[str]] = {
    "bridge": ["atproto.brid.gy", "*.brid.gy"],
    "bsky": ["bsky.social", "*.bsky.social", "*.bsky.network", "*.bsky.app"],
}
"""Host patterns per family, first match wins: `name` is exactly that host, `*.name`
any host under it. Everything else is `third_party` (tracker.parsers.plc)."""


def _default_plc_families() -> dict[str, list[str]]:
    return {family: list(patterns) for family, patterns in DEFAULT_FAMILIES.items()}


class PlcSettings(CollectorSettings):
    """`collectors.plc`: sign-ups per day from the PLC directory export (collectors/plc.py)."""

    directory: Annotated[str, AfterValidator(_http_url)] = "https://plc.directory"
    """The directory (or a mirror of it) whose `/export` is paged."""
    page_size: int = Field(1000, ge=1, le=1000)
    """`count` of each export request; 1000 is the most the directory returns."""
    pace: float = Field(1.0, ge=0, le=600)
    """Seconds between two pages, on top of any Retry-After the directory asks for."""
    max_pages: int = Field(100_000, ge=1, le=10_000_000)
    """Pages per run at most (the run also stops at its `http.deadline`)."""
    families: Annotated[dict[str, list[str]], AfterValidator(_families)] = Field(
        default_factory=_default_plc_families
    )
    """PDS host patterns per family, first match wins; other hosts are `third_party`."""
    http: HttpOverride = HttpOverride(deadline=840, timeout=60)
    """A run pages for up to 14 minutes: jobs run one at a time, so a long backfill
    must leave room for the others (it resumes at the next run)."""


class AnalysisSettings(Strict):
    """How the analysis treats gaps, events and waves (see tracker.analysis)."""

    carry_forward_days: int = Field(3, ge=0, le=60)
    event_window_before: int = Field(28, ge=7, le=365)
    event_window_after: int = Field(14, ge=1, le=365)
    wave_factor: float = Field(3.0, gt=1, le=100)
    wave_trailing_weeks: int = Field(8, ge=4, le=104)


class ReportSettings(Strict):
    """What `tracker report` writes and which targets its charts single out."""

    output: Path = Path("data/reports")
    japan: list[str] = Field(
        default_factory=lambda: ["mstdn.jp", "pawoo.net", "fedibird.com", "misskey.io"]
    )
    top_targets: int = Field(6, ge=1, le=20)


def _schedule_entry(value: Any) -> str | None:
    """`off` (YAML also reads it as false) or null: not scheduled; else checked now, so a
    typo fails at `tracker schedule` start, not silently at the first missed slot."""
    if value is None or value is False:
        return None
    if not isinstance(value, str):
        raise ValueError("must be a cron expression (5 fields, UTC), `every <n><s|m|h|d>` or off")
    expression = " ".join(value.split())
    if expression.lower() == "off":
        return None
    trigger_for(expression)
    return expression


ScheduleEntry = Annotated[str | None, BeforeValidator(_schedule_entry)]
"""When `tracker schedule` runs a collector or the report; None means never."""


class Config(Strict):
    """The whole file, after validation. `database` is a resolved SQLAlchemy URL."""

    database: str = DEFAULT_DATABASE
    contact: str
    http: HttpSettings = HttpSettings()
    collectors: dict[str, CollectorSettings] = Field(default_factory=dict)
    events: list[Event] = Field(default_factory=lambda: list(DEFAULT_EVENTS))
    analysis: AnalysisSettings = AnalysisSettings()
    report: ReportSettings = ReportSettings()
    schedule: dict[str, ScheduleEntry] = Field(default_factory=dict)
    path: Path = Path("config.yaml")

    @property
    def report_output(self) -> Path:
        """The report folder, relative to the config file's folder (like the database)."""
        output = self.report.output.expanduser()
        return output if output.is_absolute() else self.path.resolve().parent / output

    @field_validator("schedule", mode="before")
    @classmethod
    def _empty_schedule(cls, value: Any) -> Any:
        return {} if value is None else value

    @field_validator("contact")
    @classmethod
    def _contact_is_reachable(cls, value: str) -> str:
        value = value.strip()
        if value.startswith(("http://", "https://")) and "." in value.split("/", 3)[2]:
            return value
        if value.startswith("mailto:") and "@" in value:
            return value
        raise ValueError(
            "must be an http(s):// URL or a mailto: address where people can reach you"
        )

    def http_for(self, collector: str) -> HttpSettings:
        settings = self.collectors.get(collector)
        return settings.http.apply(self.http) if settings else self.http
