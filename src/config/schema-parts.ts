import { z } from 'zod';

/**
 * The building blocks of the file's schemas (schema.ts, autoscaling-schema.ts). Every leaf carries its
 * expectation as a phrase ("an integer from 1 to 65535"); `load-config.ts` turns an issue into
 * `must be <phrase>; got <value>` or `is required (<phrase>)`. Issues flagged `params.sentence` carry a
 * whole sentence (the domain's own message) and are shown as they are.
 */

export const expect = (phrase: string) => ({ error: () => phrase });

export function leaf<T>(phrase: string, test: (v: unknown) => boolean) {
  return z.custom<T>(test, expect(phrase));
}

/** An object whose unknown keys are errors that list the allowed ones. */
export function strict<S extends z.ZodRawShape>(shape: S, what = 'a mapping') {
  const allowed = Object.keys(shape).join(', ');
  return z.strictObject(shape, { error: (iss) => (iss.code === 'unrecognized_keys' ? allowed : what) });
}

export function list<T extends z.ZodType>(element: T) {
  return z.array(element, expect('a list'));
}

export const intIn = (lo: number, hi: number) =>
  leaf<number>(`an integer from ${lo} to ${hi}`, (v) => typeof v === 'number' && Number.isInteger(v) && v >= lo && v <= hi);

export const text = leaf<string>('a non-empty string', (v) => typeof v === 'string' && v.length > 0);
export const bool = leaf<boolean>('true or false', (v) => typeof v === 'boolean');
export const oneOf = <const T extends readonly string[]>(values: T) =>
  leaf<T[number]>(`one of ${values.join(', ')}`, (v) => typeof v === 'string' && values.includes(v));

/**
 * A string the domain checks: its error message (the API's own wording, so file and API agree) is
 * the problem shown, as a sentence.
 */
export function checkedText(check: (v: string) => void) {
  return text.superRefine((v, ctx) => {
    try {
      check(v);
    } catch (err) {
      ctx.addIssue({ code: 'custom', message: (err as Error).message, params: { sentence: true } });
    }
  });
}
