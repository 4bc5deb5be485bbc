/**
 * Holds a JSON value to a schema of ebb's OpenAPI document: the subset of JSON Schema the document uses
 * ($ref into components, type (one or a list), enum, properties, required, additionalProperties: false,
 * items, oneOf, minimum/maximum, format date-time). Returns every mismatch with its path; [] when it fits.
 */
export type Schema = Record<string, any>;

export function check(doc: Schema, schema: Schema, value: unknown, path = '$'): string[] {
  if (typeof schema['$ref'] === 'string') {
    const name = String(schema['$ref']).replace('#/components/schemas/', '');
    const target = doc['components']?.['schemas']?.[name];
    if (target === undefined) return [`${path}: unknown $ref ${String(schema['$ref'])}`];
    return check(doc, target, value, path);
  }
  if (Array.isArray(schema['oneOf'])) {
    const fits = (schema['oneOf'] as Schema[]).filter((s) => check(doc, s, value, path).length === 0).length;
    return fits === 1 ? [] : [`${path}: fits ${fits} of the oneOf alternatives, not exactly 1 (${JSON.stringify(value)?.slice(0, 200)})`];
  }
  const errors: string[] = [];
  if (schema['type'] !== undefined) {
    const types: string[] = Array.isArray(schema['type']) ? schema['type'] : [schema['type']];
    if (!types.some((t) => typeOk(t, value))) return [`${path}: expected ${types.join(' or ')}, got ${JSON.stringify(value)?.slice(0, 200)}`];
  }
  if (Array.isArray(schema['enum']) && !schema['enum'].includes(value)) errors.push(`${path}: ${JSON.stringify(value)} is not one of ${schema['enum'].join(', ')}`);
  if (schema['format'] === 'date-time' && typeof value === 'string' && !/^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?Z$/.test(value)) {
    errors.push(`${path}: '${value}' is not an RFC 3339 time`);
  }
  if (typeof value === 'number') {
    if (typeof schema['minimum'] === 'number' && value < schema['minimum']) errors.push(`${path}: ${value} < ${schema['minimum']}`);
    if (typeof schema['maximum'] === 'number' && value > schema['maximum']) errors.push(`${path}: ${value} > ${schema['maximum']}`);
  }
  if (Array.isArray(value) && schema['items'] !== undefined) {
    value.forEach((v, i) => errors.push(...check(doc, schema['items'], v, `${path}[${i}]`)));
  }
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const props: Schema = schema['properties'] ?? {};
    const o = value as Record<string, unknown>;
    for (const r of (schema['required'] ?? []) as string[]) if (!Object.hasOwn(o, r)) errors.push(`${path}: missing ${r}`);
    for (const [k, v] of Object.entries(o)) {
      if (Object.hasOwn(props, k)) errors.push(...check(doc, props[k], v, `${path}.${k}`));
      else if (schema['additionalProperties'] === false) errors.push(`${path}: unexpected property ${k}`);
    }
  }
  return errors;
}

function typeOk(t: string, v: unknown): boolean {
  switch (t) {
    case 'null':
      return v === null;
    case 'integer':
      return Number.isInteger(v);
    case 'number':
      return typeof v === 'number' && Number.isFinite(v);
    case 'array':
      return Array.isArray(v);
    case 'object':
      return typeof v === 'object' && v !== null && !Array.isArray(v);
    default:
      return typeof v === t;
  }
}

/** The schema of an operation's JSON answer for `status` (or its 4XX/5XX range). */
export function responseSchema(doc: Schema, method: string, path: string, status: number): Schema {
  const responses = doc['paths']?.[path]?.[method.toLowerCase()]?.['responses'];
  if (responses === undefined) throw new Error(`the document has no ${method} ${path}`);
  const r = responses[String(status)] ?? responses[`${String(status)[0]}XX`];
  if (r === undefined) throw new Error(`${method} ${path} documents no ${status} answer`);
  const content = r['content'] ?? {};
  const media = content['application/json'] ?? content['text/event-stream'];
  return media['schema'];
}
