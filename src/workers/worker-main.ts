/**
 * A data-plane worker's process (docs/workers.md): started by `ebb serve --workers N` through
 * `node:cluster`, never by hand. One `HttpDataPlane` whose listeners share their ports with the other
 * workers (listen-mode.ts), driven over the IPC channel by the control plane in ebb's own process.
 *
 * Never left running on its own: when the channel closes (ebb exited, or was killed), node:cluster
 * exits the worker at once (its handler for an unexpected disconnect runs first); the agent's own
 * path for a closed link (listeners closed, in flight given a deadline) serves links that are not a
 * cluster worker's.
 * SIGINT is ebb's to act on (a terminal's Ctrl-C reaches every process of the group): ignored here.
 * SIGTERM stops the worker gracefully; when the whole group was signalled ebb's own `close`, with its
 * shutdown timeout, comes first, so the worker waits a moment for it before closing on its own.
 */
import { HttpDataPlane } from '../dataplane/http-data-plane.ts';
import { workerListenMode } from '../dataplane/listen-mode.ts';
import { realClock } from '../shared/clock.ts';
import { parentLink } from './link.ts';
import { WorkerAgent } from './worker-agent.ts';

/** A SIGTERM that ebb did not follow with a `close`: the deadline the worker gives itself (ebb's default shutdown timeout). */
const OWN_DEADLINE_MS = 30_000;
/** How long a SIGTERM waits for ebb's `close`. */
const CLOSE_WAIT_MS = 500;
/** After the agent is done: the longest the process waits for the event loop to empty before it exits anyway. */
const EXIT_GRACE_MS = 2000;

const link = parentLink();
const listenMode = workerListenMode();
const writeLocal = (line: object): void => {
  process.stderr.write(`${JSON.stringify({ time: new Date().toISOString(), worker: process.pid, ...line })}\n`);
};

const agent = new WorkerAgent({
  link,
  clock: realClock,
  createDataPlane: (id, log, inherited) => new HttpDataPlane({ id, log, listenMode, inheritedSockets: inherited }),
  localLog: writeLocal,
  onExit: (code) => {
    // The link lets the last answers out before the channel goes; then nothing should hold the process.
    link.close();
    process.exitCode = code;
    setTimeout(() => process.exit(code), EXIT_GRACE_MS).unref();
  },
});

process.on('SIGINT', () => {});
process.on('SIGTERM', () => {
  setTimeout(() => void agent.stop(OWN_DEADLINE_MS), CLOSE_WAIT_MS);
});
