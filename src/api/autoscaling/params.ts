import { ebbError } from '../../shared/errors.ts';
import type { QueryParams } from '../query-parser.ts';

/**
 * Auto Scaling's Query parameters read with Auto Scaling's own validation wording. AWS names a
 * member by its path in lower camel case, lists as `N.member` ("Value null at 'minSize'", "Value '0'
 * at 'lifecycleHookSpecificationList.1.member.heartbeatTimeout'"), which is what scripts and
 * Terraform users search for; the ELBv2 reader (query-parser.ts) names the wire parameter instead.
 *
 * Only the shape of each value is checked here (presence, type, length, range, enum). Whether values
 * fit together or name something that exists is the facade's to say.
 */

/** The member path AWS Auto Scaling reports for a wire name: `Tags.member.2.Key` is `tags.2.member.key`. */
export function memberPath(wire: string): string {
  const parts = wire.split('.').filter((s) => s !== '');
  const out: string[] = [];
  for (let i = 0; i < parts.length; i++) {
    const part = parts[i] ?? '';
    const next = parts[i + 1];
    if (part === 'member' && next !== undefined && /^\d+$/.test(next)) {
      out.push(next, 'member');
      i++;
    } else {
      out.push(part.charAt(0).toLowerCase() + part.slice(1));
    }
  }
  return out.join('.');
}

function shown(value: string): string {
  return value.length > 100 ? `${value.slice(0, 100)}...` : value;
}

/** "1 validation error detected: Value null at 'minSize' failed to satisfy constraint: Member must not be null". */
export function nullMember(wire: string): Error {
  return ebbError('ValidationError', `1 validation error detected: Value null at '${memberPath(wire)}' failed to satisfy constraint: Member must not be null`);
}

export function badMember(wire: string, value: string, constraint: string): Error {
  return ebbError(
    'ValidationError',
    `1 validation error detected: Value '${shown(value)}' at '${memberPath(wire)}' failed to satisfy constraint: ${constraint}`,
  );
}

export interface Length {
  readonly min?: number;
  readonly max?: number;
}
export type Range = Length;

/** MaxRecords and NextToken: ebb's NextToken is an offset it gave out, opaque to the client. */
export interface Paging {
  /** The default page size and the largest MaxRecords the action takes (AWS's own for each action). */
  readonly default: number;
  readonly max: number;
}

export class AsParams {
  readonly #p: QueryParams;

  constructor(p: QueryParams) {
    this.#p = p;
  }

  #wire(name: string): string {
    return this.#p.path(name);
  }

  has(name: string): boolean {
    return this.#p.has(name);
  }

  str(name: string, length: Length = {}): string | undefined {
    const value = this.#p.str(name);
    if (value === undefined) return undefined;
    checkLength(this.#wire(name), value, length);
    return value;
  }

  /** Absent is null to AWS; an empty string fails the length constraint (min 1 unless told). */
  requiredStr(name: string, length: Length = {}): string {
    const value = this.str(name, { min: 1, ...length });
    if (value === undefined) throw nullMember(this.#wire(name));
    return value;
  }

  int(name: string, range: Range = {}): number | undefined {
    const value = this.#p.str(name);
    if (value === undefined) return undefined;
    return checkInt(this.#wire(name), value, range);
  }

  requiredInt(name: string, range: Range = {}): number {
    const n = this.int(name, range);
    if (n === undefined) throw nullMember(this.#wire(name));
    return n;
  }

  bool(name: string): boolean | undefined {
    const value = this.#p.str(name);
    if (value === undefined) return undefined;
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    throw badMember(this.#wire(name), value, 'Member must be true or false');
  }

  requiredBool(name: string): boolean {
    const b = this.bool(name);
    if (b === undefined) throw nullMember(this.#wire(name));
    return b;
  }

  /** Enums are case-sensitive, as on AWS. */
  enumOf<T extends string>(name: string, allowed: readonly T[]): T | undefined {
    const value = this.#p.str(name);
    if (value === undefined) return undefined;
    if (!(allowed as readonly string[]).includes(value)) {
      throw badMember(this.#wire(name), value, `Member must satisfy enum value set: [${allowed.join(', ')}]`);
    }
    return value as T;
  }

  requiredEnum<T extends string>(name: string, allowed: readonly T[]): T {
    const value = this.enumOf(name, allowed);
    if (value === undefined) throw nullMember(this.#wire(name));
    return value;
  }

  /** A list of strings; `count` bounds the number of members, `length` each member. */
  list(name: string, opts: { count?: Length; length?: Length } = {}): string[] | undefined {
    const values = this.#p.list(name);
    if (values === undefined) return undefined;
    const wire = this.#wire(name);
    const { count } = opts;
    if (count?.max !== undefined && values.length > count.max) {
      throw badMember(wire, `[${values.join(', ')}]`, `Member must have length less than or equal to ${count.max}`);
    }
    values.forEach((v, i) => checkLength(`${wire}.member.${i + 1}`, v, opts.length ?? {}));
    return values;
  }

  requiredList(name: string, opts: { count?: Length; length?: Length } = {}): string[] {
    const values = this.list(name, opts);
    if (values === undefined || values.length === 0) throw nullMember(this.#wire(name));
    return values;
  }

  intList(name: string, range: Range = {}): number[] | undefined {
    const values = this.#p.list(name);
    if (values === undefined) return undefined;
    const wire = this.#wire(name);
    return values.map((v, i) => checkInt(`${wire}.member.${i + 1}`, v, range));
  }

  struct(name: string): AsParams | undefined {
    const s = this.#p.struct(name);
    return s === undefined ? undefined : new AsParams(s);
  }

  structList(name: string): AsParams[] | undefined {
    return this.#p.structList(name)?.map((s) => new AsParams(s));
  }

  requiredStructList(name: string): AsParams[] {
    const list = this.structList(name);
    if (list === undefined || list.length === 0) throw nullMember(this.#wire(name));
    return list;
  }

  /** Refuses a member ebb does not serve, saying what to do instead. */
  refuse(name: string, why: string): void {
    if (this.has(name)) throw ebbError('ValidationError', `${name} is not supported by ebb: ${why}`);
  }

  /**
   * MaxRecords and NextToken, read (and checked) before the facade is asked; the pager cuts the page
   * out of what the facade answers and gives the NextToken for the next page (none on the last).
   */
  pager(paging: Paging): Pager {
    const size = this.int('MaxRecords', { min: 1, max: paging.max }) ?? paging.default;
    const token = this.#p.str('NextToken');
    let start = 0;
    if (token !== undefined && token !== '') {
      const m = /^ebb-(\d{1,9})$/.exec(Buffer.from(token, 'base64url').toString('utf8'));
      if (m === null) throw ebbError('ValidationError', `The NextToken '${shown(token)}' is not one ebb gave out; start again without NextToken`);
      start = Number(m[1]);
    }
    const end = start + size;
    return {
      upTo: end + 1,
      cut: (items) => ({
        page: items.slice(start, end),
        nextToken: end < items.length ? Buffer.from(`ebb-${end}`).toString('base64url') : undefined,
      }),
    };
  }
}

export interface Pager {
  /** How many items, from the first, fill this page and tell whether another follows. */
  readonly upTo: number;
  cut<T>(items: readonly T[]): { page: T[]; nextToken: string | undefined };
}

function checkLength(wire: string, value: string, length: Length): void {
  if (length.min !== undefined && value.length < length.min) {
    throw badMember(wire, value, `Member must have length greater than or equal to ${length.min}`);
  }
  if (length.max !== undefined && value.length > length.max) {
    throw badMember(wire, value, `Member must have length less than or equal to ${length.max}`);
  }
}

function checkInt(wire: string, value: string, range: Range): number {
  if (!/^-?\d{1,15}$/.test(value)) throw badMember(wire, value, 'Member must be an integer');
  const n = Number(value);
  if (range.min !== undefined && n < range.min) throw badMember(wire, value, `Member must have value greater than or equal to ${range.min}`);
  if (range.max !== undefined && n > range.max) throw badMember(wire, value, `Member must have value less than or equal to ${range.max}`);
  return n;
}
