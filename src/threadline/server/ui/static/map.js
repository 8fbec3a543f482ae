// The service map: services as boxes, calls as arrows, laid out left to right by who
// calls whom (callers before callees), drawn as SVG. Each box links to its service page.

import {
  ApiError, el, fill, fmtMs, fmtPercent, fmtRate, getJSON, markReady, plural, serviceHref,
  showNotice, svg, traceHref,
} from './common.js';
import { currentWindow, windowPicker } from './windows.js';

const NODE_W = 200;
const NODE_H = 58;
const COLUMN_GAP = 200; // room for an arrow's label between two columns
const ROW_GAP = 40;
const PAD = 28;
const LABEL_AT = 0.55; // where along an arrow its label sits (0 caller, 1 callee)

function bezierPoint(p0, p1, p2, p3, t) {
  const u = 1 - t;
  return u * u * u * p0 + 3 * u * u * t * p1 + 3 * u * t * t * p2 + t * t * t * p3;
}

// What each edge kind means, for tooltips: inferred calls have no CLIENT span.
const KIND_TITLES = {
  call: 'call',
  message: 'message hop',
  inferred: 'inferred: a server span whose parent is in the caller, no client span recorded',
};

const mapBox = document.getElementById('map');
const summary = document.getElementById('map-summary');
const errorBox = document.getElementById('map-error');
const edgeTable = document.getElementById('edge-table');

// Columns by longest call chain from a service nobody calls; cycles are cut where found.
function layers(names, edges) {
  const out = new Map(names.map((n) => [n, []]));
  for (const e of edges) if (e.caller !== e.callee) out.get(e.caller).push(e.callee);
  const state = new Map();
  const forward = [];
  const visit = (node) => {
    state.set(node, 'open');
    for (const next of out.get(node)) {
      if (state.get(next) === 'open') continue; // a back edge: calling it would make a cycle
      forward.push([node, next]);
      if (!state.has(next)) visit(next);
    }
    state.set(node, 'done');
  };
  const called = new Set(edges.filter((e) => e.caller !== e.callee).map((e) => e.callee));
  for (const n of names.filter((name) => !called.has(name))) if (!state.has(n)) visit(n);
  for (const n of names) if (!state.has(n)) visit(n);
  const column = new Map(names.map((n) => [n, 0]));
  // Longest path on the acyclic forward edges: relax as often as there are nodes.
  for (let round = 0; round < names.length; round++) {
    let changed = false;
    for (const [a, b] of forward) {
      if (column.get(b) < column.get(a) + 1) {
        column.set(b, column.get(a) + 1);
        changed = true;
      }
    }
    if (!changed) break;
  }
  const columns = [];
  for (const n of names) (columns[column.get(n)] ||= []).push(n);
  // Order each column by the mean row of its callers, so arrows cross less.
  const row = new Map();
  columns.forEach((members, c) => {
    if (c > 0) {
      const callerRows = (n) => forward.filter(([, b]) => b === n).map(([a]) => row.get(a)).filter((r) => r !== undefined);
      const key = (n) => { const rows = callerRows(n); return rows.length ? rows.reduce((x, y) => x + y, 0) / rows.length : 0; };
      members.sort((a, b) => key(a) - key(b) || (a < b ? -1 : 1));
    }
    members.forEach((n, r) => row.set(n, r));
  });
  return columns;
}

function draw(answer) {
  const windowS = answer.window.duration_ms / 1000;
  const nodesByName = new Map(answer.services.map((s) => [s.name, s]));
  for (const e of answer.edges) {
    for (const name of [e.caller, e.callee]) if (!nodesByName.has(name)) nodesByName.set(name, { name, requests: 0 });
  }
  const names = [...nodesByName.keys()].sort();
  const columns = layers(names, answer.edges);
  const tallest = Math.max(1, ...columns.map((c) => c.length));
  const width = PAD * 2 + columns.length * NODE_W + (columns.length - 1) * COLUMN_GAP;
  const height = PAD * 2 + tallest * NODE_H + (tallest - 1) * ROW_GAP;
  const at = new Map();
  columns.forEach((members, c) => {
    const offset = ((tallest - members.length) * (NODE_H + ROW_GAP)) / 2;
    members.forEach((name, r) => at.set(name, {
      x: PAD + c * (NODE_W + COLUMN_GAP),
      y: PAD + offset + r * (NODE_H + ROW_GAP),
    }));
  });

  const edges = answer.edges.map((e) => {
    const a = at.get(e.caller);
    const b = at.get(e.callee);
    const failing = e.error_rate > 0;
    let path;
    let labelX;
    let labelY;
    if (b.x > a.x) {
      const x1 = a.x + NODE_W; const y1 = a.y + NODE_H / 2; const x2 = b.x; const y2 = b.y + NODE_H / 2;
      const bend = (x2 - x1) / 2;
      path = `M${x1},${y1} C${x1 + bend},${y1} ${x2 - bend},${y2} ${x2},${y2}`;
      labelX = bezierPoint(x1, x1 + bend, x2 - bend, x2, LABEL_AT);
      labelY = bezierPoint(y1, y1, y2, y2, LABEL_AT) - 5;
    } else {
      // Back or same-column call: loop over the top of both boxes.
      const x1 = a.x + NODE_W / 2 + 10; const x2 = b.x + NODE_W / 2 - 10;
      const top = Math.min(a.y, b.y) - 22;
      path = `M${x1},${a.y} C${x1},${top} ${x2},${top} ${x2},${b.y}`;
      labelX = (x1 + x2) / 2; labelY = top - 2;
    }
    const p99 = e.latency_ms ? `p99 ${fmtMs(e.latency_ms.p99)}` : '';
    const label = `${fmtRate(e.calls / windowS)}${failing ? ` · ${fmtPercent(e.error_rate)} err` : ''}${p99 ? ` · ${p99}` : ''}`;
    return svg('g', { class: `edge${failing ? ' error' : ''}${e.kind === 'inferred' ? ' inferred' : ''}`, dataset: { kind: e.kind } },
      svg('path', { d: path, 'marker-end': failing ? 'url(#arrow-error)' : 'url(#arrow)' }),
      svg('text', { x: labelX.toFixed(1), y: labelY.toFixed(1), 'text-anchor': 'middle', text: label }),
      svg('title', { text: `${e.caller} → ${e.callee} (${KIND_TITLES[e.kind] || e.kind}): ${plural(e.calls, 'call')}, ${label}` }));
  });

  const nodes = names.map((name) => {
    const { x, y } = at.get(name);
    const stats = nodesByName.get(name);
    const failing = stats.error_rate > 0;
    const rate = stats.requests ? `${fmtRate(stats.requests / windowS)} · p99 ${fmtMs(stats.latency_ms?.p99)}` : 'no requests of its own';
    const errors = stats.requests ? `${fmtPercent(stats.error_rate)} errors` : '';
    const shown = name.length > 24 ? `${name.slice(0, 23)}…` : name;
    return svg('a', { href: serviceHref(name), class: `node${failing ? ' has-error' : ''}`, 'aria-label': `${name}: ${rate}, ${errors}`, dataset: { service: name } },
      svg('rect', { x, y, width: NODE_W, height: NODE_H, rx: 6 }),
      svg('text', { x: x + 10, y: y + 19, text: shown }),
      svg('text', { x: x + 10, y: y + 35, class: 'sub', text: rate }),
      svg('text', { x: x + 10, y: y + 50, class: failing ? 'sub error' : 'sub', text: errors }),
      svg('title', { text: `${name}\n${rate}\n${errors}` }));
  });

  const marker = (id) => svg('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  fill(mapBox, svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Service map' },
    svg('defs', {}, marker('arrow'), svg('g', { class: 'error' }, marker('arrow-error'))),
    svg('g', {}, edges), svg('g', {}, nodes)));
  return { names, windowS };
}

function edgeRows(answer, windowS) {
  const tbody = edgeTable.querySelector('tbody');
  const sorted = [...answer.edges].sort((a, b) => b.calls - a.calls);
  fill(tbody, sorted.map((e) => el('tr', { class: e.errors ? 'has-error' : '' },
    el('td', {}, el('a', { href: serviceHref(e.caller), text: e.caller })),
    el('td', {}, el('a', { href: serviceHref(e.callee), text: e.callee }), e.kind === 'call' ? null : el('span', { class: 'badge', text: e.kind, title: KIND_TITLES[e.kind] || e.kind })),
    el('td', { class: 'num', text: e.calls.toLocaleString('en') }),
    el('td', { class: 'num', text: fmtRate(e.calls / windowS) }),
    el('td', { class: 'num' }, e.errors ? el('span', { class: 'status error', text: `${e.errors} (${fmtPercent(e.error_rate)})` }) : '0'),
    el('td', { class: 'num', text: e.latency_ms ? fmtMs(e.latency_ms.p50) : '–' }),
    el('td', { class: 'num', text: e.latency_ms ? fmtMs(e.latency_ms.p99) : '–' }),
    el('td', { class: 'num', text: e.queue_dwell_ms ? fmtMs(e.queue_dwell_ms.p99) : '–' }))));
  edgeTable.hidden = !sorted.length;
}

// Where trace context was lost: services whose requests arrive without a parent, orphans, hops.
async function drawPropagation(windowParam) {
  let report;
  try {
    report = await getJSON('/api/propagation', new URLSearchParams({ window: windowParam }));
  } catch {
    return;
  }
  const box = document.getElementById('propagation');
  if (report.healthy) {
    fill(box, el('p', { class: 'muted', text: 'Trace context travelled intact: no lost parents, orphans or broken message hops in this window.' }));
  } else {
    const items = [];
    for (const s of report.services.filter((x) => x.unparented > 0)) {
      items.push(el('li', {}, el('a', { href: serviceHref(s.service), text: s.service }),
        ` starts ${fmtPercent(s.unparented_share)} of its requests without a parent (${s.unparented} of ${s.entry_spans})`,
        s.example_trace_id ? [' · ', el('a', { href: traceHref(s.example_trace_id), text: 'example' })] : null));
    }
    for (const o of report.orphans) {
      items.push(el('li', {}, el('a', { href: serviceHref(o.service), text: o.service }),
        ` has ${plural(o.orphan_spans, 'orphan span')} whose parent never arrived`,
        o.example_trace_id ? [' · ', el('a', { href: traceHref(o.example_trace_id), text: 'example' })] : null));
    }
    for (const h of report.message_hops.filter((x) => x.broken > 0)) {
      items.push(el('li', {}, `${h.producer} → ${h.consumer} via ${h.destination}: ${h.broken} of ${h.messages} messages lost the trace`));
    }
    fill(box, el('ul', { class: 'plain-list' }, items));
  }
  box.closest('section').hidden = false;
}

async function start() {
  const windowParam = currentWindow();
  document.getElementById('map-tools').append(windowPicker());
  let answer;
  try {
    answer = await getJSON('/api/service-map', new URLSearchParams({ window: windowParam }));
  } catch (error) {
    summary.textContent = '';
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  if (!answer.services.length && !answer.edges.length) {
    summary.textContent = 'No spans in this window: widen it, or send some traces.';
    markReady();
    return;
  }
  const { names, windowS } = draw(answer);
  edgeRows(answer, windowS);
  summary.textContent = `${plural(names.length, 'service')}, ${plural(answer.edges.length, 'connection')} · boxes: requests/s, error rate, p99 latency of each service; arrows: calls/s, error rate, p99 of the callee${answer.edges.some((e) => e.kind === 'inferred') ? ' (dashed: inferred from a server span under another service, no client span recorded)' : ''}. Select a service for its page.`;
  markReady();
  drawPropagation(windowParam);
}

start();
