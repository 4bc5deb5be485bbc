/**
 * `npm run demo`: ebb in front of two demo backends, with the admin API on 127.0.0.1:9900.
 * Starts the backends (examples/backend.ts on 3001 and 3002), then ebb with examples/demo.yaml and a
 * fresh state dir, prints what to try, and stops everything on Ctrl-C.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { rmSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { startEbb } from '../src/main/ebb.ts';
import { createLog } from '../src/main/logger.ts';

const here = fileURLToPath(new URL('.', import.meta.url));
const accessKeyId = process.env['EBB_ACCESS_KEY_ID'] ?? 'ebbdemo';
const secretAccessKey = process.env['EBB_SECRET_ACCESS_KEY'] ?? 'ebbdemosecret';

function startBackend(port: number, name: string): Promise<ChildProcess> {
  const child = spawn(process.execPath, ['--import', 'tsx', `${here}backend.ts`, String(port), name], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  return new Promise((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`backend ${name} exited (${code}); is port ${port} free?`)));
    child.stdout?.once('data', () => resolve(child));
  });
}

const backends = await Promise.all([startBackend(3001, 'backend-a'), startBackend(3002, 'backend-b')]);
const stateDir = `${here}../.ebb/demo`;
rmSync(stateDir, { recursive: true, force: true });
const ebb = await startEbb({
  configPath: `${here}demo.yaml`,
  stateDir,
  adminAddress: '127.0.0.1:9900',
  env: { ...process.env, EBB_ACCESS_KEY_ID: accessKeyId, EBB_SECRET_ACCESS_KEY: secretAccessKey },
  log: createLog(),
});
const tg = ebb.control.describeTargetGroups({ names: ['demo'] })[0];

process.stdout.write(`
ebb is running: listener http://127.0.0.1:8080 → backends 127.0.0.1:3001 and 127.0.0.1:3002
admin API (AWS Query protocol) on http://127.0.0.1:9900

Try, in another terminal:
  curl http://127.0.0.1:8080/                      # alternates between backend-a and backend-b
  curl 'http://127.0.0.1:8080/slow?ms=20000' &     # a long request...
  export AWS_ACCESS_KEY_ID=${accessKeyId} AWS_SECRET_ACCESS_KEY=${secretAccessKey} AWS_DEFAULT_REGION=us-east-1
  aws --endpoint-url http://127.0.0.1:9900 elbv2 deregister-targets \\
      --target-group-arn ${tg?.arn ?? '(see describe-target-groups)'} --targets Id=127.0.0.1,Port=3001
  aws --endpoint-url http://127.0.0.1:9900 elbv2 describe-target-health --target-group-arn ${tg?.arn ?? ''}
      # → draining while the slow request runs (if it went to 3001), then gone: new requests all reach 3002.
Ctrl-C stops ebb gracefully (in-flight requests finish) and the backends.

`);

let stopping = false;
const stop = async (): Promise<void> => {
  if (stopping) process.exit(1);
  stopping = true;
  await ebb.shutdown();
  for (const b of backends) b.kill('SIGTERM');
  process.exit(0);
};
process.on('SIGINT', () => void stop());
process.on('SIGTERM', () => void stop());
