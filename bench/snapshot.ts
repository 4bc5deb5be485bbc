import { listenerSettings } from '../src/domain/attributes.ts';
import type { RoutingSnapshot } from '../src/domain/routing-snapshot.ts';

/** Listener settings with ebb's defaults (no load-balancer attribute set). */
const BENCH_SETTINGS = listenerSettings({});

/** One HTTP listener forwarding to one round-robin group of `backends` (ports on 127.0.0.1). */
export function singleGroupSnapshot(port: number, backends: readonly number[]): RoutingSnapshot {
  const groupArn = 'arn:ebb:bench:targetgroup/bench';
  return {
    version: 1,
    listeners: [
      { arn: 'arn:ebb:bench:listener/bench', protocol: 'HTTP', address: '127.0.0.1', port, targetGroupArn: groupArn, settings: BENCH_SETTINGS, tls: null },
    ],
    targetGroups: new Map([
      [
        groupArn,
        {
          arn: groupArn,
          name: 'bench',
          protocol: 'HTTP',
          targetTls: null,
          proxyProtocolV2: false,
          connectionTermination: false,
          algorithm: 'round_robin',
          targets: backends.map((p) => ({ key: `${groupArn}|127.0.0.1|${p}`, host: '127.0.0.1', port: p, healthyForMs: 0 })),
          failOpen: false,
          slowStartMs: 0,
        },
      ],
    ]),
  };
}
