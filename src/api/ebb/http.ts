import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Clock } from '../../shared/clock.ts';
import { ebbError } from '../../shared/errors.ts';
import { toWireError } from '../error-response.ts';

/** The HTTP side of ebb's JSON API: answers, errors, bodies and query parameters. */

/** A JSON answer with the request id. */
export function sendJson(res: ServerResponse, status: number, requestId: string, value: unknown, extra: Record<string, string> = {}): void {
  const body = `${JSON.stringify(value)}\n`;
  res.writeHead(status, {
    'content-type': 'application/json; charset=utf-8',
    'content-length': String(Buffer.byteLength(body)),
    'cache-control': 'no-store',
    'x-amzn-requestid': requestId,
    ...extra,
  });
  res.end(body);
}

/**
 * An error as `{ code, message, requestId }` with its registered status. Anything that is not an
 * EbbError is a bug: the client gets InternalFailure and `onInternal` the error, for the log.
 */
export function sendError(res: ServerResponse, requestId: string, err: unknown, onInternal: (err: unknown) => void, extra: Record<string, string> = {}): void {
  const wire = toWireError(err, 'elbv2', onInternal);
  if (res.headersSent) {
    res.destroy();
    return;
  }
  sendJson(res, wire.status, requestId, { code: wire.code, message: wire.message, requestId }, extra);
}

export class BodyTooLarge extends Error {}

/** Reads a request body of at most `max` bytes within `timeoutMs`; rejects with an EbbError otherwise. */
export function readBody(req: IncomingMessage, max: number, clock: Clock, timeoutMs: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    let done = false;
    const finish = (err: Error | null): void => {
      if (done) return;
      done = true;
      timer.cancel();
      if (err === null) resolve(Buffer.concat(chunks));
      else reject(err);
    };
    const timer = clock.setTimer(timeoutMs, () =>
      finish(ebbError('RequestTimeout', `The request body did not arrive within ${timeoutMs} ms: send the whole request at once`)),
    );
    req.on('data', (chunk: Buffer) => {
      if (done) return;
      size += chunk.length;
      if (size > max) {
        finish(ebbError('RequestEntityTooLarge', `Request body exceeds ${max} bytes`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => finish(null));
    req.on('error', (err) => finish(err));
    req.on('close', () => finish(new Error('the connection closed before the request body ended')));
  });
}

/** A JSON object body, or a ValidationError that says what was expected. */
export function parseJsonObject(body: Buffer, contentType: string | undefined): Record<string, unknown> {
  const type = (contentType ?? '').split(';')[0]?.trim().toLowerCase();
  if (type !== 'application/json') {
    throw ebbError('ValidationError', `Content-Type must be application/json; got '${contentType ?? ''}'`);
  }
  let value: unknown;
  try {
    value = JSON.parse(body.toString('utf8'));
  } catch (err) {
    throw ebbError('ValidationError', `The body is not valid JSON (${err instanceof Error ? err.message : String(err)})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw ebbError('ValidationError', 'The body must be a JSON object, for example {"targetGroup":"web","targets":["10.0.0.1:80"]}');
  }
  return value as Record<string, unknown>;
}

/** Query parameters, each allowed once; unknown names are refused so a typo is not silently ignored. */
export class Query {
  readonly #params: URLSearchParams;

  constructor(rawQuery: string, allowed: readonly string[]) {
    this.#params = new URLSearchParams(rawQuery);
    for (const name of new Set(this.#params.keys())) {
      if (!allowed.includes(name)) {
        throw ebbError(
          'ValidationError',
          allowed.length === 0
            ? `This endpoint takes no query parameters; got '${name}'`
            : `Unknown query parameter '${name}'; this endpoint takes ${allowed.map((a) => `'${a}'`).join(', ')}`,
        );
      }
      if (this.#params.getAll(name).length > 1) throw ebbError('ValidationError', `Query parameter '${name}' is given more than once`);
    }
  }

  str(name: string): string | undefined {
    const v = this.#params.get(name);
    return v === null || v === '' ? undefined : v;
  }

  required(name: string, example: string): string {
    const v = this.str(name);
    if (v === undefined) throw ebbError('MissingParameter', `The query parameter '${name}' is required (for example ${name}=${example})`);
    return v;
  }

  /** An integer in [min, max], or undefined when absent. */
  int(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^\d{1,10}$/.test(v) || Number(v) < min || Number(v) > max) {
      throw ebbError('ValidationError', `Query parameter '${name}' must be an integer from ${min} to ${max}; got '${v}'`);
    }
    return Number(v);
  }

  /** A number of seconds (decimals allowed) in [min, max], or undefined when absent. */
  seconds(name: string, min: number, max: number): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!/^\d{1,7}(\.\d{1,3})?$/.test(v) || Number(v) < min || Number(v) > max) {
      throw ebbError('ValidationError', `Query parameter '${name}' must be a number of seconds from ${min} to ${max}; got '${v}'`);
    }
    return Number(v);
  }

  /** An instant as RFC 3339 (`2026-01-02T03:04:05Z`) or epoch milliseconds, as wall ms; undefined when absent. */
  time(name: string): number | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    const ms = /^\d{1,15}$/.test(v) ? Number(v) : /^\d{4}-\d{2}-\d{2}T/.test(v) ? Date.parse(v) : NaN;
    if (!Number.isFinite(ms)) {
      throw ebbError('ValidationError', `Query parameter '${name}' must be a time as RFC 3339 (2026-01-02T03:04:05Z) or epoch milliseconds; got '${v}'`);
    }
    return ms;
  }

  oneOf<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.str(name);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) {
      throw ebbError('ValidationError', `Query parameter '${name}' must be one of ${values.join(', ')}; got '${v}'`);
    }
    return v as T;
  }
}

/** Wall ms as RFC 3339 with milliseconds, in UTC. */
export function iso(ms: number): string {
  return new Date(ms).toISOString();
}
