/**
 * Health-check backends for the control-plane benchmark, run as a child process: `count` plain TCP
 * servers on 127.0.0.1 (port 0 each) that answer any request with a fixed `200 OK` and close, so a
 * check costs them as little as it can. Prints `{"ports":[...]}` once all listen, then serves until
 * its parent ends it (SIGTERM by pid) or its stdin closes.
 */
import net from 'node:net';

const RESPONSE = Buffer.from('HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 3\r\nConnection: close\r\n\r\nok\n');
const HEAD_END = Buffer.from('\r\n\r\n');

function serve(socket: net.Socket): void {
  let seen: Buffer | null = null;
  socket.on('data', (chunk: Buffer) => {
    seen = seen === null ? chunk : Buffer.concat([seen, chunk]);
    if (seen.indexOf(HEAD_END) >= 0) socket.end(RESPONSE);
  });
  // The checker may close first (a timeout); nothing to report.
  socket.on('error', () => undefined);
}

async function listen(): Promise<number> {
  const server = net.createServer(serve);
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    // A deep backlog: checks of many targets may fall due in the same moment.
    server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, resolve);
  });
  return (server.address() as net.AddressInfo).port;
}

const count = Number(process.argv[2] ?? 100);
const ports: number[] = [];
for (let i = 0; i < count; i++) ports.push(await listen());
process.stdout.write(`${JSON.stringify({ ports })}\n`);
process.stdin.resume();
process.stdin.on('end', () => process.exit(0));
