/**
 * The ebb side: `ebb serve` with examples/deploy/ebb.yaml (its listener moved to a free port, the
 * admin API on a free port, a fresh state directory), then everything else through the real aws
 * CLI, as the example's README does it: a launch template whose UserData starts app.mjs at version
 * 1, a group of three registered in the target group, a version 2 of the template, and an instance
 * refresh (launch before terminate: MinHealthyPercentage 100, MaxHealthyPercentage 200) polled until
 * it succeeds. The load goes through ebb's listener.
 *
 * Teardown deletes the group with --force-delete and waits until it is gone, then stops ebb, and
 * checks by pid that no instance process is left.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import YAML from 'yaml';
import { MARKER_ENV, type DeployHalf, type DeployOutcome, type HalfSettings, type Teardown } from './half.ts';
import { freePort, ProcessWatch, run, shown, sleep, waitFor } from './processes.ts';

const GROUP = 'deploy-app';
const TEMPLATE = 'deploy-app';
const TARGET_GROUP = 'deploy-app';
/** Seconds a new instance warms up after it is healthy before the refresh counts it (and goes on). */
export const INSTANCE_WARMUP = 5;

/** The launch template's UserData for a version: a shell script that execs the app, base64 as EC2 takes it. */
export function userData(app: string, version: number, delayMs: number): string {
  const script = `#!/bin/sh\n# version ${version} of the deploy example's app\nAPP_VERSION=${version} APP_DELAY_MS=${delayMs} exec ${process.execPath} ${app}\n`;
  return Buffer.from(script).toString('base64');
}

interface TargetHealthOutput {
  TargetHealthDescriptions: Array<{ Target: { Id: string; Port: number }; TargetHealth: { State: string } }>;
}
interface RefreshesOutput {
  InstanceRefreshes: Array<{ InstanceRefreshId: string; Status: string; StatusReason?: string; PercentageComplete?: number; StartTime?: string; EndTime?: string }>;
}
interface GroupsOutput {
  AutoScalingGroups: Array<{ Instances?: Array<{ InstanceId: string; LifecycleState: string; LaunchTemplate?: { Version?: string } }> }>;
}

export function ebbHalf(settings: HalfSettings): DeployHalf {
  const stateDir = path.join(settings.dir, 'state');
  const configFile = path.join(settings.dir, 'ebb.yaml');
  const logFile = path.join(settings.dir, 'ebb.log');
  const app = path.join(settings.root, 'examples/deploy/app.mjs');
  let ebb: ChildProcess | null = null;
  let exited: Promise<number | null> = Promise.resolve(null);
  let endpoint = '';
  let awsEnv: NodeJS.ProcessEnv = {};
  let groupCreated = false;
  let watch: ProcessWatch | null = null;

  /** One aws CLI call against ebb, its JSON answer; a failure names the command and what it printed. */
  const aws = async <T>(args: readonly string[]): Promise<T> => {
    const full = ['--endpoint-url', endpoint, '--output', 'json', ...args];
    const result = await run('aws', full, { env: awsEnv, timeoutMs: 30_000 });
    if (result.code !== 0) throw new Error(`${shown('aws', full)} exited ${result.code}:\n${result.stderr.trim()}`);
    return (result.stdout.trim() === '' ? {} : JSON.parse(result.stdout)) as T;
  };

  const healthyTargets = async (arn: string): Promise<number> => {
    const out = await aws<TargetHealthOutput>(['elbv2', 'describe-target-health', '--target-group-arn', arn]);
    return out.TargetHealthDescriptions.filter((d) => d.TargetHealth.State === 'healthy').length;
  };

  const ebbLog = (): string => {
    try {
      return fs.readFileSync(logFile, 'utf8').split('\n').slice(-30).join('\n');
    } catch {
      return '';
    }
  };

  return {
    tool: 'ebb',
    traffic: "clients connect to ebb's listener; ebb routes each request to a healthy instance that is not draining",

    async setup(): Promise<string> {
      const version = await run('aws', ['--version'], { timeoutMs: 30_000 });
      if (version.code !== 0) throw new Error(`the aws CLI does not run (${version.stderr.trim()}): install it (pip install awscli, or AWS CLI v2) and put it on PATH`);
      const port = await freePort();
      const config = YAML.parse(fs.readFileSync(path.join(settings.root, 'examples/deploy/ebb.yaml'), 'utf8'));
      config.loadBalancers[0].listeners[0].port = port;
      fs.writeFileSync(configFile, YAML.stringify(config));
      fs.mkdirSync(stateDir, { recursive: true });
      // The marker is in ebb's environment, and so in every instance's (ebb adds PORT, EBB_INSTANCE_ID
      // and EBB_GROUP to its own): how the end check finds every instance it started.
      watch = new ProcessWatch(MARKER_ENV, settings.marker);
      const out = fs.openSync(logFile, 'a');
      const args = ['--import', 'tsx', 'src/main/cli.ts', 'serve', '--workers', '1', '--config', configFile, '--state-dir', stateDir, '--admin', '127.0.0.1:0'];
      settings.log(`ebb serve --config ${configFile} --state-dir ${stateDir} --admin 127.0.0.1:0 (log: ${logFile})`);
      const child = spawn(process.execPath, args, {
        cwd: settings.root,
        env: { ...process.env, [MARKER_ENV]: settings.marker },
        stdio: ['ignore', out, out],
      });
      fs.closeSync(out);
      ebb = child;
      exited = new Promise((resolve) => child.once('exit', (code) => resolve(code)));
      void exited.then((code) => (ebb === child ? settings.log(`ebb serve exited (${code})`) : undefined));

      endpoint = await waitFor('ebb serve to write its admin endpoint', settings.phaseMs, () => {
        if (child.exitCode !== null) throw new Error(`ebb serve exited ${child.exitCode}:\n${ebbLog()}`);
        const file = path.join(stateDir, 'admin-endpoint');
        return fs.existsSync(file) && fs.existsSync(path.join(stateDir, 'credentials')) ? fs.readFileSync(file, 'utf8').trim() : undefined;
      });
      awsEnv = {
        ...process.env,
        AWS_SHARED_CREDENTIALS_FILE: path.join(stateDir, 'credentials'),
        AWS_PROFILE: 'ebb',
        AWS_CONFIG_FILE: path.join(settings.dir, 'aws-config-none'),
        AWS_DEFAULT_REGION: 'us-east-1',
        AWS_PAGER: '',
        AWS_MAX_ATTEMPTS: '1',
      };
      settings.log(`ebb: admin endpoint ${endpoint}, listener 127.0.0.1:${port}`);

      await aws([
        'ec2', 'create-launch-template', '--launch-template-name', TEMPLATE, '--version-description', 'version 1',
        '--launch-template-data', JSON.stringify({ UserData: userData(app, 1, settings.delayMs) }),
      ]);
      const tgs = await aws<{ TargetGroups: Array<{ TargetGroupArn: string }> }>(['elbv2', 'describe-target-groups', '--names', TARGET_GROUP]);
      const arn = tgs.TargetGroups[0]?.TargetGroupArn;
      if (arn === undefined) throw new Error(`describe-target-groups --names ${TARGET_GROUP} found no target group`);
      await aws([
        'autoscaling', 'create-auto-scaling-group', '--auto-scaling-group-name', GROUP,
        '--launch-template', `LaunchTemplateName=${TEMPLATE},Version=$Latest`,
        '--min-size', String(settings.instances), '--max-size', String(settings.instances * 2), '--desired-capacity', String(settings.instances),
        '--target-group-arns', arn, '--health-check-type', 'ELB', '--health-check-grace-period', '30',
      ]);
      groupCreated = true;
      settings.log(`ebb: group ${GROUP} created, waiting for ${settings.instances} healthy targets`);
      await waitFor(`${settings.instances} healthy targets in ${TARGET_GROUP}`, settings.phaseMs, async () =>
        (await healthyTargets(arn)) >= settings.instances ? true : undefined,
      );
      return `http://127.0.0.1:${port}/`;
    },

    async deploy(version: number): Promise<DeployOutcome> {
      const t0 = performance.now();
      // Template version N runs app version N: the template was made at 1, and each deploy adds the next.
      await aws([
        'ec2', 'create-launch-template-version', '--launch-template-name', TEMPLATE, '--source-version', '1',
        '--version-description', `version ${version}`, '--launch-template-data', JSON.stringify({ UserData: userData(app, version, settings.delayMs) }),
      ]);
      const started = await aws<{ InstanceRefreshId: string }>([
        'autoscaling', 'start-instance-refresh', '--auto-scaling-group-name', GROUP,
        '--preferences', JSON.stringify({ MinHealthyPercentage: 100, MaxHealthyPercentage: 200, InstanceWarmup: INSTANCE_WARMUP }),
      ]);
      const id = started.InstanceRefreshId;
      let last = '';
      const refresh = await waitFor(`instance refresh ${id} to end`, settings.phaseMs, async () => {
        const out = await aws<RefreshesOutput>(['autoscaling', 'describe-instance-refreshes', '--auto-scaling-group-name', GROUP, '--instance-refresh-ids', id]);
        const r = out.InstanceRefreshes[0];
        if (r === undefined) throw new Error(`describe-instance-refreshes does not list refresh ${id}`);
        const now = `${r.Status} ${r.PercentageComplete ?? '?'} %`;
        if (now !== last) settings.log(`ebb: refresh ${now}${r.StatusReason === undefined ? '' : ` (${r.StatusReason})`}`);
        last = now;
        if (['Pending', 'InProgress'].includes(r.Status)) return undefined;
        if (r.Status !== 'Successful') throw new Error(`instance refresh ${id} ended ${r.Status}: ${r.StatusReason ?? '(no reason given)'}`);
        return r;
        // Each aws CLI call is a Python process on the machine that also runs the load, ebb and the
        // instances: polled once a second rather than back to back, so the polling weighs little on
        // the latencies measured meanwhile.
      }, 1000);
      const seconds = (performance.now() - t0) / 1000;
      const groups = await aws<GroupsOutput>(['autoscaling', 'describe-auto-scaling-groups', '--auto-scaling-group-names', GROUP]);
      const instances = groups.AutoScalingGroups[0]?.Instances ?? [];
      const inService = instances.filter((i) => i.LifecycleState === 'InService');
      if (inService.length !== settings.instances || !inService.every((i) => i.LaunchTemplate?.Version === String(version))) {
        throw new Error(`refresh ${id} is Successful, but the group's instances are: ${JSON.stringify(instances)}`);
      }
      const own = refresh.StartTime !== undefined && refresh.EndTime !== undefined ? (Date.parse(refresh.EndTime) - Date.parse(refresh.StartTime)) / 1000 : NaN;
      return {
        seconds,
        ownSeconds: Number.isNaN(own) ? seconds : own,
        detail:
          `refresh ${id} Successful ${refresh.PercentageComplete ?? '?'} % after ${seconds.toFixed(1)} s` +
          `${Number.isNaN(own) ? '' : ` (its own StartTime to EndTime: ${own.toFixed(1)} s)`}; ` +
          `instances: ${instances.map((i) => `${i.InstanceId} ${i.LifecycleState} v${i.LaunchTemplate?.Version ?? '?'}`).join(', ')}`,
      };
    },

    async teardown(): Promise<Teardown> {
      const notes: string[] = [];
      if (groupCreated) {
        try {
          await aws(['autoscaling', 'delete-auto-scaling-group', '--auto-scaling-group-name', GROUP, '--force-delete']);
          await waitFor(`group ${GROUP} to be deleted`, settings.phaseMs, async () => {
            const out = await aws<GroupsOutput>(['autoscaling', 'describe-auto-scaling-groups', '--auto-scaling-group-names', GROUP]);
            return out.AutoScalingGroups.length === 0 ? true : undefined;
          });
          notes.push(`group ${GROUP} force-deleted`);
        } catch (e) {
          notes.push(`deleting group ${GROUP} failed: ${(e as Error).message}`);
        }
      }
      const child = ebb;
      if (child !== null && child.exitCode === null && child.signalCode === null) {
        child.kill('SIGTERM');
        const code = await Promise.race([exited, sleep(35_000).then(() => 'timeout' as const)]);
        if (code === 'timeout') {
          notes.push('ebb serve did not exit within 35 s of SIGTERM: killed');
          child.kill('SIGKILL');
          await exited;
        } else notes.push(`ebb serve stopped (exit ${code})`);
      }
      ebb = null;
      notes.push(instanceExits(path.join(stateDir, 'instances')));
      const still = watch?.stop() ?? [];
      const leftovers = still.map((pid) => `${pid} ${watch?.seen.get(pid) ?? ''}`);
      // Nothing of this run may outlive it: what ebb left running is reported, then stopped here.
      for (const pid of still) {
        try {
          process.kill(-pid, 'SIGKILL');
        } catch {
          try {
            process.kill(pid, 'SIGKILL');
          } catch {
            // gone meanwhile
          }
        }
      }
      const seen = watch?.seen.size ?? 0;
      notes.push(`${watch?.count('app.mjs') ?? 0} instance pids seen during the run, ${still.length} processes still running at the end`);
      if (leftovers.length > 0) notes.push(`ebb log tail:\n${ebbLog()}`);
      return { leftovers, seen, detail: notes.join('; ') };
    },
  };
}

/** How the instances ended, from their own output (app.mjs logs the signal, then `exit 0` once its connections are closed). */
function instanceExits(dir: string): string {
  let ids: string[];
  try {
    ids = fs.readdirSync(dir);
  } catch {
    return 'no instance output to read';
  }
  let graceful = 0;
  for (const id of ids) {
    try {
      const text = fs.readFileSync(path.join(dir, id, 'output.log'), 'utf8');
      if (/: SIGTERM: /.test(text) && /exit 0$/m.test(text)) graceful++;
    } catch {
      // no output file
    }
  }
  return `instance output: ${graceful} of ${ids.length} logged SIGTERM, then exit 0 with every connection closed`;
}
