/**
 * Where the page sends requests and as whom. On the local tier the stack's web server answers
 * /local/config.json with its endpoints and the demo tenant's credentials (docs/web.md); the page
 * believes nothing in it about trust: roots, releases and the key come from the trust file only.
 */
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
  credentials: Credentials;
}

export async function loadConfig(): Promise<PageConfig> {
  const response = await fetch("/local/config.json", { cache: "no-store" });
  if (!response.ok) throw new Error(`no stack configuration (HTTP ${response.status}): is the local stack running?`);
  const config = (await response.json()) as PageConfig;
  for (const field of ["tenant", "region", "api_url"] as const) {
    if (typeof config[field] !== "string" || !config[field]) throw new Error(`stack configuration lacks ${field}`);
  }
  return config;
}
