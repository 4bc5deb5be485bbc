import type { Socket } from 'node:net';
import type { TlsFacts } from './channels.ts';
import type { BodySink } from './request-body.ts';
import type { RequestPlan } from './request-guard.ts';
import type { BodyKind } from './response-parser.ts';

/**
 * The seam between a client connection (client-connection) and the request path (http-proxy): what
 * an exchange may ask of the client's side, and what the client's side tells the exchange.
 */

/** The exchange a client connection is serving, told what the client does. */
export interface ClientExchange {
  /** The client went away (or stopped sending the body) before the response ended. */
  clientClosed(): void;
  /** Nothing moved on the client's connection for the idle timeout. */
  clientIdle(): void;
  /** The request body is not valid (a bad chunk): 400 if nothing was answered yet, and the target connection closes. */
  badRequestBody(detail: string): void;
  /**
   * Ebb ends the exchange at a deadline (`drain`: its target's; `listener`: its listener's close, at
   * ebb's shutdown or the listener's removal): a 502 with `Connection: close` if the response has not
   * started, else the client connection is cut. Returns the number of sockets closed.
   */
  terminate(deadline: 'drain' | 'listener'): number;
}

/** What the request path needs from the client connection of an exchange. */
export interface ClientSide {
  readonly socket: Socket;
  readonly plan: RequestPlan;
  readonly clientAddress: string;
  readonly clientPort: number;
  /** What the client's TLS handshake settled; null on a plain connection. */
  readonly tls: TlsFacts | null;
  /** performance.now() and wall-clock ms when the current request's head was whole. */
  readonly requestStartedAt: number;
  readonly requestTime: number;
  /** Bytes read from and written to the client for the current request. */
  readonly receivedBytes: number;
  readonly sentBytes: number;
  /**
   * A body chunk given to `writeBody` or `endResponse` may still be read by a write in progress (it
   * was neither copied nor written through at once), so its memory may not be reused yet. A client
   * side that does not say is taken to hold every chunk.
   */
  readonly holdsBodyBuffer?: boolean;
  /** A response head has been written. */
  readonly responseStarted: boolean;
  /** The status written, or 0. */
  readonly statusSent: number;
  /** The request body has been read whole (or there was none). */
  readonly requestComplete: boolean;
  /** This is the first request of the client's connection. */
  readonly firstRequest: boolean;
  /** Starts delivering the request body to `sink` (after `100 Continue` if the client asked for it). */
  streamBody(sink: BodySink): void;
  pauseBody(): void;
  resumeBody(): void;
  /** Writes a response head, or holds it to go out with the body's first bytes (see `flushHead`). */
  writeHead(status: number, reason: string, rawHeaders: readonly string[], body: BodyKind): void;
  /** Writes a held response head now (the target's read ended before any body byte came). */
  flushHead(): void;
  /** Returns false when the client's socket is full (wait for its 'drain'). */
  writeBody(chunk: Buffer): boolean;
  endResponse(last: Buffer | null): void;
  /** An answer of ebb's own (502, 503, ...); `close` closes the connection after it. */
  sendError(status: number, close: boolean): void;
  /** The exchange is over, whatever its outcome: go on to the next request or close. */
  exchangeEnded(): void;
  /** Cuts the connection (a response that cannot be finished). */
  cut(): void;
  /** `101 Switching Protocols` was written: the socket and the bytes held behind the request go to a tunnel. */
  handOver(): Buffer | null;
}
