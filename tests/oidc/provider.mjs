// A real OpenID Connect provider for the tests (panva's oidc-provider, certified by the OpenID
// Foundation), started by tests/accounts/sso/conftest.py on a free localhost port:
//
//   node provider.mjs CONFIG.json
//
// CONFIG names the port, any static clients (id, secret, redirect URIs) and the test accounts
// (login, password, sub, e-mail, email_verified, amr, groups); tests also register clients
// at /reg. The provider prints
// "listening <issuer>" once it accepts connections.
//
// The log-in page is this file's own (a form: login and password), so that a test decides which
// authentication methods (`amr`) the sign-in reports, as a hospital's provider would after a
// password alone or a password and a one-time code. Consent is granted with the log-in: the
// hospital's own clients need none. `clock_offset_s` shifts this provider's clock, to test a
// provider whose clock is wrong.
import http from 'node:http';
import { readFileSync } from 'node:fs';
import { URLSearchParams } from 'node:url';

import Provider from 'oidc-provider';

const config = JSON.parse(readFileSync(process.argv[2], 'utf8'));
if (config.clock_offset_s) {
  const realNow = Date.now;
  Date.now = () => realNow() + config.clock_offset_s * 1000;
}
const issuer = `http://127.0.0.1:${config.port}`;
const accounts = new Map(config.accounts.map((account) => [account.sub, account]));

function claimsOf(account) {
  const claims = { sub: account.sub, name: account.name ?? account.login };
  for (const name of ['email', 'email_verified', 'groups']) {
    if (account[name] !== undefined) claims[name] = account[name];
  }
  return claims;
}

const provider = new Provider(issuer, {
  clients: (config.clients ?? []).map((client) => ({
    client_id: client.client_id,
    client_secret: client.client_secret,
    redirect_uris: client.redirect_uris,
    grant_types: ['authorization_code'],
    response_types: ['code'],
  })),
  async findAccount(ctx, sub) {
    const account = accounts.get(sub);
    if (!account) return undefined;
    return { accountId: sub, async claims() { return claimsOf(account); } };
  },
  claims: {
    // In every ID token, as hospital providers (Entra ID, Keycloak) send it.
    openid: ['sub', 'amr'],
    email: ['email', 'email_verified'],
    profile: ['name', 'groups'],
  },
  cookies: { keys: ['test-only-cookie-key-not-a-secret'] },
  // Clients register themselves (RFC 7591), as the tests' clinics do with their own redirect
  // URIs; a hospital's IT department registers the portal by hand instead.
  features: { devInteractions: { enabled: false }, registration: { enabled: true } },
  pkce: { required: () => true },
  ttl: {
    IdToken: 600, AccessToken: 600, AuthorizationCode: 600, Session: 3600, Grant: 3600, Interaction: 3600,
  },
  renderError(ctx, out) {
    ctx.type = 'html';
    ctx.body = `<h1>Provider error</h1><pre>${escape(JSON.stringify(out))}</pre>`;
  },
});
provider.proxy = false;

function escape(text) {
  return String(text).replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

function loginPage(uid, clientId, error = '') {
  return `<!doctype html><html><head><title>Hospital sign-in</title></head><body>
<h1>Hospital sign-in</h1><p>Signing in to ${escape(clientId)}</p>
${error ? `<p id="error">${escape(error)}</p>` : ''}
<form method="post" action="/interaction/${escape(uid)}/login">
<label>Login <input name="login" id="login" autofocus></label>
<label>Password <input name="password" id="password" type="password"></label>
<button type="submit" id="sign-in">Sign in</button></form></body></html>`;
}

async function readForm(req) {
  let body = '';
  for await (const chunk of req) body += chunk;
  return new URLSearchParams(body);
}

async function interaction(req, res, uid, action) {
  const details = await provider.interactionDetails(req, res);
  const { params } = details;
  if (req.method === 'GET') {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(loginPage(uid, params.client_id));
    return;
  }
  if (action !== 'login') {
    res.writeHead(404).end();
    return;
  }
  const form = await readForm(req);
  const account = config.accounts.find((a) => a.login === form.get('login'));
  if (!account || account.password !== form.get('password')) {
    res.writeHead(200, { 'Content-Type': 'text/html; charset=utf-8' });
    res.end(loginPage(uid, params.client_id, 'Wrong login or password.'));
    return;
  }
  const grant = new provider.Grant({ accountId: account.sub, clientId: params.client_id });
  grant.addOIDCScope(params.scope);
  grant.addOIDCClaims(['email', 'email_verified', 'name', 'groups']);
  const grantId = await grant.save();
  const login = { accountId: account.sub, remember: false };
  if (account.amr) login.amr = account.amr;
  await provider.interactionFinished(
    req,
    res,
    { login, consent: { grantId } },
    { mergeWithLastSubmission: false },
  );
}

const handler = provider.callback();
const server = http.createServer(async (req, res) => {
  const match = /^\/interaction\/([^/?]+)(?:\/([a-z]+))?/.exec(req.url);
  if (!match) {
    handler(req, res);
    return;
  }
  try {
    await interaction(req, res, match[1], match[2]);
  } catch (error) {
    res.writeHead(400, { 'Content-Type': 'text/plain' });
    res.end(`interaction failed: ${error.message}`);
  }
});
server.listen(config.port, '127.0.0.1', () => {
  console.log(`listening ${issuer}`);
});
process.on('SIGTERM', () => server.close(() => process.exit(0)));
