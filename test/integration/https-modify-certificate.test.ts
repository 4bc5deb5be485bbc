/**
 * An HTTPS listener's certificates changed through the API with the `aws` CLI, against `ebb serve` as
 * a process (--no-auth): the certificates are imported with `aws acm import-certificate` on the same
 * admin endpoint, the listener is made with one of them and given a second by SNI.
 *
 * - AddListenerCertificates with two certificates in one call is refused ("You can specify one
 *   certificate per call", botocore elbv2 AddListenerCertificatesInput.Certificates) with ebb's
 *   ValidationError, and changes nothing: DescribeListenerCertificates lists what it did before, and
 *   a handshake for a refused certificate's name is still shown the default. The same certificate
 *   given alone is added.
 * - ModifyListener with `Certificates=[{CertificateArn=NEW}]` while a download runs over a TLS
 *   connection made under the old default: the download completes intact on that connection (its
 *   bytes counted and hashed), a TLS connection made once the CLI has its answer is shown the new
 *   certificate (its SHA-256 fingerprint), and the SNI certificates stay.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import https from 'node:https';
import type { AddressInfo } from 'node:net';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import { leafCert, testCa, type TestCert } from '../support/certs.ts';
import { Cleanup, tempDir } from '../support/cleanup.ts';
import { spawnEbb, waitForStart, type NodeProcess } from '../support/ebb-process.ts';
import { freePort } from '../support/ports.ts';
import { waitUntil } from '../support/timing.ts';
import { aws, cliEnv, failsWith, missingClient, ok, type ApiHarness } from './api-harness.ts';

const skipCli = missingClient('aws');
const c = new Cleanup();
let h: Pick<ApiHarness, 'endpoint' | 'env'>;
let ebb: NodeProcess;

const NAME = 'site.modify.test';
const SNI_NAME = 'sni.modify.test';
const EXTRA_NAME = 'extra.modify.test';
let OLD: TestCert;
let NEW: TestCert;
let SNI: TestCert;
let EXTRA: TestCert;
const arns = { old: '', new: '', sni: '', extra: '' };
let listenerArn = '';
let listenerPort = 0;

/** The download: CHUNKS × 32 KiB, one every 20 ms; the last HELD_BACK chunks wait for `releaseDownload()`. */
const CHUNKS = 64;
const HELD_BACK = 16;
const CHUNK = Buffer.alloc(32 * 1024, 'd');
const TOTAL = CHUNKS * CHUNK.length;
let releaseDownload: () => void = () => undefined;
const released = new Promise<void>((resolve) => (releaseDownload = resolve));

const fingerprint = (cert: TestCert): string => new X509Certificate(cert.certPem).fingerprint256;

before(async () => {
  if (skipCli !== null) return;
  [OLD, NEW] = [leafCert([NAME], 'old'), leafCert([NAME], 'new')];
  [SNI, EXTRA] = [leafCert([SNI_NAME]), leafCert([EXTRA_NAME])];
  assert.notEqual(fingerprint(OLD), fingerprint(NEW));

  // The target: `/download` as above; anything else (health checks) 200 at once.
  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    if (req.url !== '/download') return void res.end('ok\n');
    res.writeHead(200, { 'content-length': String(TOTAL), 'content-type': 'application/octet-stream' });
    let sent = 0;
    let stopped = false;
    const next = (): void => {
      if (stopped) return;
      res.write(CHUNK);
      if (++sent === CHUNKS) return void res.end();
      if (sent === CHUNKS - HELD_BACK) void released.then(() => setTimeout(next, 20));
      else setTimeout(next, 20);
    };
    res.on('close', () => (stopped = true));
    next();
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  c.add(
    () =>
      new Promise<void>((resolve) => {
        releaseDownload();
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  );
  const backendPort = (server.address() as AddressInfo).port;

  const dir = await tempDir(c);
  ebb = spawnEbb(c, ['--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth'], undefined, { stopGraceMs: 5000 });
  const started = await waitForStart(ebb);
  const env = cliEnv('AKIDMODIFYCERT', 'unused-with-no-auth');
  h = { endpoint: `http://${String(started['admin'])}`, env };

  const importCert = (cert: TestCert) => aws(h, ['acm', 'import-certificate', '--certificate', `fileb://${cert.certFile}`, '--private-key', `fileb://${cert.keyFile}`]);
  const [oldOut, newOut, sniOut, extraOut, lbOut, tgOut, port] = await Promise.all([
    importCert(OLD),
    importCert(NEW),
    importCert(SNI),
    importCert(EXTRA),
    aws(h, ['elbv2', 'create-load-balancer', '--name', 'modify-cert', '--subnets', 'subnet-1']),
    aws(h, ['elbv2', 'create-target-group', '--name', 'modify-cert', '--protocol', 'HTTP', '--port', String(backendPort), '--target-type', 'ip']),
    freePort(),
  ]);
  arns.old = ok(oldOut).CertificateArn;
  arns.new = ok(newOut).CertificateArn;
  arns.sni = ok(sniOut).CertificateArn;
  arns.extra = ok(extraOut).CertificateArn;
  const lbArn: string = ok(lbOut).LoadBalancers[0].LoadBalancerArn;
  const tgArn: string = ok(tgOut).TargetGroups[0].TargetGroupArn;
  listenerPort = port;
  const [listenerOut] = await Promise.all([
    aws(h, ['elbv2', 'create-listener', '--load-balancer-arn', lbArn, '--protocol', 'HTTPS', '--port', String(listenerPort),
      '--certificates', `CertificateArn=${arns.old}`, '--default-actions', `Type=forward,TargetGroupArn=${tgArn}`]),
    aws(h, ['elbv2', 'register-targets', '--target-group-arn', tgArn, '--targets', `Id=127.0.0.1,Port=${backendPort}`]).then(ok),
  ]);
  listenerArn = ok(listenerOut).Listeners[0].ListenerArn;
  assert.deepEqual(ok(await aws(h, ['elbv2', 'add-listener-certificates', '--listener-arn', listenerArn, '--certificates', `CertificateArn=${arns.sni}`])).Certificates, [
    { CertificateArn: arns.sni, IsDefault: false },
  ]);
});

after(async () => {
  await c.run();
});

/** A TLS handshake with the listener with SNI `servername`: the SHA-256 fingerprint of the certificate shown. */
function shownFingerprint(servername: string): Promise<string> {
  return new Promise((resolve, reject) => {
    // Verified against the test CA, whatever name it carries: the default shown for another name is an answer too.
    const s = tls.connect({ host: '127.0.0.1', port: listenerPort, servername, ca: testCa().certPem, checkServerIdentity: () => undefined }, () => {
      const shown = s.getPeerCertificate().fingerprint256;
      s.end();
      s.on('close', () => resolve(shown));
    });
    s.resume();
    s.on('error', reject);
  });
}

async function listed(): Promise<unknown> {
  return ok(await aws(h, ['elbv2', 'describe-listener-certificates', '--listener-arn', listenerArn])).Certificates;
}

test('aws CLI: add-listener-certificates with two certificates in one call is refused and changes nothing; one at a time is added', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  const before = await listed();
  assert.deepEqual(before, [
    { CertificateArn: arns.old, IsDefault: true },
    { CertificateArn: arns.sni, IsDefault: false },
  ]);

  const refused = await aws(h, ['elbv2', 'add-listener-certificates', '--listener-arn', listenerArn, '--certificates', `CertificateArn=${arns.new}`, `CertificateArn=${arns.extra}`]);
  failsWith(refused, 'ValidationError', /one certificate per call; got 2/);

  assert.deepEqual(await listed(), before, 'DescribeListenerCertificates lists what it did before');
  assert.equal(await shownFingerprint(EXTRA_NAME), fingerprint(OLD), 'a refused certificate\'s name is shown the default');
  assert.equal(await shownFingerprint(NAME), fingerprint(OLD));
  assert.equal(await shownFingerprint(SNI_NAME), fingerprint(SNI));

  // The same certificate alone is added, and served for its name.
  assert.deepEqual(ok(await aws(h, ['elbv2', 'add-listener-certificates', '--listener-arn', listenerArn, '--certificates', `CertificateArn=${arns.extra}`])).Certificates, [
    { CertificateArn: arns.extra, IsDefault: false },
  ]);
  assert.equal(await shownFingerprint(EXTRA_NAME), fingerprint(EXTRA));
});

test('aws CLI: modify-listener replaces the default certificate while a download runs: the download completes intact, a new connection gets the new certificate', { skip: skipCli ?? false, timeout: 60_000 }, async () => {
  // A download over a TLS connection made under the old default.
  let received = 0;
  const hash = createHash('sha256');
  let finished = false;
  const download = await new Promise<{ fingerprint: string; done: Promise<{ status: number; complete: boolean; fingerprint: string }> }>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: listenerPort, path: '/download', servername: NAME, ca: testCa().certPem, agent: false }, (res) => {
      const socket = res.socket as tls.TLSSocket;
      const done = new Promise<{ status: number; complete: boolean; fingerprint: string }>((settle) => {
        res.on('data', (chunk: Buffer) => {
          received += chunk.length;
          hash.update(chunk);
        });
        const end = (): void => {
          finished = true;
          // The certificate of the connection the last byte came on (read before the socket is gone).
          settle({ status: res.statusCode ?? 0, complete: res.complete, fingerprint: socket.getPeerCertificate()?.fingerprint256 ?? 'socket gone' });
        };
        res.on('end', end);
        res.on('error', end);
        res.on('close', end);
      });
      resolve({ fingerprint: socket.getPeerCertificate().fingerprint256, done });
    });
    req.on('error', reject);
  });
  assert.equal(download.fingerprint, fingerprint(OLD), 'the download started under the old default');
  await waitUntil(() => received > 0, 'the download\'s first bytes', 5000);

  const atModify = received;
  const modified = ok(await aws(h, ['elbv2', 'modify-listener', '--listener-arn', listenerArn, '--certificates', `CertificateArn=${arns.new}`])).Listeners[0];
  assert.deepEqual([modified.ListenerArn, modified.Protocol, modified.Certificates], [listenerArn, 'HTTPS', [{ CertificateArn: arns.new }]]);

  // Made after the answer: the new certificate, at once.
  assert.equal(await shownFingerprint(NAME), fingerprint(NEW), 'a new connection is shown the new default');
  const fresh = await new Promise<{ status: number; body: string; fingerprint: string }>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: listenerPort, path: '/', servername: NAME, ca: testCa().certPem, agent: false }, (res) => {
      const shown = (res.socket as tls.TLSSocket).getPeerCertificate().fingerprint256;
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (d: string) => (body += d));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, fingerprint: shown }));
    });
    req.on('error', reject);
  });
  assert.deepEqual(fresh, { status: 200, body: 'ok\n', fingerprint: fingerprint(NEW) });
  // The SNI certificates stay, the new default first.
  assert.deepEqual(await listed(), [
    { CertificateArn: arns.new, IsDefault: true },
    { CertificateArn: arns.sni, IsDefault: false },
    { CertificateArn: arns.extra, IsDefault: false },
  ]);
  assert.equal(await shownFingerprint(SNI_NAME), fingerprint(SNI));

  // The download went on through the change and is not over: its last chunks wait for the test.
  assert.ok(received > atModify, `the download went on after the modify call started (${atModify} then ${received} bytes); its held-back end, checked below, is what shows the old connection survived`);
  assert.ok(received < TOTAL && !finished, `the download is still running (${received} of ${TOTAL})`);
  releaseDownload();
  const result = await download.done;
  assert.deepEqual([result.status, result.complete, received], [200, true, TOTAL], 'the download completed, every byte');
  const expected = createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) expected.update(CHUNK);
  assert.equal(hash.digest('hex'), expected.digest('hex'), 'the download arrived intact');
  assert.equal(result.fingerprint, fingerprint(OLD), 'on the connection it started on, under the old certificate');
  assert.deepEqual(ebb.problems(), [], 'ebb logged no error');
});
