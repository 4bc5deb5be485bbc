import assert from 'node:assert/strict';
import { EventEmitter } from 'node:events';
import net from 'node:net';
import { describe, test } from 'node:test';
import { FakeClock } from '../../test/fakes/fake-clock.ts';
import {
  attachConnectionLimit,
  ConnectionLimit,
  deriveConnectionLimit,
  DROP_LOG_INTERVAL_MS,
  DROP_MESSAGE,
  FD_RESERVE,
  parseNofileLimit,
  readNofileLimit,
  type DropReport,
} from './connection-limit.ts';

/** /proc/self/limits as Linux writes it (fs/proc/base.c: name, soft, hard, units in fixed columns). */
function limitsText(soft: string, hard: string): string {
  return [
    'Limit                     Soft Limit           Hard Limit           Units     ',
    'Max cpu time              unlimited            unlimited            seconds   ',
    'Max processes             96365                96365                processes ',
    `Max open files            ${soft.padEnd(21)}${hard.padEnd(21)}files     `,
    'Max locked memory         8388608              8388608              bytes     ',
    '',
  ].join('\n');
}

describe('parseNofileLimit', () => {
  test('reads the soft limit, not the hard one', () => {
    assert.equal(parseNofileLimit(limitsText('1024', '524288')), 1024);
    assert.equal(parseNofileLimit(limitsText('64', '64')), 64);
  });

  test('"unlimited" is Infinity', () => {
    assert.equal(parseNofileLimit(limitsText('unlimited', 'unlimited')), Infinity);
  });

  test('a missing line or a value that is not a number gives null', () => {
    assert.equal(parseNofileLimit(''), null);
    assert.equal(parseNofileLimit('Max processes 10 10 processes\n'), null);
    assert.equal(parseNofileLimit(limitsText('-1', '10')), null);
    assert.equal(parseNofileLimit(limitsText('lots', '10')), null);
  });
});

describe('readNofileLimit', () => {
  test('uses what the reader returns', () => {
    assert.deepEqual(readNofileLimit(() => limitsText('4096', '4096')), { soft: 4096, source: 'proc' });
  });

  test('falls back to 1024 when the file cannot be read or parsed', () => {
    assert.deepEqual(
      readNofileLimit(() => {
        throw new Error('ENOENT');
      }),
      { soft: 1024, source: 'default' },
    );
    assert.deepEqual(readNofileLimit(() => 'nothing useful'), { soft: 1024, source: 'default' });
  });

  test('reads this process on Linux', { skip: process.platform !== 'linux' && 'reads /proc, which only Linux has' }, () => {
    const got = readNofileLimit();
    assert.equal(got.source, 'proc');
    assert.ok(got.soft > 0);
  });
});

describe('deriveConnectionLimit', () => {
  const proc = (soft: number) => ({ soft, source: 'proc' as const });

  test('floor((nofile - reserve) / 2), the reserve at most half of nofile', () => {
    const cases: Array<[nofile: number, reserve: number, max: number]> = [
      [1, 0, 1],
      [2, 1, 1],
      [64, 32, 16],
      [128, 64, 32],
      [224, 112, 56],
      [256, 112, 72],
      [1024, 112, 456],
      [4096, 112, 1992],
      [65536, 112, 32712],
      [1_048_576, 112, 524_232],
    ];
    for (const [nofile, reserve, max] of cases) {
      const d = deriveConnectionLimit(proc(nofile));
      assert.deepEqual([d.reserve, d.maxConnections], [reserve, max], `nofile ${nofile}`);
    }
    assert.equal(FD_RESERVE, 112);
  });

  test('clients and their targets fit beside the reserve, and more descriptors never give fewer connections', () => {
    let previous = 0;
    for (let nofile = 4; nofile <= 5000; nofile++) {
      const d = deriveConnectionLimit(proc(nofile));
      assert.ok(2 * d.maxConnections + d.reserve <= nofile, `nofile ${nofile}`);
      assert.ok(d.maxConnections >= previous, `nofile ${nofile}`);
      previous = d.maxConnections;
    }
  });

  test('says how the limit was derived and what to do', () => {
    const d = deriveConnectionLimit(proc(1024));
    assert.equal(d.derivation, 'floor((1024 open files - 112 reserved) / 2) = 456, one descriptor for each client and one for its target');
    assert.match(d.action, /ulimit -n/);
    const assumed = deriveConnectionLimit({ soft: 1024, source: 'default' });
    assert.equal(assumed.maxConnections, 456);
    assert.match(assumed.derivation, /assumed: \/proc\/self\/limits could not be read/);
  });

  test('an unlimited open-file limit gives no connection limit', () => {
    const d = deriveConnectionLimit(proc(Infinity));
    assert.equal(d.maxConnections, Infinity);
    assert.equal(d.derivation, 'the open-file limit is unlimited');
  });

  test('an explicit limit replaces the derived one', () => {
    const d = deriveConnectionLimit(proc(1024), { maxConnections: 5000 });
    assert.equal(d.maxConnections, 5000);
    assert.equal(d.derivation, 'set by configuration to 5000; the open-file limit is 1024');
    assert.match(d.action, /raise the configured connection limit/);
    assert.equal(deriveConnectionLimit(proc(1024), { maxConnections: Infinity }).maxConnections, Infinity);
    for (const bad of [0, -1, 1.5, Number.NaN]) {
      assert.throws(() => deriveConnectionLimit(proc(1024), { maxConnections: bad }), RangeError, String(bad));
    }
  });
});

/** A socket stand-in: the budget only listens for its 'close'. */
const fakeSocket = (): net.Socket => new EventEmitter() as net.Socket;

describe('attachConnectionLimit', () => {
  const setup = (maxConnections = 10) => {
    const clock = new FakeClock();
    const limit = new ConnectionLimit({ nofile: { soft: 1024, source: 'proc' }, maxConnections, clock });
    const lines: DropReport[] = [];
    return { clock, limit, lines, report: (l: DropReport) => lines.push(l) };
  };

  test('sets maxConnections before the server listens', () => {
    const { limit, report } = setup(7);
    const server = net.createServer();
    attachConnectionLimit(server, limit, 'a', report);
    assert.equal(server.maxConnections, 7);
  });

  test('descriptors held beyond the reserve (listening-socket copies) take one connection per two from a derived limit, not from a configured one', () => {
    const derived = new ConnectionLimit({ nofile: { soft: 1024, source: 'proc' }, clock: new FakeClock() });
    const server = net.createServer();
    attachConnectionLimit(server, derived, 'a', () => {});
    server.emit('listening');
    const full = derived.maxConnections;
    assert.equal(server.maxConnections, full);
    derived.holdDescriptors(7);
    assert.equal(server.maxConnections, full - 4, '7 descriptors: 4 connections fewer');
    assert.equal(derived.maxConnections, full - 4, 'and the limit reported says so');
    assert.match(derived.derivation, /less 4 for the 7 descriptors of listening-socket copies$/);
    derived.holdDescriptors(-7);
    assert.equal(server.maxConnections, full, 'given back with the copies');
    const { limit, report } = setup(10);
    const configured = net.createServer();
    attachConnectionLimit(configured, limit, 'b', report);
    configured.emit('listening');
    limit.holdDescriptors(7);
    assert.equal(configured.maxConnections, 10);
  });

  test('leaves maxConnections alone when there is no limit', () => {
    const { limit, report } = setup(Infinity);
    const server = net.createServer();
    const before = server.maxConnections;
    attachConnectionLimit(server, limit, 'a', report);
    server.emit('listening');
    server.emit('connection', fakeSocket());
    assert.equal(server.maxConnections, before);
    assert.equal(limit.counters.open, 1);
  });

  test('the first drop is logged at once, later ones at most once per interval with their count', () => {
    const { clock, limit, lines, report } = setup();
    const server = net.createServer();
    attachConnectionLimit(server, limit, 'a', report);

    server.emit('drop');
    assert.equal(lines.length, 1);
    assert.deepEqual(lines[0], {
      level: 'warn',
      msg: DROP_MESSAGE,
      listener: 'a',
      dropped: 1,
      droppedTotal: 1,
      open: 0,
      maxConnections: 10,
      derivation: 'set by configuration to 10; the open-file limit is 1024',
      action: limit.limit.action,
    });

    for (let i = 0; i < 5; i++) server.emit('drop');
    clock.advance(DROP_LOG_INTERVAL_MS - 1);
    assert.equal(lines.length, 1, 'nothing more within the interval');
    assert.equal(limit.counters.droppedTotal, 6, 'but every drop is counted at once');
    clock.advance(1);
    assert.equal(lines.length, 2);
    assert.equal(lines[1]?.dropped, 5);
    assert.equal(lines[1]?.droppedTotal, 6);

    server.emit('drop');
    clock.advance(DROP_LOG_INTERVAL_MS);
    assert.equal(lines.length, 3);
    assert.equal(lines[2]?.dropped, 1);

    // A quiet interval ends the rate limit: the next drop is logged at once.
    clock.advance(DROP_LOG_INTERVAL_MS);
    assert.equal(lines.length, 3);
    assert.equal(clock.pendingTimers(), 0);
    clock.advance(60_000);
    server.emit('drop');
    assert.equal(lines.length, 4);
    assert.deepEqual([lines[3]?.dropped, lines[3]?.droppedTotal], [1, 8]);
    assert.equal(lines.map((l) => l.dropped).reduce((x, y) => x + y), 8, 'the lines account for every drop');
  });

  test('each listener has its own rate limit and its own count', () => {
    const { limit, lines, report } = setup();
    const a = net.createServer();
    const b = net.createServer();
    attachConnectionLimit(a, limit, 'a', report);
    attachConnectionLimit(b, limit, 'b', report);
    a.emit('drop');
    a.emit('drop');
    b.emit('drop');
    assert.deepEqual(
      lines.map((l) => [l.listener, l.dropped]),
      [
        ['a', 1],
        ['b', 1],
      ],
    );
    assert.deepEqual([...limit.counters.dropped], [
      ['a', 2],
      ['b', 1],
    ]);
    assert.equal(limit.counters.droppedTotal, 3);
  });

  test('closing the server reports the drops not yet logged and stops the timer', () => {
    const { clock, limit, lines, report } = setup();
    const server = net.createServer();
    attachConnectionLimit(server, limit, 'a', report);
    server.emit('drop');
    server.emit('drop');
    server.emit('drop');
    server.emit('close');
    assert.deepEqual(
      lines.map((l) => l.dropped),
      [1, 2],
    );
    assert.equal(clock.pendingTimers(), 0);
    server.emit('drop');
    assert.equal(limit.counters.droppedTotal, 3, 'a detached server is no longer counted');
  });

  test('a logger that throws does not stop the counting', () => {
    const { limit } = setup();
    const server = net.createServer();
    attachConnectionLimit(server, limit, 'a', () => {
      throw new Error('disk full');
    });
    server.emit('drop');
    server.emit('drop');
    assert.equal(limit.counters.droppedTotal, 2);
  });

  test('listening servers share one budget: each may take what it holds plus what is left', () => {
    const { limit, report } = setup(10);
    const a = net.createServer();
    const b = net.createServer();
    attachConnectionLimit(a, limit, 'a', report);
    attachConnectionLimit(b, limit, 'b', report);
    a.emit('listening');
    b.emit('listening');
    const aSockets = Array.from({ length: 6 }, fakeSocket);
    for (const s of aSockets) a.emit('connection', s);
    assert.deepEqual([a.maxConnections, b.maxConnections], [10, 4]);
    const bSockets = Array.from({ length: 4 }, fakeSocket);
    for (const s of bSockets) b.emit('connection', s);
    assert.deepEqual([a.maxConnections, b.maxConnections], [6, 4], 'the budget is spent: each keeps only what it holds');
    assert.equal(limit.counters.open, 10);

    aSockets[0]!.emit('close');
    assert.deepEqual([a.maxConnections, b.maxConnections], [6, 5]);
    assert.equal(limit.counters.open, 9);

    // A server that closed no longer follows the budget, but its connections count until they close.
    b.emit('close');
    for (const s of aSockets.slice(1)) s.emit('close');
    assert.deepEqual([a.maxConnections, b.maxConnections], [6, 5], "b's 4 connections still count");
    for (const s of bSockets) s.emit('close');
    assert.equal(limit.counters.open, 0);
    assert.equal(a.maxConnections, 10);
  });
});
