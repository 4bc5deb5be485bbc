import assert from 'node:assert/strict';
import http from 'node:http';
import net from 'node:net';
import type { AddressInfo } from 'node:net';
import { test } from 'node:test';
import type { ListenerSettings } from '../../src/domain/routing-snapshot.ts';
import { bodyFraming } from '../../src/dataplane/desync/framing.ts';
import type { DesyncTier } from '../../src/dataplane/desync/classify.ts';
import { loadCorpus, renderRequest, requestHeadOf } from '../../src/dataplane/desync/corpus.ts';
import type { CorpusCase } from '../../src/dataplane/desync/corpus.ts';
import { sleep } from '../support/timing.ts';
import { snapshot, startPlane } from './dataplane-helpers.ts';

/**
 * The whole http_desync_guardian corpus (github.com/aws/http-desync-guardian `tests/*.yaml`) sent
 * through a real ebb listener in each `routing.http.desync_mitigation_mode`, to a target that keeps
 * every byte it gets. Each case goes on a fresh connection, with a canary request behind it in the
 * same write, and three things are checked:
 *
 * 1. the action ebb took is the one ALB's table gives the case's expected tier
 *    (docs.aws.amazon.com/elasticloadbalancing/latest/application/application-load-balancers.html#desync-mitigation-mode),
 *    bar the few exceptions in `expectationOf`, each with its reason;
 * 2. what reached the target, read by Node's own strict parser (llhttp), is exactly the requests ebb
 *    forwarded: one framing header each, the body ebb framed, the canary a request of its own (or
 *    absent), the method and target as the case gave them;
 * 3. a refusal is logged with the case's expected classification.
 *
 * Every case runs in every mode; none is skipped. Disagreements are collected, printed, and fail the
 * mode's test with the whole list.
 */

const corpus = loadCorpus();

const MODES: ReadonlyArray<ListenerSettings['desyncMode']> = ['monitor', 'defensive', 'strictest'];

/** Sent behind every case in the same write. Only a forwarded, persistent exchange may let it through, as a request of its own. */
const CANARY = 'GET /canary HTTP/1.1\r\nHost: canary\r\n\r\n';

/** The content of the one chunk `renderRequest` gives a chunked body. */
const CHUNK = 'ebb-desync-corpus';

/** A client exchange that neither closes nor completes in this long is a mismatch ("timeout"). */
const EXCHANGE_TIMEOUT_MS = 3000;
/** After a second response, how long to watch for anything more (a third response, a close). */
const SETTLE_MS = 20;
/** How long the target connection of a forward-then-close exchange may take to be closed by ebb. */
const TARGET_CLOSE_MS = 500;

// ---------------------------------------------------------------------------------------------
// What ALB does, and the exceptions.

type Action = 'forward' | 'close' | 'refuse';

interface Expectation {
  readonly action: Action;
  /** The refusal's status (400, or 505 for HTTP/2 and later). */
  readonly status?: number;
  /** The `reason` of the `request refused` log line. */
  readonly reason?: string;
  /** ebb closes the target connection too (Ambiguous in defensive mode). */
  readonly targetCloses: boolean;
  /** Why this differs from the table, for an exception. */
  readonly because?: string;
  /** For an exception whose wire bytes are another message: the request target the target must get (no headers of the case's, a Host of ebb's). */
  readonly wireTarget?: string;
}

/** ALB's table, written out here rather than taken from request-guard so that the test checks it. */
function tableAction(tier: DesyncTier, mode: ListenerSettings['desyncMode']): Action {
  switch (mode) {
    case 'monitor':
      return 'forward';
    case 'defensive':
      return tier === 'Severe' ? 'refuse' : tier === 'Ambiguous' ? 'close' : 'forward';
    case 'strictest':
      return tier === 'Compliant' ? 'forward' : 'refuse';
  }
}

/**
 * Whether the client's connection persists after this request: HTTP/1.1 and later 1.x, or HTTP/1.0
 * with `Connection: keep-alive`, and no `Connection: close` (RFC 9112 §9.3). A blank version is
 * HTTP/0.9, a one-line request that never persists; so is anything that is not an HTTP/1.x version.
 */
function persistent(c: CorpusCase): boolean {
  const v = /^HTTP\/1\.([0-9])$/.exec(c.version.trim());
  if (v === null) return false;
  const options = c.headers
    .filter((h) => h.name.toLowerCase() === 'connection')
    .flatMap((h) => h.value.toLowerCase().split(','))
    .map((o) => o.trim());
  if (options.includes('close')) return false;
  return v[1] !== '0' || options.includes('keep-alive');
}

/**
 * Cases whose fields hold bytes that, written on the wire, make a different message from the one the
 * case describes (the corpus is structured input to a classifier, not wire bytes). For each, what
 * ebb must do with the bytes actually sent, and why. Nothing else is exempt.
 */
const WIRE_DIFFERS: ReadonlyMap<string, { readonly why: string; readonly expect: (mode: ListenerSettings['desyncMode']) => Expectation }> = new Map([
  ...(['ambiguous.yaml#26', 'ambiguous.yaml#27'] as const).map(
    (k) =>
      [
        k,
        {
          // HTTP/0.9 is one line with no headers: the Transfer-Encoding or Content-Length the case is
          // about cannot be sent, so the wire holds `POST /foo/bar` alone (Acceptable, NonCompliantVersion).
          why: 'an HTTP/0.9 request line carries no headers',
          expect: (mode: ListenerSettings['desyncMode']): Expectation =>
            mode === 'strictest'
              ? { action: 'refuse', status: 400, reason: 'desync-acceptable:NonCompliantVersion', targetCloses: false, because: 'HTTP/0.9 on the wire' }
              : { action: 'close', targetCloses: false, because: 'HTTP/0.9 on the wire' },
        },
      ] as const,
  ),
  [
    'uri-specific-test-cases.yaml#7',
    {
      // The target holds CR LF CR LF: on the wire that ends the head, and what follows is a second
      // request. The first head, `GET /endpoint_a<TAB>HTTP/1.1` plus `Host`, is a request line whose
      // target holds a tab (Ambiguous, AmbiguousUri) and no version (HTTP/0.9: one line).
      why: 'the target holds CR LF CR LF, which ends the head on the wire',
      expect: (mode: ListenerSettings['desyncMode']): Expectation =>
        mode === 'monitor'
          ? { action: 'close', targetCloses: false, because: 'two messages on the wire', wireTarget: '/endpoint_a%09HTTP/1.1' }
          : mode === 'defensive'
            ? { action: 'close', targetCloses: true, because: 'two messages on the wire', wireTarget: '/endpoint_a%09HTTP/1.1' }
            : { action: 'refuse', status: 400, reason: 'desync-ambiguous:AmbiguousUri', targetCloses: false, because: 'two messages on the wire' },
    },
  ],
]);

/** What ebb must do with case `c` in `mode`: the table, bar these exceptions. */
function expectationOf(c: CorpusCase, mode: ListenerSettings['desyncMode']): Expectation {
  const wire = WIRE_DIFFERS.get(`${c.file}#${c.index}`);
  if (wire !== undefined) return wire.expect(mode);
  const tier = c.expected.tier;
  // HTTP/2 and later over an HTTP/1 connection: 505 whatever the mode, as ebb speaks HTTP/1.x only
  // (RFC 9110 §15.6.6). No corpus case has such a version today; the rule keeps the count honest.
  if (/^HTTP\/[2-9]\.[0-9]$/.test(c.version)) {
    return { action: 'refuse', status: 505, reason: 'http-version-not-supported', targetCloses: false, because: 'HTTP/2+ version' };
  }
  const action = tableAction(tier, mode);
  if (action === 'refuse') {
    return { action, status: 400, reason: `desync-${tier.toLowerCase()}:${c.expected.reason}`, targetCloses: false };
  }
  // A method that is not a token cannot be written on a request line any target reads one way
  // (RFC 9110 §9.1): refused whatever the mode.
  if (!/^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/.test(c.method)) {
    return { action: 'refuse', status: 400, reason: 'bad-method', targetCloses: false, because: 'method not a token' };
  }
  // Lengths that disagree, a bad Content-Length, a transfer coding that does not end in chunked: no
  // single framing exists to re-serialise (RFC 9112 §6.3 items 4 and 5), so ebb refuses it in every mode.
  if (bodyFraming(requestHeadOf(c)).kind === 'unframeable') {
    return { action: 'refuse', status: 400, reason: 'unframeable-body', targetCloses: false, because: 'unframeable body' };
  }
  if (action === 'close') return { action, targetCloses: true };
  // A version whose connections do not persist (HTTP/1.0 without keep-alive, HTTP/0.9, or no HTTP/1.x
  // version at all): the request is forwarded and the client's connection closes after its response
  // (RFC 9112 §9.3); the target connection may be kept.
  if (!persistent(c)) return { action: 'close', targetCloses: false, because: 'non-persistent version' };
  return { action, targetCloses: false };
}

// ---------------------------------------------------------------------------------------------
// The recording target: a raw TCP server that keeps every byte per connection and hands the
// connection to a node:http server, whose strict parser (llhttp, no insecureHTTPParser) frames the
// requests and answers each with a small 200.

interface TargetConnection {
  readonly id: number;
  readonly bytes: Buffer[];
  closed: boolean;
}

interface TargetRequest {
  readonly connection: number;
  readonly method: string;
  readonly url: string;
  readonly version: string;
  readonly rawHeaders: readonly string[];
  body: Buffer;
  complete: boolean;
}

interface Recorder {
  readonly port: number;
  readonly connections: TargetConnection[];
  /** Byte chunks in arrival order, by connection. */
  readonly chunks: Array<{ connection: number; bytes: Buffer }>;
  readonly requests: TargetRequest[];
  /** llhttp's parse errors, by connection. */
  readonly errors: Array<{ connection: number; error: string }>;
  close(): Promise<void>;
}

async function startRecorder(): Promise<Recorder> {
  const connections: TargetConnection[] = [];
  const chunks: Recorder['chunks'] = [];
  const requests: TargetRequest[] = [];
  const errors: Recorder['errors'] = [];
  const ids = new WeakMap<net.Socket, number>();
  const sockets = new Set<net.Socket>();

  const parser = http.createServer((req, res) => {
    const r: TargetRequest = {
      connection: ids.get(req.socket) ?? -1,
      method: req.method ?? '',
      url: req.url ?? '',
      version: req.httpVersion,
      rawHeaders: req.rawHeaders,
      body: Buffer.alloc(0),
      complete: false,
    };
    requests.push(r);
    const parts: Buffer[] = [];
    req.on('data', (b: Buffer) => parts.push(b));
    req.on('end', () => {
      r.body = Buffer.concat(parts);
      r.complete = true;
      res.writeHead(200, { 'Content-Length': '2' });
      res.end('ok');
    });
  });
  // ebb pools target connections across cases; Node's 5 s default could close one under a request.
  parser.keepAliveTimeout = 60_000;
  parser.on('clientError', (err: NodeJS.ErrnoException, socket: net.Socket) => {
    errors.push({ connection: ids.get(socket) ?? -1, error: `${err.code ?? 'error'}: ${err.message}` });
    socket.destroy();
  });

  const server = net.createServer((socket) => {
    const conn: TargetConnection = { id: connections.length, bytes: [], closed: false };
    connections.push(conn);
    ids.set(socket, conn.id);
    sockets.add(socket);
    parser.emit('connection', socket);
    // Added after the http server has the socket, so that Node hands it the bytes through 'data'
    // (it stops reading the handle directly once a 'data' listener is added) and this records them too.
    socket.on('data', (b: Buffer) => {
      conn.bytes.push(b);
      chunks.push({ connection: conn.id, bytes: b });
    });
    socket.on('close', () => {
      conn.closed = true;
      sockets.delete(socket);
    });
  });
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
  return {
    port: (server.address() as AddressInfo).port,
    connections,
    chunks,
    requests,
    errors,
    close: () =>
      new Promise<void>((r) => {
        for (const s of sockets) s.destroy();
        server.close(() => r());
      }),
  };
}

// ---------------------------------------------------------------------------------------------
// The client side.

interface Response {
  readonly status: number;
  /** Header names lower-cased. */
  readonly headers: ReadonlyMap<string, string>;
  readonly body: string;
}

interface ClientOutcome {
  readonly responses: Response[];
  /** Bytes after the last whole response. */
  readonly rest: string;
  /** ebb closed the connection (rather than the exchange timing out or completing with it open). */
  readonly closed: boolean;
  readonly timedOut: boolean;
}

/**
 * Splits `raw` into whole responses; `methods[i]` is the method of the request the i-th answers
 * (a HEAD response has no body whatever its Content-Length, RFC 9110 §9.3.2). 1xx interim responses
 * are skipped.
 */
function splitResponses(raw: string, methods: readonly string[]): { responses: Response[]; rest: string } {
  const responses: Response[] = [];
  let at = 0;
  while (at < raw.length) {
    const end = raw.indexOf('\r\n\r\n', at);
    if (end < 0) break;
    const lines = raw.slice(at, end).split('\r\n');
    const m = /^HTTP\/1\.[01] ([0-9]{3})/.exec(lines[0] ?? '');
    if (m === null) break;
    const status = Number(m[1]);
    const headers = new Map<string, string>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim();
      headers.set(name, headers.has(name) ? `${headers.get(name) as string}, ${value}` : value);
    }
    let bodyAt = end + 4;
    if (status < 200) {
      at = bodyAt;
      continue;
    }
    let body = '';
    const method = methods[responses.length] ?? 'GET';
    if (method !== 'HEAD' && status !== 204 && status !== 304) {
      if (headers.get('transfer-encoding')?.toLowerCase() === 'chunked') {
        let complete = false;
        for (;;) {
          const lineEnd = raw.indexOf('\r\n', bodyAt);
          if (lineEnd < 0) break;
          const size = parseInt(raw.slice(bodyAt, lineEnd), 16);
          if (Number.isNaN(size)) break;
          if (size === 0) {
            const trailerEnd = raw.indexOf('\r\n\r\n', lineEnd);
            if (trailerEnd >= 0 && raw.slice(lineEnd, lineEnd + 4) !== '\r\n\r\n') bodyAt = trailerEnd + 4;
            else if (raw.length >= lineEnd + 4) bodyAt = lineEnd + 4;
            else break;
            complete = true;
            break;
          }
          if (raw.length < lineEnd + 2 + size + 2) break;
          body += raw.slice(lineEnd + 2, lineEnd + 2 + size);
          bodyAt = lineEnd + 2 + size + 2;
        }
        if (!complete) break;
      } else {
        const length = Number(headers.get('content-length') ?? '0');
        if (raw.length < bodyAt + length) break;
        body = raw.slice(bodyAt, bodyAt + length);
        bodyAt += length;
      }
    }
    responses.push({ status, headers, body });
    at = bodyAt;
  }
  return { responses, rest: raw.slice(at) };
}

/** Sends `bytes` on a fresh connection; done when ebb closes it, when two responses have come and nothing follows, or on timeout. */
function exchange(port: number, bytes: Buffer, methods: readonly string[]): Promise<ClientOutcome> {
  return new Promise((resolve) => {
    const s = net.connect(port, '127.0.0.1');
    let raw = '';
    let settle: NodeJS.Timeout | null = null;
    let done = false;
    const finish = (closed: boolean, timedOut: boolean): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (settle !== null) clearTimeout(settle);
      s.destroy();
      resolve({ ...splitResponses(raw, methods), closed, timedOut });
    };
    const timer = setTimeout(() => finish(false, true), EXCHANGE_TIMEOUT_MS);
    s.setEncoding('latin1');
    s.on('data', (d: string) => {
      raw += d;
      if (settle !== null) clearTimeout(settle);
      if (splitResponses(raw, methods).responses.length >= 2) settle = setTimeout(() => finish(false, false), SETTLE_MS);
    });
    s.on('close', () => finish(true, false));
    s.on('error', () => {});
    s.write(bytes);
  });
}

// ---------------------------------------------------------------------------------------------
// Checking one case.

const FRAMING = new Set(['content-length', 'transfer-encoding']);
/** Headers ebb writes itself. */
const EBB_HEADERS = new Set(['host', 'x-forwarded-for', 'x-forwarded-proto', 'x-forwarded-port', 'content-length', 'transfer-encoding']);

/** The request target ebb sends: origin form (RFC 9112 §3.2.1), spaces, controls and non-ASCII bytes percent-escaped (RFC 3986 §2.1). */
function forwardedTarget(uri: string): string {
  const escaped = uri.replace(/[\x00-\x20\x7f-\xff]/g, (ch) => `%${ch.charCodeAt(0).toString(16).toUpperCase().padStart(2, '0')}`);
  return escaped.startsWith('/') ? escaped : `/${escaped}`;
}

/**
 * The framing of the bytes `renderRequest` sent: the case's own, except that a blank version is an
 * HTTP/0.9 request, sent as its one request line without headers or body.
 */
function sentFraming(c: CorpusCase): ReturnType<typeof bodyFraming> {
  return /^[ \t]*$/.test(c.version) ? { kind: 'none' } : bodyFraming(requestHeadOf(c));
}

/** Control and non-ASCII bytes as \xNN, at most `max` characters; for messages. */
function shown(s: string, max = 160): string {
  const cut = s.length > max ? `${s.slice(0, max)}…(${s.length} bytes)` : s;
  return cut.replace(/[\x00-\x1f\x7f-\xff]/g, (ch) => `\\x${ch.charCodeAt(0).toString(16).padStart(2, '0')}`);
}

function headerValues(r: TargetRequest, name: string): string[] {
  const out: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) if ((r.rawHeaders[i] as string).toLowerCase() === name) out.push(r.rawHeaders[i + 1] as string);
  return out;
}

/** What is wrong with one request the target parsed, against what ebb should have sent for it. */
function requestProblems(
  r: TargetRequest,
  want: { method: string; url: string; framing: ReturnType<typeof bodyFraming>; names: ReadonlySet<string>; host: string; label: string },
): string[] {
  const p: string[] = [];
  const label = want.label;
  if (!r.complete) p.push(`${label}: the target got no end to its body`);
  if (r.method !== want.method) p.push(`${label}: method ${shown(r.method)}, want ${shown(want.method)}`);
  if (r.url !== want.url) p.push(`${label}: target ${shown(r.url)}, want ${shown(want.url)}`);
  if (r.version !== '1.1') p.push(`${label}: HTTP/${r.version}, want HTTP/1.1`);
  // One framing header, and no look-alike some reader might take for one (`Transfer_Encoding`).
  const framingNames: string[] = [];
  const stray: string[] = [];
  for (let i = 0; i < r.rawHeaders.length; i += 2) {
    const name = r.rawHeaders[i] as string;
    const lower = name.toLowerCase();
    if (FRAMING.has(lower.replace(/_/g, '-'))) framingNames.push(name);
    if (!want.names.has(lower) && !EBB_HEADERS.has(lower)) stray.push(name);
  }
  if (framingNames.length > 1) p.push(`${label}: ${framingNames.length} framing headers (${framingNames.map((n) => shown(n)).join(', ')})`);
  if (stray.length > 0) p.push(`${label}: headers the request did not carry: ${stray.map((n) => shown(n)).join(', ')}`);
  const hosts = headerValues(r, 'host');
  if (hosts.length !== 1 || hosts[0] !== want.host) {
    const glued = label !== 'canary' && hosts.includes('canary') ? ' (the canary\'s Host, read as this request\'s header)' : '';
    p.push(`${label}: Host ${JSON.stringify(hosts)}${glued}, want ${JSON.stringify(want.host)}`);
  }
  const te = headerValues(r, 'transfer-encoding');
  const cl = headerValues(r, 'content-length');
  const body = r.body.toString('latin1');
  const f = want.framing;
  if (f.kind === 'chunked') {
    // Codings applied before chunked stay with the body's bytes (`gzip, chunked`); only the chunks are ebb's.
    const wantTe = f.codings === '' ? 'chunked' : `${f.codings}, chunked`;
    if (te.length !== 1 || te[0]?.toLowerCase() !== wantTe || cl.length > 0) p.push(`${label}: framed TE ${JSON.stringify(te)} CL ${JSON.stringify(cl)}, want Transfer-Encoding: ${wantTe}`);
    if (body !== CHUNK) p.push(`${label}: body ${shown(body, 60)}, want ${CHUNK}`);
  } else {
    const length = f.kind === 'length' ? f.length : 0;
    if (te.length > 0) p.push(`${label}: Transfer-Encoding ${JSON.stringify(te)} on a ${length}-byte body`);
    if (length > 0 ? cl.length !== 1 || cl[0] !== String(length) : cl.length > 1 || (cl.length === 1 && cl[0] !== '0')) {
      p.push(`${label}: Content-Length ${JSON.stringify(cl)}, want ${length > 0 ? length : 'none or 0'}`);
    }
    if (body.length !== length || (length > 0 && body !== 'x'.repeat(length))) p.push(`${label}: body ${shown(body, 60)}, want ${length} bytes of x`);
  }
  if (body.includes('GET /canary')) p.push(`${label}: the canary is inside its body`);
  return p;
}

interface CaseResult {
  readonly id: string;
  readonly got: string;
  readonly gotAction: Action | null;
  readonly expected: Expectation;
  readonly problems: string[];
  /** The data plane's log lines written during the exchange. */
  readonly logged: object[];
}

interface Lane {
  readonly port: number;
  readonly recorder: Recorder;
  readonly logs: object[];
}

async function runCase(lane: Lane, c: CorpusCase, mode: ListenerSettings['desyncMode']): Promise<CaseResult> {
  const { recorder, logs } = lane;
  const id = `${c.file}#${c.index} ${JSON.stringify(c.name)}`;
  const expected = expectationOf(c, mode);
  const marks = { chunks: recorder.chunks.length, requests: recorder.requests.length, errors: recorder.errors.length, logs: logs.length };
  const head = requestHeadOf(c);
  const bytes = Buffer.concat([renderRequest(head), Buffer.from(CANARY, 'latin1')]);
  const out = await exchange(lane.port, bytes, [c.method, 'GET']);
  // A canary ebb wrongly let through after closing, or a request still on its way, lands in this window.
  await sleep(out.closed ? SETTLE_MS : 0);

  const problems: string[] = [];
  const [first, second] = out.responses;
  let gotAction: Action | null = null;
  let got: string;
  if (out.timedOut) got = `timeout after ${out.responses.length} response(s) (${out.responses.map((r) => r.status).join(', ')})`;
  else if (first === undefined) got = `no response, ${out.closed ? 'closed' : 'open'}; bytes ${shown(out.rest)}`;
  else {
    const closeHeader = /(^|,)\s*close\s*(,|$)/i.test(first.headers.get('connection') ?? '');
    const statuses = out.responses.map((r) => r.status).join(', ');
    if (first.status === 200 && out.responses.length === 2 && second?.status === 200 && !closeHeader && !out.closed) gotAction = 'forward';
    else if (first.status === 200 && out.responses.length === 1 && closeHeader && out.closed) gotAction = 'close';
    else if (first.status >= 400 && out.responses.length === 1 && closeHeader && out.closed) gotAction = 'refuse';
    got = gotAction === 'refuse' ? `refuse ${first.status}` : (gotAction ?? `responses ${statuses}, ${closeHeader ? '' : 'no '}Connection: close, ${out.closed ? 'closed' : 'left open'}`);
    if (out.rest !== '') {
      // A response to HEAD has no content, whoever writes it (RFC 9110 §9.3.2).
      const why = c.method === 'HEAD' && out.responses.length === 1 ? ' (content in the response to HEAD)' : '';
      problems.push(`unparsed bytes after the responses${why}: ${shown(out.rest)}`);
    }
  }
  if (gotAction !== expected.action) problems.push(`action: got ${got}`);
  else if (gotAction === 'refuse' && first?.status !== expected.status) problems.push(`status ${first?.status}, want ${expected.status}`);

  // What reached the target in this case's window, as llhttp read it.
  const chunks = recorder.chunks.slice(marks.chunks);
  const requests = recorder.requests.slice(marks.requests);
  const errors = recorder.errors.slice(marks.errors);
  const received = Buffer.concat(chunks.map((ch) => ch.bytes)).toString('latin1');
  for (const e of errors) problems.push(`the target's parser refused what it got: ${e.error}; bytes ${shown(received, 400)}`);
  const wantRequests = expected.action === 'forward' ? 2 : expected.action === 'close' ? 1 : 0;
  if (requests.length !== wantRequests) {
    problems.push(`the target got ${requests.length} request(s) (${requests.map((r) => `${r.method} ${shown(r.url, 40)}`).join(', ')}), want ${wantRequests}; bytes ${shown(received, 400)}`);
  }
  if (expected.action === 'refuse' && received.length > 0 && requests.length === 0) problems.push(`bytes reached the target: ${shown(received, 400)}`);
  const caseHost = c.headers.find((h) => h.name.toLowerCase() === 'host')?.value;
  const names = new Set(c.headers.map((h) => h.name.toLowerCase()));
  const caseRequest = requests[0];
  if (wantRequests >= 1 && caseRequest !== undefined) {
    problems.push(
      ...requestProblems(
        caseRequest,
        expected.wireTarget === undefined
          ? {
              label: 'case request',
              method: c.method,
              url: forwardedTarget(c.uri),
              framing: sentFraming(c),
              names,
              host: caseHost ?? `127.0.0.1:${recorder.port}`,
            }
          : { label: 'case request', method: c.method, url: expected.wireTarget, framing: { kind: 'none' }, names: new Set(['host']), host: `127.0.0.1:${recorder.port}` },
      ),
    );
  }
  const canaryRequest = requests[1];
  if (wantRequests === 2 && canaryRequest !== undefined) {
    problems.push(
      ...requestProblems(canaryRequest, {
        label: 'canary',
        method: 'GET',
        url: '/canary',
        framing: { kind: 'none' },
        names: new Set(['host']),
        host: 'canary',
      }),
    );
  }
  if (wantRequests < 2 && requests.some((r) => r.url === '/canary')) problems.push('the canary reached the target');

  // Ambiguous in defensive mode: the target connection that carried the request is closed too.
  if (expected.targetCloses && caseRequest !== undefined) {
    const conn = recorder.connections[caseRequest.connection];
    const deadline = Date.now() + TARGET_CLOSE_MS;
    while (conn !== undefined && !conn.closed && Date.now() < deadline) await sleep(5);
    if (conn === undefined || !conn.closed) problems.push(`the target connection was not closed within ${TARGET_CLOSE_MS} ms`);
  }

  // The refusal is logged with the classification ALB would give the case.
  const logged = logs.slice(marks.logs);
  const refusals = logged.filter((l) => (l as { msg?: string }).msg === 'request refused') as Array<{ reason?: string }>;
  const refusal = refusals[0];
  if (expected.action === 'refuse') {
    if (refusals.length !== 1 || refusal?.reason !== expected.reason) {
      problems.push(`refusal log reason ${JSON.stringify(refusals.map((l) => l.reason))}, want ${JSON.stringify(expected.reason)}`);
    }
  } else if (refusals.length > 0) problems.push(`refused (log reason ${JSON.stringify(refusals.map((l) => l.reason))})`);

  return { id, got, gotAction, expected, problems, logged };
}

function describeExpectation(e: Expectation): string {
  const what = e.action === 'refuse' ? `refuse ${e.status} (${e.reason})` : e.action;
  return e.because === undefined ? what : `${what} [exception: ${e.because}]`;
}

test('the http_desync_guardian corpus through ebb, in each desync mode', { concurrency: MODES.length }, async (t) => {
  const started = Date.now();
  const summaries: string[] = [];
  await Promise.all(
    MODES.map((mode) =>
      t.test(mode, async () => {
        const recorder = await startRecorder();
        const logs: object[] = [];
        const { dp, port } = await startPlane(snapshot([recorder.port], { settings: { desyncMode: mode } }), logs);
        try {
          const results: CaseResult[] = [];
          for (const c of corpus) results.push(await runCase({ port, recorder, logs }, c, mode));
          const count = (a: Action): number => results.filter((r) => r.gotAction === a).length;
          const bad = results.filter((r) => r.problems.length > 0);
          const exceptions = new Map<string, number>();
          for (const r of results) if (r.expected.because !== undefined) exceptions.set(r.expected.because, (exceptions.get(r.expected.because) ?? 0) + 1);
          const summary =
            `${mode}: ${results.length} cases, ${count('forward')} forwarded, ${count('close')} forwarded then closed, ${count('refuse')} refused, ` +
            `${results.length - count('forward') - count('close') - count('refuse')} other, ${bad.length} mismatches ` +
            `(exceptions to the table: ${[...exceptions].map(([k, n]) => `${k} ${n}`).join(', ') || 'none'})`;
          summaries.push(summary);
          const lines = bad.map(
            (r) =>
              `${r.id} [${mode}] expected ${describeExpectation(r.expected)}, got ${r.got}: ${r.problems.join('; ')} | logged ${JSON.stringify(r.logged)}`,
          );
          console.log(`${summary}\n${lines.join('\n')}`);
          assert.equal(bad.length, 0, `${summary}:\n${lines.join('\n')}`);
        } finally {
          dp.destroy();
          await recorder.close();
        }
      }),
    ),
  );
  console.log(`desync corpus: ${summaries.join(' | ')} (${Date.now() - started} ms)`);
});
