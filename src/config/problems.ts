import { isAlias, isMap, isScalar, isSeq, type Document, type LineCounter, type Node } from 'yaml';

export type PathSegment = string | number;

/** One thing wrong with the file, at a field path. `at: 'key'` points at the key rather than its value. */
export interface Problem {
  readonly path: readonly PathSegment[];
  readonly message: string;
  readonly at?: 'key' | 'value';
  /** No field path to show (YAML syntax errors). */
  readonly bare?: boolean;
}

/** A located problem, ready to print. */
export interface LocatedProblem extends Problem {
  readonly line: number;
  readonly col: number;
}

const IDENTIFIER = /^[A-Za-z_$][A-Za-z0-9_$]*$/;

/** `targetGroups[0].healthCheck.intervalSeconds`; keys that are not identifiers in brackets: `attributes["a.b"]`. */
export function formatPath(path: readonly PathSegment[]): string {
  if (path.length === 0) return 'top level';
  let out = '';
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else if (IDENTIFIER.test(seg)) out += out === '' ? seg : `.${seg}`;
    else out += `[${JSON.stringify(seg)}]`;
  }
  return out;
}

/** A value as a reader recognises it from the file. */
export function describeValue(v: unknown): string {
  if (v === null) return 'no value';
  if (typeof v === 'string') return JSON.stringify(v.length > 60 ? `${v.slice(0, 57)}...` : v);
  if (typeof v === 'number' || typeof v === 'boolean') return String(v);
  if (Array.isArray(v)) return 'a list';
  if (typeof v === 'object') return 'a mapping';
  return typeof v;
}

/**
 * Finds where a field path is in the YAML document (1-based line and column). A path that does not
 * exist in full (a missing key) points at the deepest node that does, such as the enclosing mapping.
 */
export function locate(doc: Document, lineCounter: LineCounter, problem: Problem): { line: number; col: number } {
  let node: unknown = doc.contents;
  let offset = rangeStart(node) ?? 0;
  const { path } = problem;
  for (let i = 0; i < path.length; i++) {
    const seg = path[i];
    if (isAlias(node)) node = node.resolve(doc);
    let next: unknown;
    let keyNode: unknown;
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(seg));
      if (pair === undefined) break;
      keyNode = pair.key;
      next = pair.value ?? pair.key;
      if (i === path.length - 1 && problem.at === 'key') {
        offset = rangeStart(keyNode) ?? offset;
        break;
      }
      // `port:` with no value: point at the key, the empty value has no useful position.
      if (isScalar(next) && next.value === null && next.source === '') next = keyNode;
    } else if (isSeq(node) && typeof seg === 'number') {
      next = node.items[seg];
      if (next === undefined) break;
    } else {
      break;
    }
    node = next;
    offset = rangeStart(node) ?? offset;
  }
  return lineCounter.linePos(offset);
}

function rangeStart(node: unknown): number | undefined {
  return (node as Node | null)?.range?.[0];
}

/** `file:line:col: path: message`, one per line, in file order. */
export function formatProblems(fileName: string, problems: readonly LocatedProblem[]): string {
  const sorted = [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
  const lines = sorted.map((p) => `${fileName}:${p.line}:${p.col}: ${p.bare === true ? '' : `${formatPath(p.path)}: `}${p.message}`);
  return [...new Set(lines)].join('\n');
}
