import { randomBytes } from 'node:crypto';
import { open, readFile, rename, stat, unlink } from 'node:fs/promises';
import { join } from 'node:path';
import type { Credential } from '../api/sigv4.ts';
import { ebbError } from '../shared/errors.ts';
import { CREDENTIALS_FILE_NAME, CREDENTIALS_PROFILE, formatCredentialsFile, parseCredentialsFile } from '../shared/credentials-file.ts';

/** The admin key pair kept in the state directory, and what happened to it at this start. */
export interface StateDirCredentials {
  readonly credential: Credential;
  readonly file: string;
  /** made: this start made the pair; kept: it was there already. */
  readonly how: 'made' | 'kept';
  /** The file's region was not ebb's and was rewritten (the keys kept). */
  readonly regionRewritten: boolean;
  /** The file can be read by others than its owner (it should be 0600). */
  readonly tooOpen: boolean;
}

const BASE32 = 'ABCDEFGHIJKLMNOPQRSTUVWXYZ234567';

/**
 * A new key pair in the shape of AWS's: a 20-character access key id of capitals and digits (ebb's
 * start with `EBB`, as AWS's long-term keys start with `AKIA`) and a 40-character secret. 136 random
 * bits in the id, 240 in the secret.
 */
export function newKeyPair(): Credential {
  const id = [...randomBytes(17)].map((b) => BASE32[b & 31]).join('');
  return { accessKeyId: `EBB${id}`, secretAccessKey: randomBytes(30).toString('base64') };
}

/**
 * The admin credentials of `<stateDir>/credentials`: read when the file is there (its keys are never
 * made again, and a region other than ebb's is rewritten so the profile keeps working), else made and
 * written there, mode 0600, created exclusively so two starts cannot both write one. Throws ConfigInvalid
 * when the file is there but holds no `[ebb]` key pair, saying how to get a new one.
 */
export async function stateDirCredentials(stateDir: string, region: string, now: () => Date = () => new Date()): Promise<StateDirCredentials> {
  const file = join(stateDir, CREDENTIALS_FILE_NAME);
  let text: string | null;
  try {
    text = await readFile(file, 'utf8');
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOENT') throw error;
    text = null;
  }
  if (text === null) {
    const credential = newKeyPair();
    // `wx`: fails if the file appeared meanwhile, rather than overwrite another start's keys.
    const handle = await open(file, 'wx', 0o600);
    try {
      await handle.writeFile(formatCredentialsFile({ ...credential, region }, now(), file));
      await handle.sync();
    } finally {
      await handle.close();
    }
    return { credential, file, how: 'made', regionRewritten: false, tooOpen: false };
  }
  const parsed = parseCredentialsFile(text);
  if (parsed === null) {
    throw ebbError(
      'ConfigInvalid',
      `${file} has no [${CREDENTIALS_PROFILE}] profile with aws_access_key_id and aws_secret_access_key. Fix it, or delete it to have ebb make a new pair at its next start`,
    );
  }
  const credential = { accessKeyId: parsed.accessKeyId, secretAccessKey: parsed.secretAccessKey };
  const mode = (await stat(file)).mode;
  let regionRewritten = false;
  if (parsed.region !== region) {
    await writeAtomically(file, formatCredentialsFile({ ...credential, region }, now(), file));
    regionRewritten = true;
  }
  return { credential, file, how: 'kept', regionRewritten, tooOpen: !regionRewritten && (mode & 0o077) !== 0 };
}

/** Replaces the file in one step (a reader sees the old text or the new), mode 0600. */
async function writeAtomically(file: string, text: string): Promise<void> {
  const tmp = `${file}.${process.pid}.tmp`;
  const handle = await open(tmp, 'w', 0o600);
  try {
    await handle.writeFile(text);
    await handle.sync();
  } finally {
    await handle.close();
  }
  try {
    await rename(tmp, file);
  } catch (error) {
    await unlink(tmp).catch(() => undefined);
    throw error;
  }
}

/** The command line that uses the file against the admin endpoint, as ebb prints it. */
export function credentialsUsage(file: string, endpoint: string): string {
  return `AWS_SHARED_CREDENTIALS_FILE=${file} AWS_PROFILE=${CREDENTIALS_PROFILE} AWS_ENDPOINT_URL=${endpoint} aws elbv2 describe-target-groups`;
}
