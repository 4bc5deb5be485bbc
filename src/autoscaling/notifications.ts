/**
 * Delivers lifecycle notifications where AWS would publish to SNS or SQS: a POST of the JSON message
 * to an `http://` URL, or the message on the stdin of a command declared in the configuration file.
 * Delivery never holds up Auto Scaling: it is queued (bounded), tried a few times with a pause, and
 * what could not be delivered is logged. A handler that misses a message can still poll
 * DescribeAutoScalingInstances, as on AWS.
 */
import { spawn } from 'node:child_process';
import { request } from 'node:http';

const MAX_QUEUED = 256;
const ATTEMPTS = 3;
const TIMEOUT_MS = 5000;

export interface Notification {
  readonly url?: string;
  readonly command?: readonly string[];
  readonly message: Record<string, string>;
}

export class Notifier {
  readonly #log: (entry: Record<string, unknown>) => void;
  #inFlight = 0;
  #closed = false;

  constructor(log: (entry: Record<string, unknown>) => void) {
    this.#log = log;
  }

  send(n: Notification): void {
    if (this.#closed) return;
    if (this.#inFlight >= MAX_QUEUED) {
      this.#log({ event: 'autoscaling:notification-dropped', level: 'warn', reason: `more than ${MAX_QUEUED} notifications undelivered`, message: n.message });
      return;
    }
    this.#inFlight++;
    void this.#deliver(n).finally(() => this.#inFlight--);
  }

  close(): void {
    this.#closed = true;
  }

  async #deliver(n: Notification): Promise<void> {
    const body = JSON.stringify(n.message);
    for (let attempt = 1; attempt <= ATTEMPTS; attempt++) {
      try {
        if (n.url !== undefined) await post(n.url, body);
        if (n.command !== undefined) await pipeTo(n.command, body);
        return;
      } catch (error) {
        const last = attempt === ATTEMPTS || this.#closed;
        this.#log({
          event: 'autoscaling:notification-failed',
          level: last ? 'warn' : 'info',
          target: n.url ?? n.command?.join(' '),
          attempt,
          error: (error as Error).message,
          ...(last ? { hint: 'the lifecycle action still waits for CompleteLifecycleAction or its timeout' } : {}),
        });
        if (last) return;
        await new Promise((r) => setTimeout(r, 500 * attempt).unref());
      }
    }
  }
}

function post(url: string, body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const req = request(url, { method: 'POST', headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) }, timeout: TIMEOUT_MS }, (res) => {
      res.resume();
      res.on('end', () => ((res.statusCode ?? 500) < 300 ? resolve() : reject(new Error(`${url} answered ${res.statusCode}`))));
    });
    req.on('timeout', () => req.destroy(new Error(`${url} did not answer within ${TIMEOUT_MS} ms`)));
    req.on('error', reject);
    req.end(body);
  });
}

function pipeTo(argv: readonly string[], body: string): Promise<void> {
  return new Promise((resolve, reject) => {
    const [command, ...args] = argv;
    if (command === undefined) return reject(new Error('the notification command is empty'));
    const child = spawn(command, args, { stdio: ['pipe', 'ignore', 'ignore'] });
    const timer = setTimeout(() => child.kill('SIGKILL'), TIMEOUT_MS);
    child.on('error', (e) => {
      clearTimeout(timer);
      reject(e);
    });
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      if (code === 0) resolve();
      else reject(new Error(`${command} exited with ${code ?? signal}`));
    });
    child.stdin.on('error', () => undefined);
    child.stdin.end(body);
  });
}
