/**
 * The file's certificates through `ebb serve` (issue 10, test 3's SIGHUP part): an HTTPS listener whose
 * certificate files are replaced on disk under the same names, and SIGHUP sent while a long download
 * goes on: the download completes intact on the connection that started it, and a new `curl --resolve`
 * is shown the new certificate, though the YAML did not change. A certificate file replaced by one that
 * does not match its key is refused at the next SIGHUP with the file and the reason, and the certificate
 * served before stays. A listener whose certificate file is missing keeps ebb from starting, naming the file.
 */
import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { existsSync } from 'node:fs';
import { copyFile, mkdir, rename } from 'node:fs/promises';
import { createServer } from 'node:http';
import https from 'node:https';
import { join } from 'node:path';
import { test } from 'node:test';
import type tls from 'node:tls';
import { leafCert, testCa, type TestCert } from '../support/certs.ts';
import { waitForStart } from '../support/ebb-process.ts';
import { waitUntil } from '../support/timing.ts';
import { Cleanup, freePort, spawnEbb, tempDir, writeFileAtomic } from './harness.ts';
import { curlResolve } from './https-harness.ts';

const NAME = 'site.example.test';
/** 40 chunks of 64 KiB, one every 50 ms: a download of about 2 s. */
const CHUNKS = 40;
const CHUNK = Buffer.alloc(64 * 1024, 'y');

function configText(listenerPort: number, backendPort: number): string {
  return `
loadBalancers:
  - name: tls-web
    listeners:
      - protocol: HTTPS
        port: ${listenerPort}
        address: 127.0.0.1
        certificates:
          - certificateFile: tls/site.crt
            privateKeyFile: tls/site.key
        defaultActions:
          - type: forward
            targetGroup: web
targetGroups:
  - name: web
    protocol: HTTP
    port: ${backendPort}
    targetType: ip
    healthCheck: { enabled: false }
    targets:
      - id: 127.0.0.1
`;
}

/** Puts a certificate's files in place under the names the file gives (each renamed over the old one, as a renewal tool does). */
async function install(dir: string, cert: TestCert, key: TestCert = cert): Promise<void> {
  await copyFile(cert.certFile, join(dir, 'tls', 'site.crt.new'));
  await copyFile(key.keyFile, join(dir, 'tls', 'site.key.new'));
  await rename(join(dir, 'tls', 'site.key.new'), join(dir, 'tls', 'site.key'));
  await rename(join(dir, 'tls', 'site.crt.new'), join(dir, 'tls', 'site.crt'));
}

function serial(cert: TestCert): string {
  return new X509Certificate(cert.certPem).serialNumber.toUpperCase();
}

/** The serial of the certificate a fresh `curl --resolve` is shown (verified against the test CA and the name), from curl's `%{certs}`. */
async function curlSerial(port: number): Promise<string> {
  const r = await curlResolve(port, NAME, '/', ['-o', '/dev/null', '-w', '%{certs}']);
  assert.equal(r.code, 0, r.stderr);
  const m = /^Serial Number:([0-9a-f]+)$/im.exec(r.stdout);
  assert.ok(m !== null, `curl printed no serial: ${r.stdout.slice(0, 300)}`);
  return (m[1] ?? '').toUpperCase().replace(/^0+/, '');
}

test('SIGHUP reads the certificate files again with the YAML unchanged: a download in flight completes, new connections get the new certificate; a bad one is refused and the old one stays', { timeout: 90_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const v1 = leafCert([NAME], 'v1');
  const v2 = leafCert([NAME], 'v2');
  const stranger = leafCert(['stranger.example.test']);
  // The target: a download of CHUNKS × 64 KiB, one chunk every 50 ms.
  const download = createServer((req, res) => {
    res.writeHead(200, { 'content-length': String(CHUNKS * CHUNK.length) });
    let sent = 0;
    const timer = setInterval(() => {
      res.write(CHUNK);
      if (++sent === CHUNKS) {
        clearInterval(timer);
        res.end();
      }
    }, 50);
    res.on('close', () => clearInterval(timer));
  });
  await new Promise<void>((resolve) => download.listen(0, '127.0.0.1', resolve));
  c.add(() => new Promise<void>((resolve) => download.close(() => resolve())));
  const downloadPort = (download.address() as { port: number }).port;

  const dir = await tempDir(c);
  await mkdir(join(dir, 'tls'));
  await install(dir, v1);
  const listenerPort = await freePort();
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configText(listenerPort, downloadPort));
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  await waitForStart(ebb);
  assert.equal(await curlSerial(listenerPort), serial(v1).replace(/^0+/, ''));

  // A long download starts under v1 and is read slowly while the certificate is renewed.
  const body = createHash('sha256');
  let received = 0;
  const done = new Promise<{ status: number; serial: string }>((resolve, reject) => {
    const req = https.get({ host: '127.0.0.1', port: listenerPort, path: '/download', servername: NAME, ca: testCa().certPem, agent: false }, (res) => {
      const shown = (res.socket as tls.TLSSocket).getPeerCertificate().serialNumber.toUpperCase();
      res.on('data', (chunk: Buffer) => {
        body.update(chunk);
        received += chunk.length;
      });
      res.on('end', () => resolve({ status: res.statusCode ?? 0, serial: shown }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
  await waitUntil(() => received > 0, 'the download to start', 10_000);

  await install(dir, v2);
  ebb.child.kill('SIGHUP');
  const reloaded = await ebb.waitForLog((l) => l['event'] === 'config:reloaded', 20_000);
  assert.ok(reloaded !== null, `no config:reloaded: ${JSON.stringify(ebb.logs.slice(-5))}`);
  const applied = reloaded['applied'] as string[];
  assert.equal(applied.length, 1, JSON.stringify(applied));
  assert.match(applied[0] ?? '', new RegExp(`^reloaded certificate arn:aws:acm:us-east-1:123456789012:certificate/[0-9a-f-]{36} \\(${join(dir, 'tls', 'site.crt').replace(/[.]/g, '\\.')}\\)$`));
  assert.ok(received < CHUNKS * CHUNK.length, 'the reload happened while the download was still going');
  assert.equal(await curlSerial(listenerPort), serial(v2).replace(/^0+/, ''));

  const finished = await done;
  assert.equal(finished.status, 200);
  assert.equal(finished.serial, serial(v1), 'the download kept the connection it started on');
  const expected = createHash('sha256');
  for (let i = 0; i < CHUNKS; i++) expected.update(CHUNK);
  assert.equal(body.digest('hex'), expected.digest('hex'), 'the download arrived whole');

  // A certificate that does not match its key: the reload is refused with the file and why; v2 stays.
  await install(dir, stranger, v2);
  ebb.child.kill('SIGHUP');
  const refused = await ebb.waitForLog((l) => l['event'] === 'config:reload-refused', 20_000);
  assert.ok(refused !== null, 'the bad certificate was refused');
  assert.match(String(refused['error']), new RegExp(`^ConfigInvalid: .*ebb\\.yaml:\\d+:\\d+: loadBalancers\\[0\\]\\.listeners\\[0\\]\\.certificates\\[0\\]: ${join(dir, 'tls', 'site.key').replace(/[.]/g, '\\.')}: does not match the certificate`));
  assert.equal(await curlSerial(listenerPort), serial(v2).replace(/^0+/, ''));
  assert.deepEqual(ebb.problems().filter((l) => l['event'] !== 'config:reload-refused'), []);
});

test('a listener whose certificate file is missing keeps ebb serve from starting, naming the file, with no state written', { timeout: 30_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const dir = await tempDir(c);
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, configText(await freePort(), 9));
  const ebb = spawnEbb(c, ['--config', configPath, '--admin', '127.0.0.1:0', '--state-dir', join(dir, 'state'), '--no-auth']);
  assert.equal(await ebb.exited, 2, 'ebb serve exits 2 for a configuration it refuses');
  const said = ebb.stderr() + ebb.stdout();
  assert.match(said, new RegExp(`${join(dir, 'tls', 'site.crt').replace(/[.]/g, '\\.')}: no such file`), said);
  assert.match(said, /ConfigInvalid/);
  assert.ok(!existsSync(join(dir, 'state')), 'the refused start wrote no state');
});
