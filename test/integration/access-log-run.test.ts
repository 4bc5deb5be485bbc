/**
 * Issue 9, test 2: a real ebb (in process, real sockets) serves 200s, a 502, a 503, a 504 and a
 * request cut at a drain deadline; every access-log line matches the regular expression of AWS's
 * Athena table for ALB access logs (test/fixtures/athena-alb-regex.ts, copied from
 * https://docs.aws.amazon.com/athena/latest/ug/create-alb-access-logs-table.html) and is checked field
 * by field against what happened: the bytes each client sent and got, its port, the target, the
 * statuses, the times. The S3 layout of the logged load balancer holds the same lines: a plain .log
 * while its interval is open, its .log.gz once ebb has stopped.
 */
import assert from 'node:assert/strict';
import { readdir, readFile } from 'node:fs/promises';
import net from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { gunzipSync } from 'node:zlib';
import { startEbb } from '../../src/main/ebb.ts';
import { athenaParse, type AthenaAlbRow } from '../fixtures/athena-alb-regex.ts';
import { Cleanup, freePort, startBackend, tempDir, waitFor, writeFileAtomic } from './harness.ts';

const UA = 'access-log-test/1.0 (ebb)';

interface Exchange {
  readonly path: string;
  readonly port: number;
  /** The request as sent: ebb's received_bytes. */
  readonly requestBytes: number;
  /** Everything the client read until the connection closed: ebb's sent_bytes. */
  readonly responseBytes: number;
  readonly status: number;
  readonly clientPort: number;
  readonly sentAt: number;
  readonly doneAt: number;
}

/** One request on its own connection, byte for byte, so the sizes the log reports can be checked exactly. */
function exchange(port: number, path: string): Promise<Exchange> {
  return new Promise((resolve, reject) => {
    const request = `GET ${path} HTTP/1.1\r\nHost: lb.example.test:${port}\r\nUser-Agent: ${UA}\r\nAccept: */*\r\nConnection: close\r\n\r\n`;
    const chunks: Buffer[] = [];
    const socket = net.connect(port, '127.0.0.1');
    let clientPort = 0;
    const sentAt = Date.now();
    socket.on('connect', () => {
      clientPort = socket.localPort ?? 0;
      socket.write(request, 'latin1');
    });
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const all = Buffer.concat(chunks);
      const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(all.toString('latin1'))?.[1] ?? 0);
      resolve({ path, port, requestBytes: Buffer.byteLength(request, 'latin1'), responseBytes: all.length, status, clientPort, sentAt, doneAt: Date.now() });
    });
    socket.setTimeout(15_000, () => socket.destroy(new Error(`no answer to ${path}`)));
  });
}

/** Wall ms of an ALB timestamp (`2026-01-01T00:00:00.123456Z`), with its microseconds. */
function wallMs(iso: string): number {
  const m = /^(.*T\d\d:\d\d:\d\d)\.(\d{6})Z$/.exec(iso);
  assert.ok(m !== null, `not an ALB timestamp: ${iso}`);
  return Date.parse(`${m[1]}Z`) + Number(m[2]) / 1000;
}

test('every access-log line of a run with 200s, a 502, a 503, a 504 and a request cut at a drain deadline is read by Athena, field by field as it happened', { timeout: 60_000 }, async (t) => {
  const c = new Cleanup();
  t.after(() => c.run());
  const A = await startBackend('A', c);
  const dir = await tempDir(c);
  const deadPort = await freePort(); // nothing listens: a refused connection, 502
  const [pWeb, pEmpty, pDead, pSlow] = [await freePort(), await freePort(), await freePort(), await freePort()];
  const listener = (port: number, group: string): string[] => [
    '      - protocol: HTTP',
    `        port: ${port}`,
    '        address: 127.0.0.1',
    '        defaultActions:',
    '          - type: forward',
    `            targetGroup: ${group}`,
  ];
  const group = (name: string, targets: readonly number[], delay = 10): string[] => [
    `  - name: ${name}`,
    '    protocol: HTTP',
    '    port: 80',
    '    healthCheck:',
    '      path: /health',
    '      intervalSeconds: 30',
    '    attributes:',
    `      deregistration_delay.timeout_seconds: ${delay}`,
    ...(targets.length === 0 ? ['    targets: []'] : ['    targets:', ...targets.map((p) => `      - { id: 127.0.0.1, port: ${p} }`)]),
  ];
  const yaml = [
    'accessLog:',
    '  output: file',
    '  path: logs/access.log',
    'loadBalancers:',
    '  - name: web',
    '    attributes:',
    '      access_logs.s3.enabled: true',
    '      access_logs.s3.bucket: alb-logs',
    '      access_logs.s3.prefix: prod',
    '    listeners:',
    ...listener(pWeb, 'web'),
    '  - name: edge',
    '    attributes:',
    '      ebb.target_response_timeout.seconds: 1',
    '    listeners:',
    ...listener(pEmpty, 'empty'),
    ...listener(pDead, 'dead'),
    ...listener(pSlow, 'slow'),
    'targetGroups:',
    ...group('web', [A.port], 1),
    ...group('empty', []),
    ...group('dead', [deadPort]),
    ...group('slow', [A.port]),
    '',
  ].join('\n');
  const configPath = join(dir, 'ebb.yaml');
  await writeFileAtomic(configPath, yaml);
  const logs: Array<Record<string, unknown>> = [];
  const ebb = await startEbb({ configPath, stateDir: join(dir, 'state'), adminAddress: '127.0.0.1:0', authentication: false, env: {}, log: (e) => logs.push(e) });
  let stopped = false;
  c.add(async () => {
    if (!stopped) await ebb.shutdown();
  });

  const control = ebb.control;
  const lbArn = (name: string): string => control.describeLoadBalancers({ names: [name] })[0]?.arn ?? '';
  const tgArn = (name: string): string => control.describeTargetGroups({ names: [name] })[0]?.arn ?? '';
  const elbOf = (arn: string): string => arn.slice(arn.indexOf(':loadbalancer/') + ':loadbalancer/'.length);

  // What happens, in order.
  const ok = [];
  for (let i = 1; i <= 3; i++) ok.push(await exchange(pWeb, `/ok-${i}?n=${i}`));
  const noTarget = await exchange(pEmpty, '/none');
  const refused = await exchange(pDead, '/dead');
  const timedOut = await exchange(pSlow, '/slow?ms=3000&for=timeout');
  // A request in flight on A when A is deregistered from `web` (delay 1 s): cut at the deadline.
  const before = A.seen.length;
  const cutPromise = exchange(pWeb, '/slow?ms=5000&for=cut');
  assert.ok(await waitFor(() => A.seen.length > before, 2000), 'the slow request should reach A');
  await control.deregisterTargets(tgArn('web'), [{ id: '127.0.0.1', port: A.port }]);
  const cut = await cutPromise;

  assert.deepEqual(
    [...ok.map((x) => x.status), noTarget.status, refused.status, timedOut.status, cut.status],
    [200, 200, 200, 503, 502, 504, 502],
    'what the clients got',
  );
  await ebb.accessLogs.flush();

  const nodeLog = (await readFile(join(dir, 'logs/access.log'), 'utf8')).split('\n').filter((l) => l !== '');
  assert.equal(nodeLog.length, 7, nodeLog.join('\n'));
  const rows = new Map<string, { line: string; row: AthenaAlbRow }>();
  for (const line of nodeLog) {
    const row = athenaParse(line);
    assert.ok(row !== null, `Athena's ALB expression does not match:\n${line}`);
    rows.set(row.request_url.replace(/^http:\/\/[^/]+/, ''), { line, row });
  }

  /** The fields every line shares, from what the client did. */
  const common = (x: Exchange, row: AthenaAlbRow, lb: string): void => {
    const why = `${x.path}: ${JSON.stringify(row)}`;
    assert.equal(row.type, 'http', why);
    assert.equal(row.elb, elbOf(lbArn(lb)), why);
    assert.match(row.elb, /^app\/[a-z]+\/[0-9a-f]{16}$/, why);
    assert.equal(row.client_ip, '127.0.0.1', why);
    assert.equal(Number(row.client_port), x.clientPort, why);
    assert.equal(Number(row.elb_status_code), x.status, why);
    assert.equal(Number(row.received_bytes), x.requestBytes, why);
    assert.equal(Number(row.sent_bytes), x.responseBytes, why);
    assert.equal(row.request_verb, 'GET', why);
    assert.equal(row.request_url, `http://lb.example.test:${x.port}${x.path}`, why);
    assert.equal(row.request_proto, 'HTTP/1.1', why);
    assert.equal(row.user_agent, UA, why);
    assert.deepEqual([row.ssl_cipher, row.ssl_protocol, row.trace_id, row.domain_name, row.chosen_cert_arn, row.redirect_url], ['-', '-', '-', '-', '-', '-'], why);
    assert.equal(row.matched_rule_priority, '0', why);
    assert.equal(row.actions_executed, 'forward', why);
    assert.deepEqual([row.classification, row.classification_reason, row.conn_trace_id], ['-', '-', '-'], why);
    // The request was whole after it was sent, and answered before the client saw the close.
    const created = wallMs(row.request_creation_time);
    const ended = wallMs(row.time);
    assert.ok(created >= x.sentAt - 1 && created <= ended && ended <= x.doneAt + 1, `${why}: created ${created}, ended ${ended}, client ${x.sentAt}-${x.doneAt}`);
  };
  const times = (row: AthenaAlbRow): number[] => [row.request_processing_time, row.target_processing_time, row.response_processing_time].map(Number);

  for (const x of ok) {
    const { row } = rows.get(x.path) ?? assert.fail(`no line for ${x.path}`);
    common(x, row, 'web');
    assert.deepEqual([row.target_ip, row.target_port, row.target_status_code, row.target_group_arn], ['127.0.0.1', String(A.port), '200', tgArn('web')]);
    for (const s of times(row)) assert.ok(s >= 0 && s < 1, `processing times of a quick 200: ${times(row).join(' ')}`);
    assert.deepEqual([row.lambda_error_reason, row.target_port_list, row.target_status_code_list], ['-', `127.0.0.1:${A.port}`, '200']);
  }

  {
    // 503: the group has no target; ebb answers, no target field is filled, no time was spent on one.
    const { row } = rows.get('/none') ?? assert.fail('no line for the 503');
    common(noTarget, row, 'edge');
    assert.deepEqual([row.target_ip, row.target_port, row.target_status_code], ['', '', '-']);
    assert.match(rows.get('/none')?.line ?? '', / 127\.0\.0\.1:\d+ - -1 -1 -1 503 - /);
    assert.deepEqual(times(row), [-1, -1, -1]);
    assert.deepEqual([row.target_group_arn, row.lambda_error_reason, row.target_port_list, row.target_status_code_list], [tgArn('empty'), 'NoRoutableTarget', '-', '-']);
  }

  {
    // 502: the target refuses the connection; the request never reached it.
    const { row } = rows.get('/dead') ?? assert.fail('no line for the 502');
    common(refused, row, 'edge');
    assert.deepEqual([row.target_ip, row.target_port, row.target_status_code], ['127.0.0.1', String(deadPort), '-']);
    assert.deepEqual(times(row), [-1, -1, -1]);
    assert.deepEqual([row.target_group_arn, row.lambda_error_reason, row.target_port_list, row.target_status_code_list], [tgArn('dead'), 'TargetConnectionError', `127.0.0.1:${deadPort}`, '-']);
  }

  {
    // 504: A got the request and did not answer within ebb.target_response_timeout.seconds (1 s).
    const { row } = rows.get('/slow?ms=3000&for=timeout') ?? assert.fail('no line for the 504');
    common(timedOut, row, 'edge');
    assert.deepEqual([row.target_ip, row.target_port, row.target_status_code], ['127.0.0.1', String(A.port), '-']);
    const [req, target, response] = times(row);
    assert.ok((req ?? -1) >= 0 && (req ?? 1) < 1, `the request was sent: ${times(row).join(' ')}`);
    assert.deepEqual([target, response], [-1, -1]);
    assert.ok(wallMs(row.time) - wallMs(row.request_creation_time) >= 990, 'answered after the 1 s response timeout');
    assert.deepEqual([row.target_group_arn, row.lambda_error_reason, row.target_status_code_list], [tgArn('slow'), 'TargetResponseTimeout', '-']);
  }

  {
    // Cut at the drain deadline: A had the request, the deregistration delay (1 s) ran out first.
    const { row } = rows.get('/slow?ms=5000&for=cut') ?? assert.fail('no line for the request cut at the deadline');
    common(cut, row, 'web');
    assert.deepEqual([row.target_ip, row.target_port, row.target_status_code], ['127.0.0.1', String(A.port), '-']);
    const [req, target, response] = times(row);
    assert.ok((req ?? -1) >= 0, `the request was sent: ${times(row).join(' ')}`);
    assert.deepEqual([target, response], [-1, -1]);
    assert.deepEqual([row.target_group_arn, row.lambda_error_reason, row.target_status_code_list], [tgArn('web'), 'DeregistrationDelayExpired', '-']);
    const record = control.drainRecords().find((r) => r.port === A.port && r.targetGroupArn === tgArn('web'));
    assert.equal(record?.outcome, 'deadline');
  }

  // The S3 layout of `web` (logging on) holds exactly its four lines, `edge` (logging off) has no folder.
  const folder = join(dir, 'state', 'alb-logs', 'prod', 'AWSLogs', control.accountId, 'elasticloadbalancing', control.region);
  const dayFolder = async (): Promise<string> => {
    const [y] = await readdir(folder);
    const [m] = await readdir(join(folder, y ?? ''));
    const [d] = await readdir(join(folder, y ?? '', m ?? ''));
    return join(folder, y ?? '', m ?? '', d ?? '');
  };
  const webLines = nodeLog.filter((l) => athenaParse(l)?.elb === elbOf(lbArn('web')));
  assert.equal(webLines.length, 4);
  const open = await readdir(await dayFolder());
  const stem = `${control.accountId}_elasticloadbalancing_${control.region}_${elbOf(lbArn('web')).replaceAll('/', '.')}_`;
  assert.equal(open.length, 1, open.join(' '));
  assert.ok(open[0]?.startsWith(stem) && open[0].endsWith('.log'), open[0]);
  assert.deepEqual((await readFile(join(await dayFolder(), open[0] ?? ''), 'utf8')).split('\n').filter((l) => l !== ''), webLines);

  await ebb.shutdown();
  stopped = true;
  const closed = await readdir(await dayFolder());
  assert.deepEqual(closed, [`${open[0]}.gz`], 'the open interval is finished at shutdown: .log replaced by .log.gz');
  const gz = gunzipSync(await readFile(join(await dayFolder(), `${open[0]}.gz`))).toString('utf8');
  assert.deepEqual(gz.split('\n').filter((l) => l !== ''), webLines);
  assert.equal(ebb.accessLogs.counters.linesDropped, 0);
  assert.equal(ebb.accessLogs.counters.linesWritten, 11);
  assert.deepEqual(logs.filter((l) => l['event'] === 'access-log:error'), []);
});
