import assert from 'node:assert/strict';
import { writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { startEbb, type Ebb } from '../../src/main/ebb.ts';
import { Cleanup, freePort, tempDir } from './harness.ts';

/**
 * `ebb serve` puts a listener created without an address where the node says its load balancer's
 * scheme listens: internet-facing on every interface and internal on loopback by default, or the
 * file's `listenAddresses`, or the command line's `--listen-internet-facing` / `--listen-internal`.
 */

const cleanup = new Cleanup();
after(() => cleanup.run());

async function serve(options: { listenInternal?: string; file?: string }): Promise<Ebb> {
  const dir = await tempDir(cleanup);
  let configPath: string | undefined;
  if (options.file !== undefined) {
    configPath = join(dir, 'ebb.yaml');
    await writeFile(configPath, options.file);
  }
  const ebb = await startEbb({
    ...(configPath !== undefined && { configPath }),
    ...(options.listenInternal !== undefined && { listenInternal: options.listenInternal }),
    stateDir: join(dir, 'state'),
    adminAddress: '127.0.0.1:0',
    authentication: false,
    env: {},
    log: () => undefined,
  });
  cleanup.add(() => ebb.shutdown());
  return ebb;
}

/** Creates a load balancer of `scheme` with one listener on a free port, through the control plane as the API does. */
async function listenerOf(ebb: Ebb, name: string, scheme: 'internet-facing' | 'internal'): Promise<{ address: string; port: number }> {
  const port = await freePort();
  const lb = await ebb.control.createLoadBalancer({ name, scheme });
  const tg = await ebb.control.createTargetGroup({ name, protocol: 'HTTP', port: 80, targetType: 'ip' });
  const l = await ebb.control.createListener({ loadBalancerArn: lb.arn, protocol: 'HTTP', port, defaultActions: [{ type: 'forward', targetGroupArn: tg.arn }] });
  return { address: l.address, port };
}

function connects(host: string, port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => resolve(false));
  });
}

test('by default an internal load balancer listens on loopback only, an internet-facing one everywhere', async () => {
  const ebb = await serve({});
  assert.deepEqual((await listenerOf(ebb, 'outside', 'internet-facing')).address, '0.0.0.0');
  assert.deepEqual((await listenerOf(ebb, 'inside', 'internal')).address, '127.0.0.1');
});

test('--listen-internal puts internal listeners where it says, and only there', async () => {
  const ebb = await serve({ listenInternal: '127.0.0.2' });
  const l = await listenerOf(ebb, 'inside', 'internal');
  assert.equal(l.address, '127.0.0.2');
  assert.deepEqual(await ebb.control.openErrors(), []);
  assert.equal(await connects('127.0.0.2', l.port), true);
  assert.equal(await connects('127.0.0.1', l.port), false, 'not on another address');
});

test("the file's listenAddresses is used, and the command line wins over it", async () => {
  const file = 'listenAddresses:\n  internet-facing: 127.0.0.3\n  internal: 127.0.0.4\n';
  const fromFile = await serve({ file });
  assert.equal((await listenerOf(fromFile, 'outside', 'internet-facing')).address, '127.0.0.3');
  assert.equal((await listenerOf(fromFile, 'inside', 'internal')).address, '127.0.0.4');
  const overridden = await serve({ file, listenInternal: '127.0.0.5' });
  assert.equal((await listenerOf(overridden, 'inside', 'internal')).address, '127.0.0.5');
  await assert.rejects(serve({ file: 'listenAddresses:\n  internal: localhost\n' }), /listenAddresses\.internal: must be an IP address; got "localhost"/);
});
