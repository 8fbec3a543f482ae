// The span detail panel of the trace page: a span's facts, attributes, events, links
// and resource, every value as text.

import { logList } from './trace_logs.js';
import { originWhat } from './trace_header.js';
import {
  el, fill, fmtMs, fmtTime, isTraceId, journeyHref, serviceHref, swatch, traceHref, userHref,
  valueText,
} from './common.js';

function valueNode(value) {
  const text = valueText(value);
  return text.includes('\n') ? el('pre', { class: 'value', text }) : el('span', { class: 'value', text });
}

function keyValueTable(entries, caption) {
  if (!entries.length) return el('p', { class: 'muted', text: `No ${caption.toLowerCase()}.` });
  return el('table', { class: 'kv' },
    el('caption', { class: 'visually-hidden', text: caption }),
    el('tbody', {}, entries.map(([key, value]) => el('tr', {},
      el('th', { scope: 'row', text: key }),
      el('td', {}, value instanceof Node ? value : valueNode(value))))));
}

function sortedEntries(map) {
  return Object.entries(map || {}).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
}

function section(title, ...content) {
  return el('section', { class: 'detail-section' }, el('h3', { text: title }), content);
}

// The details of `span` into `container`. `view` answers what the span alone cannot:
// startNs, traceId, view.spanLink(id, label), spanName(id), originOf(span) (the server's
// error origin, {} when only computed here, null), isRecovered(span), skewOf(span),
// criticalNsOf(span) and onClose().
export function renderSpanDetail(container, span, view) {
  const offsetMs = (span.start_ns - view.startNs) / 1e6;
  const facts = [
    ['Service', el('a', { href: serviceHref(span.service), text: span.service })],
    ['Operation', span.name],
    ['Kind', span.kind],
    ['Status', el('span', { class: span.status === 'error' ? 'status error' : 'status' },
      span.status + (span.status_message ? `: ${span.status_message}` : ''))],
    ['Duration', fmtMs(span.duration_ms)],
    ['Self time', fmtMs(span.self_time_ms)],
    ['Starts at', `+${fmtMs(offsetMs)} (${fmtTime(span.start_ns)})`],
    ['Span id', el('code', { text: span.span_id })],
  ];
  if (span.parent_span_id) facts.push(['Parent', view.spanLink(span.parent_span_id)]);
  if (span.orphan) facts.push(['Orphan', 'its parent span never arrived']);
  const origin = view.originOf(span);
  if (origin) {
    const what = originWhat(origin) || 'no span below it failed';
    facts.push(['Error origin', `the error started here: ${what}`]);
  }
  if (view.isRecovered(span)) facts.push(['Recovered', 'this span failed, but a retry succeeded']);
  const skew = view.skewOf(span);
  if (skew) {
    const moved = skew.origin_span_id && skew.origin_span_id !== span.span_id ? ` with ${view.spanName(skew.origin_span_id) ?? 'its ancestor'}` : '';
    facts.push(['Clock skew', `times shifted by ${skew.shift_ms > 0 ? '+' : ''}${fmtMs(skew.shift_ms)} to correct the host clock (${skew.reason}${moved})`]);
  }
  const onPathNs = view.criticalNsOf(span);
  if (onPathNs) facts.push(['Critical path', `${fmtMs(onPathNs / 1e6)} of the trace's latency is here`]);
  if (span.session_id) facts.push(['Session', el('a', { href: journeyHref(span.session_id), text: span.session_id })]);
  if (span.user_id) facts.push(['User', el('a', { href: userHref(span.user_id), text: span.user_id })]);
  if (span.journey_id) facts.push(['Journey id', span.journey_id]);

  const events = span.events.length
    ? el('ol', { class: 'events' }, span.events.map((event) => el('li', {},
      el('div', { class: 'event-head' },
        el('span', { class: 'event-time', text: `+${fmtMs((event.time_ns - view.startNs) / 1e6)}` }),
        el('strong', { text: event.name })),
      keyValueTable(sortedEntries(event.attributes), 'Event attributes'))))
    : el('p', { class: 'muted', text: 'No events.' });
  const links = span.links.length
    ? el('ul', { class: 'links' }, span.links.map((link) => el('li', {},
      link.trace_id === view.traceId
        ? view.spanLink(link.span_id, `span ${link.span_id} in this trace`)
        : isTraceId(link.trace_id)
          ? el('a', { href: `${traceHref(link.trace_id)}?span=${encodeURIComponent(link.span_id)}`, text: `trace ${link.trace_id} · span ${link.span_id}` })
          : el('code', { text: `${link.trace_id} ${link.span_id}` }),
      sortedEntries(link.attributes).length ? keyValueTable(sortedEntries(link.attributes), 'Link attributes') : null)))
    : el('p', { class: 'muted', text: 'No links.' });

  fill(container,
    el('div', { class: 'detail-head' },
      el('h2', {}, swatch(span.service), el('span', { class: 'svc', text: span.service }), ' ', el('span', { text: span.name })),
      el('button', { type: 'button', class: 'close', 'aria-label': 'Close span details', text: '×', on: { click: view.onClose } })),
    keyValueTable(facts, 'Span'),
    section(`Log lines (${(view.logsOf?.(span) || []).length})`, logList(view.logsOf?.(span) || [], view.startNs)),
    section(`Attributes (${Object.keys(span.attributes).length})`, keyValueTable(sortedEntries(span.attributes), 'Attributes')),
    section(`Events (${span.events.length})`, events),
    section(`Links (${span.links.length})`, links),
    section(`Resource (${Object.keys(span.resource).length})`, keyValueTable(sortedEntries(span.resource), 'Resource')));
}
