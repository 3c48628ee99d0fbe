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
 */
const DB_NAME = "ccc-outbox";
const STORE = "entries";
const KEYS = "keys";

export interface OutboxEntry {
  id: string;
  name: string;
  type: string;
  iv: Uint8Array;
  sealed: Uint8Array; // AES-GCM(plaintext) under the outbox key
  queuedAt: number;
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
  const db = await open();
  const key = await outboxKey(db);
  const iv = crypto.getRandomValues(new Uint8Array(12));
  const clear = new Uint8Array(await file.arrayBuffer());
  const sealed = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv }, key, clear));
  clear.fill(0);
  const entry: OutboxEntry = { id: crypto.randomUUID(), name: file.name, type: file.type, iv, sealed, queuedAt: Date.now() };
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
  const iv = entry.iv.slice();
  const clear = await crypto.subtle.decrypt({ name: "AES-GCM", iv }, key, entry.sealed.slice());
  return new File([clear], entry.name, { type: entry.type });
}

export async function remove(id: string): Promise<void> {
  const db = await open();
  await run(db, STORE, "readwrite", (s) => s.delete(id));
}
