"""Settings for both halves, declared once and loaded with one precedence.

Each setting is a field of a frozen dataclass with its documentation in the field's
metadata. A value is taken from, in order: an explicit argument, the environment
variable ``THREADLINE_<NAME>``, the ``[sdk]`` / ``[server]`` table of
``threadline.toml``, then the declared default. A value that cannot be parsed is
an error naming the key: a bad setting is never silently replaced by its default.
"""

from __future__ import annotations

import dataclasses
import os
import tomllib
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final, TypeVar

from threadline import conventions

ENV_PREFIX: Final = "THREADLINE_"
CONFIG_FILE_ENV: Final = "THREADLINE_CONFIG"
DEFAULT_CONFIG_FILE: Final = "threadline.toml"

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


class ConfigError(ValueError):
    """A setting has a value that cannot be used; the message names the key."""


def setting(default: Any, doc: str) -> Any:
    """Declare a setting with its default and the sentence the docs show for it."""
    return field(default=default, metadata={"doc": doc})


@dataclass(frozen=True, slots=True)
class SdkSettings:
    """Settings read by ``threadline.configure`` inside an instrumented service."""

    service_name: str = setting("unknown_service", "`service.name` of every span.")
    endpoint: str = setting(
        conventions.DEFAULT_ENDPOINT,
        "Base URL of the OTLP/HTTP receiver; spans go to `<endpoint>/v1/traces`.",
    )
    enabled: bool = setting(True, "Turn tracing off entirely (no spans, no export).")
    session_header: str = setting(
        conventions.DEFAULT_SESSION_HEADER,
        "Inbound request header that starts a journey when no baggage carries one.",
    )
    session_cookie: str = setting(
        conventions.DEFAULT_SESSION_COOKIE,
        "Inbound cookie that starts a journey when neither baggage nor header does.",
    )
    pseudonymize_user_id: bool = setting(
        True, "Replace `user.id` by a keyed HMAC before it leaves the process."
    )
    user_id_key: str = setting(
        "",
        "Secret key for pseudonymising user ids; set the same value in every service "
        "so one user correlates across services.",
    )
    export_delay_ms: int = setting(1000, "Longest time a finished span waits before export.")
    export_batch_size: int = setting(512, "Most spans sent in one OTLP request.")
    queue_size: int = setting(2048, "Most finished spans held for export; more are dropped.")
    export_timeout_s: float = setting(10.0, "Deadline for one OTLP export request.")


@dataclass(frozen=True, slots=True)
class ServerSettings:
    """Settings read by ``threadline serve``."""

    host: str = setting(conventions.DEFAULT_HOST, "Address the server listens on.")
    port: int = setting(conventions.DEFAULT_PORT, "Port for OTLP, the API and the UI.")
    db: Path = setting(Path("threadline.duckdb"), "DuckDB file the spans are stored in.")
    max_request_bytes: int = setting(
        8 * 1024 * 1024,
        "Largest OTLP request body accepted, after decompression; larger gets 413.",
    )
    write_queue_batches: int = setting(
        256,
        "Most decoded requests waiting for the store; beyond it ingest answers 503.",
    )


SettingsT = TypeVar("SettingsT", SdkSettings, ServerSettings)

_SECTION: Final[dict[type, str]] = {SdkSettings: "sdk", ServerSettings: "server"}


def load(
    cls: type[SettingsT],
    overrides: Mapping[str, Any] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    config_file: Path | None = None,
) -> SettingsT:
    """Build ``cls`` from arguments > environment > ``threadline.toml`` > defaults."""
    environ = os.environ if environ is None else environ
    names = {f.name for f in dataclasses.fields(cls)}
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    unknown = set(overrides) - names
    if unknown:
        raise ConfigError(f"unknown setting(s) {sorted(unknown)}; known: {sorted(names)}")
    from_file = _read_section(cls, environ, config_file)
    hints = typing.get_type_hints(cls)
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        env_key = ENV_PREFIX + f.name.upper()
        if f.name in overrides:
            raw, source = overrides[f.name], f"argument {f.name}"
        elif env_key in environ:
            raw, source = environ[env_key], env_key
        elif f.name in from_file:
            raw, source = from_file[f.name], f"[{_SECTION[cls]}] {f.name} in threadline.toml"
        else:
            continue
        values[f.name] = _coerce(raw, hints[f.name], source)
    return cls(**values)


def describe(cls: type) -> list[tuple[str, str, str, str]]:
    """(name, env var, default, doc) for every setting, for docs and `--help`."""
    return [
        (f.name, ENV_PREFIX + f.name.upper(), _toml_literal(f.default), f.metadata["doc"])
        for f in dataclasses.fields(cls)
    ]


def markdown_table(cls: type) -> str:
    """The reference table that docs/configuration.md carries for ``cls``."""
    rows = ["| setting | environment variable | default | meaning |", "|---|---|---|---|"]
    for name, env_var, default, doc in describe(cls):
        rows.append(f"| `{name}` | `{env_var}` | `{default}` | {doc} |")
    return "\n".join(rows)


def _toml_literal(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str | Path):
        return f'"{value}"'
    return str(value)


def _read_section(cls: type, environ: Mapping[str, str], path: Path | None) -> dict[str, Any]:
    if path is None:
        explicit = environ.get(CONFIG_FILE_ENV)
        path = Path(explicit) if explicit else Path(DEFAULT_CONFIG_FILE)
        if not explicit and not path.exists():
            return {}
    try:
        document = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise ConfigError(f"config file {path} does not exist") from exc
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"config file {path} is not valid TOML: {exc}") from exc
    section = document.get(_SECTION[cls], {})
    if not isinstance(section, dict):
        raise ConfigError(f"[{_SECTION[cls]}] in {path} must be a table")
    known = {f.name for f in dataclasses.fields(cls)}
    unknown = set(section) - known
    if unknown:
        raise ConfigError(
            f"unknown key(s) {sorted(unknown)} in [{_SECTION[cls]}] of {path}; "
            f"known: {sorted(known)}"
        )
    return section


def _coerce(raw: Any, annotation: Any, source: str) -> Any:
    target = _plain_type(annotation)
    try:
        if target is bool:
            return _to_bool(raw)
        if target is int:
            if isinstance(raw, bool):
                raise ValueError("expected an integer")
            return int(raw)
        if target is float:
            return float(raw)
        if target is Path:
            return Path(raw)
        if target is str:
            if not isinstance(raw, str):
                raise ValueError("expected a string")
            return raw
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"{source}: invalid value {raw!r}: {exc}") from exc
    raise ConfigError(f"{source}: unsupported setting type {annotation!r}")


def _plain_type(annotation: Any) -> Any:
    if isinstance(annotation, types.UnionType):
        args = [a for a in typing.get_args(annotation) if a is not type(None)]
        return args[0]
    return annotation


def _to_bool(raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    text = str(raw).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"expected one of {sorted(_TRUE | _FALSE)}")
