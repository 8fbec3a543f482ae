// The SLO page's two charts, inline SVG at the container's width: the budget burndown
// over the SLO's window, and the burn rate per window against the rules' thresholds.

import { el, fmtPercent, fmtTime, svg } from './common.js';
import { burnText } from './slo_badges.js';

const HEIGHT = 150;
const PAD = { top: 10, right: 10, bottom: 20, left: 52 };

function frame(container, caption) {
  const figure = el('figure', { class: 'chart' }, el('figcaption', { text: caption }));
  container.append(figure);
  const width = Math.max(240, Math.floor(figure.clientWidth - 18 || 360));
  return { figure, width, plotW: width - PAD.left - PAD.right, plotH: HEIGHT - PAD.top - PAD.bottom };
}

function dateTick(ns) {
  return fmtTime(ns).slice(5, 16);
}

// Budget left (1 = untouched) from the window's start to now; below 0 is overspent.
export function burndownChart(container, points, windowText) {
  const { figure, width, plotW, plotH } = frame(container, `Error budget left over the last ${windowText}`);
  const known = points.filter((p) => p.remaining != null);
  if (!known.length) {
    figure.append(el('p', { class: 'muted', text: 'No events in the window yet: no budget to burn.' }));
    return;
  }
  const top = Math.max(1, ...known.map((p) => p.remaining));
  const bottom = Math.min(0, ...known.map((p) => p.remaining));
  const t0 = points[0].at_ns;
  const span = Math.max(1, points[points.length - 1].at_ns - t0);
  const x = (ns) => PAD.left + ((ns - t0) / span) * plotW;
  const y = (v) => PAD.top + ((top - v) / (top - bottom)) * plotH;
  const d = known.map((p, k) => `${k ? 'L' : 'M'}${x(p.at_ns).toFixed(1)},${y(p.remaining).toFixed(1)}`).join('');
  const last = known[known.length - 1];
  figure.append(svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': `Budget left now ${fmtPercent(last.remaining)}` },
    svg('line', { x1: PAD.left, y1: y(0), x2: width - PAD.right, y2: y(0), class: 'grid zero' }),
    svg('line', { x1: PAD.left, y1: y(1), x2: width - PAD.right, y2: y(1), class: 'grid' }),
    svg('text', { x: PAD.left - 4, y: y(1) + 4, 'text-anchor': 'end', class: 'label', text: '100%' }),
    y(0) - y(1) > 12 ? svg('text', { x: PAD.left - 4, y: y(0) + 4, 'text-anchor': 'end', class: 'label', text: '0%' }) : null,
    bottom < 0 ? svg('text', { x: PAD.left - 4, y: y(bottom), 'text-anchor': 'end', class: 'label', text: fmtPercent(bottom) }) : null,
    svg('text', { x: PAD.left, y: HEIGHT - 4, class: 'label', text: dateTick(t0) }),
    svg('text', { x: width - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end', class: 'label', text: 'now' }),
    svg('path', { d, class: `series burndown${last.remaining < 0 ? ' spent' : ''}` }),
    known.map((p) => svg('circle', { cx: x(p.at_ns).toFixed(1), cy: y(p.remaining).toFixed(1), r: 1.8, class: 'burndown-dot' },
      svg('title', { text: `${fmtPercent(p.remaining)} left at ${fmtTime(p.at_ns)} (${p.bad.toLocaleString('en')} bad events so far)` })))));
}

// One bar per window; a tick across a bar marks each rule threshold that window is judged by.
export function burnChart(container, burns, thresholds) {
  const { figure, width, plotW, plotH } = frame(container, 'Burn rate per window (1× spends exactly the budget)');
  const factors = burns.flatMap((b) => thresholds.get(b.window) || []);
  const top = Math.max(1, ...burns.map((b) => b.burn || 0), ...factors) * 1.1;
  const step = plotW / Math.max(1, burns.length);
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const bars = burns.map((b, k) => {
    const x0 = PAD.left + k * step;
    const marks = (thresholds.get(b.window) || []).map((f) => svg('line', {
      x1: (x0 + 2).toFixed(1), x2: (x0 + step - 2).toFixed(1), y1: y(f).toFixed(1), y2: y(f).toFixed(1), class: 'threshold',
    }, svg('title', { text: `threshold ${f}×` })));
    const over = (thresholds.get(b.window) || []).some((f) => (b.burn || 0) >= f);
    return svg('g', { class: 'burn-bar', dataset: { window: b.window } },
      svg('rect', { x: (x0 + 6).toFixed(1), y: y(b.burn || 0).toFixed(1), width: Math.max(1, step - 12).toFixed(1),
        height: (PAD.top + plotH - y(b.burn || 0)).toFixed(1), class: `bar${over ? ' error' : ''}` },
      svg('title', { text: `${b.window}: burn ${burnText(b.burn)} (${b.bad} bad of ${b.events})` })),
      marks,
      svg('text', { x: (x0 + step / 2).toFixed(1), y: HEIGHT - 4, 'text-anchor': 'middle', class: 'label', text: b.window }),
      svg('text', { x: (x0 + step / 2).toFixed(1), y: (y(b.burn || 0) - 3).toFixed(1), 'text-anchor': 'middle', class: 'label', text: burnText(b.burn) }));
  });
  figure.append(svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': 'Burn rate per window' },
    svg('line', { x1: PAD.left, y1: y(0), x2: width - PAD.right, y2: y(0), class: 'grid' }),
    svg('text', { x: PAD.left - 4, y: y(0), 'text-anchor': 'end', class: 'label', text: '0' }),
    svg('text', { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end', class: 'label', text: burnText(top) }),
    bars));
}

const SERIES_COLORS = { '1h': '#2f7ed8', '6h': '#8e5bd6' };

// The burn over each window (1h, 6h) at every such window back from now: one line per
// window on a shared time axis; a window without events leaves a gap. Dashed lines mark
// the rules' thresholds (page 14.4×, page 6×, ticket 1×).
export function burnSeriesChart(container, series, rules) {
  const legend = el('span', { class: 'chart-legend' }, series.map((s) => el('span', {},
    el('span', { class: 'swatch', style: { backgroundColor: SERIES_COLORS[s.window] || '#555' } }), `${s.window} burn`)));
  const caption = el('figcaption', {}, 'Burn rate over time ', legend);
  const figure = el('figure', { class: 'chart burn-series' }, caption);
  container.append(figure);
  const width = Math.max(240, Math.floor(figure.clientWidth - 18 || 360));
  const plotW = width - PAD.left - PAD.right;
  const plotH = HEIGHT - PAD.top - PAD.bottom;
  const points = series.flatMap((s) => s.points);
  if (!points.some((p) => p.burn != null)) {
    figure.append(el('p', { class: 'muted', text: 'No events in the last days yet: no burn to chart.' }));
    return;
  }
  const lines = new Map();
  for (const rule of rules) {
    const seen = lines.get(rule.factor);
    if (!seen) lines.set(rule.factor, rule.severity);
    else if (!seen.split(', ').includes(rule.severity)) lines.set(rule.factor, `${seen}, ${rule.severity}`);
  }
  const top = Math.max(1, ...points.map((p) => p.burn || 0), ...lines.keys()) * 1.1;
  const t1 = Math.max(...points.map((p) => p.at_ns));
  const t0 = Math.min(...series.map((s) => (s.points.length ? s.points[0].at_ns - (s.points.length > 1 ? s.points[1].at_ns - s.points[0].at_ns : 0) : t1)));
  const span = Math.max(1, t1 - t0);
  const x = (ns) => PAD.left + ((ns - t0) / span) * plotW;
  const y = (v) => PAD.top + plotH - (v / top) * plotH;
  const paths = series.map((s) => {
    let d = '';
    let pen = false;
    for (const p of s.points) {
      if (p.burn == null) { pen = false; continue; }
      d += `${pen ? 'L' : 'M'}${x(p.at_ns).toFixed(1)},${y(p.burn).toFixed(1)}`;
      pen = true;
    }
    const color = SERIES_COLORS[s.window] || '#555';
    return svg('g', { class: 'burn-line', dataset: { window: s.window, points: String(s.points.length) } },
      svg('path', { d, class: 'series', stroke: color }),
      s.points.filter((p) => p.burn != null).map((p) => svg('circle', { cx: x(p.at_ns).toFixed(1), cy: y(p.burn).toFixed(1), r: 1.8, fill: color, class: 'burn-dot' },
        svg('title', { text: `${s.window} burn ${burnText(p.burn)} at ${fmtTime(p.at_ns)} (${p.bad.toLocaleString('en')} bad of ${p.events.toLocaleString('en')})` }))));
  });
  const marks = [...lines].map(([factor, severity]) => svg('g', { class: 'burn-threshold', dataset: { factor: String(factor) } },
    svg('line', { x1: PAD.left, x2: width - PAD.right, y1: y(factor).toFixed(1), y2: y(factor).toFixed(1), class: 'threshold' },
      svg('title', { text: `${severity} threshold ${factor}×` })),
    svg('text', { x: PAD.left - 4, y: (y(factor) + 3).toFixed(1), 'text-anchor': 'end', class: 'label', text: `${factor}×` })));
  figure.append(svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': 'Burn rate over time against the alert thresholds' },
    svg('line', { x1: PAD.left, y1: y(0), x2: width - PAD.right, y2: y(0), class: 'grid' }),
    // The lowest threshold's label would overlap the zero's at a high top.
    y(0) - y(Math.min(...lines.keys(), top)) > 10 ? svg('text', { x: PAD.left - 4, y: y(0), 'text-anchor': 'end', class: 'label', text: '0' }) : null,
    svg('text', { x: PAD.left, y: HEIGHT - 4, class: 'label', text: dateTick(t0) }),
    svg('text', { x: width - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end', class: 'label', text: 'now' }),
    marks, paths));
}
