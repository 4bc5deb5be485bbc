import { ebbError } from '../shared/errors.ts';

/**
 * AWS Query protocol parameters: a form body (or query string) of flat `Name=value` pairs, where
 * structures are `A.B`, lists are `A.member.N` (N from 1) and an empty list is `A=` (the AWS Query protocol as botocore serialises it: botocore/serialize.py, QuerySerializer).
 *
 * `QueryParams` reads them with validation: every getter names the parameter in its error, so a
 * client learns exactly which value was wrong. Values are validated here because botocore only checks
 * minimums and the JS SDK checks nothing.
 */

/** At most this many parameters in one request; a larger body is refused rather than parsed. */
export const MAX_PARAMS = 2000;
/** At most this many members in one list. */
export const MAX_LIST_MEMBERS = 1000;

/** Parses an `application/x-www-form-urlencoded` body or query string into a flat map. */
export function parseQueryString(text: string): Map<string, string> {
  const out = new Map<string, string>();
  if (text.length === 0) return out;
  let count = 0;
  for (const pair of text.split('&')) {
    if (pair.length === 0) continue;
    if (++count > MAX_PARAMS) {
      throw ebbError('MalformedQueryString', `The request has more than ${MAX_PARAMS} parameters`);
    }
    const eq = pair.indexOf('=');
    const rawKey = eq === -1 ? pair : pair.slice(0, eq);
    const rawValue = eq === -1 ? '' : pair.slice(eq + 1);
    out.set(decode(rawKey), decode(rawValue));
  }
  return out;
}

function decode(s: string): string {
  try {
    return decodeURIComponent(s.replace(/\+/g, ' '));
  } catch {
    throw ebbError('MalformedQueryString', `The request contains a badly encoded parameter: '${s.slice(0, 100)}'`);
  }
}

export interface IntRange {
  readonly min?: number;
  readonly max?: number;
}

/** A view of the parameters under a prefix (`''` for the top level). */
export class QueryParams {
  readonly #all: ReadonlyMap<string, string>;
  readonly #prefix: string;

  constructor(all: ReadonlyMap<string, string>, prefix = '') {
    this.#all = all;
    this.#prefix = prefix;
  }

  /** The full wire name of a member, for error messages. */
  path(name: string): string {
    return this.#prefix + name;
  }

  has(name: string): boolean {
    const full = this.#prefix + name;
    if (this.#all.has(full)) return true;
    for (const key of this.#all.keys()) if (key.startsWith(full + '.')) return true;
    return false;
  }

  /** A string, or undefined when absent. */
  str(name: string, opts: { maxLength?: number; minLength?: number; pattern?: RegExp; patternHint?: string } = {}): string | undefined {
    const value = this.#all.get(this.#prefix + name);
    if (value === undefined) return undefined;
    if (opts.minLength !== undefined && value.length < opts.minLength) {
      throw invalid(this.path(name), value, `must be at least ${opts.minLength} characters long`);
    }
    if (opts.maxLength !== undefined && value.length > opts.maxLength) {
      throw invalid(this.path(name), value, `must be at most ${opts.maxLength} characters long`);
    }
    if (opts.pattern !== undefined && !opts.pattern.test(value)) {
      throw invalid(this.path(name), value, opts.patternHint ?? `must match ${String(opts.pattern)}`);
    }
    return value;
  }

  /** A required string: absent (or empty) is a ValidationError naming the parameter. */
  requiredStr(name: string, opts: Parameters<QueryParams['str']>[1] = {}): string {
    const value = this.str(name, opts);
    if (value === undefined || value === '') throw missing(this.path(name));
    return value;
  }

  /** One of the given values (enums are case-sensitive, as on AWS). */
  enumOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const value = this.str(name);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      throw invalid(this.path(name), value, `must be one of: ${allowed.join(', ')}`);
    }
    return value as T;
  }

  int(name: string, range: IntRange = {}): number | undefined {
    const value = this.str(name);
    if (value === undefined) return undefined;
    if (!/^-?\d{1,15}$/.test(value)) throw invalid(this.path(name), value, 'must be an integer');
    const n = Number(value);
    if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
      const lo = range.min ?? '-∞';
      const hi = range.max ?? '∞';
      throw invalid(this.path(name), value, `must be an integer from ${lo} to ${hi}`);
    }
    return n;
  }

  requiredInt(name: string, range: IntRange = {}): number {
    const n = this.int(name, range);
    if (n === undefined) throw missing(this.path(name));
    return n;
  }

  bool(name: string): boolean | undefined {
    const value = this.str(name);
    if (value === undefined) return undefined;
    // botocore sends lowercase; accept either case as AWS does.
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    throw invalid(this.path(name), value, 'must be true or false');
  }

  requiredBool(name: string): boolean {
    const b = this.bool(name);
    if (b === undefined) throw missing(this.path(name));
    return b;
  }

  /** A structure member: a view under `name.`, or undefined when no key starts with it. */
  struct(name: string): QueryParams | undefined {
    return this.has(name) ? new QueryParams(this.#all, `${this.#prefix}${name}.`) : undefined;
  }

  /** The member indexes present for a list (`name.member.N...`), sorted; `name=` gives []. */
  #indexes(name: string): number[] | undefined {
    const base = `${this.#prefix}${name}.member.`;
    const seen = new Set<number>();
    for (const key of this.#all.keys()) {
      if (!key.startsWith(base)) continue;
      const rest = key.slice(base.length);
      const m = /^(\d{1,6})(?:\.|$)/.exec(rest);
      if (m === null) throw invalid(key, '', 'is not a valid list member name (expected .member.N with N from 1)');
      const n = Number(m[1]);
      if (n < 1) throw invalid(key, '', 'list members are numbered from 1');
      seen.add(n);
    }
    if (seen.size === 0) return this.#all.has(this.#prefix + name) ? [] : undefined;
    if (seen.size > MAX_LIST_MEMBERS) {
      throw ebbError('ValidationError', `The list ${this.path(name)} has more than ${MAX_LIST_MEMBERS} members`);
    }
    return [...seen].sort((a, b) => a - b);
  }

  /** A list of strings, or undefined when absent. */
  list(name: string): string[] | undefined {
    const indexes = this.#indexes(name);
    if (indexes === undefined) return undefined;
    const out: string[] = [];
    for (const n of indexes) {
      const value = this.#all.get(`${this.#prefix}${name}.member.${n}`);
      if (value === undefined) throw invalid(`${this.path(name)}.member.${n}`, '', 'must be a string value');
      out.push(value);
    }
    return out;
  }

  /** A required, non-empty list of strings. */
  requiredList(name: string): string[] {
    const list = this.list(name);
    if (list === undefined || list.length === 0) throw missing(this.path(name));
    return list;
  }

  /** A list of structures, each a view under `name.member.N.`. */
  structList(name: string): QueryParams[] | undefined {
    const indexes = this.#indexes(name);
    if (indexes === undefined) return undefined;
    return indexes.map((n) => new QueryParams(this.#all, `${this.#prefix}${name}.member.${n}.`));
  }

  requiredStructList(name: string): QueryParams[] {
    const list = this.structList(name);
    if (list === undefined || list.length === 0) throw missing(this.path(name));
    return list;
  }
}

/** AWS's wording for a missing required member, with the wire name. */
export function missing(path: string): Error {
  return ebbError('ValidationError', `1 validation error detected: Value null at '${path}' failed to satisfy constraint: Member must not be null`);
}

export function invalid(path: string, value: string, problem: string): Error {
  const shown = value.length > 100 ? `${value.slice(0, 100)}...` : value;
  return ebbError('ValidationError', `1 validation error detected: Value '${shown}' at '${path}' failed to satisfy constraint: ${problem}`);
}
