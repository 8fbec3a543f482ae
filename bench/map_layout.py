"""How long the service map's layout takes for fleets of 12 and 30 services, under Node.

Run: ``python bench/map_layout.py [--rounds N]``

Lays out a generated fleet (each service called by one or two earlier ones, some
message hops and calls back) with ``static/map_layout.js``, ``--rounds`` times per size
and direction, and prints the median time per layout and the drawing's size. The
browser runs the same code once per map load. Needs ``node``; every loop is bounded
by ``--rounds``.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
from pathlib import Path

LAYOUT = (
    Path(__file__).resolve().parents[1] / "src/threadline/server/ui/static/map_layout.js"
).as_uri()
SCRIPT = """
import { layoutMap } from '%(layout)s';
const rounds = %(rounds)d;
for (const size of [12, 30]) {
  const names = Array.from({ length: size }, (_, k) => `service-${k}`);
  const edges = [];
  for (let k = 1; k < size; k++) {
    const add = (from, to) => edges.push({ id: edges.length, from: names[from], to: names[to] });
    add(Math.floor((k - 1) / 2), k);
    if (k %% 3 === 0) add(Math.floor(k / 3), k);
    if (k %% 7 === 0) add(k, Math.floor(k / 4));
  }
  for (const e of edges) e.label = { width: 130, height: 14 };
  for (const direction of ['LR', 'TB']) {
    const nodes = names.map((id) => ({ id, width: direction === 'LR' ? 200 : 164, height: 58 }));
    const times = [];
    let layout;
    for (let r = 0; r < rounds; r++) {
      const t = performance.now();
      layout = layoutMap(nodes, edges, { direction });
      times.push(performance.now() - t);
    }
    times.sort((a, b) => a - b);
    const median = times[Math.floor(times.length / 2)];
    const drawing = `${layout.width.toFixed(0)} x ${layout.height.toFixed(0)} px`;
    console.log(`${size} services, ${edges.length} edges, ${direction}: ` +
      `median ${median.toFixed(1)} ms per layout, drawing ${drawing}`);
  }
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    node = shutil.which("node")
    if node is None:
        sys.exit("this benchmark needs Node.js (`node`)")
    script = SCRIPT % {"layout": LAYOUT, "rounds": max(1, args.rounds)}
    subprocess.run([node, "--input-type=module", "-e", script], check=True, timeout=300)


if __name__ == "__main__":
    main()
