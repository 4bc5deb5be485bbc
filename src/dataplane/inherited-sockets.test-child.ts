/**
 * Test only (inherited-sockets.test.ts): the process a hot restart starts, reduced to its
 * InheritedSockets. It takes listening sockets' handles over IPC and does with them what the parent
 * asks, answering each request by its `id`. A server it listens with answers every connection with
 * `served by <pid>` and closes it. It exits when the parent goes.
 */
import net from 'node:net';
import { InheritedSockets, listenOn, type SocketHandle } from './listen-mode.ts';

type Request =
  | { readonly id: number; readonly op: 'add'; readonly address: string; readonly port: number }
  | { readonly id: number; readonly op: 'has' | 'take' | 'listen'; readonly address: string; readonly port: number }
  | { readonly id: number; readonly op: 'close-unclaimed' };

const sockets = new InheritedSockets();
const servers: net.Server[] = [];

function answer(id: number, result: unknown): void {
  process.send?.({ id, result });
}

function listen(id: number, address: string, port: number): void {
  const server = net.createServer((socket) => socket.end(`served by ${process.pid}`));
  servers.push(server);
  server.once('error', (error) => answer(id, { error: error.message }));
  server.once('listening', () => {
    const bound = server.address();
    answer(id, { port: typeof bound === 'object' && bound !== null ? bound.port : null });
  });
  listenOn(server, { mode: 'exclusive', inherited: sockets }, address, port);
}

process.on('message', (raw: unknown, handle: unknown) => {
  const request = raw as Request;
  switch (request.op) {
    case 'add':
      sockets.add(request.address, request.port, handle as SocketHandle);
      answer(request.id, true);
      return;
    case 'has':
      answer(request.id, sockets.has(request.address, request.port));
      return;
    case 'take': {
      const first = sockets.take(request.address, request.port);
      const second = sockets.take(request.address, request.port);
      // Taken and not listened on: closed here, as a listener that fails to open would leave it.
      first?.close();
      answer(request.id, { first: first !== null, second: second !== null });
      return;
    }
    case 'listen':
      listen(request.id, request.address, request.port);
      return;
    case 'close-unclaimed':
      answer(request.id, sockets.closeUnclaimed());
      return;
  }
});

process.on('disconnect', () => {
  for (const server of servers) server.close();
  process.exit(0);
});
process.send?.({ id: 0, result: 'ready' });
