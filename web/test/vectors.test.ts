/**
 * The in-page verifier against the same real AWS attestation documents the Python verifier uses
 * (tests/fixtures/attestation, copied from shared/vectors with their provenance): every one must
 * verify at its own timestamp, none today, and no tampered copy ever.
 */
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { test } from "node:test";

import { fromHex, hex, sha256 } from "../src/verify/bytes";
import { parseDocument, verifyDocument } from "../src/verify/document";
import { AttestationError } from "../src/verify/errors";

const FIXTURES = resolve(process.env["CCC_ATTESTATION_FIXTURES"] ?? "../tests/fixtures/attestation");
const ROOT_PEM = readFileSync(join(FIXTURES, "aws_nitro_root_g1.pem"), "utf8");
const ROOT_DER = Uint8Array.from(Buffer.from(ROOT_PEM.replace(/-----[A-Z ]+-----|\s/g, ""), "base64"));

interface Meta {
  timestamp_ms: number;
  debug_mode: boolean;
  module_id: string;
  pcr_count: number;
  pcr0: string;
  cabundle_len: number;
  payload_map_indefinite_length: boolean;
  user_data_present: boolean;
  user_data_len: number;
  public_key_present: boolean;
  public_key_len: number;
}

const VECTORS = readdirSync(FIXTURES)
  .filter((name) => name.endsWith(".cbor"))
  .sort()
  .map((name) => ({
    name: name.replace(/\.cbor$/, ""),
    data: new Uint8Array(readFileSync(join(FIXTURES, name))),
    meta: JSON.parse(readFileSync(join(FIXTURES, name.replace(/\.cbor$/, ".json")), "utf8")) as Meta,
  }));

const at = (v: (typeof VECTORS)[number]) => new Date(v.meta.timestamp_ms);

test("there are 26 real vectors, debug and not, some with indefinite-length payload maps", () => {
  assert.equal(VECTORS.length, 26);
  assert.ok(VECTORS.some((v) => v.meta.debug_mode) && VECTORS.some((v) => !v.meta.debug_mode));
  assert.ok(VECTORS.some((v) => v.meta.payload_map_indefinite_length));
});

test("the pinned root is AWS Nitro Enclaves Root-G1", async () => {
  assert.equal(hex(await sha256(ROOT_DER)), "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b");
});

for (const v of VECTORS) {
  test(`${v.name}: verifies at its own timestamp`, async () => {
    const doc = await verifyDocument(v.data, ROOT_DER, at(v), { allowDebug: v.meta.debug_mode });
    assert.equal(doc.moduleId, v.meta.module_id);
    assert.equal(doc.timestampMs, v.meta.timestamp_ms);
    assert.equal(doc.pcrs.size, v.meta.pcr_count);
    assert.equal(hex(doc.pcrs.get(0)!), v.meta.pcr0);
    assert.equal(doc.isDebug, v.meta.debug_mode);
    assert.equal(doc.cabundle.length, v.meta.cabundle_len);
    assert.equal(doc.userData === null ? null : doc.userData.length, v.meta.user_data_present ? v.meta.user_data_len : null);
    assert.equal(doc.publicKey === null ? null : doc.publicKey.length, v.meta.public_key_present ? v.meta.public_key_len : null);
  });

  test(`${v.name}: refused today (its leaf certificate expired)`, async () => {
    await assert.rejects(verifyDocument(v.data, ROOT_DER, new Date(), { allowDebug: true }), /expired/);
  });

  test(`${v.name}: refused under another root`, async () => {
    const otherRoot = ROOT_DER.slice();
    otherRoot[otherRoot.length - 5]! ^= 0x01;
    await assert.rejects(verifyDocument(v.data, otherRoot, at(v), { allowDebug: true }), /not the trusted root/);
  });

  test(`${v.name}: a flipped bit in the signed PCR0 is refused`, async () => {
    const pcr0 = fromHex(v.meta.pcr0);
    const offset = indexOf(v.data, pcr0);
    assert.ok(offset > 0, "PCR0 bytes appear in the document");
    const tampered = v.data.slice();
    tampered[offset]! ^= 0x01;
    await assert.rejects(verifyDocument(tampered, ROOT_DER, at(v), { allowDebug: true }), /COSE signature does not verify/);
  });

  test(`${v.name}: a flipped bit in the COSE signature is refused`, async () => {
    const tampered = v.data.slice();
    tampered[tampered.length - 1]! ^= 0x01;
    await assert.rejects(verifyDocument(tampered, ROOT_DER, at(v), { allowDebug: true }), AttestationError);
  });

  test(`${v.name}: a flipped bit in the leaf certificate is refused`, async () => {
    const leaf = parseDocument(v.data).certificate;
    const offset = indexOf(v.data, leaf) + Math.floor(leaf.length / 2);
    const tampered = v.data.slice();
    tampered[offset]! ^= 0x01;
    await assert.rejects(verifyDocument(tampered, ROOT_DER, at(v), { allowDebug: true }), AttestationError);
  });
}

test("debug-mode documents need allowDebug", async () => {
  for (const v of VECTORS.filter((x) => x.meta.debug_mode)) {
    await assert.rejects(verifyDocument(v.data, ROOT_DER, at(v)), /debug-mode/);
  }
});

test("a COSE_Sign1 tag (18) is accepted, any other tag refused", async () => {
  const v = VECTORS.find((x) => x.name === "mysten_nautilus_weather")!;
  const tagged = new Uint8Array([0xd2, ...v.data]);
  assert.equal((await verifyDocument(tagged, ROOT_DER, at(v))).moduleId, v.meta.module_id);
  assert.throws(() => parseDocument(new Uint8Array([0xd1, ...v.data])), /tag/);
});

test("trailing bytes, truncation and junk are refused with an AttestationError", () => {
  const v = VECTORS[0]!;
  assert.throws(() => parseDocument(new Uint8Array([...v.data, 0x00])), /trailing/);
  for (const cut of [1, 10, 100, v.data.length - 1]) {
    assert.throws(() => parseDocument(v.data.subarray(0, cut)), AttestationError);
  }
  assert.throws(() => parseDocument(new Uint8Array(0)), AttestationError);
  assert.throws(() => parseDocument(new TextEncoder().encode("not cbor at all")), AttestationError);
});

test("random byte flips never crash the parser with anything but an AttestationError", async () => {
  let seed = 12345;
  const random = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
  for (let round = 0; round < 300; round++) {
    const v = VECTORS[round % VECTORS.length]!;
    const tampered = v.data.slice();
    tampered[Math.floor(random() * tampered.length)]! ^= 1 << Math.floor(random() * 8);
    try {
      await verifyDocument(tampered, ROOT_DER, at(v), { allowDebug: true });
      assert.fail(`${v.name}: a tampered copy verified`);
    } catch (error) {
      assert.ok(error instanceof AttestationError, `${v.name}: ${String(error)}`);
    }
  }
});

function indexOf(haystack: Uint8Array, needle: Uint8Array): number {
  outer: for (let i = 0; i + needle.length <= haystack.length; i++) {
    for (let j = 0; j < needle.length; j++) if (haystack[i + j] !== needle[j]) continue outer;
    return i;
  }
  return -1;
}
