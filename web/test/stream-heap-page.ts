/**
 * A page for tests/web/test_web_stream_heap.py: encrypts a ~20 MiB file in real Chromium the old way
 * (the whole file read into an array, `@aws-crypto/client-browser`'s one-shot `encrypt`, a SHA-256
 * of a copy for the upload record, a copy as the XHR body — what web/src/app.ts did before the
 * streamed path) or the streamed way (web/src/app/esdk-stream.ts into a Blob). At checkpoints —
 * after each step of the old path, after every frame of the streamed one — the page waits while the
 * test reads its heap. A raw AES keyring stands in for KMS (no network): the
 * data key's origin changes nothing in what the page holds.
 */
import {
  buildClient,
  CommitmentPolicy,
  RawAesKeyringWebCrypto,
  RawAesWrappingSuiteIdentifier,
} from "@aws-crypto/client-browser";

import { collectToBlob, encryptStream, FRAME_LENGTH } from "../src/app/esdk-stream";

const { encrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const CONTEXT = { "ccc:job": "0123456789abcdef0123456789abcdef", "ccc:tenant": "tenant-a" };

async function keyring(): Promise<RawAesKeyringWebCrypto> {
  const wrappingSuite = RawAesWrappingSuiteIdentifier.AES256_GCM_IV12_TAG16_NO_PADDING;
  const masterKey = await RawAesKeyringWebCrypto.importCryptoKey(crypto.getRandomValues(new Uint8Array(32)), wrappingSuite);
  return new RawAesKeyringWebCrypto({ keyName: "bench", keyNamespace: "ccc-bench", masterKey, wrappingSuite });
}

/** A file of random bytes made 64 KiB at a time, so making it never holds it as one array. */
function makeFile(size: number): File {
  const parts: Blob[] = [];
  for (let at = 0; at < size; at += FRAME_LENGTH) {
    parts.push(new Blob([crypto.getRandomValues(new Uint8Array(Math.min(FRAME_LENGTH, size - at)))]));
  }
  return new File(parts, "large.bin");
}

let file: File | null = null;
let kept: unknown = null; // what the page would upload, kept until the next run (as until the PUT ends)

let resume: (() => void) | null = null;

/** The page stops here (bench.paused names the step) until the test, having read the heap, resumes it. */
function checkpoint(label: string): Promise<void> {
  return new Promise((resolve) => {
    bench.paused = label;
    resume = () => {
      bench.paused = null;
      resume = null;
      resolve();
    };
  });
}

async function whole(): Promise<number> {
  const plaintext = new Uint8Array(await file!.arrayBuffer());
  await checkpoint("read");
  const { result } = await encrypt(await keyring(), plaintext, { encryptionContext: CONTEXT, frameLength: FRAME_LENGTH });
  await checkpoint("encrypted");
  plaintext.fill(0);
  const copy = result.slice().buffer as ArrayBuffer;
  await checkpoint("copied for the upload record");
  await crypto.subtle.digest("SHA-256", copy);
  kept = result.slice().buffer;
  await checkpoint("upload body");
  return result.length;
}

async function streamed(): Promise<number> {
  const { stream } = await encryptStream(file!.stream() as ReadableStream<Uint8Array>, await keyring(), CONTEXT);
  const observed = stream.pipeThrough(
    new TransformStream<Uint8Array, Uint8Array>({
      async transform(frame, controller) {
        controller.enqueue(frame);
        await checkpoint("frame");
      },
    }),
  );
  const { blob } = await collectToBlob(observed);
  kept = blob;
  await checkpoint("upload body");
  return blob.size;
}

const bench = {
  state: "idle" as string,
  paused: null as string | null,
  size: 0,
  resume(): void {
    resume?.();
  },
  prepare(size: number): void {
    file = makeFile(size);
    kept = null;
  },
  start(which: "whole" | "streamed"): void {
    bench.state = "running";
    kept = null;
    (which === "whole" ? whole() : streamed()).then(
      (size) => {
        bench.size = size;
        bench.state = "done";
      },
      (error: unknown) => {
        bench.state = `error: ${error instanceof Error ? error.message : String(error)}`;
      },
    );
  },
};
(globalThis as unknown as { bench: typeof bench }).bench = bench;
