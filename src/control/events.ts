import type { TargetHealthView } from '../domain/target-health.ts';
import type { DrainRecord } from './outputs.ts';

/** Events the control plane publishes. Every target state change is one, with its time. */
export interface ControlEvents {
  'target:state': TargetStateEvent;
  'drain:start': DrainStartEvent;
  'drain:end': DrainRecord;
  /** Emitted by whoever reloads the configuration file (`ebb serve` on SIGHUP), not by the control plane. */
  'config:reload': ConfigReloadEvent;
}

export interface TargetStateEvent {
  readonly targetGroupArn: string;
  readonly targetId: string;
  readonly port: number;
  readonly from: TargetHealthView;
  readonly to: TargetHealthView;
  /** Wall-clock ms. */
  readonly at: number;
}

export interface DrainStartEvent {
  readonly targetGroupArn: string;
  readonly targetId: string;
  readonly port: number;
  readonly startedAt: number;
  readonly deadline: number;
  readonly timeoutSeconds: number;
}

/** A reload of the configuration file and how it went. */
export interface ConfigReloadEvent {
  readonly file: string;
  /**
   * applied: the file's changes are in force; refused: the file was invalid or did not fit, nothing
   * changed; restored: it failed part-way and the steps made were taken back; restore-failed: taking
   * them back failed too (the log has the details).
   */
  readonly outcome: 'applied' | 'refused' | 'restored' | 'restore-failed';
  /** What was applied (one line each), when outcome is applied. */
  readonly applied: readonly string[];
  /** What the API changed that the reload kept. */
  readonly kept: readonly string[];
  /** Why it was refused or failed; null when applied. */
  readonly error: string | null;
  /** Wall-clock ms. */
  readonly at: number;
}
