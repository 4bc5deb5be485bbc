import diagnosticsChannel from 'node:diagnostics_channel';
import { FORWARDED_CHANNEL_NAMES, requestDigestChannel } from '../dataplane/channels.ts';
import { digestProblem } from '../dataplane/request-digest.ts';
import { RelayedConnections } from './relayed-connections.ts';

const TELEMETRY_CHANNELS: ReadonlySet<string> = new Set(FORWARDED_CHANNEL_NAMES);

/**
 * A worker's diagnostics-channel messages (`telemetry`), published again on this process's channels of
 * the same names, where metrics and access logs listen, and its digests of request ends on
 * `ebb:request:digest`; what was dropped or refused, counted; and the client connections its connection
 * messages say are open, to be said lost when the worker is gone.
 */
export class TelemetryRelay {
  /** Events the workers left out because their link was full (as they reported). */
  dropped = 0;
  /** Events on a channel this process does not publish (a worker of another version), or not plain objects; digests not shaped as one. */
  refused = 0;
  readonly connections = new RelayedConnections();

  /** A batch: its events, what the worker dropped before it, and its request ends folded, if they were (`ebb:request:digest`). */
  publish(events: ReadonlyArray<readonly [string, unknown]>, dropped: number, digest?: unknown): void {
    this.dropped += dropped;
    if (digest !== undefined) {
      // Its subscribers read every field: a digest of another shape would make them throw.
      if (digestProblem(digest) !== null) this.refused++;
      else if (requestDigestChannel.hasSubscribers) requestDigestChannel.publish(digest);
    }
    for (const [name, message] of events) {
      if (!TELEMETRY_CHANNELS.has(name)) {
        this.refused++;
        continue;
      }
      // Subscribers read fields of the event; anything but a plain object would make them throw. A
      // connection message's pid must be one the worker's detach will say lost.
      if (typeof message !== 'object' || message === null || Array.isArray(message) || !this.connections.accepts(name, message)) {
        this.refused++;
        continue;
      }
      // A subscriber's throw cannot be caught here: diagnostics_channel rethrows it on the next tick as uncaught.
      const channel = diagnosticsChannel.channel(name);
      if (channel.hasSubscribers) channel.publish(message);
    }
  }
}
