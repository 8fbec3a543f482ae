// The alerts page: alerts firing, pending and resolved in the last day, and how each
// receiver's deliveries went (its last failure, if it has not succeeded since).

import { ApiError, el, fill, fmtAgo, fmtTime, getJSON, markReady, plural, showNotice } from './common.js';
import { sloHref, stateBadge } from './slo_badges.js';

function alertTable(alerts, empty, when) {
  if (!alerts.length) return el('p', { class: 'muted', text: empty });
  return el('div', { class: 'table-wrap' }, el('table', { class: 'table alert-table' },
    el('thead', {}, el('tr', {}, ['SLO', 'Alert', 'Service', when, 'Summary'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, alerts.map((a) => el('tr', { class: a.state === 'firing' ? 'has-error' : '', dataset: { slo: a.slo, alert: a.alert } },
      el('td', {}, el('a', { href: a.alert === 'drill' ? `/drills?probe=${encodeURIComponent(a.slo)}` : sloHref(a.slo), text: a.slo })),
      el('td', {}, stateBadge(a.state === 'firing' ? 'firing' : a.state === 'pending' ? 'burning' : 'ok'), ' ', a.alert),
      el('td', { text: a.labels.service || '' }),
      el('td', { class: 'nowrap', title: fmtTime(a.resolved_ns || a.active_since_ns), text: fmtAgo(a.resolved_ns || a.firing_since_ns || a.active_since_ns) }),
      el('td', { text: a.summary }))))));
}

function receiverTable(receivers, failures) {
  const failed = new Map(failures.map((f) => [f.receiver, f]));
  if (!receivers.length && !failures.length) {
    return el('p', { class: 'muted', text: 'No receivers: set alert_webhook_urls, alertmanager_url or slack_webhook_url (docs/alert-receivers.md). Alerts are logged.' });
  }
  const rows = receivers.map((r) => ({ ...r, failure: failed.get(r.name) }));
  for (const f of failures) if (!receivers.some((r) => r.name === f.receiver)) rows.push({ name: f.receiver, failure: f });
  return el('div', { class: 'table-wrap' }, el('table', { class: 'table', id: 'receiver-table' },
    el('thead', {}, el('tr', {}, ['Receiver', 'Kind', 'Host', 'Sent', 'Retries', 'Failed', 'Dropped', 'Last failure'].map((h, k) => el('th', { scope: 'col', class: k > 2 && k < 7 ? 'num' : '', text: h })))),
    el('tbody', {}, rows.map((r) => el('tr', { class: r.failure ? 'has-error' : '', dataset: { receiver: r.name } },
      el('td', { text: r.name }),
      el('td', { text: r.kind || '' }),
      el('td', { class: 'cut', text: r.url || '' }),
      ['sent', 'retries', 'failed', 'dropped'].map((k) => el('td', { class: 'num', text: r[k] == null ? '–' : r[k].toLocaleString('en') })),
      el('td', { class: 'delivery-failure' }, r.failure
        ? [el('span', { class: 'status error', text: r.failure.error }), el('span', { class: 'muted', text: ` ${fmtAgo(r.failure.at_ns)}` })]
        : el('span', { class: 'muted', text: r.last_error ? `recovered: ${r.last_error}` : 'none' })))))));
}

async function start() {
  const summary = document.getElementById('alerts-summary');
  let answer;
  let receivers = { receivers: [] };
  try {
    [answer, receivers] = await Promise.all([getJSON('/api/alerts'), getJSON('/api/alerts/receivers')]);
  } catch (error) {
    summary.textContent = '';
    showNotice(document.getElementById('alerts-error'), error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  summary.textContent = `${plural(answer.firing.length, 'alert')} firing, ${answer.pending.length} pending, ${answer.resolved.length} resolved in the last day; ${plural(answer.delivery_failures.length, 'receiver')} failing.`;
  fill(document.getElementById('alerts-firing'), alertTable(answer.firing, 'Nothing is firing.', 'Firing since'));
  fill(document.getElementById('alerts-pending'), alertTable(answer.pending, 'Nothing is pending.', 'Pending since'));
  fill(document.getElementById('alerts-resolved'), alertTable(answer.resolved, 'Nothing resolved in the last day.', 'Resolved'));
  fill(document.getElementById('alerts-delivery'), receiverTable(receivers.receivers, answer.delivery_failures));
  markReady();
}

start();
