/**
 * Sign-in on AWS: OAuth 2.0 authorization code + PKCE (RFC 7636, S256) against the tenant's Cognito
 * hosted UI, then Cognito Identity (GetId + GetCredentialsForIdentity with the id token) for the
 * tenant's web user role's temporary credentials (cdk/tenant_sign_in.py builds both pools).
 *
 * Why no SDK: the two Cognito Identity calls and the token endpoint are unsigned JSON/form POSTs, so
 * plain fetch does it with nothing more to pin, audit or bundle.
 *
 * Where things are kept: the PKCE verifier, `state` and the tokens in sessionStorage only (this tab,
 * gone when it closes; never localStorage or IndexedDB, whose contents outlive the session and the
 * outbox must hold ciphertext only); the AWS credentials in memory only. Everything the browser is
 * needed for (fetch, storage, the address bar, time, randomness) comes in through `AuthEnv`, so
 * node's tests drive the same code with fakes.
 */

export interface SignInConfig {
  user_pool_id: string; // <region>_<id>
  client_id: string;
  domain: string; // the hosted UI's host name, e.g. ccc-acme-111111111111.auth.eu-west-1.amazoncognito.com
  identity_pool_id: string; // <region>:<uuid>
}

export interface AwsCredentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken: string;
  expiration: number; // ms since the epoch
}

export interface Tokens {
  idToken: string;
  refreshToken: string | null;
  expiresAt: number; // ms since the epoch (the id token's)
}

export interface AuthEnv {
  fetch: (url: string, init: RequestInit) => Promise<Response>;
  storage: Pick<Storage, "getItem" | "setItem" | "removeItem">; // sessionStorage in the browser
  href: () => string;
  assign: (url: string) => void; // navigate away (to the hosted UI)
  replaceUrl: (url: string) => void; // drop ?code=&state= from the address bar and history
  now: () => number;
  random: (length: number) => Uint8Array;
}

export class AuthError extends Error {
  override readonly name = "AuthError";
}

export const PENDING_KEY = "ccc.auth.pending/v1";
export const TOKENS_KEY = "ccc.auth.tokens/v1";
/** Refresh this long before anything expires: a request signed now must still be valid when it lands. */
export const REFRESH_MARGIN_MS = 5 * 60_000;
const PENDING_TTL_MS = 10 * 60_000;
const IDENTITY_SERVICE = "AWSCognitoIdentityService";

export function browserEnv(): AuthEnv {
  return {
    fetch: (url, init) => fetch(url, init),
    storage: sessionStorage,
    href: () => location.href,
    assign: (url) => location.assign(url),
    replaceUrl: (url) => history.replaceState(null, "", url),
    now: () => Date.now(),
    random: (length) => crypto.getRandomValues(new Uint8Array(length)),
  };
}

export function base64url(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** RFC 7636 §4.1: 32 random octets, base64url: 43 characters of the unreserved alphabet. */
export function newVerifier(env: AuthEnv): string {
  return base64url(env.random(32));
}

/** RFC 7636 §4.2, S256: BASE64URL(SHA-256(ASCII(code_verifier))). */
export async function pkceChallenge(verifier: string): Promise<string> {
  if (!/^[A-Za-z0-9\-._~]{43,128}$/.test(verifier)) throw new AuthError("a PKCE verifier is 43-128 unreserved characters");
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

function regionOf(id: string, separator: string, what: string): string {
  const region = id.split(separator)[0] ?? "";
  if (!/^[a-z]{2}(-[a-z]+)+-\d$/.test(region)) throw new AuthError(`${what} ${JSON.stringify(id)} names no region`);
  return region;
}

/** The identity pool's Logins key for a user pool: cognito-idp.<region>.amazonaws.com/<pool id>. */
export function loginsKey(config: SignInConfig): string {
  return `cognito-idp.${regionOf(config.user_pool_id, "_", "user pool id")}.amazonaws.com/${config.user_pool_id}`;
}

export function identityEndpoint(config: SignInConfig): string {
  return `https://cognito-identity.${regionOf(config.identity_pool_id, ":", "identity pool id")}.amazonaws.com/`;
}

/** Comparing the whole string in constant time: `state` is a secret of this tab. */
function sameText(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

/** Step 1: remember a fresh verifier and state in this tab, and go to the hosted UI. */
export async function beginSignIn(config: SignInConfig, env: AuthEnv, redirectUri: string): Promise<void> {
  const verifier = newVerifier(env);
  const state = base64url(env.random(32));
  env.storage.setItem(PENDING_KEY, JSON.stringify({ verifier, state, at: env.now() }));
  const query = new URLSearchParams({
    response_type: "code",
    client_id: config.client_id,
    redirect_uri: redirectUri,
    scope: "openid",
    state,
    code_challenge: await pkceChallenge(verifier),
    code_challenge_method: "S256",
  });
  env.assign(`https://${config.domain}/oauth2/authorize?${query}`);
}

interface TokenAnswer {
  id_token?: unknown;
  refresh_token?: unknown;
  expires_in?: unknown;
  error?: unknown;
}

async function tokenRequest(config: SignInConfig, env: AuthEnv, form: Record<string, string>): Promise<TokenAnswer> {
  let response: Response;
  try {
    response = await env.fetch(`https://${config.domain}/oauth2/token`, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams(form).toString(),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new AuthError(`the sign-in service is not reachable: ${error instanceof Error ? error.message : error}`);
  }
  const answer = (await response.json().catch(() => ({}))) as TokenAnswer;
  if (!response.ok) throw new AuthError(`the sign-in service refused: ${String(answer.error ?? response.status)}`);
  return answer;
}

function tokensFrom(answer: TokenAnswer, env: AuthEnv, previousRefresh: string | null): Tokens {
  if (typeof answer.id_token !== "string" || !answer.id_token) throw new AuthError("the sign-in service sent no id token");
  const seconds = typeof answer.expires_in === "number" && answer.expires_in > 0 ? answer.expires_in : 3600;
  const refreshToken = typeof answer.refresh_token === "string" ? answer.refresh_token : previousRefresh;
  return { idToken: answer.id_token, refreshToken, expiresAt: env.now() + seconds * 1000 };
}

/**
 * Step 2, on the page's load: if the address is the hosted UI's answer, check `state` against the
 * one this tab stored (refused otherwise: a code injected by another site), redeem the code with the
 * verifier, keep the tokens in this tab. Returns null when the address is not an answer.
 */
export async function completeSignIn(config: SignInConfig, env: AuthEnv, redirectUri: string): Promise<Tokens | null> {
  const url = new URL(env.href());
  const code = url.searchParams.get("code");
  const error = url.searchParams.get("error");
  if (code === null && error === null) return null;
  const stored = env.storage.getItem(PENDING_KEY);
  env.storage.removeItem(PENDING_KEY); // one answer per request, whatever happens next
  env.replaceUrl(redirectUri); // the code leaves the address bar and the history
  let pending: { verifier?: unknown; state?: unknown; at?: unknown } = {};
  try {
    pending = stored ? (JSON.parse(stored) as typeof pending) : {};
  } catch {
    pending = {};
  }
  const state = url.searchParams.get("state");
  if (typeof pending.state !== "string" || typeof pending.verifier !== "string" || state === null || !sameText(state, pending.state)) {
    throw new AuthError("sign-in refused: the answer's state is not the one this tab sent (sign in again)");
  }
  if (typeof pending.at !== "number" || env.now() - pending.at > PENDING_TTL_MS) {
    throw new AuthError("sign-in refused: the sign-in took longer than 10 minutes (sign in again)");
  }
  if (error !== null) throw new AuthError(`sign-in refused by the hosted UI: ${error}`);
  const answer = await tokenRequest(config, env, {
    grant_type: "authorization_code",
    client_id: config.client_id,
    code: code!,
    redirect_uri: redirectUri,
    code_verifier: pending.verifier,
  });
  const tokens = tokensFrom(answer, env, null);
  saveTokens(env, tokens);
  return tokens;
}

export function savedTokens(env: AuthEnv): Tokens | null {
  const raw = env.storage.getItem(TOKENS_KEY);
  if (!raw) return null;
  try {
    const tokens = JSON.parse(raw) as Tokens;
    return typeof tokens.idToken === "string" && typeof tokens.expiresAt === "number" ? tokens : null;
  } catch {
    return null;
  }
}

function saveTokens(env: AuthEnv, tokens: Tokens): void {
  env.storage.setItem(TOKENS_KEY, JSON.stringify(tokens));
}

async function identityCall(config: SignInConfig, env: AuthEnv, operation: string, body: object): Promise<Record<string, unknown>> {
  let response: Response;
  try {
    response = await env.fetch(identityEndpoint(config), {
      method: "POST",
      headers: { "Content-Type": "application/x-amz-json-1.1", "X-Amz-Target": `${IDENTITY_SERVICE}.${operation}` },
      body: JSON.stringify(body),
      credentials: "omit",
      cache: "no-store",
    });
  } catch (error) {
    throw new AuthError(`Cognito Identity is not reachable: ${error instanceof Error ? error.message : error}`);
  }
  const answer = (await response.json().catch(() => ({}))) as Record<string, unknown>;
  if (!response.ok) {
    const type = String(answer["__type"] ?? response.status).split("#").pop();
    throw new AuthError(`Cognito Identity refused ${operation}: ${type}${answer["message"] ? `: ${String(answer["message"])}` : ""}`);
  }
  return answer;
}

/** GetId then GetCredentialsForIdentity, both unsigned, with the id token as the only proof. */
export async function credentialsForToken(config: SignInConfig, env: AuthEnv, idToken: string): Promise<AwsCredentials> {
  const logins = { [loginsKey(config)]: idToken };
  const id = await identityCall(config, env, "GetId", { IdentityPoolId: config.identity_pool_id, Logins: logins });
  if (typeof id["IdentityId"] !== "string") throw new AuthError("Cognito Identity sent no identity id");
  const answer = await identityCall(config, env, "GetCredentialsForIdentity", { IdentityId: id["IdentityId"], Logins: logins });
  const c = answer["Credentials"] as Record<string, unknown> | undefined;
  if (!c || typeof c["AccessKeyId"] !== "string" || typeof c["SecretKey"] !== "string" || typeof c["SessionToken"] !== "string") {
    throw new AuthError("Cognito Identity sent no credentials");
  }
  const expiration = typeof c["Expiration"] === "number" ? c["Expiration"] * 1000 : env.now() + 3600_000;
  return { accessKeyId: c["AccessKeyId"], secretAccessKey: c["SecretKey"], sessionToken: c["SessionToken"], expiration };
}

/** A signed-in tab: fresh credentials on demand, refreshed (tokens, then credentials) before they expire. */
export class Session {
  private cached: AwsCredentials | null = null;

  constructor(
    readonly config: SignInConfig,
    private readonly env: AuthEnv,
    readonly redirectUri: string,
  ) {}

  get signedIn(): boolean {
    return savedTokens(this.env) !== null;
  }

  async credentials(): Promise<AwsCredentials> {
    const now = this.env.now();
    if (this.cached && this.cached.expiration - now > REFRESH_MARGIN_MS) return this.cached;
    let tokens = savedTokens(this.env);
    if (!tokens) throw new AuthError("not signed in");
    if (tokens.expiresAt - now <= REFRESH_MARGIN_MS) tokens = await this.refresh(tokens);
    this.cached = await credentialsForToken(this.config, this.env, tokens.idToken);
    return this.cached;
  }

  private async refresh(tokens: Tokens): Promise<Tokens> {
    if (!tokens.refreshToken) {
      this.forget();
      throw new AuthError("the session has expired: sign in again");
    }
    let answer: TokenAnswer;
    try {
      answer = await tokenRequest(this.config, this.env, {
        grant_type: "refresh_token",
        client_id: this.config.client_id,
        refresh_token: tokens.refreshToken,
      });
    } catch (error) {
      this.forget();
      throw new AuthError(`the session has ended (${error instanceof Error ? error.message : error}): sign in again`);
    }
    const fresh = tokensFrom(answer, this.env, tokens.refreshToken);
    saveTokens(this.env, fresh);
    return fresh;
  }

  private forget(): void {
    this.cached = null;
    this.env.storage.removeItem(TOKENS_KEY);
    this.env.storage.removeItem(PENDING_KEY);
  }

  /** Revoke the refresh token (best effort), forget everything, and end the hosted UI's session. */
  async signOut(): Promise<void> {
    const tokens = savedTokens(this.env);
    this.forget();
    if (tokens?.refreshToken) {
      await this.env
        .fetch(`https://${this.config.domain}/oauth2/revoke`, {
          method: "POST",
          headers: { "Content-Type": "application/x-www-form-urlencoded" },
          body: new URLSearchParams({ token: tokens.refreshToken, client_id: this.config.client_id }).toString(),
          credentials: "omit",
          cache: "no-store",
        })
        .catch(() => undefined);
    }
    const query = new URLSearchParams({ client_id: this.config.client_id, logout_uri: this.redirectUri });
    this.env.assign(`https://${this.config.domain}/logout?${query}`);
  }
}
