// One SLO's page: state, budget and burndown, burn per window and burn over time against
// the workbook's thresholds, each rule's verdict, its alerts, example traces of the last hour's bad
// events, and what those requests have in common.

import {
  ApiError, el, fill, fmtMs, fmtPercent, fmtTime, getJSON, markReady, plural, serviceHref,
  showNotice, traceHref,
} from './common.js';
import { burnText, stateBadge } from './slo_badges.js';
import { burnChart, burndownChart, burnSeriesChart } from './slo_charts.js';

const main = document.getElementById('main');
const name = main.dataset.slo;
const api = `/api/slos/${encodeURIComponent(name)}`;

function muted(text) {
  return el('p', { class: 'muted', text });
}

function definition(slo) {
  const target = slo.indicator === 'edge'
    ? [el('a', { href: serviceHref(slo.service), text: slo.service }), ' → ', el('a', { href: serviceHref(slo.callee), text: slo.callee })]
    : [el('a', { href: serviceHref(slo.service), text: slo.service }), slo.operation ? ` ${slo.operation}` : ''];
  if (slo.reaches) {
    return [`${fmtPercent(slo.objective)} of journeys that take `, ...target, ' go on to ',
      el('strong', { class: 'funnel-step', text: slo.reaches }), `, over a rolling ${slo.window} (judged 5 minutes after the step).`];
  }
  const what = { errors: 'requests that do not fail', latency: `requests under ${slo.threshold}`,
    journey: 'journeys without a failed step', edge: `calls that succeed${slo.threshold ? ` under ${slo.threshold}` : ''}` }[slo.indicator] || slo.indicator;
  return [`${fmtPercent(slo.objective)} of `, ...target, ` ${what}, over a rolling ${slo.window}.`];
}

function table(id, headers, rows) {
  const node = document.getElementById(id);
  fill(node.querySelector('thead'), el('tr', {}, headers.map((h, k) => el('th', { scope: 'col', class: k ? 'num' : '', text: h }))));
  fill(node.querySelector('tbody'), rows);
}

function drawStatus(status) {
  const slo = status.slo;
  fill(document.getElementById('slo-state'), stateBadge(status.state));
  fill(document.getElementById('slo-definition'), definition(slo));
  fill(document.getElementById('slo-figures'), el('p', { class: 'summary-line' },
    el('span', {}, el('strong', { text: status.budget_remaining == null ? '–' : fmtPercent(status.budget_remaining) }), ' of the error budget left'),
    el('span', { text: `${status.bad.toLocaleString('en')} bad of ${plural(status.events, 'event')} in the window` }),
    el('span', { text: `budget ${fmtPercent(status.error_budget)} of events` }),
    status.effective_threshold_ms != null ? el('span', { text: `compared at ${fmtMs(status.effective_threshold_ms)}` }) : null,
    el('span', { class: 'muted', text: `evaluated ${fmtTime(status.evaluated_ns)}` })));
  const thresholds = new Map();
  for (const rule of status.rules) {
    for (const window of rule.windows) {
      if (!window) continue;
      const list = thresholds.get(window) || [];
      if (!list.includes(rule.factor)) list.push(rule.factor);
      thresholds.set(window, list);
    }
  }
  const charts = document.getElementById('slo-charts');
  fill(charts);
  burndownChart(charts, status.burndown, slo.window);
  burnChart(charts, status.burn_rates, thresholds);
  burnSeriesChart(charts, status.burn_series, status.rules);
  table('burn-table', ['Window', 'Events', 'Bad', 'Burn', 'Thresholds'], status.burn_rates.map((b) => el('tr', { dataset: { window: b.window } },
    el('td', { text: b.window }),
    el('td', { class: 'num', text: b.events.toLocaleString('en') }),
    el('td', { class: 'num', text: b.bad.toLocaleString('en') }),
    el('td', { class: 'num burn', text: burnText(b.burn) }),
    el('td', { class: 'num', text: (thresholds.get(b.window) || []).map((f) => `${f}×`).join(', ') || '–' }))));
  table('rule-table', ['Rule', 'Severity', 'Long window', 'Short window', 'Threshold', 'Verdict'], status.rules.map((r) => el('tr', { class: r.firing ? 'has-error' : '' },
    el('td', { text: `${r.windows[0]} and ${r.windows[1]}` }),
    el('td', { class: 'num', text: r.severity }),
    el('td', { class: 'num', text: burnText(r.long_burn) }),
    el('td', { class: 'num', text: burnText(r.short_burn) }),
    el('td', { class: 'num', text: `${r.factor}×` }),
    el('td', { class: 'num' }, r.firing ? el('span', { class: 'status error', text: 'fires' })
      : r.guarded ? el('span', { class: 'muted', text: `guarded (${r.short_events} < ${status.min_events} events)` }) : 'holds'))));
  const alerts = status.alerts.filter((a) => a.state !== 'resolved');
  fill(document.getElementById('slo-alerts'), alerts.length
    ? el('ul', { class: 'plain-list' }, alerts.map((a) => el('li', { class: 'cause' },
      stateBadge(a.state === 'firing' ? 'firing' : 'burning'), ' ', el('strong', { text: a.alert }), ` ${a.state} since ${fmtTime(a.active_since_ns)}`,
      el('div', { class: 'muted', text: a.summary }))))
    : muted('No alert is pending or firing.'));
  if (status.retry) {
    const r = status.retry;
    document.getElementById('slo-alerts').append(el('p', { class: 'muted', text: `Retries on this edge in the last 5m: ${r.retried} of ${plural(r.calls, 'call')} (${fmtPercent(r.share)}; alert over ${fmtPercent(r.limit)}).` }));
  }
}

function drawExamples(answer) {
  const list = document.getElementById('slo-examples');
  fill(list, answer.examples.length
    ? answer.examples.map((x) => el('li', { class: `trace-item${x.error ? ' has-error' : ''}` },
      el('a', { class: 'trace-link example', href: traceHref(x.trace_id), dataset: { traceId: x.trace_id } },
        el('div', { class: 'trace-title' }, el('code', { class: 'trace-id', text: x.trace_id, title: x.trace_id })),
        el('div', { class: 'trace-meta' }, el('span', { text: fmtMs(x.duration_ms) }),
          x.error ? el('span', { class: 'badge error', text: 'failed' }) : el('span', { class: 'badge warn', text: 'slow' }),
          el('time', { class: 'muted', text: fmtTime(x.start_ns) })))))
    : el('li', { class: 'muted', text: 'No bad events in the last hour.' }));
  const common = document.getElementById('slo-common');
  const label = answer.bad;
  fill(common,
    answer.in_common.length
      ? el('div', {}, el('h3', { text: `Values that go with ${label} requests` }), el('ul', { class: 'plain-list' }, answer.in_common.map((a) => el('li', { class: 'cause' },
        el('code', { text: `${a.key}=${a.value}` }),
        el('span', { class: 'muted', text: ` on ${fmtPercent(a.bad_share)} of ${label} requests vs ${fmtPercent(a.baseline_share)} of the rest` })))))
      : null,
    answer.errors_start.length
      ? el('div', {}, el('h3', { text: 'Where their errors start' }), el('ul', { class: 'plain-list' }, answer.errors_start.map((e) => el('li', { class: 'cause' },
        el('strong', { text: e.service }), ` ${e.operation}`,
        el('span', { class: 'muted', text: ` · in ${fmtPercent(e.bad_share)} of ${label} requests` })))))
      : null,
    answer.in_common.length || answer.errors_start.length ? null : muted('Nothing stands out: the bad requests look like the rest, or there are too few to compare.'));
}

async function start() {
  let status;
  try {
    status = await getJSON(api);
  } catch (error) {
    showNotice(document.getElementById('slo-error'), error instanceof ApiError ? error.message : String(error));
    for (const id of ['slo-charts', 'slo-alerts', 'slo-examples', 'slo-common']) fill(document.getElementById(id));
    markReady();
    return;
  }
  drawStatus(status);
  try {
    drawExamples(await getJSON(`${api}/examples`));
  } catch (error) {
    fill(document.getElementById('slo-examples'), el('li', { class: 'notice error', text: error instanceof ApiError ? error.message : String(error) }));
    fill(document.getElementById('slo-common'));
  }
  markReady();
}

start();
