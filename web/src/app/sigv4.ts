/** SigV4-signed fetches to the jobs API (API Gateway with IAM auth; locally the same check). */
import { Sha256 } from "@aws-crypto/sha256-browser";
import { SignatureV4 } from "@smithy/signature-v4";

import type { Credentials } from "./config";

export async function signedFetch(
  method: "GET" | "POST",
  url: string,
  body: string | undefined,
  credentials: Credentials,
  region: string,
): Promise<Response> {
  const target = new URL(url);
  const signer = new SignatureV4({ service: "execute-api", region, credentials, sha256: Sha256 });
  const query: Record<string, string> = {};
  target.searchParams.forEach((value, key) => (query[key] = value));
  const headers: Record<string, string> = { host: target.host };
  if (body !== undefined) headers["content-type"] = "application/json";
  const signed = await signer.sign({
    method,
    protocol: target.protocol,
    hostname: target.hostname,
    port: target.port ? Number(target.port) : undefined,
    path: target.pathname,
    query,
    headers,
    body,
  });
  const sent = { ...signed.headers };
  delete sent["host"]; // the browser sets it (a forbidden header name)
  return fetch(url, { method, headers: sent, body, mode: "cors", credentials: "omit", cache: "no-store" });
}
