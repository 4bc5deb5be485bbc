import assert from 'node:assert/strict';
import diagnosticsChannel from 'node:diagnostics_channel';
import { test } from 'node:test';
import { ResponseTimes } from '../api/ebb/response-times.ts';
import { CHANNEL_NAMES } from '../dataplane/channels.ts';
import { feedResponseTimes } from './response-time-feed.ts';

const GROUP = 'arn:aws:elasticloadbalancing:us-east-1:000000000000:targetgroup/web/1';

test('a request a target answered is recorded under its group', (t) => {
  const times = new ResponseTimes();
  t.after(feedResponseTimes(times));
  diagnosticsChannel.channel(CHANNEL_NAMES.requestEnd).publish({
    targetGroupArn: GROUP, fromTarget: true, targetResponseMs: 12, requestTime: 1_000, durationMs: 15,
  });
  const summary = times.summary(GROUP, 1_015);
  assert.equal(summary.sampleSize, 1);
  assert.equal(summary.p99TargetResponseMs, 12);
  assert.equal(summary.newestAt, 1_015);
});

test('a malformed request-end message is skipped without throwing (a throw there is uncaught and ends ebb)', async (t) => {
  const uncaught: unknown[] = [];
  const onUncaught = (e: unknown): void => void uncaught.push(e);
  // diagnostics_channel catches a subscriber's throw and rethrows it on the next tick, uncaught;
  // node:test has its own handler, so this one records what would end `ebb serve`.
  process.prependListener('uncaughtException', onUncaught);
  t.after(() => process.off('uncaughtException', onUncaught));
  const times = new ResponseTimes();
  t.after(feedResponseTimes(times));
  const channel = diagnosticsChannel.channel(CHANNEL_NAMES.requestEnd);
  const malformed: unknown[] = [
    null, undefined, 7, 'end', [],
    { targetGroupArn: GROUP, fromTarget: true },
    { targetGroupArn: GROUP, fromTarget: true, targetResponseMs: '12', requestTime: 1_000, durationMs: 15 },
    { targetGroupArn: GROUP, fromTarget: true, targetResponseMs: 12, requestTime: null, durationMs: 15 },
    { targetGroupArn: GROUP, fromTarget: true, targetResponseMs: Number.NaN, requestTime: 1_000, durationMs: 15 },
    { targetGroupArn: 5, fromTarget: true, targetResponseMs: 12, requestTime: 1_000, durationMs: 15 },
    { targetGroupArn: GROUP, fromTarget: 'yes', targetResponseMs: 12, requestTime: 1_000, durationMs: 15 },
  ];
  for (const message of malformed) channel.publish(message);
  await new Promise((resolve) => setImmediate(resolve));
  assert.deepEqual(uncaught.map(String), []);
  assert.equal(times.summary(GROUP, 1_015).sampleSize, 0);
});
