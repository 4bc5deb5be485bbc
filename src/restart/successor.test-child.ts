/**
 * Test only (restart.test.ts): a successor that speaks its side of the handover protocol by hand, so
 * each way a successor can fail is shown to the running ebb's `Restart`. The mode is argv[2]:
 * - `exit-at-once`: exits 3 before reading anything.
 * - `silent`: reads nothing and says nothing.
 * - `fail-before-state`: at `handover:sockets`, says `handover:failed` (a bad file) and waits.
 * - `fail-after-state`: asks for the state, then says `handover:failed`.
 * - `exit-after-state`: asks for the state, then exits 4.
 * - `mute-after-state`: asks for the state, then says nothing.
 * - `ask-when-told`: asks for the state only when stdin says `want-state`, then says nothing.
 * - `serve`: listens on the admin socket it was handed (answering `served by <pid>`), asks for the
 *   state, and says it serves; then it plays the control side of the data-plane protocol
 *   (src/workers/protocol.ts): at the predecessor's `ready` it says `hello`, and the rest on stdin.
 * Lines on stdin (any mode): `want-state`; `apply-no-listeners` (an `apply` of a snapshot with no
 * listeners and no groups); `close <deadlineMs>`; `exit <code>`.
 * Each line on stdout is a JSON report to the test: `up`, each message received (with whether a
 * handle came with it), `listening`, and `sent` with each data-plane message sent.
 */
import net from 'node:net';
import { createInterface } from 'node:readline';
import { PROTOCOL_VERSION, type ToWorker } from '../workers/protocol.ts';
import { HANDOVER_VERSION } from './handover-protocol.ts';

const mode = process.argv[2] ?? '';
if (mode === 'exit-at-once') process.exit(3);

function report(line: Record<string, unknown>): void {
  process.stdout.write(`${JSON.stringify(line)}\n`);
}

function say(message: Record<string, unknown>): void {
  process.send?.({ v: HANDOVER_VERSION, ...message });
}

/** A data-plane protocol message, as the successor's RemoteDataPlane would send it. */
function control(message: ToWorker): void {
  process.send?.(message);
  report({ event: 'sent', message });
}

const servers: net.Server[] = [];
let dataPlaneId = '';
let seq = 0;

process.on('message', (raw: unknown, handle: unknown) => {
  if (mode === 'silent') return;
  const message = raw as { type?: string; role?: string; dataPlaneId?: string };
  report({ event: 'received', message: raw, handle: handle !== undefined && handle !== null });
  if (message.type === 'handover:socket' && message.role === 'admin' && mode === 'serve') {
    const server = net.createServer((socket) => socket.end(`served by ${process.pid}`));
    servers.push(server);
    server.listen(handle as net.Server, () => report({ event: 'listening' }));
    return;
  }
  if (message.type === 'handover:sockets') {
    dataPlaneId = message.dataPlaneId ?? '';
    if (mode === 'fail-before-state') say({ type: 'handover:failed', error: 'ebb.yaml: the certificate file site.crt cannot be read' });
    else if (mode !== 'ask-when-told') say({ type: 'handover:want-state' });
    return;
  }
  if (message.type === 'handover:state') {
    if (mode === 'fail-after-state') say({ type: 'handover:failed', error: 'the state directory could not be opened' });
    else if (mode === 'exit-after-state') process.exit(4);
    else if (mode === 'serve') say({ type: 'handover:serving' });
    return;
  }
  if (message.type === 'ready' && mode === 'serve') control({ type: 'hello', protocol: PROTOCOL_VERSION, dataPlaneId, reportIntervalMs: 100 });
});

createInterface({ input: process.stdin }).on('line', (line) => {
  const [word, arg] = line.split(' ');
  if (word === 'want-state') say({ type: 'handover:want-state' });
  else if (word === 'apply-no-listeners') control({ type: 'apply', seq: ++seq, snapshot: { version: 2, listeners: [], targetGroups: [] } });
  else if (word === 'close') control({ type: 'close', seq: ++seq, deadlineMs: Number(arg) });
  else if (word === 'exit') process.exit(Number(arg));
});

process.on('disconnect', () => {
  for (const server of servers) server.close();
  process.exit(0);
});
report({ event: 'up', pid: process.pid });
