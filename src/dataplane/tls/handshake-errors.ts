/**
 * Why a TLS handshake failed, from the error Node reports (`tlsClientError`), as one of the reasons of
 * `TlsErrorMessage` (channels.ts). OpenSSL's reasons reach Node as `ERR_SSL_<REASON>` codes; the ones
 * that say the same thing to an operator are grouped.
 */
export type HandshakeFailure =
  /** The client offered no cipher the listener's security policy allows. */
  | 'no_shared_cipher'
  /** The client's TLS versions and the policy's do not meet (a TLS 1.2 client, a TLS 1.3-only policy). */
  | 'protocol_version'
  /** The client offered ALPN protocols of which the listener speaks none (an `h2`-only client while HTTP/2 is off). */
  | 'no_application_protocol'
  /** What came was not TLS: plain HTTP sent to an HTTPS port, SSH, a proxy's CONNECT. */
  | 'not_tls'
  /** The handshake did not finish in time (a client that stalls or never speaks). */
  | 'timeout'
  /** The client refused ebb's certificate (an alert such as unknown CA or bad certificate). */
  | 'certificate_rejected'
  /** The client closed or reset the connection in the middle of the handshake. */
  | 'client_closed'
  | 'other';

const NOT_TLS = new Set([
  'ERR_SSL_HTTP_REQUEST',
  'ERR_SSL_HTTPS_PROXY_REQUEST',
  'ERR_SSL_WRONG_VERSION_NUMBER',
  'ERR_SSL_UNKNOWN_PROTOCOL',
  'ERR_SSL_PACKET_LENGTH_TOO_LONG',
  'ERR_SSL_RECORD_LENGTH_MISMATCH',
  'ERR_SSL_LENGTH_TOO_SHORT',
]);

const PROTOCOL_VERSION = new Set([
  'ERR_SSL_UNSUPPORTED_PROTOCOL',
  'ERR_SSL_VERSION_TOO_LOW',
  'ERR_SSL_VERSION_TOO_HIGH',
  'ERR_SSL_TLSV1_ALERT_PROTOCOL_VERSION',
  'ERR_SSL_NO_PROTOCOLS_AVAILABLE',
]);

const NO_SHARED_CIPHER = new Set(['ERR_SSL_NO_SHARED_CIPHER', 'ERR_SSL_NO_SUITABLE_SIGNATURE_ALGORITHM', 'ERR_SSL_NO_SHARED_GROUPS', 'ERR_SSL_NO_CIPHERS_AVAILABLE']);

const CERTIFICATE_REJECTED = new Set([
  'ERR_SSL_TLSV1_ALERT_UNKNOWN_CA',
  'ERR_SSL_SSLV3_ALERT_BAD_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_UNKNOWN',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_EXPIRED',
  'ERR_SSL_SSLV3_ALERT_UNSUPPORTED_CERTIFICATE',
  'ERR_SSL_SSLV3_ALERT_CERTIFICATE_REVOKED',
]);

const CLOSED = new Set(['ECONNRESET', 'EPIPE', 'ERR_SOCKET_CLOSED', 'ERR_SSL_UNEXPECTED_EOF_WHILE_READING']);

/**
 * The reason for a failed handshake, or null when it was no handshake at all: a connection closed
 * before its first byte (a TCP health check, a port scan) is not a TLS negotiation error, as ELB's
 * ClientTLSNegotiationErrorCount counts only "TLS connections initiated by the client".
 * `bytesRead` is what the connection had received when it failed (-1: not known, counted).
 */
export function classifyHandshakeError(code: string | undefined, bytesRead: number): HandshakeFailure | null {
  if (code === 'ERR_TLS_HANDSHAKE_TIMEOUT') return 'timeout';
  if (code === undefined) return 'other';
  if (CLOSED.has(code)) return bytesRead === 0 ? null : 'client_closed';
  if (NOT_TLS.has(code)) return 'not_tls';
  if (PROTOCOL_VERSION.has(code)) return 'protocol_version';
  if (NO_SHARED_CIPHER.has(code)) return 'no_shared_cipher';
  if (CERTIFICATE_REJECTED.has(code)) return 'certificate_rejected';
  if (code === 'ERR_SSL_NO_APPLICATION_PROTOCOL') return 'no_application_protocol';
  return 'other';
}
