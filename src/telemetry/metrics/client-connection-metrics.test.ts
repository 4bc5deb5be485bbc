/**
 * ELB's client-connection metrics from `ebb:connection:*` messages of several processes, as ebb's own
 * process gets them from its data-plane workers and from the ebb retiring at a hot restart; read back
 * from the exposition. ebb-metrics.test.ts has the messages of this process's own listeners.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import type { ConnectionMessage } from '../../dataplane/channels.ts';
import { Scrape } from '../../../test/integration/metrics-scrape.ts';
import { ClientConnectionMetrics } from './client-connection-metrics.ts';

const P = 'arn:aws:elasticloadbalancing:us-east-1:123456789012';
const ALB = 'app/web/1111111111111111';
const HTTP_LISTENER = `${P}:listener/${ALB}/aaaaaaaaaaaaaaaa`;
const HTTPS_LISTENER = `${P}:listener/${ALB}/bbbbbbbbbbbbbbbb`;
const NLB = 'net/db/2222222222222222';
const TCP_LISTENER = `${P}:listener/${NLB}/cccccccccccccccc`;
const CLASSIC = 'legacy';
const CLASSIC_TCP_LISTENER = `${P}:listener/${CLASSIC}/dddddddddddddddd`;

function setup(): {
  metrics: ClientConnectionMetrics;
  loadBalancers: Set<string>;
  scrape: () => Promise<Scrape>;
} {
  const registry = new Registry();
  const loadBalancers = new Set([ALB, NLB, CLASSIC]);
  const metrics: ClientConnectionMetrics = new ClientConnectionMetrics({ registers: [registry], beforeRead: () => metrics.prune(loadBalancers) });
  return { metrics, loadBalancers, scrape: async () => new Scrape(await registry.metrics()) };
}

const message = (pid: number, listenerArn: string, open: number): ConnectionMessage => ({ pid, listenerArn, listenerPort: 8080, open });
const lb = (load_balancer: string): { load_balancer: string } => ({ load_balancer });

test("every process's connections in one count per load balancer, each process's as it last stated it", async () => {
  const { metrics, scrape } = setup();
  metrics.opened(message(101, HTTP_LISTENER, 1));
  metrics.opened(message(101, HTTP_LISTENER, 2));
  metrics.opened(message(102, HTTP_LISTENER, 1));
  metrics.opened(message(102, HTTPS_LISTENER, 1));
  let s = await scrape();
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 4);
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 4, 'two listeners of two processes, one load balancer');

  metrics.stated(message(101, HTTP_LISTENER, 1));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 3);
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 4);

  // Messages of 102 lost on the way (its link was full): its next one says where it stands.
  metrics.opened(message(102, HTTP_LISTENER, 6));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1 + 6 + 1);
  // A close whose open was never seen here (accepted before this process listened) cannot go below 0.
  metrics.stated(message(101, HTTPS_LISTENER, 0));
  for (const open of [5, 4, 3, 2, 1, 0]) metrics.stated(message(102, HTTP_LISTENER, open));
  metrics.stated(message(102, HTTPS_LISTENER, 0));
  metrics.stated(message(101, HTTP_LISTENER, 0));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 0);
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 5);
});

test("the counts a process states when it begins to report (the ebb retiring at a hot restart) are open connections, not new ones", async () => {
  const { metrics, scrape } = setup();
  metrics.opened(message(201, HTTP_LISTENER, 1));
  metrics.stated(message(202, HTTP_LISTENER, 5));
  metrics.stated(message(202, HTTPS_LISTENER, 2));
  let s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1 + 5 + 2);
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 1, "only the one accepted while reporting here; the others were its own process's");
  metrics.stated(message(202, HTTP_LISTENER, 4));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1 + 4 + 2);
});

test('a process that is gone takes its connections with it: `lost` forgets its counts, and the other processes\' stay', async () => {
  const { metrics, scrape } = setup();
  metrics.opened(message(301, HTTP_LISTENER, 1));
  metrics.opened(message(301, HTTP_LISTENER, 2));
  metrics.opened(message(301, HTTPS_LISTENER, 1));
  metrics.opened(message(302, HTTP_LISTENER, 1));
  let s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 4);

  metrics.lost({ pid: 301 });
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1, "301's three are gone from both listeners, 302's one stays");
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 4, 'accepted they were');
  metrics.lost({ pid: 303 });
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1, 'a process that held none changes nothing');

  // A process given the pid later counts from its own messages, none of the gone one's.
  metrics.opened(message(301, HTTP_LISTENER, 1));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 2);
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 5);
});

test("an NLB's connections are flows, not counted here; its refusals are, and a Classic load balancer's TCP connections too", async () => {
  const { metrics, scrape } = setup();
  metrics.opened(message(101, TCP_LISTENER, 1));
  metrics.refused({ pid: 101, listenerArn: TCP_LISTENER, listenerPort: 5432 });
  metrics.opened(message(101, CLASSIC_TCP_LISTENER, 1));
  metrics.refused({ pid: 101, listenerArn: HTTP_LISTENER, listenerPort: 8080 });
  metrics.refused({ pid: 102, listenerArn: HTTP_LISTENER, listenerPort: 8080 });
  const s = await scrape();
  assert.equal(s.value('ebb_new_connection_count', lb(NLB)), undefined);
  assert.equal(s.value('ebb_active_connection_count', lb(NLB)), undefined);
  assert.equal(s.value('ebb_rejected_connection_count', lb(NLB)), 1);
  assert.equal(s.value('ebb_new_connection_count', lb(CLASSIC)), 1);
  assert.equal(s.value('ebb_active_connection_count', lb(CLASSIC)), 1);
  assert.equal(s.value('ebb_rejected_connection_count', lb(ALB)), 2, "two processes' refusals");
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 0, 'every ALB and Classic load balancer is written, 0 when idle');
});

test('a load balancer deleted: its series and its open connections go; one made again under the name counts from 0', async () => {
  const { metrics, loadBalancers, scrape } = setup();
  metrics.opened(message(101, HTTP_LISTENER, 1));
  metrics.refused({ pid: 101, listenerArn: HTTP_LISTENER, listenerPort: 8080 });
  let s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1);
  loadBalancers.delete(ALB);
  s = await scrape();
  for (const name of ['ebb_new_connection_count', 'ebb_active_connection_count', 'ebb_rejected_connection_count']) assert.equal(s.value(name, lb(ALB)), undefined, name);
  loadBalancers.add(ALB);
  metrics.opened(message(101, HTTPS_LISTENER, 1));
  s = await scrape();
  assert.equal(s.value('ebb_active_connection_count', lb(ALB)), 1, "the deleted one's connection is not counted again");
  assert.equal(s.value('ebb_new_connection_count', lb(ALB)), 1);
  assert.equal(s.value('ebb_rejected_connection_count', lb(ALB)), undefined);
});
