import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { ADMIN_ENDPOINT_FILE, readAdminEndpoint } from '../shared/admin-endpoint-file.ts';
import { CREDENTIALS_FILE_NAME, CREDENTIALS_PROFILE, parseCredentialsFile } from '../shared/credentials-file.ts';
import { CliError, EXIT, usageError } from './exit-codes.ts';

/** Where ebb serve listens for admin requests when not told otherwise (`--admin`). */
export const DEFAULT_ENDPOINT = 'http://127.0.0.1:9900';
export const DEFAULT_STATE_DIR = './.ebb';
/** ebb's region when its file sets none (`admin.region`), as the AWS tools default to it too. */
export const DEFAULT_REGION = 'us-east-1';

export interface CliCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  readonly sessionToken?: string;
  /** Where they came from, named in messages: `EBB_ACCESS_KEY_ID`, the file's path, `AWS_ACCESS_KEY_ID`. */
  readonly source: string;
}

/** How the client reaches ebb and signs, and where each part came from (for error messages). */
export interface Connection {
  readonly endpoint: URL;
  readonly endpointSource: string;
  /** null: none found; requests go unsigned (an ebb started with --no-auth takes them). */
  readonly credentials: CliCredentials | null;
  readonly region: string;
  readonly regionSource: string;
  /** The places searched for credentials, in order, for the message when none were found. */
  readonly searched: readonly string[];
}

export interface ConnectionInput {
  readonly endpoint?: string | undefined;
  readonly stateDir?: string | undefined;
  readonly region?: string | undefined;
  readonly env: NodeJS.ProcessEnv;
  readonly cwd: string;
}

const nonEmpty = (v: string | undefined): string | undefined => (v === undefined || v.trim() === '' ? undefined : v.trim());

/** An endpoint as given: a URL, or HOST:PORT taken as http (as `ebb serve` prints its admin address). */
export function parseEndpoint(text: string, source: string): URL {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw usageError(`${source} '${text}' is not a URL; write it as http://HOST:PORT (for example ${DEFAULT_ENDPOINT}).`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw usageError(`${source} '${text}' must be an http:// or https:// URL (for example ${DEFAULT_ENDPOINT}).`);
  }
  if (url.pathname !== '/' || url.search !== '' || url.hash !== '') {
    throw usageError(`${source} '${text}' must be the admin endpoint's root, without a path (for example ${url.origin}).`);
  }
  return url;
}

/**
 * The endpoint (`--endpoint`, `EBB_ENDPOINT`, else the local default), the credentials and the
 * region. Credentials: `EBB_ACCESS_KEY_ID`/`EBB_SECRET_ACCESS_KEY`, else the state directory's
 * `credentials` file (`--state-dir`, `EBB_STATE_DIR`, else ./.ebb), else the AWS environment
 * variables — ebb's own first, so a machine with real AWS keys exported still signs its local ebb's
 * requests with ebb's.
 */
export function resolveConnection(input: ConnectionInput): Connection {
  const { env } = input;
  const givenEndpoint = nonEmpty(input.endpoint);
  const envEndpoint = nonEmpty(env['EBB_ENDPOINT']);
  const stateDirGiven = nonEmpty(input.stateDir) ?? nonEmpty(env['EBB_STATE_DIR']) ?? DEFAULT_STATE_DIR;
  const stateDirPath = resolve(input.cwd, stateDirGiven);
  // A running ebb serve writes where its admin API listens into its state directory.
  const fromStateDir = givenEndpoint === undefined && envEndpoint === undefined ? readAdminEndpoint(stateDirPath) : null;
  const endpointFile = join(stateDirPath, ADMIN_ENDPOINT_FILE);
  const [endpoint, endpointSource] =
    givenEndpoint !== undefined
      ? [parseEndpoint(givenEndpoint, '--endpoint'), '--endpoint']
      : envEndpoint !== undefined
        ? [parseEndpoint(envEndpoint, 'EBB_ENDPOINT'), 'EBB_ENDPOINT']
        : fromStateDir !== null
          ? [parseEndpoint(fromStateDir, endpointFile), endpointFile]
          : [new URL(DEFAULT_ENDPOINT), 'the default'];

  const file = join(stateDirPath, CREDENTIALS_FILE_NAME);
  const searched = ['EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY', file, 'AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY'];

  let credentials: CliCredentials | null = null;
  let fileRegion: string | undefined;
  const ebbKey = nonEmpty(env['EBB_ACCESS_KEY_ID']);
  const ebbSecret = nonEmpty(env['EBB_SECRET_ACCESS_KEY']);
  if ((ebbKey === undefined) !== (ebbSecret === undefined)) {
    throw new CliError(
      EXIT.credentials,
      'CredentialsIncomplete',
      `${ebbKey === undefined ? 'EBB_SECRET_ACCESS_KEY' : 'EBB_ACCESS_KEY_ID'} is set but ${ebbKey === undefined ? 'EBB_ACCESS_KEY_ID' : 'EBB_SECRET_ACCESS_KEY'} is not: set both, or neither to use ${file}.`,
    );
  }
  if (ebbKey !== undefined && ebbSecret !== undefined) {
    credentials = { accessKeyId: ebbKey, secretAccessKey: ebbSecret, source: 'EBB_ACCESS_KEY_ID' };
  } else {
    const text = readIfThere(file);
    if (text !== null) {
      const parsed = parseCredentialsFile(text);
      if (parsed === null) {
        throw new CliError(
          EXIT.credentials,
          'CredentialsInvalid',
          `${file} has no [${CREDENTIALS_PROFILE}] profile with aws_access_key_id and aws_secret_access_key. ebb serve writes it at its first start; fix it, or set EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY.`,
        );
      }
      credentials = { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey, source: file };
      fileRegion = parsed.region;
    } else {
      const awsKey = nonEmpty(env['AWS_ACCESS_KEY_ID']);
      const awsSecret = nonEmpty(env['AWS_SECRET_ACCESS_KEY']);
      if (awsKey !== undefined && awsSecret !== undefined) {
        const token = nonEmpty(env['AWS_SESSION_TOKEN']);
        credentials = { accessKeyId: awsKey, secretAccessKey: awsSecret, ...(token !== undefined && { sessionToken: token }), source: 'AWS_ACCESS_KEY_ID' };
      }
    }
  }

  const regionGiven = nonEmpty(input.region);
  const [region, regionSource] =
    regionGiven !== undefined
      ? [regionGiven, '--region']
      : fileRegion !== undefined
        ? [fileRegion, file]
        : nonEmpty(env['AWS_REGION']) !== undefined
          ? [nonEmpty(env['AWS_REGION']) as string, 'AWS_REGION']
          : nonEmpty(env['AWS_DEFAULT_REGION']) !== undefined
            ? [nonEmpty(env['AWS_DEFAULT_REGION']) as string, 'AWS_DEFAULT_REGION']
            : [DEFAULT_REGION, 'the default'];
  return { endpoint, endpointSource, credentials, region, regionSource, searched };
}

function readIfThere(file: string): string | null {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'ENOTDIR') return null;
    if (code === 'EACCES') {
      throw new CliError(
        EXIT.credentials,
        'CredentialsUnreadable',
        `Cannot read ${file}: permission denied. Run as the user that runs ebb serve, or set EBB_ACCESS_KEY_ID and EBB_SECRET_ACCESS_KEY.`,
      );
    }
    throw new CliError(EXIT.credentials, 'CredentialsUnreadable', `Cannot read ${file}: ${(error as Error).message}.`);
  }
}
