"""Scenario: configure() with invalid settings from arguments, env and toml; prints each error."""

import json
import os
from pathlib import Path
from typing import Any

from opentelemetry import trace

import threadline

errors: dict[str, str] = {}


def attempt(case: str, **settings: Any) -> None:
    try:
        threadline.configure(**settings)
    except threadline.ConfigError as exc:
        errors[case] = str(exc)


attempt("zero queue", queue_size=0)
attempt("batch over queue", queue_size=10, export_batch_size=20)
attempt("endpoint without scheme", endpoint="127.0.0.1:4318")
attempt("unknown argument", sample_rate=0.5)
os.environ["THREADLINE_EXPORT_DELAY_MS"] = "soon"
attempt("env not a number")
del os.environ["THREADLINE_EXPORT_DELAY_MS"]
Path("threadline.toml").write_text("[sdk]\nqueue_sise = 10\n", encoding="utf-8")
attempt("toml unknown key")
Path("threadline.toml").unlink()
provider_installed = not isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider)
print(json.dumps({"errors": errors, "provider_installed": provider_installed}))
