import { setTimeout as sleep } from 'node:timers/promises';
import { createLogUpdate } from 'log-update';
import type { AdminClient } from './admin-client.ts';
import { duration, isTerminal, printJson, table, type CliIo } from './output.ts';
import type { StatusView, TargetView } from './wire.ts';

/** The drain column: time left against the delay, or `-`. */
export function drainCell(t: TargetView): string {
  if (t.drain === null) return '-';
  return `${duration(t.drain.timeLeftMs)} left of ${t.drain.timeoutSeconds} s`;
}

/** `ebb status` as text: load balancers, target groups, then every target with its work and drain. */
export function renderStatus(io: CliIo, s: StatusView): string {
  const groupName = new Map(s.targetGroups.map((g) => [g.arn, g.name]));
  const lbRows = s.loadBalancers.map((lb) => [
    lb.name,
    lb.type,
    lb.scheme,
    lb.listeners.length === 0
      ? '-'
      : lb.listeners.map((l) => `${l.protocol} ${l.address.includes(':') ? `[${l.address}]` : l.address}:${l.port} → ${l.targetGroupArn === null ? '-' : (groupName.get(l.targetGroupArn) ?? l.targetGroupArn)}`).join(', '),
  ]);
  const groupRows = s.targetGroups.map((g) => {
    const states = new Map<string, number>();
    for (const t of g.targets) states.set(t.state, (states.get(t.state) ?? 0) + 1);
    const summary = [...states].map(([state, n]) => `${n} ${state}`).join(', ');
    return [g.name, `${g.protocol}:${g.port}`, g.targetType, `${g.deregistrationDelaySeconds} s`, summary === '' ? 'none' : summary];
  });
  const targetRows = s.targetGroups.flatMap((g) =>
    g.targets.map((t) => [g.name, t.target, t.state, t.reason ?? '-', t.routed ? 'yes' : 'no', t.requestsInFlight, t.tunnelsOpen, drainCell(t)]),
  );
  const parts: string[] = [];
  const title = (text: string): string => (isTerminal(io) ? `${text}\n` : '');
  parts.push(
    s.loadBalancers.length === 0 ? 'No load balancers.' : `${title('Load balancers')}${table(io, ['LOAD BALANCER', 'TYPE', 'SCHEME', 'LISTENERS'], lbRows)}`,
  );
  parts.push(
    s.targetGroups.length === 0 ? 'No target groups.' : `${title('Target groups')}${table(io, ['TARGET GROUP', 'PROTOCOL:PORT', 'TYPE', 'DELAY', 'TARGETS'], groupRows)}`,
  );
  if (targetRows.length > 0) {
    parts.push(`${title('Targets')}${table(io, ['TARGET GROUP', 'TARGET', 'STATE', 'REASON', 'ROUTED', 'IN FLIGHT', 'TUNNELS', 'DRAIN'], targetRows)}`);
  }
  return `${parts.join('\n\n')}\n`;
}

/**
 * `ebb status [--json] [--watch]`. With --watch: redrawn in place on a terminal (log-update), else
 * a new block (or with --json a JSON line) every interval, until interrupted.
 */
export async function status(client: AdminClient, io: CliIo, o: { json: boolean; watch: boolean; intervalSeconds: number }): Promise<void> {
  const read = (): Promise<StatusView> => client.getJson<StatusView>('status');
  if (!o.watch) {
    const s = await read();
    if (o.json) printJson(io, s);
    else io.stdout.write(renderStatus(io, s));
    return;
  }
  const live = isTerminal(io) && !o.json ? createLogUpdate(io.stdout as unknown as NodeJS.WritableStream, { showCursor: false }) : null;
  try {
    while (io.signal?.aborted !== true) {
      const s = await read();
      if (o.json) printJson(io, s, false);
      else if (live !== null) live(`${renderStatus(io, s)}\n${s.at} · every ${o.intervalSeconds} s · Ctrl-C to stop`);
      else io.stdout.write(`at ${s.at}\n${renderStatus(io, s)}\n`);
      await sleep(o.intervalSeconds * 1000, undefined, io.signal === undefined ? {} : { signal: io.signal }).catch(() => undefined);
    }
  } finally {
    live?.done();
  }
}
