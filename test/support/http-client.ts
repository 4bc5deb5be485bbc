/** HTTP requests from a test to a port on 127.0.0.1 (an ebb listener, its admin endpoint, a backend). */
import http from 'node:http';

export interface Reply {
  readonly status: number;
  readonly body: string;
  /** The backend that answered (its X-Backend header), or '' when ebb answered itself. */
  readonly backend: string;
  readonly headers: http.IncomingHttpHeaders;
  /** Local port of the client's connection (tells whether a keep-alive connection was reused). */
  readonly localPort: number;
  readonly sentAt: number;
  readonly doneAt: number;
}

export interface RequestOptions extends http.RequestOptions {
  /** Sent as the request body. */
  readonly body?: string | Buffer;
  /** Fails the request once its connection has been idle this long (default: no limit). */
  readonly timeoutMs?: number;
}

/**
 * One request (GET / unless `opts` say otherwise), its body read whole as UTF-8. It goes on a new
 * connection unless `opts.agent` is given (a keep-alive agent keeps the client connection).
 */
export function request(port: number, opts: RequestOptions = {}): Promise<Reply> {
  const { body: payload, timeoutMs, ...options } = opts;
  return new Promise((resolve, reject) => {
    const sentAt = Date.now();
    const req = http.request({ host: '127.0.0.1', port, path: '/', agent: false, ...options }, (res) => {
      let body = '';
      const localPort = res.socket.localPort ?? 0;
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () =>
        resolve({
          status: res.statusCode ?? 0,
          body,
          backend: typeof res.headers['x-backend'] === 'string' ? res.headers['x-backend'] : '',
          headers: res.headers,
          localPort,
          sentAt,
          doneAt: Date.now(),
        }),
      );
      res.on('error', reject);
    });
    if (timeoutMs !== undefined) req.setTimeout(timeoutMs, () => req.destroy(new Error(`no answer in ${timeoutMs} ms`)));
    req.on('error', reject);
    req.end(payload);
  });
}

/** One GET. `agent` keeps the client connection alive between calls; without it each GET has its own. */
export function get(port: number, path = '/', agent?: http.Agent, timeoutMs = 15_000): Promise<Reply> {
  return request(port, { path, timeoutMs, ...(agent === undefined ? {} : { agent }) });
}
