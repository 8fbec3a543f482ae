"""`threadline erase --user ID`: delete every span of one user's journeys.

The CLI asks the running server (``DELETE /api/users/{id}``, an admin token in
``THREADLINE_TOKEN``); the server owns the store. Services usually send user ids
pseudonymised (``u_`` + keyed HMAC, see ``threadline.sdk.pseudonym``), so the
command erases both the id as given and its pseudonym under the configured
``user_id_key``: the operator types the id they were asked to erase, and whichever
form the services stored goes.
"""

from __future__ import annotations

import click

from threadline import settings as config
from threadline.cli.client import ApiError, ThreadlineClient
from threadline.cli.reading import SERVER_ENV
from threadline.conventions import DEFAULT_ENDPOINT
from threadline.sdk.pseudonym import Pseudonymizer, is_pseudonym


def forms_of(user_id: str, key: str) -> list[str]:
    """The id as given and, unless it already is one, its pseudonym under ``key``."""
    if is_pseudonym(user_id):
        return [user_id]
    return [user_id, Pseudonymizer(key)(user_id)]


@click.command()
@click.option("--user", "user_id", required=True, help="The user id to erase (raw or u_… form).")
@click.option(
    "--as-given",
    is_flag=True,
    help="Erase only the id exactly as typed, not also its pseudonym.",
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
    if as_given:
        forms = [user_id]
    else:
        try:
            sdk = config.load(config.SdkSettings)
        except config.ConfigError as exc:
            raise click.UsageError(str(exc)) from exc
        forms = forms_of(user_id, sdk.user_id_key)
    client = ThreadlineClient(server)
    total = 0
    for form in forms:
        try:
            answer = client.erase_user(form)
        except ApiError as exc:
            raise click.ClickException(exc.message) from exc
        erased = int(answer.get("erased_spans", 0)) if isinstance(answer, dict) else 0
        total += erased
        label = "as given" if form == user_id else "pseudonym"
        click.echo(f"{label} {form}: {erased} spans erased")
    click.echo(f"erased {total} spans in all")


COMMANDS: list[click.Command] = [erase]
