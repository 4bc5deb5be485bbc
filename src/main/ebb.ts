import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { resolve } from 'node:path';
import { createAdminHandler } from '../api/admin-server.ts';
import { adminEndpointUrl, removeAdminEndpoint, writeAdminEndpoint } from '../shared/admin-endpoint-file.ts';
import { createDashboard, DASHBOARD_PREFIX } from '../api/dashboard/dashboard.ts';
import { createEbbApi, EBB_API_PREFIX, type EbbApi } from '../api/ebb/ebb-api.ts';
import { ResponseTimes } from '../api/ebb/response-times.ts';
import { readDeclaredCertificates, type ReadCertificates } from '../config/certificates-declared.ts';
import { loadConfigFile, type EbbConfig, type MetricsConfig } from '../config/load-config.ts';
import { applyDeclared, checkDeclared, currentState, PartlyAppliedError, type ApplyDeclaredResult } from '../control/apply-declared.ts';
import { planDeclared } from '../control/declared-plan.ts';
import { NOTHING_HANDED_OVER } from '../control/hand-over.ts';
import { ControlPlane, type ListenAddresses } from '../control/control-plane.ts';
import { RoutingWatch } from '../control/routing-watch.ts';
import { ActiveHealthChecker } from '../health/active-health-checker.ts';
import { AutoScaling } from '../autoscaling/auto-scaling.ts';
import { applyAutoScaling, AutoScalingPartlyApplied, checkAutoScaling, recordsOfFacade, recordsOfStore, type AutoScalingApplyResult } from '../autoscaling/declared.ts';
import { ProcessInstanceRunner } from '../instances/process-runner.ts';
import { realClock } from '../shared/clock.ts';
import { describeError, EbbError } from '../shared/errors.ts';
import { openStateStore } from '../store/open-state-store.ts';
import { EbbMetrics } from '../telemetry/metrics/ebb-metrics.ts';
import { readBearerTokenFile, type MetricsAccess } from '../telemetry/metrics/metrics-access.ts';
import { metricsRoute } from '../telemetry/metrics/metrics-route.ts';
import { AccessLogService, checkNodeAccessLog } from '../telemetry/access-log/access-log-service.ts';
import type { StateStore } from '../domain/store-port.ts';
import type { ConfigReloadEvent } from '../control/events.ts';
import { closeAdmin, listenAdmin } from './admin-socket.ts';
import { credentialsUsage, stateDirCredentials, type StateDirCredentials } from './admin-credentials.ts';
import { createDataPlanes, type ServedDataPlanes } from './data-planes.ts';
import { createLog, type Log } from './logger.ts';
import { feedResponseTimes } from './response-time-feed.ts';
import type { RetiringEbb } from '../restart/predecessor.ts';
import { retiringLocal, retiringPool } from '../restart/retiring-data-plane.ts';
import type { Takeover } from '../restart/successor.ts';
import { checkAddresses, checkPort, type WantedAddress } from './port-probe.ts';
import { declaredListenerAddresses, persistedListenerAddresses } from './listener-addresses.ts';
import { DEFAULT_ADMIN_ADDRESS, DEFAULT_STATE_DIR, parseAddress, type AdminEndpoint, type ServeOptions } from './options.ts';

/** How long the admin API keeps an idle client connection (Node's default is 5 s). */
const ADMIN_KEEP_ALIVE_MS = 65_000;

/** A running ebb: the pieces, wired, with its two ways out. */
export interface Ebb {
  readonly control: ControlPlane;
  /** Auto Scaling groups of local processes, and EC2 launch templates. */
  readonly autoscaling: AutoScaling;
  /** The data plane in this process, or the data-plane workers (`--workers N`): `destroy` closes every socket now. */
  readonly dataPlane: ServedDataPlanes;
  readonly admin: AdminEndpoint;
  readonly stateDir: string;
  /** ebb's own API (`/ebb/v1/`); the dashboard sets its session check here. */
  readonly ebbApi: EbbApi;
  /** `<state-dir>/credentials` when ebb uses the key pair kept there (no credentials configured), else null. */
  readonly credentialsFile: string | null;
  /**
   * Re-reads the config file and applies what changed in it since it was last applied (what the API
   * changed since is kept); a bad file changes nothing.
   */
  reload(): Promise<void>;
  /** Graceful: the admin API and listeners stop accepting, in-flight work finishes up to the shutdown timeout. */
  shutdown(): Promise<void>;
  /** The access logs (docs/access-logs.md): the node's, and each load balancer's S3 layout. */
  readonly accessLogs: AccessLogService;
  /** What a hot restart hands over (docs/restart.md): the data plane in this process, or the workers as one. */
  retiring(): RetiringEbb | null;
}

export interface StartOptions extends ServeOptions {
  readonly log?: Log;
  readonly env?: NodeJS.ProcessEnv;
  /** This ebb takes over from a running one (hot restart, docs/restart.md): its sockets, state and drains. */
  readonly takeover?: Takeover | null;
}

/**
 * Starts ebb in this order: config (refuse to start on any error), a check that every address it will
 * listen on is free (the admin API's and the file's listeners', then, once the state store is open,
 * the stored listeners'), data plane, health checks, control plane (restores persisted state and
 * drains), the file's declared resources, then the admin API. Nothing is left running if a step fails,
 * and a start refused for its configuration or its ports writes nothing to the state.
 */
export async function startEbb(options: StartOptions): Promise<Ebb> {
  const log = options.log ?? createLog();
  const env = options.env ?? process.env;
  const config: EbbConfig | null = options.configPath === undefined ? null : await loadConfigFile(options.configPath);
  const admin = config?.admin ?? {};

  const stateDir = resolve(options.stateDir ?? env['EBB_STATE_DIR'] ?? admin.stateDir ?? DEFAULT_STATE_DIR);
  const adminEndpoint = parseAddress(options.adminAddress ?? env['EBB_ADMIN_ADDRESS'] ?? admin.address ?? DEFAULT_ADMIN_ADDRESS, 'Admin address');
  const credentials = [...(admin.credentials ?? [])];
  const envKey = env['EBB_ACCESS_KEY_ID'];
  const envSecret = env['EBB_SECRET_ACCESS_KEY'];
  if (envKey !== undefined && envSecret !== undefined && envKey !== '' && envSecret !== '') {
    credentials.push({ accessKeyId: envKey, secretAccessKey: envSecret });
  }
  const authentication = options.authentication ?? admin.authentication ?? true;
  // With authentication on and no credentials configured, ebb uses the key pair in its state directory,
  // made at the first such start (stateDirCredentials, once the ports are known to be free).

  // Read before anything is opened, so a missing token file refuses the start and writes nothing.
  const metricsAccess = await metricsAccessOf(admin.metrics, authentication);
  // So is every certificate file the file names: one missing or bad refuses the start, naming the file.
  const certificates = config === null ? null : await readCertificates(config, log);

  // Every address ebb will listen on is checked before anything is opened or written, so a start
  // refused for a port changes nothing: first the admin API's and the file's listeners', before the
  // state directory is opened; then those of listeners kept there that the file will not replace.
  const adminWanted: WantedAddress = { what: 'the admin API', host: adminEndpoint.host, port: adminEndpoint.port };
  const declaredWanted = config === null ? [] : declaredListenerAddresses(config.declared);
  // At a hot restart the sockets handed over are this ebb's already.
  const takeover = options.takeover ?? null;
  const workerCount = options.workers ?? 1;
  if (takeover !== null && takeover.socketsPerAddress > workerCount) {
    // Each of the running ebb's workers has a socket of its own (SO_REUSEPORT): one nobody here listened on would drop the connections queued on it.
    throw new EbbError(
      'ValidationError',
      `The running ebb's ${takeover.socketsPerAddress} workers each listen on a socket of their own, and this ebb would run ${workerCount}: the connections waiting on the sockets left over would be lost. Start ebb with --workers ${takeover.socketsPerAddress} or more (a hot restart keeps the command line: stop and start it)`,
    );
  }
  const toCheck = (wanted: WantedAddress[]): WantedAddress[] => wanted.filter((w) => takeover?.holds(w.host, w.port) !== true);
  await checkAddresses(toCheck([adminWanted, ...declaredWanted]));

  // The running ebb closes the state directory for this one once the checks above have passed.
  const handOver = takeover === null ? NOTHING_HANDED_OVER : await takeover.acquireState();
  const store: StateStore = await openStateStore(stateDir);
  try {
    await checkAddresses(toCheck([adminWanted, ...declaredWanted, ...persistedListenerAddresses(await store.load(), config?.declared ?? null)]));
  } catch (error) {
    await store.close().catch(() => undefined);
    throw error;
  }
  // In this process, or N worker processes started below, before the control plane applies its state to them.
  const dataPlane = createDataPlanes({
    workers: workerCount,
    clock: realClock,
    log,
    ...(takeover !== null && { inherited: takeover.sockets, predecessor: takeover.predecessor }),
  });
  // Sees every snapshot the control plane publishes and when each data plane has applied it (GET /ebb/v1/wait).
  const watch = new RoutingWatch(dataPlane.dataPlanes, realClock);
  const healthChecker = new ActiveHealthChecker({ clock: realClock });
  const control = new ControlPlane({
    clock: realClock,
    store,
    dataPlanes: watch.dataPlanes,
    healthChecker,
    log,
    ...(admin.region === undefined ? {} : { region: admin.region }),
    ...(admin.accountId === undefined ? {} : { accountId: admin.accountId }),
    listenAddresses: listenAddresses(options, config),
  });
  const runner = new ProcessInstanceRunner({ dir: resolve(stateDir, 'instances'), clock: realClock, log });
  const autoscaling = new AutoScaling({ clock: realClock, store, control, runner, log });
  const metrics = new EbbMetrics({ control, autoscaling, dataPlanes: dataPlane.observed, ...(dataPlane.workerCounters === null ? {} : { workers: dataPlane.workerCounters }) });
  // Listening before the control plane starts, so the first request of a restored listener is logged.
  // With workers, their request ends travel one by one only while a line is written for each (docs/workers.md).
  const onRequestLogging = (logged: boolean): void => dataPlane.pool?.requestEnds(logged ? 'raw' : 'digest');
  const accessLogs = new AccessLogService({ control, clock: realClock, stateDir, node: config?.accessLog ?? null, log, onRequestLogging });
  // SIGUSR1 reopens the node's log file (logrotate); taken over only when there is a file, since
  // Node.js otherwise uses the signal to start its inspector.
  const reopenAccessLog = (): void => {
    log({ event: 'signal', signal: 'SIGUSR1' });
    void accessLogs.reopen();
  };
  const watchUsr1 = config?.accessLog?.output === 'file';
  healthChecker.onObservation((o) => metrics.healthObservation(o));
  control.events.on('target:state', (e) =>
    log({ event: 'target:state', targetGroup: e.targetGroupArn, target: `${e.targetId}:${e.port}`, from: e.from.state, to: e.to.state, reason: e.to.reason }),
  );

  const responseTimes = new ResponseTimes();
  const stopResponseTimes = feedResponseTimes(responseTimes);
  let ebbApi: EbbApi | null = null;
  let fromStateDir: StateDirCredentials | null = null;
  let adminServer: Server | null = null;
  const abort = async (): Promise<void> => {
    if (watchUsr1) process.off('SIGUSR1', reopenAccessLog);
    await accessLogs.close().catch(() => undefined);
    ebbApi?.close();
    stopResponseTimes();
    metrics.close();
    dataPlane.destroy();
    await autoscaling.close().catch(() => undefined);
    await control.close().catch(() => undefined);
    await store.close().catch(() => undefined);
  };
  try {
    await checkNodeAccessLog(config?.accessLog ?? null);
    accessLogs.start();
    if (watchUsr1) process.on('SIGUSR1', reopenAccessLog);
    await dataPlane.start();
    await control.start(handOver);
    // The predecessor becomes one of this ebb's data planes now, before the file is applied: a drain it
    // handed over whose deadline has passed waits, in the control plane's queue, for it to cut its work.
    // (The listening sockets are this ebb's already: connections wait in them until its listeners accept.)
    takeover?.serving();
    let applied: ApplyDeclaredResult | null = null;
    if (config !== null) {
      // The Auto Scaling part is checked first, against the state as stored: a file it refuses changes nothing.
      const elbPlan = planDeclared(control.lastAppliedDeclaration(), config.declared, currentState(control));
      checkAutoScaling(config.autoScaling.declared, recordsOfStore(await store.load()), control, elbPlan.ops, { where: config.autoScaling.where });
      // A start that fails part-way stops ebb; the next start merges against the file last applied again.
      // The file's certificates first, so its listeners find them; those it dropped go once no listener uses them.
      const added = await control.certificates.applyDeclared(certificates?.certificates ?? []);
      applied = await applyDeclared(control, config.declared, { checkPort }).catch((error: unknown) => {
        throw error instanceof PartlyAppliedError ? error.cause : error;
      });
      applied = withCertificates(applied, [...added, ...(await control.certificates.removeUndeclared(certificates?.certificates ?? []))]);
    }
    // After the file's resources: a group's target groups exist before its instances are registered.
    // Held until the file's Auto Scaling part is applied, so no pass acts on settings the file changed.
    await autoscaling.start({ held: true });
    if (config !== null && applied !== null) {
      const scaling = await applyAutoScaling(autoscaling, control, config.autoScaling.declared, { where: config.autoScaling.where });
      log({ event: 'config:applied', file: options.configPath, ...withAutoScaling(applied, scaling) });
    }
    autoscaling.release();
    accessLogs.refresh();
    const unopened = await control.openErrors();
    if (unopened.length > 0) {
      throw new EbbError(
        'ListenAddressInUse',
        unopened.map((e) => `Listener ${e.listenerArn} could not open ${e.address}:${e.port} (${e.code}); free the port, or change or delete the listener`).join('\n'),
      );
    }
    if (!authentication) {
      log({ event: 'admin:authentication-off', level: 'warn', message: 'AUTHENTICATION IS OFF: anyone who reaches the admin address can change ebb. Use for local work only.' });
    }
    if (authentication && credentials.length === 0) {
      fromStateDir = await stateDirCredentials(stateDir, control.region);
      credentials.push(fromStateDir.credential);
    }
    const auth = { enabled: authentication, credentials };
    // The dashboard's session cookie also reads /ebb/v1/ (a browser's EventSource cannot sign).
    const dashboard = createDashboard({ control, auth, log });
    ebbApi = createEbbApi({ control, autoscaling, watch, responseTimes, auth, log, sessionCheck: dashboard.sessionCheck });
    const handler = createAdminHandler({
      control,
      autoscaling,
      auth,
      log,
      prefixRoutes: { [EBB_API_PREFIX]: ebbApi.route, [DASHBOARD_PREFIX]: dashboard.route },
      routes: { 'GET /metrics': metricsRoute(metrics, metricsAccess, log), ...dashboard.routes },
    });
    adminServer = createServer(handler);
    // Longer than the clients' idle reuse (SDKs keep sockets until the server closes them): a close at the
    // server's timeout races a request sent on the socket at that moment, and that request fails.
    adminServer.keepAliveTimeout = ADMIN_KEEP_ALIVE_MS;
    await listenAdmin(adminServer, adminEndpoint, takeover?.adminSockets.take(adminEndpoint.host, adminEndpoint.port) ?? null);
  } catch (error) {
    adminServer?.close();
    await abort();
    throw error;
  }
  const bound = adminServer.address() as AddressInfo;
  const adminBound = { host: bound.address, port: bound.port };
  writeAdminEndpoint(stateDir, adminEndpointUrl(adminBound.host, adminBound.port));
  const workers = dataPlane.pool === null ? {} : { workers: dataPlane.pool.pids };
  const predecessor = takeover === null ? {} : { predecessor: takeover.predecessorPid };
  log({ event: 'ebb:started', pid: process.pid, admin: `${adminBound.host}:${adminBound.port}`, stateDir, config: options.configPath ?? null, ...workers, ...predecessor });
  if (takeover !== null) {
    takeover.started(shutdownTimeoutMs(control));
    // A listener deleted while the sockets were on their way: its socket goes.
    const unclaimed = [...takeover.sockets.closeUnclaimed(), ...takeover.adminSockets.closeUnclaimed()];
    if (unclaimed.length > 0) log({ event: 'restart:sockets-closed', addresses: unclaimed });
  }
  if (fromStateDir !== null) logStateDirCredentials(log, fromStateDir, adminBound);

  let reloading: Promise<void> = Promise.resolve();
  // The file's `autoScaling.onShutdown` as last applied.
  let onShutdown = config?.autoScaling.onShutdown;
  let shuttingDown: Promise<void> | null = null;
  const server = adminServer;
  const api = ebbApi as EbbApi;
  const reloaded = (outcome: ConfigReloadEvent['outcome'], fields: { applied?: readonly string[]; kept?: readonly string[]; error?: string }): void => {
    const { applied = [], kept = [], error = null } = fields;
    control.events.emit('config:reload', { file: options.configPath ?? '', outcome, applied, kept, error, at: Date.now() });
  };
  return {
    control,
    autoscaling,
    dataPlane,
    admin: adminBound,
    stateDir,
    ebbApi: api,
    credentialsFile: (fromStateDir as StateDirCredentials | null)?.file ?? null,
    accessLogs,
    retiring: () => {
      const retiringPlane = dataPlane.local !== null ? retiringLocal(dataPlane.local) : dataPlane.pool !== null ? retiringPool(dataPlane.pool) : null;
      if (retiringPlane === null) return null;
      return {
        dataPlane: retiringPlane,
        admin: { address: adminEndpoint.host, port: adminEndpoint.port, server },
        releaseState: async () => {
          // A reload under way finishes first: the store must not close between its commands.
          await reloading;
          const deadlineMs = shutdownTimeoutMs(control);
          // The socket stays open in the successor: connections that arrive wait for it there, none is refused.
          await closeAdmin(server, api);
          await autoscaling.close();
          await control.close();
          const handOver = control.handOver();
          await store.close();
          return { handOver, deadlineMs };
        },
        stopTelemetry: async () => {
          // Digests already on their way from the workers are forwarded too (telemetry-forwarder.ts).
          dataPlane.pool?.handTelemetryOn();
          stopResponseTimes();
          metrics.close();
          if (watchUsr1) process.off('SIGUSR1', reopenAccessLog);
          await accessLogs.close();
        },
      };
    },
    reload: () => {
      reloading = reloading.then(async () => {
        // The HTTPS groups' CA files are read again and published (renewed CAs land under the same
        // names, whatever the configuration file says); one that cannot be read keeps its last PEM.
        control.reloadTargetCaFiles();
        if (options.configPath === undefined) return;
        let next: EbbConfig;
        let certs: ReadCertificates;
        try {
          next = await loadConfigFile(options.configPath);
          // Every certificate file is read again, changed YAML or not: renewed certificates land under the same names.
          certs = await readCertificates(next, log);
          const elbPlan = await checkDeclared(control, next.declared, { checkPort });
          checkAutoScaling(next.autoScaling.declared, recordsOfFacade(autoscaling), control, elbPlan.ops, { where: next.autoScaling.where });
        } catch (error) {
          log({ event: 'config:reload-refused', level: 'error', file: options.configPath, error: describeError(error) });
          reloaded('refused', { error: describeError(error) });
          return;
        }
        try {
          const added = await control.certificates.applyDeclared(certs.certificates);
          const elb = await applyDeclared(control, next.declared, { checkPort });
          const applied = withCertificates(elb, [...added, ...(await control.certificates.removeUndeclared(certs.certificates))]);
          onShutdown = next.autoScaling.onShutdown;
          accessLogs.refresh();
          let scaling: AutoScalingApplyResult;
          try {
            scaling = await applyAutoScaling(autoscaling, control, next.autoScaling.declared, { where: next.autoScaling.where });
          } catch (error) {
            // The load balancing part is in force; the Auto Scaling part's base stays, so the next reload does the rest.
            const made = error instanceof AutoScalingPartlyApplied ? error.applied : [];
            log({ event: 'config:reload-incomplete', level: 'error', file: options.configPath, ...applied, applied: [...applied.applied, ...made], error: describeError(error) });
            reloaded('applied', { applied: [...applied.applied, ...made], kept: applied.kept, error: describeError(error) });
            return;
          }
          const all = withAutoScaling(applied, scaling);
          log({ event: 'config:reloaded', file: options.configPath, ...all });
          reloaded('applied', { applied: all.applied, kept: all.kept });
        } catch (error) {
          const partly = error instanceof PartlyAppliedError ? error : null;
          log({ event: 'config:reload-refused', level: 'error', file: options.configPath, error: describeError(partly?.cause ?? error) });
          // The steps made before the failure are taken back, last first; the file as last applied stays the base.
          if (partly !== null && partly.steps > 0) {
            await partly.undo(control).then(
              (undone) => {
                log({ event: 'config:restored', file: options.configPath, undone: undone.applied });
                reloaded('restored', { error: describeError(partly.cause) });
              },
              (restoreError: unknown) => {
                log({ event: 'config:restore-failed', level: 'error', error: describeError(restoreError) });
                reloaded('restore-failed', { error: describeError(restoreError) });
              },
            );
          } else {
            reloaded('refused', { error: describeError(partly?.cause ?? error) });
          }
        }
      });
      return reloading;
    },
    shutdown: () => {
      shuttingDown ??= (async () => {
        const deadlineMs = shutdownTimeoutMs(control);
        log({ event: 'ebb:stopping', deadlineMs });
        server.close();
        server.closeIdleConnections();
        // Event streams and pending waits end now: they would hold the admin server open.
        api.close();
        stopResponseTimes();
        await dataPlane.close(deadlineMs);
        // The instances are signalled only now, with nothing in flight to them (docs/instances.md).
        // (stopInstances holds the event loop open until they have stopped: nothing else does by now.)
        if (stopInstancesAtShutdown(onShutdown)) {
          const stopped = await autoscaling.stopInstances();
          log({ event: 'autoscaling:instances-stopped', count: stopped });
        }
        await autoscaling.close();
        metrics.close();
        // After the data plane: the requests that ended while it drained are logged, then the S3 layout's open files finished.
        if (watchUsr1) process.off('SIGUSR1', reopenAccessLog);
        await accessLogs.close();
        await control.close();
        await store.close();
        server.closeAllConnections();
        removeAdminEndpoint(stateDir);
        log({ event: 'ebb:stopped' });
      })();
      return shuttingDown;
    },
  };
}

/**
 * Whether ebb's own shutdown stops the instances it launched: the file's `autoScaling.onShutdown`
 * decides. Unset, they run on and are adopted at the next start (`leave`), except when ebb is a
 * container's first process: the kernel would kill them, without their drain, once it exits, so
 * there ebb stops them itself (`stop`).
 */
function stopInstancesAtShutdown(onShutdown: 'leave' | 'stop' | undefined): boolean {
  return (onShutdown ?? (process.pid === 1 ? 'stop' : 'leave')) === 'stop';
}

/** Reads the file's certificates from their files, logging those served outside their validity. Throws ConfigInvalid naming a bad file. */
async function readCertificates(config: EbbConfig, log: Log): Promise<ReadCertificates> {
  const read = await readDeclaredCertificates(config.certificates, realClock.wallTime());
  for (const w of read.warnings) log({ event: 'certificate:validity', level: 'warn', certificate: w.arn, file: w.file, message: w.message });
  return read;
}

/** The certificates' changes put first in what the file's application did. */
function withCertificates(applied: ApplyDeclaredResult, changes: readonly string[]): ApplyDeclaredResult {
  return changes.length === 0 ? applied : { ...applied, applied: [...changes, ...applied.applied] };
}

/** The two parts of the file's application as one log line. */
function withAutoScaling(elb: ApplyDeclaredResult, scaling: AutoScalingApplyResult): ApplyDeclaredResult & { autoScalingMergedWith?: string } {
  return {
    ...elb,
    created: [...elb.created, ...scaling.created],
    changed: [...elb.changed, ...scaling.changed],
    removed: [...elb.removed, ...scaling.removed],
    applied: [...elb.applied, ...scaling.applied],
    kept: [...elb.kept, ...scaling.kept],
    ...(scaling.mergedWith !== elb.mergedWith && { autoScalingMergedWith: scaling.mergedWith }),
  };
}

/** Where listeners created without an address listen, by scheme: the command line's, else the file's, else the defaults. */
function listenAddresses(options: ServeOptions, config: EbbConfig | null): Partial<ListenAddresses> {
  const internetFacing = options.listenInternetFacing ?? config?.listenAddresses?.['internet-facing'];
  const internal = options.listenInternal ?? config?.listenAddresses?.internal;
  return { ...(internetFacing !== undefined && { 'internet-facing': internetFacing }), ...(internal !== undefined && { internal }) };
}

/**
 * Who may read `GET /metrics`: the bearer token in `admin.metrics.bearerTokenFile`; anyone with
 * `admin.metrics.public: true`, or when the whole admin API is open (`--no-auth`: /metrics would
 * guard nothing the API does not already give away); otherwise nobody (docs/metrics.md).
 */
async function metricsAccessOf(config: MetricsConfig | undefined, authentication: boolean): Promise<MetricsAccess> {
  if (config?.bearerTokenFile !== undefined) return { kind: 'token', token: await readBearerTokenFile(config.bearerTokenFile) };
  if (config?.public === true || !authentication) return { kind: 'public' };
  return { kind: 'closed' };
}

/** Says where the admin credentials are and how to use them; on the start that made them, loudly. */
function logStateDirCredentials(log: Log, c: StateDirCredentials, admin: AdminEndpoint): void {
  const host = admin.host === '0.0.0.0' || admin.host === '::' ? '127.0.0.1' : admin.host;
  const endpoint = `http://${host.includes(':') ? `[${host}]` : host}:${admin.port}`;
  const use = credentialsUsage(c.file, endpoint);
  if (c.how === 'made') {
    log({
      event: 'admin:credentials-made',
      level: 'warn',
      file: c.file,
      profile: 'ebb',
      message: `No admin credentials were configured, so ebb made a key pair and keeps it in ${c.file} (mode 0600); it is used again at every start. Use it with: ${use}`,
      use,
    });
  } else {
    log({ event: 'admin:credentials', file: c.file, profile: 'ebb', use, ...(c.regionRewritten && { regionRewritten: true }) });
  }
  if (c.tooOpen) {
    log({ event: 'admin:credentials-open', level: 'warn', file: c.file, message: `${c.file} can be read by other users; make it private: chmod 600 ${c.file}` });
  }
}

/** The longest `ebb.shutdown_timeout.seconds` among the load balancers (default 30 s). */
function shutdownTimeoutMs(control: ControlPlane): number {
  let seconds = 30;
  const lbs = [...control.describeLoadBalancers(), ...control.describeLoadBalancers({ type: 'classic' })];
  if (lbs.length > 0) {
    seconds = Math.max(...lbs.map((lb) => Number(control.describeLoadBalancerAttributes(lb.arn)['ebb.shutdown_timeout.seconds'] ?? 30)));
  }
  return seconds * 1000;
}
