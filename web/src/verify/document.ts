/**
 * The Nitro attestation document: COSE_Sign1 (ES384) around a CBOR payload, parsed for structure
 * only (mirrors ccc_core.attestation.cose and .document). A parsed document is never trusted on
 * its own: `verifyDocument` proves it authentic under a pinned root.
 */
import { concat, equalBytes } from "./bytes";
import { CborTag, type CborValue, decodeExact, encodeHead } from "./cbor";
import { AttestationError } from "./errors";
import { verifyChain, verifyEs384 } from "./x509";

export const MAX_DOCUMENT_BYTES = 16 * 1024; // ccc_core.limits max_attestation_bytes
export const PCR_BYTES = 48;
export const MAX_PCR_INDEX = 31;
export const MAX_OPTIONAL_FIELD_BYTES = 1024;
const MAX_MODULE_ID_CHARS = 256;
const MAX_CABUNDLE = 8;
const MAX_CERTIFICATE_BYTES = 4096;
const COSE_SIGN1_TAG = 18;
const ES384_SIGNATURE_BYTES = 96;

export interface AttestationDocument {
  moduleId: string;
  digest: string;
  timestamp: Date;
  timestampMs: number;
  pcrs: Map<number, Uint8Array>;
  certificate: Uint8Array;
  cabundle: Uint8Array[];
  publicKey: Uint8Array | null; // null = CBOR null / absent; an empty array is a different claim
  userData: Uint8Array | null;
  nonce: Uint8Array | null;
  isDebug: boolean; // PCR0, PCR1 and PCR2 all zero
}

export interface SignedDocument {
  document: AttestationDocument;
  protectedHeader: Uint8Array;
  payload: Uint8Array;
  signature: Uint8Array;
}

export function parseSignedDocument(data: Uint8Array): SignedDocument {
  if (data.length === 0) throw new AttestationError("attestation document is empty");
  if (data.length > MAX_DOCUMENT_BYTES) {
    throw new AttestationError(`attestation document is ${data.length} bytes, limit ${MAX_DOCUMENT_BYTES}`);
  }
  let item = decodeExact(data, "attestation document");
  if (item instanceof CborTag) {
    if (item.tag !== COSE_SIGN1_TAG) {
      throw new AttestationError(`attestation document has CBOR tag ${item.tag}, expected 18 (COSE_Sign1)`);
    }
    item = item.value;
  }
  if (!Array.isArray(item) || item.length !== 4) {
    throw new AttestationError("attestation document is not a COSE_Sign1 array of four items");
  }
  const [protectedHeader, unprotected, payload, signature] = item;
  if (!(protectedHeader instanceof Uint8Array)) throw new AttestationError("COSE protected header is not a byte string");
  if (!(unprotected instanceof Map)) throw new AttestationError("COSE unprotected header is not a map");
  if (!(payload instanceof Uint8Array) || payload.length === 0) {
    throw new AttestationError("COSE payload is missing or not a byte string");
  }
  if (!(signature instanceof Uint8Array)) throw new AttestationError("COSE signature is not a byte string");
  const header = decodeExact(protectedHeader, "COSE protected header");
  if (!(header instanceof Map)) throw new AttestationError("COSE protected header is not a map");
  const alg = header.get(1);
  if (alg !== -35) throw new AttestationError(`COSE algorithm is ${String(alg)}, only ES384 (-35) is accepted`);
  if (header.size !== 1) throw new AttestationError("COSE protected header has unsupported labels");
  if (signature.length !== ES384_SIGNATURE_BYTES) {
    throw new AttestationError(`COSE signature is ${signature.length} bytes, ES384 needs 96 (raw r||s)`);
  }
  const body = decodeExact(payload, "attestation payload");
  if (!(body instanceof Map)) throw new AttestationError("attestation payload is not a CBOR map");
  return { document: documentFromMap(body), protectedHeader, payload, signature };
}

export function parseDocument(data: Uint8Array): AttestationDocument {
  return parseSignedDocument(data).document;
}

function documentFromMap(map: Map<CborValue, CborValue>): AttestationDocument {
  for (const key of map.keys()) {
    if (typeof key !== "string") throw new AttestationError(`attestation payload has a non-text key ${String(key)}`);
  }
  const moduleId = required(map, "module_id", "text");
  if (!moduleId || moduleId.length > MAX_MODULE_ID_CHARS) {
    throw new AttestationError(`module_id must be 1..${MAX_MODULE_ID_CHARS} characters`);
  }
  const digest = required(map, "digest", "text");
  if (digest !== "SHA384") throw new AttestationError(`digest is '${digest}', expected 'SHA384'`);
  const timestampMs = required(map, "timestamp", "int");
  if (timestampMs <= 0) throw new AttestationError("timestamp must be a positive number of milliseconds");
  const certificate = required(map, "certificate", "bytes");
  if (certificate.length === 0 || certificate.length > MAX_CERTIFICATE_BYTES) {
    throw new AttestationError(`certificate must be 1..${MAX_CERTIFICATE_BYTES} bytes`);
  }
  const pcrs = readPcrs(required(map, "pcrs", "map"));
  const zero = new Uint8Array(PCR_BYTES);
  return {
    moduleId,
    digest,
    timestamp: new Date(timestampMs),
    timestampMs,
    pcrs,
    certificate,
    cabundle: readCabundle(required(map, "cabundle", "array")),
    publicKey: optionalBytes(map, "public_key"),
    userData: optionalBytes(map, "user_data"),
    nonce: optionalBytes(map, "nonce"),
    isDebug: [0, 1, 2].every((i) => equalBytes(pcrs.get(i)!, zero)),
  };
}

type Kinds = { text: string; int: number; bytes: Uint8Array; map: Map<CborValue, CborValue>; array: CborValue[] };

function required<K extends keyof Kinds>(map: Map<CborValue, CborValue>, name: string, kind: K): Kinds[K] {
  if (!map.has(name)) throw new AttestationError(`attestation payload lacks '${name}'`);
  const value = map.get(name);
  const ok =
    (kind === "text" && typeof value === "string") ||
    (kind === "int" && typeof value === "number" && Number.isInteger(value)) ||
    (kind === "bytes" && value instanceof Uint8Array) ||
    (kind === "map" && value instanceof Map) ||
    (kind === "array" && Array.isArray(value));
  if (!ok) throw new AttestationError(`'${name}' is not ${kind}`);
  return value as Kinds[K];
}

function readPcrs(raw: Map<CborValue, CborValue>): Map<number, Uint8Array> {
  if (raw.size === 0 || raw.size > MAX_PCR_INDEX + 1) throw new AttestationError("pcrs must hold 1..32 entries");
  const pcrs = new Map<number, Uint8Array>();
  for (const [index, value] of raw) {
    if (typeof index !== "number" || !Number.isInteger(index) || index < 0 || index > MAX_PCR_INDEX) {
      throw new AttestationError(`PCR index ${String(index)} is not an integer in 0..${MAX_PCR_INDEX}`);
    }
    if (!(value instanceof Uint8Array) || value.length !== PCR_BYTES) {
      throw new AttestationError(`PCR${index} is not a ${PCR_BYTES}-byte string`);
    }
    pcrs.set(index, value);
  }
  const missing = [0, 1, 2].filter((i) => !pcrs.has(i));
  if (missing.length) throw new AttestationError(`pcrs lack the image/kernel/application registers [${missing}]`);
  return pcrs;
}

function readCabundle(raw: CborValue[]): Uint8Array[] {
  if (raw.length < 1 || raw.length > MAX_CABUNDLE) {
    throw new AttestationError(`cabundle has ${raw.length} certificates, expected 1..${MAX_CABUNDLE}`);
  }
  return raw.map((cert, position) => {
    if (!(cert instanceof Uint8Array) || cert.length === 0 || cert.length > MAX_CERTIFICATE_BYTES) {
      throw new AttestationError(`cabundle[${position}] is not a 1..${MAX_CERTIFICATE_BYTES}-byte string`);
    }
    return cert;
  });
}

function optionalBytes(map: Map<CborValue, CborValue>, name: string): Uint8Array | null {
  const value = map.get(name);
  if (value === null || value === undefined) return null;
  if (!(value instanceof Uint8Array)) throw new AttestationError(`'${name}' is not bytes or null`);
  if (value.length > MAX_OPTIONAL_FIELD_BYTES) {
    throw new AttestationError(`${name} is ${value.length} bytes, limit ${MAX_OPTIONAL_FIELD_BYTES}`);
  }
  return value;
}

/** The bytes ES384 signs: ["Signature1", protected, external_aad = h'', payload], from the
 * original byte strings (never a re-encoding of the payload). */
export function sigStructure(protectedHeader: Uint8Array, payload: Uint8Array): Uint8Array {
  const context = new TextEncoder().encode("Signature1");
  return concat(
    encodeHead(4, 4),
    encodeHead(3, context.length),
    context,
    encodeHead(2, protectedHeader.length),
    protectedHeader,
    encodeHead(2, 0),
    encodeHead(2, payload.length),
    payload,
  );
}

export interface DocumentPolicy {
  allowDebug?: boolean;
  maxUserData?: number; // default: the device's 1024
  maxNonce?: number;
}

/**
 * The document if it is authentic under `rootDer` at `at` (chain, then the COSE signature with the
 * leaf's key) and not from a debug-mode enclave (unless allowed); AttestationError otherwise.
 */
export async function verifyDocument(
  data: Uint8Array,
  rootDer: Uint8Array,
  at: Date,
  policy: DocumentPolicy = {},
): Promise<AttestationDocument> {
  const signed = parseSignedDocument(data);
  const document = signed.document;
  const leafKey = await verifyChain(document.certificate, document.cabundle, rootDer, at);
  if (!(await verifyEs384(leafKey, signed.signature, sigStructure(signed.protectedHeader, signed.payload)))) {
    throw new AttestationError("COSE signature does not verify with the leaf certificate's key");
  }
  if (document.isDebug && !policy.allowDebug) {
    throw new AttestationError("document comes from a debug-mode enclave (PCR0, PCR1 and PCR2 are zero)");
  }
  const limits: [string, Uint8Array | null, number][] = [
    ["user_data", document.userData, policy.maxUserData ?? MAX_OPTIONAL_FIELD_BYTES],
    ["nonce", document.nonce, policy.maxNonce ?? MAX_OPTIONAL_FIELD_BYTES],
  ];
  for (const [name, value, limit] of limits) {
    if (value && value.length > limit) throw new AttestationError(`${name} is ${value.length} bytes, policy allows ${limit}`);
  }
  return document;
}

/** AttestationError unless every expected PCR is present and equal (constant-time compare). */
export function checkPcrs(document: AttestationDocument, expected: Map<number, Uint8Array>): void {
  for (const index of [...expected.keys()].sort((a, b) => a - b)) {
    const actual = document.pcrs.get(index);
    if (!actual) throw new AttestationError(`document has no PCR${index}`);
    if (!equalBytes(actual, expected.get(index)!)) {
      throw new AttestationError(`PCR${index} does not match the expected measurement`);
    }
  }
}
