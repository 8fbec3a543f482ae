// The SLO list: every SLO with its state, budget left and burn over the last hour.

import { ApiError, el, fill, fmtPercent, getJSON, markReady, plural, serviceHref, showNotice } from './common.js';
import { burnText, sloHref, stateBadge, STATE_RANK } from './slo_badges.js';

async function start() {
  const summary = document.getElementById('slos-summary');
  let answer;
  try {
    answer = await getJSON('/api/slo-status');
  } catch (error) {
    summary.textContent = '';
    showNotice(document.getElementById('slos-error'), error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  const slos = [...answer.slos].sort((a, b) => STATE_RANK[b.state] - STATE_RANK[a.state]);
  const count = (state) => slos.filter((s) => s.state === state).length;
  summary.textContent = slos.length
    ? `${plural(slos.length, 'SLO')}: ${count('firing')} firing, ${count('burning')} burning, ${count('ok')} ok.`
    : 'No SLOs yet: define them in threadline.toml ([[slo]] tables) or PUT /api/slos (see docs/alerting.md).';
  fill(document.querySelector('#slo-table tbody'), slos.map((s) => el('tr', { class: s.state === 'firing' ? 'has-error' : '', dataset: { slo: s.name } },
    el('td', {}, el('a', { href: sloHref(s.name), text: s.name })),
    el('td', {}, stateBadge(s.state)),
    el('td', { text: s.indicator }),
    el('td', { class: 'cut' },
      el('a', { href: serviceHref(s.service), text: s.service }),
      s.callee ? [' → ', el('a', { href: serviceHref(s.callee), text: s.callee })] : null,
      s.operation ? el('span', { class: 'muted', text: ` ${s.operation}` }) : null,
      s.reaches ? el('span', { class: 'funnel-step', text: ` → ${s.reaches}`, title: `funnel step: journeys should go on to ${s.reaches}` }) : null),
    el('td', { class: 'num', text: fmtPercent(s.objective) }),
    el('td', { text: s.window }),
    el('td', { class: 'num', text: s.budget_remaining == null ? '–' : fmtPercent(s.budget_remaining) }),
    el('td', { class: 'num', text: burnText(s.burn_1h) }),
    el('td', { text: s.firing.join(', ') }))));
  markReady();
}

start();
