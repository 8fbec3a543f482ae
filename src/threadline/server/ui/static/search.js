// The search page: filters, order and page all live in the query string.
//
// The URL's parameters are GET /api/traces's own (service, operation, attr, status,
// min_duration, max_duration, start, end, session_id, user_id, journey_id, log_text,
// synthetic, limit, order, offset),
// plus `lookback`, which becomes `start` when the request is sent. So a link
// reproduces the view, and the page shows exactly what the API answers.

import {
  ApiError, el, fmtMs, getJSON, isTracePrefix, markReady, plural, showNotice, svg, traceHref,
} from './common.js';
import { renderTraceList } from './trace_list.js';

const DEFAULT_LIMIT = 20;
const FILTER_KEYS = ['service', 'operation', 'status', 'min_duration', 'max_duration', 'start', 'end',
  'session_id', 'user_id', 'journey_id', 'log_text', 'synthetic', 'limit'];
const FORM_KEYS = [...FILTER_KEYS, 'lookback'];
const ORDERS = ['recent', 'oldest', 'slowest', 'fastest'];
const LOOKBACK_UNITS = { m: 60_000, h: 3_600_000, d: 86_400_000 };

const form = document.getElementById('filters');
const serviceSelect = document.getElementById('f-service');
const operationSelect = document.getElementById('f-operation');
const attrInput = document.getElementById('f-attr');
const lookbackSelect = document.getElementById('f-lookback');
const customRange = document.getElementById('custom-range');
const sortSelect = document.getElementById('sort');
const list = document.getElementById('trace-list');
const count = document.getElementById('result-count');
const errorBox = document.getElementById('search-error');
const scatter = document.getElementById('scatter');
const pager = document.getElementById('pager');
const filtersBox = document.getElementById('filters-box');
const activeFilters = document.getElementById('active-filters');
// On a phone the filters start folded, so the results are on the first screen.
const NARROW = window.matchMedia('(max-width: 800px)');

let services = [];

// --- attribute filters: `key=value key2="value with spaces"` <-> repeated attr=key=value

const ATTR_TOKEN = /\s*([^\s="]+)=("(?:[^"\\]|\\.)*"|[^\s"]*)\s*/y;

function parseAttributes(text) {
  const pairs = [];
  const trimmed = text.trim();
  ATTR_TOKEN.lastIndex = 0;
  while (ATTR_TOKEN.lastIndex < trimmed.length) {
    const start = ATTR_TOKEN.lastIndex;
    const match = ATTR_TOKEN.exec(trimmed);
    if (!match) {
      throw new Error(`Cannot read "${trimmed.slice(start, start + 40)}": write key=value pairs separated by spaces, with "quotes" around values that contain spaces.`);
    }
    const value = match[2].startsWith('"') ? JSON.parse(match[2]) : match[2];
    pairs.push(`${match[1]}=${value}`);
  }
  return pairs;
}

function formatAttributes(pairs) {
  return pairs.map((pair) => {
    const at = pair.indexOf('=');
    const value = pair.slice(at + 1);
    return /[\s"]/.test(value) || value === '' ? `${pair.slice(0, at)}=${JSON.stringify(value)}` : pair;
  }).join(' ');
}

// --- URL <-> form ---------------------------------------------------------------------

function lookbackMs(text) {
  const match = /^(\d+)([mhd])$/.exec(text);
  return match ? Number(match[1]) * LOOKBACK_UNITS[match[2]] : null;
}

function apiParams(url) {
  const query = new URLSearchParams();
  for (const key of [...FILTER_KEYS, 'order', 'offset']) {
    const value = url.get(key);
    if (value) query.set(key, value);
  }
  for (const pair of url.getAll('attr')) if (pair) query.append('attr', pair);
  const span = lookbackMs(url.get('lookback') || '');
  if (span !== null) {
    query.set('start', String(Date.now() - span));
    query.delete('end');
  }
  return query;
}

function fillOperations(selected) {
  const service = serviceSelect.value;
  const names = new Set();
  for (const entry of services) {
    if (!service || entry.name === service) for (const op of entry.operations) names.add(op);
  }
  if (selected) names.add(selected);
  operationSelect.replaceChildren(el('option', { value: '', text: 'any operation' }),
    ...[...names].sort().map((name) => el('option', { value: name, text: name, selected: name === selected })));
}

function fillServices(selected) {
  const names = services.map((s) => s.name);
  if (selected && !names.includes(selected)) names.push(selected);
  serviceSelect.replaceChildren(el('option', { value: '', text: 'any service' }),
    ...names.map((name) => el('option', { value: name, text: name, selected: name === selected })));
}

function fillForm(url) {
  fillServices(url.get('service') || '');
  fillOperations(url.get('operation') || '');
  for (const key of FORM_KEYS) {
    if (key === 'service' || key === 'operation') continue;
    const field = form.elements.namedItem(key);
    if (field) field.value = url.get(key) || '';
  }
  const lookback = url.get('lookback') || (url.get('start') || url.get('end') ? 'custom' : '');
  lookbackSelect.value = lookback;
  customRange.hidden = lookback !== 'custom';
  attrInput.value = formatAttributes(url.getAll('attr'));
  sortSelect.value = ORDERS.includes(url.get('order')) ? url.get('order') : 'recent';
  const active = [...FILTER_KEYS, 'lookback', 'attr'].filter((key) => key !== 'limit' && url.get(key)).length;
  activeFilters.textContent = active ? `(${plural(active, 'filter')})` : '';
}

// The form's filters, keeping the current order; a new search starts at the first page.
function urlFromForm() {
  const url = new URLSearchParams();
  const lookback = lookbackSelect.value;
  for (const key of FORM_KEYS) {
    const field = form.elements.namedItem(key);
    const value = field ? field.value.trim() : '';
    if (!value || value === 'custom') continue;
    if ((key === 'start' || key === 'end') && lookback !== 'custom') continue;
    url.set(key, value);
  }
  for (const pair of parseAttributes(attrInput.value)) url.append('attr', pair);
  const order = new URLSearchParams(window.location.search).get('order');
  if (order) url.set('order', order);
  return url;
}

function hrefOf(url) {
  const query = url.toString();
  return query ? `/?${query}` : '/';
}

function navigate(url) {
  window.history.pushState(null, '', hrefOf(url));
  load();
}

// --- results ------------------------------------------------------------------------

// Duration against start time, drawn at the box's pixel width so dots stay round.
function renderScatter(traces) {
  scatter.replaceChildren();
  if (traces.length < 2) return;
  const height = 110;
  const pad = 8;
  const label = el('div', { class: 'scatter-label muted' });
  scatter.append(label);
  const width = Math.max(200, Math.floor(scatter.clientWidth || 600));
  const minT = Math.min(...traces.map((t) => t.start_ns));
  const maxT = Math.max(...traces.map((t) => t.start_ns));
  const maxD = Math.max(...traces.map((t) => t.duration_ms)) || 1;
  label.textContent = `Duration over time (this page; longest ${fmtMs(maxD)})`;
  const x = (t) => pad + (maxT > minT ? ((t.start_ns - minT) / (maxT - minT)) * (width - 2 * pad) : width / 2);
  const y = (t) => height - pad - (t.duration_ms / maxD) * (height - 2 * pad);
  const dots = traces.map((t) => svg('a', { href: traceHref(t.trace_id), 'aria-label': `${t.root_operation}, ${fmtMs(t.duration_ms)}` },
    svg('circle', { cx: x(t).toFixed(1), cy: y(t).toFixed(1), r: 4, class: t.error_count > 0 ? 'dot error' : 'dot' },
      svg('title', { text: `${t.root_service}: ${t.root_operation} · ${fmtMs(t.duration_ms)}` }))));
  scatter.append(svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, class: 'scatter-plot', role: 'img', 'aria-label': 'Trace durations over time' },
    svg('line', { x1: pad, y1: height - pad, x2: width - pad, y2: height - pad, class: 'axis' }),
    dots));
}

function pageLink(url, label, offset, rel, enabled) {
  if (!enabled) return el('span', { class: 'button disabled', 'aria-disabled': 'true', text: label });
  const copy = new URLSearchParams(url);
  if (offset > 0) copy.set('offset', String(offset)); else copy.delete('offset');
  const href = hrefOf(copy);
  return el('a', {
    class: 'button', href, rel, text: label,
    on: { click: (event) => { event.preventDefault(); window.history.pushState(null, '', href); load(); } },
  });
}

function render(url, answer, error) {
  errorBox.hidden = !error;
  if (error) {
    showNotice(errorBox, error);
    for (const node of [list, scatter, pager]) node.replaceChildren();
    count.textContent = '';
    return;
  }
  const { traces } = answer;
  const limit = Number.parseInt(url.get('limit') || '', 10) || DEFAULT_LIMIT;
  const offset = Number.parseInt(url.get('offset') || '', 10) || 0;
  renderScatter(traces);
  count.textContent = traces.length
    ? `${plural(traces.length, 'trace')} · ${offset + 1}–${offset + traces.length}`
    : offset > 0 ? 'No more traces.' : 'No traces match these filters.';
  renderTraceList(list, traces);
  pager.replaceChildren();
  if (offset > 0 || answer.next_cursor) {
    pager.append(
      pageLink(url, '‹ Previous', Math.max(0, offset - limit), 'prev', offset > 0),
      el('span', { class: 'muted', text: `page ${Math.floor(offset / limit) + 1}` }),
      pageLink(url, 'Next ›', offset + limit, 'next', Boolean(answer.next_cursor)));
  }
}

async function load() {
  delete document.body.dataset.ready;
  const url = new URLSearchParams(window.location.search);
  const lookupId = (url.get('trace_id') || '').trim();
  if (isTracePrefix(lookupId)) {
    window.location.replace(traceHref(lookupId.toLowerCase()));
    return;
  }
  fillForm(url);
  count.textContent = 'Searching…';
  let answer = null;
  let error = null;
  try {
    answer = await getJSON('/api/traces', apiParams(url));
  } catch (failure) {
    error = failure instanceof ApiError ? failure.message : String(failure);
  }
  render(url, answer, error);
  markReady();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  attrInput.setCustomValidity('');
  let url;
  try {
    url = urlFromForm();
  } catch (error) {
    attrInput.setCustomValidity(error.message);
    attrInput.reportValidity();
    return;
  }
  navigate(url);
});
attrInput.addEventListener('input', () => attrInput.setCustomValidity(''));
serviceSelect.addEventListener('change', () => fillOperations(''));
lookbackSelect.addEventListener('change', () => { customRange.hidden = lookbackSelect.value !== 'custom'; });
sortSelect.addEventListener('change', () => {
  const url = new URLSearchParams(window.location.search);
  if (sortSelect.value === 'recent') url.delete('order'); else url.set('order', sortSelect.value);
  url.delete('offset');
  navigate(url);
});
window.addEventListener('popstate', load);

async function start() {
  if (NARROW.matches) filtersBox.open = false;
  try {
    services = (await getJSON('/api/services')).services;
  } catch {
    services = []; // the filters still work as free text through the URL
  }
  await load();
}

start();
