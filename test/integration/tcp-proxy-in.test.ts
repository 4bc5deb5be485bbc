/**
 * A TCP or TLS listener behind another load balancer that speaks the PROXY protocol to ebb
 * (`acceptProxyProtocol`): the header's client is the flow's client (in its messages and in the PROXY
 * v2 header ebb sends on to the target); the bytes behind the header are the flow's; a connection
 * without a valid header, or too slow to send it, is reset and never reaches a target.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import net from 'node:net';
import { test } from 'node:test';
import tls from 'node:tls';
import { encodeProxyV2 } from '../../src/dataplane/tcp/proxy-protocol.ts';
import { tlsPolicySettings } from '../../src/domain/tls-policies.ts';
import type { RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { Cleanup } from '../support/cleanup.ts';
import { sleep, waitFor, within } from '../support/timing.ts';
import { recordFlows, startTcpBackend, startTcpPlane, tcpConnect, tcpSnapshot, type TcpBackend } from './tcp-helpers.ts';

/** A backend that reads the PROXY v2 header ebb sends, records the client it names and what follows, and echoes. */
async function headerReader(c: Cleanup, seen: Array<{ client: string; rest: string }>): Promise<TcpBackend> {
  return startTcpBackend(c, 'P', (s) => {
    let buf = Buffer.alloc(0);
    let got = false;
    s.on('data', (b: Buffer) => {
      if (got) {
        s.write(b);
        return;
      }
      buf = Buffer.concat([buf, b]);
      if (buf.length < 28) return;
      got = true;
      const client = `${[...buf.subarray(16, 20)].join('.')}:${buf.readUInt16BE(24)}`;
      const rest = buf.subarray(28);
      seen.push({ client, rest: rest.toString('latin1') });
      if (rest.length > 0) s.write(rest);
    });
    s.on('end', () => s.end());
  });
}

function withProxyIn(snap: RoutingSnapshot, timeoutMs = 2000): RoutingSnapshot {
  return { ...snap, listeners: snap.listeners.map((l) => ({ ...l, settings: { ...l.settings, acceptProxyProtocol: true, clientHeaderTimeoutMs: timeoutMs } })) };
}

test('a version 1 header: its client is the flow client, and the bytes in the same write behind it are the flow bytes', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const seen: Array<{ client: string; rest: string }> = [];
  const P = await headerReader(c, seen);
  const { dp, port } = await startTcpPlane(c, withProxyIn(tcpSnapshot([P.port], { proxyProtocolV2: true })));
  const flows = recordFlows(c, dp.id);
  const client = await tcpConnect(c, port);
  client.socket.write(`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${port}\r\nhello`);
  assert.ok(await waitFor(() => client.text() === 'hello'));
  client.socket.write(' again');
  assert.ok(await waitFor(() => client.text() === 'hello again'));
  client.socket.end();
  await within(client.closed, 2000);
  assert.deepEqual(seen, [{ client: '203.0.113.7:40000', rest: 'hello' }]);
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.clientAddress, '203.0.113.7');
  assert.equal(flows.ended[0]?.clientPort, 40000);
  assert.equal(flows.ended[0]?.receivedBytes, 11, 'the header is not the flow bytes');
});

/**
 * A target whose connections can be made to wait: a child process listening with a backlog of 1.
 * `stall(ms)` has it block its event loop for `ms` and fills its accept queue, so a connect made
 * meanwhile waits for the kernel's SYN retransmission (about 1 s). It prints `got <JSON text>` for
 * each connection it reads to the end.
 */
async function stallableTarget(c: Cleanup): Promise<{ port: number; stall: (ms: number) => Promise<void>; lines: () => string[] }> {
  const script = `const net = require('node:net');
const server = net.createServer((s) => { const parts = []; s.on('data', (b) => parts.push(b)); s.on('error', () => {});
  s.on('end', () => { process.stdout.write('got ' + JSON.stringify(Buffer.concat(parts).toString('latin1')) + '\\n'); s.end(); }); });
server.listen({ port: 0, host: '127.0.0.1', backlog: 1 }, () => process.stdout.write(server.address().port + '\\n'));
process.stdin.on('data', (ms) => { process.stdout.write('stalled\\n'); Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, Number(ms)); });`;
  const child = spawn(process.execPath, ['-e', script], { stdio: ['pipe', 'pipe', 'inherit'] });
  c.add(() => child.kill());
  let out = '';
  child.stdout.setEncoding('utf8');
  child.stdout.on('data', (d: string) => (out += d));
  assert.ok(await waitFor(() => out.includes('\n')), 'the target listens');
  const port = Number(out.split('\n')[0]);
  const stall = async (ms: number): Promise<void> => {
    child.stdin.write(String(ms));
    assert.ok(await waitFor(() => out.includes('stalled\n')), 'the target stalls');
    for (let i = 0; i < 4; i++) {
      const filler = net.connect(port, '127.0.0.1');
      filler.on('error', () => {});
      c.add(() => filler.destroy());
    }
    await sleep(30);
  };
  return { port, stall, lines: () => out.split('\n').filter((l) => l.startsWith('got ')) };
}

test('a header alone, then bytes while the target is still connecting: the bytes wait and reach the target', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const target = await stallableTarget(c);
  const snap = withProxyIn(tcpSnapshot([target.port], { settings: { targetConnectTimeoutMs: 10_000 } }));
  const { dp, port } = await startTcpPlane(c, snap);
  const flows = recordFlows(c, dp.id);
  const client = await tcpConnect(c, port);
  await target.stall(600);
  client.socket.write(`PROXY TCP4 203.0.113.7 127.0.0.1 40000 ${port}\r\n`);
  await sleep(50);
  client.socket.write('first bytes');
  await sleep(50);
  client.socket.end();
  assert.ok(await waitFor(() => flows.ended.length === 1, 6000), 'the flow ended');
  const connectMs = flows.ended[0]?.connectMs ?? -1;
  assert.ok(connectMs > 150, `the target was still connecting when the bytes came (connected after ${connectMs} ms)`);
  assert.ok(await waitFor(() => target.lines().some((l) => l !== 'got ""'), 3000), `the flow reached the target: ${JSON.stringify(target.lines())}`);
  assert.ok(target.lines().includes('got "first bytes"'), `the target got ${JSON.stringify(target.lines())}`);
});

test('a version 2 header in pieces; LOCAL uses the connection address', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const seen: Array<{ client: string; rest: string }> = [];
  const P = await headerReader(c, seen);
  const { port } = await startTcpPlane(c, withProxyIn(tcpSnapshot([P.port], { proxyProtocolV2: true })));
  const header = encodeProxyV2({ sourceAddress: '198.51.100.20', sourcePort: 5555, destinationAddress: '192.0.2.1', destinationPort: 443 });
  const one = await tcpConnect(c, port);
  for (let i = 0; i < header.length; i += 5) {
    one.socket.write(header.subarray(i, i + 5));
    await sleep(5);
  }
  one.socket.write('x');
  assert.ok(await waitFor(() => one.text() === 'x'));
  const local = encodeProxyV2({ sourceAddress: '', sourcePort: 0, destinationAddress: '', destinationPort: 0 });
  const two = await tcpConnect(c, port);
  two.socket.write(Buffer.concat([local, Buffer.from('y')]));
  assert.ok(await waitFor(() => two.text() === 'y'));
  // ebb's PROXY v2 header and the client's 'x' may reach the backend in one read or two.
  assert.equal(seen.length, 2);
  assert.equal(seen[0]?.client, '198.51.100.20:5555');
  assert.ok(seen[0]?.rest === '' || seen[0]?.rest === 'x', `after the header: '${seen[0]?.rest ?? ''}'`);
  assert.deepEqual(seen[1], { client: `127.0.0.1:${two.localPort}`, rest: 'y' });
});

test('no header, a bad one, or none in time: the connection is reset, no target sees it, and one log line says so', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const logs: object[] = [];
  const { dp, port } = await startTcpPlane(c, withProxyIn(tcpSnapshot([A.port]), 300), {}, logs);
  const flows = recordFlows(c, dp.id);
  const plain = await tcpConnect(c, port);
  plain.socket.write('GET / HTTP/1.1\r\n\r\n');
  await within(plain.closed, 2000);
  assert.ok(plain.saw('error:ECONNRESET'), JSON.stringify(plain.events));
  const bad = await tcpConnect(c, port);
  bad.socket.write('PROXY TCP4 1.2.3.4 5.6.7.8 99999 1\r\n');
  await within(bad.closed, 2000);
  const started = Date.now();
  const silent = await tcpConnect(c, port);
  await within(silent.closed, 2000);
  const waited = Date.now() - started;
  assert.ok(waited >= 250 && waited < 1000, `reset at the header timeout (${waited} ms)`);
  assert.equal(A.sockets.length, 0, 'no connection reached the target');
  assert.equal(flows.opened.length + flows.ended.length, 0, 'none became a flow');
  const lines = logs.filter((l) => (l as { msg?: string }).msg === 'connection refused: no valid PROXY protocol header');
  assert.equal(lines.length, 1, 'one line for a burst of refusals');
  assert.match(String((lines[0] as { reason?: string }).reason), /does not start with a PROXY protocol header/);
});

test('a TLS listener: the header comes before the handshake (in the same read), and names the TLS flow client', async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startTcpBackend(c, 'A');
  const leaf = leafCert(['proxied.test']);
  const policy = tlsPolicySettings('ELBSecurityPolicy-TLS13-1-2-2021-06');
  assert.ok(policy !== undefined);
  const snap = tcpSnapshot([A.port]);
  const tlsSnap: RoutingSnapshot = {
    ...snap,
    listeners: snap.listeners.map((l) => ({
      ...l,
      protocol: 'TLS',
      tls: { certificates: [{ arn: 'arn:test:certificate/proxied', certificatePem: leaf.certPem, privateKeyPem: leaf.keyPem, names: ['proxied.test'] }], policy },
    })),
  };
  const { dp, port } = await startTcpPlane(c, withProxyIn(tlsSnap));
  const flows = recordFlows(c, dp.id);
  // A load balancer in front of ebb: it holds the client's first bytes (the ClientHello) and sends them
  // to ebb behind its PROXY header in one write, so ebb reads both in one chunk; then it pipes.
  const front = net.createServer((down) => {
    down.once('data', (hello: Buffer) => {
      const up = net.connect(port, '127.0.0.1', () => {
        up.write(Buffer.concat([encodeProxyV2({ sourceAddress: '2001:db8::7', sourcePort: 6000, destinationAddress: '2001:db8::1', destinationPort: 443 }), hello]));
        down.pipe(up);
        up.pipe(down);
      });
      up.on('error', () => down.destroy());
      down.on('error', () => up.destroy());
      c.add(() => up.destroy());
    });
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  c.add(() => new Promise<void>((resolve) => front.close(() => resolve())));
  const frontPort = (front.address() as net.AddressInfo).port;
  const secure = tls.connect({ port: frontPort, host: '127.0.0.1', servername: 'proxied.test', ca: testCa().certPem });
  c.add(() => secure.destroy());
  let text = '';
  secure.setEncoding('latin1');
  secure.on('data', (d: string) => (text += d));
  secure.on('error', () => {});
  await new Promise<void>((resolve, reject) => {
    secure.once('secureConnect', resolve);
    secure.once('error', reject);
  });
  secure.write('over TLS');
  assert.ok(await waitFor(() => text === 'over TLS'));
  secure.end();
  assert.ok(await waitFor(() => flows.ended.length === 1));
  assert.equal(flows.ended[0]?.protocol, 'tls');
  assert.equal(flows.ended[0]?.clientAddress, '2001:db8::7');
  assert.equal(flows.ended[0]?.clientPort, 6000);
  assert.equal(flows.ended[0]?.tls?.serverName, 'proxied.test');
});
