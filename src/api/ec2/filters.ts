import type { Tag } from '../../domain/resources.ts';
import { ebbError } from '../../shared/errors.ts';
import { type Ec2Params, missingParameter } from './ec2-params.ts';

/**
 * EC2's `Filter.N.Name` / `Filter.N.Value.M` (ec2 2016-11-15, shape `Filter`): a resource matches when
 * every filter matches, and a filter matches when any of its values does. Values may use `*` (any
 * run of characters) and `?` (one character), as EC2's do; matching is case-sensitive.
 */
export interface Filter {
  readonly name: string;
  readonly values: readonly string[];
}

/** At most this many filters, and values per filter (EC2 allows 200 values in all; ebb is more generous per filter). */
const MAX_FILTERS = 50;
const MAX_VALUES = 200;

export function readFilters(p: Ec2Params): Filter[] {
  const list = p.structList('Filter') ?? [];
  if (list.length > MAX_FILTERS) throw ebbError('InvalidParameterValue', `At most ${MAX_FILTERS} filters can be given; this request has ${list.length}`);
  return list.map((f) => {
    const name = f.str('Name');
    if (name === undefined || name === '') throw missingParameter(f.path('Name'));
    const values = f.list('Value') ?? [];
    if (values.length > MAX_VALUES) throw ebbError('InvalidParameterValue', `The filter '${name}' has ${values.length} values; at most ${MAX_VALUES} are allowed`);
    return { name, values };
  });
}

/**
 * Keeps the resources every filter matches. `fields` gives, for each filter name the action knows,
 * a resource's values under it (it matches when any of them does); `tag:KEY`, `tag-key` and
 * `tag-value` come from its tags. A filter name the action does not know is
 * InvalidParameterValue naming the ones it does, since ignoring it would answer with resources the
 * caller asked to leave out.
 */
export function applyFilters<T>(resources: readonly T[], filters: readonly Filter[], fields: Readonly<Record<string, (r: T) => readonly string[]>>, tags: (r: T) => readonly Tag[]): T[] {
  const fieldMap = new Map(Object.entries(fields));
  const checks = filters.map((f) => {
    const patterns = f.values.map(pattern);
    const matches = (candidates: readonly string[]): boolean => candidates.some((c) => patterns.some((tokens) => globMatch(tokens, c)));
    if (f.name.startsWith('tag:')) {
      const key = f.name.slice(4);
      return (r: T): boolean => matches(tags(r).filter((t) => t.key === key).map((t) => t.value));
    }
    if (f.name === 'tag-key') return (r: T): boolean => matches(tags(r).map((t) => t.key));
    if (f.name === 'tag-value') return (r: T): boolean => matches(tags(r).map((t) => t.value));
    const field = fieldMap.get(f.name);
    if (field === undefined) {
      throw ebbError(
        'InvalidParameterValue',
        `The filter '${f.name}' is invalid: ebb filters by ${[...fieldMap.keys(), 'tag:<key>', 'tag-key', 'tag-value'].join(', ')}`,
      );
    }
    return (r: T): boolean => matches(field(r));
  });
  return resources.filter((r) => checks.every((check) => check(r)));
}

type Token = { readonly kind: 'star' } | { readonly kind: 'one' } | { readonly kind: 'char'; readonly c: string };

/** A filter value as a pattern: `*` is any run of characters, `?` one character, `\` escapes the next. */
function pattern(value: string): Token[] {
  const chars = [...value];
  const tokens: Token[] = [];
  for (let i = 0; i < chars.length; i++) {
    const c = chars[i] ?? '';
    if (c === '\\' && i + 1 < chars.length) tokens.push({ kind: 'char', c: chars[++i] ?? '' });
    else if (c === '*') tokens.push({ kind: 'star' });
    else if (c === '?') tokens.push({ kind: 'one' });
    else tokens.push({ kind: 'char', c });
  }
  return tokens;
}

/**
 * Whether the whole text matches the pattern. Greedy with one remembered star, so O(pattern × text)
 * at worst: no regular expression whose backtracking a hostile value could make explode.
 */
function globMatch(tokens: readonly Token[], text: string): boolean {
  const chars = [...text];
  let t = 0;
  let p = 0;
  let star = -1;
  let resume = 0;
  while (t < chars.length) {
    const token = tokens[p];
    if (token !== undefined && (token.kind === 'one' || (token.kind === 'char' && token.c === chars[t]))) {
      p++;
      t++;
    } else if (token?.kind === 'star') {
      star = p++;
      resume = t;
    } else if (star !== -1) {
      p = star + 1;
      t = ++resume;
    } else {
      return false;
    }
  }
  while (tokens[p]?.kind === 'star') p++;
  return p === tokens.length;
}
