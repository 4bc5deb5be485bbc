import type { AutoScalingApi } from '../autoscaling/autoscaling-api.ts';
import type { ControlApi } from '../control/control-api.ts';
import type { QueryParams } from './query-parser.ts';
import type { XmlObject } from './xml.ts';

/** What every operation handler gets besides its parameters. */
export interface ApiContext {
  readonly control: ControlApi;
  /** Auto Scaling and EC2 launch templates; unset where ebb runs without them (some tests). */
  readonly autoscaling?: AutoScalingApi;
  readonly requestId: string;
}

/**
 * One AWS Query action. Resolves with the members of `<ActionResult>` (an empty object for an empty
 * output shape, which still yields `<ActionResult/>`), or undefined for an operation with no output
 * shape. Rejects with an EbbError carrying the AWS code.
 */
export type ActionHandler = (params: QueryParams, ctx: ApiContext) => Promise<XmlObject | undefined>;

/**
 * Actions by name, written as an object for readability. Dispatch reads only its own entries (into a
 * Map), so a request's Action is never looked up as a property of it.
 */
export type ActionTable = Readonly<Record<string, ActionHandler>>;
