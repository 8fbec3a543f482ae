// The service map: services as boxes, calls as arrows, laid out in layers by who calls
// whom (callers before callees; see map_layout.js), drawn as SVG: left to right when it
// fits, top to bottom on a narrow screen. Each box links to its service page.

import {
  ApiError, el, fill, fmtMs, fmtPercent, fmtRate, getJSON, markReady, plural, serviceHref,
  showNotice, svg, traceHref,
} from './common.js';
import { sloLink, worstByService } from './slo_badges.js';
import { currentWindow, windowPicker } from './windows.js';

import { layoutMap } from './map_layout.js';

// Box sizes: left to right on a wide screen; top to bottom, narrower, on a phone.
const WIDE_NODE = { width: 200, height: 58 };
const NARROW_NODE = { width: 164, height: 58 };
const LABEL_FONT_PX = 11;

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

// One unit for every rate on the map, so the legend can name it: per second when any
// rate reaches 1/s, else per minute (a quiet fleet would otherwise read as all zeros).
function rateUnit(perSecondRates) {
  const perMinute = Math.max(0, ...perSecondRates) < 1;
  const unit = perMinute ? 'min' : 's';
  const format = (perSecond) => {
    const value = perMinute ? perSecond * 60 : perSecond;
    return `${Number(value.toPrecision(3))}/${unit}`;
  };
  return { unit: perMinute ? 'per minute' : 'per second', format };
}

// Width and height of each label as the browser will draw it (11 px text), so the
// layout can give every label its own place. A label is one line, or its lines
// stacked (top to bottom, where width is what runs out).
function measureLabels(lineLists) {
  const probe = svg('svg', { width: 0, height: 0, class: 'map-probe', 'aria-hidden': 'true' });
  const measured = lineLists.map((lines) => lines.map((text) => {
    const node = svg('text', { x: 0, y: 0, class: 'edge-label', text });
    probe.append(node);
    return node;
  }));
  mapBox.append(probe);
  const sizes = measured.map((nodes) => {
    const boxes = nodes.map((n) => n.getBBox());
    const lineHeight = Math.ceil(Math.max(...boxes.map((b) => b.height))) || LABEL_FONT_PX + 3;
    return {
      width: Math.ceil(Math.max(...boxes.map((b) => b.width))) + 2,
      height: lineHeight * nodes.length,
      ascent: -boxes[0].y,
      lineHeight,
    };
  });
  probe.remove();
  return sizes;
}

function draw(answer) {
  const windowS = answer.window.duration_ms / 1000;
  const nodesByName = new Map(answer.services.map((s) => [s.name, s]));
  for (const e of answer.edges) {
    for (const name of [e.caller, e.callee]) if (!nodesByName.has(name)) nodesByName.set(name, { name, requests: 0 });
  }
  const names = [...nodesByName.keys()].sort();
  const rates = rateUnit([...answer.services.map((s) => s.requests / windowS), ...answer.edges.map((e) => e.calls / windowS)]);
  // Each label: rate and error rate, then the callee's p99.
  const parts = answer.edges.map((e) => {
    const failing = e.error_rate > 0;
    const first = `${rates.format(e.calls / windowS)}${failing ? ` · ${fmtPercent(e.error_rate)} err` : ''}`;
    return e.latency_ms ? [first, `p99 ${fmtMs(e.latency_ms.p99)}`] : [first];
  });
  const labels = parts.map((lines) => lines.join(' · '));
  const wide = measureLabels(parts.map((lines) => [lines.join(' · ')]));
  const stacked = measureLabels(parts);
  const edgesIn = (sizes) => answer.edges.map((e, k) => ({ id: k, from: e.caller, to: e.callee, label: sizes[k] }));
  const available = Math.max(280, mapBox.clientWidth - 2);
  // Left to right reads best; when it does not fit, top to bottom (phones) if narrower,
  // with each label on two lines.
  let layout = layoutMap(names.map((id) => ({ id, ...WIDE_NODE })), edgesIn(wide), { direction: 'LR' });
  if (layout.width > available) {
    const tall = layoutMap(names.map((id) => ({ id, ...NARROW_NODE })), edgesIn(stacked), { direction: 'TB' });
    if (tall.width < layout.width) layout = tall;
  }
  const sizes = layout.direction === 'TB' ? stacked : wide;
  const lineLists = layout.direction === 'TB' ? parts : labels.map((text) => [text]);

  const edges = layout.edges.map((route) => {
    const e = answer.edges[route.id];
    const failing = e.error_rate > 0;
    const label = labels[route.id];
    const size = sizes[route.id];
    const box = route.label;
    const text = box && svg('text', { class: 'edge-label' }, lineLists[route.id].map((line, i) => svg('tspan', {
      x: box.x.toFixed(1), y: (box.y + size.ascent + i * size.lineHeight).toFixed(1), text: line,
    })));
    return svg('g', { class: `edge${failing ? ' error' : ''}${e.kind === 'inferred' ? ' inferred' : ''} kind-${e.kind}`, dataset: { kind: e.kind, caller: e.caller, callee: e.callee } },
      svg('path', { d: route.path, 'marker-end': failing ? 'url(#arrow-error)' : 'url(#arrow)' }),
      text || null,
      svg('title', { text: `${e.caller} → ${e.callee} (${KIND_TITLES[e.kind] || e.kind}): ${plural(e.calls, 'call')}, ${label}` }));
  });

  const loops = new Set(layout.loops.map((k) => answer.edges[k].caller));
  const nodes = names.map((name) => {
    const { x, y, width, height } = layout.nodes.get(name);
    const stats = nodesByName.get(name);
    const failing = stats.error_rate > 0;
    const rate = stats.requests ? `${rates.format(stats.requests / windowS)} · p99 ${fmtMs(stats.latency_ms?.p99)}` : 'no requests of its own';
    const errors = stats.requests ? `${fmtPercent(stats.error_rate)} errors` : '';
    const fit = Math.floor((width - 20) / 7.5);
    const shown = name.length > fit ? `${name.slice(0, fit - 1)}…` : name;
    const self = loops.has(name) ? ' · calls itself' : '';
    return svg('a', { href: serviceHref(name), class: `node${failing ? ' has-error' : ''}`, 'aria-label': `${name}: ${rate}, ${errors}${self}`, dataset: { service: name } },
      svg('rect', { x, y, width, height, rx: 6 }),
      svg('text', { x: x + 10, y: y + 19, text: shown }),
      svg('text', { x: x + 10, y: y + 35, class: 'sub', text: rate }),
      svg('text', { x: x + 10, y: y + 50, class: failing ? 'sub error' : 'sub', text: `${errors}${self}` }),
      svg('title', { text: `${name}\n${rate}\n${errors}${self}` }));
  });

  const marker = (id) => svg('marker', { id, viewBox: '0 0 10 10', refX: 9, refY: 5, markerWidth: 7, markerHeight: 7, orient: 'auto' },
    svg('path', { d: 'M0,0 L10,5 L0,10 z' }));
  const { width, height } = layout;
  fill(mapBox, svg('svg', { width, height, viewBox: `0 0 ${width} ${height}`, role: 'group', 'aria-label': 'Service map', dataset: { direction: layout.direction } },
    svg('defs', {}, marker('arrow'), svg('g', { class: 'error' }, marker('arrow-error'))),
    svg('g', {}, edges), svg('g', {}, nodes)));
  // Wider than the screen: start scrolled to the first service, where reading begins.
  if (width > mapBox.clientWidth && names.length) {
    const rank = (n) => (layout.direction === 'TB' ? [n.y, n.x] : [n.x, n.y]);
    const first = [...layout.nodes.values()].reduce((a, b) => {
      const [ra, rb] = [rank(a), rank(b)];
      return rb[0] < ra[0] || (rb[0] === ra[0] && rb[1] < ra[1]) ? b : a;
    });
    mapBox.scrollLeft = Math.max(0, first.x + first.width / 2 - mapBox.clientWidth / 2);
  }
  return { names, windowS, unit: rates.unit };
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
  const { names, windowS, unit } = draw(answer);
  edgeRows(answer, windowS);
  summary.textContent = `${plural(names.length, 'service')}, ${plural(answer.edges.length, 'connection')} · rates ${unit} · boxes: requests, p99 latency and error rate of each service; arrows: calls, error rate and p99 of the callee${answer.edges.some((e) => e.kind === 'inferred') ? ' (dashed: inferred from a server span under another service, no client span recorded)' : ''}. Select a service for its page.`;
  markReady();
  drawPropagation(windowParam);
  drawSloBadges();
}

// A dot on each service with SLOs, coloured by the worst state of them, with a
// link-list under the map; drawn after the map so the map never waits for SLOs.
async function drawSloBadges() {
  let answer;
  try {
    answer = await getJSON('/api/slo-status');
  } catch {
    document.body.dataset.readySlos = 'true';  // the map stands without them
    return;
  }
  const worst = worstByService(answer.slos);
  for (const node of mapBox.querySelectorAll('a.node')) {
    const found = worst.get(node.dataset.service);
    const rect = node.querySelector('rect');
    if (!found || !rect) continue;
    const x = Number(rect.getAttribute('x')) + Number(rect.getAttribute('width')) - 10;
    const y = Number(rect.getAttribute('y')) + 10;
    node.dataset.sloState = found.state;
    node.append(svg('circle', { cx: x, cy: y, r: 5, class: `slo-dot state-${found.state}` },
      svg('title', { text: found.slos.map((s) => `SLO ${s.name}: ${s.state}`).join('\n') })));
  }
  const box = document.getElementById('map-slos');
  fill(box, answer.slos.length ? ['SLOs: ', answer.slos.map((s) => [sloLink(s), ' '])] : null);
  document.body.dataset.readySlos = 'true';
}

start();
