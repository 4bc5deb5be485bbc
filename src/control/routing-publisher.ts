import type { ApplyResult, DataPlane } from '../domain/data-plane-port.ts';
import type { HealthChecker } from '../domain/health-port.ts';
import type { CertificateRecord } from '../domain/resources.ts';
import type { Clock } from '../shared/clock.ts';
import type { ResourceCatalog } from './resource-catalog.ts';
import { TargetCaFiles } from './target-ca-files.ts';
import type { TargetRegistry } from './registered-targets.ts';
import { buildPublication, groupsInUse } from './routing-publication.ts';

/** A listener a data plane could not open. */
export interface ListenerOpenError {
  readonly listenerArn: string;
  readonly address: string;
  readonly port: number;
  readonly code: string;
  readonly message: string;
}

/**
 * The side effects around the pure `buildPublication`: tells each lifecycle whether its group is in
 * use, builds the snapshot and the check set from the catalog and the registry, reports every target
 * whose view changed, then hands the snapshot to every data plane and the check set to the health
 * checker. Snapshot versions count up from 1 in each process.
 */
export class RoutingPublisher {
  readonly #catalog: ResourceCatalog;
  readonly #targets: TargetRegistry;
  readonly #dataPlanes: readonly DataPlane[];
  readonly #health: HealthChecker | undefined;
  readonly #clock: Clock;
  readonly #certificates: () => ReadonlyMap<string, CertificateRecord>;
  /** The CA files HTTPS groups name, read when set and on reload, kept for each publication. */
  readonly caFiles: TargetCaFiles;
  #version = 0;
  #lastApply: Promise<ApplyResult[]> = Promise.resolve([]);

  /** `certificates`: the certificate catalog's records, read at each publication (HTTPS and TLS listeners). */
  constructor(
    catalog: ResourceCatalog,
    targets: TargetRegistry,
    dataPlanes: readonly DataPlane[],
    health: HealthChecker | undefined,
    clock: Clock,
    certificates: () => ReadonlyMap<string, CertificateRecord> = () => new Map(),
    log?: (entry: Record<string, unknown>) => void,
  ) {
    this.caFiles = new TargetCaFiles(log);
    this.#clock = clock;
    this.#certificates = certificates;
    this.#catalog = catalog;
    this.#targets = targets;
    this.#dataPlanes = dataPlanes;
    this.#health = health;
  }

  publish(): void {
    const catalog = this.#catalog;
    const listeners = [...catalog.listeners.values()];
    const inUse = groupsInUse(listeners);
    const targets = [...this.#targets.all()].filter((t) => catalog.targetGroups.has(t.reg.targetGroupArn));
    for (const t of targets) t.life.setInUse(inUse.has(t.reg.targetGroupArn));
    this.#version += 1;
    const { snapshot, checks } = buildPublication({
      version: this.#version,
      now: this.#clock.now(),
      loadBalancers: catalog.loadBalancers,
      listeners,
      targetGroups: [...catalog.targetGroups.values()],
      targets,
      instances: catalog.instances,
      certificates: this.#certificates(),
      targetTls: (tg) => this.caFiles.targetTls(tg),
    });
    const checked = new Set(checks.map((c) => c.key));
    for (const t of targets) {
      if (checked.has(t.key)) t.life.markChecking();
      this.#targets.reportChange(t);
    }
    this.#lastApply = Promise.all(this.#dataPlanes.map((dp) => dp.apply(snapshot)));
    this.#health?.setTargets(checks);
  }

  /** Resolves once every data plane has answered the last publication (applied it, or was let go). */
  async applied(): Promise<void> {
    await this.#lastApply;
  }

  /** Reads the CA files again (a reload) and publishes what they say now; returns the files that could not be read. */
  reloadCaFiles(): string[] {
    const failed = this.caFiles.reload();
    this.publish();
    return failed;
  }

  /** Listeners the data planes could not open at the last publication (address in use, permission). */
  async openErrors(): Promise<ListenerOpenError[]> {
    const out: ListenerOpenError[] = [];
    for (const r of await this.#lastApply) {
      for (const e of r.listenerErrors) {
        const l = this.#catalog.listeners.get(e.arn);
        if (l !== undefined) out.push({ listenerArn: e.arn, address: l.address, port: l.port, code: e.code, message: e.message });
      }
    }
    return out;
  }
}
