/**
 * The tenant's trust file, `ccc.trust/v1`, read in the page (the format is defined once, in
 * src/ccc/trust/document.py; this reader accepts exactly the files that module writes and refuses
 * what it refuses that matters to verification: unknown fields, a wrong format tag, a root whose
 * SHA-256 is not the one stated, a relabelled AWS root, releases without PCR0, malformed PCRs).
 *
 * The page imports the file once and keeps it in localStorage; it believes nothing else about
 * roots, releases or keys (not the stack, not the jobs API).
 */
import { base64ToBytes, equalBytes, fromHex, hex, sha256 } from "./bytes";
import { VerificationError } from "./errors";

export const TRUST_FORMAT = "ccc.trust/v1";
export const AWS_NITRO_ROOT_G1_SHA256 = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b";
const PCR_NAMES = ["PCR0", "PCR1", "PCR2", "PCR3", "PCR4", "PCR8"];
const KEY_ARN = /^arn:aws(?:-[a-z]+)*:kms:[a-z]{2}(?:-[a-z]+)+-\d:\d{12}:key\/[A-Za-z0-9-]{1,128}$/;
const RELEASE_ID = /^[A-Za-z0-9][A-Za-z0-9._:+-]{0,127}$/;
const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;
const PEM = /^-----BEGIN CERTIFICATE-----\n([A-Za-z0-9+/=\n]+)-----END CERTIFICATE-----\n?$/;
const MAX_TRUST_FILE_CHARS = 256 * 1024;

export interface TrustedRelease {
  id: string;
  pcrs: Map<number, Uint8Array>; // index -> 48 bytes; PCR0 always present
}

export interface Trust {
  tenant: string;
  dataKeyArn: string;
  rootKind: "aws-nitro" | "local";
  rootDer: Uint8Array;
  releases: TrustedRelease[];
}

function refuse(message: string): never {
  throw new VerificationError(`trust file: ${message}`, "trust_invalid");
}

function exactKeys(value: unknown, required: string[], optional: string[], what: string): Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) refuse(`${what} is not an object`);
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (!required.includes(key) && !optional.includes(key)) refuse(`${what} has an unknown field '${key}'`);
  }
  for (const key of required) if (!(key in record)) refuse(`${what} lacks '${key}'`);
  return record;
}

function pcrValue(value: unknown, name: string): Uint8Array {
  if (typeof value !== "string" || !/^[0-9a-f]{96}$/.test(value)) refuse(`${name} is not 96 lower-case hex characters`);
  if (/^0+$/.test(value)) refuse(`${name} is all zeros: a debug-mode enclave, which must never be pinned`);
  return fromHex(value);
}

/** Parse and check trust-file text; VerificationError("trust_invalid") with one line otherwise. */
export async function parseTrust(text: string): Promise<Trust> {
  if (text.length > MAX_TRUST_FILE_CHARS) refuse("too large");
  let document: unknown;
  try {
    document = JSON.parse(text);
  } catch {
    refuse("not JSON");
  }
  const format = (document as Record<string, unknown> | null)?.["format"];
  if (format !== TRUST_FORMAT) refuse(`format ${JSON.stringify(format ?? null)}; this page reads only '${TRUST_FORMAT}'`);
  const top = exactKeys(document, ["format", "tenant", "data_key_arn", "attestation_root", "releases"], [], "the file");
  if (typeof top["tenant"] !== "string" || !TENANT.test(top["tenant"])) refuse("tenant is not a tenant id");
  if (typeof top["data_key_arn"] !== "string" || !KEY_ARN.test(top["data_key_arn"])) refuse("data_key_arn is not a KMS key ARN");
  const root = exactKeys(top["attestation_root"], ["kind", "sha256", "pem"], [], "attestation_root");
  if (root["kind"] !== "aws-nitro" && root["kind"] !== "local") refuse("attestation_root.kind is not aws-nitro or local");
  const match = typeof root["pem"] === "string" ? PEM.exec(root["pem"]) : null;
  if (!match) refuse("attestation_root.pem is not one PEM certificate");
  const rootDer = base64ToBytes(match[1]!.replace(/\n/g, ""));
  const digest = hex(await sha256(rootDer));
  if (digest !== root["sha256"]) refuse("attestation_root.sha256 is not the SHA-256 of the certificate in pem");
  if (root["kind"] === "aws-nitro" && digest !== AWS_NITRO_ROOT_G1_SHA256) {
    refuse("kind aws-nitro must be the AWS Nitro Enclaves Root-G1 certificate");
  }
  const rawReleases = top["releases"];
  if (!Array.isArray(rawReleases) || rawReleases.length < 1 || rawReleases.length > 32) refuse("releases must list 1..32 releases");
  const releases = rawReleases.map((raw, i) => {
    const release = exactKeys(raw, ["id", "pcrs", "source", "date"], ["manifest_sha256", "git_commit"], `releases[${i}]`);
    if (typeof release["id"] !== "string" || !RELEASE_ID.test(release["id"])) refuse(`releases[${i}].id is not a release id`);
    const pcrsRaw = release["pcrs"];
    if (typeof pcrsRaw !== "object" || pcrsRaw === null || Array.isArray(pcrsRaw)) refuse(`releases[${i}].pcrs is not an object`);
    const pcrs = new Map<number, Uint8Array>();
    for (const [name, value] of Object.entries(pcrsRaw as Record<string, unknown>)) {
      if (!PCR_NAMES.includes(name)) refuse(`releases[${i}].pcrs has an unknown register '${name}'`);
      pcrs.set(Number(name.slice(3)), pcrValue(value, `releases[${i}].pcrs.${name}`));
    }
    if (!pcrs.has(0)) refuse(`releases[${i}] must pin PCR0 (the enclave image)`);
    return { id: release["id"] as string, pcrs };
  });
  if (new Set(releases.map((r) => r.id)).size !== releases.length) refuse("release ids are not unique");
  return {
    tenant: top["tenant"] as string,
    dataKeyArn: top["data_key_arn"] as string,
    rootKind: root["kind"] as "aws-nitro" | "local",
    rootDer,
    releases,
  };
}

/** The pinned releases whose PCR0 is `pcr0` (usually one, or none). */
export function releasesWithPcr0(trust: Trust, pcr0: Uint8Array): TrustedRelease[] {
  return trust.releases.filter((release) => equalBytes(release.pcrs.get(0)!, pcr0));
}
