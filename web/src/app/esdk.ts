/**
 * The AWS Encryption SDK for JavaScript (WebCrypto underneath) with a KMS keyring on the trust
 * file's pinned key only: inputs are encrypted in the page under the job's context — streamed, frame
 * by frame (./esdk-stream) —, results are decrypted in the page and their context must be exactly
 * the job's result context.
 */
import { buildClient, CommitmentPolicy, getClient, KMS, KmsKeyringBrowser } from "@aws-crypto/client-browser";

import type { Credentials } from "./config";
import { type CollectedCiphertext, collectToBlob, encryptStream } from "./esdk-stream";

const { decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
/** The stack's image limit (ccc_core.limits.LIMITS.max_image_bytes): checked as the file is read. */
export const MAX_IMAGE_BYTES = 20 * 1024 * 1024;
const ESDK_PUBLIC_KEY = "aws-crypto-public-key";

export type Context = Record<string, string>;

export class ContextError extends Error {}

export function keyring(keyArn: string, credentials: Credentials, endpoint: string | null): KmsKeyringBrowser {
  const clientProvider = getClient(KMS, { credentials, ...(endpoint ? { endpoint } : {}) });
  // generatorKeyId = keyIds' only member: this keyring neither encrypts to nor decrypts with any other key.
  return new KmsKeyringBrowser({ clientProvider, generatorKeyId: keyArn });
}

/**
 * Encrypt a file (or any Blob) for its job: read as a stream, encrypted 64 KiB frame by frame under
 * the pinned key with the job's context, collected into a ciphertext Blob. Neither the clear image
 * nor the message is ever one array in the page.
 */
export async function encryptFile(
  file: Blob,
  context: Context,
  keyArn: string,
  credentials: Credentials,
  endpoint: string | null,
  onProgress: (fraction: number) => void = () => {},
): Promise<CollectedCiphertext> {
  if (file.size > MAX_IMAGE_BYTES) throw new Error(`the image is ${file.size} bytes, more than the ${MAX_IMAGE_BYTES} the stack accepts`);
  const { stream } = await encryptStream(file.stream(), keyring(keyArn, credentials, endpoint), context, {
    maxPlaintextBytes: MAX_IMAGE_BYTES,
    onlyKmsKeyArn: keyArn,
  });
  return collectToBlob(stream, (bytes) => onProgress(Math.min(1, bytes / Math.max(1, file.size))));
}

export async function decryptResult(
  ciphertext: Uint8Array,
  expected: Context,
  keyArn: string,
  credentials: Credentials,
  endpoint: string | null,
): Promise<Uint8Array> {
  const { plaintext, messageHeader } = await decrypt(keyring(keyArn, credentials, endpoint), ciphertext);
  const found = { ...messageHeader.encryptionContext };
  delete found[ESDK_PUBLIC_KEY];
  const same =
    Object.keys(found).length === Object.keys(expected).length &&
    Object.entries(expected).every(([key, value]) => found[key] === value);
  if (!same) throw new ContextError("the result's encryption context is not exactly this job's result context");
  return plaintext;
}
