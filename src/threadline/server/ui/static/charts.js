// Small inline-SVG charts over time buckets: bars (counts) and lines (latency percentiles).
// Drawn at the container's pixel width so text is never stretched.

import { el, svg } from './common.js';

const HEIGHT = 130;
const PAD = { top: 8, right: 8, bottom: 18, left: 52 };

// A chart's figure, added to `container` first so the plot can be sized to it.
function frame(container, caption) {
  const figure = el('figure', { class: 'chart' }, caption);
  container.append(figure);
  const width = Math.max(200, Math.floor(figure.clientWidth - 18 || 320));
  return { figure, width, plotW: width - PAD.left - PAD.right, plotH: HEIGHT - PAD.top - PAD.bottom };
}

function axes(width, maxValue, format, buckets, fmtTick) {
  const y0 = HEIGHT - PAD.bottom;
  const parts = [
    svg('line', { x1: PAD.left, y1: y0, x2: width - PAD.right, y2: y0, class: 'grid' }),
    svg('line', { x1: PAD.left, y1: PAD.top, x2: width - PAD.right, y2: PAD.top, class: 'grid' }),
    svg('text', { x: PAD.left - 4, y: PAD.top + 8, 'text-anchor': 'end', class: 'label', text: format(maxValue) }),
    svg('text', { x: PAD.left - 4, y: y0, 'text-anchor': 'end', class: 'label', text: format(0) }),
  ];
  if (buckets.length) {
    parts.push(svg('text', { x: PAD.left, y: HEIGHT - 4, class: 'label', text: fmtTick(buckets[0].start_ns) }));
    parts.push(svg('text', { x: width - PAD.right, y: HEIGHT - 4, 'text-anchor': 'end', class: 'label', text: fmtTick(buckets[buckets.length - 1].start_ns) }));
  }
  return parts;
}

function clockTick(ns) {
  const date = new Date(ns / 1e6);
  return `${String(date.getHours()).padStart(2, '0')}:${String(date.getMinutes()).padStart(2, '0')}`;
}

// One bar per bucket; `value(bucket)` is the bar height, `title(bucket)` its tooltip.
export function barChart(container, { title, buckets, value, format, tooltip, className = '' }) {
  const { figure, width, plotW, plotH } = frame(container, el('figcaption', { text: title }));
  const maxValue = Math.max(0, ...buckets.map(value)) || 1;
  const step = plotW / Math.max(1, buckets.length);
  const bars = buckets.map((bucket, k) => {
    const v = value(bucket);
    const h = (v / maxValue) * plotH;
    return svg('rect', {
      x: (PAD.left + k * step + 0.5).toFixed(1), y: (PAD.top + plotH - h).toFixed(1),
      width: Math.max(1, step - 1).toFixed(1), height: h.toFixed(1), class: `bar ${className}`,
    }, svg('title', { text: tooltip(bucket) }));
  });
  figure.append(svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': title },
    axes(width, maxValue, format, buckets, clockTick), bars));
}

// Lines over buckets; a bucket without a value leaves a gap.
export function lineChart(container, { title, buckets, series, format }) {
  const legend = el('span', { class: 'chart-legend' }, series.map((s) => el('span', {},
    el('span', { class: 'swatch', style: { backgroundColor: s.color } }), s.label)));
  const { figure, width, plotW, plotH } = frame(container, el('figcaption', {}, title, ' ', legend));
  const values = buckets.flatMap((b) => series.map((s) => s.value(b)).filter((v) => v != null));
  const maxValue = Math.max(0, ...values) || 1;
  const step = plotW / Math.max(1, buckets.length);
  const x = (k) => PAD.left + k * step + step / 2;
  const y = (v) => PAD.top + plotH - (v / maxValue) * plotH;
  const lines = series.map((s) => {
    let d = '';
    let pen = false;
    buckets.forEach((bucket, k) => {
      const v = s.value(bucket);
      if (v == null) { pen = false; return; }
      d += `${pen ? 'L' : 'M'}${x(k).toFixed(1)},${y(v).toFixed(1)}`;
      pen = true;
    });
    const dots = buckets.map((bucket, k) => {
      const v = s.value(bucket);
      return v == null ? null : svg('circle', { cx: x(k).toFixed(1), cy: y(v).toFixed(1), r: 1.8, fill: s.color },
        svg('title', { text: `${s.label} ${format(v)} at ${clockTick(bucket.start_ns)}` }));
    });
    return svg('g', {}, svg('path', { d, class: 'series', stroke: s.color }), dots);
  });
  figure.append(svg('svg', { width, height: HEIGHT, viewBox: `0 0 ${width} ${HEIGHT}`, role: 'img', 'aria-label': title },
    axes(width, maxValue, format, buckets, clockTick), lines));
}
