"""Fixtures for the drill tests: an exit stack the shop's processes join."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import ExitStack

import pytest


@pytest.fixture
def shop_stack() -> Iterator[ExitStack]:
    """Processes entered here (``support.drill_services.start_shop``) stop after the test."""
    with ExitStack() as stack:
        yield stack
