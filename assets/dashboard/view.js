// What the dashboard draws, from the state app.js keeps: load balancers → listeners → target groups →
// targets, drains with their progress and charts, the recent events and the drain records. These
// components only draw; every change goes through the `act` callbacks app.js passes in.
import { h } from 'preact';
import { useState } from 'preact/hooks';
import htm from 'htm';
import { DrainChart } from './chart.js';

const html = htm.bind(h);

export function seconds(ms) {
  if (ms < 1000) return `${Math.round(ms)} ms`;
  if (ms < 10_000) return `${(ms / 1000).toFixed(1)} s`;
  if (ms < 120_000) return `${Math.round(ms / 1000)} s`;
  return `${Math.floor(ms / 60_000)} min ${Math.round((ms % 60_000) / 1000)} s`;
}

function clock(iso) {
  return new Date(iso).toLocaleTimeString([], { hour12: false });
}

export function StateBadge({ state }) {
  return html`<span class=${`badge state-${state}`}>${state}</span>`;
}

/** How far a drain is through its delay, and what is left, counted down on the page's clock. */
function DrainProgress({ drain, now }) {
  const started = Date.parse(drain.startedAt);
  const deadline = Date.parse(drain.deadline);
  const total = Math.max(1, deadline - started);
  const elapsed = Math.min(total, Math.max(0, now - started));
  const left = Math.max(0, deadline - now);
  return html`<div class="drain-progress" title=${`started ${clock(drain.startedAt)}, deadline ${clock(drain.deadline)}`}>
    <div class="bar" role="progressbar" aria-valuemin="0" aria-valuemax=${total} aria-valuenow=${elapsed}>
      <div class="fill" style=${{ width: `${(100 * elapsed) / total}%` }}></div>
    </div>
    <span class="left">${seconds(left)} left of ${drain.timeoutSeconds} s</span>
  </div>`;
}

function TargetActions({ t, group, act }) {
  const [open, setOpen] = useState(false);
  const [delay, setDelay] = useState('');
  if (t.state === 'gone') return html`<td class="actions"></td>`;
  if (t.state === 'draining') {
    return html`<td class="actions">
      <button class="secondary" data-action="register" onClick=${() => act.register(group.name, t.target)} title="Register it again: the drain ends as cancelled">Register again</button>
    </td>`;
  }
  if (!open) {
    return html`<td class="actions"><button class="danger" data-action="deregister-open" onClick=${() => setOpen(true)}>Deregister…</button></td>`;
  }
  const submit = (e) => {
    e.preventDefault();
    const v = delay.trim();
    act.deregister(group.name, t.target, v === '' ? null : Number(v));
    setOpen(false);
  };
  return html`<td class="actions">
    <form class="deregister" onSubmit=${submit}>
      <label>delay <input name="delay" type="number" min="0" max="3600" step="1" placeholder=${String(group.deregistrationDelaySeconds)} value=${delay}
        onInput=${(e) => setDelay(e.currentTarget.value)} /> s</label>
      <button class="danger" type="submit" data-action="deregister">Deregister</button>
      <button type="button" class="secondary" onClick=${() => setOpen(false)}>Cancel</button>
    </form>
  </td>`;
}

function TargetRow({ t, group, now, live, act }) {
  return html`<tr class=${`target state-${t.state}`} data-target=${t.target} data-group=${group.name} data-state=${t.state}>
    <td class="id">${t.target}</td>
    <td><${StateBadge} state=${t.state} />${t.reason === null ? null : html`<div class="reason">${t.reason}</div>`}</td>
    <td class="num" data-field="inflight">${t.requestsInFlight}</td>
    <td class="num">${t.tunnelsOpen}</td>
    <td class="num">${t.connections}</td>
    <td class="drain">
      ${t.drain === null
        ? t.state === 'gone'
          ? html`<span class="muted">drain ended, deregistered</span>`
          : null
        : html`<${DrainProgress} drain=${t.drain} now=${now} />
            ${live === undefined ? null : html`<${DrainChart} series=${live} timeoutSeconds=${t.drain.timeoutSeconds} width=${200} height=${90} label=${`live ${t.target}`} />`}`}
    </td>
    <${TargetActions} t=${t} group=${group} act=${act} />
  </tr>`;
}

function Recommendation({ rec }) {
  if (rec === undefined) return null;
  const warnings = rec.warnings ?? [];
  const value =
    rec.recommendedDelaySeconds === null
      ? html`<span class="muted">no recommendation yet (no requests observed)</span>`
      : html`recommended <strong>${rec.recommendedDelaySeconds} s</strong>${' '}
          <span class="muted">(p99 target response ${seconds(rec.p99TargetResponseMs)} over ${rec.sampleSize} requests, +${rec.marginPercent.low}–${rec.marginPercent.high} %)</span>`;
  return html`<div class="recommendation" data-recommendation=${rec.targetGroupName}>
    ${value}
    ${warnings
      .filter((w) => w.kind !== 'no-samples')
      .map((w) => html`<div class=${`warning ${w.kind}`} title=${w.message}>⚠ ${w.message}</div>`)}
  </div>`;
}

function TargetGroup({ group, rec, now, live, act }) {
  return html`<section class="target-group" data-target-group=${group.name}>
    <header>
      <h4>${group.name}</h4>
      <span class="muted">${group.protocol}:${group.port} · ${group.targetType} · deregistration delay ${group.deregistrationDelaySeconds} s</span>
      <${Recommendation} rec=${rec} />
    </header>
    ${group.targets.length === 0
      ? html`<p class="muted">No targets registered.</p>`
      : html`<table class="targets">
          <thead><tr><th>target</th><th>state</th><th class="num">in flight</th><th class="num">tunnels</th><th class="num">connections</th><th>drain</th><th></th></tr></thead>
          <tbody>
            ${group.targets.map(
              (t) => html`<${TargetRow} key=${t.target} t=${t} group=${group} now=${now} live=${live.get(`${group.arn} ${t.target}`)} act=${act} />`,
            )}
          </tbody>
        </table>`}
  </section>`;
}

export function LoadBalancers({ status, groups, recs, now, live, act }) {
  const byArn = new Map(groups.map((g) => [g.arn, g]));
  const attached = new Set();
  const lbs = status.loadBalancers.map((lb) => {
    const listeners = [...lb.listeners].sort((a, b) => a.port - b.port);
    return html`<article class="load-balancer" data-load-balancer=${lb.name}>
      <h2>${lb.name} <span class="muted">${lb.type} · ${lb.scheme}</span></h2>
      ${listeners.length === 0 ? html`<p class="muted">No listeners.</p>` : null}
      ${listeners.map((l) => {
        const g = l.targetGroupArn === null ? undefined : byArn.get(l.targetGroupArn);
        if (g !== undefined) attached.add(g.arn);
        return html`<div class="listener" key=${l.arn}>
          <h3>${l.protocol} ${l.address}:${l.port} <span class="muted">→ ${g === undefined ? 'no target group' : g.name}</span></h3>
          ${g === undefined ? null : html`<${TargetGroup} group=${g} rec=${recs.get(g.arn)} now=${now} live=${live} act=${act} />`}
        </div>`;
      })}
    </article>`;
  });
  const loose = groups.filter((g) => !attached.has(g.arn));
  return html`<div class="tree">
    ${status.loadBalancers.length === 0 ? html`<p class="muted">No load balancers yet.</p>` : lbs}
    ${loose.length === 0
      ? null
      : html`<article class="load-balancer loose">
          <h2>Target groups no listener forwards to</h2>
          ${loose.map((g) => html`<${TargetGroup} key=${g.arn} group=${g} rec=${recs.get(g.arn)} now=${now} live=${live} act=${act} />`)}
        </article>`}
  </div>`;
}

function eventText(e) {
  const d = e.data;
  switch (e.type) {
    case 'target:state':
      return `${d.targetGroupName} ${d.target}: ${d.from.state} → ${d.to.state}${d.to.reason === null ? '' : ` (${d.to.reason})`}`;
    case 'drain:start':
      return `${d.targetGroupName} ${d.target}: drain started, deadline in ${d.timeoutSeconds} s`;
    case 'drain:end':
      return `${d.targetGroupName} ${d.target}: drain ended ${d.outcome} after ${seconds(d.durationMs)}, ${d.requestsCompleted} completed, ${d.requestsCut} cut`;
    case 'config:reload':
      return `configuration reload ${d.outcome}${d.error === null ? '' : `: ${d.error}`}`;
    case 'stream:dropped':
    case 'stream:closing':
      return `event stream ended: ${d.reason}`;
    default:
      return e.type;
  }
}

export function RecentEvents({ events }) {
  return html`<section class="events">
    <h2>Recent events</h2>
    ${events.length === 0
      ? html`<p class="muted">None since this page opened.</p>`
      : html`<ol>
          ${events.map(
            (e) => html`<li key=${e.id} class=${`event ${e.type.replace(':', '-')}`} data-event=${e.type}>
              <time>${clock(e.data.at ?? new Date().toISOString())}</time> <span class="type">${e.type}</span> ${eventText(e)}
            </li>`,
          )}
        </ol>`}
  </section>`;
}

export function DrainRecords({ records }) {
  return html`<section class="records">
    <h2>Drain records</h2>
    ${records.length === 0
      ? html`<p class="muted">No drain has ended yet.</p>`
      : html`<div class="record-list">
          ${records.map(
            (r) => html`<article key=${r.id} class=${`record outcome-${r.outcome}`} data-record=${r.target} data-outcome=${r.outcome}>
              <header>
                <strong>${r.targetGroupName} ${r.target}</strong>
                <span class=${`badge outcome-${r.outcome}`}>${r.outcome}</span>
              </header>
              <div class="muted">ended ${clock(r.endedAt)} after ${seconds(r.durationMs)} of ${r.timeoutSeconds} s · ${r.requestsCompleted} completed · ${r.requestsCut} cut${
                r.tunnelsClosed > 0 ? ` · ${r.tunnelsClosed} tunnels closed` : ''
              }</div>
              ${r.series.length === 0
                ? html`<p class="muted">No samples kept for this drain.</p>`
                : html`<${DrainChart} series=${r.series} timeoutSeconds=${r.timeoutSeconds} label=${`record ${r.target}`} />`}
            </article>`,
          )}
        </div>`}
  </section>`;
}

export function Fatal({ title, message, signIn }) {
  return html`<div class="fatal" role="alert" data-fatal="yes">
    <h2>${title}</h2>
    <p>${message}</p>
    <p>${signIn ? html`<a href="/dashboard/">Sign in again</a>` : html`<a href="/dashboard/">Reload the dashboard</a>`}</p>
  </div>`;
}
