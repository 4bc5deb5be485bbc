import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { test } from 'node:test';
import { groupHasLiveMembers, isSameProcess, parseProcStat, readProcStat } from './proc-stat.ts';

// Fields 3.. of a real line: state, ppid, pgrp, session, tty, tpgid, flags, minflt, cminflt, majflt,
// cmajflt, utime, stime, cutime, cstime, priority, nice, num_threads, itrealvalue, starttime, …
const TAIL = 'S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 987654 1000 50';

test('the fields are counted from the last parenthesis, whatever the command name holds', () => {
  for (const comm of ['sh', 'my server', 'a) S 1 2 (b', ')(', '']) {
    assert.deepEqual(parseProcStat(`123 (${comm}) ${TAIL}\n`), { state: 'S', pgrp: 4242, startTime: '987654' }, comm);
  }
  assert.equal(parseProcStat('123 no parenthesis'), null);
  assert.equal(parseProcStat('123 (sh) S 1 2'), null, 'too short');
});

test('this process: its start time is stable, and a wrong start time is another process', () => {
  const stat = readProcStat(process.pid);
  assert.ok(stat !== null);
  assert.match(stat.startTime, /^\d+$/);
  assert.equal(readProcStat(process.pid)?.startTime, stat.startTime);
  assert.ok(isSameProcess(process.pid, stat.startTime));
  assert.ok(!isSameProcess(process.pid, `${stat.startTime}1`));
  assert.equal(readProcStat(0x3fffffff), null);
});

test('a group counts as gone once its only member has exited', async () => {
  const child = spawn('/bin/sh', ['-c', 'read x'], { detached: true, stdio: ['pipe', 'ignore', 'ignore'] });
  const pid = child.pid!;
  try {
    assert.ok(groupHasLiveMembers(pid));
    const exited = once(child, 'exit');
    child.stdin.end('\n');
    await exited;
    assert.ok(!groupHasLiveMembers(pid));
  } finally {
    killGroup(pid);
  }
});

test('a zombie does not keep its group alive', async () => {
  // `setsid sleep 0` leads a group of its own and exits; its parent (now `sleep 30`) never reaps it.
  const parent = spawn('/bin/sh', ['-c', 'setsid sleep 0 & echo $!; exec sleep 30'], { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  try {
    const [line] = (await once(parent.stdout, 'data')) as [Buffer];
    const zombie = Number(line.toString().trim());
    for (let i = 0; i < 200 && readProcStat(zombie)?.state !== 'Z'; i++) await new Promise((r) => setTimeout(r, 10));
    assert.equal(readProcStat(zombie)?.state, 'Z');
    assert.equal(readProcStat(zombie)?.pgrp, zombie);
    process.kill(-zombie, 0); // the kernel still counts it as a member
    assert.ok(!groupHasLiveMembers(zombie));
    assert.ok(!isSameProcess(zombie, readProcStat(zombie)!.startTime));
  } finally {
    killGroup(parent.pid!);
  }
});

function killGroup(pid: number): void {
  try {
    process.kill(-pid, 'SIGKILL');
  } catch {
    // gone
  }
}
