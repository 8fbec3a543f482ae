"""`threadline erase --user ID`: delete every span of one user's journeys.

The CLI asks the running server (``DELETE /api/users/{id}``, an admin token in
``THREADLINE_TOKEN``); the server owns the store and its keys. It searches every form
the id may be stored in (as given, pseudonymised by the SDK under ``user_id_key``,
hashed by redaction under ``redaction_hash_key``, built-in keys included), deletes the
journeys found and rewrites the store so none of their bytes stay on disk; the command
prints each form searched and how many spans carried it.
"""

from __future__ import annotations

from typing import Any, Final

import click

from threadline.cli.client import ApiError, ThreadlineClient
from threadline.cli.reading import SERVER_ENV
from threadline.conventions import DEFAULT_ENDPOINT

# Erasure rewrites the whole store: seconds per million spans, so more than a query.
ERASE_TIMEOUT_S: Final = 600.0


@click.command()
@click.option("--user", "user_id", required=True, help="The user id to erase (raw or u_… form).")
@click.option(
    "--as-given",
    is_flag=True,
    help="Search only the id exactly as typed, not its pseudonyms and hashes.",
)
@click.option(
    "--server",
    envvar=SERVER_ENV,
    default=DEFAULT_ENDPOINT,
    show_default=True,
    show_envvar=True,
    metavar="URL",
    help="Base URL of the running `threadline serve`.",
)
def erase(user_id: str, as_given: bool, server: str) -> None:
    """Delete every span of a user's journeys (all traces of their sessions).

    Needs an admin token in THREADLINE_TOKEN when the server has tokens.
    """
    if not user_id.strip():
        raise click.BadParameter("must not be empty", param_hint="--user")
    client = ThreadlineClient(server, timeout_s=ERASE_TIMEOUT_S)
    try:
        answer = client.erase_user(user_id, as_given=as_given)
    except ApiError as exc:
        raise click.ClickException(exc.message) from exc
    if not isinstance(answer, dict):
        raise click.ClickException(f"unexpected answer from the server: {answer!r}")
    for form in _searched(answer):
        click.echo(f"searched {form['label']}: {form['form']} ({form['spans']} spans carried it)")
    click.echo(f"erased {int(answer.get('erased_spans', 0))} spans in all")


def _searched(answer: dict[str, Any]) -> list[dict[str, Any]]:
    forms = answer.get("searched")
    return [f for f in forms if isinstance(f, dict)] if isinstance(forms, list) else []


COMMANDS: list[click.Command] = [erase]
