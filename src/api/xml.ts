/**
 * The XML the AWS Query protocol answers with (botocore/parsers.py, QueryParser: `<ActionResponse><ActionResult>…`),
 * and EC2's flavour of it (EC2QueryParser: no Result element, `<requestId>` first, lists of `<item>`), built from plain values:
 * - a string, number or boolean is the element's text (`true`/`false`, integers as digits);
 * - a Date is an ISO 8601 timestamp;
 * - an array is a list: `<Name><member>…</member></Name>` (EC2: `<item>`), and an empty one `<Name/>`;
 * - an object is a structure whose keys are the member names, in insertion order;
 * - `undefined` leaves the member out.
 */
export type XmlValue = string | number | boolean | Date | undefined | readonly XmlValue[] | XmlObject;
export interface XmlObject {
  readonly [name: string]: XmlValue;
}

export const NAMESPACES = {
  elbv2: 'http://elasticloadbalancing.amazonaws.com/doc/2015-12-01/',
  classic: 'http://elasticloadbalancing.amazonaws.com/doc/2012-06-01/',
  autoscaling: 'http://autoscaling.amazonaws.com/doc/2011-01-01/',
  ec2: 'http://ec2.amazonaws.com/doc/2016-11-15/',
} as const;
export type ServiceId = keyof typeof NAMESPACES;

const ESCAPES: Record<string, string> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };

/** Any character escapeXml changes; most texts (names, ARNs, states) have none and are returned as they are. */
const NEEDS_ESCAPE = /[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff&<>"']/;

/** Escapes text for element content and attribute values; drops characters XML 1.0 cannot carry. */
export function escapeXml(text: string): string {
  if (!NEEDS_ESCAPE.test(text)) return text;
  return text.replace(/[\u0000-\u0008\u000b\u000c\u000e-\u001f\ufffe\uffff]/g, '').replace(/[&<>"']/g, (c) => ESCAPES[c] ?? c);
}

function scalar(value: string | number | boolean | Date): string {
  if (value instanceof Date) return value.toISOString();
  if (typeof value === 'number') {
    if (!Number.isFinite(value)) throw new Error(`cannot encode non-finite number ${String(value)} as XML`);
    return String(value);
  }
  if (typeof value === 'boolean') return value ? 'true' : 'false';
  return escapeXml(value);
}

/** What a list's entries are called: `member` in the Query protocol, `item` in EC2's. */
export type ListItemName = 'member' | 'item';

/** Encodes one member `<name>…</name>` (nothing when the value is undefined). */
export function element(name: string, value: XmlValue, item: ListItemName = 'member'): string {
  return appendElement('', name, value, item);
}

// The answer is built by appending to one string, which V8 keeps as a rope until it is written, so
// a list of a thousand structures (DescribeTargetHealth) costs no copy per level of nesting.
function appendElement(out: string, name: string, value: XmlValue, item: ListItemName): string {
  if (value === undefined) return out;
  if (Array.isArray(value)) {
    const list = value as readonly XmlValue[];
    if (list.length === 0) return `${out}<${name}/>`;
    out += `<${name}>`;
    for (const entry of list) out = appendElement(out, item, entry, item);
    return `${out}</${name}>`;
  }
  if (typeof value === 'object' && !(value instanceof Date)) {
    return `${appendMembers(`${out}<${name}>`, value as XmlObject, item)}</${name}>`;
  }
  return `${out}<${name}>${scalar(value as string | number | boolean | Date)}</${name}>`;
}

function appendMembers(out: string, obj: XmlObject, item: ListItemName): string {
  for (const key in obj) out = appendElement(out, key, obj[key], item);
  return out;
}

function members(obj: XmlObject, item: ListItemName): string {
  return appendMembers('', obj, item);
}

/**
 * A success envelope. `result` undefined: the operation has no output shape, so no Result element
 * (Auto Scaling's CreateAutoScalingGroup, …). An empty object still gives `<ActionResult/>`, which
 * botocore needs for operations with an empty output shape.
 */
export function successXml(service: ServiceId, action: string, result: XmlObject | undefined, requestId: string): string {
  if (service === 'ec2') return ec2SuccessXml(action, result, requestId);
  let body = '';
  if (result !== undefined) {
    const inner = members(result, 'member');
    body = inner === '' ? `<${action}Result/>` : `<${action}Result>${inner}</${action}Result>`;
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="${NAMESPACES[service]}">${body}` +
    `<ResponseMetadata><RequestId>${escapeXml(requestId)}</RequestId></ResponseMetadata>` +
    `</${action}Response>\n`
  );
}

/**
 * EC2's success envelope (ec2 2016-11-15; botocore EC2QueryParser): the output members sit directly
 * in `<ActionResponse>` under their `locationName`s (lowerCamel, chosen by the handler), after
 * `<requestId>`; lists are `<name><item>…</item></name>`.
 */
function ec2SuccessXml(action: string, result: XmlObject | undefined, requestId: string): string {
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<${action}Response xmlns="${NAMESPACES.ec2}"><requestId>${escapeXml(requestId)}</requestId>` +
    `${members(result ?? {}, 'item')}</${action}Response>\n`
  );
}

/**
 * The AWS error envelope; the client goes by `<Code>`. EC2's has no namespace and no Type:
 * `<Response><Errors><Error><Code/><Message/></Error></Errors><RequestID/></Response>` (RequestID,
 * not RequestId, as botocore's EC2QueryParser reads it).
 */
export function errorXml(
  service: ServiceId,
  error: { readonly type: 'Sender' | 'Receiver'; readonly code: string; readonly message: string },
  requestId: string,
): string {
  if (service === 'ec2') {
    return (
      `<?xml version="1.0" encoding="UTF-8"?>\n` +
      `<Response><Errors><Error><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error></Errors>` +
      `<RequestID>${escapeXml(requestId)}</RequestID></Response>\n`
    );
  }
  return (
    `<?xml version="1.0" encoding="UTF-8"?>\n` +
    `<ErrorResponse xmlns="${NAMESPACES[service]}">` +
    `<Error><Type>${error.type}</Type><Code>${escapeXml(error.code)}</Code><Message>${escapeXml(error.message)}</Message></Error>` +
    `<RequestId>${escapeXml(requestId)}</RequestId>` +
    `</ErrorResponse>\n`
  );
}
