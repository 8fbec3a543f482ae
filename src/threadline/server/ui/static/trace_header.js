// The trace page's header: summary, links (journey, user, JSON, compare), self time and
// critical path by service, the notes from the server's analyses, the time ruler.

import {
  el, fill, fmtMs, fmtTime, fmtUtc, isTraceId, journeyHref, plural, serviceChip, serviceColor,
  swatch, synthetic, userHref,
} from './common.js';

export function renderHeader(trace) {
  const summary = trace.summary;
  const depth = trace.spans.reduce((max, s) => Math.max(max, s.depth), 0) + 1;
  // With more pages to come, deeper spans may be among them.
  const depthText = trace.next_offset == null ? `depth ${depth}` : `depth ${depth}+`;
  fill(document.getElementById('trace-title'),
    swatch(summary.root_service),
    el('span', { class: 'svc', text: summary.root_service }), ' ',
    el('span', { text: summary.root_operation }), ' ',
    el('code', { class: 'trace-id muted', text: trace.trace_id }));
  fill(document.getElementById('trace-summary'),
    el('span', { title: fmtUtc(summary.start_ns), text: `Started ${fmtTime(summary.start_ns)}` }),
    el('span', { text: `Duration ${fmtMs(summary.duration_ms)}` }),
    el('span', { text: plural(summary.span_count, 'span') }),
    el('span', { text: depthText }),
    el('span', { text: plural(summary.services.length, 'service') }),
    summary.error_count ? el('span', { class: 'badge error', text: plural(summary.error_count, 'error') }) : null,
    synthetic(summary));

  const compareInput = el('input', { id: 'compare-with', name: 'b', placeholder: 'another trace id', 'aria-label': 'Trace id to compare with' });
  compareInput.setAttribute('autocomplete', 'off');
  compareInput.setAttribute('size', '34');
  const compare = el('form', {
    class: 'inline-form compare-form',
    on: {
      submit: (event) => {
        event.preventDefault();
        const other = compareInput.value.trim();
        if (!isTraceId(other)) {
          compareInput.setCustomValidity('A trace id is 32 hexadecimal characters.');
          compareInput.reportValidity();
          return;
        }
        window.location.assign(`/compare?${new URLSearchParams({ a: trace.trace_id, b: other.toLowerCase() })}`);
      },
    },
  }, compareInput, el('button', { type: 'submit', text: 'Compare' }));
  compareInput.addEventListener('input', () => compareInput.setCustomValidity(''));
  fill(document.getElementById('trace-links'),
    summary.session_id ? el('a', { class: 'button', id: 'journey-link', href: journeyHref(summary.session_id), text: 'Journey of this session →' }) : null,
    summary.user_id ? el('a', { class: 'button', href: userHref(summary.user_id), text: 'All of this user' }) : null,
    el('a', { class: 'button', href: `/api/traces/${trace.trace_id}`, text: 'JSON' }),
    compare);

  const total = Object.values(trace.self_time_by_service_ms).reduce((a, b) => a + b, 0) || 1;
  const segments = [];
  const legend = [];
  for (const [service, ms] of Object.entries(trace.self_time_by_service_ms)) {
    segments.push(el('span', { class: 'segment', title: `${service}: ${fmtMs(ms)}`, style: { width: `${(ms / total) * 100}%`, backgroundColor: serviceColor(service) } }));
    legend.push(el('li', {}, serviceChip(service, { link: true }), el('span', { class: 'muted', text: ` ${fmtMs(ms)} (${Math.round((ms / total) * 100)}%)` })));
  }
  fill(document.getElementById('self-time'),
    el('h2', { class: 'small-title', text: 'Self time by service' }),
    el('div', { class: 'stacked', 'aria-hidden': 'true' }, segments),
    el('ul', { class: 'legend' }, legend));
}

// What an error origin said: the exception, else the error line the span logged
// (marked as logged), else the span's status message. Always text, never markup.
export function originWhat(origin) {
  const message = origin.message_source === 'log' && origin.message ? `logged “${origin.message}”` : origin.message;
  return [origin.exception_type, message].filter(Boolean).join(': ');
}

function note(kind, ...content) {
  return el('p', { class: `note ${kind}` }, content);
}

// What the server's fix-ups and analyses found: where errors started, clock skew, gaps.
// `spanLink(id, label)` makes a control that selects a span; `spanOf(id)` finds one.
export function renderNotes(trace, spanLink, spanOf) {
  const notes = [];
  for (const origin of (trace.errors?.origins || []).slice(0, 3)) {
    const what = originWhat(origin);
    notes.push(note('error', 'Error started in ', spanLink(origin.span_id, `${origin.service} · ${origin.operation}`),
      what ? ` — ${what}` : '',
      origin.propagated_by?.length ? ` (passed up through ${plural(origin.propagated_by.length, 'span')})` : ''));
  }
  const extra = (trace.errors?.origins || []).length - 3;
  if (extra > 0) notes.push(note('error', `… and ${plural(extra, 'more error origin')}.`));
  const skewed = trace.skew_adjustments || [];
  if (skewed.length) {
    const first = skewed.find((a) => a.origin_span_id === a.span_id) || skewed[0];
    const span = spanOf(first.span_id);
    notes.push(note('skew', `Clock skew corrected: ${plural(skewed.length, 'span')} shifted, e.g. `,
      spanLink(first.span_id, span ? `${span.service} · ${span.name}` : first.span_id),
      ` by ${first.shift_ms > 0 ? '+' : ''}${fmtMs(first.shift_ms)} (${first.reason}).`));
  }
  const completeness = trace.completeness;
  if (completeness && !completeness.complete) {
    if (completeness.orphan_span_ids?.length) {
      notes.push(note('warn', `Incomplete: ${plural(completeness.orphan_span_ids.length, 'span')} name a parent that never arrived (shown as roots, marked orphan).`));
    }
    if (completeness.settling) notes.push(note('warn', 'Spans of this trace may still be arriving: reload in a few seconds for the rest.'));
  }
  if (trace.duplicates_dropped) notes.push(note('muted', `${plural(trace.duplicates_dropped, 'duplicate span')} (re-sent by an exporter) shown once.`));
  fill(document.getElementById('trace-notes'), ...notes);
}

export function renderRuler(spanNs) {
  const scale = document.getElementById('ruler-scale');
  const totalMs = spanNs / 1e6;
  scale.replaceChildren(...[0, 0.25, 0.5, 0.75, 1].map((f) => el('span', {
    class: `tick${f === 1 ? ' last' : f === 0 ? ' first' : ' minor'}`, style: { left: `${f * 100}%` }, text: fmtMs(totalMs * f),
  })));
}

// Each service's (or queue's) share of the critical path, under the trace header.
export function renderCriticalShares(answer) {
  const shares = (answer.shares || []).filter((share) => share.fraction >= 0.005);
  fill(document.getElementById('critical-path'),
    el('h2', { class: 'small-title', text: `Critical path ${fmtMs(answer.duration_ms)}: what set the latency` }),
    el('ul', { class: 'legend' }, shares.map((share) => el('li', {},
      share.kind === 'queue'
        ? el('span', { class: 'chip', text: `queue ${share.name}` })
        : serviceChip(share.name, { link: true }),
      el('span', { class: 'muted', text: ` ${fmtMs(share.duration_ms)} (${Math.round(share.fraction * 100)}%)` })))));
}
