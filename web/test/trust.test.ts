/** The page reads ccc.trust/v1 strictly: what would make it trust the wrong thing is refused. */
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { test } from "node:test";

import { parseTrust } from "../src/verify/trust";

const ROOT_PEM = readFileSync("../tests/fixtures/attestation/aws_nitro_root_g1.pem", "utf8").trim() + "\n";
const PCR = "ab".repeat(48);

function file(overrides: Record<string, unknown> = {}): Record<string, unknown> {
  return {
    format: "ccc.trust/v1",
    tenant: "tenant-a",
    data_key_arn: "arn:aws:kms:us-east-1:123456789013:key/0b7a1c2d-aaaa-bbbb-cccc-123456789abc",
    attestation_root: {
      kind: "aws-nitro",
      sha256: "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b",
      pem: ROOT_PEM,
    },
    releases: [{ id: "r1", pcrs: { PCR0: PCR }, source: "pcrs", date: "2026-12-01T00:00:00Z" }],
    ...overrides,
  };
}

test("a well-formed trust file is read", async () => {
  const trust = await parseTrust(JSON.stringify(file()));
  assert.equal(trust.tenant, "tenant-a");
  assert.equal(trust.releases[0]!.pcrs.get(0)!.length, 48);
  assert.equal(trust.rootKind, "aws-nitro");
});

const refusals: [string, Record<string, unknown>, RegExp][] = [
  ["another format", { format: "ccc.trust/v2" }, /format/],
  ["an unknown field", { extra: 1 }, /unknown field/],
  ["a release without PCR0", { releases: [{ id: "r", pcrs: { PCR1: PCR }, source: "pcrs", date: "x" }] }, /PCR0/],
  ["an all-zero PCR0", { releases: [{ id: "r", pcrs: { PCR0: "0".repeat(96) }, source: "pcrs", date: "x" }] }, /zeros/],
  ["an upper-case PCR", { releases: [{ id: "r", pcrs: { PCR0: PCR.toUpperCase() }, source: "pcrs", date: "x" }] }, /hex/],
  ["no release", { releases: [] }, /releases/],
  ["a root digest that is not the certificate's", {
    attestation_root: { kind: "local", sha256: "00".repeat(32), pem: ROOT_PEM },
  }, /SHA-256/],
  ["a bad key ARN", { data_key_arn: "arn:aws:kms:us-east-1:1:key/x" }, /ARN/],
];
for (const [name, overrides, pattern] of refusals) {
  test(`refused: ${name}`, async () => {
    await assert.rejects(parseTrust(JSON.stringify(file(overrides))), pattern);
  });
}

test("refused: not JSON", async () => {
  await assert.rejects(parseTrust("{"), /not JSON/);
});
