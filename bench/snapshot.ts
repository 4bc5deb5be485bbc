import type { ListenerSettings, RoutingSnapshot } from '../src/domain/routing-snapshot.ts';

/** Listener settings with ebb's defaults (the load-balancer attribute defaults of src/domain/attributes.ts). */
const BENCH_SETTINGS: ListenerSettings = {
  idleTimeoutMs: 60_000,
  clientHeaderTimeoutMs: 60_000,
  targetConnectTimeoutMs: 10_000,
  targetResponseTimeoutMs: 60_000,
  maxHeaderBytes: 16_384,
  maxHeadersCount: 100,
  xffMode: 'append',
  desyncMode: 'defensive',
};

/** One HTTP listener forwarding to one round-robin group of `backends` (ports on 127.0.0.1). */
export function singleGroupSnapshot(port: number, backends: readonly number[]): RoutingSnapshot {
  const groupArn = 'arn:ebb:bench:targetgroup/bench';
  return {
    version: 1,
    listeners: [
      { arn: 'arn:ebb:bench:listener/bench', protocol: 'HTTP', address: '127.0.0.1', port, targetGroupArn: groupArn, settings: BENCH_SETTINGS },
    ],
    targetGroups: new Map([
      [
        groupArn,
        {
          arn: groupArn,
          name: 'bench',
          algorithm: 'round_robin',
          targets: backends.map((p) => ({ key: `${groupArn}|127.0.0.1|${p}`, host: '127.0.0.1', port: p, healthySince: 0 })),
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}
