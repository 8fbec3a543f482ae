"""Entry point of the `threadline` script: the only place that reaches both halves.

The script is installed with the SDK alone (``pip install threadline``), but the
command line needs click and rich, which come with the ``cli`` and ``server``
extras; without them it says what to install instead of printing a traceback. The
commands themselves are in :mod:`threadline.cli.commands`.
"""

from __future__ import annotations

import sys
from typing import Final

# What the command line needs beyond the SDK, by top-level module name.
CLI_MODULES: Final = frozenset({"click", "rich"})
SERVER_MODULES: Final = frozenset(
    {"duckdb", "pyarrow", "fastapi", "uvicorn", "starlette", "jinja2", "google"}
    | {"flask", "requests", "httpx", "pika", "litequeue"}  # the demo's shop
)


def main() -> None:
    try:
        from threadline.cli.commands import cli

        cli()
    except ModuleNotFoundError as exc:
        missing = (exc.name or "").partition(".")[0]
        if missing in CLI_MODULES:
            extra = '"threadline[cli]" (doctor and the read commands) or "threadline[server]"'
        elif missing in SERVER_MODULES:
            extra = '"threadline[server]"'
        else:
            raise
        print(
            f"threadline: {missing} is not installed; this command needs pip install {extra}",
            file=sys.stderr,
        )
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
