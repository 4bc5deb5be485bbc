import assert from 'node:assert/strict';
import { test } from 'node:test';
import { Registry } from 'prom-client';
import { Scrape } from '../../../test/integration/metrics-scrape.ts';
import { registerWorkerMetrics, type WorkerCounters } from './worker-metrics.ts';

test("the workers' restarts, lost connections and telemetry dropped or refused, as counters read at scrape time", async () => {
  const registry = new Registry();
  const totals: { -readonly [K in keyof WorkerCounters]: number } = { restarts: 0, connectionsLost: 0, telemetryDropped: 0, telemetryRefused: 0 };
  let reads = 0;
  registerWorkerMetrics(registry, () => {
    reads++;
    return totals;
  });
  let s = new Scrape(await registry.metrics());
  for (const name of ['ebb_worker_restarts_total', 'ebb_worker_connections_lost_total', 'ebb_worker_telemetry_dropped_total', 'ebb_worker_telemetry_refused_total']) {
    assert.equal(s.type(name), 'COUNTER', name);
    assert.equal(s.value(name), 0, `${name} is written at 0 before anything happened`);
  }
  assert.ok(reads > 0, 'read when scraped');
  totals.restarts = 2;
  totals.connectionsLost = 7;
  totals.telemetryDropped = 500;
  totals.telemetryRefused = 3;
  s = new Scrape(await registry.metrics());
  assert.equal(s.value('ebb_worker_restarts_total'), 2);
  assert.equal(s.value('ebb_worker_connections_lost_total'), 7);
  assert.equal(s.value('ebb_worker_telemetry_dropped_total'), 500);
  assert.equal(s.value('ebb_worker_telemetry_refused_total'), 3);
  totals.restarts = 3;
  s = new Scrape(await registry.metrics());
  assert.equal(s.value('ebb_worker_restarts_total'), 3, 'adds only what is new');
  assert.equal(s.value('ebb_worker_connections_lost_total'), 7, 'unchanged totals add nothing');
});
