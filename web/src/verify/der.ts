/**
 * A minimal, strict DER reader: just what X.509 certificates of the Nitro chain need.
 *
 * Definite lengths in their shortest form only (DER), no trailing bytes inside a structure.
 * Every failure is an AttestationError naming `what`, so a malformed certificate is a refusal,
 * never an exception of another kind.
 */
import { AttestationError } from "./errors";

export interface Tlv {
  tag: number; // the identifier octet (low tag numbers only: all X.509 needs)
  content: Uint8Array; // the value bytes
  raw: Uint8Array; // tag + length + value, as received (signed bytes, names compared byte-wise)
}

export const TAG = {
  BOOLEAN: 0x01,
  INTEGER: 0x02,
  BIT_STRING: 0x03,
  OCTET_STRING: 0x04,
  NULL: 0x05,
  OID: 0x06,
  UTC_TIME: 0x17,
  GENERALIZED_TIME: 0x18,
  SEQUENCE: 0x30,
  SET: 0x31,
} as const;

export class DerReader {
  private pos = 0;
  constructor(
    private readonly data: Uint8Array,
    private readonly what: string,
  ) {}

  fail(message: string): never {
    throw new AttestationError(`${this.what} is not valid DER (${message})`);
  }

  get done(): boolean {
    return this.pos >= this.data.length;
  }

  peekTag(): number | null {
    return this.done ? null : this.data[this.pos]!;
  }

  read(expectedTag?: number): Tlv {
    const start = this.pos;
    if (this.data.length - this.pos < 2) this.fail("truncated element");
    const tag = this.data[this.pos++]!;
    if ((tag & 0x1f) === 0x1f) this.fail("high tag numbers are not used in X.509");
    if (expectedTag !== undefined && tag !== expectedTag) {
      this.fail(`expected tag 0x${expectedTag.toString(16)}, found 0x${tag.toString(16)}`);
    }
    let length = this.data[this.pos++]!;
    if (length & 0x80) {
      const count = length & 0x7f;
      if (count === 0 || count > 4) this.fail("indefinite or oversized length");
      if (this.data.length - this.pos < count) this.fail("truncated length");
      length = 0;
      for (let i = 0; i < count; i++) length = length * 256 + this.data[this.pos++]!;
      if (length < 0x80 || this.data[this.pos - count] === 0) this.fail("length not in its shortest form");
    }
    if (length > this.data.length - this.pos) this.fail("length runs past the end");
    const content = this.data.subarray(this.pos, this.pos + length);
    this.pos += length;
    return { tag, content, raw: this.data.subarray(start, this.pos) };
  }

  /** The next element if it carries `tag`, else null (OPTIONAL / DEFAULT fields). */
  optional(tag: number): Tlv | null {
    return this.peekTag() === tag ? this.read(tag) : null;
  }

  end(): void {
    if (!this.done) this.fail("unexpected bytes after the last field");
  }
}

export function children(tlv: Tlv, what: string): DerReader {
  return new DerReader(tlv.content, what);
}

export function oid(tlv: Tlv, what: string): string {
  const bytes = tlv.content;
  if (tlv.tag !== TAG.OID || bytes.length === 0) throw new AttestationError(`${what}: not an OBJECT IDENTIFIER`);
  const arcs: number[] = [];
  let value = 0;
  for (let i = 0; i < bytes.length; i++) {
    const b = bytes[i]!;
    if (value === 0 && b === 0x80) throw new AttestationError(`${what}: OID arc not minimal`);
    value = value * 128 + (b & 0x7f);
    if (!(b & 0x80)) {
      arcs.push(value);
      value = 0;
    } else if (i === bytes.length - 1) {
      throw new AttestationError(`${what}: truncated OID`);
    }
  }
  const first = arcs.shift()!;
  const head = first < 80 ? [Math.floor(first / 40), first % 40] : [2, first - 80];
  return [...head, ...arcs].join(".");
}

/** UTCTime / GeneralizedTime in the forms RFC 5280 allows (Zulu, seconds, no fraction). */
export function time(tlv: Tlv, what: string): Date {
  const text = new TextDecoder().decode(tlv.content);
  let match: RegExpMatchArray | null;
  let year: number;
  if (tlv.tag === TAG.UTC_TIME && (match = text.match(/^(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    const yy = Number(match[1]);
    year = yy >= 50 ? 1900 + yy : 2000 + yy;
  } else if (tlv.tag === TAG.GENERALIZED_TIME && (match = text.match(/^(\d{4})(\d{2})(\d{2})(\d{2})(\d{2})(\d{2})Z$/))) {
    year = Number(match[1]);
  } else {
    throw new AttestationError(`${what} is not a UTCTime/GeneralizedTime in Zulu`);
  }
  const [mo, d, h, mi, s] = match.slice(2).map(Number) as [number, number, number, number, number];
  const date = new Date(Date.UTC(year, mo - 1, d, h, mi, s));
  if (date.getUTCMonth() !== mo - 1 || date.getUTCDate() !== d || h > 23 || mi > 59 || s > 59) {
    throw new AttestationError(`${what} is not a calendar time`);
  }
  return date;
}

/** A positive INTEGER's magnitude, without DER's sign byte, left-padded to `size` bytes. */
export function unsignedInteger(tlv: Tlv, size: number, what: string): Uint8Array {
  if (tlv.tag !== TAG.INTEGER || tlv.content.length === 0) throw new AttestationError(`${what}: not an INTEGER`);
  let bytes = tlv.content;
  if (bytes[0]! & 0x80) throw new AttestationError(`${what}: negative`);
  if (bytes.length > 1 && bytes[0] === 0 && !(bytes[1]! & 0x80)) throw new AttestationError(`${what}: not minimal`);
  while (bytes.length > 0 && bytes[0] === 0) bytes = bytes.subarray(1);
  if (bytes.length > size) throw new AttestationError(`${what}: larger than ${size} bytes`);
  const out = new Uint8Array(size);
  out.set(bytes, size - bytes.length);
  return out;
}
