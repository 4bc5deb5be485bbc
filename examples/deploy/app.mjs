/**
 * The app the zero-downtime deploy example rolls out: a Node HTTP server with no dependencies.
 *
 *   GET /health  → 200 "ok" (what the load balancer's health check asks)
 *   GET /<any>   → 200 "version N" after APP_DELAY_MS (default 20), so requests are in flight when
 *                  an instance is told to stop
 *
 * Environment: PORT (ebb gives each instance one), else APP_PORT (a fixed port, for PM2's cluster
 * mode, where the workers share one); APP_VERSION (default "1", or the first argument);
 * APP_DELAY_MS. It listens on 127.0.0.1.
 *
 * Stopping gracefully, however it is asked: SIGTERM (what ebb sends once the instance's target has
 * drained), SIGINT (what `pm2 reload` and `pm2 stop` send) or the message "shutdown" (PM2's
 * `shutdown_with_message`). It stops accepting, answers what is in flight with `Connection: close`,
 * closes idle keep-alive connections (what Node's server.close() does), and exits 0 once no
 * connection is left (exit 1 after APP_STOP_TIMEOUT_MS, default 10000, if a client still holds one).
 * With APP_DRAIN_MS > 0 it keeps idle keep-alive connections that long instead, so that each is
 * closed by an answer's `Connection: close` rather than under a client that is sending on it: the
 * draining ebb does in front of its instances, done by the app itself (useful without a load balancer).
 *
 * Under PM2 with `wait_ready`, it sends "ready" once it listens, so `pm2 reload` stops an old worker
 * only after its replacement accepts connections (PM2's graceful start).
 */
import { createServer } from 'node:http';

const port = Number(process.env.PORT ?? process.env.APP_PORT ?? NaN);
const version = process.env.APP_VERSION ?? process.argv[2] ?? '1';
const delayMs = Number(process.env.APP_DELAY_MS ?? 20);
const stopTimeoutMs = Number(process.env.APP_STOP_TIMEOUT_MS ?? 10_000);
const drainMs = Number(process.env.APP_DRAIN_MS ?? 0);
const tag = `app v${version} pid ${process.pid}`;

if (!Number.isInteger(port) || port < 1 || port > 65535) {
  console.error(`${tag}: no port: set PORT (ebb sets it for each instance) or APP_PORT (for PM2) to 1-65535`);
  process.exit(2);
}

let stopping = false;

const server = createServer((req, res) => {
  req.resume();
  // Once stopping, every answer closes its connection, so no client sends another request on a
  // connection this process is about to leave.
  const headers = { 'content-type': 'text/plain', ...(stopping ? { connection: 'close' } : {}) };
  if (req.url === '/health') {
    res.writeHead(200, headers);
    res.end('ok\n');
    return;
  }
  const timer = setTimeout(() => {
    if (stopping) headers.connection = 'close';
    res.writeHead(200, headers);
    res.end(`version ${version}\n`);
  }, delayMs);
  res.on('close', () => clearTimeout(timer));
});

// Longer than a load balancer's idle timeout (60 s on ebb and ALB), so the balancer, not the app,
// closes idle connections: the app closing one just as the balancer reuses it would fail a request.
server.keepAliveTimeout = 65_000;
server.headersTimeout = 66_000;

server.listen(port, '127.0.0.1', () => {
  console.log(`${tag}: listening on 127.0.0.1:${port}`);
  if (typeof process.send === 'function') process.send('ready');
});

function stop(why) {
  if (stopping) return;
  stopping = true;
  console.log(`${tag}: ${why}: stop accepting, finish what is in flight`);
  if (drainMs > 0) {
    // server.close() closes idle keep-alive connections at once, and a client that sends on one
    // at that instant gets a reset. Keep them up to APP_DRAIN_MS instead: each one's next answer
    // carries `Connection: close`, so the client closes it; those still idle then are closed.
    const closeIdle = server.closeIdleConnections.bind(server);
    server.closeIdleConnections = () => {};
    setTimeout(closeIdle, drainMs).unref();
  }
  // Stops accepting and closes idle keep-alive connections; a connection busy now is closed by its
  // answer's `Connection: close`. The callback runs once no connection is left.
  server.close(() => {
    // Written before exiting: process.exit does not wait for a piped stdout to flush.
    process.stdout.write(`${tag}: every connection closed, exit 0\n`, () => process.exit(0));
  });
  setTimeout(() => {
    console.error(`${tag}: connections still open after ${stopTimeoutMs} ms, exit 1`);
    server.closeAllConnections();
    process.exit(1);
  }, stopTimeoutMs).unref();
}

process.on('SIGTERM', () => stop('SIGTERM'));
process.on('SIGINT', () => stop('SIGINT'));
process.on('message', (message) => {
  if (message === 'shutdown') stop('shutdown message');
});
