"""The SDK's own requests run with instrumentation suppressed, as stock instrumentations read it."""

from __future__ import annotations

from opentelemetry.instrumentation.utils import is_instrumentation_enabled

from threadline.sdk.suppression import suppress_instrumentation


def test_stock_instrumentations_see_instrumentation_suppressed() -> None:
    """Inside the block OpenTelemetry's own check says "disabled"; after it, "enabled" again."""
    assert is_instrumentation_enabled()
    with suppress_instrumentation():
        assert not is_instrumentation_enabled()
    assert is_instrumentation_enabled()
