/**
 * Decoding untrusted CBOR (RFC 8949), exactly what a Nitro attestation document needs, strictly.
 *
 * Why our own decoder: the verifier must (a) keep byte strings as the exact bytes received (the
 * COSE signature covers the original payload bytes; some real documents carry indefinite-length
 * maps, which a decode/re-encode would change), (b) refuse trailing bytes, duplicate map keys,
 * invalid UTF-8 and absurd nesting like the Python side (ccc_core.attestation.cbor_input), and
 * (c) run in the page with no dependency. It is ~150 lines and covered by the real AWS vectors.
 */
import { AttestationError } from "./errors";

export type CborValue =
  | number
  | bigint
  | string
  | boolean
  | null
  | undefined
  | Uint8Array
  | CborValue[]
  | Map<CborValue, CborValue>
  | CborTag;

export class CborTag {
  constructor(
    readonly tag: number | bigint,
    readonly value: CborValue,
  ) {}
}

export const MAX_NESTING = 16;
const BREAK = Symbol("break");
const utf8 = new TextDecoder("utf-8", { fatal: true });

class Reader {
  pos = 0;
  constructor(
    readonly data: Uint8Array,
    readonly what: string,
  ) {}

  fail(message: string): never {
    throw new AttestationError(`${this.what} is not valid CBOR (${message} at byte ${this.pos})`);
  }

  byte(): number {
    if (this.pos >= this.data.length) this.fail("unexpected end");
    return this.data[this.pos++]!;
  }

  take(n: number): Uint8Array {
    if (n > this.data.length - this.pos) this.fail("length runs past the end");
    const out = this.data.subarray(this.pos, this.pos + n);
    this.pos += n;
    return out;
  }

  uint(bytes: number): number | bigint {
    let value = 0n;
    for (const b of this.take(bytes)) value = (value << 8n) | BigInt(b);
    return value <= BigInt(Number.MAX_SAFE_INTEGER) ? Number(value) : value;
  }

  /** The argument of an item head; null for indefinite length (info 31). */
  argument(info: number): number | bigint | null {
    if (info < 24) return info;
    if (info === 24) return this.uint(1);
    if (info === 25) return this.uint(2);
    if (info === 26) return this.uint(4);
    if (info === 27) return this.uint(8);
    if (info === 31) return null;
    return this.fail(`reserved additional information ${info}`);
  }

  length(info: number): number | null {
    const arg = this.argument(info);
    if (arg === null) return null;
    if (typeof arg === "bigint" || arg > this.data.length) this.fail("length larger than the input");
    return arg as number;
  }

  item(depth: number): CborValue | typeof BREAK {
    if (depth > MAX_NESTING) this.fail(`nesting deeper than ${MAX_NESTING}`);
    const head = this.byte();
    const major = head >> 5;
    const info = head & 0x1f;
    switch (major) {
      case 0: {
        const arg = this.argument(info);
        if (arg === null) return this.fail("indefinite integer");
        return arg;
      }
      case 1: {
        const arg = this.argument(info);
        if (arg === null) return this.fail("indefinite integer");
        const value = -1n - BigInt(arg);
        return value >= BigInt(Number.MIN_SAFE_INTEGER) ? Number(value) : value;
      }
      case 2:
      case 3: {
        const raw = this.string(major, info);
        if (major === 2) return raw;
        try {
          return utf8.decode(raw);
        } catch {
          return this.fail("text string is not UTF-8");
        }
      }
      case 4: {
        const n = this.length(info);
        const out: CborValue[] = [];
        for (let i = 0; n === null || i < n; i++) {
          const value = this.item(depth + 1);
          if (value === BREAK) {
            if (n === null) break;
            this.fail("break inside a definite array");
          }
          out.push(value as CborValue);
        }
        return out;
      }
      case 5: {
        const n = this.length(info);
        const out = new Map<CborValue, CborValue>();
        const seen = new Set<string>();
        for (let i = 0; n === null || i < n; i++) {
          const key = this.item(depth + 1);
          if (key === BREAK) {
            if (n === null) break;
            this.fail("break inside a definite map");
          }
          const fingerprint = keyFingerprint(key as CborValue);
          if (seen.has(fingerprint)) this.fail("duplicate map key");
          seen.add(fingerprint);
          const value = this.item(depth + 1);
          if (value === BREAK) this.fail("break where a map value belongs");
          out.set(key as CborValue, value as CborValue);
        }
        return out;
      }
      case 6: {
        const tag = this.argument(info);
        if (tag === null) return this.fail("indefinite tag");
        const value = this.item(depth + 1);
        if (value === BREAK) return this.fail("break where a tagged item belongs");
        return new CborTag(tag, value);
      }
      default:
        return this.simple(info);
    }
  }

  string(major: number, info: number): Uint8Array {
    const n = this.length(info);
    if (n !== null) return this.take(n);
    const chunks: Uint8Array[] = [];
    for (;;) {
      const head = this.byte();
      if (head === 0xff) break;
      if (head >> 5 !== major || (head & 0x1f) === 31) this.fail("bad chunk in an indefinite string");
      chunks.push(this.take(this.length(head & 0x1f)!));
    }
    const out = new Uint8Array(chunks.reduce((s, c) => s + c.length, 0));
    let at = 0;
    for (const c of chunks) {
      out.set(c, at);
      at += c.length;
    }
    return out;
  }

  simple(info: number): CborValue | typeof BREAK {
    if (info === 20) return false;
    if (info === 21) return true;
    if (info === 22) return null;
    if (info === 23) return undefined;
    if (info === 25) {
      const half = this.uint(2) as number;
      const exp = (half >> 10) & 0x1f;
      const mant = half & 0x3ff;
      const sign = half & 0x8000 ? -1 : 1;
      if (exp === 0) return sign * 2 ** -14 * (mant / 1024);
      if (exp === 31) return mant ? NaN : sign * Infinity;
      return sign * 2 ** (exp - 15) * (1 + mant / 1024);
    }
    if (info === 26) return new DataView(buffer(this.take(4))).getFloat32(0);
    if (info === 27) return new DataView(buffer(this.take(8))).getFloat64(0);
    if (info === 31) return BREAK;
    return this.fail(`unsupported simple value ${info}`);
  }
}

function buffer(bytes: Uint8Array): ArrayBuffer {
  return bytes.slice().buffer as ArrayBuffer;
}

function keyFingerprint(key: CborValue): string {
  if (key instanceof Uint8Array) return `b:${Array.from(key).join(",")}`;
  if (typeof key === "string") return `s:${key}`;
  if (typeof key === "number" || typeof key === "bigint") return `n:${key.toString()}`;
  if (key === null || key === undefined || typeof key === "boolean") return `v:${String(key)}`;
  return `o:${JSON.stringify(key, (_k, v) => (typeof v === "bigint" ? v.toString() : v instanceof Map ? [...v] : v))}`;
}

/** Exactly one CBOR item spanning all of `data`, or AttestationError. */
export function decodeExact(data: Uint8Array, what: string): CborValue {
  const reader = new Reader(data, what);
  const value = reader.item(0);
  if (value === BREAK) reader.fail("a lone break");
  if (reader.pos !== data.length) {
    throw new AttestationError(`${what} has ${data.length - reader.pos} trailing byte(s) after the CBOR item`);
  }
  return value as CborValue;
}

/** The head of a definite-length item (for building the COSE Sig_structure). */
export function encodeHead(major: number, length: number): Uint8Array {
  const m = major << 5;
  if (length < 24) return Uint8Array.of(m | length);
  if (length < 0x100) return Uint8Array.of(m | 24, length);
  if (length < 0x10000) return Uint8Array.of(m | 25, length >> 8, length & 0xff);
  if (length < 0x100000000) {
    return Uint8Array.of(m | 26, (length >>> 24) & 0xff, (length >> 16) & 0xff, (length >> 8) & 0xff, length & 0xff);
  }
  throw new RangeError("item too large");
}
