/**
 * The admin credentials ebb makes at its first start, kept as `<state-dir>/credentials` in the AWS
 * shared-credentials format (an INI file; https://docs.aws.amazon.com/sdkref/latest/guide/file-format.html)
 * with one `[ebb]` profile that carries ebb's region too. botocore (the aws CLI, boto3) and the JS SDK
 * read a profile's settings from the credentials file as well as from the config file, so
 * `AWS_SHARED_CREDENTIALS_FILE=… AWS_PROFILE=ebb AWS_ENDPOINT_URL=…` is all a client needs. The ebb
 * command-line client reads the same file from the state directory. Pure text in, text out: the file
 * itself is read and written by `src/main`.
 */
export const CREDENTIALS_FILE_NAME = 'credentials';
export const CREDENTIALS_PROFILE = 'ebb';

export interface FileCredentials {
  readonly accessKeyId: string;
  readonly secretAccessKey: string;
  /** The profile's `region`, if it has one. */
  readonly region: string | undefined;
}

/** The file's text: a comment saying what it is and how to use it, then the `[ebb]` profile. */
export function formatCredentialsFile(c: { accessKeyId: string; secretAccessKey: string; region: string }, createdAt: Date, path: string): string {
  return [
    `# ebb's admin credentials, made at its first start (${createdAt.toISOString()}). Keep this file private:`,
    '# whoever reads it can change ebb. Delete it (with no admin.credentials or EBB_ACCESS_KEY_ID set) and',
    '# restart ebb to have a new pair made. Use it with the AWS tools (the URL is ebb\'s admin address):',
    `#   AWS_SHARED_CREDENTIALS_FILE=${path} AWS_PROFILE=${CREDENTIALS_PROFILE} AWS_ENDPOINT_URL=http://127.0.0.1:9900 aws elbv2 describe-target-groups`,
    `[${CREDENTIALS_PROFILE}]`,
    `aws_access_key_id = ${c.accessKeyId}`,
    `aws_secret_access_key = ${c.secretAccessKey}`,
    `region = ${c.region}`,
    '',
  ].join('\n');
}

/**
 * The `[profile]` section of a shared-credentials file, or null when the file has no such section or
 * the section lacks a key or secret. Comments start with `#` or `;`; keys are case-insensitive.
 */
export function parseCredentialsFile(text: string, profile = CREDENTIALS_PROFILE): FileCredentials | null {
  let inProfile = false;
  const values = new Map<string, string>();
  for (const raw of text.split(/\r?\n/)) {
    const line = raw.trim();
    if (line === '' || line.startsWith('#') || line.startsWith(';')) continue;
    const section = /^\[\s*([^\]]+?)\s*\]$/.exec(line);
    if (section !== null) {
      inProfile = section[1] === profile;
      continue;
    }
    if (!inProfile) continue;
    const eq = line.indexOf('=');
    if (eq === -1) continue;
    values.set(line.slice(0, eq).trim().toLowerCase(), line.slice(eq + 1).trim());
  }
  const accessKeyId = values.get('aws_access_key_id');
  const secretAccessKey = values.get('aws_secret_access_key');
  if (accessKeyId === undefined || accessKeyId === '' || secretAccessKey === undefined || secretAccessKey === '') return null;
  return { accessKeyId, secretAccessKey, region: values.get('region') || undefined };
}
