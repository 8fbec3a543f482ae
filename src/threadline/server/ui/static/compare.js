// Two traces side by side: trace b (candidate) against trace a (baseline), operation by
// operation, from GET /api/compare. Both ids live in the query string.

import {
  ApiError, el, fill, fmtMs, getJSON, isTraceId, markReady, showNotice, traceHref,
} from './common.js';

const form = document.getElementById('compare-form');
const inputA = document.getElementById('c-a');
const inputB = document.getElementById('c-b');
const errorBox = document.getElementById('compare-error');
const box = document.getElementById('compare');

function signed(ms) {
  if (!ms) return '±0';
  return `${ms > 0 ? '+' : '−'}${fmtMs(Math.abs(ms))}`;
}

function delta(ms) {
  return el('span', { class: `delta${ms > 0 ? ' slower' : ms < 0 ? ' faster' : ''}`, text: signed(ms) });
}

function traceLink(id, label) {
  return el('a', { href: traceHref(id) }, `${label} `, el('code', { text: id }));
}

function opsList(title, ops) {
  if (!ops.length) return null;
  return el('section', { class: 'panel' }, el('h2', { text: title }),
    el('ul', { class: 'plain-list' }, ops.map((op) => el('li', {}, el('strong', { text: op.service }), ` ${op.operation}`))));
}

function render(answer) {
  const rows = [...answer.operations].sort((x, y) => Math.abs(y.duration_diff_ms) - Math.abs(x.duration_diff_ms));
  fill(box,
    el('p', { class: 'summary-line' },
      traceLink(answer.baseline_trace_id, 'A'), el('span', { text: fmtMs(answer.baseline_duration_ms) }),
      traceLink(answer.candidate_trace_id, 'B'), el('span', { text: fmtMs(answer.candidate_duration_ms) }),
      el('strong', {}, 'B − A: ', delta(answer.duration_diff_ms))),
    el('div', { class: 'table-wrap' }, el('table', { class: 'table', id: 'compare-table' },
      el('caption', { text: 'Operations, largest change first' }),
      el('thead', {}, el('tr', {},
        ['Operation', 'Count A', 'Count B', 'Time A', 'Time B', 'Change', 'Self time change'].map((h, k) => el('th', { scope: 'col', class: k ? 'num' : '', text: h })))),
      el('tbody', {}, rows.map((row) => el('tr', {},
        el('td', { class: 'cut' }, el('strong', { text: row.service }), ` ${row.operation}`),
        el('td', { class: 'num', text: row.baseline.count }),
        el('td', { class: 'num', text: row.candidate.count }),
        el('td', { class: 'num', text: fmtMs(row.baseline.duration_ms) }),
        el('td', { class: 'num', text: fmtMs(row.candidate.duration_ms) }),
        el('td', { class: 'num' }, delta(row.duration_diff_ms)),
        el('td', { class: 'num' }, delta(row.self_time_diff_ms))))))),
    el('div', { class: 'columns' },
      opsList('Only in A', answer.only_in_baseline),
      opsList('Only in B', answer.only_in_candidate)));
}

async function start() {
  const url = new URLSearchParams(window.location.search);
  const a = (url.get('a') || '').trim();
  const b = (url.get('b') || '').trim();
  inputA.value = a;
  inputB.value = b;
  if (!a || !b) {
    fill(box, el('p', { class: 'muted', text: 'Give two trace ids: A, the usual one, and B, the one to explain.' }));
    markReady();
    return;
  }
  try {
    render(await getJSON('/api/compare', new URLSearchParams({ a, b })));
  } catch (error) {
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
  }
  markReady();
}

form.addEventListener('submit', (event) => {
  for (const input of [inputA, inputB]) {
    input.setCustomValidity(isTraceId(input.value.trim()) ? '' : 'A trace id is 32 hexadecimal characters.');
  }
  if (!form.checkValidity()) {
    event.preventDefault();
    form.reportValidity();
  }
});

start();
