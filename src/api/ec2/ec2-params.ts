import { ebbError } from '../../shared/errors.ts';
import { MAX_LIST_MEMBERS, type QueryParams } from '../query-parser.ts';

/**
 * EC2's request parameters (botocore/serialize.py, EC2Serializer): structures are `A.B` as in the
 * Query protocol, but lists are flattened, `Name.N` with N from 1, under the member's capitalised
 * `locationName` (`LaunchTemplateId.1`, `Filter.1.Value.1`, `TagSpecification.1.Tag.1.Key`), and
 * an empty list is not sent at all. Reads a QueryParams view with EC2's errors: a value of the wrong
 * type is InvalidParameterValue naming the parameter, a missing one MissingParameter.
 */
export class Ec2Params {
  readonly #p: QueryParams;

  constructor(p: QueryParams) {
    this.#p = p;
  }

  /** The full wire name of a member, for messages. */
  path(name: string): string {
    return this.#p.path(name);
  }

  has(name: string): boolean {
    return this.#p.has(name);
  }

  str(name: string): string | undefined {
    return this.#p.str(name);
  }

  requiredStr(name: string): string {
    const value = this.str(name);
    if (value === undefined || value === '') throw missingParameter(this.path(name));
    return value;
  }

  int(name: string, range: { min?: number; max?: number } = {}): number | undefined {
    const value = this.str(name);
    if (value === undefined) return undefined;
    const n = /^-?\d{1,15}$/.test(value) ? Number(value) : Number.NaN;
    if (Number.isNaN(n)) throw invalidValue(this.path(name), value, 'an integer');
    if ((range.min !== undefined && n < range.min) || (range.max !== undefined && n > range.max)) {
      throw invalidValue(this.path(name), value, `an integer from ${range.min ?? '-∞'} to ${range.max ?? '∞'}`);
    }
    return n;
  }

  bool(name: string): boolean | undefined {
    const value = this.str(name);
    if (value === undefined) return undefined;
    const lower = value.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
    throw invalidValue(this.path(name), value, 'true or false');
  }

  /** A structure member, or undefined when nothing under `name.` was sent. */
  struct(name: string): Ec2Params | undefined {
    const view = this.#p.struct(name);
    return view === undefined ? undefined : new Ec2Params(view);
  }

  /** A flattened list of strings (`name.1`, `name.2`, …), or undefined when none was sent. */
  list(name: string): string[] | undefined {
    const out: string[] = [];
    for (let n = 1; this.#p.has(`${name}.${n}`); n++) {
      if (n > MAX_LIST_MEMBERS) throw tooMany(this.path(name));
      const value = this.str(`${name}.${n}`);
      if (value === undefined) throw invalidValue(this.path(`${name}.${n}`), '', 'a string');
      out.push(value);
    }
    if (out.length === 0 && this.#p.has(name)) {
      throw invalidValue(this.path(name), this.str(name) ?? '', `a list: ${this.path(name)}.1, ${this.path(name)}.2, …`);
    }
    return out.length === 0 ? undefined : out;
  }

  /** A flattened list of structures, each a view under `name.N.`; undefined when none was sent. */
  structList(name: string): Ec2Params[] | undefined {
    const out: Ec2Params[] = [];
    for (let n = 1; ; n++) {
      const view = this.struct(`${name}.${n}`);
      if (view === undefined) break;
      if (n > MAX_LIST_MEMBERS) throw tooMany(this.path(name));
      out.push(view);
    }
    return out.length === 0 ? undefined : out;
  }
}

/** EC2's wording for a required parameter that is missing. */
export function missingParameter(path: string): Error {
  return ebbError('MissingParameter', `The request must contain the parameter ${path}`);
}

export function invalidValue(path: string, value: string, expected: string): Error {
  const shown = value.length > 100 ? `${value.slice(0, 100)}...` : value;
  return ebbError('InvalidParameterValue', `Invalid value '${shown}' for ${path}: expected ${expected}`);
}

function tooMany(path: string): Error {
  return ebbError('InvalidParameterValue', `The list ${path} has more than ${MAX_LIST_MEMBERS} members`);
}
