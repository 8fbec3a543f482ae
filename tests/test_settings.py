"""Settings: one declaration, one precedence, loud failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from threadline import settings
from threadline.settings import ConfigError, SdkSettings, ServerSettings

DOCS = Path(__file__).resolve().parents[1] / "docs" / "configuration.md"


def test_defaults_work_without_any_configuration(tmp_path: Path) -> None:
    """Zero configuration gives a server on 127.0.0.1:4318 storing to ./threadline.duckdb."""
    loaded = settings.load(ServerSettings, environ={}, config_file=None)
    assert (loaded.host, loaded.port, loaded.db) == ("127.0.0.1", 4318, Path("threadline.duckdb"))


def test_argument_beats_environment_beats_file(tmp_path: Path) -> None:
    """An explicit argument wins over THREADLINE_* env vars, which win over threadline.toml."""
    toml = tmp_path / "threadline.toml"
    toml.write_text('[sdk]\nservice_name = "from-file"\nqueue_size = 7\nenabled = false\n')
    environ = {"THREADLINE_SERVICE_NAME": "from-env", "THREADLINE_QUEUE_SIZE": "9"}
    loaded = settings.load(
        SdkSettings, {"service_name": "from-arg"}, environ=environ, config_file=toml
    )
    assert loaded.service_name == "from-arg"
    assert loaded.queue_size == 9
    assert loaded.enabled is False


def test_config_file_is_found_through_environment(tmp_path: Path) -> None:
    """THREADLINE_CONFIG names the file to read."""
    toml = tmp_path / "custom.toml"
    toml.write_text("[server]\nport = 9999\n")
    loaded = settings.load(ServerSettings, environ={"THREADLINE_CONFIG": str(toml)})
    assert loaded.port == 9999


@pytest.mark.parametrize(
    ("environ", "named"),
    [
        ({"THREADLINE_PORT": "eighty"}, "THREADLINE_PORT"),
        ({"THREADLINE_MAX_REQUEST_BYTES": "1.5"}, "THREADLINE_MAX_REQUEST_BYTES"),
    ],
)
def test_invalid_value_is_an_error_naming_the_key(environ: dict[str, str], named: str) -> None:
    """A value that cannot be parsed is refused, never replaced by the default."""
    with pytest.raises(ConfigError, match=named):
        settings.load(ServerSettings, environ=environ)


def test_invalid_boolean_and_unknown_keys_are_refused(tmp_path: Path) -> None:
    """Typos in the file or in arguments are errors that list what is allowed."""
    with pytest.raises(ConfigError, match="THREADLINE_ENABLED"):
        settings.load(SdkSettings, environ={"THREADLINE_ENABLED": "maybe"})
    toml = tmp_path / "threadline.toml"
    toml.write_text("[sdk]\nservice_nmae = 'typo'\n")
    with pytest.raises(ConfigError, match="service_nmae"):
        settings.load(SdkSettings, environ={}, config_file=toml)
    with pytest.raises(ConfigError, match="colour"):
        settings.load(SdkSettings, {"colour": "blue"}, environ={})
    toml.write_text("[sdk\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        settings.load(SdkSettings, environ={}, config_file=toml)


@pytest.mark.parametrize("cls", [SdkSettings, ServerSettings])
def test_configuration_reference_lists_every_setting(cls: type) -> None:
    """docs/configuration.md carries the table generated from the declarations."""
    assert settings.markdown_table(cls) in DOCS.read_text(encoding="utf-8")
