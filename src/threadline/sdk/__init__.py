"""The half of Threadline that runs inside users' services; it never imports the server.

The public surface is re-exported from :mod:`threadline`: ``configure``, ``instrument``,
``journey``, ``shutdown``. Modules: ``setup`` (the OpenTelemetry pipeline),
``processors`` (journey stamping), ``journey``, ``pseudonym``, ``inbound`` (journeys
from request headers and cookies), ``instrument``, ``exit_hooks``, ``guard``.
"""
