/**
 * A small demo backend: `node --import tsx examples/backend.ts PORT NAME`.
 *   GET /            → "hello from NAME"
 *   GET /health      → 200, or 503 after POST /fail (POST /recover undoes it)
 *   GET /slow?ms=N   → answers after N milliseconds (at most 600000)
 *   WebSocket upgrade on any path: echoes messages back, prefixed with NAME.
 * Prints "listening PORT" once it accepts connections. Stops on SIGTERM.
 */
import { createServer } from 'node:http';
import { WebSocketServer } from 'ws';

const port = Number(process.argv[2] ?? 3001);
const name = process.argv[3] ?? `backend-${port}`;
let healthy = true;

const server = createServer((req, res) => {
  const url = new URL(req.url ?? '/', 'http://backend');
  const reply = (status: number, body: string): void => {
    res.writeHead(status, { 'content-type': 'text/plain', 'x-backend': name });
    res.end(body);
  };
  if (url.pathname === '/health') return reply(healthy ? 200 : 503, healthy ? 'ok\n' : 'failing\n');
  if (url.pathname === '/fail' && req.method === 'POST') {
    healthy = false;
    return reply(200, 'now failing health checks\n');
  }
  if (url.pathname === '/recover' && req.method === 'POST') {
    healthy = true;
    return reply(200, 'healthy again\n');
  }
  if (url.pathname === '/slow') {
    const ms = Math.min(Number(url.searchParams.get('ms') ?? 1000), 600_000);
    const timer = setTimeout(() => reply(200, `slow reply from ${name} after ${ms} ms\n`), ms);
    res.on('close', () => clearTimeout(timer));
    return undefined;
  }
  req.resume();
  return reply(200, `hello from ${name}\n`);
});

const wss = new WebSocketServer({ server });
wss.on('connection', (ws) => {
  ws.on('message', (data) => ws.send(`${name}: ${String(data)}`));
});

server.listen(port, '127.0.0.1', () => {
  process.stdout.write(`listening ${port}\n`);
});
process.on('SIGTERM', () => {
  server.close();
  for (const client of wss.clients) client.terminate();
  setTimeout(() => process.exit(0), 200).unref();
});
