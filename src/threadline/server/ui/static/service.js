// A service's page: rate, errors and latency over time, its operations, its slowest
// and failed traces, why its slow requests are slow, and where its failures start.

import {
  ApiError, el, fill, fmtMs, fmtPercent, fmtRate, getJSON, markReady, plural, searchHref,
  showNotice, traceHref,
} from './common.js';
import { barChart, lineChart } from './charts.js';
import { sloLink } from './slo_badges.js';
import { renderTraceList } from './trace_list.js';
import { currentWindow, windowPicker } from './windows.js';

const ROWS = 8;
const main = document.getElementById('main');
const service = main.dataset.service;
const errorBox = document.getElementById('service-error');
const windowParam = currentWindow();
const windowMs = { '15m': 9e5, '1h': 3.6e6, '6h': 2.16e7, '24h': 8.64e7, '168h': 6.048e8 }[windowParam];

function muted(text) {
  return el('p', { class: 'muted', text });
}

function latencyCells(latency) {
  return ['p50', 'p95', 'p99'].map((p) => el('td', { class: 'num', text: latency ? fmtMs(latency[p]) : '–' }));
}

function drawCharts(red) {
  const charts = document.getElementById('charts');
  const buckets = red.buckets;
  const bucketMs = red.bucket_ms || 60_000;
  const perBucket = bucketMs % 3_600_000 === 0 ? `per ${bucketMs / 3_600_000} h`
    : bucketMs % 60_000 === 0 ? `per ${bucketMs / 60_000} min` : `per ${bucketMs / 1000} s`;
  fill(charts);
  barChart(charts, {
    title: `Requests ${perBucket} · ${fmtRate(red.totals.request_rate_per_s)} overall`,
    buckets, value: (b) => b.requests, format: (v) => String(Math.round(v)),
    tooltip: (b) => `${b.requests} requests (${fmtRate(b.request_rate_per_s)})`,
  });
  barChart(charts, {
    title: `Errors ${perBucket} · ${fmtPercent(red.totals.error_rate)} of requests`,
    buckets, value: (b) => b.errors, format: (v) => String(Math.round(v)), className: 'error',
    tooltip: (b) => `${b.errors} errors of ${b.requests} (${fmtPercent(b.error_rate)})`,
  });
  lineChart(charts, {
    title: 'Latency',
    buckets,
    format: fmtMs,
    series: [
      { label: 'p50', color: '#2f7ed8', value: (b) => b.latency_ms?.p50 },
      { label: 'p95', color: '#e67e22', value: (b) => b.latency_ms?.p95 },
      { label: 'p99', color: '#c0392b', value: (b) => b.latency_ms?.p99 },
    ],
  });
}

function drawOperations(red) {
  const table = document.getElementById('ops-table');
  fill(table.querySelector('thead'), el('tr', {},
    ['Operation', 'Requests', 'Rate', 'Errors', 'p50', 'p95', 'p99'].map((h, k) => el('th', { scope: 'col', class: k ? 'num' : '', text: h }))));
  const rows = [...red.operations].sort((a, b) => b.requests - a.requests);
  fill(table.querySelector('tbody'), rows.length
    ? rows.map((op) => el('tr', { class: op.errors ? 'has-error' : '' },
      el('td', { class: 'cut' }, op.other
        ? el('span', { class: 'muted', text: op.operation, title: 'Requests of every operation name past the cap' })
        : el('a', { href: searchHref({ service, operation: op.operation }), text: op.operation, title: `Traces of ${op.operation}` })),
      el('td', { class: 'num', text: op.requests.toLocaleString('en') }),
      el('td', { class: 'num', text: fmtRate(op.request_rate_per_s) }),
      el('td', { class: 'num' }, op.errors ? el('span', { class: 'status error', text: fmtPercent(op.error_rate) }) : '0'),
      latencyCells(op.latency_ms)))
    : el('tr', {}, el('td', { colSpan: 7, class: 'muted', text: 'No requests entered this service in the window (it may only make calls).' })));
  // Past the cap on distinct operation names, later names are counted together.
  const note = document.getElementById('ops-capped');
  note.hidden = !red.capped;
  if (red.capped) {
    const other = red.operations.find((op) => op.other);
    fill(note, `This service has sent more than ${red.kept_operations.toLocaleString('en')} distinct operation names. `
      + `Only the first ${red.kept_operations.toLocaleString('en')} are listed; requests of any later name are counted together under `,
    el('code', { text: '(other)' }),
    other ? ` (${other.requests.toLocaleString('en')} requests in this window).` : '.',
    ' Their traces keep their own names.');
  }
}

function exampleLinks(ids) {
  if (!ids?.length) return null;
  return el('p', { class: 'examples' }, 'Examples: ', ids.slice(0, 5).flatMap((id, k) => [
    k ? ' ' : null, el('a', { href: traceHref(id), text: id.slice(0, 7), title: id }),
  ]));
}

// The lift is smoothed (docs/analysis.md), so for a value none of the others carry it is
// a ratio that only reflects the sample's size: say "none" instead.
function againstOthers(row) {
  if (row.baseline_traces === 0) return ', none of the others';
  // The lift's 95% interval, when a sample leaves it uncertain to the shown digit
  // (docs/analysis.md).
  const [low, high] = [row.lift_low.toFixed(1), row.lift_high.toFixed(1)];
  const range = low === high ? '' : `, ${low}–${high}`;
  return ` vs ${fmtPercent(row.baseline_share)} of the others (×${row.lift.toFixed(1)}${range})`;
}

// A row whose figure its sample cannot tell from the row above's: the order of the two is
// the sample's chance, and a count over every trace may swap them.
const TIED_TITLE = "The sample cannot tell this row's figure from the one above: a count over every trace may order the two either way.";

function tiedMark(row) {
  return row.tied ? el('span', { class: 'muted tied', text: ' · tied with the one above', title: TIED_TITLE }) : null;
}

// Values that go with slow (failed) requests, strongest lift first, and the people the
// requests gather on; the API lists only values that are signal (docs/analysis.md).
function attributeList(answer, focus, label) {
  const rows = answer.attributes;
  const people = answer.concentrations || [];
  if (!rows.length && !people.length) return null;
  return el('div', { class: 'attribute-causes' },
    el('h3', { text: `Values that go with ${label}` }),
    el('ul', { class: 'plain-list' },
      rows.slice(0, ROWS).map((row) => el('li', { class: 'cause' },
        el('a', { href: searchHref({ service, attr: `${row.key}=${row.value}` }) },
          el('code', { text: `${row.key}=${row.value}` })),
        el('span', { class: 'muted', text: ` on ${fmtPercent(row[`${focus}_share`])} of ${label} traces${againstOthers(row)}` }),
        tiedMark(row),
        row.alike?.length
          ? el('span', { class: 'muted alike', text: ` · ${plural(row.alike.length, 'value')} alike`, title: row.alike.map((a) => `${a.key}=${a.value}`).join('\n') })
          : null)),
      people.map((c) => el('li', { class: 'cause concentration' },
        el('code', { text: c.key }),
        ` concentrated in ${plural(c.count, c.noun.replace(/s$/, ''), c.noun)}`,
        el('span', { class: 'muted', text: ` (${Array.isArray(c.values) ? `${c.values.slice(0, 3).join(', ')}${c.count > 3 ? ', …' : ''}` : c.values}): ${fmtPercent(c[`${focus}_share`])} of ${label} traces vs ${fmtPercent(c.baseline_share)} of the others` })))));
}

// The counts above are exact; the shares and times below come from a bounded sample of
// each group when a group is larger, and critical-path times from the first traces of
// that sample (docs/analysis.md): say so, and how large.
function sampleNote(answer, focus, others) {
  const focusSample = answer[`${focus}_sample`];
  const focusTraces = answer[`${focus}_traces`];
  // A group smaller than the limit is read whole; its count may still exceed its traces
  // (a trace can hold several of the target's requests).
  const sampled = (taken, of) => taken >= answer.sample_limit && taken < of;
  const shares = sampled(focusSample, focusTraces) || sampled(answer.baseline_sample, answer.baseline_traces);
  const walked = answer[`${focus}_walked`];
  const fewer = walked != null && (walked < focusSample || answer.baseline_walked < answer.baseline_sample);
  if (!shares && !fewer) return null;
  const count = (n) => n.toLocaleString('en');
  const ofGroups = (a, b) => `${count(a)} of the ${plural(focusTraces, `${focus} trace`)} and ${count(b)} of the ${plural(answer.baseline_traces, `${others} one`)}`;
  let text;
  if (shares && fewer) {
    const each = walked === answer.baseline_walked ? `${count(walked)} of each` : `${count(walked)} ${focus} and ${count(answer.baseline_walked)} ${others} ones`;
    text = `The figures below come from samples: the shares from ${ofGroups(focusSample, answer.baseline_sample)}, the times on the critical path from ${each}.`;
  } else if (shares) {
    text = `The figures below come from a sample: ${ofGroups(focusSample, answer.baseline_sample)}.`;
  } else {
    text = `The times on the critical path come from ${ofGroups(walked, answer.baseline_walked)}.`;
  }
  const margins = ' ± gives each figure\'s 95% margin, and a row the sample cannot tell from the one above says so.';
  return el('p', { class: 'muted sampled', text: `${text} The counts are exact.${margins}` });
}

function drawWhySlow(answer) {
  const box = document.getElementById('why-slow');
  if (!answer.slow_traces) {
    fill(box, muted('Not enough requests in this window to tell slow from usual.'));
    return;
  }
  const growth = answer.operations.filter((row) => row.growth_ms > 0).slice(0, ROWS);
  fill(box,
    el('p', {}, `Slow means over ${fmtMs(answer.threshold_ms)} (p${answer.percentile}): ${plural(answer.slow_traces, 'trace')}, against ${answer.baseline_traces.toLocaleString('en')} usual ones.`),
    sampleNote(answer, 'slow', 'usual'),
    growth.length
      ? el('div', {}, el('h3', { text: 'Where the extra time goes' }),
        el('div', { class: 'table-wrap' }, el('table', { class: 'table' },
          el('thead', {}, el('tr', {}, el('th', { scope: 'col', text: 'Operation' }), el('th', { scope: 'col', class: 'num', text: 'Slow' }),
            el('th', { scope: 'col', class: 'num', text: 'Usual' }), el('th', { scope: 'col', class: 'num', text: 'Extra' }))),
          el('tbody', {}, growth.map((row) => el('tr', {},
            el('td', { class: 'cut' }, el('strong', { text: row.service }), ` ${row.operation}`, tiedMark(row)),
            el('td', { class: 'num', text: fmtMs(row.slow_critical_path_ms ?? row.slow_self_ms) }),
            el('td', { class: 'num', text: fmtMs(row.baseline_critical_path_ms ?? row.baseline_self_ms) }),
            el('td', { class: 'num status error' }, `+${fmtMs(row.growth_ms)}`,
              row.growth_margin_ms ? el('span', { class: 'muted margin', text: ` ± ${fmtMs(row.growth_margin_ms)}` }) : null)))))))
      : null,
    attributeList(answer, 'slow', 'slow'),
    exampleLinks(answer.example_trace_ids));
}

function drawHotspots(answer) {
  const box = document.getElementById('hotspots');
  if (!answer.failed_traces) {
    fill(box, muted('No failed requests in this window.'));
    return;
  }
  const sources = answer.operations.slice(0, ROWS);
  fill(box,
    el('p', {}, `${plural(answer.failed_traces, 'failed trace')} against ${answer.baseline_traces.toLocaleString('en')} that succeeded.`),
    sampleNote(answer, 'failed', 'other'),
    sources.length
      ? el('div', {}, el('h3', { text: 'Where failures start' }),
        el('ul', { class: 'plain-list' }, sources.map((row) => el('li', { class: 'cause' },
          el('strong', { text: row.service }), ` ${row.operation}`,
          el('span', { class: 'muted', text: ` · fails in ${fmtPercent(row.failed_share)} of failed traces (${fmtPercent(row.baseline_share)} of the others)${row.score_margin ? `, ± ${(row.score_margin * 100).toFixed(1)} points` : ''}` }),
          tiedMark(row)))))
      : null,
    attributeList(answer, 'failed', 'failed'),
    exampleLinks(answer.example_trace_ids));
}

// The SDK's own figures (from its threadline.sdk.stats spans): not requests, so they
// live here, per process, and never in the charts, lists or map above.
function drawSdk(answer) {
  const box = document.getElementById('sdk-stats');
  if (!answer.processes.length) {
    fill(box, muted('No Threadline SDK reported its export figures in this window (they are sent every stats_interval_s).'));
    return;
  }
  const count = (n) => n.toLocaleString('en');
  const dropReasons = (p) => Object.entries(p.dropped_by_reason).filter(([, n]) => n > 0).map(([r, n]) => `${r} ${count(n)}`).join(', ');
  fill(box,
    el('p', {}, `${count(answer.totals.exported_spans)} spans exported, ${count(answer.totals.dropped_spans)} dropped, ${count(answer.totals.retried_spans)} retried by ${plural(answer.processes.length, 'process', 'processes')} (since each started).`),
    el('div', { class: 'table-wrap' }, el('table', { class: 'table', id: 'sdk-table' },
      el('thead', {}, el('tr', {}, ['Process', 'Exported', 'Dropped', 'Retried', 'Queue use', 'Last report'].map((h, k) => el('th', { scope: 'col', class: k && k < 5 ? 'num' : '', text: h })))),
      el('tbody', {}, answer.processes.map((p) => el('tr', { class: p.dropped_spans ? 'has-error' : '' },
        el('td', { class: 'cut', text: p.instance, title: p.instance }),
        el('td', { class: 'num', text: count(p.exported_spans) }),
        el('td', { class: 'num', text: count(p.dropped_spans), title: dropReasons(p) || 'nothing dropped' }),
        el('td', { class: 'num', text: count(p.retried_spans) }),
        el('td', { class: 'num', text: p.queue_use === null ? `${count(p.queued_spans)} queued` : `${fmtPercent(p.queue_use)} (${count(p.queued_spans)}/${count(p.queue_capacity)})` }),
        el('td', { class: 'muted', text: p.reported })))))));
}

async function section(load, draw, boxId) {
  try {
    draw(await load());
  } catch (error) {
    fill(document.getElementById(boxId), el('p', { class: 'notice error', text: error instanceof ApiError ? error.message : String(error) }));
  }
}

// Badges of the SLOs on this service (its own and those on calls to it), each a link.
async function drawSlos() {
  const box = document.getElementById('service-slos');
  try {
    const answer = await getJSON('/api/slo-status', new URLSearchParams({ service }));
    fill(box, answer.slos.length ? ['SLOs: ', answer.slos.map((s) => [sloLink(s), ' '])] : null);
  } catch {
    fill(box);  // the rest of the page stands without them
  }
  document.body.dataset.readySlos = 'true';
}

async function start() {
  drawSlos();
  const params = new URLSearchParams({ window: windowParam });
  fill(document.getElementById('service-links'),
    el('a', { class: 'button', href: searchHref({ service }), text: 'Search its traces' }),
    el('a', { class: 'button', href: searchHref({ service, status: 'error' }), text: 'Failed traces' }),
    el('a', { class: 'button', href: '/map', text: 'Service map' }),
    windowPicker());
  let red;
  try {
    red = await getJSON(`/api/services/${encodeURIComponent(service)}/red`, params);
  } catch (error) {
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
    for (const id of ['why-slow', 'hotspots']) fill(document.getElementById(id));
    markReady();
    return;
  }
  drawCharts(red);
  drawOperations(red);
  const since = String(Date.now() - windowMs);
  const traceQuery = (extra) => new URLSearchParams({ service, start: since, limit: String(ROWS), ...extra });
  await Promise.all([
    section(() => getJSON('/api/traces', traceQuery({ order: 'slowest' })),
      (answer) => renderTraceList(document.getElementById('slow-traces'), answer.traces, { compact: true }), 'slow-traces'),
    section(() => getJSON('/api/traces', traceQuery({ status: 'error' })),
      (answer) => (answer.traces.length
        ? renderTraceList(document.getElementById('failed-traces'), answer.traces, { compact: true })
        : fill(document.getElementById('failed-traces'), el('li', { class: 'muted', text: 'No failed traces in this window.' }))), 'failed-traces'),
    section(() => getJSON('/api/slow', new URLSearchParams({ service, window: windowParam, limit: String(ROWS) })), drawWhySlow, 'why-slow'),
    section(() => getJSON('/api/errors/hotspots', new URLSearchParams({ service, window: windowParam, limit: String(ROWS) })), drawHotspots, 'hotspots'),
    section(() => getJSON(`/api/services/${encodeURIComponent(service)}/sdk`, params), drawSdk, 'sdk-stats'),
  ]);
  markReady();
}

start();
