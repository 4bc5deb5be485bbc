import { createServer } from 'node:net';

/** Whether `address:port` can be listened on now: null if so, else the errno code (EADDRINUSE, EACCES...). */
export function checkPort(address: string, port: number): Promise<string | null> {
  return new Promise((resolve) => {
    const server = createServer();
    server.once('error', (error: NodeJS.ErrnoException) => resolve(error.code ?? error.message));
    server.listen({ port, host: address, exclusive: true }, () => server.close(() => resolve(null)));
  });
}
