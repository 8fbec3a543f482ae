// Helpers every page uses: building DOM from data (as text only), calling the API,
// formatting durations and times, and the colours that tell services apart.
//
// Everything shown comes from spans that any service may have sent, so values only
// ever reach the page through textContent and attributes from a fixed allow-list;
// nothing here parses HTML.

const SVG_NS = 'http://www.w3.org/2000/svg';

// Properties el() sets directly; anything else must be aria-*, data-* or role.
const PROPERTIES = new Set([
  'id', 'title', 'type', 'value', 'hidden', 'disabled', 'checked', 'selected',
  'tabIndex', 'htmlFor', 'name', 'colSpan', 'scope', 'placeholder', 'open', 'rel',
]);
const SVG_ATTRIBUTES = new Set([
  'viewBox', 'width', 'height', 'x', 'y', 'x1', 'y1', 'x2', 'y2', 'cx', 'cy', 'r', 'rx', 'ry',
  'd', 'points', 'fill', 'stroke', 'stroke-width', 'stroke-dasharray', 'opacity',
  'text-anchor', 'dominant-baseline', 'transform', 'marker-end', 'refX', 'refY',
  'markerWidth', 'markerHeight', 'orient', 'preserveAspectRatio', 'role', 'tabindex',
  'focusable', 'font-size', 'id',
]);

// A link target built from data must stay on this server: a path, query or fragment.
function safeHref(href) {
  const text = String(href);
  if (/^(\/(?!\/)|\?|#)/.test(text)) return text;
  throw new Error(`refusing link target ${JSON.stringify(text.slice(0, 80))}`);
}

function applyCommon(node, key, value) {
  if (key === 'text') node.textContent = value == null ? '' : String(value);
  else if (key === 'on') for (const [event, handler] of Object.entries(value)) node.addEventListener(event, handler);
  else if (key === 'style') for (const [prop, v] of Object.entries(value)) node.style[prop] = v;
  else if (key === 'dataset') for (const [k, v] of Object.entries(value)) node.dataset[k] = String(v);
  else if (key.startsWith('aria-') || key === 'role') node.setAttribute(key, String(value));
  else return false;
  return true;
}

function appendChildren(node, children) {
  for (const child of children.flat(Infinity)) {
    if (child == null || child === false) continue;
    node.append(child instanceof Node ? child : document.createTextNode(String(child)));
  }
}

// Replaces the children of `node`; like el(), skips null/false and turns values into text.
export function fill(node, ...children) {
  node.replaceChildren();
  appendChildren(node, children);
  return node;
}

// An HTML element. `props`: class, text, href, on, style, dataset, aria-*, role and PROPERTIES.
export function el(tag, props = {}, ...children) {
  const node = document.createElement(tag);
  for (const [key, value] of Object.entries(props)) {
    if (value === undefined) continue;
    if (key === 'class') node.className = value;
    else if (key === 'href') node.setAttribute('href', safeHref(value));
    else if (PROPERTIES.has(key)) node[key] = value;
    else if (!applyCommon(node, key, value)) throw new Error(`el(): property ${key} is not allowed`);
  }
  appendChildren(node, children);
  return node;
}

// An SVG element; presentation attributes from SVG_ATTRIBUTES only.
export function svg(tag, attrs = {}, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [key, value] of Object.entries(attrs)) {
    if (value === undefined) continue;
    if (key === 'class') node.setAttribute('class', value);
    else if (key === 'href') node.setAttribute('href', safeHref(value));
    else if (SVG_ATTRIBUTES.has(key)) node.setAttribute(key, String(value));
    else if (!applyCommon(node, key, value)) throw new Error(`svg(): attribute ${key} is not allowed`);
  }
  appendChildren(node, children);
  return node;
}

export class ApiError extends Error {
  constructor(status, message) {
    super(message);
    this.status = status;
  }
}

// The JSON answer of GET `path`; ApiError with the API's own message otherwise.
export async function getJSON(path, params) {
  const query = params ? String(params) : '';
  let response;
  try {
    response = await fetch(query ? `${path}?${query}` : path, { headers: { Accept: 'application/json' } });
  } catch {
    throw new ApiError(0, 'Cannot reach the Threadline server.');
  }
  let body = null;
  try {
    body = await response.json();
  } catch {
    body = null;
  }
  if (!response.ok) {
    const message = body && typeof body.error === 'string' ? body.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// Tells tests and scripts that the page has drawn its data (or its error).
// `part` names a piece drawn after the page's main data (e.g. an optional analysis).
// A performance mark ("threadline-ready", "threadline-ready-critical") times it for bench/ui.py.
export function markReady(part) {
  if (part) document.body.dataset[`ready${part[0].toUpperCase()}${part.slice(1)}`] = 'true';
  else document.body.dataset.ready = 'true';
  performance.mark(part ? `threadline-ready-${part}` : 'threadline-ready');
}

export function showNotice(node, message) {
  node.textContent = message;
  node.hidden = false;
}

// --- formatting -------------------------------------------------------------------

export function fmtMs(ms) {
  if (ms == null || Number.isNaN(ms)) return '–';
  const abs = Math.abs(ms);
  if (abs >= 60_000) {
    const minutes = Math.floor(abs / 60_000);
    const seconds = Math.round((abs % 60_000) / 1000);
    return `${ms < 0 ? '-' : ''}${minutes}m ${seconds}s`;
  }
  if (abs >= 1000) return `${(ms / 1000).toFixed(abs >= 10_000 ? 1 : 2)} s`;
  if (abs >= 1) return `${Number(ms.toPrecision(3))} ms`;
  if (abs >= 0.001) return `${Number((ms * 1000).toPrecision(3))} µs`;
  return ms === 0 ? '0 ms' : `${Math.round(ms * 1e6)} ns`;
}

function pad(number, width = 2) {
  return String(number).padStart(width, '0');
}

// Local date and time to the millisecond, e.g. "2025-11-21 11:00:09.830".
export function fmtTime(ns) {
  const date = new Date(ns / 1e6);
  return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
    `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}.${pad(date.getMilliseconds(), 3)}`;
}

export function fmtUtc(ns) {
  return new Date(ns / 1e6).toISOString();
}

export function fmtAgo(ns, now = Date.now()) {
  const seconds = Math.round((now - ns / 1e6) / 1000);
  if (seconds < 0) return 'in the future';
  if (seconds < 60) return `${seconds}s ago`;
  if (seconds < 3600) return `${Math.floor(seconds / 60)}m ago`;
  if (seconds < 86_400) return `${Math.floor(seconds / 3600)}h ago`;
  return `${Math.floor(seconds / 86_400)}d ago`;
}

export function fmtPercent(fraction) {
  if (fraction == null || Number.isNaN(fraction)) return '–';
  const percent = fraction * 100;
  if (percent === 0) return '0%';
  return percent < 1 ? `${percent.toFixed(2)}%` : `${Number(percent.toPrecision(3))}%`;
}

export function fmtRate(perSecond) {
  if (perSecond == null || Number.isNaN(perSecond)) return '–';
  if (perSecond >= 1) return `${Number(perSecond.toPrecision(3))}/s`;
  return `${Number((perSecond * 60).toPrecision(3))}/min`;
}

export function plural(count, noun, nouns = `${noun}s`) {
  return `${count.toLocaleString('en')} ${count === 1 ? noun : nouns}`;
}

// A value of an attribute map as text: strings as they are, anything else as JSON.
export function valueText(value) {
  return typeof value === 'string' ? value : JSON.stringify(value);
}

// --- links --------------------------------------------------------------------------

export const traceHref = (traceId) => `/trace/${encodeURIComponent(traceId)}`;
export const journeyHref = (sessionId) => `/journey/${encodeURIComponent(sessionId)}`;
export const userHref = (userId) => `/user/${encodeURIComponent(userId)}`;
export const serviceHref = (service) => `/service/${encodeURIComponent(service)}`;
export const searchHref = (params) => `/?${new URLSearchParams(params)}`;

export function isTraceId(text) {
  return /^[0-9a-fA-F]{32}$/.test(text);
}

// What the server accepts where a trace id goes: the id, or its first 8 to 31 characters.
export function isTracePrefix(text) {
  return /^[0-9a-fA-F]{8,32}$/.test(text);
}

// --- service colours ------------------------------------------------------------------

// Distinct, readable on white, and stable: a service keeps its colour on every page.
const PALETTE = [
  '#2f7ed8', '#17a589', '#e67e22', '#8e44ad', '#c0392b', '#2c3e50', '#d4ac0d', '#16a2b8',
  '#7f8c3d', '#d35490', '#5d6d7e', '#1e8449', '#a04000', '#6c5ce7', '#0e6655', '#b9770e',
];

export function serviceColor(name) {
  let hash = 0x811c9dc5; // FNV-1a: cheap and spreads similar names apart
  for (let i = 0; i < name.length; i++) {
    hash ^= name.charCodeAt(i);
    hash = Math.imul(hash, 0x01000193) >>> 0;
  }
  return PALETTE[hash % PALETTE.length];
}

export function swatch(service) {
  return el('span', { class: 'swatch', style: { backgroundColor: serviceColor(service) }, 'aria-hidden': 'true' });
}

// The badge of a synthetic journey's trace (a probe's or a drill's: `journey.synthetic=true`),
// or nothing; such traffic is left out of RED, SLOs, the map and the slow/failed baselines.
export function synthetic(trace) {
  return trace.synthetic
    ? el('span', { class: 'badge synthetic', text: 'synthetic', title: 'Test traffic (a probe or a drill): not counted in RED, SLOs or the service map' })
    : null;
}

export function serviceChip(service, { link = false } = {}) {
  const props = { class: 'chip', title: service };
  if (link) return el('a', { ...props, href: serviceHref(service) }, swatch(service), service);
  return el('span', props, swatch(service), service);
}

// --- top bar: "go to trace id" --------------------------------------------------------

function wireLookup() {
  const form = document.getElementById('trace-lookup');
  const input = document.getElementById('lookup-id');
  if (!form || !input) return;
  input.addEventListener('input', () => input.setCustomValidity(''));
  form.addEventListener('submit', (event) => {
    event.preventDefault();
    const id = input.value.trim().toLowerCase();
    // A whole trace id, or its first 8+ characters: the server resolves a unique prefix
    // (an ambiguous one gets a page listing the candidates as links).
    if (!isTracePrefix(id)) {
      input.setCustomValidity('A trace id is 32 hexadecimal characters; its first 8 or more will do.');
      input.reportValidity();
      return;
    }
    window.location.assign(traceHref(id));
  });
}

wireLookup();
