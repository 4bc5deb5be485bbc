import { Gauge, type Registry } from 'prom-client';
import type { TargetHealthDescription } from '../../control/outputs.ts';
import { targetKey } from '../../domain/resources.ts';
import { targetDimension } from './dimensions.ts';
import type { ObservedDataPlane } from './observed-data-plane.ts';

/**
 * The gauges of ebb's metrics (./ebb-metrics.ts) that describe targets as they are now: healthy and
 * unhealthy hosts, targets by state, and work in flight per target. Each is read when Prometheus
 * scrapes, through prom-client's `collect()`, from the view `EbbMetrics` reads once per scrape, so they
 * cost nothing between scrapes and the series of a target that is gone are simply not written.
 */

/** Everything read from the control plane for one scrape. */
export interface ScrapeView {
  readonly loadBalancers: ReadonlySet<string>;
  readonly groups: ReadonlyArray<{
    readonly arn: string;
    readonly dim: string;
    /** Dimensions of the load balancers whose listeners forward to the group. */
    readonly loadBalancers: readonly string[];
    readonly targets: readonly TargetHealthDescription[];
  }>;
}

const LB_TG = ['load_balancer', 'target_group'] as const;

/**
 * Registers the target gauges in `registry`, in the order the exposition lists them. `scrape` returns
 * the view of the scrape under way.
 */
export function registerTargetGauges(registry: Registry, scrape: () => ScrapeView, dataPlanes: readonly Pick<ObservedDataPlane, 'activity'>[]): void {
  const registers = [registry];
  const hostCount = (name: string, help: string, state: (s: string) => boolean): void => {
    new Gauge({
      name,
      help,
      labelNames: LB_TG,
      registers,
      collect() {
        const view = scrape();
        this.reset();
        for (const g of view.groups) {
          const n = g.targets.filter((t) => state(t.health.state)).length;
          for (const lb of g.loadBalancers) this.labels({ load_balancer: lb, target_group: g.dim }).set(n);
        }
      },
    });
  };
  hostCount('ebb_healthy_host_count', 'HealthyHostCount: targets in state healthy, per load balancer the group is behind', (s) => s === 'healthy');
  hostCount(
    'ebb_un_healthy_host_count',
    'UnHealthyHostCount: targets in state unhealthy (or unhealthy.draining), per load balancer the group is behind',
    (s) => s === 'unhealthy' || s === 'unhealthy.draining',
  );

  // ebb's own.
  new Gauge({
    name: 'ebb_targets',
    help: 'Registered targets by target group, state and reason code (as DescribeTargetHealth reports them; draining ones included)',
    labelNames: ['target_group', 'state', 'reason'] as const,
    registers,
    collect() {
      const view = scrape();
      this.reset();
      for (const g of view.groups) {
        const counts = new Map<string, { state: string; reason: string; n: number }>();
        for (const t of g.targets) {
          const reason = t.health.reason ?? '';
          const key = `${t.health.state}|${reason}`;
          const c = counts.get(key) ?? { state: t.health.state, reason, n: 0 };
          c.n++;
          counts.set(key, c);
        }
        for (const c of counts.values()) this.labels({ target_group: g.dim, state: c.state, reason: c.reason }).set(c.n);
      }
    },
  });
  const perTarget = (name: string, help: string, pick: (requests: number, tunnels: number) => number): void => {
    new Gauge({
      name,
      help,
      labelNames: ['target_group', 'target'] as const,
      registers,
      collect() {
        const view = scrape();
        this.reset();
        for (const g of view.groups) {
          for (const t of g.targets) {
            const a = activity(dataPlanes, targetKey(g.arn, t.id, t.port));
            this.labels({ target_group: g.dim, target: targetDimension(t.id, t.port) }).set(pick(a.requests, a.tunnels));
          }
        }
      },
    });
  };
  perTarget('ebb_target_requests_in_flight', 'HTTP requests sent to the target and not yet finished (falls to 0 as a drain ends)', (r) => r);
  perTarget('ebb_target_tunnels_open', 'WebSocket tunnels open to the target', (_r, t) => t);
  new Gauge({
    name: 'ebb_target_connection_count',
    help: "Connections open to the group's targets now, busy or idle (keep-alive connections in the pool, tunnels' connections)",
    labelNames: ['target_group'] as const,
    registers,
    collect() {
      const view = scrape();
      this.reset();
      for (const g of view.groups) {
        let n = 0;
        for (const t of g.targets) {
          n += activity(dataPlanes, targetKey(g.arn, t.id, t.port)).connections;
        }
        this.labels({ target_group: g.dim }).set(n);
      }
    },
  });
}

/**
 * A target's work across the data planes. A data plane that does not count its connections reports
 * none; then each request and tunnel holds one (HTTP/1.1 carries one request per connection at a time).
 */
function activity(dataPlanes: readonly Pick<ObservedDataPlane, 'activity'>[], key: string): { requests: number; tunnels: number; connections: number } {
  let requests = 0;
  let tunnels = 0;
  let connections = 0;
  for (const dp of dataPlanes) {
    const a = dp.activity(key);
    requests += a.requests;
    tunnels += a.tunnels;
    connections += a.connections ?? a.requests + a.tunnels;
  }
  return { requests, tunnels, connections };
}
