/**
 * X.509 certificates of a Nitro attestation chain, parsed and checked by hand, as the Python
 * verifier does (src/ccc/attestation/chain.py), on WebCrypto.
 *
 * Why by hand: Nitro leaf certificates carry no Authority Key Identifier, which RFC 5280 path
 * validators refuse, and the chain is fixed by the document (cabundle[0] must be byte-equal to the
 * pinned root). Each link is checked explicitly: issuer name == subject name, the issuer's
 * ecdsa-with-SHA384 signature over the TBSCertificate, validity at the verification time, CA basic
 * constraints and path length, key usage where present, no unknown critical extension, and the
 * leaf's key is ECDSA P-384 (the COSE signing key).
 */
import { buffer, equalBytes } from "./bytes";
import { children, DerReader, oid, TAG, time, type Tlv, unsignedInteger } from "./der";
import { AttestationError } from "./errors";

const ECDSA_WITH_SHA384 = "1.2.840.10045.4.3.3";
const EC_PUBLIC_KEY = "1.2.840.10045.2.1";
const SECP384R1 = "1.3.132.0.34";
const BASIC_CONSTRAINTS = "2.5.29.19";
const KEY_USAGE = "2.5.29.15";
const UNDERSTOOD_CRITICAL = new Set([BASIC_CONSTRAINTS, KEY_USAGE]);

export interface Certificate {
  name: string; // "root", "intermediate 1", ..., "leaf" (for messages)
  tbs: Uint8Array; // the signed bytes, as received
  tbsSignatureAlgorithm: string;
  signatureAlgorithm: string;
  signature: Uint8Array; // raw r || s (96 bytes), converted from DER ECDSA-Sig-Value
  issuer: Uint8Array; // DER of the issuer Name
  subject: Uint8Array; // DER of the subject Name
  notBefore: Date;
  notAfter: Date;
  spki: Uint8Array; // DER SubjectPublicKeyInfo
  keyAlgorithm: string;
  keyCurve: string | null;
  basicConstraints: { ca: boolean; pathLength: number | null } | null;
  keyUsage: { digitalSignature: boolean; keyCertSign: boolean } | null;
  criticalUnknown: string[];
}

export function parseCertificate(der: Uint8Array, name: string): Certificate {
  const what = `${name} certificate`;
  const outer = new DerReader(der, what);
  const cert = outer.read(TAG.SEQUENCE);
  outer.end();
  const parts = children(cert, what);
  const tbsTlv = parts.read(TAG.SEQUENCE);
  const signatureAlgorithm = algorithm(parts.read(TAG.SEQUENCE), what);
  const signature = ecdsaSignature(parts.read(TAG.BIT_STRING), what);
  parts.end();

  const tbs = children(tbsTlv, what);
  const version = tbs.optional(0xa0);
  if (version) {
    const v = children(version, what).read(TAG.INTEGER).content;
    if (v.length !== 1 || v[0]! > 2) throw new AttestationError(`${what} has an unknown version`);
  }
  tbs.read(TAG.INTEGER); // serial number: not checked (Python's verifier does not either)
  const tbsSignatureAlgorithm = algorithm(tbs.read(TAG.SEQUENCE), what);
  const issuer = tbs.read(TAG.SEQUENCE).raw;
  const validity = children(tbs.read(TAG.SEQUENCE), what);
  const notBefore = time(validity.read(), `${what} notBefore`);
  const notAfter = time(validity.read(), `${what} notAfter`);
  validity.end();
  const subject = tbs.read(TAG.SEQUENCE).raw;
  const spkiTlv = tbs.read(TAG.SEQUENCE);
  const spki = children(spkiTlv, what);
  const keyAlg = children(spki.read(TAG.SEQUENCE), what);
  const keyAlgorithm = oid(keyAlg.read(TAG.OID), what);
  const curveTlv = keyAlg.optional(TAG.OID);
  tbs.optional(0x81);
  tbs.optional(0x82);
  const extensionsTlv = tbs.optional(0xa3);
  tbs.end();

  const parsed: Certificate = {
    name,
    tbs: tbsTlv.raw,
    tbsSignatureAlgorithm,
    signatureAlgorithm,
    signature,
    issuer,
    subject,
    notBefore,
    notAfter,
    spki: spkiTlv.raw,
    keyAlgorithm,
    keyCurve: curveTlv ? oid(curveTlv, what) : null,
    basicConstraints: null,
    keyUsage: null,
    criticalUnknown: [],
  };
  if (extensionsTlv) readExtensions(children(extensionsTlv, what).read(TAG.SEQUENCE), parsed, what);
  return parsed;
}

function algorithm(tlv: Tlv, what: string): string {
  const r = children(tlv, what);
  const id = oid(r.read(TAG.OID), what);
  r.optional(TAG.NULL);
  r.end(); // ecdsa-with-SHA384 has absent parameters
  return id;
}

/** BIT STRING holding DER ECDSA-Sig-Value {r, s} -> raw r || s, as WebCrypto verifies. */
function ecdsaSignature(tlv: Tlv, what: string): Uint8Array {
  if (tlv.content.length < 1 || tlv.content[0] !== 0) throw new AttestationError(`${what} signature has unused bits`);
  const seq = new DerReader(tlv.content.subarray(1), `${what} signature`);
  const values = children(seq.read(TAG.SEQUENCE), `${what} signature`);
  seq.end();
  const r = unsignedInteger(values.read(), 48, `${what} signature r`);
  const s = unsignedInteger(values.read(), 48, `${what} signature s`);
  values.end();
  const out = new Uint8Array(96);
  out.set(r, 0);
  out.set(s, 48);
  return out;
}

function readExtensions(list: Tlv, cert: Certificate, what: string): void {
  const r = children(list, what);
  const seen = new Set<string>();
  while (!r.done) {
    const ext = children(r.read(TAG.SEQUENCE), what);
    const id = oid(ext.read(TAG.OID), what);
    if (seen.has(id)) throw new AttestationError(`${what} has malformed extensions (duplicate ${id})`);
    seen.add(id);
    const criticalTlv = ext.optional(TAG.BOOLEAN);
    const critical = criticalTlv !== null && criticalTlv.content[0] === 0xff;
    const value = ext.read(TAG.OCTET_STRING).content;
    ext.end();
    if (id === BASIC_CONSTRAINTS) {
      const v = new DerReader(value, `${what} basicConstraints`);
      const seq = children(v.read(TAG.SEQUENCE), `${what} basicConstraints`);
      v.end();
      const ca = seq.optional(TAG.BOOLEAN);
      const pathLen = seq.optional(TAG.INTEGER);
      seq.end();
      cert.basicConstraints = {
        ca: ca !== null && ca.content[0] === 0xff,
        pathLength: pathLen ? Number(bigFrom(unsignedInteger(pathLen, 4, `${what} pathLen`))) : null,
      };
    } else if (id === KEY_USAGE) {
      const v = new DerReader(value, `${what} keyUsage`);
      const bits = v.read(TAG.BIT_STRING).content;
      v.end();
      const first = bits.length > 1 ? bits[1]! : 0;
      cert.keyUsage = { digitalSignature: (first & 0x80) !== 0, keyCertSign: (first & 0x04) !== 0 };
    } else if (critical && !UNDERSTOOD_CRITICAL.has(id)) {
      cert.criticalUnknown.push(id);
    }
  }
}

function bigFrom(bytes: Uint8Array): bigint {
  return bytes.reduce((n, b) => (n << 8n) | BigInt(b), 0n);
}

async function importP384(cert: Certificate): Promise<CryptoKey> {
  if (cert.keyAlgorithm !== EC_PUBLIC_KEY || cert.keyCurve !== SECP384R1) {
    throw new AttestationError(`${cert.name} certificate's key is not an ECDSA P-384 key`);
  }
  try {
    return await crypto.subtle.importKey("spki", buffer(cert.spki), { name: "ECDSA", namedCurve: "P-384" }, false, [
      "verify",
    ]);
  } catch {
    throw new AttestationError(`${cert.name} certificate's public key cannot be read`);
  }
}

/** ECDSA P-384 / SHA-384 over `data` with a raw r || s signature. */
export async function verifyEs384(key: CryptoKey, signature: Uint8Array, data: Uint8Array): Promise<boolean> {
  return crypto.subtle.verify({ name: "ECDSA", hash: "SHA-384" }, key, buffer(signature), buffer(data));
}

function checkValidity(cert: Certificate, at: Date): void {
  if (at < cert.notBefore) {
    throw new AttestationError(
      `${cert.name} certificate is not yet valid at ${at.toISOString()} (from ${cert.notBefore.toISOString()})`,
    );
  }
  if (at > cert.notAfter) {
    throw new AttestationError(
      `${cert.name} certificate expired before ${at.toISOString()} (until ${cert.notAfter.toISOString()})`,
    );
  }
}

async function checkSignedBy(child: Certificate, issuer: Certificate): Promise<void> {
  if (!equalBytes(child.issuer, issuer.subject)) {
    throw new AttestationError(`${child.name} certificate is not issued by the next certificate up (names differ)`);
  }
  const key = await importP384(issuer);
  if (!(await verifyEs384(key, child.signature, child.tbs))) {
    throw new AttestationError(`${child.name} certificate's signature does not verify with its issuer's key`);
  }
}

/**
 * Verify `leaf <- cabundle[-1] <- ... <- cabundle[0] == root` at `at`; return the leaf's key.
 */
export async function verifyChain(
  leafDer: Uint8Array,
  cabundle: Uint8Array[],
  rootDer: Uint8Array,
  at: Date,
): Promise<CryptoKey> {
  if (cabundle.length === 0) throw new AttestationError("cabundle is empty");
  if (!equalBytes(cabundle[0]!, rootDer)) throw new AttestationError("cabundle[0] is not the trusted root certificate");
  const names = ["root", ...cabundle.slice(1).map((_, i) => `intermediate ${i + 1}`), "leaf"];
  const certs = [...cabundle, leafDer].map((der, i) => parseCertificate(der, names[i]!));
  for (const cert of certs) {
    checkValidity(cert, at);
    if (cert.criticalUnknown.length > 0) {
      throw new AttestationError(`${cert.name} certificate has an unknown critical extension ${cert.criticalUnknown[0]}`);
    }
    if (cert.signatureAlgorithm !== ECDSA_WITH_SHA384 || cert.tbsSignatureAlgorithm !== ECDSA_WITH_SHA384) {
      throw new AttestationError(`${cert.name} certificate is signed with ${cert.signatureAlgorithm}, expected ecdsa-with-SHA384`);
    }
  }
  await checkSignedBy(certs[0]!, certs[0]!); // pinned by bytes; self-signature checked anyway
  for (let i = 1; i < certs.length; i++) await checkSignedBy(certs[i]!, certs[i - 1]!);
  const caCerts = certs.slice(0, -1);
  caCerts.forEach((cert, position) => {
    const below = caCerts.length - 1 - position;
    const bc = cert.basicConstraints;
    if (!bc || !bc.ca) throw new AttestationError(`${cert.name} certificate is not a CA (basicConstraints cA missing or false)`);
    if (bc.pathLength !== null && below > bc.pathLength) {
      throw new AttestationError(
        `${cert.name} certificate allows ${bc.pathLength} intermediate(s) below it, chain has ${below}`,
      );
    }
    if (cert.keyUsage && !cert.keyUsage.keyCertSign) {
      throw new AttestationError(`${cert.name} certificate's key usage does not allow signing certificates`);
    }
  });
  const leaf = certs[certs.length - 1]!;
  if (leaf.basicConstraints?.ca) throw new AttestationError("leaf certificate is a CA certificate");
  if (leaf.keyUsage && !leaf.keyUsage.digitalSignature) {
    throw new AttestationError("leaf certificate's key usage does not allow digital signatures");
  }
  return importP384(leaf);
}
