import type { ControlApi } from '../../control/control-api.ts';
import { ebbError } from '../../shared/errors.ts';
import { toWireError, type WireError } from '../error-response.ts';
import { ACM_ACTIONS, ACM_NOT_SERVED } from './acm-actions.ts';
import { JsonInput } from './json-input.ts';

/**
 * ACM on the admin endpoint. ACM speaks the AWS JSON 1.1 protocol, not the Query protocol the load
 * balancing APIs speak: `POST /` with `X-Amz-Target: CertificateManager.<Operation>`, a JSON body
 * (`Content-Type: application/x-amz-json-1.1`), signed with SigV4 for service `acm`, and errors as
 * `{"__type": "<Code>", "message": "..."}`. The admin server tells the two apart by that header, so both
 * are served on the same URL, as the aws CLI and the SDKs reach them with one `--endpoint-url`.
 */

export const ACM_TARGET_PREFIX = 'CertificateManager.';
/** ACM's SigV4 signing name (botocore acm metadata `signingName`). */
export const ACM_SIGNING_NAME = 'acm';

/** The ACM operation a request's `X-Amz-Target` names, or undefined when it is not an ACM request. */
export function acmOperation(target: string | string[] | undefined): string | undefined {
  if (typeof target !== 'string' || !target.startsWith(ACM_TARGET_PREFIX)) return undefined;
  return target.slice(ACM_TARGET_PREFIX.length);
}

export interface AcmResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

export interface AcmRequest {
  readonly operation: string;
  readonly contentType: string | undefined;
  readonly body: Buffer;
  readonly requestId: string;
  readonly control: ControlApi;
  /** Wall-clock ms (a certificate's status is EXPIRED past its NotAfter). */
  readonly now: number;
  /** Verifies the request's SigV4 signature for service `acm` (a no-op with authentication off); rejects with the error to send. */
  readonly verify: () => Promise<unknown>;
  /** Told of an error that is a bug in ebb, to be logged with the request id. */
  readonly onInternal: (error: unknown) => void;
}

/** Runs one ACM request and answers it: the operation's JSON output, or the JSON error. */
export async function serveAcm(r: AcmRequest): Promise<AcmResponse> {
  try {
    await r.verify();
    const type = r.contentType?.split(';')[0]?.trim().toLowerCase();
    if (type !== 'application/x-amz-json-1.1' && type !== 'application/x-amz-json-1.0') {
      throw ebbError('ValidationException', `Content-Type must be application/x-amz-json-1.1 for ACM (X-Amz-Target ${ACM_TARGET_PREFIX}${r.operation}); got '${r.contentType ?? ''}'`);
    }
    const action = ACM_ACTIONS.get(r.operation);
    if (action === undefined) {
      const why = ACM_NOT_SERVED.get(r.operation);
      // AWS's JSON protocols name an unknown X-Amz-Target operation this way (the Query APIs say InvalidAction).
      throw ebbError(
        'UnknownOperationException',
        why !== undefined
          ? `The operation ${r.operation} is not served by ebb: ${why}`
          : `The operation ${r.operation} is not one ebb's ACM API serves; it serves ${[...ACM_ACTIONS.keys()].join(', ')}`,
      );
    }
    const out = await action(JsonInput.parse(r.body.toString('utf8')), r.control.certificates, r.now);
    return json(200, out ?? {}, r.requestId);
  } catch (error) {
    return acmError(error, r.requestId, r.onInternal);
  }
}

/** An error as AWS JSON 1.1 writes it: the code in `__type` (and `x-amzn-ErrorType`), the message in `message`. */
export function acmError(error: unknown, requestId: string, onInternal?: (error: unknown) => void): AcmResponse {
  return acmWireError(toWireError(error, 'elbv2', onInternal), requestId);
}

/** A refusal already made into its wire form (the admin server's, before the body is read) as ACM's JSON error. */
export function acmWireError(wire: WireError, requestId: string): AcmResponse {
  return json(wire.status, { __type: wire.code, message: wire.message }, requestId, { 'x-amzn-errortype': wire.code });
}

function json(status: number, value: unknown, requestId: string, extra: Record<string, string> = {}): AcmResponse {
  const body = JSON.stringify(value);
  return {
    status,
    headers: {
      'content-type': 'application/x-amz-json-1.1',
      'content-length': String(Buffer.byteLength(body)),
      'x-amzn-requestid': requestId,
      ...extra,
    },
    body,
  };
}
