// SLO states as badges (ok, burning, firing) for the SLO pages, service pages and the
// service map, and the links they carry to each SLO's page.

import { el, fmtPercent } from './common.js';

export const STATE_RANK = { ok: 0, burning: 1, firing: 2 };
export const sloHref = (name) => `/slos/${encodeURIComponent(name)}`;

export function stateBadge(state) {
  return el('span', { class: `badge slo-state state-${STATE_RANK[state] === undefined ? 'ok' : state}`, text: state, dataset: { state } });
}

export function burnText(burn) {
  return burn == null ? '–' : `${burn < 10 ? burn.toFixed(2) : burn.toFixed(1)}×`;
}

// A badge linking to one SLO's page: "checkout-errors firing".
export function sloLink(summary) {
  const left = summary.budget_remaining == null ? 'no events yet' : `${fmtPercent(summary.budget_remaining)} of its budget left`;
  return el('a', {
    class: `slo-link state-${summary.state}`,
    href: sloHref(summary.name),
    title: `${summary.name}: ${summary.state}, ${left}, burn over 1h ${burnText(summary.burn_1h)}`,
    dataset: { slo: summary.name, state: summary.state },
  }, el('span', { class: 'slo-name', text: summary.name }), ' ', stateBadge(summary.state));
}

// The worst state of each service's SLOs (its own, and those on calls to it).
export function worstByService(summaries) {
  const worst = new Map();
  for (const s of summaries) {
    for (const name of [s.service, s.callee]) {
      if (name == null) continue;
      const known = worst.get(name);
      if (!known || STATE_RANK[s.state] > STATE_RANK[known.state]) worst.set(name, { state: s.state, slos: [] });
      worst.get(name).slos.push(s);
    }
  }
  return worst;
}
