/**
 * The offline outbox: images chosen while offline wait in IndexedDB — encrypted — until the
 * connection returns, and survive a reload.
 *
 * Why a local key: the ESDK's KMS keyring needs KMS (GenerateDataKey) and the job's context needs
 * the jobs API, both unreachable offline. So a queued image is sealed at once with AES-256-GCM under
 * a non-extractable WebCrypto key that lives only in this origin's IndexedDB (the browser can use
 * it, no script can read its bytes); nothing is ever at rest in the clear. When the page is online
 * it opens the entry in memory and submits it like a freshly chosen image (ESDK under the pinned KMS
 * key, the job's context), then deletes the entry: the outbox is drained once per entry, and an
 * entry that fails to submit stays for the next attempt.
 *
 * Streamed (format 2): the file is read as a stream and sealed 64 KiB at a time, each chunk its own
 * AES-GCM message (IV = the entry's 8 random bytes ‖ chunk index; AAD = entry id ‖ index ‖ final
 * flag, so chunks cannot be reordered, moved to another entry, dropped from the end or appended),
 * and the sealed chunks are kept as one Blob: neither the clear image nor the sealed copy is ever
 * one array in the page. Opening is the same in reverse, into a Blob again. Format 1 entries (one
 * AES-GCM seal of the whole file, written by earlier versions of the page) are still opened.
 */
import { MAX_IMAGE_BYTES } from "./esdk";
import { Rechunker } from "./esdk-stream";

const DB_NAME = "ccc-outbox";
const STORE = "entries";
const KEYS = "keys";

export interface OutboxEntry {
  id: string;
  name: string;
  type: string;
  queuedAt: number;
  format?: 2;
  nonce?: Uint8Array; // format 2: the first 8 bytes of every chunk's IV
  iv?: Uint8Array; // format 1 only
  sealed: Blob | Uint8Array; // format 2: the sealed chunks (a Blob); format 1: AES-GCM(plaintext)
}

export const SEAL_CHUNK = 64 * 1024;
const TAG_BYTES = 16;
const BATCH_BYTES = 1024 * 1024;

function chunkIv(nonce: Uint8Array, index: number): Uint8Array {
  const iv = new Uint8Array(12);
  iv.set(nonce, 0);
  new DataView(iv.buffer).setUint32(8, index, false);
  return iv;
}

function chunkAad(id: string, index: number, final: boolean): Uint8Array {
  const name = new TextEncoder().encode(id);
  const aad = new Uint8Array(name.length + 5);
  aad.set(name, 0);
  new DataView(aad.buffer).setUint32(name.length, index, false);
  aad[name.length + 4] = final ? 1 : 0;
  return aad;
}

/** Blob parts gathered about 1 MiB at a time, so only that much is ever held as arrays. */
class BlobBuilder {
  private blobs: Blob[] = [];
  private batch: Uint8Array[] = [];
  private bytes = 0;

  add(part: Uint8Array): void {
    this.batch.push(part);
    this.bytes += part.length;
    if (this.bytes >= BATCH_BYTES) this.flush();
  }

  private flush(): void {
    if (this.batch.length) this.blobs.push(new Blob(this.batch as BlobPart[]));
    this.batch = [];
    this.bytes = 0;
  }

  build(type = ""): Blob {
    this.flush();
    return new Blob(this.blobs, { type });
  }
}

/** Seal a stream chunk by chunk under `key` for entry `id`; the result is a Blob of sealed chunks. */
export async function sealStream(source: ReadableStream<Uint8Array>, key: CryptoKey, id: string, nonce: Uint8Array): Promise<Blob> {
  const chunks = new Rechunker(source, SEAL_CHUNK, MAX_IMAGE_BYTES);
  const out = new BlobBuilder();
  for (let index = 0; ; index++) {
    const { data, final } = await chunks.next();
    const sealed = await crypto.subtle.encrypt(
      { name: "AES-GCM", iv: chunkIv(nonce, index) as BufferSource, additionalData: chunkAad(id, index, final) as BufferSource },
      key,
      data as BufferSource,
    );
    data.fill(0);
    out.add(new Uint8Array(sealed));
    if (final) break;
  }
  return out.build();
}

/** Open what `sealStream` made, chunk by chunk, into a Blob of the clear bytes (in memory only). */
export async function openSealed(sealed: Blob, key: CryptoKey, id: string, nonce: Uint8Array, type = ""): Promise<Blob> {
  const chunks = new Rechunker(sealed.stream() as ReadableStream<Uint8Array>, SEAL_CHUNK + TAG_BYTES);
  const out = new BlobBuilder();
  for (let index = 0; ; index++) {
    const { data, final } = await chunks.next();
    const clear = await crypto.subtle.decrypt(
      { name: "AES-GCM", iv: chunkIv(nonce, index) as BufferSource, additionalData: chunkAad(id, index, final) as BufferSource },
      key,
      data as BufferSource,
    );
    out.add(new Uint8Array(clear));
    if (final) break;
  }
  return out.build(type);
}

function open(): Promise<IDBDatabase> {
  return new Promise((resolve, reject) => {
    const request = indexedDB.open(DB_NAME, 1);
    request.onupgradeneeded = () => {
      request.result.createObjectStore(STORE, { keyPath: "id" });
      request.result.createObjectStore(KEYS);
    };
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

function run<T>(db: IDBDatabase, store: string, mode: IDBTransactionMode, op: (s: IDBObjectStore) => IDBRequest<T>): Promise<T> {
  return new Promise((resolve, reject) => {
    const request = op(db.transaction(store, mode).objectStore(store));
    request.onsuccess = () => resolve(request.result);
    request.onerror = () => reject(request.error);
  });
}

async function outboxKey(db: IDBDatabase): Promise<CryptoKey> {
  const existing = await run<CryptoKey | undefined>(db, KEYS, "readonly", (s) => s.get("aes") as IDBRequest<CryptoKey | undefined>);
  if (existing) return existing;
  const key = await crypto.subtle.generateKey({ name: "AES-GCM", length: 256 }, false, ["encrypt", "decrypt"]);
  await run(db, KEYS, "readwrite", (s) => s.put(key, "aes"));
  return key;
}

export async function enqueue(file: File): Promise<OutboxEntry> {
  if (file.size > MAX_IMAGE_BYTES) throw new Error(`the image is ${file.size} bytes, more than the ${MAX_IMAGE_BYTES} the stack accepts`);
  const db = await open();
  const key = await outboxKey(db);
  const id = crypto.randomUUID();
  const nonce = crypto.getRandomValues(new Uint8Array(8));
  const sealed = await sealStream(file.stream() as ReadableStream<Uint8Array>, key, id, nonce);
  const entry: OutboxEntry = { id, name: file.name, type: file.type, queuedAt: Date.now(), format: 2, nonce, sealed };
  await run(db, STORE, "readwrite", (s) => s.put(entry));
  return entry;
}

export async function entries(): Promise<OutboxEntry[]> {
  const db = await open();
  const all = await run<OutboxEntry[]>(db, STORE, "readonly", (s) => s.getAll() as IDBRequest<OutboxEntry[]>);
  return all.sort((a, b) => a.queuedAt - b.queuedAt);
}

/** The entry as a File again (in memory only), to submit like a freshly chosen image. */
export async function openEntry(entry: OutboxEntry): Promise<File> {
  const db = await open();
  const key = await outboxKey(db);
  if (entry.format === 2 && entry.sealed instanceof Blob && entry.nonce) {
    const clear = await openSealed(entry.sealed, key, entry.id, entry.nonce, entry.type);
    return new File([clear], entry.name, { type: entry.type });
  }
  if (!(entry.sealed instanceof Uint8Array) || !entry.iv) throw new Error("an outbox entry in an unknown format");
  const iv = entry.iv.slice();
  const clear = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, entry.sealed.slice());
  return new File([clear], entry.name, { type: entry.type });
}

export async function remove(id: string): Promise<void> {
  const db = await open();
  await run(db, STORE, "readwrite", (s) => s.delete(id));
}
