"""Export that never hurts the service: compact queue, own OTLP encoder, bounded retries.

The pipeline, one module per step::

    on_end ── compact.capture ──> queue.SpanQueue (bounded, counts drops)
                                      │  worker thread (processor.ExportProcessor)
                                      ▼
                          redact_compact (the ``redaction`` rules; sdk/redaction_processor)
                                      ▼
              encoder.encode_request ──> exporter.OtlpExporter ──> transport.HttpTransport
                                               │ retry.RetryPolicy (deadline, jitter, Retry-After)
                                               ▼
                                          stats.ExportCounters  ──> threadline.stats()
"""
