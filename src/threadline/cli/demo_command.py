"""`threadline demo`: a shop of real services, simulated users, and what Threadline saw."""

from __future__ import annotations

import signal
from pathlib import Path
from types import FrameType
from typing import NoReturn, cast

import click
from rich.console import Console

from threadline import conventions
from threadline.demo.wiring import BROKER_ENV, BROKER_PREFERENCES, BrokerPreference

# The conventional exit status of a program stopped by Ctrl-C (128 + SIGINT).
INTERRUPTED_EXIT: int = 130


@click.command()
@click.option(
    "--users", type=click.IntRange(1, 500), default=20, show_default=True,
    help="Simulated users shopping at the same time.",
)  # fmt: skip
@click.option(
    "--duration", type=click.FloatRange(1, 3600), default=30.0, show_default=True,
    metavar="SECONDS", help="How long the users shop.",
)  # fmt: skip
@click.option(
    "--port", type=click.IntRange(1, 65535), default=conventions.DEFAULT_PORT,
    show_default=True, help="Port of the Threadline server (OTLP, API and UI).",
)  # fmt: skip
@click.option(
    "--db", type=click.Path(dir_okay=False, path_type=Path),
    default=Path("threadline.duckdb"), show_default=True, help="DuckDB file the spans go to.",
)  # fmt: skip
@click.option(
    "--seed", type=int, default=7, show_default=True,
    help="Seed for users, slow charges and failures; the same seed tells the same story.",
)  # fmt: skip
@click.option(
    "--broker", type=click.Choice(BROKER_PREFERENCES), default="auto", show_default=True,
    envvar=BROKER_ENV, show_envvar=True,
    help="Queue between orders and fulfillment: RabbitMQ on 127.0.0.1:5672 if it answers "
    "(auto), or an SQLite file that needs no broker.",
)  # fmt: skip
@click.option(
    "--exit", "exit_after_summary", is_flag=True,
    help="Stop everything after the summary instead of keeping the server up.",
)  # fmt: skip
def demo(
    users: int,
    duration: float,
    port: int,
    db: Path,
    seed: int,
    broker: str,
    exit_after_summary: bool,
) -> None:
    """Start Threadline and a small shop, let simulated users shop, show where to look.

    The shop is five real services in their own processes (gateway and payments on
    FastAPI, catalog and orders on Flask, a fulfillment worker behind a message
    queue). One dependency is sometimes slow and one path sometimes fails.
    """
    # The demo (its broker clients, the server it starts) is loaded when it runs.
    from threadline.demo.message_hop import BrokerUnavailable
    from threadline.demo.processes import PortInUse, StartupError
    from threadline.demo.run import DemoError, DemoOptions, run_demo
    from threadline.demo.summary import SummaryUnavailable

    options = DemoOptions(
        users=users,
        duration_s=duration,
        port=port,
        db=db,
        seed=seed,
        exit_after_summary=exit_after_summary,
        broker=cast(BrokerPreference, broker),
    )
    console = Console()
    # SIGTERM stops the demo the way Ctrl-C does: children stopped, nothing left behind.
    # SIGINT is claimed too: a shell starts background jobs with it ignored, and a
    # `kill -INT` should still stop the demo and everything it started.
    previous = {
        signum: signal.signal(signum, _interrupt) for signum in (signal.SIGINT, signal.SIGTERM)
    }
    try:
        run_demo(options, console)
    except KeyboardInterrupt:
        console.print("\nStopped; every process the demo started has been stopped too.")
        raise click.exceptions.Exit(INTERRUPTED_EXIT) from None
    except (PortInUse, StartupError, BrokerUnavailable, SummaryUnavailable, DemoError) as exc:
        raise click.ClickException(str(exc)) from exc
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


def _interrupt(signum: int, frame: FrameType | None) -> NoReturn:
    raise KeyboardInterrupt


COMMANDS: list[click.Command] = [demo]
