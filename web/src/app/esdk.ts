/**
 * The AWS Encryption SDK for JavaScript (WebCrypto underneath) with a KMS keyring on the trust
 * file's pinned key only: inputs are encrypted in the page under the job's context, results are
 * decrypted in the page and their context must be exactly the job's result context.
 */
import { buildClient, CommitmentPolicy, getClient, KMS, KmsKeyringBrowser } from "@aws-crypto/client-browser";

import type { Credentials } from "./config";

const { encrypt, decrypt } = buildClient(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT);
const ESDK_PUBLIC_KEY = "aws-crypto-public-key";

export type Context = Record<string, string>;

export class ContextError extends Error {}

function keyring(keyArn: string, credentials: Credentials, endpoint: string | null): KmsKeyringBrowser {
  const clientProvider = getClient(KMS, { credentials, ...(endpoint ? { endpoint } : {}) });
  // generatorKeyId = keyIds' only member: this keyring neither encrypts to nor decrypts with any other key.
  return new KmsKeyringBrowser({ clientProvider, generatorKeyId: keyArn });
}

export async function encryptInput(
  plaintext: Uint8Array,
  context: Context,
  keyArn: string,
  credentials: Credentials,
  endpoint: string | null,
): Promise<Uint8Array> {
  const { result } = await encrypt(keyring(keyArn, credentials, endpoint), plaintext, {
    encryptionContext: context,
    frameLength: 64 * 1024, // as the CLI (ccc.client.crypto)
  });
  return result;
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
