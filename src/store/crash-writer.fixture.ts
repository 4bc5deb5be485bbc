/**
 * Test fixture for the store crash test (sqlite-state-store.test.ts), run as its own process:
 *   node --import tsx crash-writer.fixture.ts DIR START COUNT [WRITERS]
 * Opens the store in DIR, prints `ready`, then commits rounds START..START+COUNT-1. Each round is one
 * commit of three puts (a-N, b-N, c-N) and a delete of c-(N-2·WRITERS), and `ack N` is printed only
 * after the commit returned. WRITERS (default 1) loops commit at once, loop w the rounds N with
 * N-START ≡ w (mod WRITERS), one after another, so the store groups their commits into shared syncs.
 * stdout to a pipe is synchronous on Linux, so each printed ack left the process.
 * With COUNT `hold` it opens the store, prints `ready` and keeps it for at most 60 s, until killed.
 */
import { SqliteStateStore } from './sqlite-state-store.ts';

const [dir, startText, countText, writersText] = process.argv.slice(2);
if (dir === undefined || startText === undefined || countText === undefined) {
  process.stderr.write('usage: crash-writer.fixture.ts DIR START COUNT [WRITERS]\n');
  process.exit(2);
}
const start = Number(startText);
const count = countText === 'hold' ? 0 : Number(countText);
const writers = Number(writersText ?? 1);
const store = await SqliteStateStore.open(dir, { lockTimeoutMs: 5000 });
process.stdout.write('ready\n');
if (countText === 'hold') {
  await new Promise((resolve) => setTimeout(resolve, 60_000));
}
const pad = 'x'.repeat(512);
await Promise.all(
  Array.from({ length: writers }, async (_, w) => {
    for (let n = start + w; n < start + count; n += writers) {
      await store.commit([
        { op: 'put', kind: 'target', key: `a-${n}`, value: { n, pad } },
        { op: 'put', kind: 'target', key: `b-${n}`, value: { n, pad } },
        { op: 'put', kind: 'target', key: `c-${n}`, value: { n, pad } },
        { op: 'delete', kind: 'target', key: `c-${n - 2 * writers}` },
      ]);
      process.stdout.write(`ack ${n}\n`);
    }
  }),
);
await store.close();
process.stdout.write('done\n');
