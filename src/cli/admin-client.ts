import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { Sha256 } from '@aws-crypto/sha256-js';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { XMLParser } from 'fast-xml-parser';
import type { Connection } from './connection.ts';
import { CliError, EXIT } from './exit-codes.ts';

/** The AWS Query protocol versions of the services the client calls (their botocore apiVersion). */
const QUERY_VERSIONS = { elbv2: '2015-12-01', autoscaling: '2011-01-01' } as const;
/** The SigV4 signing names: ebb's JSON API is signed as ELBv2 is. */
const SIGNING_NAMES = { elbv2: 'elasticloadbalancing', autoscaling: 'autoscaling', ebb: 'elasticloadbalancing' } as const;
/** ebb's own JSON API on the admin endpoint (docs/api.md). */
export const EBB_API = '/ebb/v1/';

/** Errors ebb answers when it does not accept the credentials a request was signed with. */
const CREDENTIAL_CODES = new Set(['InvalidClientTokenId', 'SignatureDoesNotMatch', 'IncompleteSignature', 'MissingAuthenticationToken', 'RequestExpired', 'UnrecognizedClientException']);

interface RawAnswer {
  readonly status: number;
  readonly headers: IncomingHttpHeaders;
  readonly text: string;
}

export interface RequestOptions {
  /** Milliseconds without an answer before giving up; default 30 s. A wait passes its own. */
  readonly timeoutMs?: number;
}

/** An error ebb answered with: its code (`TargetGroupNotFound`) and message. */
export class EbbRefusal extends CliError {
  readonly status: number;

  constructor(status: number, code: string, message: string) {
    super(EXIT.refused, code, message);
    this.status = status;
  }
}

const DEFAULT_TIMEOUT_MS = 30_000;

/** What to run next after a refusal, in the client's words (ebb's message names its API). */
const REFUSAL_HINTS: ReadonlyMap<string, string> = new Map([
  ['TargetGroupNotFound', ". 'ebb status' lists the target groups."],
  ['InvalidTarget', ". 'ebb status' lists each group's targets."],
]);

/** RFC 3986 percent-encoding, as SigV4's canonical query string has it, so what is sent is what is signed. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

/**
 * Talks to ebb's admin endpoint: ebb's JSON API under /ebb/v1/ and the AWS Query APIs, each request
 * signed with SigV4 as the AWS SDKs sign (`@smithy/signature-v4`), or unsigned when no credentials
 * were found (an ebb run with --no-auth takes those). Every failure becomes a CliError that says
 * which part was wrong (the endpoint, the credentials, or the request) and what to do.
 */
export class AdminClient {
  readonly connection: Connection;

  constructor(connection: Connection) {
    this.connection = connection;
  }

  /** GET /ebb/v1/NAME?query; resolves with the parsed JSON answer. */
  async getJson<T>(name: string, query: Readonly<Record<string, string | number | undefined>> = {}, options: RequestOptions = {}): Promise<T> {
    const answer = await this.#send('GET', `${EBB_API}${name}`, query, '', {}, SIGNING_NAMES.ebb, options);
    return this.#json<T>(answer, `GET ${EBB_API}${name}`);
  }

  /** POST /ebb/v1/NAME with a JSON body; resolves with the parsed JSON answer. */
  async postJson<T>(name: string, body: unknown, options: RequestOptions = {}): Promise<T> {
    const answer = await this.#send('POST', `${EBB_API}${name}`, {}, JSON.stringify(body), { 'content-type': 'application/json' }, SIGNING_NAMES.ebb, options);
    return this.#json<T>(answer, `POST ${EBB_API}${name}`);
  }

  /**
   * One AWS Query action (POST, form-encoded, as the AWS CLI sends it); resolves with the
   * `<ActionResult>` element as an object (lists as `{ member: [...] }`).
   */
  async action(service: 'elbv2' | 'autoscaling', action: string, params: Readonly<Record<string, string>>, options: RequestOptions = {}): Promise<Record<string, unknown>> {
    const form = Object.entries({ Action: action, Version: QUERY_VERSIONS[service], ...params })
      .map(([k, v]) => `${encode(k)}=${encode(v)}`)
      .join('&');
    const answer = await this.#send('POST', '/', {}, form, { 'content-type': 'application/x-www-form-urlencoded; charset=utf-8' }, SIGNING_NAMES[service], options);
    const xml = parseXml(answer.text);
    if (answer.status !== 200) {
      const error = (xml?.['ErrorResponse'] as { Error?: { Code?: string; Message?: string } } | undefined)?.Error;
      if (error?.Code === undefined) throw this.#notEbb(answer, `${action}`);
      throw this.#refusal(answer.status, String(error.Code), String(error.Message ?? ''));
    }
    const envelope = xml?.[`${action}Response`] as Record<string, unknown> | undefined;
    if (envelope === undefined) throw this.#notEbb(answer, action);
    const result = envelope[`${action}Result`];
    return typeof result === 'object' && result !== null ? (result as Record<string, unknown>) : {};
  }

  /** GET a path outside the APIs (the dashboard's page), unsigned: its status and headers only. */
  async probe(path: string, options: RequestOptions = {}): Promise<{ status: number; headers: IncomingHttpHeaders }> {
    const answer = await this.#send('GET', path, {}, '', {}, null, options);
    return { status: answer.status, headers: answer.headers };
  }

  #json<T>(answer: RawAnswer, what: string): T {
    const type = String(answer.headers['content-type'] ?? '');
    let body: unknown;
    try {
      body = type.startsWith('application/json') ? JSON.parse(answer.text) : undefined;
    } catch {
      body = undefined;
    }
    if (typeof body !== 'object' || body === null) {
      // An admin endpoint that predates the JSON API has no route for it.
      if (answer.status === 404 && answer.text.startsWith('No route for')) {
        throw new CliError(
          EXIT.unavailable,
          'NoJsonApi',
          `The ebb at ${this.connection.endpoint.origin} has no JSON API (${what}: ${answer.text.trim()}): it is older than this command. Upgrade it, or use the AWS tools against it.`,
        );
      }
      // ebb answers a request it cannot route as an AWS Query request: an XML error. That is an ebb
      // that predates its JSON API, not a wrong endpoint.
      const code = (parseXml(answer.text)?.['ErrorResponse'] as { Error?: { Code?: string } } | undefined)?.Error?.Code;
      if (code !== undefined && !CREDENTIAL_CODES.has(String(code))) {
        throw new CliError(
          EXIT.unavailable,
          'NoJsonApi',
          `The ebb at ${this.connection.endpoint.origin} has no JSON API (${what} answered ${String(code)}): it is older than this command. Upgrade it, or use the AWS tools against it.`,
        );
      }
      throw this.#notEbb(answer, what);
    }
    if (answer.status >= 200 && answer.status < 300) return body as T;
    const err = body as { code?: unknown; message?: unknown };
    if (typeof err.code !== 'string') throw this.#notEbb(answer, what);
    throw this.#refusal(answer.status, err.code, typeof err.message === 'string' ? err.message : '');
  }

  #refusal(status: number, code: string, message: string): CliError {
    const c = this.connection;
    if (!CREDENTIAL_CODES.has(code)) return new EbbRefusal(status, code, `${message} (${code})${REFUSAL_HINTS.get(code) ?? ''}`);
    const where = c.endpoint.origin;
    if (c.credentials === null) {
      return new CliError(
        EXIT.credentials,
        code,
        `ebb at ${where} needs signed requests, and no credentials were found (looked in ${c.searched.join(', then ')}). ` +
          "Run this where ebb serve runs, with its --state-dir (ebb keeps the credentials it made there), or set EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY.",
      );
    }
    const key = `${c.credentials.accessKeyId.slice(0, 8)}…`;
    const hint =
      code === 'InvalidClientTokenId'
        ? c.credentials.source.startsWith('/')
          ? `The file may belong to another ebb: point --state-dir at the state directory of the ebb at ${where}, or --endpoint at the ebb that made the file.`
          : `Set ${c.credentials.source.startsWith('AWS') ? 'EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY' : 'them'} to ebb's admin credentials (admin.credentials in its file, or STATE-DIR/credentials).`
        : code === 'SignatureDoesNotMatch' && /region/i.test(message)
          ? `The region came from ${c.regionSource}; pass --region with ebb's region.`
          : code === 'RequestExpired'
            ? "Check this machine's clock: signed requests are valid for 5 minutes either side of ebb's."
            : `Check the secret key that goes with ${key}.`;
    return new CliError(EXIT.credentials, code, `ebb at ${where} did not accept the credentials from ${c.credentials.source} (access key ${key}): ${message} (${code}). ${hint}`);
  }

  #notEbb(answer: RawAnswer, what: string): CliError {
    const type = String(answer.headers['content-type'] ?? 'no content type');
    return new CliError(
      EXIT.unreachable,
      'NotEbb',
      `What answered at ${this.connection.endpoint.origin} (from ${this.connection.endpointSource}) is not ebb's admin endpoint: ${what} got HTTP ${answer.status} with ${type}. ` +
        "Point --endpoint (or EBB_ENDPOINT) at ebb's admin address, the 'admin' of its ebb:started log line.",
    );
  }

  async #send(
    method: string,
    path: string,
    query: Readonly<Record<string, string | number | undefined>>,
    body: string,
    headers: Readonly<Record<string, string>>,
    service: string | null,
    options: RequestOptions,
  ): Promise<RawAnswer> {
    const c = this.connection;
    const url = c.endpoint;
    const q: Record<string, string> = {};
    for (const [k, v] of Object.entries(query)) if (v !== undefined) q[k] = String(v);
    const search = Object.entries(q)
      .map(([k, v]) => `${encode(k)}=${encode(v)}`)
      .join('&');
    let sendHeaders: Record<string, string> = { host: url.host, ...headers, ...(body !== '' && { 'content-length': String(Buffer.byteLength(body)) }) };
    if (service !== null && c.credentials !== null) {
      const signer = new SignatureV4({ credentials: c.credentials, region: c.region, service, sha256: Sha256 });
      const signed = await signer.sign(
        new HttpRequest({ method, protocol: url.protocol, hostname: url.hostname, ...(url.port !== '' && { port: Number(url.port) }), path, query: q, headers: sendHeaders, body }),
      );
      sendHeaders = signed.headers as Record<string, string>;
    }
    const timeoutMs = options.timeoutMs ?? DEFAULT_TIMEOUT_MS;
    const send = url.protocol === 'https:' ? httpsRequest : httpRequest;
    return new Promise<RawAnswer>((resolve, reject) => {
      const req = send(
        { method, protocol: url.protocol, hostname: url.hostname.replace(/^\[|\]$/g, ''), port: url.port, path: search === '' ? path : `${path}?${search}`, headers: sendHeaders },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (chunk: Buffer) => chunks.push(chunk));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, text: Buffer.concat(chunks).toString('utf8') }));
          res.on('error', (error) => reject(this.#networkError(error)));
        },
      );
      req.setTimeout(timeoutMs, () => {
        req.destroy(
          new CliError(
            EXIT.unreachable,
            'NoAnswer',
            `ebb at ${url.origin} did not answer within ${Math.round(timeoutMs / 1000)} s. Check that ${url.origin} is ebb's admin address and that ebb is not overloaded.`,
          ),
        );
      });
      req.on('error', (error) => reject(error instanceof CliError ? error : this.#networkError(error)));
      req.end(body === '' ? undefined : body);
    });
  }

  #networkError(error: Error): CliError {
    const c = this.connection;
    const code = (error as NodeJS.ErrnoException).code;
    const why =
      code === 'ECONNREFUSED'
        ? 'connection refused (nothing listens there)'
        : code === 'ENOTFOUND' || code === 'EAI_AGAIN'
          ? `the host ${c.endpoint.hostname} was not found`
          : code === 'ECONNRESET' || error.message === 'socket hang up'
            ? 'the connection closed before an answer came (ebb may have stopped)'
            : code === 'EPROTO' || /SSL|TLS/i.test(error.message)
              ? `a TLS error (${error.message}); ebb's admin endpoint speaks plain http unless a proxy in front of it does TLS`
              : error.message;
    return new CliError(
      EXIT.unreachable,
      'Unreachable',
      `Cannot reach ebb at ${c.endpoint.origin} (from ${c.endpointSource}): ${why}. Is ebb serve running? Point the command at its admin address with --endpoint URL or EBB_ENDPOINT.`,
      { cause: error },
    );
  }
}

const xmlParser = new XMLParser({ ignoreAttributes: true, parseTagValue: false, isArray: (name) => name === 'member' });

function parseXml(text: string): Record<string, unknown> | null {
  if (!text.trimStart().startsWith('<')) return null;
  try {
    return xmlParser.parse(text) as Record<string, unknown>;
  } catch {
    return null;
  }
}
