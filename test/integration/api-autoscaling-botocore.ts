import { spawn, spawnSync, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createInterface } from 'node:readline';
import { autoscalingHandler } from '../../src/api/autoscaling/actions.ts';
import type { ApiContext } from '../../src/api/handler.ts';
import { parseQueryString, QueryParams } from '../../src/api/query-parser.ts';
import { successXml } from '../../src/api/xml.ts';
import type { ControlApi } from '../../src/control/control-api.ts';
import type { FakeAutoScalingApi } from '../fakes/fake-autoscaling-api.ts';

/**
 * botocore as the judge of ebb's Auto Scaling wire format, in one Python process for a whole test
 * file (JSON lines in and out):
 * - `serialize(operation, params)`: the form body botocore's Query serializer sends for these
 *   parameters, which is what the `aws` CLI v1 and boto3 send once they have their input dict;
 * - `parse(operation, xml)`: botocore's Query parser on ebb's answer with the operation's output shape,
 *   plus a walk of the XML against that shape that botocore's parser does not do (it drops elements
 *   it does not know): every element a member of its shape, required members present, integers,
 *   booleans and timestamps well formed, enum values in their set, string lengths within the model's.
 */

const SCRIPT = String.raw`
import json, sys, datetime
import xml.etree.ElementTree as ET
import botocore.session
from botocore import serialize, parsers
from botocore.utils import percent_encode_sequence, parse_timestamp

model = botocore.session.get_session().get_service_model('autoscaling')
checked = serialize.create_serializer('query', include_validation=True)
unchecked = serialize.create_serializer('query', include_validation=False)
parser = parsers.create_parser('query')

def local(tag):
    return tag.split('}', 1)[-1]

def walk(shape, el, path, problems):
    t = shape.type_name
    if t == 'structure':
        by_wire = {m.serialization.get('name', n): n for n, m in shape.members.items()}
        seen = set()
        for child in el:
            tag = local(child.tag)
            if tag not in by_wire:
                problems.append(f'{path}.{tag}: not a member of {shape.name}')
                continue
            if tag in seen:
                problems.append(f'{path}.{tag}: given twice')
            seen.add(tag)
            walk(shape.members[by_wire[tag]], child, f'{path}.{tag}', problems)
        for name in shape.required_members:
            if shape.members[name].serialization.get('name', name) not in seen:
                problems.append(f'{path}.{name}: required member missing')
        return
    if t == 'list':
        for i, child in enumerate(el):
            if local(child.tag) != 'member':
                problems.append(f'{path}[{i}]: list item is <{local(child.tag)}>, not <member>')
            walk(shape.member, child, f'{path}[{i}]', problems)
        return
    if len(el):
        problems.append(f'{path}: a {t} with child elements')
        return
    text = el.text or ''
    m = shape.metadata
    if t == 'string':
        if shape.enum and text not in shape.enum:
            problems.append(f'{path}: {text!r} is not one of {shape.enum}')
        if 'min' in m and len(text) < m['min']:
            problems.append(f'{path}: {text!r} shorter than {m["min"]}')
        if 'max' in m and len(text) > m['max']:
            problems.append(f'{path}: longer than {m["max"]}')
    elif t in ('integer', 'long'):
        try:
            n = int(text)
            if 'min' in m and n < m['min']:
                problems.append(f'{path}: {n} below {m["min"]}')
            if 'max' in m and n > m['max']:
                problems.append(f'{path}: {n} above {m["max"]}')
        except ValueError:
            problems.append(f'{path}: {text!r} is not an integer')
    elif t == 'boolean':
        if text not in ('true', 'false'):
            problems.append(f'{path}: {text!r} is not true or false')
    elif t == 'timestamp':
        try:
            parse_timestamp(text)
        except Exception:
            problems.append(f'{path}: {text!r} is not a timestamp')
    elif t == 'double':
        try:
            float(text)
        except ValueError:
            problems.append(f'{path}: {text!r} is not a number')

def check(op, xml):
    problems = []
    root = ET.fromstring(xml)
    if local(root.tag) != op.name + 'Response':
        problems.append(f'root is <{local(root.tag)}>')
    shape = op.output_shape
    results = [c for c in root if local(c.tag) == op.name + 'Result']
    if shape is None:
        if results:
            problems.append('a Result element for an operation with no output shape')
    elif not results:
        problems.append('no Result element')
    else:
        walk(shape, results[0], op.name + 'Result', problems)
    return problems

def plain(value):
    return json.loads(json.dumps(value, default=lambda v: v.isoformat() if isinstance(v, datetime.datetime) else str(v)))

for line in sys.stdin:
    req = json.loads(line)
    try:
        op = model.operation_model(req['operation'])
        if req['kind'] == 'serialize':
            s = checked if req.get('validate', True) else unchecked
            body = s.serialize_to_request(req['params'], op)['body']
            out = {'body': percent_encode_sequence(body)}
        else:
            problems = check(op, req['xml'])
            try:
                parsed = parser.parse({'body': req['xml'].encode(), 'headers': {}, 'status_code': 200}, op.output_shape)
                parsed.pop('ResponseMetadata', None)
            except Exception as e:
                parsed = None
                problems.append(f'botocore cannot parse it: {type(e).__name__}: {e}')
            out = {'parsed': plain(parsed), 'problems': problems}
    except Exception as e:
        out = {'error': f'{type(e).__name__}: {e}'}
    print(json.dumps(out), flush=True)
`;

export interface Checked {
  /** What botocore's parser made of the answer (timestamps as ISO text). */
  readonly parsed: any;
  /** Where the XML strays from the model; empty when it fits. */
  readonly problems: string[];
}

export class Botocore {
  readonly #child: ChildProcessWithoutNullStreams;
  readonly #waiting: Array<(line: string) => void> = [];

  constructor() {
    this.#child = spawn('python3', ['-c', SCRIPT], { stdio: ['pipe', 'pipe', 'pipe'] });
    let stderr = '';
    this.#child.stderr.on('data', (d: Buffer) => (stderr += d.toString()));
    createInterface({ input: this.#child.stdout }).on('line', (line) => this.#waiting.shift()?.(line));
    this.#child.on('exit', () => {
      for (const waiter of this.#waiting.splice(0)) waiter(JSON.stringify({ error: `python exited: ${stderr}` }));
    });
  }

  #ask(request: object): Promise<any> {
    return new Promise((resolve, reject) => {
      this.#waiting.push((line) => {
        const answer = JSON.parse(line);
        if (answer.error !== undefined) reject(new Error(`botocore: ${answer.error}`));
        else resolve(answer);
      });
      this.#child.stdin.write(JSON.stringify(request) + '\n');
    });
  }

  /** The form body botocore sends for `params`; `validate: false` skips botocore's own client-side checks. */
  async serialize(operation: string, params: object, validate = true): Promise<string> {
    return (await this.#ask({ kind: 'serialize', operation, params, validate })).body;
  }

  parse(operation: string, xml: string): Promise<Checked> {
    return this.#ask({ kind: 'parse', operation, xml });
  }

  close(): void {
    this.#child.stdin.end();
    if (this.#child.exitCode === null && this.#child.pid !== undefined) this.#child.kill();
  }
}

/** Why botocore cannot judge here, or null when it can. In CI its absence fails rather than skips. */
export function missingBotocore(): string | null {
  const r = spawnSync('python3', ['-c', 'import botocore'], { encoding: 'utf8', timeout: 15_000 });
  if (r.status === 0) return null;
  const why = `botocore is not installed (${(r.stderr ?? '').trim() || String(r.error)})`;
  if (process.env['CI'] === 'true') throw new Error(`${why}; CI needs it to test API compatibility`);
  return why;
}

/**
 * Runs one Auto Scaling request, as botocore serialises `params`, through ebb's handler with `fake`
 * as the facade; resolves with the success XML (as the admin API would send it) or rejects with the
 * handler's error.
 */
export async function call(boto: Botocore, fake: FakeAutoScalingApi | undefined, operation: string, params: object, validate = true): Promise<string> {
  const body = await boto.serialize(operation, params, validate);
  const query = new QueryParams(parseQueryString(body));
  const handler = autoscalingHandler(query.str('Action') ?? '');
  if (handler === undefined) throw new Error(`no handler for ${operation}`);
  const ctx: ApiContext = {
    control: {} as ControlApi,
    ...(fake !== undefined ? { autoscaling: fake.api } : {}),
    requestId: 'req-autoscaling-test',
  };
  return successXml('autoscaling', operation, await handler(query, ctx), ctx.requestId);
}
