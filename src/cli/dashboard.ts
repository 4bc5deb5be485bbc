import { EbbRefusal, type AdminClient } from './admin-client.ts';
import { CliError, EXIT } from './exit-codes.ts';
import { printJson, type CliIo } from './output.ts';

/** Where ebb serves its dashboard on the admin endpoint. */
export const DASHBOARD_PATH = '/dashboard/';
/** ebb's JSON API call that makes a one-time sign-in link (docs/cli.md, `ebb dashboard`). */
export const SIGN_IN_LINK = 'dashboard/sign-in-link';

interface SignInLink {
  readonly url: string;
  readonly expiresAt?: string;
}

/**
 * `ebb dashboard`: asks ebb for a one-time sign-in link to its dashboard and prints it, as Jupyter
 * prints its token URL. The request is signed with the admin credentials, so only whoever holds them
 * gets a link; the link itself carries no secret that outlives its one use.
 */
export async function dashboard(client: AdminClient, io: CliIo, json: boolean): Promise<void> {
  const origin = client.connection.endpoint.origin;
  const page = await client.probe(DASHBOARD_PATH);
  if (page.status === 404) {
    throw new CliError(
      EXIT.unavailable,
      'DashboardUnavailable',
      `The ebb at ${origin} does not serve a dashboard (GET ${DASHBOARD_PATH} answered 404): this version has none yet. ` +
        `Where it has one, the dashboard is ${origin}${DASHBOARD_PATH} and this command prints a one-time sign-in link to it. Meanwhile: ebb status --watch`,
    );
  }
  let link: SignInLink;
  try {
    link = await client.postJson<SignInLink>(SIGN_IN_LINK, {});
  } catch (error) {
    if (error instanceof EbbRefusal && error.code === 'InvalidAction') {
      throw new CliError(
        EXIT.unavailable,
        'SignInLinksUnavailable',
        `The ebb at ${origin} serves its dashboard at ${origin}${DASHBOARD_PATH} but makes no one-time sign-in links; open it and sign in with the admin credentials.`,
      );
    }
    throw error;
  }
  const url = link.url.startsWith('/') ? `${origin}${link.url}` : link.url;
  if (json) {
    printJson(io, { url, expiresAt: link.expiresAt ?? null });
    return;
  }
  io.stdout.write(`Open this link to sign in to ebb's dashboard (it works once${link.expiresAt === undefined ? '' : `, until ${link.expiresAt}`}):\n\n    ${url}\n\n`);
}
