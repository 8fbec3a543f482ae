// The drills page: every scheduled probe with its state, its recent runs as a strip
// (newest on the right), its last failure (what broke, the verdict, a link to the
// failing trace) and a table of its runs. `?probe=` shows one probe.

import { ApiError, el, fill, fmtAgo, fmtMs, fmtTime, getJSON, markReady, plural, showNotice } from './common.js';

const traceHref = (id) => `/trace/${encodeURIComponent(id)}`;

function stateOf(drill) {
  if (drill.alert && drill.alert.state === 'firing') return 'firing';
  if (!drill.last_run) return 'waiting';
  return drill.last_run.passed ? 'passing' : 'failing';
}

function badge(state) {
  const kind = { firing: 'error', failing: 'warn' }[state] || '';
  return el('span', { class: `badge drill-state ${kind}`, text: state, dataset: { state } });
}

function strip(history) {
  // Oldest left, newest right, as a timeline reads.
  return el('div', { class: 'drill-strip', role: 'img', 'aria-label': `${plural(history.length, 'run')}: ${history.filter((r) => !r.passed).length} failed` },
    [...history].reverse().map((r) => el('span', {
      class: `drill-run ${r.passed ? 'pass' : 'fail'}`,
      title: `${fmtTime(r.started_ns)}: ${r.passed ? 'passed' : r.summary}`,
    })));
}

function lastFailure(run) {
  if (!run) return el('p', { class: 'muted', text: 'No failure in the runs kept.' });
  return el('div', { class: 'drill-failure' },
    el('p', {},
      el('strong', { class: 'status error', text: run.summary }),
      el('span', { class: 'muted', title: fmtTime(run.started_ns), text: ` ${fmtAgo(run.started_ns)}` }),
      run.trace_id ? [' · ', el('a', { class: 'drill-trace', href: traceHref(run.trace_id), text: `trace ${run.trace_id.slice(0, 16)}` })] : null),
    el('pre', { class: 'drill-verdict', text: run.verdict }));
}

function runTable(history) {
  if (!history.length) return el('p', { class: 'muted', text: 'No run yet.' });
  return el('div', { class: 'table-wrap' }, el('table', { class: 'table drill-runs' },
    el('thead', {}, el('tr', {}, ['Started', 'Result', 'Took', 'Services', 'Problem'].map((h) => el('th', { scope: 'col', text: h })))),
    el('tbody', {}, history.slice(0, 20).map((r) => el('tr', { class: r.passed ? '' : 'has-error' },
      el('td', { class: 'nowrap', title: fmtTime(r.started_ns), text: fmtAgo(r.started_ns) }),
      el('td', { text: r.passed ? 'passed' : 'failed' }),
      el('td', { class: 'nowrap', text: fmtMs(r.duration_ms) }),
      el('td', { text: r.services.join(', ') }),
      el('td', {}, r.passed ? '' : (r.trace_id ? el('a', { href: traceHref(r.trace_id), text: r.summary }) : r.summary)))))));
}

function panel(drill) {
  const state = stateOf(drill);
  const alert = drill.alert && drill.alert.state === 'firing'
    ? el('p', { class: 'notice error drill-alert', text: `Alert firing: ${drill.alert.summary}` })
    : null;
  return el('section', { class: 'panel drill', id: `drill-${drill.name}`, dataset: { drill: drill.name, state } },
    el('h2', {}, drill.name, ' ', badge(state)),
    el('p', { class: 'muted', text: `every ${drill.interval} · ${plural(drill.steps, 'step')} · expects ${drill.services.join(', ') || 'no named service'} · ${drill.passed} passed, ${drill.failed} failed of the last ${drill.history.length}${drill.running ? ' · running now' : ''}` }),
    alert,
    strip(drill.history),
    el('h3', { text: 'Last failure' }),
    lastFailure(drill.last_failure),
    el('h3', { text: 'Recent runs' }),
    runTable(drill.history));
}

async function start() {
  const summary = document.getElementById('drills-summary');
  const probe = new URLSearchParams(window.location.search).get('probe');
  let answer;
  try {
    answer = await getJSON(`/api/probes/results${probe ? `?probe=${encodeURIComponent(probe)}` : ''}`);
  } catch (error) {
    summary.textContent = '';
    showNotice(document.getElementById('drills-error'), error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  const drills = answer.drills;
  const count = (state) => drills.filter((d) => stateOf(d) === state).length;
  summary.textContent = drills.length
    ? `${plural(drills.length, 'drill')}: ${count('firing')} firing, ${count('failing')} failing, ${count('passing')} passing.`
    : 'No scheduled probes yet: add [[probe]] tables to threadline.toml or PUT /api/probes (see docs/probes.md).';
  fill(document.getElementById('drills'), drills.map(panel));
  markReady();
}

start();
