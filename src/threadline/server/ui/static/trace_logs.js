// The trace's log lines on the trace page: read once from /api/logs, a marker on the
// bar of each span that logged, the span's lines in its detail panel, and the Logs
// tab listing the whole trace's lines in time order. Bodies are set as text, never
// as HTML: a line that holds markup shows the markup.

import { el, fill, fmtMs, getJSON, plural, swatch, valueText } from './common.js';

const MAX_LINES = 1000; // the API's largest page; a trace with more says so

const state = { lines: [], bySpan: new Map(), more: false };

export async function loadTraceLogs(traceId) {
  const answer = await getJSON('/api/logs', new URLSearchParams({ trace: traceId, limit: String(MAX_LINES) }));
  state.lines = answer.logs;
  state.more = answer.logs.length >= MAX_LINES;
  state.bySpan = new Map();
  for (const line of state.lines) {
    if (!line.span_id) continue;
    if (!state.bySpan.has(line.span_id)) state.bySpan.set(line.span_id, []);
    state.bySpan.get(line.span_id).push(line);
  }
}

export function spanLines(spanId) {
  return state.bySpan.get(spanId) || [];
}

function severityClass(line) {
  if (line.severity_number >= 17) return 'log-line error';
  if (line.severity_number >= 13) return 'log-line warn';
  return 'log-line';
}

const TICK_TITLE_CHARS = 200; // a tooltip, not the line: the detail panel has it whole

// The marker of one line on its span's bar, at `left` (a CSS position); its title, set
// as an attribute, is the line's level and the start of its body, as text.
export function logTick(line, left) {
  const body = typeof line.body === 'string' ? line.body : valueText(line.body);
  const level = line.severity_number >= 17 ? ' error' : line.severity_number >= 13 ? ' warn' : '';
  return el('div', {
    class: `log-tick${level}`,
    title: `${line.severity_text || line.severity_number}: ${body.slice(0, TICK_TITLE_CHARS)}`,
    style: { left },
  });
}

// The lines as a list; `startNs` places each at its offset in the trace.
export function logList(lines, startNs, { withService = false } = {}) {
  if (!lines.length) return el('p', { class: 'muted', text: 'No log lines.' });
  return el('ol', { class: 'log-lines' }, lines.map((line) => el('li', { class: severityClass(line) },
    el('span', { class: 'log-time', text: `+${fmtMs((line.time_ns - startNs) / 1e6)}` }),
    el('span', { class: 'log-level', text: line.severity_text || String(line.severity_number) }),
    withService ? el('span', { class: 'svc' }, swatch(line.service), line.service) : null,
    el('span', { class: 'log-body', text: typeof line.body === 'string' ? line.body : valueText(line.body) }),
    cutMark(line))));
}

// The server cuts a body past its length limit and lists "body" under
// threadline.truncated: the line says so, so a cut body is not read as whole.
export function cutMark(line) {
  const cut = line.attributes?.['threadline.truncated'];
  return Array.isArray(cut) && cut.includes('body')
    ? el('span', { class: 'log-cut muted', text: `(cut at ${line.body.length} characters)` })
    : null;
}

// The Logs tab: every line of the trace, oldest first.
export function renderLogsTab(container, startNs) {
  const heading = `Logs (${plural(state.lines.length, 'line')}${state.more ? ', the first shown' : ''})`;
  fill(container, el('h2', { text: heading }), logList(state.lines, startNs, { withService: true }));
  container.hidden = false;
}
