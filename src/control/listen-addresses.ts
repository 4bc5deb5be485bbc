/**
 * Where a listener listens when it is not told: an internet-facing load balancer on every interface,
 * an internal one on the loopback interface only, so that on one machine `Scheme` decides who can
 * reach it. The node may set others (`listenAddresses` in the file, `--listen-internet-facing` and
 * `--listen-internal` on the command line).
 */
export interface ListenAddresses {
  readonly 'internet-facing': string;
  readonly internal: string;
}

export const DEFAULT_LISTEN_ADDRESSES: ListenAddresses = { 'internet-facing': '0.0.0.0', internal: '127.0.0.1' };
