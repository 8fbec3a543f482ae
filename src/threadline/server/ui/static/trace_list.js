// One row of a list of traces (search results, a service's slowest and failed traces):
// root service and operation, a duration bar, span and error counts, services touched.

import {
  el, fmtAgo, fmtMs, fmtTime, fmtUtc, plural, serviceChip, swatch, synthetic, traceHref,
} from './common.js';

// `maxMs` scales the duration bar: the longest trace of the list fills it.
export function traceItem(trace, maxMs, { compact = false } = {}) {
  const width = maxMs > 0 ? Math.max(0.5, (trace.duration_ms / maxMs) * 100) : 0;
  const errors = trace.error_count > 0
    ? el('span', { class: 'badge error' }, plural(trace.error_count, 'error'))
    : null;
  const title = el('div', { class: 'trace-title' },
    swatch(trace.root_service),
    el('span', { class: 'svc', text: trace.root_service }),
    el('span', { class: 'op', text: trace.root_operation }),
    el('code', { class: 'trace-id', text: trace.trace_id.slice(0, 7), title: trace.trace_id }));
  const bar = el('div', { class: 'trace-duration' },
    el('span', { class: 'bar-track' },
      el('span', { class: `bar${trace.error_count > 0 ? ' error' : ''}`, style: { width: `${width}%` } })),
    el('span', { class: 'num', text: fmtMs(trace.duration_ms) }));
  const meta = el('div', { class: 'trace-meta' },
    el('span', { text: plural(trace.span_count, 'span') }),
    errors,
    synthetic(trace),
    compact ? null : el('span', { class: 'chips' }, trace.services.map((s) => serviceChip(s))),
    el('time', { class: 'muted', title: `${fmtTime(trace.start_ns)} (${fmtUtc(trace.start_ns)})`, text: compact ? fmtAgo(trace.start_ns) : `${fmtTime(trace.start_ns)} · ${fmtAgo(trace.start_ns)}` }));
  return el('li', { class: `trace-item${trace.error_count > 0 ? ' has-error' : ''}` },
    el('a', { class: 'trace-link', href: traceHref(trace.trace_id) }, title, bar, meta));
}

export function renderTraceList(list, traces, options = {}) {
  const maxMs = Math.max(0, ...traces.map((t) => t.duration_ms));
  list.replaceChildren(...traces.map((t) => traceItem(t, maxMs, options)));
}
