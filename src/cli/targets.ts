import type { AdminClient } from './admin-client.ts';
import { followDrains } from './drain-view.ts';
import { CliError, EXIT, type ExitCode } from './exit-codes.ts';
import { duration, plural, printJson, type CliIo } from './output.ts';
import { waitUntil } from './waits.ts';
import type { ChangeAnswer, TargetView, WaitAnswer } from './wire.ts';

function describeTarget(t: TargetView): string {
  const reason = t.reason === null ? '' : ` (${t.reason})`;
  const work = t.requestsInFlight + t.tunnelsOpen > 0 ? `, ${plural(t.requestsInFlight, 'request')} in flight, ${plural(t.tunnelsOpen, 'tunnel')}` : '';
  const drain = t.drain === null ? '' : `, deadline in ${duration(t.drain.timeLeftMs)}`;
  return `${t.state}${reason}${work}${drain}`;
}

/** The exit code for how drains ended: 0 when every one ended idle (or there was none). */
function drainExit(answers: readonly WaitAnswer[]): ExitCode {
  if (answers.some((a) => a.outcome === 'timeout')) return EXIT.timeout;
  return answers.some((a) => a.drain !== null && a.drain.outcome !== 'idle') ? EXIT.drainCut : EXIT.ok;
}

/** `ebb register GROUP TARGET...`. */
export async function register(client: AdminClient, io: CliIo, group: string, targets: readonly string[], json: boolean): Promise<ExitCode> {
  const answer = await client.postJson<ChangeAnswer>('register', { targetGroup: group, targets });
  if (json) printJson(io, answer);
  else for (const t of answer.targets) io.stdout.write(`registered ${answer.targetGroupName} ${t.target}: ${describeTarget(t)}\n`);
  return EXIT.ok;
}

/**
 * `ebb deregister GROUP TARGET... [--timeout S] [--wait]`. With --wait, follows each drain live and
 * exits 0 when all ended idle, 1 when a deadline cut work or a drain was cancelled.
 */
export async function deregister(
  client: AdminClient,
  io: CliIo,
  o: { group: string; targets: readonly string[]; timeoutSeconds: number | undefined; wait: boolean; json: boolean },
): Promise<ExitCode> {
  const answer = await client.postJson<ChangeAnswer>('deregister', {
    targetGroup: o.group,
    targets: o.targets,
    ...(o.timeoutSeconds !== undefined && { timeoutSeconds: o.timeoutSeconds }),
  });
  if (!o.json) {
    const delay = answer.timeoutSeconds === undefined ? '' : ` (delay ${answer.timeoutSeconds} s)`;
    for (const t of answer.targets) io.stdout.write(`deregistered ${answer.targetGroupName} ${t.target}${delay}: ${describeTarget(t)}\n`);
  }
  if (!o.wait) {
    if (o.json) printJson(io, answer);
    return EXIT.ok;
  }
  const waits = await followDrains(
    client,
    io,
    answer.targets.map((t) => ({
      groupArn: answer.targetGroupArn,
      groupName: answer.targetGroupName,
      target: t.target,
      ...(answer.timeoutSeconds !== undefined && { timeoutSeconds: answer.timeoutSeconds }),
    })),
    { quiet: o.json },
  );
  if (o.json) printJson(io, { ...answer, waits });
  return drainExit(waits);
}

/**
 * `ebb wait-drained GROUP TARGET [--timeout S]`: at once when the target is not registered (0 if its
 * last drain ended idle, 1 if the deadline cut work), follows the drain while it drains, and exits 4
 * when it is registered and not draining.
 */
export async function waitDrained(client: AdminClient, io: CliIo, o: { group: string; target: string; timeoutSeconds: number | undefined; json: boolean }): Promise<ExitCode> {
  const [answer] = await followDrains(client, io, [{ groupArn: o.group, groupName: o.group, target: o.target }], { quiet: o.json, timeoutSeconds: o.timeoutSeconds });
  if (answer === undefined) throw new Error('a wait answered nothing');
  if (o.json) printJson(io, answer);
  if (answer.outcome === 'not-draining') {
    io.stderr.write(
      `ebb: ${o.group} ${answer.target.target} is registered (${answer.target.state}) and not draining, so there is no drain to wait for. ` +
        `Deregister it first: ebb deregister ${o.group} ${answer.target.target} --wait\n`,
    );
    return EXIT.notDraining;
  }
  return drainExit([answer]);
}

/** `ebb wait-not-routed GROUP TARGET [--timeout S]`. */
export async function waitNotRouted(client: AdminClient, io: CliIo, o: { group: string; target: string; timeoutSeconds: number | undefined; json: boolean }): Promise<ExitCode> {
  const answer = await Promise.race([waitUntil(client, 'not-routed', o.group, o.target, o.timeoutSeconds), interrupted(io.signal)]);
  if (o.json) printJson(io, answer);
  else if (answer.outcome === 'not-routed') {
    io.stdout.write(
      `not-routed ${answer.target.targetGroupName} ${answer.target.target}: no data plane routes new requests to it (routing snapshot ${answer.snapshot.appliedVersion} applied everywhere); ${answer.target.state}, ${plural(answer.target.requestsInFlight, 'request')} in flight\n`,
    );
  } else {
    io.stdout.write(`timeout ${answer.target.targetGroupName} ${answer.target.target}: still routed after ${duration(answer.waitedMs)} (${answer.target.state})\n`);
  }
  return answer.outcome === 'not-routed' ? EXIT.ok : EXIT.timeout;
}

function interrupted(signal: AbortSignal | undefined): Promise<never> {
  return new Promise((_, reject) => {
    const stop = (): void => reject(new CliError(EXIT.interrupted, 'Interrupted', 'Stopped waiting.'));
    if (signal?.aborted === true) stop();
    signal?.addEventListener('abort', stop, { once: true });
  });
}
