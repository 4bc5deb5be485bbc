import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import net from 'node:net';
import { after, before, test } from 'node:test';
import tls from 'node:tls';
import type { ListenerCertificate, ListenerRoute } from '../../domain/routing-snapshot.ts';
import { tlsPolicySettings } from '../../domain/tls-policies.ts';
import { leafCert, testCa } from '../../../test/support/certs.ts';
import type { TlsFacts } from '../channels.ts';
import { TlsFront, handshakeTimeoutMs } from './tls-front.ts';

const POLICY = tlsPolicySettings('ELBSecurityPolicy-TLS13-1-2-2021-06');
const D = leafCert(['d.front.test']);
const A = leafCert(['a.front.test']);
const B = leafCert(['b.front.test']);
const cert = (arn: string, c: { certPem: string; keyPem: string }, name: string): ListenerCertificate => ({
  arn,
  certificatePem: c.certPem,
  privateKeyPem: c.keyPem,
  names: [name],
});
const certD = cert('d', D, 'd.front.test');
const certA = cert('a', A, 'a.front.test');
const certB = cert('b', B, 'b.front.test');

function route(certificates: ListenerCertificate[], headerTimeoutMs = 5_000): ListenerRoute {
  if (POLICY === undefined) throw new Error('no policy');
  return {
    arn: 'arn:test:listener/front',
    protocol: 'HTTPS',
    address: '127.0.0.1',
    port: 0,
    targetGroupArn: null,
    settings: {
      idleTimeoutMs: 5_000,
      clientHeaderTimeoutMs: headerTimeoutMs,
      targetConnectTimeoutMs: 1_000,
      targetResponseTimeoutMs: 1_000,
      maxHeaderBytes: 16_384,
      maxHeadersCount: 50,
      xffMode: 'append',
      desyncMode: 'defensive',
      http2: false,
      tcpIdleTimeoutMs: 350_000,
    },
    tls: { certificates, policy: POLICY },
  };
}

const secured: Array<{ facts: TlsFacts; alpn: string | null }> = [];
const front = new TlsFront(route([certD, certA]), {
  dataPlaneId: 'unit',
  log: () => {},
  alpn: () => ['http/1.1'],
  onSecure: (socket, facts, alpn) => {
    secured.push({ facts, alpn });
    socket.end();
  },
});
const server = net.createServer({ allowHalfOpen: true }, (raw) => front.accept(raw));
let port = 0;

before(async () => {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  port = (server.address() as net.AddressInfo).port;
});

after(() => {
  front.destroy();
  server.close();
});

/** The serial the listener shows for `servername`, and the facts the front handed over. */
function connect(servername?: string): Promise<{ serial: string; facts: TlsFacts | undefined }> {
  return new Promise((resolve, reject) => {
    const before = secured.length;
    const s = tls.connect({ host: '127.0.0.1', port, ca: testCa().certPem, checkServerIdentity: () => undefined, ...(servername === undefined ? {} : { servername }) });
    let serial = '';
    s.on('secureConnect', () => (serial = s.getPeerCertificate().serialNumber));
    s.resume();
    s.on('error', reject);
    s.on('close', () => resolve({ serial, facts: secured[before]?.facts }));
  });
}

const serial = (c: { certPem: string }): string => new X509Certificate(c.certPem).serialNumber;

test('the facts name the certificate presented; the default without SNI', async () => {
  const a = await connect('a.front.test');
  assert.equal(a.serial, serial(A));
  assert.deepEqual({ ...a.facts, cipher: '' }, { cipher: '', protocol: 'TLSv1.3', serverName: 'a.front.test', certificateArn: 'a' });
  const none = await connect();
  assert.equal(none.serial, serial(D));
  assert.equal(none.facts?.serverName, null);
  assert.equal(none.facts?.certificateArn, 'd');
  assert.equal(front.problem, null);
});

test('an update that changes nothing keeps its contexts; one that removes a certificate drops its context', async () => {
  assert.equal(front.contextCount, 1, 'one context besides the default');
  front.update(route([certD, certA]));
  assert.equal(front.contextCount, 1);
  front.update(route([certD, certA, certB]));
  assert.equal(front.contextCount, 2);
  assert.equal((await connect('b.front.test')).serial, serial(B));
  front.update(route([certD, certB]));
  assert.equal(front.contextCount, 1, 'A dropped');
  assert.equal((await connect('a.front.test')).serial, serial(D));
  assert.equal(front.handshakes, 0);
});

test('the handshake timeout is 10 s, or the client header timeout when shorter', () => {
  assert.equal(handshakeTimeoutMs(route([certD], 60_000).settings), 10_000);
  assert.equal(handshakeTimeoutMs(route([certD], 2_000).settings), 2_000);
});

test('a route without a certificate is a problem, not a throw', () => {
  const empty = new TlsFront(route([]), { dataPlaneId: 'unit', log: () => {}, alpn: () => [], onSecure: () => {} });
  assert.equal(empty.problem?.code, 'CertificateNotFound');
});
