/**
 * Where the page sends requests and as whom. Two tiers, chosen by the config itself:
 *
 * * local: the stack's web server answers /local/config.json with its endpoints and the demo
 *   tenant's credentials (docs/web.md);
 * * aws: a config.json served next to the page (by whoever hosts it) with the jobs API, the region
 *   and the tenant's sign-in (user pool, app client, hosted UI domain, identity pool: the outputs of
 *   the tenant's CccTenant stack); credentials come from signing in (./auth.ts), never from the file.
 *
 * The page believes nothing in either about trust: roots, releases and the key come from the trust
 * file only, so a config that lies can send the page to the wrong place but cannot make a result
 * verify (docs/web.md, "What the operator can and cannot do").
 */
import type { SignInConfig } from "./auth";

export interface Credentials {
  accessKeyId: string;
  secretAccessKey: string;
  sessionToken?: string;
}

export interface PageConfig {
  tier: "local" | "aws";
  tenant: string;
  region: string;
  api_url: string;
  kms_endpoint_url: string | null;
  /** local: from the config; aws: empty until signed in, then the web user role's (kept fresh by auth_page.ts). */
  credentials: Credentials;
  sign_in: SignInConfig | null;
}

export class ConfigError extends Error {
  override readonly name = "ConfigError";
}

const SIGN_IN_FIELDS: Record<keyof SignInConfig, RegExp> = {
  user_pool_id: /^[a-z]{2}(-[a-z]+)+-\d_[0-9A-Za-z]{1,55}$/,
  client_id: /^[0-9a-z]{1,128}$/,
  domain: /^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?\.auth\.[a-z]{2}(-[a-z]+)+-\d\.amazoncognito\.com$/,
  identity_pool_id: /^[a-z]{2}(-[a-z]+)+-\d:[0-9a-f-]{36}$/,
};

function text(raw: Record<string, unknown>, field: string): string {
  const value = raw[field];
  if (typeof value !== "string" || !value) throw new ConfigError(`stack configuration lacks ${field}`);
  return value;
}

/** The config, checked field by field (one line per refusal); the tier decides what must be there. */
export function parsePageConfig(raw: unknown): PageConfig {
  if (typeof raw !== "object" || raw === null || Array.isArray(raw)) throw new ConfigError("stack configuration is not an object");
  const object = raw as Record<string, unknown>;
  const tier = object["tier"];
  if (tier !== "local" && tier !== "aws") throw new ConfigError('stack configuration: tier must be "local" or "aws"');
  const common = {
    tier,
    tenant: text(object, "tenant"),
    region: text(object, "region"),
    api_url: text(object, "api_url"),
    kms_endpoint_url: typeof object["kms_endpoint_url"] === "string" ? object["kms_endpoint_url"] : null,
  } as const;
  if (tier === "local") {
    const credentials = object["credentials"] as Credentials | undefined;
    if (!credentials || typeof credentials.accessKeyId !== "string" || typeof credentials.secretAccessKey !== "string") {
      throw new ConfigError("stack configuration lacks credentials");
    }
    return { ...common, credentials, sign_in: null };
  }
  if ("credentials" in object) throw new ConfigError("an aws configuration carries no credentials: they come from signing in");
  if (!common.api_url.startsWith("https://")) throw new ConfigError("stack configuration: api_url must be https");
  const signIn = object["sign_in"];
  if (typeof signIn !== "object" || signIn === null) throw new ConfigError("an aws configuration needs sign_in");
  const fields = signIn as Record<string, unknown>;
  const parsed = {} as Record<keyof SignInConfig, string>;
  for (const [field, pattern] of Object.entries(SIGN_IN_FIELDS) as [keyof SignInConfig, RegExp][]) {
    const value = fields[field];
    if (typeof value !== "string" || !pattern.test(value)) throw new ConfigError(`stack configuration: sign_in.${field} is malformed`);
    parsed[field] = value;
  }
  return { ...common, credentials: { accessKeyId: "", secretAccessKey: "" }, sign_in: parsed };
}

async function fetchConfig(url: string): Promise<Response | null> {
  const response = await fetch(url, { cache: "no-store", credentials: "omit" }).catch(() => null);
  return response && response.ok ? response : null;
}

/** The local stack's /local/config.json, else the config.json next to the page (AWS hosting). */
export async function loadConfig(): Promise<PageConfig> {
  const response = (await fetchConfig("/local/config.json")) ?? (await fetchConfig(new URL("config.json", location.href).href));
  if (!response) throw new ConfigError("no stack configuration (/local/config.json or config.json): is the stack running?");
  return parsePageConfig(await response.json().catch(() => null));
}
