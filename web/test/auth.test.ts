/**
 * Sign-in on AWS (web/src/app/auth.ts) driven through a fake browser (fetch, sessionStorage, the
 * address bar, clock, randomness): PKCE per RFC 7636, `state` checked, the exact requests the
 * hosted UI's token endpoint and Cognito Identity receive, refresh before expiry, sign-out, and no
 * token ever written anywhere but sessionStorage.
 */
import assert from "node:assert/strict";
import { test } from "node:test";

import {
  AuthError,
  type AuthEnv,
  beginSignIn,
  completeSignIn,
  loginsKey,
  newVerifier,
  PENDING_KEY,
  pkceChallenge,
  Session,
  type SignInConfig,
  TOKENS_KEY,
} from "../src/app/auth";
import { ConfigError, parsePageConfig } from "../src/app/config";

const CONFIG: SignInConfig = {
  user_pool_id: "eu-west-1_AbC123xyz",
  client_id: "4kq1example0client0id0abcde",
  domain: "ccc-acme-111111111111.auth.eu-west-1.amazoncognito.com",
  identity_pool_id: "eu-west-1:0b7a1c2d-aaaa-bbbb-cccc-123456789abc",
};
const PAGE = "https://d111111abcdef8.cloudfront.net/";
const IDENTITY_URL = "https://cognito-identity.eu-west-1.amazonaws.com/";
const LOGINS_KEY = "cognito-idp.eu-west-1.amazonaws.com/eu-west-1_AbC123xyz";

interface Sent {
  url: string;
  method: string;
  headers: Record<string, string>;
  body: string;
}

class MemoryStorage {
  readonly items = new Map<string, string>();
  getItem(key: string): string | null {
    return this.items.get(key) ?? null;
  }
  setItem(key: string, value: string): void {
    this.items.set(key, String(value));
  }
  removeItem(key: string): void {
    this.items.delete(key);
  }
}

/** A fake browser with a fake Cognito behind fetch; every request is recorded. */
class FakeBrowser {
  readonly sent: Sent[] = [];
  readonly storage = new MemoryStorage();
  address = PAGE;
  navigatedTo: string[] = [];
  time = Date.UTC(2026, 11, 5, 7, 0, 0);
  randomQueue: Uint8Array[] = [];
  idTokens = 0;
  credentialsIssued = 0;
  refreshRefused = false;

  readonly env: AuthEnv = {
    fetch: async (url, init) => this.answer(url, init),
    storage: this.storage,
    href: () => this.address,
    assign: (url) => {
      this.navigatedTo.push(url);
    },
    replaceUrl: (url) => {
      this.address = url;
    },
    now: () => this.time,
    random: (length) => this.randomQueue.shift() ?? crypto.getRandomValues(new Uint8Array(length)),
  };

  private json(status: number, body: unknown): Response {
    return new Response(JSON.stringify(body), { status, headers: { "Content-Type": "application/json" } });
  }

  private async answer(url: string, init: RequestInit): Promise<Response> {
    const headers = Object.fromEntries(Object.entries((init.headers ?? {}) as Record<string, string>));
    const body = String(init.body ?? "");
    this.sent.push({ url, method: String(init.method), headers, body });
    if (url === `https://${CONFIG.domain}/oauth2/token`) {
      const form = new URLSearchParams(body);
      if (form.get("grant_type") === "refresh_token" && this.refreshRefused) return this.json(400, { error: "invalid_grant" });
      this.idTokens += 1;
      return this.json(200, {
        id_token: `id-token-${this.idTokens}`,
        access_token: `access-token-${this.idTokens}`,
        ...(form.get("grant_type") === "authorization_code" ? { refresh_token: "refresh-token-1" } : {}),
        expires_in: 3600,
        token_type: "Bearer",
      });
    }
    if (url === `https://${CONFIG.domain}/oauth2/revoke`) return new Response("", { status: 200 });
    if (url === IDENTITY_URL) {
      const target = headers["X-Amz-Target"];
      if (target === "AWSCognitoIdentityService.GetId") return this.json(200, { IdentityId: "eu-west-1:identity-1" });
      if (target === "AWSCognitoIdentityService.GetCredentialsForIdentity") {
        this.credentialsIssued += 1;
        return this.json(200, {
          IdentityId: "eu-west-1:identity-1",
          Credentials: {
            AccessKeyId: `ASIA${this.credentialsIssued}`,
            SecretKey: `secret-${this.credentialsIssued}`,
            SessionToken: `session-${this.credentialsIssued}`,
            Expiration: this.time / 1000 + 3600,
          },
        });
      }
    }
    return this.json(400, { __type: "NotFound" });
  }

  /** Sign in: go to the hosted UI, come back with a code and the state the hosted UI echoes. */
  async signIn(): Promise<void> {
    await beginSignIn(CONFIG, this.env, PAGE);
    const authorize = new URL(this.navigatedTo.at(-1)!);
    this.address = `${PAGE}?code=the-code&state=${authorize.searchParams.get("state")}`;
    await completeSignIn(CONFIG, this.env, PAGE);
  }
}

// RFC 7636 appendix B: the 32 random octets, their base64url (the code_verifier) and its S256 challenge.
const RFC7636_OCTETS = new Uint8Array([
  116, 24, 223, 180, 151, 153, 224, 37, 79, 250, 96, 125, 216, 173, 187, 186, 22, 212, 37, 77, 105, 214, 191, 240, 91,
  88, 5, 88, 83, 132, 141, 121,
]);

test("PKCE verifier and S256 challenge are RFC 7636 appendix B's", async () => {
  const browser = new FakeBrowser();
  browser.randomQueue.push(RFC7636_OCTETS);
  const verifier = newVerifier(browser.env);
  assert.equal(verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  assert.equal(await pkceChallenge(verifier), "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM");
  await assert.rejects(pkceChallenge("too-short"), AuthError);
});

test("sign-in goes to the hosted UI with a code request, S256 challenge and a fresh state", async () => {
  const browser = new FakeBrowser();
  browser.randomQueue.push(RFC7636_OCTETS);
  await beginSignIn(CONFIG, browser.env, PAGE);
  const url = new URL(browser.navigatedTo[0]!);
  assert.equal(url.origin + url.pathname, `https://${CONFIG.domain}/oauth2/authorize`);
  const pending = JSON.parse(browser.storage.getItem(PENDING_KEY)!) as { verifier: string; state: string };
  assert.equal(pending.verifier, "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk");
  assert.deepEqual(Object.fromEntries(url.searchParams), {
    response_type: "code",
    client_id: CONFIG.client_id,
    redirect_uri: PAGE,
    scope: "openid",
    state: pending.state,
    code_challenge: "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    code_challenge_method: "S256",
  });
  assert.ok(pending.state.length >= 43, "state carries 256 random bits");
  assert.equal(browser.sent.length, 0, "nothing is sent before the user signs in");
});

test("an answer whose state is not this tab's is refused and no code is redeemed", async () => {
  const browser = new FakeBrowser();
  await beginSignIn(CONFIG, browser.env, PAGE);
  browser.address = `${PAGE}?code=stolen-code&state=someone-elses-state`;
  await assert.rejects(completeSignIn(CONFIG, browser.env, PAGE), (error: unknown) => {
    assert.ok(error instanceof AuthError);
    assert.match(error.message, /state/);
    return true;
  });
  assert.equal(browser.sent.length, 0);
  assert.equal(browser.storage.getItem(TOKENS_KEY), null);
  assert.equal(browser.storage.getItem(PENDING_KEY), null, "the request is spent: a replay with the right state fails too");
  assert.equal(browser.address, PAGE, "the code leaves the address bar");
});

test("an answer this tab never asked for, or a late one, is refused", async () => {
  const unasked = new FakeBrowser();
  unasked.address = `${PAGE}?code=injected&state=x`;
  await assert.rejects(completeSignIn(CONFIG, unasked.env, PAGE), AuthError);
  const late = new FakeBrowser();
  await beginSignIn(CONFIG, late.env, PAGE);
  const state = new URL(late.navigatedTo[0]!).searchParams.get("state");
  late.time += 11 * 60_000;
  late.address = `${PAGE}?code=the-code&state=${state}`;
  await assert.rejects(completeSignIn(CONFIG, late.env, PAGE), /10 minutes/);
  assert.equal(late.sent.length + unasked.sent.length, 0);
});

test("a page load that is not an answer does nothing", async () => {
  const browser = new FakeBrowser();
  assert.equal(await completeSignIn(CONFIG, browser.env, PAGE), null);
  assert.equal(browser.sent.length, 0);
});

test("the code is redeemed at the token endpoint with the verifier, no secret", async () => {
  const browser = new FakeBrowser();
  await browser.signIn();
  const pendingVerifier = (() => {
    const url = new URL(browser.navigatedTo[0]!);
    return url.searchParams.get("code_challenge");
  })();
  assert.equal(browser.sent.length, 1);
  const request = browser.sent[0]!;
  assert.equal(request.url, `https://${CONFIG.domain}/oauth2/token`);
  assert.equal(request.method, "POST");
  assert.equal(request.headers["Content-Type"], "application/x-www-form-urlencoded");
  assert.equal(request.headers["Authorization"], undefined, "a public client: no secret, no basic auth");
  const form = Object.fromEntries(new URLSearchParams(request.body));
  assert.deepEqual(Object.keys(form).sort(), ["client_id", "code", "code_verifier", "grant_type", "redirect_uri"]);
  assert.equal(form["grant_type"], "authorization_code");
  assert.equal(form["code"], "the-code");
  assert.equal(form["redirect_uri"], PAGE);
  assert.equal(form["client_id"], CONFIG.client_id);
  assert.equal(await pkceChallenge(form["code_verifier"]!), pendingVerifier, "the verifier matches the challenge sent");
  const tokens = JSON.parse(browser.storage.getItem(TOKENS_KEY)!) as { idToken: string; refreshToken: string };
  assert.equal(tokens.idToken, "id-token-1");
  assert.equal(tokens.refreshToken, "refresh-token-1");
  assert.equal(browser.address, PAGE);
});

test("credentials come from GetId and GetCredentialsForIdentity, unsigned, with the id token under the pool's Logins key", async () => {
  const browser = new FakeBrowser();
  await browser.signIn();
  const session = new Session(CONFIG, browser.env, PAGE);
  assert.equal(loginsKey(CONFIG), LOGINS_KEY);
  const credentials = await session.credentials();
  assert.deepEqual(
    { ...credentials, expiration: undefined },
    { accessKeyId: "ASIA1", secretAccessKey: "secret-1", sessionToken: "session-1", expiration: undefined },
  );
  const [getId, getCredentials] = browser.sent.slice(1);
  for (const request of [getId!, getCredentials!]) {
    assert.equal(request.url, IDENTITY_URL);
    assert.equal(request.method, "POST");
    assert.equal(request.headers["Content-Type"], "application/x-amz-json-1.1");
    assert.equal(request.headers["Authorization"], undefined, "both calls are unsigned");
  }
  assert.equal(getId!.headers["X-Amz-Target"], "AWSCognitoIdentityService.GetId");
  assert.deepEqual(JSON.parse(getId!.body), { IdentityPoolId: CONFIG.identity_pool_id, Logins: { [LOGINS_KEY]: "id-token-1" } });
  assert.equal(getCredentials!.headers["X-Amz-Target"], "AWSCognitoIdentityService.GetCredentialsForIdentity");
  assert.deepEqual(JSON.parse(getCredentials!.body), { IdentityId: "eu-west-1:identity-1", Logins: { [LOGINS_KEY]: "id-token-1" } });
  assert.equal(await session.credentials(), credentials, "fresh credentials are reused, not fetched again");
  assert.equal(browser.sent.length, 3);
});

test("credentials about to expire are refreshed, with a refreshed id token when it expires too", async () => {
  const browser = new FakeBrowser();
  await browser.signIn();
  const session = new Session(CONFIG, browser.env, PAGE);
  const first = await session.credentials();
  browser.time = first.expiration - 4 * 60_000; // inside the 5-minute margin; the id token (1 h) too
  const second = await session.credentials();
  assert.notEqual(second.accessKeyId, first.accessKeyId);
  const refresh = browser.sent.find((r) => new URLSearchParams(r.body).get("grant_type") === "refresh_token")!;
  assert.deepEqual(Object.fromEntries(new URLSearchParams(refresh.body)), {
    grant_type: "refresh_token",
    client_id: CONFIG.client_id,
    refresh_token: "refresh-token-1",
  });
  const lastGetCredentials = browser.sent.at(-1)!;
  assert.deepEqual(JSON.parse(lastGetCredentials.body)["Logins"], { [LOGINS_KEY]: "id-token-2" });
  const kept = JSON.parse(browser.storage.getItem(TOKENS_KEY)!) as { refreshToken: string };
  assert.equal(kept.refreshToken, "refresh-token-1", "Cognito sends no new refresh token; the old one is kept");
});

test("a refused refresh ends the session: tokens forgotten, one clear error", async () => {
  const browser = new FakeBrowser();
  await browser.signIn();
  const session = new Session(CONFIG, browser.env, PAGE);
  await session.credentials();
  browser.refreshRefused = true;
  browser.time += 2 * 3600_000;
  await assert.rejects(session.credentials(), /sign in again/);
  assert.equal(session.signedIn, false);
  assert.equal(browser.storage.getItem(TOKENS_KEY), null);
});

test("sign-out revokes the refresh token, forgets the tokens and ends the hosted UI session", async () => {
  const browser = new FakeBrowser();
  await browser.signIn();
  const session = new Session(CONFIG, browser.env, PAGE);
  await session.signOut();
  const revoke = browser.sent.at(-1)!;
  assert.equal(revoke.url, `https://${CONFIG.domain}/oauth2/revoke`);
  assert.deepEqual(Object.fromEntries(new URLSearchParams(revoke.body)), { token: "refresh-token-1", client_id: CONFIG.client_id });
  assert.equal(browser.storage.items.size, 0);
  const logout = new URL(browser.navigatedTo.at(-1)!);
  assert.equal(logout.origin + logout.pathname, `https://${CONFIG.domain}/logout`);
  assert.deepEqual(Object.fromEntries(logout.searchParams), { client_id: CONFIG.client_id, logout_uri: PAGE });
});

test("tokens and credentials are never written to localStorage or IndexedDB", async () => {
  const touched: string[] = [];
  const trap = (name: string) =>
    new Proxy({}, {
      get: (_target, property) => {
        touched.push(`${name}.${String(property)}`);
        return () => undefined;
      },
    });
  const saved = { localStorage: (globalThis as Record<string, unknown>)["localStorage"], indexedDB: (globalThis as Record<string, unknown>)["indexedDB"] };
  Object.assign(globalThis, { localStorage: trap("localStorage"), indexedDB: trap("indexedDB") });
  try {
    const browser = new FakeBrowser();
    await browser.signIn();
    const session = new Session(CONFIG, browser.env, PAGE);
    const credentials = await session.credentials();
    browser.time = credentials.expiration;
    await session.credentials();
    await session.signOut();
    assert.deepEqual(touched, []);
    // and sessionStorage held the tokens but never the AWS credentials (memory only)
    const browser2 = new FakeBrowser();
    await browser2.signIn();
    const c2 = await new Session(CONFIG, browser2.env, PAGE).credentials();
    const everything = [...browser2.storage.items.values()].join("\n");
    assert.ok(everything.includes("id-token-1"));
    assert.ok(!everything.includes(c2.secretAccessKey) && !everything.includes(c2.sessionToken));
  } finally {
    Object.assign(globalThis, saved);
  }
});

const AWS_CONFIG = {
  tier: "aws",
  tenant: "acme",
  region: "eu-west-1",
  api_url: "https://abcde12345.execute-api.eu-west-1.amazonaws.com/prod/",
  kms_endpoint_url: null,
  sign_in: CONFIG,
};

test("the page's config selects the tier; an aws config carries sign-in, never credentials", () => {
  const aws = parsePageConfig(AWS_CONFIG);
  assert.equal(aws.tier, "aws");
  assert.deepEqual(aws.sign_in, CONFIG);
  assert.equal(aws.credentials.accessKeyId, "", "no credentials until signed in");
  const local = parsePageConfig({
    tier: "local",
    tenant: "tenant-a",
    region: "us-east-1",
    api_url: "http://127.0.0.1:1/",
    kms_endpoint_url: "http://127.0.0.1:2/",
    credentials: { accessKeyId: "AKIA", secretAccessKey: "s" },
  });
  assert.equal(local.sign_in, null);
  assert.equal(local.credentials.accessKeyId, "AKIA");
  for (const bad of [
    { ...AWS_CONFIG, credentials: { accessKeyId: "AKIA", secretAccessKey: "s" } },
    { ...AWS_CONFIG, sign_in: { ...CONFIG, domain: "login.evil.example" } },
    { ...AWS_CONFIG, sign_in: { ...CONFIG, user_pool_id: "not-a-pool" } },
    { ...AWS_CONFIG, sign_in: undefined },
    { ...AWS_CONFIG, api_url: "http://abcde12345.execute-api.eu-west-1.amazonaws.com/prod/" },
    { ...AWS_CONFIG, tier: "cloud" },
  ]) {
    assert.throws(() => parsePageConfig(bad), ConfigError, JSON.stringify(bad));
  }
});
