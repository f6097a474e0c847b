"""Reading and validating `config.yaml`: the file, the environment, the collector registry.

Above `collectors/` (it asks the registry which sections exist and which settings
model each one takes), so `tracker.config` stays the models alone and every layer
can import it. Every mistake becomes one `ConfigError` line naming the dotted key.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml
from pydantic import ValidationError
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError

from tracker.config import CONFIG_ENV, DB_URL_ENV, DEFAULT_CONFIG, CollectorSettings, Config
from tracker.errors import ConfigError


def resolve_config_path(explicit: Path | None) -> Path:
    """`--config PATH` > `$TRACKER_CONFIG` > `./config.yaml`."""
    if explicit is not None:
        return explicit
    from_env = os.environ.get(CONFIG_ENV)
    return Path(from_env) if from_env else DEFAULT_CONFIG


def load_config(explicit: Path | None = None) -> Config:
    path = resolve_config_path(explicit)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise ConfigError(f"config: cannot read {path}: {reason}") from None
    return parse_config(text, path)


def parse_config(text: str, path: Path) -> Config:
    """Validate a config text; relative SQLite paths resolve against `path`'s folder."""
    data = _load_yaml(text, path)
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: the file must be a mapping of keys, not {type(data).__name__}")
    raw_collectors = data.pop("collectors", {}) or {}
    if not isinstance(raw_collectors, dict):
        raise ConfigError(f"{path}: collectors: must be a mapping of collector names")
    if isinstance(data.get("schedule"), dict):
        _check_schedule_names(data["schedule"], path)
    try:
        config = Config.model_validate({**data, "collectors": {}, "path": path})
    except ValidationError as exc:
        raise ConfigError(f"{path}: {_first_error(exc)}") from None
    collectors = _validate_collectors(raw_collectors, path)
    database = _resolve_database(os.environ.get(DB_URL_ENV) or config.database, path)
    return config.model_copy(update={"collectors": collectors, "database": database})


def _validate_collectors(raw: Mapping[str, Any], path: Path) -> dict[str, CollectorSettings]:
    from tracker.collectors import registry  # late: the CLI starts without the collectors

    known = registry.names()
    result: dict[str, CollectorSettings] = {}
    for name, section in raw.items():
        if name not in known:
            raise ConfigError(
                f"{path}: collectors.{name}: unknown collector (known: {', '.join(known)})"
            )
        model = registry.get(name).settings_model
        try:
            result[name] = model.model_validate(section or {})
        except ValidationError as exc:
            raise ConfigError(f"{path}: {_first_error(exc, prefix=f'collectors.{name}')}") from None
    return result


def _check_schedule_names(schedule: Mapping[Any, Any], path: Path) -> None:
    from tracker.collectors import registry

    known = [*registry.names(), "crawl", "report"]
    for name in schedule:
        if name not in known:
            raise ConfigError(
                f"{path}: schedule.{name}: neither a collector, `crawl` nor `report` "
                f"(known: {', '.join(known)})"
            )


def _resolve_database(url_text: str, path: Path) -> str:
    from_env = bool(os.environ.get(DB_URL_ENV))
    key = f"${DB_URL_ENV}" if from_env else "database"
    try:
        url: URL = make_url(url_text)
    except ArgumentError:
        raise ConfigError(f"{path}: {key}: not a valid SQLAlchemy URL: {url_text!r}") from None
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in ("", ":memory:") or database.startswith("file:"):
            return url.render_as_string(hide_password=False)
        db_path = Path(database).expanduser()
        if not db_path.is_absolute():
            # The config file's folder anchors it, so cron can run from anywhere;
            # a URL from the environment is relative to where the person typed it.
            anchor = Path.cwd() if from_env else path.resolve().parent
            db_path = anchor / db_path
        url = url.set(database=str(db_path))
    return url.render_as_string(hide_password=False)


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a key given twice (PyYAML would keep the last one)."""


def _construct_mapping(loader: _UniqueKeyLoader, node: yaml.MappingNode) -> dict[Any, Any]:
    seen: set[Any] = set()
    for key_node, _ in node.value:
        key = loader.construct_object(key_node)
        if key in seen:
            mark = key_node.start_mark
            raise yaml.MarkedYAMLError(
                problem=f"key {key!r} appears twice (line {mark.line + 1})", problem_mark=mark
            )
        seen.add(key)
    return loader.construct_mapping(node)


_UniqueKeyLoader.add_constructor(
    yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG,
    _construct_mapping,
)


def _load_yaml(text: str, path: Path) -> Any:
    try:
        return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = (exc.problem or "syntax error").strip()
        raise ConfigError(f"{path}: invalid YAML{where}: {problem}") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML: {str(exc).splitlines()[0]}") from None


_MESSAGES = {
    "extra_forbidden": "unknown key",
    "missing": "required key is missing",
}


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    error = exc.errors(include_url=False)[0]
    parts = [prefix] if prefix else []
    parts += [str(part) for part in error["loc"]]
    key = ".".join(parts) or "(top level)"
    message = _MESSAGES.get(error["type"], error["msg"])
    message = message.removeprefix("Value error, ")
    given = error.get("input")
    if error["type"] not in _MESSAGES and isinstance(given, str | int | float) and given != "":
        shown = repr(given)
        message += f" (got {shown if len(shown) <= 60 else shown[:57] + '...'})"
    return f"{key}: {message}"
