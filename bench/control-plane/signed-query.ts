/**
 * AWS Query calls to ebb's admin endpoint, signed with SigV4 as the AWS SDKs and the aws CLI sign
 * them (`@smithy/signature-v4`), over keep-alive connections. For the control-plane benchmark: the
 * time of a call is measured from the moment its signed request is sent to the end of its answer.
 */
import http from 'node:http';
import { HttpRequest } from '@smithy/protocol-http';
import { SignatureV4 } from '@smithy/signature-v4';
import { NodeSha256 } from '../../src/shared/node-sha256.ts';

const ELBV2_VERSION = '2015-12-01';

export interface QueryAnswer {
  readonly status: number;
  readonly body: string;
  /** From sending the signed request to the end of the answer, ms. */
  readonly ms: number;
}

/** RFC 3986 percent-encoding, as SigV4's canonical form has it. */
function encode(value: string): string {
  return encodeURIComponent(value).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);
}

export class SignedQueryClient {
  readonly #url: URL;
  readonly #signer: SignatureV4;
  readonly #agent: http.Agent;
  readonly #localAddress: string | undefined;

  /** `localAddress`: the loopback address to send from (ebb's admin API bounds the requests in flight per client address). */
  constructor(endpoint: string, credentials: { accessKeyId: string; secretAccessKey: string }, region: string, connections: number, localAddress?: string) {
    this.#url = new URL(endpoint);
    this.#localAddress = localAddress;
    this.#signer = new SignatureV4({ credentials, region, service: 'elasticloadbalancing', sha256: NodeSha256 });
    this.#agent = new http.Agent({ keepAlive: true, maxSockets: connections });
  }

  /** One ELBv2 action, POSTed form-encoded as the aws CLI sends it. */
  async call(action: string, params: Readonly<Record<string, string>> = {}): Promise<QueryAnswer> {
    const body = Object.entries({ Action: action, Version: ELBV2_VERSION, ...params })
      .map(([k, v]) => `${encode(k)}=${encode(v)}`)
      .join('&');
    const url = this.#url;
    const signed = await this.#signer.sign(
      new HttpRequest({
        method: 'POST',
        protocol: url.protocol,
        hostname: url.hostname,
        port: Number(url.port),
        path: '/',
        headers: { host: url.host, 'content-type': 'application/x-www-form-urlencoded; charset=utf-8', 'content-length': String(Buffer.byteLength(body)) },
        body,
      }),
    );
    return new Promise<QueryAnswer>((resolve, reject) => {
      const t0 = performance.now();
      const req = http.request(
        {
          method: 'POST',
          host: url.hostname,
          port: url.port,
          path: '/',
          headers: signed.headers as Record<string, string>,
          agent: this.#agent,
          ...(this.#localAddress === undefined ? {} : { localAddress: this.#localAddress }),
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), ms: performance.now() - t0 }));
          res.on('error', reject);
        },
      );
      req.setTimeout(30_000, () => req.destroy(new Error(`${action}: no answer within 30 s`)));
      req.on('error', reject);
      req.end(body);
    });
  }

  close(): void {
    this.#agent.destroy();
  }
}

/** The text of the first `<name>` element of an answer (enough for the ARNs the benchmark needs). */
export function xmlValue(body: string, name: string): string {
  const m = new RegExp(`<${name}>([^<]*)</${name}>`).exec(body);
  if (m === null) throw new Error(`no <${name}> in the answer: ${body.slice(0, 500)}`);
  return m[1] ?? '';
}
