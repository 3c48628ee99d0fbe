/**
 * AWS Encryption SDK messages produced frame by frame (Web Streams), so a large image never sits in
 * the page whole — neither as plaintext nor as one ciphertext array.
 *
 * Why not `@aws-crypto/client-browser`'s `encrypt`: it takes the whole plaintext, builds the whole
 * message and then concatenates it once more to sign it (WebCrypto's ECDSA signs one buffer), so a
 * 20 MiB image is held several times. This module builds the same message from the ESDK for
 * JavaScript's own building blocks (the keyring, the material, the key derivation and commitment of
 * `@aws-crypto/material-management-browser`, the header/frame/footer serialisation of
 * `@aws-crypto/serialize`), as `encrypt-browser` does, but one 64 KiB frame at a time:
 *
 *   message header ‖ header auth ‖ frame 1 … frame n (the last one marked final) ‖ footer
 *
 * The suite is the CLI's (the ESDK default under REQUIRE_ENCRYPT_REQUIRE_DECRYPT): 0x0578, AES-256-GCM,
 * HKDF-SHA512 with key commitment, ECDSA P-384 signature. WebCrypto cannot sign incrementally, so
 * the footer's signature is made with `@noble/curves` (P-384) over a SHA-384 that `@noble/hashes`
 * updates as the bytes go out — the same prehashed ECDSA the ESDK does, DER-encoded, the compressed
 * public key in the `aws-crypto-public-key` context entry as the ESDK's default CMM puts it.
 *
 * Pull-based: the returned stream produces the next frame only when its consumer asks (one frame
 * queued at most), and reads its source only as far as that frame needs (one byte of look-ahead to
 * know whether the frame is the last). Nothing reads the whole file.
 */
import {
  AlgorithmSuiteIdentifier,
  CommitmentPolicy,
  CommitmentPolicySuites,
  getEncryptHelper,
  type KeyringWebCrypto,
  needs,
  WebCryptoAlgorithmSuite,
  WebCryptoEncryptionMaterial,
} from "@aws-crypto/client-browser";
import {
  aadFactory,
  concatBuffers,
  ENCODED_SIGNER_KEY,
  MessageIdLength,
  serializeFactory,
  serializeMessageHeaderAuth,
  serializeSignatureInfo,
} from "@aws-crypto/serialize";
import { p384 } from "@noble/curves/nist.js";
import { sha256, sha384 } from "@noble/hashes/sha2.js";

/** The CLI's frame length (ccc.client.crypto.FRAME_LENGTH). */
export const FRAME_LENGTH = 64 * 1024;
/** The ESDK's default committing, signed suite: what the CLI writes and the enclave reads. */
export const SUITE_ID = AlgorithmSuiteIdentifier.ALG_AES256_GCM_IV12_TAG16_HKDF_SHA512_COMMIT_KEY_ECDSA_P384;
/** Ciphertext parts are handed to a Blob in batches of about this size (out of the JS heap in Chrome). */
const BLOB_BATCH_BYTES = 1024 * 1024;

const utf8 = (text: string): Uint8Array => new TextEncoder().encode(text);
const serialize = serializeFactory(utf8, { utf8Sorting: true });
const { messageAADContentString, messageAAD } = aadFactory(utf8);

export type Context = Record<string, string>;

export class StreamEncryptionError extends Error {}

export interface StreamOptions {
  frameLength?: number;
  /** Refuse a source longer than this many bytes (the stack's image limit), checked as it is read. */
  maxPlaintextBytes?: number;
  /** Every encrypted data key must be this KMS key's (provider `aws-kms`): the tenant key only. */
  onlyKmsKeyArn?: string;
}

/** The message as it is produced: its context (with the ESDK's public-key entry) and its bytes. */
export interface EncryptedStream {
  readonly encryptionContext: Context;
  readonly stream: ReadableStream<Uint8Array>;
}

export interface Frame {
  data: Uint8Array;
  final: boolean;
}

/**
 * Re-chunk a byte stream into pieces of exactly `size` bytes, the last one shorter (or empty if the
 * stream is), each marked final or not. Reads the source only until it holds `size + 1` bytes
 * (or the source ends): the one byte of look-ahead tells a full last frame from a full middle one.
 * Consumed source chunks are zeroed (they may be clear image bytes and are ours once read).
 */
export class Rechunker {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private pieces: Uint8Array[] = [];
  private buffered = 0;
  private done = false;
  private finished = false;
  read = 0;

  constructor(
    source: ReadableStream<Uint8Array>,
    private readonly size: number,
    private readonly maxBytes = Number.POSITIVE_INFINITY,
  ) {
    this.reader = source.getReader();
  }

  async next(): Promise<Frame> {
    needs(!this.finished, "the final frame was already taken");
    while (!this.done && this.buffered <= this.size) {
      const { value, done } = await this.reader.read();
      if (done) {
        this.done = true;
        break;
      }
      if (!value.length) continue;
      this.read += value.length;
      if (this.read > this.maxBytes) throw new StreamEncryptionError(`the image is larger than ${this.maxBytes} bytes`);
      this.pieces.push(value);
      this.buffered += value.length;
    }
    const final = this.buffered <= this.size; // only when the source ended
    const data = new Uint8Array(final ? this.buffered : this.size);
    let at = 0;
    while (at < data.length) {
      const piece = this.pieces[0]!;
      const take = Math.min(piece.length, data.length - at);
      data.set(piece.subarray(0, take), at);
      at += take;
      if (take === piece.length) {
        piece.fill(0);
        this.pieces.shift();
      } else {
        this.pieces[0] = piece.subarray(take);
      }
    }
    this.buffered -= data.length;
    this.finished = final;
    return { data, final };
  }

  async cancel(reason?: unknown): Promise<void> {
    for (const piece of this.pieces) piece.fill(0);
    this.pieces = [];
    await this.reader.cancel(reason);
  }
}

function toBase64(bytes: Uint8Array): string {
  let text = "";
  for (const b of bytes) text += String.fromCharCode(b);
  return btoa(text);
}

/**
 * Encrypt `source` under `keyring` with `context` into a framed, signed ESDK message, produced
 * frame by frame on demand. The keyring is asked for the data key before this returns.
 */
export async function encryptStream(
  source: ReadableStream<Uint8Array>,
  keyring: KeyringWebCrypto,
  context: Context,
  options: StreamOptions = {},
): Promise<EncryptedStream> {
  const frameLength = options.frameLength ?? FRAME_LENGTH;
  needs(Number.isInteger(frameLength) && frameLength > 0 && frameLength <= 2 ** 32 - 1, "frame length out of bounds");
  /* The ESDK's default CMM reserves this key for its own public key: a caller's entry would be
   * silently replaced, so it is refused (as that CMM does). */
  needs(!Object.prototype.hasOwnProperty.call(context, ENCODED_SIGNER_KEY), `${ENCODED_SIGNER_KEY} is reserved`);

  const suite = new WebCryptoAlgorithmSuite(SUITE_ID);
  CommitmentPolicySuites.isEncryptEnabled(CommitmentPolicy.REQUIRE_ENCRYPT_REQUIRE_DECRYPT, suite);

  // The signing key pair of this one message (the ESDK's default CMM makes one per message too).
  const signingKey = p384.utils.randomSecretKey();
  const compressedPublicKey = p384.getPublicKey(signingKey, true);
  const material = await keyring
    .onEncrypt(new WebCryptoEncryptionMaterial(suite, { ...context, [ENCODED_SIGNER_KEY]: toBase64(compressedPublicKey) }))
    .catch((error: unknown) => {
      signingKey.fill(0);
      throw error;
    });
  const edks = material.encryptedDataKeys;
  const wrongKey =
    options.onlyKmsKeyArn !== undefined &&
    edks.some((edk) => edk.providerId !== "aws-kms" || edk.providerInfo !== options.onlyKmsKeyArn);
  if (!material.hasValidKey() || edks.length < 1 || wrongKey) {
    signingKey.fill(0);
    if (material.hasUnencryptedDataKey) material.zeroUnencryptedDataKey();
    if (wrongKey) throw new StreamEncryptionError("the keyring wrapped the data key for a key other than the tenant's");
    throw new StreamEncryptionError("the keyring returned no usable, wrapped data key");
  }

  const { getEncryptInfo, dispose } = await getEncryptHelper(material);
  const messageId = crypto.getRandomValues(new Uint8Array(Number(MessageIdLength.V2)));
  const { getSubtleEncrypt, keyCommitment } = await getEncryptInfo(messageId);
  dispose(); // the derived AES key (non-extractable) is all the frames need; the raw data key goes now
  const { ivLength } = suite;
  const messageHeader = serialize.buildMessageHeader({
    suite,
    encryptedDataKeys: edks,
    encryptionContext: material.encryptionContext,
    messageId,
    frameLength,
    suiteData: keyCommitment,
  });
  const header = serialize.serializeMessageHeader(messageHeader);
  const headerIv = serialize.headerAuthIv(ivLength);
  const headerAuthTag = new Uint8Array(await getSubtleEncrypt(headerIv, header)(new Uint8Array(0)));
  const headerAuth = serializeMessageHeaderAuth({ headerIv, headerAuthTag, messageHeader });

  const digest = sha384.create(); // everything before the footer is signed
  const chunks = new Rechunker(source, frameLength, options.maxPlaintextBytes);
  let sequenceNumber = 0;
  let finished = false;

  /** The next frame's bytes; the final frame comes with the footer (the signature over everything). */
  async function nextFrame(): Promise<Uint8Array> {
    sequenceNumber += 1;
    needs(sequenceNumber < 2 ** 32 - 1, "too many frames");
    const { data, final } = await chunks.next();
    const iv = serialize.frameIv(ivLength, sequenceNumber);
    const frameHeader = final
      ? serialize.finalFrameHeader(sequenceNumber, iv, data.length)
      : serialize.frameHeader(sequenceNumber, iv);
    const aad = messageAAD(
      messageId,
      messageAADContentString({ contentType: messageHeader.contentType, isFinalFrame: final }),
      sequenceNumber,
      data.length,
    );
    const sealed = new Uint8Array(await getSubtleEncrypt(iv, aad)(data));
    data.fill(0);
    const frame = concatBuffers(frameHeader, sealed);
    digest.update(frame);
    if (!final) return frame;
    finished = true;
    const signature = p384.sign(digest.digest(), signingKey, { prehash: false, format: "der" });
    signingKey.fill(0);
    return concatBuffers(frame, serializeSignatureInfo(signature));
  }

  const stream = new ReadableStream<Uint8Array>(
    {
      start(controller) {
        const first = concatBuffers(header, headerAuth);
        digest.update(first);
        controller.enqueue(first);
      },
      async pull(controller) {
        try {
          controller.enqueue(await nextFrame());
          if (finished) controller.close();
        } catch (error) {
          signingKey.fill(0);
          await chunks.cancel(error).catch(() => undefined);
          controller.error(error);
        }
      },
      async cancel(reason) {
        signingKey.fill(0);
        await chunks.cancel(reason);
      },
    },
    { highWaterMark: 1 },
  );
  return { encryptionContext: { ...material.encryptionContext }, stream };
}

export interface CollectedCiphertext {
  blob: Blob;
  size: number;
  sha256: Uint8Array;
}

/**
 * Drain an encrypted stream into a Blob, about 1 MiB of parts at a time, hashing it (SHA-256, the
 * upload record) on the way: the page never holds the whole ciphertext as one array, and Chrome may
 * keep Blob data out of the JS heap (or on disk).
 */
export async function collectToBlob(
  stream: ReadableStream<Uint8Array>,
  onProgress: (bytes: number) => void = () => {},
): Promise<CollectedCiphertext> {
  const reader = stream.getReader();
  const hash = sha256.create();
  const blobs: Blob[] = [];
  let batch: Uint8Array[] = [];
  let batchBytes = 0;
  let size = 0;
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    hash.update(value);
    batch.push(value);
    batchBytes += value.length;
    size += value.length;
    if (batchBytes >= BLOB_BATCH_BYTES) {
      blobs.push(new Blob(batch as BlobPart[]));
      batch = [];
      batchBytes = 0;
    }
    onProgress(size);
  }
  if (batch.length) blobs.push(new Blob(batch as BlobPart[]));
  const blob = new Blob(blobs, { type: "application/octet-stream" });
  needs(blob.size === size, "the ciphertext Blob is not the size of what was encrypted");
  return { blob, size, sha256: hash.digest() };
}
