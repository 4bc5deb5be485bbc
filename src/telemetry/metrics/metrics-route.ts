import type { IncomingMessage, ServerResponse } from 'node:http';
import { describeError, ebbError } from '../../shared/errors.ts';
import type { EbbMetrics } from './ebb-metrics.ts';
import { checkMetricsAccess, type MetricsAccess } from './metrics-access.ts';

/**
 * `GET /metrics` for the admin endpoint's `routes`: the registry in the Prometheus text format, to
 * those the access lets in. A refusal is plain text (`Code: message`), which Prometheus shows on its
 * targets page beside the status.
 */
export function metricsRoute(
  metrics: EbbMetrics,
  access: MetricsAccess,
  log: (entry: Record<string, unknown>) => void,
): (req: IncomingMessage, res: ServerResponse) => void {
  return (req, res) => {
    req.resume();
    const refused = checkMetricsAccess(access, req.headers.authorization);
    if (refused !== null) {
      sendText(res, refused.error.status, `${describeError(refused.error)}\n`, refused.challenge === null ? {} : { 'www-authenticate': refused.challenge });
      return;
    }
    metrics.render().then(
      ({ contentType, body }) => {
        res.writeHead(200, { 'content-type': contentType, 'content-length': String(Buffer.byteLength(body)), 'cache-control': 'no-store' });
        res.end(body);
      },
      (err: unknown) => {
        log({ event: 'metrics:render-failed', level: 'error', error: err instanceof Error ? (err.stack ?? err.message) : String(err) });
        const e = ebbError('InternalFailure', 'ebb could not render its metrics; its log has the details');
        sendText(res, e.status, `${describeError(e)}\n`, {});
      },
    );
  };
}

function sendText(res: ServerResponse, status: number, text: string, extra: Record<string, string>): void {
  res.writeHead(status, { 'content-type': 'text/plain; charset=utf-8', 'content-length': String(Buffer.byteLength(text)), 'cache-control': 'no-store', ...extra });
  res.end(text);
}
