// The journey map: journey steps (a trace's entry operation) as boxes, left to right in
// the order journeys take them, with arrows as wide as the number of journeys taking
// each transition (Sankey-style), laid out by map_layout.js. Each box says how many
// journeys stopped there. Below, the first funnel defined (or ?funnel=NAME) with its
// conversion and what made journeys leave. Counts only: no user or session ids.
// ?service= and ?attr=key=value (a value on a step's entry span, e.g. app.plan=trial)
// choose the journeys drawn; the form in the tools row sets ?attr=.

import {
  ApiError, el, fill, fmtMs, fmtPercent, getJSON, markReady, plural, showNotice, svg, traceHref,
} from './common.js';
import { currentWindow, windowPicker } from './windows.js';

import { layoutMap } from './map_layout.js';

const NODE = { width: 210, height: 58 };
const MAX_STROKE = 14;

const box = document.getElementById('flows');
const summary = document.getElementById('flows-summary');
const errorBox = document.getElementById('flows-error');
const query = new URLSearchParams(window.location.search);

function params() {
  const p = new URLSearchParams({ window: currentWindow() });
  for (const key of ['end', 'service', 'attr']) if (query.get(key)) p.set(key, query.get(key));
  return p;
}

// ?attr=key=value from the form; an empty box drops the filter.
function attributeForm() {
  const input = el('input', { id: 'flows-attr', name: 'attr', placeholder: 'key=value, e.g. app.plan=trial', 'aria-label': 'Only journeys with this attribute', value: query.get('attr') || '' });
  input.setAttribute('autocomplete', 'off');
  input.setAttribute('size', '28');
  return el('form', {
    class: 'inline-form attr-form',
    on: {
      submit: (event) => {
        event.preventDefault();
        const value = input.value.trim();
        if (value && !/^[^=]+=/.test(value)) {
          input.setCustomValidity('An attribute filter is key=value.');
          input.reportValidity();
          return;
        }
        const url = new URL(window.location.href);
        if (value) url.searchParams.set('attr', value);
        else url.searchParams.delete('attr');
        window.location.assign(url);
      },
    },
  }, input, el('button', { type: 'submit', text: 'Filter' }));
}

function draw(answer) {
  const ids = answer.steps.map((s) => s.id);
  const known = new Set(ids);
  const moves = answer.transitions.filter((t) => known.has(t.source) && known.has(t.target));
  const labels = moves.map((t) => `${t.count} · think ${fmtMs(t.think_p50_ns / 1e6)}`);
  const edges = moves.map((t, k) => ({ id: k, from: t.source, to: t.target, label: { width: labels[k].length * 6.5 + 4, height: 14 } }));
  const layout = layoutMap(ids.map((id) => ({ id, ...NODE })), edges, { direction: 'LR' });
  const most = Math.max(1, ...moves.map((t) => t.count));
  const arrows = layout.edges.map((route) => {
    const t = moves[route.id];
    const width = Math.max(1.5, (MAX_STROKE * t.count) / most);
    const label = route.label && svg('text', { class: 'edge-label', x: route.label.x.toFixed(1), y: (route.label.y + 11).toFixed(1), text: labels[route.id] });
    return svg('g', { class: 'edge flow', dataset: { source: t.source, target: t.target, count: String(t.count) } },
      svg('path', { d: route.path, 'stroke-width': width.toFixed(1), 'marker-end': 'url(#arrow)' }),
      label || null,
      svg('title', { text: `${t.source} → ${t.target}: ${plural(t.count, 'journey')}, median think time ${fmtMs(t.think_p50_ns / 1e6)}` }));
  });
  const nodes = answer.steps.map((s) => {
    const { x, y, width, height } = layout.nodes.get(s.id);
    const failing = s.errors > 0;
    const shown = s.id.length > 26 ? `${s.id.slice(0, 25)}…` : s.id;
    const line = `${s.journeys} journeys · p95 ${fmtMs(s.p95_ns / 1e6)}`;
    const ended = `${s.ended} stopped here${failing ? ` · ${fmtPercent(s.error_rate)} err` : ''}`;
    return svg('g', { class: `node${failing ? ' has-error' : ''}`, dataset: { step: s.id, ended: String(s.ended) } },
      svg('rect', { x, y, width, height, rx: 6 }),
      svg('text', { x: x + 10, y: y + 19, text: shown }),
      svg('text', { x: x + 10, y: y + 35, class: 'sub', text: line }),
      svg('text', { x: x + 10, y: y + 50, class: failing ? 'sub error' : 'sub', text: ended }),
      svg('title', { text: `${s.id}\n${line}\np50 ${fmtMs(s.p50_ns / 1e6)}\n${ended}` }));
  });
  const marker = svg('marker', { id: 'arrow', viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  fill(box, svg('svg', { width: layout.width, height: layout.height, viewBox: `0 0 ${layout.width} ${layout.height}`, role: 'group', 'aria-label': 'Journey map' },
    svg('defs', {}, marker), svg('g', {}, arrows), svg('g', {}, nodes)));
}

// Links to a factor's example traces (a viewer opens them under the masking rules).
function examples(factor) {
  return factor.example_traces.map((t, i) => [i ? ', ' : '', el('a', { href: traceHref(t), text: t.slice(0, 8) })]);
}

async function drawFunnel() {
  const document_ = await getJSON('/api/funnels', new URLSearchParams());
  const name = query.get('funnel') || document_.funnels[0]?.name;
  if (!name) return;
  const answer = await getJSON(`/api/funnels/${encodeURIComponent(name)}`, params());
  document.getElementById('funnel-title').textContent = `Funnel ${name}`;
  const show = (v) => (v === null ? '–' : fmtPercent(v));
  fill(document.querySelector('#funnel-table tbody'), answer.steps.map((s) => el('tr', {},
    el('td', { text: s.step }), el('td', { class: 'num', text: String(s.journeys) }),
    el('td', { class: 'num', text: show(s.conversion) }), el('td', { class: 'num', text: show(s.overall) }),
    el('td', { class: 'num', text: s.median_ns === null ? '–' : fmtMs(s.median_ns / 1e6) }))));
  // The counts are exact; the factors were found on a sample when many journeys entered.
  const sampled = answer.sampled && answer.sampled.journeys < answer.sampled.of
    ? el('li', { class: 'sampled', text: `Found on ${answer.sampled.journeys.toLocaleString()} of the ${answer.sampled.of.toLocaleString()} journeys (a sample; the counts are exact).` })
    : null;
  fill(document.getElementById('leaving'), [sampled, ...answer.drop_offs.filter((d) => d.stopped > 0).map((d) => {
    const top = d.factors[0];
    return el('li', { class: 'drop-off' }, `${d.source} → ${d.target}: ${d.stopped} stopped. `,
      d.headline ? el('strong', { class: 'headline', text: d.headline }) : 'Nothing met before stopping stands out.',
      d.headline ? [' · examples: ', examples(top)] : null,
      d.factors.slice(1).filter((f) => f.significant).map((f) => el('div', { class: 'also' }, 'Also: ',
        el('span', { class: 'factor', text: f.text }), ' · examples: ', examples(f))));
  })]);
  document.getElementById('funnel-panel').hidden = false;
}

async function start() {
  document.getElementById('flows-tools').append(attributeForm(), windowPicker());
  let answer;
  try {
    answer = await getJSON('/api/journeys/map', params());
  } catch (error) {
    summary.textContent = '';
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  if (!answer.steps.length) {
    summary.textContent = query.get('attr')
      ? `No journeys with ${query.get('attr')} in this window.`
      : 'No journeys in this window: widen it, or send traces that carry a session.';
  } else {
    draw(answer);
    const chosen = answer.attribute ? `Journeys with ${answer.attribute.key}=${answer.attribute.value}: ` : '';
    summary.textContent = `${chosen}${plural(answer.steps.length, 'step')}, ${plural(answer.transitions.length, 'transition')} · arrows: journeys going from one step to the next and the median think time; boxes: journeys, p95 latency and how many stopped there.`;
  }
  try {
    await drawFunnel();
  } catch (error) {
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
  }
  markReady();
}

start();
