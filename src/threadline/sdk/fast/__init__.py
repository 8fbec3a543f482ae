"""The fast span pipeline: Threadline's own ``TracerProvider``, ``Tracer`` and ``Span``.

They implement the OpenTelemetry *API* interfaces, so every instrumentation works
unchanged, and record straight into the compact export record (``sdk/export``) with
no SDK span objects on the way. ``configure()`` installs it unless the ``pipeline``
setting is ``"otel"`` (the stock SDK pipeline). See docs/adr/0007-fast-span-pipeline.md.

- ``provider.py``: the provider and the state its spans share (sampler, limits, export);
- ``tracer.py``: span start (parent, sampling, ids) and the current-span context manager;
- ``span.py``: the span, its SDK rules, and its export record;
- ``adapter.py``: SDK span processors, fed a ``ReadableSpan`` only when there are some;
- ``attributes.py``, ``limits.py``, ``ids.py``, ``journeys.py``: the pieces.
"""

from threadline.sdk.fast.provider import FastTracerProvider

__all__ = ["FastTracerProvider"]
