/**
 * One side of the deploy benchmark: a tool that runs three instances of examples/deploy/app.mjs at
 * version 1 and rolls them to version 2 (then 3…, one deploy a round) while the load runs.
 */
export interface DeployOutcome {
  /** From the first deploy command to the benchmark learning the deploy is done, client commands included. */
  readonly seconds: number;
  /** The deploy's length as the tool itself reckons it (an instance refresh's StartTime to EndTime); else `seconds`. */
  readonly ownSeconds: number;
  /** What the tool reported, for the output. */
  readonly detail: string;
}

export interface Teardown {
  /** Processes still running after the tool was stopped (pid and command line); none is the expected answer. */
  readonly leftovers: readonly string[];
  /** Processes that ran for this tool during the run, by pid, for the output. */
  readonly seen: number;
  readonly detail: string;
}

export interface DeployHalf {
  readonly tool: string;
  /** How the load reaches the app, said in the output. */
  readonly traffic: string;
  /** Starts the instances at version 1; resolves the URL for the load once they all answer. */
  setup(): Promise<string>;
  /** Rolls every instance to `version` (2, then 3…); resolves once the tool says the deploy is done. */
  deploy(version: number): Promise<DeployOutcome>;
  /** Stops the tool and everything it started, and checks by pid that nothing is left. Safe after a failed setup. */
  teardown(): Promise<Teardown>;
}

/** Settings both halves share. */
export interface HalfSettings {
  /** The repository root (where examples/ and node_modules/ are). */
  readonly root: string;
  /** A fresh directory this half may use, removed by the caller afterwards. */
  readonly dir: string;
  readonly instances: number;
  /** The app's answer delay (APP_DELAY_MS). */
  readonly delayMs: number;
  /** Every process of this half carries BENCH_DEPLOY_RUN=<marker> in its environment. */
  readonly marker: string;
  /** Bound of each phase (setup, deploy, teardown). */
  readonly phaseMs: number;
  readonly log: (line: string) => void;
}

export const MARKER_ENV = 'BENCH_DEPLOY_RUN';
