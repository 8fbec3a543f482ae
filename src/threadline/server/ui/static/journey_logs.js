// The journey's log lines, interleaved with its steps in time order: each line goes
// before the first step that started after it (lines of a step follow its row), and
// before the "stopped here" line at the end. Bodies are set as text, never as HTML.

import { el, fmtTime, getJSON, swatch, traceHref, valueText } from './common.js';
import { cutMark } from './trace_logs.js';

const MAX_LINES = 1000; // the API's largest page

export async function interleaveJourneyLogs(list, { sessionId, userId }) {
  const params = sessionId ? { session: sessionId } : { user: userId };
  const answer = await getJSON('/api/logs', new URLSearchParams({ ...params, limit: String(MAX_LINES) }));
  const steps = [...list.querySelectorAll('li.step')];
  const stop = list.querySelector('#journey-stop');
  for (const line of answer.logs) {
    const next = steps.find((step) => Number(step.dataset.startNs) > line.time_ns) || stop;
    list.insertBefore(logItem(line), next);
  }
  return answer.logs.length;
}

function logItem(line) {
  const level = line.severity_number >= 17 ? 'error' : line.severity_number >= 13 ? 'warn' : '';
  const body = typeof line.body === 'string' ? line.body : valueText(line.body);
  return el('li', { class: `log-step log-line ${level}` },
    el('span', { class: 'log-time', text: fmtTime(line.time_ns) }),
    el('span', { class: 'log-level', text: line.severity_text || String(line.severity_number) }),
    el('span', { class: 'svc' }, swatch(line.service), line.service),
    el('span', { class: 'log-body', text: body }),
    cutMark(line),
    line.trace_id ? el('a', { href: traceHref(line.trace_id), class: 'muted', text: 'trace' }) : null);
}
