import { ASSETS_PATH } from './assets.ts';

/**
 * The pages the server writes itself: signing in (a plain form, no script, so it works whatever
 * fails to load) and the hop after a sign-in link.
 */

function escape(text: string): string {
  return text.replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function page(title: string, body: string, head = ''): string {
  return `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>${escape(title)}</title>
<link rel="icon" href="${ASSETS_PATH}favicon.svg">
<link rel="stylesheet" href="${ASSETS_PATH}app.css">
${head}</head>
<body class="signin">
${body}
</body>
</html>
`;
}

export interface SignInPage {
  /** Shown above the form: why the visitor is here (a used link, a wrong key, an ended session). */
  readonly message?: string;
  readonly error?: boolean;
  /** The access key id to fill in again after a failed attempt (never the secret). */
  readonly accessKeyId?: string;
}

/** The sign-in form: the admin credentials, posted to /dashboard/sign-in. */
export function signInPage(p: SignInPage = {}): string {
  const message =
    p.message === undefined ? '' : `<p class="${p.error === true ? 'notice error' : 'notice'}" role="${p.error === true ? 'alert' : 'status'}">${escape(p.message)}</p>\n`;
  return page(
    'Sign in · ebb',
    `<main class="signin-box">
<h1><span class="logo">ebb</span> dashboard</h1>
${message}<form method="post" action="/dashboard/sign-in" autocomplete="off">
<label>Access key ID <input name="accessKeyId" required spellcheck="false" autocapitalize="off" value="${escape(p.accessKeyId ?? '')}"></label>
<label>Secret access key <input name="secretAccessKey" type="password" required></label>
<button type="submit">Sign in</button>
</form>
<p class="hint">Use ebb's admin credentials (with none configured, ebb keeps them in <code>&lt;state-dir&gt;/credentials</code>), or run <code>ebb dashboard</code> for a one-time sign-in link.</p>
</main>`,
  );
}

/**
 * After a sign-in link: go on to the dashboard from this page rather than by a redirect. The link
 * may be opened from another site (a chat, a mail), and a browser does not send a SameSite=Strict
 * cookie on a redirect that such a navigation started; a navigation the page itself starts is
 * same-site, so the cookie just set comes along.
 */
export function continuePage(to: string): string {
  return page(
    'Signed in · ebb',
    `<main class="signin-box"><h1><span class="logo">ebb</span> dashboard</h1><p class="notice">Signed in. <a href="${escape(to)}">Continue to the dashboard</a>.</p></main>`,
    `<meta http-equiv="refresh" content="0; url=${escape(to)}">\n`,
  );
}
