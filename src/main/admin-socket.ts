/** The admin API's listening socket: opened (or taken over at a hot restart) and closed. */
import type { Server } from 'node:http';
import type { EbbApi } from '../api/ebb/ebb-api.ts';
import type { SocketHandle } from '../dataplane/listen-mode.ts';
import { EbbError } from '../shared/errors.ts';
import type { AdminEndpoint } from './options.ts';

/**
 * The admin API stops accepting; the requests it is answering finish, each connection closing as it goes
 * idle (looked at every 50 ms, so a keep-alive client is not cut while it sends), and after 5 s what is
 * left is closed.
 */
export async function closeAdmin(server: Server, api: EbbApi): Promise<void> {
  api.close();
  await new Promise<void>((resolveClosed) => {
    const idle = setInterval(() => server.closeIdleConnections(), 50);
    const timer = setTimeout(() => server.closeAllConnections(), 5000);
    server.close(() => {
      clearInterval(idle);
      clearTimeout(timer);
      resolveClosed();
    });
  });
}

/** Listens on `endpoint`, or on the admin socket a running ebb handed over (hot restart). */
export function listenAdmin(server: Server, endpoint: AdminEndpoint, inherited: SocketHandle | null): Promise<void> {
  return new Promise((resolvePromise, reject) => {
    const onError = (error: NodeJS.ErrnoException): void => {
      reject(
        new EbbError(
          'ListenAddressInUse',
          `The admin API could not listen on ${endpoint.host}:${endpoint.port} (${error.code ?? error.message}); choose another address with --admin`,
        ),
      );
    };
    server.once('error', onError);
    const listening = (): void => {
      server.off('error', onError);
      resolvePromise();
    };
    if (inherited !== null) server.listen(inherited, listening);
    else server.listen(endpoint.port, endpoint.host, listening);
  });
}
