/**
 * A Network Load Balancer's flows in ebb's telemetry, end to end: `ebb serve` as a process on a file
 * that declares a network load balancer with a TCP listener, a second TCP listener to a backend that
 * resets, and a TLS listener (a certificate of the test CA), with the node's access log in a file and
 * the load balancer's S3-layout logging on. Real TCP and TLS clients.
 *
 * Then `GET /metrics` (open: the admin API runs with --no-auth) counts the flows (new, one still
 * active), their bytes, the target's reset and the failed handshake of a client speaking plain HTTP to
 * the TLS port; the node's log has one `tcp`/`tls` line per ended flow that Athena's ALB expression
 * reads, the TLS one with its cipher, protocol, server name and certificate; the load balancer's
 * S3-layout file has NLB's own lines.
 */
import assert from 'node:assert/strict';
import { copyFile, mkdir, readdir, readFile, writeFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import tls from 'node:tls';
import { after, before, test } from 'node:test';
import { athenaParse } from '../fixtures/athena-alb-regex.ts';
import { leafCert, testCa } from '../support/certs.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { waitUntil } from '../support/timing.ts';
import { scrape, type Scrape } from './metrics-scrape.ts';
import { startTcpBackend, tcpConnect, type TcpBackend } from './tcp-helpers.ts';

const c = new Cleanup();
const NAME = 'db.example.test';
let dir = '';
let adminPort = 0;
let tcpPort = 0;
let resetPort = 0;
let tlsPort = 0;
let echo: TcpBackend;

before(async () => {
  echo = await startTcpBackend(c, 'echo');
  // Resets every connection as soon as it reads a byte.
  const resetter = await startTcpBackend(c, 'reset', (s) => s.once('data', () => s.resetAndDestroy()));
  [tcpPort, resetPort, tlsPort] = [await freePort(), await freePort(), await freePort()];
  dir = await tempDir(c);
  const cert = leafCert([NAME]);
  await mkdir(join(dir, 'tls'));
  await copyFile(cert.certFile, join(dir, 'tls', 'db.crt'));
  await copyFile(cert.keyFile, join(dir, 'tls', 'db.key'));
  const listener = (protocol: string, port: number, group: string, extra: string[] = []): string[] => [
    `      - protocol: ${protocol}`,
    `        port: ${port}`,
    '        address: 127.0.0.1',
    ...extra,
    `        defaultActions: [{ type: forward, targetGroup: ${group} }]`,
  ];
  const group = (name: string, port: number): string[] => [`  - name: ${name}`, '    protocol: TCP', '    port: 80', '    targets:', `      - { id: 127.0.0.1, port: ${port} }`];
  const config = [
    'accessLog:',
    '  output: file',
    '  path: logs/access.log',
    'loadBalancers:',
    '  - name: flows',
    '    type: network',
    '    attributes:',
    '      access_logs.s3.enabled: true',
    `      access_logs.s3.bucket: ${join(dir, 's3')}`,
    '    listeners:',
    ...listener('TCP', tcpPort, 'echo'),
    ...listener('TCP', resetPort, 'reset'),
    ...listener('TLS', tlsPort, 'echo', ['        certificates:', '          - certificateFile: tls/db.crt', '            privateKeyFile: tls/db.key']),
    'targetGroups:',
    ...group('echo', echo.port),
    ...group('reset', resetter.port),
  ];
  await writeFile(join(dir, 'ebb.yaml'), `${config.join('\n')}\n`);
  const ebb = spawnEbb(c, ['--config', join(dir, 'ebb.yaml'), '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  const started = await waitForStart(ebb);
  adminPort = Number(String(started['admin']).split(':').at(-1));
});

after(async () => {
  await c.run();
});

/** Sends `text` on a socket and waits for its echo. */
async function echoed(socket: net.Socket, text: string): Promise<void> {
  let got = '';
  const done = new Promise<void>((resolve) => {
    const onData = (b: Buffer): void => {
      got += b.toString('latin1');
      if (got.length >= text.length) {
        socket.off('data', onData);
        resolve();
      }
    };
    socket.on('data', onData);
  });
  socket.write(text);
  await done;
  assert.equal(got, text);
}

test('flows, resets and a failed handshake in /metrics; a line per flow in the node log (ALB layout) and in the S3 layout (NLB format)', { timeout: 30_000 }, async () => {
  // A TCP flow that ends as both sides close.
  const closedFlow = await tcpConnect(c, tcpPort);
  await echoed(closedFlow.socket, 'hello over tcp');
  closedFlow.socket.end();
  await closedFlow.closed;

  // A TCP flow the target resets.
  const reset = await tcpConnect(c, resetPort);
  reset.socket.write('reset me');
  await reset.closed;

  // A TLS flow, with SNI.
  const secure = tls.connect({ host: '127.0.0.1', port: tlsPort, servername: NAME, ca: testCa().certPem });
  c.add(() => secure.destroy());
  await new Promise<void>((resolve, reject) => secure.once('secureConnect', resolve).once('error', reject));
  const cipher = secure.getCipher().name;
  const protocol = secure.getProtocol();
  await echoed(secure, 'hello over tls');
  const secureClosed = new Promise((r) => secure.once('close', r));
  secure.end();
  await secureClosed;

  // Plain HTTP on the TLS port: the handshake fails, no flow.
  const plain = net.connect(tlsPort, '127.0.0.1');
  c.add(() => plain.destroy());
  plain.on('error', () => {});
  plain.write('GET / HTTP/1.1\r\nHost: x\r\n\r\n');
  await new Promise((r) => plain.once('close', r));

  // A flow still open while Prometheus scrapes.
  const open = await tcpConnect(c, tcpPort);
  await echoed(open.socket, 'still here');

  let s: Scrape | null = null;
  const lbLabel = async (): Promise<string | undefined> => (await scrape(adminPort)).samples('ebb_new_flow_count')[0]?.labels['load_balancer'];
  await waitUntil(async () => (await lbLabel()) !== undefined, 'a flow counted', 5000, 50);
  const lb = { load_balancer: (await lbLabel()) ?? '' };
  assert.match(lb.load_balancer, /^net\/flows\/[0-9a-f]{16}$/);
  await waitUntil(
    async () => {
      s = await scrape(adminPort);
      return s.value('ebb_new_flow_count', lb) === 4 && s.value('ebb_active_flow_count', lb) === 1 && s.value('ebb_client_tls_negotiation_error_count', lb) === 1;
    },
    'the flows, the open one and the failed handshake counted',
    5000,
    50,
  );
  const m = s as unknown as Scrape;
  assert.equal(m.value('ebb_tcp_target_reset_count', lb), 1);
  assert.equal(m.value('ebb_tcp_client_reset_count', lb) ?? 0, 0);
  assert.ok((m.value('ebb_processed_bytes', lb) ?? 0) >= 2 * 'hello over tcp'.length + 'reset me'.length + 2 * 'hello over tls'.length, 'the ended flows\' bytes');
  // An NLB's connections are flows, not ALB's connections.
  assert.equal(m.value('ebb_new_connection_count', lb), undefined);

  // The node's log: one line per ended flow (the open one has none yet), each read by Athena's ALB expression.
  const nodeLog = join(dir, 'logs', 'access.log');
  let lines: string[] = [];
  await waitUntil(
    async () => {
      lines = (await readFile(nodeLog, 'utf8').catch(() => '')).split('\n').filter((l) => l !== '');
      return lines.length >= 3;
    },
    'three flow lines in the node log',
    5000,
    50,
  );
  const rows = lines.map((line) => {
    const row = athenaParse(line);
    assert.ok(row !== null, `Athena's ALB expression does not read: ${line}`);
    return row;
  });
  assert.deepEqual(rows.map((r) => r.type).sort(), ['tcp', 'tcp', 'tls']);
  const tcpClosed = rows.find((r) => r.type === 'tcp' && r.lambda_error_reason === '-');
  assert.deepEqual([tcpClosed?.elb, tcpClosed?.target_port, tcpClosed?.received_bytes, tcpClosed?.sent_bytes], [lb.load_balancer, String(echo.port), '14', '14']);
  assert.ok(rows.some((r) => r.type === 'tcp' && r.lambda_error_reason === 'TargetConnectionReset'));
  const tlsRow = rows.find((r) => r.type === 'tls');
  assert.deepEqual([tlsRow?.ssl_cipher, tlsRow?.ssl_protocol, tlsRow?.domain_name], [cipher, protocol, NAME]);
  assert.match(tlsRow?.chosen_cert_arn ?? '', /^arn:aws:acm:/);

  // The load balancer's S3 layout: NLB's own format, one line per flow.
  const s3Lines = async (): Promise<string[]> => {
    const found: string[] = [];
    const walk = async (d: string): Promise<void> => {
      for (const e of await readdir(d, { withFileTypes: true }).catch(() => [])) {
        if (e.isDirectory()) await walk(join(d, e.name));
        else if (e.name.endsWith('.log')) found.push(...(await readFile(join(d, e.name), 'utf8')).split('\n').filter((l) => l !== ''));
      }
    };
    await walk(join(dir, 's3'));
    return found;
  };
  let nlb: string[] = [];
  await waitUntil(async () => (nlb = await s3Lines()).length >= 3, 'three NLB lines in the S3 layout', 5000, 50);
  const tlsLine = nlb.find((l) => l.startsWith('tls 2.0 '));
  assert.ok(tlsLine !== undefined, nlb.join('\n'));
  const f = tlsLine.split(' ');
  assert.equal(f.length, 22, tlsLine);
  assert.deepEqual([f[3], f[6], f[15], f[17]], [lb.load_balancer, `127.0.0.1:${tlsPort}`, (protocol ?? '').toLowerCase().replace(/[^a-z0-9]/g, ''), NAME]);
  assert.equal(nlb.filter((l) => l.startsWith('tcp 2.0 ')).length, 2);

  open.socket.end();
  await open.closed;
});
