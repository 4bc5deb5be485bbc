import type net from 'node:net';
import type { ListenerRoute } from '../domain/routing-snapshot.ts';
import type { ConnectionLimit } from './connection-limit.ts';
import type { ProxyHost } from './http-proxy.ts';
import { EXCLUSIVE_BINDING, type ListenBinding } from './listen-mode.ts';
import { Listener } from './listener.ts';
import { TcpListener } from './tcp/tcp-listener.ts';

/**
 * What the data plane asks of a listener of any protocol: bind, take new settings, close gracefully
 * with a deadline, or at once. Each protocol has its own kind; `openListener` picks it.
 */
export interface ServedListener {
  readonly route: ListenerRoute;
  /** The port asked for, or the one bound when the route said 0. */
  readonly localPort: number;
  /** The bound port. */
  readonly port: number;
  /** Binds; resolves with null or the bind error. */
  listen(): Promise<NodeJS.ErrnoException | null>;
  /** New settings (and, for TLS, certificates and policy) for the same address and port. */
  update(route: ListenerRoute): void;
  /**
   * Stops accepting and lets what is open finish; at `timeoutMs`, closes what remains politely
   * (`graceMs` for an answer), then at once. Resolves when every connection has closed.
   */
  close(timeoutMs?: number, graceMs?: number): Promise<void>;
  /** Every connection closed now. */
  destroy(): void;
  /** Client connections open now (HTTP/1.1 and HTTP/2 connections, or TCP flows), closing ones included. */
  readonly openConnections: number;
  /** The listening socket: handed to the ebb that takes over at a hot restart. */
  readonly server: net.Server;
}

/** The listener for a route's protocol, binding as `binding` says (listen-mode.ts). */
export function openListener(route: ListenerRoute, host: ProxyHost, limit: ConnectionLimit, binding: ListenBinding = EXCLUSIVE_BINDING): ServedListener | null {
  switch (route.protocol) {
    case 'HTTP':
    case 'HTTPS':
      // HTTPS is the HTTP listener behind a TLS front (tls/tls-front.ts).
      return new Listener(route, host, limit, binding);
    case 'TCP':
    case 'TLS':
      // TLS is the TCP listener behind a TLS front (tls/tls-front.ts).
      return new TcpListener(route, host, limit, binding);
    default:
      return null;
  }
}
