// Layered layout of the service map: a pure function from boxes and labelled edges to
// positions and routes, with no DOM access (unit-tested under Node, see
// tests/ui/test_map_layout.py).
//
// The method is Sugiyama's, as Graphviz's dot uses it:
//   1. cycles are broken by reversing the back edges of a depth-first search;
//   2. longest-path layering: every callee sits in a later layer than all its callers;
//   3. every edge gets a chain of virtual items, one per rank it passes: real layers sit
//      on even ranks, and between two layers an odd rank holds the edges' labels, so a
//      label is an item like a box and can never overlap one;
//   4. the items of each rank are ordered by barycentre sweeps (the order with the fewest
//      crossings is kept);
//   5. positions across the ranks are the least-squares fit to the neighbours' positions
//      under the order and the minimum gaps (pool-adjacent-violators), so edges run as
//      straight as the gaps allow.
//
// Why no edge can run through a box: inside a rank, every item owns a slot (an interval
// across the rank) that no other item shares, and an edge crosses a rank only inside its
// own slot; between two ranks lies an empty gap. Labels are items too. The layout knows
// nothing of edge kinds: any edge (call, message, inferred, …) is routed the same way.
//
// Coordinates are computed along a rank axis ("along") and an order axis ("across"):
// left to right ("LR") the rank axis is x; top to bottom ("TB") it is y.

export const DEFAULTS = Object.freeze({
  direction: 'LR',
  pad: 16, // margin around the drawing
  rankGap: 26, // empty space between two ranks, where edges bend
  slotGap: 14, // space between two items of a rank
  lineGap: 3, // between an edge's line and its label
  sweeps: 12, // barycentre sweeps (down and up) tried
  straighten: 8, // rounds of placement towards the neighbours
});

// --- 1. cycles -------------------------------------------------------------------------

function orient(ids, edges) {
  // Depth-first from the services nobody calls (then from the rest), in the given order;
  // an edge into a node still being visited closes a cycle and is reversed.
  const out = new Map(ids.map((id) => [id, []]));
  edges.forEach((e, k) => out.get(e.from).push(k));
  const state = new Map();
  const reversed = new Set();
  const called = new Set(edges.map((e) => e.to));
  const visit = (root) => {
    const stack = [[root, 0]];
    state.set(root, 'open');
    while (stack.length) {
      const top = stack[stack.length - 1];
      const [node, next] = top;
      if (next >= out.get(node).length) {
        state.set(node, 'done');
        stack.pop();
        continue;
      }
      top[1] += 1;
      const k = out.get(node)[next];
      const target = edges[k].to;
      if (state.get(target) === 'open') reversed.add(k);
      else if (!state.has(target)) {
        state.set(target, 'open');
        stack.push([target, 0]);
      }
    }
  };
  for (const id of ids) if (!called.has(id) && !state.has(id)) visit(id);
  for (const id of ids) if (!state.has(id)) visit(id);
  return edges.map((e, k) => (reversed.has(k) ? { from: e.to, to: e.from, reversed: true } : { from: e.from, to: e.to, reversed: false }));
}

// --- 2. layers ---------------------------------------------------------------------------

export function longestPathLayers(ids, oriented) {
  // Kahn's order over the acyclic edges; each node one layer after its latest caller.
  const layer = new Map(ids.map((id) => [id, 0]));
  const indegree = new Map(ids.map((id) => [id, 0]));
  const out = new Map(ids.map((id) => [id, []]));
  for (const e of oriented) {
    indegree.set(e.to, indegree.get(e.to) + 1);
    out.get(e.from).push(e.to);
  }
  const ready = ids.filter((id) => indegree.get(id) === 0);
  for (let i = 0; i < ready.length; i++) {
    const node = ready[i];
    for (const next of out.get(node)) {
      layer.set(next, Math.max(layer.get(next), layer.get(node) + 1));
      indegree.set(next, indegree.get(next) - 1);
      if (indegree.get(next) === 0) ready.push(next);
    }
  }
  return layer;
}

// --- 4. order ------------------------------------------------------------------------------

function crossings(upper, lower, links) {
  // Links between two adjacent ranks, as pairs of positions; count the pairs that cross.
  const pos = (rank) => new Map(rank.map((item, k) => [item, k]));
  const a = pos(upper);
  const b = pos(lower);
  const pairs = links.map(([u, v]) => [a.get(u), b.get(v)]).sort((p, q) => p[0] - q[0] || p[1] - q[1]);
  let count = 0;
  for (let i = 0; i < pairs.length; i++) {
    for (let j = i + 1; j < pairs.length; j++) {
      if (pairs[i][0] < pairs[j][0] && pairs[i][1] > pairs[j][1]) count++;
    }
  }
  return count;
}

export function totalCrossings(ranks, links) {
  let count = 0;
  for (let r = 0; r + 1 < ranks.length; r++) count += crossings(ranks[r], ranks[r + 1], links[r]);
  return count;
}

function barycentreSweeps(ranks, links, sweeps) {
  // links[r]: [item in rank r, item in rank r + 1] for every segment between them.
  const below = new Map();
  const above = new Map();
  links.forEach((pairs) => pairs.forEach(([u, v]) => {
    if (!below.has(u)) below.set(u, []);
    if (!above.has(v)) above.set(v, []);
    below.get(u).push(v);
    above.get(v).push(u);
  }));
  let best = ranks.map((rank) => [...rank]);
  let bestCount = totalCrossings(best, links);
  let current = ranks.map((rank) => [...rank]);
  for (let sweep = 0; sweep < sweeps && bestCount > 0; sweep++) {
    const down = sweep % 2 === 0;
    const order = down ? current.map((_, r) => r).slice(1) : current.map((_, r) => r).slice(0, -1).reverse();
    for (const r of order) {
      const fixed = new Map(current[down ? r - 1 : r + 1].map((item, k) => [item, k]));
      const neighbours = down ? above : below;
      const key = new Map(current[r].map((item, k) => {
        const ns = (neighbours.get(item) || []).map((n) => fixed.get(n)).filter((x) => x !== undefined);
        return [item, ns.length ? ns.reduce((s, x) => s + x, 0) / ns.length : k];
      }));
      current[r] = [...current[r]].sort((p, q) => key.get(p) - key.get(q));
    }
    const count = totalCrossings(current, links);
    if (count < bestCount) {
      best = current.map((rank) => [...rank]);
      bestCount = count;
    }
  }
  return best;
}

// --- 5. positions across the ranks ---------------------------------------------------------

// Positions x_i (in the given order) closest, in least squares, to the wished ones, with
// x_{i+1} >= x_i + gap_i: pool adjacent violators over the gap-shifted wishes.
export function placeInOrder(wished, gaps) {
  const offset = [0];
  for (let i = 1; i < wished.length; i++) offset.push(offset[i - 1] + gaps[i - 1]);
  const blocks = [];
  wished.forEach((w, i) => {
    blocks.push({ sum: w - offset[i], count: 1 });
    while (blocks.length > 1) {
      const last = blocks[blocks.length - 1];
      const prev = blocks[blocks.length - 2];
      if (prev.sum / prev.count <= last.sum / last.count) break;
      prev.sum += last.sum;
      prev.count += last.count;
      blocks.pop();
    }
  });
  const placed = [];
  for (const block of blocks) for (let k = 0; k < block.count; k++) placed.push(block.sum / block.count + offset[placed.length]);
  return placed;
}

// --- the whole layout ---------------------------------------------------------------------

// nodes: [{ id, width, height }]; edges: [{ id, from, to, label: { width, height } }].
// Returns { width, height, direction, nodes: Map id → {x, y, width, height},
// edges: [{ id, points: [[x, y], …] (caller to callee), curves (SVG path), label: {x, y,
// width, height} }], loops: [edge ids from a service to itself, not routed] }.
export function layoutMap(nodes, edges, options = {}) {
  const o = { ...DEFAULTS, ...options };
  const lr = o.direction !== 'TB';
  const ids = nodes.map((n) => n.id);
  const known = new Set(ids);
  for (const e of edges) {
    if (!known.has(e.from) || !known.has(e.to)) throw new Error(`edge ${e.id} joins an unknown service`);
  }
  const routed = edges.filter((e) => e.from !== e.to);
  const loops = edges.filter((e) => e.from === e.to).map((e) => e.id);
  const oriented = orient(ids, routed);
  const layer = longestPathLayers(ids, oriented);

  // Items: one per node, and per edge a chain through every rank between its ends.
  const items = new Map(); // key → { along, across, kind, rank }
  for (const n of nodes) {
    items.set(`n:${n.id}`, { kind: 'node', rank: 2 * layer.get(n.id), along: lr ? n.width : n.height, across: lr ? n.height : n.width });
  }
  const chains = routed.map((e, k) => {
    const { from, to } = oriented[k];
    const first = 2 * layer.get(from);
    const last = 2 * layer.get(to);
    // The label sits on the odd rank nearest the middle of the edge.
    let labelRank = first + 1;
    for (let r = first + 1; r < last; r += 2) if (Math.abs(r - (first + last) / 2) < Math.abs(labelRank - (first + last) / 2)) labelRank = r;
    const chain = [`n:${from}`];
    for (let r = first + 1; r < last; r++) {
      const key = `e${k}:${r}`;
      const label = r === labelRank ? e.label || { width: 0, height: 0 } : null;
      items.set(key, label
        ? { kind: 'label', rank: r, along: lr ? label.width : label.height, across: o.lineGap + (lr ? label.height : label.width), label }
        : { kind: 'dummy', rank: r, along: 0, across: 0 });
      chain.push(key);
    }
    chain.push(`n:${to}`);
    return chain;
  });

  const rankCount = Math.max(1, ...[...items.values()].map((it) => it.rank + 1));
  const ranks = Array.from({ length: rankCount }, () => []);
  const links = Array.from({ length: Math.max(0, rankCount - 1) }, () => []);
  // Initial order: nodes as given (the caller sorts them), then chains in edge order.
  for (const id of ids) ranks[items.get(`n:${id}`).rank].push(`n:${id}`);
  chains.forEach((chain) => {
    chain.slice(1, -1).forEach((key) => ranks[items.get(key).rank].push(key));
    for (let i = 0; i + 1 < chain.length; i++) links[items.get(chain[i]).rank].push([chain[i], chain[i + 1]]);
  });
  const ordered = barycentreSweeps(ranks, links, o.sweeps);

  // Along the rank axis: each rank as thick as its thickest item, a gap between ranks.
  const rankStart = [];
  const rankSize = ordered.map((rank) => Math.max(0, ...rank.map((key) => items.get(key).along)));
  let cursor = o.pad;
  ordered.forEach((_, r) => {
    rankStart.push(cursor);
    cursor += rankSize[r] + o.rankGap;
  });
  const alongExtent = cursor - o.rankGap + o.pad;

  // Across: anchors (where an edge crosses the item) pulled towards their neighbours.
  const neighbours = new Map([...items.keys()].map((key) => [key, []]));
  links.flat().forEach(([u, v]) => {
    neighbours.get(u).push(v);
    neighbours.get(v).push(u);
  });
  const anchorOffset = (key) => {
    const it = items.get(key);
    return it.kind === 'node' ? it.across / 2 : 0; // labels and dummies carry the line at their start
  };
  const start = new Map();
  for (const rank of ordered) {
    let at = 0;
    for (const key of rank) {
      start.set(key, at);
      at += items.get(key).across + o.slotGap;
    }
  }
  const placeRank = (rank) => {
    if (!rank.length) return;
    const wished = rank.map((key) => {
      const ns = neighbours.get(key);
      const own = start.get(key) + anchorOffset(key);
      if (!ns.length) return own - anchorOffset(key);
      const mean = ns.reduce((s, n) => s + start.get(n) + anchorOffset(n), 0) / ns.length;
      return mean - anchorOffset(key);
    });
    const gaps = rank.slice(0, -1).map((key) => items.get(key).across + o.slotGap);
    placeInOrder(wished, gaps).forEach((x, i) => start.set(rank[i], x));
  };
  for (let round = 0; round < o.straighten; round++) {
    const sequence = round % 2 === 0 ? ordered : [...ordered].reverse();
    sequence.forEach(placeRank);
  }
  const low = Math.min(...[...start.values()]);
  for (const [key, value] of start) start.set(key, value - low + o.pad);
  const acrossExtent = Math.max(0, ...[...start.entries()].map(([key, s]) => s + items.get(key).across)) + o.pad;

  // To screen coordinates.
  const point = (along, across) => (lr ? [along, across] : [across, along]);
  const box = (along, across, alongSize, acrossSize) => (lr
    ? { x: along, y: across, width: alongSize, height: acrossSize }
    : { x: across, y: along, width: acrossSize, height: alongSize });
  const placedNodes = new Map();
  for (const n of nodes) {
    const key = `n:${n.id}`;
    const it = items.get(key);
    const alongAt = rankStart[it.rank] + (rankSize[it.rank] - it.along) / 2;
    placedNodes.set(n.id, box(alongAt, start.get(key), it.along, it.across));
  }

  // Ports: the edges leaving (or entering) one side of a box spread along it, in the
  // order of the slots they go to, so they do not start on top of each other.
  const ports = new Map();
  const portSides = new Map();
  chains.forEach((chain, k) => {
    for (const [end, next, side] of [[chain[0], chain[1], 'far'], [chain[chain.length - 1], chain[chain.length - 2], 'near']]) {
      const sideKey = `${end}|${side}`;
      if (!portSides.has(sideKey)) portSides.set(sideKey, []);
      portSides.get(sideKey).push({ k, next });
    }
  });
  for (const [sideKey, list] of portSides) {
    const end = sideKey.split('|')[0];
    list.sort((p, q) => start.get(p.next) + anchorOffset(p.next) - (start.get(q.next) + anchorOffset(q.next)) || p.k - q.k);
    const across = items.get(end).across;
    list.forEach((p, i) => ports.set(`${sideKey}|${p.k}`, start.get(end) + (across * (i + 1)) / (list.length + 1)));
  }

  const routes = routed.map((e, k) => {
    const chain = chains[k];
    const spine = []; // [along, across] points, caller side first in the oriented direction
    let labelBox = null;
    chain.forEach((key, i) => {
      const it = items.get(key);
      const bandStart = rankStart[it.rank];
      const bandEnd = bandStart + rankSize[it.rank];
      if (i === 0) {
        const across = ports.get(`${key}|far|${k}`);
        const alongAt = bandStart + (rankSize[it.rank] + it.along) / 2; // the box's far side
        spine.push([alongAt, across], [bandEnd, across]);
      } else if (i === chain.length - 1) {
        const across = ports.get(`${key}|near|${k}`);
        const alongAt = bandStart + (rankSize[it.rank] - it.along) / 2; // the box's near side
        spine.push([bandStart, across], [alongAt, across]);
      } else {
        const across = start.get(key);
        spine.push([bandStart, across], [bandEnd, across]);
        if (it.kind === 'label') {
          const alongAt = bandStart + (rankSize[it.rank] - it.along) / 2;
          labelBox = box(alongAt, across + o.lineGap, it.along, it.across - o.lineGap);
        }
      }
    });
    // Straight inside ranks; between ranks an S-curve whose control points stay in the gap
    // (spine points pair up per rank, so every second segment crosses a gap).
    const at = (p) => point(p[0], p[1]).join(',');
    const steps = spine.slice(1).map((to, i) => {
      const from = spine[i];
      if (i % 2 === 1 && from[1] !== to[1]) {
        const mid = (from[0] + to[0]) / 2;
        return { from, to, c1: [mid, from[1]], c2: [mid, to[1]] };
      }
      return { from, to };
    });
    const draw = (list, forward) => list.map((s) => {
      const [a, b, end] = forward ? [s.c1, s.c2, s.to] : [s.c2, s.c1, s.from];
      return a ? `C${at(a)} ${at(b)} ${at(end)}` : `L${at(end)}`;
    }).join(' ');
    const reversed = oriented[k].reversed;
    // A reversed (cycle-closing) edge is drawn from its real caller: the route walked back.
    const d = reversed
      ? `M${at(spine[spine.length - 1])} ${draw([...steps].reverse(), false)}`
      : `M${at(spine[0])} ${draw(steps, true)}`;
    const points = spine.map((p) => point(p[0], p[1]));
    if (reversed) points.reverse();
    return { id: e.id, points, path: d, label: labelBox, reversed };
  });

  const [width, height] = lr ? [alongExtent, acrossExtent] : [acrossExtent, alongExtent];
  return { width, height, direction: lr ? 'LR' : 'TB', nodes: placedNodes, edges: routes, loops };
}
