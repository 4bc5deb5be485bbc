/**
 * What the RemoteDataPlane tests share: a plane with a recording log and idle listener, and the
 * worker's end of a memory link scripted by the test.
 */
import assert from 'node:assert/strict';
import { FakeClock } from '../fakes/fake-clock.ts';
import type { ListenerSettings, RoutingSnapshot } from '../../src/domain/routing-snapshot.ts';
import { memoryLinkPair, type Link } from '../../src/workers/link.ts';
import { decodeToWorker, type ToWorker, type WireActivity } from '../../src/workers/protocol.ts';
import { RemoteDataPlane } from '../../src/workers/remote-data-plane.ts';

/** Lets the memory link deliver what was sent (each hop is one turn of the event loop). */
export async function turns(n = 3): Promise<void> {
  for (let i = 0; i < n; i++) await new Promise((resolve) => setImmediate(resolve));
}

export function snapshot(version: number): RoutingSnapshot {
  return { version, listeners: [], targetGroups: new Map() };
}

export function wire(key: string, counts: Partial<Omit<WireActivity, 'key'>> = {}): WireActivity {
  return { key, requests: 0, tunnels: 0, completed: 0, connections: 0, ...counts };
}

/** The worker's end of the link, scripted by the test: what it received, and what it says. */
export class ScriptedWorker {
  readonly received: ToWorker[] = [];
  closedReason: string | null = null;
  readonly link: Link;

  constructor(link: Link) {
    this.link = link;
    link.onMessage((m) => this.received.push(decodeToWorker(m)));
    link.onClose((reason) => {
      this.closedReason = reason;
    });
  }

  last<T extends ToWorker['type']>(type: T): Extract<ToWorker, { type: T }> {
    const found = this.received.filter((m) => m.type === type).at(-1);
    assert.ok(found !== undefined, `the worker received no '${type}'; it received ${this.received.map((m) => m.type).join(', ')}`);
    return found as Extract<ToWorker, { type: T }>;
  }

  say(message: object): void {
    assert.equal(this.link.send(message), true);
  }

  applied(seq: number, activity: WireActivity[] = [], listenerErrors: unknown[] = []): void {
    this.say({ type: 'applied', seq, version: 1, listenerErrors, activity });
  }

  /** Answers the last `apply` it received. */
  appliedLast(activity: WireActivity[] = []): void {
    const apply = this.last('apply');
    this.say({ type: 'applied', seq: apply.seq, version: apply.snapshot.version, listenerErrors: [], activity });
  }

  activity(...activity: WireActivity[]): void {
    this.say({ type: 'activity', activity });
  }
}

/** Listener settings as a snapshot carries them, for tests that need a listener route. */
export const LISTENER_SETTINGS: ListenerSettings = {
  idleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 10_000,
  targetConnectTimeoutMs: 1_000,
  targetResponseTimeoutMs: 10_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 100,
  xffMode: 'append',
  desyncMode: 'defensive',
  http2: true,
  tcpIdleTimeoutMs: 350_000,
};

export function setup(options: { answerTimeoutMs?: number; maxUnsent?: number } = {}) {
  const clock = new FakeClock();
  const logs: Array<Record<string, unknown>> = [];
  const plane = new RemoteDataPlane({ id: 'dp-1', clock, log: (e) => logs.push(e), reportIntervalMs: 50, ...(options.answerTimeoutMs === undefined ? {} : { answerTimeoutMs: options.answerTimeoutMs }) });
  const idle: string[] = [];
  plane.onIdle((key) => idle.push(key));
  const connect = (): ScriptedWorker => {
    const [control, worker] = memoryLinkPair(options.maxUnsent === undefined ? {} : { maxUnsent: options.maxUnsent });
    const scripted = new ScriptedWorker(worker);
    void plane.attach(control);
    return scripted;
  };
  return { clock, logs, plane, idle, connect };
}

