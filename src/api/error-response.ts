import { EbbError, ebbError, type ErrorCode } from '../shared/errors.ts';
import { errorXml, type ServiceId } from './xml.ts';

/** What an error becomes on the wire; its code is always one of the registry's. */
export interface WireError {
  readonly status: number;
  readonly type: 'Sender' | 'Receiver';
  readonly code: ErrorCode;
  readonly message: string;
}

/**
 * Maps an error to the AWS error the clients expect. EbbError keeps its code and message; Classic
 * ELB answers `InvalidConfigurationRequest` with HTTP 409 (its model says so; ELBv2's says 400).
 * Anything else is a bug in ebb: the client gets `InternalFailure` 500 without the stack or message,
 * and `onInternal` is told so it can be logged with the request id.
 */
export function toWireError(err: unknown, service: ServiceId, onInternal?: (err: unknown) => void): WireError {
  let e: EbbError;
  if (EbbError.is(err)) {
    e = err;
  } else {
    onInternal?.(err);
    e = ebbError('InternalFailure', 'The request processing has failed because of an unknown error in ebb; the admin log has the details under this request id.');
  }
  const status = service === 'classic' && e.code === 'InvalidConfigurationRequest' ? 409 : e.status;
  return { status, type: e.fault, code: e.code, message: e.message };
}

export interface ErrorResponse {
  readonly status: number;
  readonly headers: Record<string, string>;
  readonly body: string;
}

/** A complete error response: status, headers (with `x-amzn-RequestId`) and the ErrorResponse XML. */
export function errorResponse(err: unknown, service: ServiceId, requestId: string, onInternal?: (err: unknown) => void): ErrorResponse {
  const wire = toWireError(err, service, onInternal);
  const body = errorXml(service, wire, requestId);
  return {
    status: wire.status,
    headers: {
      'content-type': 'text/xml',
      'content-length': String(Buffer.byteLength(body)),
      'x-amzn-requestid': requestId,
    },
    body,
  };
}
