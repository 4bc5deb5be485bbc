import type { AdminClient } from './admin-client.ts';
import { duration, isTerminal, printJson, table, type CliIo } from './output.ts';
import type { DrainRecordsAnswer, DrainsAnswer } from './wire.ts';

/** `ebb drains [--group G] [--outcome O] [--limit N] [--json]`: drains in progress, then the records of finished ones. */
export async function drains(client: AdminClient, io: CliIo, o: { group?: string | undefined; outcome?: string | undefined; limit: number; json: boolean }): Promise<void> {
  const [now, past] = await Promise.all([
    client.getJson<DrainsAnswer>('drains', { targetGroup: o.group }),
    client.getJson<DrainRecordsAnswer>('drain-records', { targetGroup: o.group, outcome: o.outcome, limit: o.limit }),
  ]);
  if (o.json) {
    printJson(io, { at: now.at, drains: now.drains, records: past.records, limit: past.limit });
    return;
  }
  const title = (text: string): string => (isTerminal(io) ? `${text}\n` : '');
  const parts: string[] = [];
  parts.push(
    now.drains.length === 0
      ? 'No drains in progress.'
      : `${title('Draining now')}${table(
          io,
          ['TARGET GROUP', 'TARGET', 'IN FLIGHT', 'TUNNELS', 'ELAPSED', 'TIME LEFT', 'DELAY'],
          now.drains.map((d) => [d.targetGroupName, d.target, d.requestsInFlight, d.tunnelsOpen, duration(d.elapsedMs), duration(d.timeLeftMs), `${d.timeoutSeconds} s`]),
        )}`,
  );
  parts.push(
    past.records.length === 0
      ? 'No drain records.'
      : `${title('Finished drains, newest first')}${table(
          io,
          ['TARGET GROUP', 'TARGET', 'OUTCOME', 'ENDED', 'DURATION', 'DELAY', 'COMPLETED', 'CUT', 'TUNNELS CLOSED'],
          past.records.map((r) => [
            r.targetGroupName === '' ? r.targetGroupArn : r.targetGroupName,
            r.target,
            r.outcome,
            r.endedAt,
            duration(r.durationMs),
            `${r.timeoutSeconds} s`,
            r.requestsCompleted,
            r.requestsCut,
            r.tunnelsClosed,
          ]),
        )}`,
  );
  io.stdout.write(`${parts.join('\n\n')}\n`);
}
