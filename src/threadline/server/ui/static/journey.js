// One journey: a session's (or a user's) traces in time order on one timeline, with
// the think time between steps, the failing step and where the user stopped.

import {
  ApiError, el, fill, fmtMs, fmtTime, fmtUtc, getJSON, journeyHref, markReady, plural, serviceChip,
  serviceHref, showNotice, swatch, synthetic, traceHref, userHref,
} from './common.js';
import { interleaveJourneyLogs } from './journey_logs.js';

const main = document.getElementById('main');
const sessionId = main.dataset.sessionId;
const userId = main.dataset.userId;
const stepsList = document.getElementById('steps');
const summaryLine = document.getElementById('journey-summary');
const errorBox = document.getElementById('journey-error');
const narrativeBox = document.getElementById('narrative');

function stepItem(trace, number, journeyStart, journeySpan, firstFailure) {
  const failed = trace.error_count > 0;
  const left = ((trace.start_ns - journeyStart) / journeySpan) * 100;
  const width = ((trace.duration_ms * 1e6) / journeySpan) * 100;
  const badges = [];
  if (failed) badges.push(el('span', { class: 'badge error', text: trace === firstFailure ? 'failed here' : plural(trace.error_count, 'error') }));
  badges.push(synthetic(trace));
  const classes = ['step'];
  if (failed) classes.push('has-error');
  if (trace === firstFailure) classes.push('first-failure');
  return el('li', { class: classes.join(' '), dataset: { traceId: trace.trace_id, startNs: String(trace.start_ns) } },
    el('a', { href: traceHref(trace.trace_id), 'aria-label': `Step ${number}: ${trace.root_operation}, ${fmtMs(trace.duration_ms)}${failed ? ', failed' : ''}` },
      el('span', { class: 'step-no', text: `${number}.` }),
      el('span', { class: 'step-what' }, swatch(trace.root_service), el('span', { class: 'svc', text: trace.root_service }),
        el('span', { class: 'op', text: trace.root_operation }), badges),
      el('span', { class: 'step-track', 'aria-hidden': 'true' },
        el('span', { class: `bar${failed ? ' error' : ''}`, style: { left: `${left}%`, width: `${width}%` } })),
      el('span', { class: 'num', text: fmtMs(trace.duration_ms) }),
      el('span', { class: 'step-when' },
        el('time', { title: fmtUtc(trace.start_ns), text: fmtTime(trace.start_ns) }),
        ` · ${plural(trace.span_count, 'span')} · ${trace.services.join(', ')}`,
        el('span', { class: 'step-why' }))));
}

function render(journey) {
  const traces = journey.traces;
  const journeyStart = Math.min(...traces.map((t) => t.start_ns));
  const journeyEnd = Math.max(...traces.map((t) => t.start_ns + t.duration_ms * 1e6));
  const journeySpan = Math.max(1, journeyEnd - journeyStart);
  const failures = traces.filter((t) => t.error_count > 0);
  const firstFailure = failures[0] || null;
  const services = [...new Set(traces.flatMap((t) => t.services))].sort();
  const thinkMs = traces.reduce((sum, t) => sum + (t.gap_ms || 0), 0);

  fill(summaryLine,
    el('span', { text: `Started ${fmtTime(journeyStart)}` }),
    el('span', { text: `lasted ${fmtMs(journeySpan / 1e6)}` }),
    el('span', { text: plural(traces.length, 'step') }),
    el('span', { text: `think time ${fmtMs(thinkMs)}` }),
    failures.length ? el('span', { class: 'badge error', text: plural(failures.length, 'failed step') }) : el('span', { text: 'no failures' }),
    synthetic({ synthetic: traces.some((t) => t.synthetic) }),
    journey.user_id && sessionId ? el('a', { href: userHref(journey.user_id), text: `user ${journey.user_id}` }) : null,
    el('span', { class: 'chips' }, services.map((s) => serviceChip(s, { link: true }))));

  const items = [];
  traces.forEach((trace, k) => {
    if (k > 0 && trace.gap_ms != null) {
      items.push(el('li', { class: 'gap', 'aria-hidden': 'true', text: trace.gap_ms > 0 ? `⋯ ${fmtMs(trace.gap_ms)} think time` : '⋯ overlaps the previous step' }));
    }
    if (!sessionId && k > 0 && trace.session_id && trace.session_id !== traces[k - 1].session_id) {
      items.push(el('li', { class: 'gap' }, 'new session ', el('a', { href: journeyHref(trace.session_id), text: trace.session_id })));
    }
    items.push(stepItem(trace, k + 1, journeyStart, journeySpan, firstFailure));
  });
  const last = traces[traces.length - 1];
  const stoppedAfterFailure = last.error_count > 0;
  items.push(el('li', { class: `stop${stoppedAfterFailure ? ' error' : ''}`, id: 'journey-stop',
    text: stoppedAfterFailure
      ? `The user stopped here, right after step ${traces.length} failed (${last.root_operation}).`
      : `The user stopped here, after step ${traces.length} (${last.root_operation}).` }));
  stepsList.replaceChildren(...items);
}

function originText(error) {
  const what = [error.exception_type, error.message].filter(Boolean).join(': ');
  return `${error.service} · ${error.operation}${what ? ` — ${what}` : ''}`;
}

// The server's narrative of the session: what failed where, what held each step up.
function renderNarrative(story, traces) {
  const stepNumber = new Map(traces.map((t, k) => [t.trace_id, k + 1]));
  const lines = [el('p', {},
    `${plural(story.step_count, 'step')} in ${fmtMs(story.duration_ms)}, `,
    `${fmtMs(story.think_time_ms)} of it between steps.`)];
  const failed = story.steps.filter((step) => step.failed);
  for (const step of failed.slice(0, 3)) {
    lines.push(el('p', { class: 'failure' },
      `Step ${stepNumber.get(step.trace_id) ?? '?'} (${step.entry_operation}) failed`,
      step.error ? `: the error started in ${originText(step.error)}.` : '.'));
  }
  if (story.stopped_at_trace_id) {
    const number = stepNumber.get(story.stopped_at_trace_id);
    lines.push(el('p', {}, story.stopped_after_failure
      ? `The user stopped right after step ${number} failed.`
      : `The user stopped after step ${number}.`));
  }
  const top = (story.service_shares || []).find((share) => share.kind === 'service');
  if (top) {
    lines.push(el('p', {}, 'Most of the waiting was in ',
      el('a', { href: serviceHref(top.name), text: top.name }),
      ` (${Math.round(top.fraction * 100)}% of the steps' critical paths).`));
  }
  fill(narrativeBox, el('h2', { class: 'small-title', text: 'What happened' }), lines);
  narrativeBox.hidden = false;
  for (const step of story.steps) {
    const why = document.querySelector(`.step[data-trace-id="${CSS.escape(step.trace_id)}"] .step-why`);
    if (!why) continue;
    if (step.error) fill(why, ' · ', el('span', { class: 'status error', text: `error in ${originText(step.error)}` }));
    else if (step.top_service) why.textContent = ` · held up by ${step.top_service}`;
  }
}

async function loadNarrative(traces) {
  let story;
  try {
    story = await getJSON(`/api/journeys/${encodeURIComponent(sessionId)}/narrative`);
  } catch {
    return; // the steps are whole without it
  }
  renderNarrative(story, traces);
  markReady('narrative');
}

async function start() {
  const path = sessionId ? `/api/journeys/${encodeURIComponent(sessionId)}` : `/api/users/${encodeURIComponent(userId)}/journey`;
  let journey;
  try {
    journey = await getJSON(path);
  } catch (error) {
    summaryLine.textContent = '';
    showNotice(errorBox, error instanceof ApiError ? error.message : String(error));
    markReady();
    return;
  }
  render(journey);
  markReady();
  if (sessionId) loadNarrative(journey.traces);
  loadLogs();
}

async function loadLogs() {
  try {
    await interleaveJourneyLogs(stepsList, { sessionId, userId });
  } catch (error) {
    showNotice(errorBox, `Could not load the journey's log lines: ${error.message}`);
    return;
  }
  markReady('logs');
}

start();
