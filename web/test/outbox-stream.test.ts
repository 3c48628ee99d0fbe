/**
 * The outbox's streamed sealing (src/app/outbox.ts: sealStream/openSealed) under node's WebCrypto:
 * what goes in comes out, and a sealed Blob that was altered — a flipped byte, two chunks swapped,
 * the last chunk dropped, a chunk appended, or the Blob moved to another entry — does not open.
 */
import "./stream-node-globals";

import assert from "node:assert/strict";
import { test } from "node:test";

import { openSealed, SEAL_CHUNK, sealStream } from "../src/app/outbox";

const SEALED_CHUNK = SEAL_CHUNK + 16;

function pattern(size: number): Uint8Array {
  const out = new Uint8Array(size);
  for (let i = 0; i < size; i++) out[i] = (i * 31 + (i >> 8)) & 0xff;
  return out;
}

function streamOf(bytes: Uint8Array, chunk = 9_001): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.length) return controller.close();
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
}

async function key(): Promise<CryptoKey> {
  return crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
}

const NONCE = new Uint8Array([1, 2, 3, 4, 5, 6, 7, 8]);

for (const size of [0, 1, SEAL_CHUNK, SEAL_CHUNK + 1, 3 * SEAL_CHUNK + 77]) {
  test(`a ${size}-byte image sealed in chunks opens to the same bytes`, async () => {
    const k = await key();
    const clear = pattern(size);
    const sealed = await sealStream(streamOf(clear.slice()), k, "entry-1", NONCE);
    assert.equal(sealed.size, size + 16 * Math.max(1, Math.ceil(size / SEAL_CHUNK)));
    const opened = new Uint8Array(await (await openSealed(sealed, k, "entry-1", NONCE)).arrayBuffer());
    assert.deepEqual(opened, clear);
  });
}

test("an altered sealed entry does not open", async () => {
  const k = await key();
  const sealed = new Uint8Array(await (await sealStream(streamOf(pattern(3 * SEAL_CHUNK + 5)), k, "entry-1", NONCE)).arrayBuffer());
  const chunk = (i: number) => sealed.subarray(i * SEALED_CHUNK, (i + 1) * SEALED_CHUNK);
  const opens = (bytes: Uint8Array, id = "entry-1") => openSealed(new Blob([bytes as BlobPart]), k, id, NONCE);
  await opens(sealed); // the control: unaltered, it opens
  const flipped = sealed.slice();
  flipped[SEALED_CHUNK + 10]! ^= 1;
  await assert.rejects(opens(flipped), "a flipped byte");
  await assert.rejects(opens(Buffer.concat([chunk(1), chunk(0), sealed.subarray(2 * SEALED_CHUNK)])), "two chunks swapped");
  await assert.rejects(opens(sealed.subarray(0, 3 * SEALED_CHUNK)), "the last chunk dropped");
  await assert.rejects(opens(Buffer.concat([sealed, chunk(0)])), "a chunk appended");
  await assert.rejects(opens(sealed, "entry-2"), "moved to another entry");
});
