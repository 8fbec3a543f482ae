// Unit tests of the service map's layout (src/threadline/server/ui/static/map_layout.js),
// run by Node's test runner through tests/ui/test_map_layout.py.

import assert from 'node:assert/strict';
import { test } from 'node:test';

import { layoutMap, placeInOrder } from '../../src/threadline/server/ui/static/map_layout.js';

const BOX = { width: 200, height: 58 };
const label = (text) => ({ width: 6.2 * text.length, height: 14 });

function graph(names, pairs) {
  const nodes = names.map((id) => ({ id, ...BOX }));
  const edges = pairs.map(([from, to, kind = 'call'], id) => ({ id, from, to, kind, label: label(`${id} calls/s · p99 12 ms`) }));
  return { nodes, edges };
}

// A small deterministic generator, so a failing fleet can be replayed.
function random(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 32;
  };
}

function fleet(size, seed) {
  const next = random(seed);
  const names = Array.from({ length: size }, (_, k) => `service-${String(k).padStart(2, '0')}`);
  const pairs = [];
  for (let k = 1; k < size; k++) {
    // Each service is called by one or two earlier ones; some call back (cycles) or
    // have a second kind of edge to the same callee (a message, an inferred call).
    pairs.push([names[Math.floor(next() * k)], names[k]]);
    if (next() < 0.5) pairs.push([names[Math.floor(next() * k)], names[k], 'message']);
    if (next() < 0.15) pairs.push([names[k], names[Math.floor(next() * k)], 'inferred']);
  }
  return graph(names, pairs);
}

function overlap(a, b) {
  return a.x < b.x + b.width && b.x < a.x + a.width && a.y < b.y + b.height && b.y < a.y + a.height;
}

// Points along an SVG path made of M, L and C commands.
function samples(d) {
  const tokens = d.match(/[MLC]|-?[\d.]+(?:e-?\d+)?/g);
  const out = [];
  let i = 0;
  let pen = null;
  const num = () => Number(tokens[i++]);
  while (i < tokens.length) {
    const command = tokens[i++];
    if (command === 'M') pen = [num(), num()];
    else if (command === 'L') {
      const to = [num(), num()];
      for (let t = 0; t <= 1; t += 0.02) out.push([pen[0] + (to[0] - pen[0]) * t, pen[1] + (to[1] - pen[1]) * t]);
      pen = to;
    } else {
      const [c1, c2, to] = [[num(), num()], [num(), num()], [num(), num()]];
      for (let t = 0; t <= 1; t += 0.02) {
        const u = 1 - t;
        const w = [u * u * u, 3 * u * u * t, 3 * u * t * t, t * t * t];
        out.push([0, 1].map((k) => w[0] * pen[k] + w[1] * c1[k] + w[2] * c2[k] + w[3] * to[k]));
      }
      pen = to;
    }
  }
  return out;
}

function inside(point, box, margin = 0.5) {
  return point[0] > box.x + margin && point[0] < box.x + box.width - margin
    && point[1] > box.y + margin && point[1] < box.y + box.height - margin;
}

// Every property a reader relies on: no two boxes or labels overlap, no edge runs
// through a box other than its own two ends, and everything lies inside the drawing.
function assertReadable({ nodes, edges }, layout) {
  const boxes = [...layout.nodes.entries()].map(([id, b]) => ({ id, ...b }));
  const labels = layout.edges.filter((e) => e.label).map((e) => ({ id: `label ${e.id}`, ...e.label }));
  const all = [...boxes, ...labels];
  for (let i = 0; i < all.length; i++) {
    for (let j = i + 1; j < all.length; j++) assert.ok(!overlap(all[i], all[j]), `${all[i].id} overlaps ${all[j].id}`);
  }
  for (const b of all) {
    assert.ok(b.x >= 0 && b.y >= 0 && b.x + b.width <= layout.width && b.y + b.height <= layout.height, `${b.id} is outside the drawing`);
  }
  const byId = new Map(edges.map((e) => [e.id, e]));
  for (const route of layout.edges) {
    const edge = byId.get(route.id);
    for (const point of samples(route.path)) {
      for (const b of boxes) {
        if (b.id === edge.from || b.id === edge.to) continue;
        assert.ok(!inside(point, b), `edge ${edge.from} → ${edge.to} runs through ${b.id}`);
      }
      for (const l of labels) {
        if (l.id === `label ${route.id}`) continue;
        assert.ok(!inside(point, l), `edge ${edge.from} → ${edge.to} runs through ${l.id}`);
      }
    }
  }
  assert.equal(layout.edges.length + layout.loops.length, edges.length);
  assert.equal(layout.nodes.size, nodes.length);
}

test('callers come before callees, by the longest call chain', () => {
  const g = graph(['gateway', 'orders', 'payments'], [['gateway', 'orders'], ['orders', 'payments'], ['gateway', 'payments']]);
  const layout = layoutMap(g.nodes, g.edges);
  const x = (id) => layout.nodes.get(id).x;
  assert.ok(x('gateway') < x('orders'));
  assert.ok(x('orders') < x('payments'), 'payments is after orders, not beside it');
  assertReadable(g, layout);
});

test('top to bottom puts layers in rows', () => {
  const g = graph(['a', 'b', 'c'], [['a', 'b'], ['b', 'c']]);
  const layout = layoutMap(g.nodes, g.edges, { direction: 'TB' });
  const y = (id) => layout.nodes.get(id).y;
  assert.equal(layout.direction, 'TB');
  assert.ok(y('a') < y('b') && y('b') < y('c'));
  assertReadable(g, layout);
});

test('barycentre ordering removes a crossing the input order makes', () => {
  // Given in the order a, b, d, c: a → c and b → d would cross if kept that way.
  const g = graph(['a', 'b', 'd', 'c'], [['a', 'c'], ['b', 'd']]);
  const layout = layoutMap(g.nodes, g.edges);
  const y = (id) => layout.nodes.get(id).y;
  assert.ok(y('a') < y('b'));
  assert.ok(y('c') < y('d'), 'c is drawn beside its caller a, above d');
});

test('cycles, parallel edges of several kinds and self calls are all drawn', () => {
  const g = graph(['a', 'b', 'c'], [['a', 'b'], ['b', 'a', 'inferred'], ['a', 'b', 'message'], ['b', 'c'], ['c', 'a'], ['c', 'c']]);
  const layout = layoutMap(g.nodes, g.edges);
  assert.deepEqual(layout.loops, [5]);
  const reversed = layout.edges.filter((e) => e.reversed).map((e) => e.id).sort();
  assert.ok(reversed.length >= 1, 'a cycle is closed by a reversed edge');
  for (const route of layout.edges) {
    // Each route starts at its caller's box and ends at its callee's.
    const edge = g.edges[route.id];
    const [first, last] = [route.points[0], route.points[route.points.length - 1]];
    const touches = (p, id) => { const b = layout.nodes.get(id); return p[0] >= b.x - 0.01 && p[0] <= b.x + b.width + 0.01 && p[1] >= b.y - 0.01 && p[1] <= b.y + b.height + 0.01; };
    assert.ok(touches(first, edge.from), `edge ${route.id} starts at ${edge.from}`);
    assert.ok(touches(last, edge.to), `edge ${route.id} ends at ${edge.to}`);
  }
  assertReadable(g, layout);
});

test('fleets up to 30 services stay readable in both directions', () => {
  for (const size of [2, 3, 5, 8, 12, 20, 30]) {
    for (const seed of [1, 2, 3]) {
      const g = fleet(size, size * 100 + seed);
      for (const direction of ['LR', 'TB']) assertReadable(g, layoutMap(g.nodes, g.edges, { direction }));
    }
  }
});

test('an edge to an unknown service is refused', () => {
  assert.throws(() => layoutMap([{ id: 'a', ...BOX }], [{ id: 0, from: 'a', to: 'z', label: label('x') }]), /unknown service/);
});

test('placement is the least-squares fit under the minimum gaps', () => {
  assert.deepEqual(placeInOrder([0, 0, 0], [10, 10]), [-10, 0, 10]);
  assert.deepEqual(placeInOrder([0, 50, 100], [10, 10]), [0, 50, 100]);
  assert.deepEqual(placeInOrder([5, 0], [10]), [-2.5, 7.5]);
});
