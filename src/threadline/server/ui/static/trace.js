// The trace page: summary, where the time went, and the waterfall with span details.
//
// A trace may hold tens of thousands of spans, so the waterfall is virtualised: the
// spans arrive in depth-first order (a subtree is a contiguous run), every row has the
// same height, and only the rows in view (plus a margin) exist in the DOM, each
// absolutely positioned over a spacer as tall as all visible rows. Collapsing a node
// skips its run; scrolling re-renders on the next animation frame.
//
// The server sends a large trace in pages (`next_offset`); because the order is
// depth-first, each page continues the tree where the last stopped, so the next page
// is fetched and appended when the view nears the last loaded row.

import {
  ApiError, el, fmtMs, getJSON, markReady, plural, serviceColor, showNotice, swatch, valueText,
} from './common.js';
import { renderSpanDetail } from './span_detail.js';
import { loadTraceLogs, logTick, renderLogsTab, spanLines } from './trace_logs.js';
import { renderCriticalShares, renderHeader, renderNotes, renderRuler } from './trace_header.js';

const ROW_HEIGHT = 24; // px; .row in style.css has the same height
const OVERSCAN = 15; // rows rendered above and below the view, so fast scrolls show no gaps
const INDENT_PX = 14;
const MAX_INDENT_LEVELS = 24; // deeper spans stop moving right and show their depth instead
const FIND_DELAY_MS = 150;
const LOAD_AHEAD_ROWS = 200; // fetch the next page when the view is this close to the end

const main = document.getElementById('main');
const traceId = main.dataset.traceId;
const rowsBox = document.getElementById('rows');
const spacer = document.getElementById('rows-spacer');
const detail = document.getElementById('detail');
const errorBox = document.getElementById('trace-error');
const findInput = document.getElementById('find');
const findCount = document.getElementById('find-count');
const pagesStatus = document.getElementById('span-pages');

const state = {
  trace: null,
  spans: [],
  byId: new Map(),
  parent: null, // Int32Array: index of the parent row, -1 for roots
  subtreeEnd: null, // Int32Array: first index after the span's subtree
  collapsed: null, // Uint8Array
  errorOrigin: null, // Uint8Array: failed, and nothing below it failed
  visible: [], // span indexes in display order
  position: null, // Int32Array: row of each span in `visible`, -1 when hidden
  selected: -1,
  startNs: 0,
  spanNs: 1,
  critical: new Map(), // span index -> [[startNs, endNs, kind], ...] on the critical path
  skew: new Map(), // span id -> {shift_ms, reason, origin_span_id}
  origins: new Map(), // span id -> error origin from the server (exception, message)
  recovered: new Set(), // span ids of errors a retry recovered from
  matches: [],
  matchSet: new Set(),
  matchCursor: -1,
  rendered: new Map(), // span index -> row element
  nextOffset: null, // where the next page of spans starts; null once all are here
  loadingPage: false,
};

// --- structure ------------------------------------------------------------------------

function index(spans) {
  const n = spans.length;
  const parent = new Int32Array(n).fill(-1);
  const subtreeEnd = new Int32Array(n).fill(n);
  const stack = [];
  for (let i = 0; i < n; i++) {
    const depth = spans[i].depth;
    while (stack.length && spans[stack[stack.length - 1]].depth >= depth) subtreeEnd[stack.pop()] = i;
    if (stack.length && depth > 0) parent[i] = stack[stack.length - 1];
    stack.push(i);
  }
  // Where errors started: the server's error-origin analysis when it sent one, else
  // any failed span whose subtree holds no other failure.
  const errorOrigin = new Uint8Array(n);
  if (state.trace.errors) {
    for (const id of state.origins.keys()) if (state.byId.has(id)) errorOrigin[state.byId.get(id)] = 1;
  } else {
    const failedBelow = new Uint8Array(n);
    for (let i = n - 1; i >= 0; i--) {
      const failed = spans[i].status === 'error';
      if (failed && !failedBelow[i]) errorOrigin[i] = 1;
      if (parent[i] >= 0 && (failed || failedBelow[i])) failedBelow[parent[i]] = 1;
    }
  }
  // Collapsed rows stay collapsed when a page of spans is appended.
  const collapsed = new Uint8Array(n);
  if (state.collapsed) collapsed.set(state.collapsed.subarray(0, Math.min(n, state.collapsed.length)));
  Object.assign(state, { parent, subtreeEnd, errorOrigin, collapsed });
}

function hasChildren(i) {
  return state.subtreeEnd[i] > i + 1;
}

function computeVisible() {
  const { spans, collapsed, subtreeEnd } = state;
  const visible = [];
  const position = new Int32Array(spans.length).fill(-1);
  let i = 0;
  while (i < spans.length) {
    position[i] = visible.length;
    visible.push(i);
    i = collapsed[i] ? subtreeEnd[i] : i + 1;
  }
  state.visible = visible;
  state.position = position;
  spacer.style.height = `${visible.length * ROW_HEIGHT}px`;
}

function expandAncestors(i) {
  for (let p = state.parent[i]; p >= 0; p = state.parent[p]) state.collapsed[p] = 0;
}

// --- rows -------------------------------------------------------------------------------

function pct(ns) {
  return `${((ns - state.startNs) / state.spanNs) * 100}%`;
}

function buildRow(i) {
  const span = state.spans[i];
  const failed = span.status === 'error';
  const expandable = hasChildren(i);
  const collapsed = state.collapsed[i] === 1;
  const level = Math.min(span.depth, MAX_INDENT_LEVELS);

  const toggleButton = expandable
    ? el('button', {
      type: 'button', class: 'toggle', tabIndex: -1,
      'aria-label': collapsed ? 'Expand' : 'Collapse',
      text: collapsed ? '▸' : '▾',
      on: { click: (event) => { event.stopPropagation(); select(i, { scroll: false }); toggle(i); } },
    })
    : el('span', { class: 'toggle-space', 'aria-hidden': 'true' });
  const badges = [];
  // On a narrow screen a badge shrinks to its one-character form (see style.css).
  const badge = (kind, text, short, title) => badges.push(el('span', { class: `badge ${kind}`, title: title || text },
    el('span', { class: 'long', text }), el('span', { class: 'short', 'aria-hidden': 'true', text: short })));
  if (span.depth > MAX_INDENT_LEVELS) badge('', `depth ${span.depth}`, String(span.depth));
  if (collapsed) badge('', `+${state.subtreeEnd[i] - i - 1}`, `+${state.subtreeEnd[i] - i - 1}`, 'spans hidden below');
  if (state.errorOrigin[i]) badge('error', 'error origin', '!!');
  else if (state.recovered.has(span.span_id)) badge('warn', 'recovered', 'r', 'failed, then a retry succeeded');
  else if (failed) badge('error', 'error', '!');
  if (span.orphan) badge('warn', 'orphan', 'o', 'its parent span never arrived');
  if (state.skew.has(span.span_id)) badge('skew', 'clock adjusted', '⟲', 'times shifted to correct clock skew');
  const logged = spanLines(span.span_id).length;
  if (logged) badge('log', plural(logged, 'log line'), '≡', 'log lines of this span (in its details)');

  const name = el('div', { class: 'cell-name', style: { paddingLeft: `${4 + level * INDENT_PX}px` } },
    toggleButton, swatch(span.service),
    el('span', { class: 'svc', text: span.service }),
    el('span', { class: 'op', text: span.name }), badges);

  const left = (span.start_ns - state.startNs) / state.spanNs;
  const width = Math.max(0, (span.end_ns - span.start_ns) / state.spanNs);
  const bar = el('div', {
    class: `bar${failed ? ' error' : ''}`,
    style: { left: `${left * 100}%`, width: `max(2px, ${width * 100}%)`, backgroundColor: serviceColor(span.service) },
  });
  const timeline = el('div', { class: 'cell-bar' }, bar);
  for (const [start, end, kind] of state.critical.get(i) || []) {
    timeline.append(el('div', {
      class: kind === 'span' ? 'crit' : 'crit waiting',
      title: kind === 'queue' ? 'on the critical path: waiting in the queue' : kind === 'wait' ? 'on the critical path: waiting to start' : 'on the critical path',
      style: { left: pct(start), width: `max(2px, ${((end - start) / state.spanNs) * 100}%)` },
    }));
  }
  // A tick on the bar at each log line's time: where in the span it logged.
  for (const line of spanLines(span.span_id)) timeline.append(logTick(line, pct(line.time_ns)));
  const labelText = fmtMs(span.duration_ms);
  // The duration goes after the bar, or before it near the right edge, or inside a wide bar.
  let label;
  if (left + width <= 0.8) label = el('span', { class: 'bar-label', style: { left: `${(left + width) * 100}%` }, text: labelText });
  else if (left >= 0.2) label = el('span', { class: 'bar-label', style: { right: `${(1 - left) * 100}%` }, text: labelText });
  else label = el('span', { class: 'bar-label inside', style: { right: `${(1 - left - width) * 100}%` }, text: labelText });
  timeline.append(label);

  const classes = ['row'];
  if (failed) classes.push('error');
  if (i === state.selected) classes.push('selected');
  if (state.critical.has(i)) classes.push('critical');
  if (state.matchSet.has(i)) classes.push('match');
  const row = el('div', {
    class: classes.join(' '), id: `span-row-${i}`, role: 'treeitem',
    'aria-level': span.depth + 1, 'aria-selected': i === state.selected ? 'true' : 'false',
    dataset: { spanId: span.span_id },
    on: { click: () => select(i, { scroll: false }) },
  }, name, timeline);
  if (expandable) row.setAttribute('aria-expanded', collapsed ? 'false' : 'true');
  return row;
}

function renderRows(force = false) {
  if (force) {
    for (const row of state.rendered.values()) row.remove();
    state.rendered.clear();
  }
  const top = rowsBox.scrollTop;
  const height = rowsBox.clientHeight || 600;
  const first = Math.max(0, Math.floor(top / ROW_HEIGHT) - OVERSCAN);
  const last = Math.min(state.visible.length, Math.ceil((top + height) / ROW_HEIGHT) + OVERSCAN);
  const wanted = new Set();
  const fresh = document.createDocumentFragment();
  for (let p = first; p < last; p++) {
    const i = state.visible[p];
    wanted.add(i);
    let row = state.rendered.get(i);
    if (!row) {
      row = buildRow(i);
      state.rendered.set(i, row);
      fresh.append(row);
    }
    row.style.transform = `translateY(${p * ROW_HEIGHT}px)`;
  }
  for (const [i, row] of state.rendered) {
    if (!wanted.has(i)) {
      row.remove();
      state.rendered.delete(i);
    }
  }
  spacer.append(fresh);
  if (state.nextOffset !== null && last >= state.visible.length - LOAD_AHEAD_ROWS) loadNextPage();
}

// --- pages of a large trace -------------------------------------------------------------

function addSpans(spans) {
  const offset = state.spans.length;
  for (const [k, span] of spans.entries()) {
    state.byId.set(span.span_id, offset + k);
    if (span.start_ns < state.startNs || span.end_ns > state.startNs + state.spanNs) {
      const endNs = Math.max(span.end_ns, state.startNs + state.spanNs);
      state.startNs = Math.min(state.startNs, span.start_ns);
      state.spanNs = Math.max(1, endNs - state.startNs);
    }
  }
  state.spans.push(...spans);
}

function showPages() {
  const total = state.trace.span_count ?? state.spans.length;
  pagesStatus.hidden = state.spans.length >= total;
  pagesStatus.textContent = `${state.spans.length.toLocaleString('en')} of ${plural(total, 'span')} loaded; more load as you scroll`;
}

async function loadNextPage() {
  if (state.loadingPage || state.nextOffset === null) return;
  state.loadingPage = true;
  let page;
  try {
    page = await getJSON(`/api/traces/${traceId}?offset=${state.nextOffset}`);
  } catch (error) {
    showNotice(errorBox, `Could not load more spans: ${error.message}`);
    state.nextOffset = null;
    return;
  } finally {
    state.loadingPage = false;
  }
  const scaleBefore = `${state.startNs}/${state.spanNs}`;
  addSpans(page.spans);
  for (const adjustment of page.skew_adjustments || []) state.skew.set(adjustment.span_id, adjustment);
  state.nextOffset = page.next_offset ?? null;
  index(state.spans);
  if (`${state.startNs}/${state.spanNs}` !== scaleBefore) renderRuler(state.spanNs);
  computeVisible();
  showPages();
  renderRows(true);
  if (state.nextOffset === null) markReady('pages');
}

let framePending = false;
function onScroll() {
  if (framePending) return;
  framePending = true;
  requestAnimationFrame(() => {
    framePending = false;
    renderRows();
  });
}

function scrollToRow(i) {
  const p = state.position[i];
  if (p < 0) return;
  const top = p * ROW_HEIGHT;
  const height = rowsBox.clientHeight;
  if (top < rowsBox.scrollTop) rowsBox.scrollTop = top;
  else if (top + ROW_HEIGHT > rowsBox.scrollTop + height) rowsBox.scrollTop = top + ROW_HEIGHT - height;
}

function toggle(i, open) {
  if (!hasChildren(i)) return;
  const next = open === undefined ? !state.collapsed[i] : !open;
  if (Boolean(state.collapsed[i]) === next) return;
  state.collapsed[i] = next ? 1 : 0;
  computeVisible();
  renderRows(true);
}

// Collapse everything below the roots' children, or open everything.
function setAll(collapse) {
  for (let i = 0; i < state.spans.length; i++) {
    state.collapsed[i] = collapse && hasChildren(i) && state.spans[i].depth > 0 ? 1 : 0;
  }
  computeVisible();
  renderRows(true);
  if (state.selected >= 0 && state.position[state.selected] < 0) {
    let i = state.selected;
    while (state.position[i] < 0) i = state.parent[i];
    select(i);
  }
}

function select(i, { scroll = true } = {}) {
  if (i < 0 || i >= state.spans.length) return;
  const previous = state.selected;
  state.selected = i;
  if (state.position[i] < 0) {
    expandAncestors(i);
    computeVisible();
    renderRows(true);
  } else {
    for (const index of [previous, i]) {
      const row = state.rendered.get(index);
      if (row) {
        row.classList.toggle('selected', index === i);
        row.setAttribute('aria-selected', index === i ? 'true' : 'false');
      }
    }
  }
  rowsBox.setAttribute('aria-activedescendant', `span-row-${i}`);
  if (scroll) {
    scrollToRow(i);
    renderRows();
  }
  showDetail(i);
  const url = new URL(window.location.href);
  url.searchParams.set('span', state.spans[i].span_id);
  window.history.replaceState(null, '', url);
}

// --- keyboard: the ARIA tree pattern on the focusable rows box -------------------------

function onKey(event) {
  if (!state.spans.length) return;
  const { visible, position } = state;
  const current = state.selected >= 0 ? state.selected : visible[0];
  const p = position[current];
  const page = Math.max(1, Math.floor(rowsBox.clientHeight / ROW_HEIGHT) - 1);
  let target = null;
  switch (event.key) {
    case 'ArrowDown': target = visible[Math.min(visible.length - 1, state.selected < 0 ? 0 : p + 1)]; break;
    case 'ArrowUp': target = visible[Math.max(0, p - 1)]; break;
    case 'PageDown': target = visible[Math.min(visible.length - 1, p + page)]; break;
    case 'PageUp': target = visible[Math.max(0, p - page)]; break;
    case 'Home': target = visible[0]; break;
    case 'End': target = visible[visible.length - 1]; break;
    case 'ArrowRight':
      if (hasChildren(current) && state.collapsed[current]) toggle(current, true);
      else if (hasChildren(current)) target = current + 1;
      else target = current;
      break;
    case 'ArrowLeft':
      if (hasChildren(current) && !state.collapsed[current]) toggle(current, false);
      else target = state.parent[current] >= 0 ? state.parent[current] : current;
      break;
    case 'Enter':
    case ' ':
      if (state.selected < 0) target = current;
      else toggle(current);
      break;
    case 'Escape':
      closeDetail();
      break;
    default:
      return;
  }
  event.preventDefault();
  if (target !== null && target !== undefined) select(target);
  else if (state.selected >= 0) select(state.selected);
}

// --- span details -----------------------------------------------------------------------

function spanLink(spanId, label) {
  const i = state.byId.get(spanId);
  if (i === undefined) return el('code', { text: label || spanId });
  return el('button', { type: 'button', class: 'link', text: label || spanId, on: { click: () => select(i) } });
}

const detailView = {
  get startNs() { return state.startNs; },
  get traceId() { return traceId; },
  spanLink,
  spanName: (spanId) => state.spans[state.byId.get(spanId)]?.name,
  originOf: (span) => (state.errorOrigin[state.byId.get(span.span_id)] ? state.origins.get(span.span_id) || {} : null),
  isRecovered: (span) => state.recovered.has(span.span_id),
  skewOf: (span) => state.skew.get(span.span_id),
  criticalNsOf: (span) => (state.critical.get(state.byId.get(span.span_id)) || []).reduce((sum, [a, b]) => sum + (b - a), 0),
  logsOf: (span) => spanLines(span.span_id),
  onClose: () => closeDetail(),
};

function showDetail(i) {
  renderSpanDetail(detail, state.spans[i], detailView);
  detail.hidden = false;
  main.classList.add('with-detail');
}

function closeDetail() {
  detail.hidden = true;
  main.classList.remove('with-detail');
  const url = new URL(window.location.href);
  url.searchParams.delete('span');
  window.history.replaceState(null, '', url);
  renderRows();
}

// --- find -----------------------------------------------------------------------------

function spanMatches(span, needle) {
  if (span.name.toLowerCase().includes(needle) || span.service.toLowerCase().includes(needle)) return true;
  if (span.span_id.includes(needle)) return true;
  for (const [key, value] of Object.entries(span.attributes)) {
    if (key.toLowerCase().includes(needle) || valueText(value).toLowerCase().includes(needle)) return true;
  }
  return false;
}

function runFind() {
  const needle = findInput.value.trim().toLowerCase();
  state.matches = needle ? state.spans.flatMap((span, i) => (spanMatches(span, needle) ? [i] : [])) : [];
  state.matchSet = new Set(state.matches);
  state.matchCursor = -1;
  findCount.textContent = needle ? plural(state.matches.length, 'match', 'matches') : '';
  renderRows(true);
}

function nextMatch(step) {
  if (!state.matches.length) return;
  state.matchCursor = (state.matchCursor + step + state.matches.length) % state.matches.length;
  select(state.matches[state.matchCursor]);
  findCount.textContent = `${state.matchCursor + 1} of ${state.matches.length}`;
}

// --- optional analyses: shown when the server offers them -------------------------------

async function loadCriticalPath() {
  let answer;
  try {
    answer = await getJSON(`/api/traces/${traceId}/critical-path`);
  } catch {
    return; // the waterfall is whole without it
  }
  applyCriticalPath(answer);
  markReady('critical');
}

function applyCriticalPath(answer) {
  const segments = answer.segments || [];
  if (!segments.length) return;
  state.critical = new Map();
  for (const segment of segments) {
    const i = state.byId.get(segment.span_id);
    if (i === undefined) continue;
    if (!state.critical.has(i)) state.critical.set(i, []);
    state.critical.get(i).push([segment.start_ns, segment.end_ns, segment.kind]);
  }
  document.getElementById('critical-toggle').hidden = false;
  renderCriticalShares(answer);
  renderRows(true);
  if (state.selected >= 0) showDetail(state.selected);
}

// --- start ----------------------------------------------------------------------------

async function start() {
  let trace;
  try {
    trace = await getJSON(`/api/traces/${traceId}`);
  } catch (error) {
    document.getElementById('trace-summary').textContent = '';
    showNotice(errorBox, error instanceof ApiError && error.status === 404
      ? `No trace ${traceId} is stored (yet): spans may still be on their way, or it was never sampled.`
      : `Could not load the trace: ${error.message}`);
    markReady();
    return;
  }
  performance.mark('threadline-trace-loaded'); // bench/ui.py: how much of the wait was the API
  state.trace = trace;
  state.nextOffset = trace.next_offset ?? null;
  for (const adjustment of trace.skew_adjustments || []) state.skew.set(adjustment.span_id, adjustment);
  for (const origin of trace.errors?.origins || []) state.origins.set(origin.span_id, origin);
  for (const id of trace.errors?.recovered_span_ids || []) state.recovered.add(id);
  // The trace's own extent first (it covers spans of later pages too); the spans
  // widen it where clock-skew fix-ups moved one outside.
  state.startNs = trace.summary.start_ns;
  state.spanNs = Math.max(1, Math.round(trace.summary.duration_ms * 1e6));
  addSpans(trace.spans);
  index(state.spans);
  showPages();
  renderHeader(trace);
  renderNotes(trace, spanLink, (spanId) => state.spans[state.byId.get(spanId)]);
  renderRuler(state.spanNs);
  computeVisible();
  renderRows(true);
  const wanted = new URLSearchParams(window.location.search).get('span');
  if (wanted && state.byId.has(wanted)) select(state.byId.get(wanted));
  markReady();
  if (state.nextOffset === null) markReady('pages');
  loadCriticalPath();
  loadLogs();
}

// Log lines arrive after the spans: rows gain their markers, an open panel its lines.
async function loadLogs() {
  try {
    await loadTraceLogs(traceId);
  } catch (error) {
    showNotice(errorBox, `Could not load the trace's log lines: ${error.message}`);
    return;
  }
  renderLogsTab(document.getElementById('trace-logs'), state.startNs);
  renderRows(true);
  if (state.selected >= 0 && !detail.hidden) showDetail(state.selected);
  markReady('logs');
}

rowsBox.addEventListener('scroll', onScroll, { passive: true });
rowsBox.addEventListener('keydown', onKey);
window.addEventListener('resize', onScroll);
document.getElementById('expand-all').addEventListener('click', () => setAll(false));
document.getElementById('collapse-all').addEventListener('click', () => setAll(true));
document.getElementById('show-critical').addEventListener('change', (event) => {
  main.classList.toggle('hide-critical', !event.target.checked);
});
let findTimer = 0;
findInput.addEventListener('input', () => {
  clearTimeout(findTimer);
  findTimer = setTimeout(runFind, FIND_DELAY_MS);
});
findInput.addEventListener('keydown', (event) => {
  if (event.key === 'Enter') {
    event.preventDefault();
    clearTimeout(findTimer);
    if (state.matchCursor === -1 && findInput.value.trim()) runFind();
    nextMatch(event.shiftKey ? -1 : 1);
  }
});

start();
