/**
 * Test only (worker-pool.test.ts): a worker that speaks just enough of the protocol, with no data plane.
 * `TEST_WORKER_MODE` picks a fault: `crash` exits before `ready`, `old` speaks only version 99, `mute`
 * never says `ready`, `stubborn` ignores `close`, `first-dies` (see below) dies just after `ready`. Each `apply` is answered with one key that has work
 * (two connections to targets) and a telemetry message saying two client connections are open, so a
 * worker killed later is seen to take connections with it.
 *
 * Run as `node --import tsx pool.test-worker.ts primary <count>` it is instead a control process that
 * starts a pool of these workers and prints their pids, for the test that kills it and looks for orphans.
 */
import cluster from 'node:cluster';
import { closeSync, openSync } from 'node:fs';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import { realClock } from '../shared/clock.ts';
import { parentLink } from './link.ts';
import { decodeToWorker } from './protocol.ts';
import { WorkerPool } from './worker-pool.ts';

if (cluster.isWorker) runWorker();
else if (process.argv[2] === 'primary') await runPrimary(Number(process.argv[3] ?? '2'));

function runWorker(): void {
  const mode = process.env['TEST_WORKER_MODE'] ?? '';
  if (mode === 'crash') process.exit(3);
  // `first-dies`: the first worker to claim TEST_WORKER_MARKER says ready and exits soon after; the rest say ready late.
  let first = false;
  if (mode === 'first-dies') {
    try {
      closeSync(openSync(process.env['TEST_WORKER_MARKER'] ?? '', 'wx'));
      first = true;
    } catch {
      first = false;
    }
  }
  const link = parentLink();
  // Never orphaned: when the control process goes, so does the worker.
  link.onClose(() => process.exit(0));
  link.onMessage((raw) => {
    const message = decodeToWorker(raw);
    switch (message.type) {
      case 'hello':
        return;
      case 'apply':
        link.send({
          type: 'applied',
          seq: message.seq,
          version: message.snapshot.version,
          listenerErrors: [],
          activity: [{ key: `work-of-${process.pid}`, requests: 1, tunnels: 0, completed: 0, connections: 2 }],
        });
        // Two client connections open, as a listener's connection limit would say (connection-limit.ts).
        link.send({ type: 'telemetry', events: [[CHANNEL_NAMES.connectionCount, { pid: process.pid, listenerArn: 'arn:test:listener', listenerPort: 8080, open: 2 }]], dropped: 0 });
        return;
      case 'terminate':
        link.send({ type: 'terminated', seq: message.seq, result: { requestsCut: 0, tunnelsClosed: 0, connectionsClosed: 0 } });
        return;
      case 'close':
        if (mode === 'stubborn') return;
        link.send({ type: 'closed', seq: message.seq });
        link.close();
        return;
      case 'destroy':
        process.exit(0);
        return;
      // Sockets are not this stand-in's business: none is handed to it, and it says it listens on none.
      case 'socket':
        return;
      // It publishes no request ends to fold.
      case 'telemetry':
        return;
      case 'listening':
        link.send({ type: 'listening', seq: message.seq, count: 0 });
        return;
    }
  });
  if (mode === 'first-dies') {
    setTimeout(
      () => {
        link.send({ type: 'ready', protocols: [1], pid: process.pid });
        if (first) setTimeout(() => process.exit(1), 50);
      },
      first ? 0 : 1500,
    );
  } else if (mode !== 'mute') link.send({ type: 'ready', protocols: mode === 'old' ? [99] : [1], pid: process.pid });
}

async function runPrimary(count: number): Promise<void> {
  const pool = new WorkerPool({
    count,
    entry: import.meta.filename,
    execArgv: ['--import', 'tsx'],
    clock: realClock,
    log: () => {},
  });
  await pool.start();
  process.stdout.write(`${JSON.stringify(pool.pids)}\n`);
  // Kept alive until killed.
  setInterval(() => {}, 60_000);
}
