/**
 * The streamed ESDK encryptor (src/app/esdk-stream.ts) under node's WebCrypto:
 *   * its messages are real ESDK messages: the ESDK for JavaScript's own `decrypt` opens them, with
 *     the committing signed suite, 64 KiB frames, our context plus the signer's public key, and
 *     refuses each of them with any one byte flipped;
 *   * it is pull-based: a slow consumer is never more than two frames behind what it read;
 *   * with CCC_WEB_STREAM_KMS (tests/web/test_web_esdk_stream.py) it encrypts files under a KMS
 *     key through the page's own KMS keyring, for the enclave's Python decrypt path to check.
 */
import "./stream-node-globals";

import assert from "node:assert/strict";
import { openAsBlob } from "node:fs";
import { readFile, writeFile } from "node:fs/promises";
import { test } from "node:test";

import {
  AlgorithmSuiteIdentifier,
  buildClient,
  CommitmentPolicy,
  RawAesKeyringWebCrypto,
  RawAesWrappingSuiteIdentifier,
} from "@aws-crypto/client-browser";

import { keyring as kmsKeyring } from "../src/app/esdk";
import { collectToBlob, encryptStream, FRAME_LENGTH, Rechunker } from "../src/app/esdk-stream";

const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const CONTEXT = { "ccc:job": "0123456789abcdef0123456789abcdef", "ccc:tenant": "tenant-a" };

async function rawKeyring(): Promise<RawAesKeyringWebCrypto> {
  const wrappingSuite = RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING;
  const masterKey = await RawAesKeyringWebCrypto.importCryptoKey(crypto.getRandomValues(new Uint8Array(32)), wrappingSuite);
  return new RawAesKeyringWebCrypto({ keyName: "test-key", keyNamespace: "ccc-test", masterKey, wrappingSuite });
}

/** Deterministic bytes (not all-zero, so a frame boundary mistake shows). */
function pattern(size: number, seed = 1): Uint8Array {
  const out = new Uint8Array(size);
  let x = seed >>> 0 || 1;
  for (let i = 0; i < size; i++) {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    out[i] = x & 0xff;
  }
  return out;
}

/** A source handing out `chunk`-byte pieces only when pulled (highWaterMark 0), counting what it gave. */
function countingSource(total: number, chunk: number): { stream: ReadableStream<Uint8Array>; given: () => number } {
  let given = 0;
  const stream = new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (given >= total) return controller.close();
        const size = Math.min(chunk, total - given);
        controller.enqueue(pattern(size, given + 1));
        given += size;
      },
    },
    { highWaterMark: 0 },
  );
  return { stream, given: () => given };
}

function sourceOf(bytes: Uint8Array, chunk = 10_007): ReadableStream<Uint8Array> {
  let at = 0;
  return new ReadableStream<Uint8Array>(
    {
      pull(controller) {
        if (at >= bytes.length) return controller.close();
        controller.enqueue(bytes.slice(at, at + chunk));
        at += chunk;
      },
    },
    { highWaterMark: 0 },
  );
}

async function encryptBytes(plaintext: Uint8Array, keyring: RawAesKeyringWebCrypto): Promise<Uint8Array> {
  return (await encryptCounted(plaintext, keyring)).message;
}

/** The message and the number of chunks the stream produced (the header, then one per frame). */
async function encryptCounted(plaintext: Uint8Array, keyring: RawAesKeyringWebCrypto): Promise<{ message: Uint8Array; chunks: number }> {
  const { stream } = await encryptStream(sourceOf(plaintext), keyring, CONTEXT);
  let chunks = 0;
  const counted = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      transform(chunk, controller) {
        chunks += 1;
        controller.enqueue(chunk);
      },
    }),
  );
  const { blob, size } = await collectToBlob(counted);
  assert.equal(blob.size, size);
  return { message: new Uint8Array(await blob.arrayBuffer()), chunks };
}

/** Let every pending task run (promise jobs and macrotasks), with no timer: deterministic. */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await new Promise((resolve) => setImmediate(resolve));
}

const SIZES = [0, 1, FRAME_LENGTH - 1, FRAME_LENGTH, FRAME_LENGTH + 1, 3 * FRAME_LENGTH, 3 * FRAME_LENGTH + 12_345];

for (const size of SIZES) {
  test(`a streamed ${size}-byte message opens with the ESDK for JavaScript's decrypt, unchanged`, async () => {
    const keyring = await rawKeyring();
    const plaintext = pattern(size, size + 7);
    const { message, chunks } = await encryptCounted(plaintext.slice(), keyring);
    const { plaintext: opened, messageHeader } = await decrypt(keyring, message);
    assert.deepEqual(new Uint8Array(opened), plaintext);
    assert.equal(messageHeader.suiteId, AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384);
    assert.equal(messageHeader.frameLength, FRAME_LENGTH);
    const { "aws-crypto-public-key": publicKey, ...rest } = messageHeader.encryptionContext;
    assert.deepEqual(rest, CONTEXT);
    assert.equal(Buffer.from(publicKey!, "base64").length, 49); // a compressed P-384 point
    // One chunk per frame after the header; a full last frame is the final one (no empty frame after it).
    assert.equal(chunks - 1, framesOf(size));
  });
}

function framesOf(size: number): number {
  return Math.max(1, Math.ceil(size / FRAME_LENGTH));
}

test("every byte of a streamed message is authenticated: one flipped byte anywhere is refused", async () => {
  const keyring = await rawKeyring();
  const message = await encryptBytes(pattern(1), keyring);
  let refused = 0;
  for (let i = 0; i < message.length; i++) {
    const tampered = message.slice();
    tampered[i]! ^= 0x01;
    await assert.rejects(decrypt(keyring, tampered), `flipping byte ${i} of ${message.length} was not noticed`);
    refused += 1;
  }
  assert.equal(refused, message.length);
  // and in a multi-frame message: a byte of each frame, the header and the footer
  const long = await encryptBytes(pattern(2 * FRAME_LENGTH + 5), keyring);
  for (const i of [0, 200, long.length - 2 * FRAME_LENGTH - 200, long.length - FRAME_LENGTH, long.length - 110, long.length - 1]) {
    const tampered = long.slice();
    tampered[i]! ^= 0x80;
    await assert.rejects(decrypt(keyring, tampered), `flipping byte ${i} was not noticed`);
  }
  // a message cut after any frame is refused too (the final frame and the signature are missing)
  await assert.rejects(decrypt(keyring, long.subarray(0, long.length - 120)));
});

test("the encryptor is pull-based: a slow consumer is never more than two frames behind the source", async () => {
  const frames = 40;
  const sourceChunk = 10_007; // not a divisor of the frame length: the re-chunking is exercised
  const source = countingSource(frames * FRAME_LENGTH, sourceChunk);
  const { stream } = await encryptStream(source.stream, await rawKeyring(), CONTEXT);
  const reader = stream.getReader();
  await settle();
  assert.ok(source.given() <= FRAME_LENGTH + sourceChunk, `read ${source.given()} bytes before anything was consumed`);
  let consumedFrames = 0;
  let maxAhead = 0;
  const header = await reader.read(); // header and header auth
  assert.ok(header.value && header.value.length > 0);
  for (;;) {
    const { done } = await reader.read();
    if (done) break;
    consumedFrames += 1;
    await settle(); // the consumer is slow: everything the encryptor would do on its own, it does now
    const ahead = source.given() - consumedFrames * FRAME_LENGTH;
    maxAhead = Math.max(maxAhead, ahead);
    assert.ok(
      ahead <= 2 * FRAME_LENGTH,
      `after ${consumedFrames} frames consumed the source gave ${source.given()} bytes (${ahead} ahead)`,
    );
  }
  assert.equal(consumedFrames, frames);
  assert.equal(source.given(), frames * FRAME_LENGTH);
  assert.ok(maxAhead > 0, "the encryptor did not read ahead at all: the counter is not measuring anything");
});

test("the rechunker cuts any source into frames, the last one marked final", async () => {
  for (const [total, chunk] of [
    [0, 5],
    [1, 1],
    [FRAME_LENGTH, FRAME_LENGTH],
    [FRAME_LENGTH, 1000],
    [2 * FRAME_LENGTH + 1, 7_777],
  ] as const) {
    const bytes = pattern(total);
    const chunks = new Rechunker(sourceOf(bytes.slice(), chunk), FRAME_LENGTH);
    const got: Uint8Array[] = [];
    for (;;) {
      const frame = await chunks.next();
      got.push(frame.data.slice());
      if (frame.final) break;
      assert.equal(frame.data.length, FRAME_LENGTH);
    }
    assert.equal(got.length, framesOf(total));
    assert.deepEqual(Buffer.concat(got), Buffer.from(bytes));
  }
});

test("a source longer than the limit is refused as it is read, and a reserved context key is refused", async () => {
  const { stream } = await encryptStream(sourceOf(pattern(3 * FRAME_LENGTH)), await rawKeyring(), CONTEXT, {
    maxPlaintextBytes: 2 * FRAME_LENGTH,
  });
  await assert.rejects(collectToBlob(stream), /larger than/);
  await assert.rejects(
    encryptStream(sourceOf(pattern(1)), await rawKeyring(), { ...CONTEXT, "aws-crypto-public-key": "x" }),
    /reserved/,
  );
});

test("a keyring that wraps for another key than the tenant's is refused before anything is encrypted", async () => {
  await assert.rejects(
    encryptStream(sourceOf(pattern(1)), await rawKeyring(), CONTEXT, { onlyKmsKeyArn: "arn:aws:kms:eu-west-1:111122223333:key/x" }),
    /other than the tenant's/,
  );
});

interface KmsCases {
  region: string;
  endpoint: string;
  keyArn: string;
  credentials: { accessKeyId: string; secretAccessKey: string };
  cases: { plaintext: string; ciphertext: string; context: Record<string, string> }[];
}

const kmsCases = process.env["CCC_WEB_STREAM_KMS"];
if (kmsCases) {
  test("through the page's KMS keyring: files streamed from disk are encrypted under the tenant key", async () => {
    const config = JSON.parse(await readFile(kmsCases, "utf8")) as KmsCases;
    for (const c of config.cases) {
      const file = await openAsBlob(c.plaintext); // a file-backed Blob, as a dropped File is
      const { stream, encryptionContext } = await encryptStream(
        file.stream() as ReadableStream<Uint8Array>,
        kmsKeyring(config.keyArn, config.credentials, config.endpoint),
        c.context,
        { onlyKmsKeyArn: config.keyArn, maxPlaintextBytes: 20 * 1024 * 1024 },
      );
      const { blob, size } = await collectToBlob(stream);
      assert.equal(blob.size, size);
      assert.deepEqual(Object.keys(encryptionContext).sort(), [...Object.keys(c.context), "aws-crypto-public-key"].sort());
      await writeFile(c.ciphertext, new Uint8Array(await blob.arrayBuffer()));
    }
  });
}
