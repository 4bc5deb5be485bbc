import { ebbError } from '../../shared/errors.ts';

/** A JSON value as an AWS JSON protocol body holds it. */
export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };
export type JsonObject = { [key: string]: JsonValue };

/**
 * The members of an AWS JSON 1.1 request body, read by type. A member of the wrong type, a required
 * one missing, or a blob that is not base64 is a ValidationException naming the member, as ACM answers
 * a request its model refuses. Members are looked up as own properties only (`__proto__` finds nothing).
 */
export class JsonInput {
  readonly #o: Readonly<Record<string, unknown>>;
  readonly #path: string;

  constructor(value: unknown, path = '') {
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      throw ebbError('ValidationException', `${path === '' ? 'The request body' : path} must be a JSON object`);
    }
    this.#o = value as Record<string, unknown>;
    this.#path = path;
  }

  /** Parses a request body; an empty body is `{}` (operations without input members). */
  static parse(body: string): JsonInput {
    if (body.trim() === '') return new JsonInput({});
    let value: unknown;
    try {
      value = JSON.parse(body);
    } catch (error) {
      throw ebbError('ValidationException', `The request body is not valid JSON (${(error as Error).message}); send AWS JSON 1.1, as the AWS SDKs and the aws CLI do`);
    }
    return new JsonInput(value);
  }

  has(name: string): boolean {
    return this.#get(name) !== undefined;
  }

  optionalString(name: string): string | undefined {
    const v = this.#get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'string') throw this.#invalid(name, 'a string');
    return v;
  }

  requiredString(name: string): string {
    const v = this.optionalString(name);
    if (v === undefined) throw this.#missing(name);
    return v;
  }

  /** A blob member: base64 in JSON, returned decoded as UTF-8 text (PEM). `max` is the model's length bound in bytes. */
  optionalBlob(name: string, max: number): string | undefined {
    const v = this.optionalString(name);
    if (v === undefined) return undefined;
    if (!/^[A-Za-z0-9+/]*={0,2}$/.test(v.replace(/\s/g, ''))) throw this.#invalid(name, 'base64 (a blob)');
    const bytes = Buffer.from(v, 'base64');
    if (bytes.length < 1 || bytes.length > max) {
      throw ebbError('ValidationException', `${this.#name(name)} must be 1 to ${max} bytes; got ${bytes.length}`);
    }
    return bytes.toString('utf8');
  }

  requiredBlob(name: string, max: number): string {
    const v = this.optionalBlob(name, max);
    if (v === undefined) throw this.#missing(name);
    return v;
  }

  optionalInt(name: string, min: number, max: number): number | undefined {
    const v = this.#get(name);
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) throw this.#invalid(name, `an integer from ${min} to ${max}`);
    return v;
  }

  optionalEnum<T extends string>(name: string, values: readonly T[]): T | undefined {
    const v = this.optionalString(name);
    if (v === undefined) return undefined;
    if (!(values as readonly string[]).includes(v)) throw this.#invalid(name, `one of ${values.join(', ')}`);
    return v as T;
  }

  optionalStringList(name: string): string[] | undefined {
    const v = this.#get(name);
    if (v === undefined) return undefined;
    if (!Array.isArray(v) || !v.every((x) => typeof x === 'string')) throw this.#invalid(name, 'a list of strings');
    return v as string[];
  }

  optionalEnumList<T extends string>(name: string, values: readonly T[]): T[] | undefined {
    const list = this.optionalStringList(name);
    const bad = list?.find((x) => !(values as readonly string[]).includes(x));
    if (bad !== undefined) throw ebbError('ValidationException', `${this.#name(name)} holds '${bad}', which is not one of ${values.join(', ')}`);
    return list as T[] | undefined;
  }

  optionalObject(name: string): JsonInput | undefined {
    const v = this.#get(name);
    return v === undefined ? undefined : new JsonInput(v, this.#name(name));
  }

  requiredObjectList(name: string): JsonInput[] {
    const v = this.#get(name);
    if (v === undefined) throw this.#missing(name);
    if (!Array.isArray(v)) throw this.#invalid(name, 'a list');
    return v.map((x, i) => new JsonInput(x, `${this.#name(name)}[${i}]`));
  }

  #get(name: string): unknown {
    if (!Object.hasOwn(this.#o, name)) return undefined;
    const v = this.#o[name];
    return v === null ? undefined : v;
  }

  #name(name: string): string {
    return this.#path === '' ? name : `${this.#path}.${name}`;
  }

  #missing(name: string): Error {
    return ebbError('ValidationException', `${this.#name(name)} is required`);
  }

  #invalid(name: string, what: string): Error {
    return ebbError('ValidationException', `${this.#name(name)} must be ${what}`);
  }
}
