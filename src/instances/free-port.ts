/** Choosing the TCP port an instance is given in PORT. */
import { once } from 'node:events';
import { createServer, type AddressInfo } from 'node:net';
import { EbbError } from '../shared/errors.ts';

/** How many ports the kernel may offer that another instance already holds before giving up. */
const ATTEMPTS = 20;

/**
 * A port that was free on `host` a moment ago (the kernel's choice for port 0) and is not in `held`,
 * the ports this runner's instances were given. The instance binds it itself later, so another
 * program could take it in between; the kernel hands out ephemeral ports in turn, which makes that
 * rare.
 */
export async function chooseFreePort(held: ReadonlySet<number>, host = '127.0.0.1'): Promise<number> {
  for (let attempt = 0; attempt < ATTEMPTS; attempt++) {
    const server = createServer();
    server.listen(0, host);
    try {
      await once(server, 'listening');
    } catch (error) {
      throw new EbbError('InstanceLaunchFailed', `Could not find a free port on ${host} for the instance (${(error as Error).message}); check that ${host} is configured and ports are available.`, { cause: error });
    }
    const { port } = server.address() as AddressInfo;
    server.close();
    await once(server, 'close');
    if (!held.has(port)) return port;
  }
  throw new EbbError('InstanceLaunchFailed', `Could not find a free port on ${host} that no other instance holds after ${ATTEMPTS} tries; stop some instances or widen the ephemeral port range (net.ipv4.ip_local_port_range).`);
}
