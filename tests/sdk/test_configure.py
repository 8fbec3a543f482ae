"""configure(), shutdown() and the exit-time flush, each in a fresh process exporting to a real
collector."""

from __future__ import annotations

import signal
import socket
from pathlib import Path

from .collector import Collector
from .conftest import ScenarioRunner, running_service


def test_configure_twice_exports_each_span_once(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """Calling configure() again returns the same configuration and does not double-export."""
    result = run_scenario("configure_twice")
    assert result.output == {"same": True}
    assert [s.name for s in collector.spans] == ["only-once"]
    assert collector.spans[0].service == "twice"


def test_settings_from_toml_file(
    run_scenario: ScenarioRunner, collector: Collector, tmp_path: Path
) -> None:
    """A threadline.toml [sdk] table in the working directory configures the service."""
    (tmp_path / "threadline.toml").write_text(
        '[sdk]\nservice_name = "from-toml"\nqueue_size = 100\nexport_batch_size = 10\n',
        encoding="utf-8",
    )
    result = run_scenario("settings_sources")
    assert (result.output["service_name"], result.output["queue_size"]) == ("from-toml", 100)
    assert [s.service for s in collector.spans] == ["from-toml"]


def test_env_beats_toml_and_argument_beats_env(
    run_scenario: ScenarioRunner, collector: Collector, tmp_path: Path
) -> None:
    """THREADLINE_* variables override threadline.toml, and configure() arguments override both."""
    (tmp_path / "threadline.toml").write_text(
        '[sdk]\nservice_name = "from-toml"\nexport_batch_size = 10\n', encoding="utf-8"
    )
    env = {"THREADLINE_SERVICE_NAME": "from-env", "THREADLINE_EXPORT_BATCH_SIZE": "20"}
    from_env = run_scenario("settings_sources", env=env)
    from_argument = run_scenario("settings_sources", "from-argument", env=env)
    assert (from_env.output["service_name"], from_env.output["export_batch_size"]) == (
        "from-env",
        20,
    )
    assert from_argument.output["service_name"] == "from-argument"
    assert sorted(s.service for s in collector.spans) == ["from-argument", "from-env"]


def test_invalid_settings_raise_config_error_naming_the_key(
    run_scenario: ScenarioRunner,
) -> None:
    """A bad value from an argument, the environment or the toml file is a ConfigError that names
    it."""
    result = run_scenario("config_errors")
    errors = result.output["errors"]
    assert "queue_size" in errors["zero queue"]
    assert "export_batch_size" in errors["batch over queue"]
    assert "queue_size" in errors["batch over queue"]
    assert "endpoint" in errors["endpoint without scheme"]
    assert "sample_rate" in errors["unknown argument"]
    assert "THREADLINE_EXPORT_DELAY_MS" in errors["env not a number"]
    assert "queue_sise" in errors["toml unknown key"]
    assert result.output["provider_installed"] is False


def test_disabled_installs_nothing(run_scenario: ScenarioRunner, collector: Collector) -> None:
    """enabled=False leaves OpenTelemetry untouched and exports nothing, while journey() still
    works."""
    result = run_scenario("disabled")
    assert result.output == {
        "enabled": False,
        "provider_is_proxy": True,
        "propagator_unchanged": True,
        "requests_instrumented": False,
        "flask_instrumented": False,
        "span_recording": False,
        "journey_seen": {"session.id": "s-off"},
    }
    assert collector.spans == []


def test_spans_are_flushed_at_normal_exit(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """A service that exits without calling shutdown() still exports its finished spans."""
    run_scenario("exit_flush", "atexit")
    assert [s.name for s in collector.spans] == ["before-atexit"]


def test_spans_are_flushed_on_sigterm(collector: Collector, tmp_path: Path) -> None:
    """SIGTERM (how supervisors stop services) exports finished spans and still ends the process as
    SIGTERM does."""
    env = {"THREADLINE_ENDPOINT": collector.endpoint}
    with running_service("exit_flush", "sigterm", env=env, log=tmp_path / "log") as (process, _):
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=20) == -signal.SIGTERM
    assert [s.name for s in collector.spans] == ["before-sigterm"]


def test_host_sigterm_handler_is_left_alone(run_scenario: ScenarioRunner) -> None:
    """A SIGTERM handler the host installed before configure() stays the host's."""
    assert run_scenario("exit_flush", "host-handler").output == {"handler_kept": True}


def test_host_provider_is_joined_not_replaced(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """A service that set up OpenTelemetry itself keeps its provider and exporter; Threadline
    adds journey stamping and its own export, and says so."""
    result = run_scenario("host_provider")
    assert result.output == {"same_provider": True, "host_saw": [{"session.id": "s-host"}]}
    assert [(s.service, s.attributes) for s in collector.spans] == [
        ("host-named", {"session.id": "s-host"})
    ]
    assert "already installed" in result.stderr


def test_exported_resource_names_the_host(
    run_scenario: ScenarioRunner, collector: Collector
) -> None:
    """Exported spans carry ``host.name``: the server treats spans of one host as sharing a
    clock and never shifts them for skew."""
    run_scenario("configure_twice")
    assert collector.spans, "the scenario exported nothing"
    assert {s.resource.get("host.name") for s in collector.spans} == {socket.gethostname()}
