import type { ServerOptions } from 'node:http2';
import type { ListenerSettings } from '../../domain/routing-snapshot.ts';

/**
 * The bounds an HTTP/2 client connection gets (docs/http2.md, "Limits"). What ebb sets and what it
 * leaves to Node's nghttp2, in one place.
 */

/** Streams a client may have open at once on one connection (SETTINGS_MAX_CONCURRENT_STREAMS), as ALB's 128. */
export const MAX_CONCURRENT_STREAMS = 128;
/**
 * The receive window of each stream (SETTINGS_INITIAL_WINDOW_SIZE): how much of a request body a
 * client may send ahead of what the target has read. RFC 9113's default, as Envoy recommends for an
 * edge proxy: a slow target holds at most this much per stream in ebb.
 */
export const STREAM_WINDOW_BYTES = 65_535;
/** The receive window of the whole connection (raised by WINDOW_UPDATE on stream 0), Envoy's edge value. */
export const CONNECTION_WINDOW_BYTES = 1024 * 1024;
/**
 * Megabytes one session may hold in nghttp2 (streams, header tables, data queued to send, unanswered
 * PING and SETTINGS); past it new streams are refused. Node's default, said here.
 */
export const MAX_SESSION_MEMORY_MB = 10;
/** Rapid reset: more than this many streams reset by the client within `RESET_WINDOW_MS` closes the session. */
export const RESET_LIMIT = 100;
export const RESET_WINDOW_MS = 10_000;
/**
 * Header fields beyond the listener's `maxHeadersCount` are answered 431 by the request plan; nghttp2
 * resets a stream with more fields than this many times that (so a flood of tiny fields is refused
 * before it is ever gathered into a request). Pseudo-headers count there too.
 */
const HEADER_PAIRS_FACTOR = 2;
const PSEUDO_HEADERS = 4;

/** Node's options for a client session on a listener with `settings`. */
export function sessionOptions(settings: ListenerSettings): ServerOptions {
  return {
    settings: {
      maxConcurrentStreams: MAX_CONCURRENT_STREAMS,
      // Enforced by Node for every stream opened after the client acknowledged these settings.
      maxHeaderListSize: settings.maxHeaderBytes,
      initialWindowSize: STREAM_WINDOW_BYTES,
      enablePush: false,
      enableConnectProtocol: false,
    },
    maxHeaderListPairs: (settings.maxHeadersCount + PSEUDO_HEADERS) * HEADER_PAIRS_FACTOR,
    maxSessionMemory: MAX_SESSION_MEMORY_MB,
    // Node's defaults, said here so docs/http2.md can name them: SETTINGS entries per frame, PINGs
    // unanswered, frames nghttp2 refused, and streams refused over the concurrency limit before the
    // session is destroyed.
    maxSettings: 32,
    maxOutstandingPings: 10,
    maxSessionInvalidFrames: 1000,
    maxSessionRejectedStreams: 100,
  };
}
