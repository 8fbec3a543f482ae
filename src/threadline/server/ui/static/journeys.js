// The list of journeys (one per session): most recent or slowest, optionally failed only.
// The state (order, failed, limit) lives in the query string.

import {
  ApiError, el, fmtAgo, fmtMs, fmtTime, fmtUtc, getJSON, journeyHref, markReady, plural, serviceChip,
  showNotice, userHref,
} from './common.js';

const DEFAULT_LIMIT = 50;
const MAX_LIMIT = 1000;

const form = document.getElementById('journey-filters');
const orderSelect = document.getElementById('j-order');
const failedBox = document.getElementById('j-failed');
const limitInput = document.getElementById('j-limit');
const tbody = document.querySelector('#journey-table tbody');
const count = document.getElementById('journey-count');
const errorBox = document.getElementById('journeys-error');

function row(journey, maxMs) {
  const failed = journey.error_count > 0;
  return el('tr', { class: failed ? 'has-error' : '' },
    el('td', { class: 'cut' }, el('a', { href: journeyHref(journey.session_id), text: journey.session_id, title: journey.session_id })),
    el('td', { class: 'cut' }, journey.user_id ? el('a', { href: userHref(journey.user_id), text: journey.user_id }) : el('span', { class: 'muted', text: '–' })),
    el('td', { class: 'nowrap', title: fmtUtc(journey.start_ns) }, fmtTime(journey.start_ns), el('span', { class: 'muted', text: ` · ${fmtAgo(journey.start_ns)}` })),
    el('td', { class: 'num' },
      el('span', { class: 'mini-bar', style: { width: `${maxMs > 0 ? Math.max(2, (journey.duration_ms / maxMs) * 80) : 0}px` } }),
      fmtMs(journey.duration_ms)),
    el('td', { class: 'num', text: journey.trace_count }),
    el('td', { class: 'num', text: journey.span_count }),
    el('td', { class: 'num' }, failed ? el('span', { class: 'badge error', text: String(journey.error_count) }) : '0'),
    el('td', {}, el('span', { class: 'chips' }, journey.services.map((s) => serviceChip(s)))));
}

async function load() {
  delete document.body.dataset.ready;
  const url = new URLSearchParams(window.location.search);
  const order = url.get('order') === 'slowest' ? 'slowest' : 'recent';
  const failedOnly = url.get('failed') === '1';
  const limit = Math.min(MAX_LIMIT, Math.max(1, Number.parseInt(url.get('limit') || '', 10) || DEFAULT_LIMIT));
  orderSelect.value = order;
  failedBox.checked = failedOnly;
  limitInput.value = url.get('limit') || '';
  const query = new URLSearchParams({ order, limit: String(limit) });
  if (failedOnly) query.set('failed', 'true');
  let journeys;
  try {
    journeys = (await getJSON('/api/journeys', query)).journeys;
  } catch (error) {
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  const maxMs = Math.max(0, ...journeys.map((j) => j.duration_ms));
  tbody.replaceChildren(...journeys.map((j) => row(j, maxMs)));
  count.textContent = journeys.length
    ? `${plural(journeys.length, failedOnly ? 'failed journey' : 'journey')}, ${order === 'slowest' ? 'slowest' : 'most recent'} first`
    : 'No journeys yet: spans carrying session.id appear here.';
  markReady();
}

form.addEventListener('submit', (event) => {
  event.preventDefault();
  const url = new URLSearchParams();
  if (orderSelect.value !== 'recent') url.set('order', orderSelect.value);
  if (failedBox.checked) url.set('failed', '1');
  if (limitInput.value.trim()) url.set('limit', limitInput.value.trim());
  const query = url.toString();
  window.history.pushState(null, '', query ? `/journeys?${query}` : '/journeys');
  load();
});
window.addEventListener('popstate', load);
load();
