// The dashboard's state and its wiring to ebb: it reads ebb's JSON API (/ebb/v1/status,
// /ebb/v1/recommended-delay) and the dashboard's own calls (/dashboard/api/…) with the session cookie,
// follows /ebb/v1/events (Server-Sent Events) to stay live, and sends changes with the session's CSRF
// token. What it cannot recover from is drawn as a message, never a blank page.
import { Component, h, render } from 'preact';
import { useEffect, useMemo, useRef, useState } from 'preact/hooks';
import htm from 'htm';
import { DrainRecords, Fatal, LoadBalancers, RecentEvents } from './view.js';

const html = htm.bind(h);

const EVENTS_KEPT = 100;
/** How long a target that left its group stays on the page, drawn as gone. */
const GONE_SHOWN_MS = 20_000;
/** Full refreshes besides the event stream: the counts of targets that do not drain, and a safety net. */
const STATUS_EVERY_MS = 2_000;
const RECOMMENDATION_EVERY_MS = 30_000;
/** A live drain's samples kept by the page; beyond, every other one is dropped (as ebb thins its own). */
const LIVE_SAMPLES_KEPT = 240;

/** An answer ebb refused, with its code, so callers can tell "signed out" from other failures. */
class Refusal extends Error {
  constructor(status, code, message) {
    super(message);
    this.status = status;
    this.code = code;
  }
}

const signedOut = (e) => e instanceof Refusal && (e.code === 'MissingAuthenticationToken' || e.status === 401);

async function call(method, path, csrfToken, body) {
  const headers = { accept: 'application/json' };
  if (body !== undefined) headers['content-type'] = 'application/json';
  if (csrfToken !== undefined) headers['x-csrf-token'] = csrfToken;
  let res;
  try {
    res = await fetch(path, { method, headers, credentials: 'same-origin', body: body === undefined ? undefined : JSON.stringify(body) });
  } catch (e) {
    throw new Refusal(0, 'Unreachable', `ebb did not answer (${e.message}); is it running?`);
  }
  const text = await res.text();
  let json = null;
  try {
    json = JSON.parse(text);
  } catch {
    // Not JSON: described below.
  }
  if (!res.ok) throw new Refusal(res.status, json?.code ?? `HTTP ${res.status}`, json?.message ?? text.slice(0, 200));
  if (json === null) throw new Refusal(res.status, 'NotJson', `${path} did not answer JSON`);
  return json;
}

const get = (path) => call('GET', path);

/** Keeps a series bounded the way ebb does: every other sample once it is too long. */
function bounded(series) {
  return series.length <= LIVE_SAMPLES_KEPT ? series : series.filter((_, i) => i % 2 === 0 || i === series.length - 1);
}

function App() {
  const [session, setSession] = useState(null);
  const [status, setStatus] = useState(null);
  const [recs, setRecs] = useState(new Map());
  const [records, setRecords] = useState([]);
  /** `${groupArn} ${target}` → samples of the drains in progress. */
  const [live, setLive] = useState(new Map());
  const [events, setEvents] = useState([]);
  const [stream, setStream] = useState('connecting');
  const [notice, setNotice] = useState(null);
  const [fatal, setFatal] = useState(null);
  /** Targets seen before that have left their group: key → { target, group, at }. */
  const [gone, setGone] = useState(new Map());
  const [now, setNow] = useState(Date.now());
  const skew = useRef(0);
  const seen = useRef(new Map());
  const refreshing = useRef(null);

  const stop = (title, message, signIn) => setFatal({ title, message, signIn });
  // A notice of what the page did fades; an error stays until something succeeds.
  useEffect(() => {
    if (notice === null || notice.error) return undefined;
    const t = setTimeout(() => setNotice(null), 6_000);
    return () => clearTimeout(t);
  }, [notice]);
  const failed = (e, what) => {
    if (signedOut(e)) stop('Signed out', `Your dashboard session has ended (${e.message}).`, true);
    else setNotice({ error: true, text: `${what}: ${e.message}` });
  };

  async function loadStatus() {
    const s = await get('/ebb/v1/status');
    skew.current = Date.parse(s.at) - Date.now();
    const present = new Map();
    for (const g of s.targetGroups) for (const t of g.targets) present.set(`${g.arn} ${t.target}`, { t, g });
    setGone((prev) => {
      const next = new Map([...prev].filter(([k, v]) => !present.has(k) && Date.now() - v.at < GONE_SHOWN_MS));
      for (const [k, v] of seen.current) if (!present.has(k) && !next.has(k)) next.set(k, { ...v, at: Date.now() });
      return next;
    });
    seen.current = present;
    setStatus(s);
  }

  async function loadDrains() {
    const d = await get('/dashboard/api/drains');
    setRecords(d.records);
    setLive((prev) => {
      const next = new Map();
      for (const x of d.drains) {
        const key = `${x.targetGroupArn} ${x.target}`;
        const mine = prev.get(key) ?? [];
        // ebb's series is the longer memory; samples the page took after its last one are kept.
        const lastAt = x.series.length === 0 ? -1 : x.series[x.series.length - 1].elapsedMs;
        next.set(key, bounded([...x.series, ...mine.filter((s) => s.elapsedMs > lastAt)]));
      }
      return next;
    });
  }

  async function loadRecommendations() {
    const r = await get('/ebb/v1/recommended-delay');
    setRecs(new Map(r.targetGroups.map((g) => [g.targetGroupArn, g])));
  }

  /** Status and drains again, at most one refresh at a time (events can come in bursts). */
  function refresh() {
    if (refreshing.current !== null) {
      refreshing.current.again = true;
      return;
    }
    const run = { again: false };
    refreshing.current = run;
    Promise.all([loadStatus(), loadDrains()])
      .then(() => setNotice((n) => (n?.error ? null : n)))
      .catch((e) => failed(e, 'Could not read ebb'))
      .finally(() => {
        refreshing.current = null;
        if (run.again) refresh();
      });
  }

  function onEvent(type, data, id) {
    if (type === 'drain:progress') {
      // Drawn in the bars and charts, not listed: once a second per drain would push out everything else.
      const key = `${data.targetGroupArn} ${data.target}`;
      setLive((prev) => {
        const series = prev.get(key) ?? [];
        if (series.length > 0 && series[series.length - 1].elapsedMs >= data.elapsedMs) return prev;
        const next = new Map(prev);
        next.set(key, bounded([...series, { elapsedMs: data.elapsedMs, requestsInFlight: data.requestsInFlight, tunnelsOpen: data.tunnelsOpen }]));
        return next;
      });
      // The counts move with the progress, between full refreshes.
      setStatus((s) =>
        s === null
          ? s
          : {
              ...s,
              targetGroups: s.targetGroups.map((g) =>
                g.arn !== data.targetGroupArn
                  ? g
                  : { ...g, targets: g.targets.map((t) => (t.target !== data.target ? t : { ...t, requestsInFlight: data.requestsInFlight, tunnelsOpen: data.tunnelsOpen, connections: data.connections })) },
              ),
            },
      );
      return;
    }
    setEvents((prev) => [{ id: `${id}-${type}`, type, data }, ...prev].slice(0, EVENTS_KEPT));
    if (type === 'stream:closing' || type === 'stream:dropped') setStream('reconnecting');
    // A drain that ended is a good moment to look at the delay again: its requests count in the recommendation.
    if (type === 'drain:end') loadRecommendations().catch((e) => failed(e, 'Could not read the recommended delays'));
    refresh();
  }

  // Start: the session (its CSRF token), then everything, then the stream.
  useEffect(() => {
    let es = null;
    let timers = [];
    let closed = false;
    (async () => {
      try {
        setSession(await get('/dashboard/api/session'));
        await Promise.all([loadStatus(), loadDrains(), loadRecommendations().catch((e) => failed(e, 'Could not read the recommended delays'))]);
      } catch (e) {
        if (signedOut(e)) stop('Signed out', `Your dashboard session has ended (${e.message}).`, true);
        else stop('The dashboard could not read ebb', e.message, false);
        return;
      }
      if (closed) return;
      es = new EventSource('/ebb/v1/events');
      es.addEventListener('open', () => setStream('live'));
      const types = ['stream:ready', 'target:state', 'drain:start', 'drain:progress', 'drain:end', 'config:reload', 'stream:dropped', 'stream:closing'];
      for (const type of types) {
        es.addEventListener(type, (m) => {
          let data;
          try {
            data = JSON.parse(m.data);
          } catch {
            return;
          }
          if (type === 'stream:ready') {
            setStream('live');
            refresh();
            return;
          }
          onEvent(type, data, m.lastEventId);
        });
      }
      es.addEventListener('error', () => {
        // EventSource retries by itself after a dropped connection; a refused one (the session ended,
        // ebb gone) closes it for good, so find out which.
        setStream(es.readyState === EventSource.CLOSED ? 'closed' : 'reconnecting');
        if (es.readyState === EventSource.CLOSED) {
          get('/dashboard/api/session').then(
            () => stop('The event stream ended', 'ebb refused the event stream. Reload the page to follow it again.', false),
            (e) => (signedOut(e) ? stop('Signed out', `Your dashboard session has ended (${e.message}).`, true) : stop('ebb is unreachable', e.message, false)),
          );
        }
      });
      timers.push(setInterval(refresh, STATUS_EVERY_MS));
      timers.push(setInterval(() => loadRecommendations().catch((e) => failed(e, 'Could not read the recommended delays')), RECOMMENDATION_EVERY_MS));
    })();
    timers.push(setInterval(() => setNow(Date.now()), 250));
    return () => {
      closed = true;
      es?.close();
      for (const t of timers) clearInterval(t);
    };
  }, []);

  useEffect(() => {
    if (fatal !== null) document.documentElement.dataset.fatal = 'yes';
  }, [fatal]);

  const act = useMemo(
    () => ({
      deregister: (group, target, timeoutSeconds) => change('deregister', { targetGroup: group, target, ...(timeoutSeconds === null ? {} : { timeoutSeconds }) }),
      register: (group, target) => change('register', { targetGroup: group, target }),
    }),
    [session],
  );

  function change(kind, body) {
    if (session === null) return;
    setNotice({ text: `${kind === 'deregister' ? 'Deregistering' : 'Registering'} ${body.target}…` });
    call('POST', `/dashboard/api/${kind}`, session.csrfToken, body).then(
      (r) => {
        setNotice({ text: `${r.targetGroupName} ${r.target} is ${r.state}.` });
        refresh();
      },
      (e) => failed(e, `Could not ${kind} ${body.target}`),
    );
  }

  function signOut() {
    call('POST', '/dashboard/api/sign-out', session?.csrfToken, {}).finally(() => window.location.assign('/dashboard/'));
  }

  if (fatal !== null) return html`<${Fatal} ...${fatal} />`;
  if (status === null) return html`<p class="loading">Reading ebb…</p>`;

  const serverNow = now + skew.current;
  // A target that left its group is drawn where it was, as gone, for a while.
  const groups = status.targetGroups.map((g) => {
    const ghosts = [...gone.values()].filter((x) => x.g.arn === g.arn && !g.targets.some((t) => t.target === x.t.target));
    return ghosts.length === 0
      ? g
      : { ...g, targets: [...g.targets, ...ghosts.map((x) => ({ ...x.t, state: 'gone', reason: null, drain: null, requestsInFlight: 0, tunnelsOpen: 0, connections: 0 }))] };
  });
  const drains = status.drains.length;
  return html`<div class="dashboard">
    <header class="top">
      <h1><span class="logo">ebb</span> dashboard</h1>
      <span class="muted">${status.region} · snapshot ${status.snapshot.latestVersion}${status.snapshot.appliedVersion === status.snapshot.latestVersion ? '' : ` (applied ${status.snapshot.appliedVersion})`}</span>
      <span class=${`stream ${stream}`} data-live=${stream}>${stream === 'live' ? '● live' : stream === 'connecting' ? '○ connecting' : stream === 'closed' ? '○ stream closed' : '◌ reconnecting'}</span>
      <span class="muted">${drains === 0 ? 'nothing draining' : `${drains} draining`}</span>
      ${session?.authentication === false ? html`<span class="warning">authentication is off</span>` : null}
      <span class="spacer"></span>
      <span class="muted">${session?.who ?? ''}</span>
      ${session?.authentication === false ? null : html`<button class="secondary" onClick=${signOut}>Sign out</button>`}
    </header>
    ${notice === null ? null : html`<p class=${notice.error ? 'notice error' : 'notice'} role="status">${notice.text}</p>`}
    <main>
      <${LoadBalancers} status=${status} groups=${groups} recs=${recs} now=${serverNow} live=${live} act=${act} />
      <aside>
        <${DrainRecords} records=${records} />
        <${RecentEvents} events=${events} />
      </aside>
    </main>
  </div>`;
}

/** Anything a component throws is drawn as a message rather than leaving the page blank. */
class Boundary extends Component {
  constructor() {
    super();
    this.state = { error: null };
  }
  componentDidCatch(error) {
    this.setState({ error });
  }
  render() {
    if (this.state.error !== null) {
      return html`<${Fatal} title="The dashboard stopped" message=${`An error it cannot recover from: ${this.state.error.message ?? String(this.state.error)}`} signIn=${false} />`;
    }
    return this.props.children;
  }
}

function fatalOutsidePreact(message) {
  const app = document.getElementById('app');
  if (app === null || app.querySelector('[data-fatal]') !== null) return;
  render(html`<${Fatal} title="The dashboard stopped" message=${message} signIn=${false} />`, app);
}

window.addEventListener('unhandledrejection', (e) => fatalOutsidePreact(`An error it cannot recover from: ${e.reason?.message ?? String(e.reason)}`));

const root = document.getElementById('app');
root.textContent = '';
render(html`<${Boundary}><${App} /><//>`, root);
document.documentElement.dataset.started = 'yes';
