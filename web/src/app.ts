/**
 * The page: choose images, encrypt each in the page under the tenant's pinned key with its job's
 * context, upload the ciphertext through the presigned URL, wait, download the result and its
 * attestation, verify them in the page against the trust file, decrypt, and show the count with
 * the boxes drawn on the user's own image (which never leaves the page in the clear).
 *
 * Anything that does not verify is shown as "not verified" with its reason, never as a count.
 */
import { decryptResult, encryptFile } from "./app/esdk";
import { freshCredentials, loadSignedInConfig } from "./app/auth_page";
import type { PageConfig } from "./app/config";
import { createJob, download, getJob, sleep, upload } from "./app/jobs";
import { enqueue, entries, openEntry, remove } from "./app/outbox";
import { recordedUpload, recordUpload, savedTrustText, saveTrustText } from "./app/storage";
import { hex } from "./verify/bytes";
import { VerificationError } from "./verify/errors";
import { checkResultDocument, type Detection, verifyAgainstTrust } from "./verify/provenance";
import { parseTrust, type Trust } from "./verify/trust";

const MAX_RESULT_BYTES = 1024 * 1024; // ccc_core.limits
const MAX_ATTESTATION_BYTES = 16 * 1024;
const WAIT_TIMEOUT_MS = 180_000;

let config: PageConfig | null = null;
let trust: Trust | null = null;

const $ = <T extends HTMLElement>(selector: string) => document.querySelector<T>(selector)!;

function showTrust(message: string, ok: boolean): void {
  const status = $("#trust-status");
  status.textContent = message;
  status.dataset["state"] = ok ? "ok" : "missing";
}

async function useTrustText(text: string, save: boolean): Promise<void> {
  try {
    trust = await parseTrust(text);
    if (save) saveTrustText(text);
    const releases = trust.releases.map((r) => r.id).join(", ");
    showTrust(`tenant ${trust.tenant} · key ${trust.dataKeyArn.split(":").pop()} · releases ${releases} · root ${trust.rootKind}`, true);
  } catch (error) {
    trust = null;
    showTrust(error instanceof Error ? error.message : String(error), false);
  }
}

class JobRow {
  readonly element: HTMLLIElement;
  private readonly status: HTMLSpanElement;
  private readonly verdict: HTMLSpanElement;
  readonly canvas: HTMLCanvasElement;

  file: File | null;

  constructor(fileName: string, file: File | null) {
    this.file = file;
    this.element = document.createElement("li");
    this.element.className = "job";
    this.element.dataset["file"] = fileName;
    this.element.dataset["state"] = "working";
    const name = document.createElement("span");
    name.className = "name";
    name.textContent = fileName;
    this.status = document.createElement("span");
    this.status.className = "status";
    this.verdict = document.createElement("span");
    this.verdict.className = "verdict";
    this.canvas = document.createElement("canvas");
    this.canvas.hidden = true; // shown once a verified result's boxes are drawn
    this.element.append(name, this.status, this.verdict, this.canvas);
    $("#jobs").append(this.element);
  }

  progress(text: string): void {
    this.status.textContent = text;
  }

  queued(): void {
    this.element.dataset["state"] = "queued";
    this.status.textContent = "offline: queued, encrypted in this browser; sent when the connection returns";
  }

  working(): void {
    this.element.dataset["state"] = "working";
  }

  verified(cats: number, release: string): void {
    this.element.dataset["state"] = "verified";
    this.element.dataset["cats"] = String(cats);
    this.status.textContent = `release ${release}`;
    this.verdict.textContent = `${cats} ${cats === 1 ? "cat" : "cats"} — verified`;
  }

  refused(reason: string, message: string): void {
    this.element.dataset["state"] = "not-verified";
    this.element.dataset["reason"] = reason;
    this.status.textContent = message;
    this.verdict.textContent = `not verified: ${reason}`;
  }
}

async function drawBoxes(row: JobRow, detections: Detection[]): Promise<void> {
  const bitmap = await createImageBitmap(row.file!); // the user's own image, in the page only
  const scale = Math.min(1, 480 / bitmap.width);
  row.canvas.width = Math.round(bitmap.width * scale);
  row.canvas.height = Math.round(bitmap.height * scale);
  row.canvas.hidden = false;
  const g = row.canvas.getContext("2d")!;
  g.drawImage(bitmap, 0, 0, row.canvas.width, row.canvas.height);
  g.lineWidth = 3;
  g.strokeStyle = "#ff2d55";
  g.font = "14px sans-serif";
  g.fillStyle = "#ff2d55";
  for (const { box, score } of detections) {
    const [x1, y1, x2, y2] = box.map((v) => v * scale) as [number, number, number, number];
    g.strokeRect(x1, y1, x2 - x1, y2 - y1);
    g.fillText(score.toFixed(2), x1 + 4, Math.max(14, y1 - 4));
  }
  bitmap.close();
}

async function processFile(row: JobRow, onUploaded: () => Promise<void> = async () => {}): Promise<void> {
  if (!config || !trust) throw new VerificationError("import a trust file first (ccc trust init)", "trust_invalid");
  const pinned = trust;
  const kms = config.kms_endpoint_url;
  row.progress("creating the job");
  await freshCredentials(config); // on AWS: the signed-in user's role, refreshed before it expires
  const job = await createJob(config, pinned.tenant);
  row.element.dataset["job"] = job.jobId;
  row.progress("encrypting in the page");
  // Streamed frame by frame into a ciphertext Blob (app/esdk-stream.ts): never the whole image in memory.
  const ciphertext = await encryptFile(row.file!, job.context, pinned.dataKeyArn, config.credentials, kms, (f) =>
    row.progress(`encrypting in the page ${Math.round(f * 100)}%`),
  );
  recordUpload(job.jobId, hex(ciphertext.sha256));
  await upload(job, ciphertext.blob, (f) => row.progress(`uploading ciphertext ${Math.round(f * 100)}%`));
  await onUploaded();
  const started = Date.now();
  let delay = 250;
  for (;;) {
    await freshCredentials(config);
    const view = await getJob(config, job.jobId);
    row.progress(view.status);
    if (view.status === "failed") throw new Error(`the job failed: ${view.error ?? "no reason given"}`);
    if (view.status === "done" && view.resultUrl && view.attestationUrl) {
      row.progress("verifying in the page");
      const result = await download(view.resultUrl, MAX_RESULT_BYTES, "the result");
      const document = await download(view.attestationUrl, MAX_ATTESTATION_BYTES, "the attestation");
      const verified = await verifyAgainstTrust(document, result, pinned, recordedUpload(job.jobId));
      let clear: Uint8Array;
      await freshCredentials(config);
      try {
        clear = await decryptResult(
          result,
          { "ccc:job": job.jobId, "ccc:tenant": pinned.tenant, "ccc:kind": "result" },
          pinned.dataKeyArn,
          config.credentials,
          kms,
        );
      } catch (error) {
        throw new VerificationError(`the result does not decrypt: ${error instanceof Error ? error.message : error}`, "decrypt_failed");
      }
      const doc = checkResultDocument(clear, verified, { jobId: job.jobId, tenant: pinned.tenant });
      row.verified(doc.cats, verified.release);
      await drawBoxes(row, doc.detections);
      return;
    }
    if (Date.now() - started > WAIT_TIMEOUT_MS) throw new Error("no result within 3 minutes");
    await sleep(delay);
    delay = Math.min(1000, delay * 1.5);
  }
}

function run(row: JobRow, onUploaded?: () => Promise<void>): void {
  row.working();
  processFile(row, onUploaded).catch((error: unknown) => {
    if (error instanceof VerificationError) row.refused(error.reason, error.message);
    else row.refused("error", error instanceof Error ? error.message : String(error));
  });
}

const queuedRows = new Map<string, JobRow>();
const inFlight = new Set<string>(); // outbox entries being submitted: never twice (online fires more than once)
let draining = false;

function submit(files: Iterable<File>): void {
  for (const file of files) {
    if (navigator.onLine && config) {
      run(new JobRow(file.name, file));
      continue;
    }
    const row = new JobRow(file.name, file);
    row.queued();
    enqueue(file)
      .then((entry) => queuedRows.set(entry.id, row))
      .catch((error: unknown) => row.refused("error", `cannot queue: ${error instanceof Error ? error.message : error}`));
  }
}

/** Submit what the outbox holds, oldest first; an entry leaves the outbox once its ciphertext is uploaded. */
async function drainOutbox(): Promise<void> {
  if (draining || !navigator.onLine) return;
  draining = true;
  try {
    if (!config) config = await loadSignedInConfig().catch(() => null);
    if (!config || !trust) return;
    showStack(config);
    for (const entry of await entries()) {
      if (inFlight.has(entry.id)) continue;
      inFlight.add(entry.id);
      const row = queuedRows.get(entry.id) ?? new JobRow(entry.name, null);
      queuedRows.delete(entry.id);
      row.file = await openEntry(entry);
      run(row, () => remove(entry.id));
    }
  } finally {
    draining = false;
  }
}

function showStack(loaded: PageConfig): void {
  // On AWS, whether someone is signed in is the sign-in box's to say (the config names the tenant
  // before anyone signs in); locally the stack's credentials page has signed the page in already.
  const who = loaded.tier === "aws" ? `tenant ${loaded.tenant}` : `signed in as ${loaded.tenant}`;
  $("#stack").textContent = `${loaded.tier} stack · jobs API ${loaded.api_url} · ${who}`;
  $("#network").textContent = "";
}

async function showQueued(): Promise<void> {
  for (const entry of await entries()) {
    const row = new JobRow(entry.name, null);
    row.queued();
    queuedRows.set(entry.id, row);
  }
}

async function main(): Promise<void> {
  const saved = savedTrustText();
  if (saved) await useTrustText(saved, false);
  else showTrust("no trust file: import the one `ccc trust init` wrote", false);
  $<HTMLInputElement>("#trust-file").addEventListener("change", async (event) => {
    const file = (event.target as HTMLInputElement).files?.[0];
    if (file) await useTrustText(await file.text(), true);
  });
  const drop = $("#drop");
  drop.addEventListener("dragover", (event) => {
    event.preventDefault();
    drop.classList.add("over");
  });
  drop.addEventListener("dragleave", () => drop.classList.remove("over"));
  drop.addEventListener("drop", (event) => {
    event.preventDefault();
    drop.classList.remove("over");
    if (event.dataTransfer?.files.length) submit(event.dataTransfer.files);
  });
  $<HTMLInputElement>("#images").addEventListener("change", (event) => {
    const input = event.target as HTMLInputElement;
    if (input.files?.length) submit(Array.from(input.files));
    input.value = "";
  });
  if ("serviceWorker" in navigator) await navigator.serviceWorker.register("/sw.js").catch(() => undefined);
  await showQueued();
  window.addEventListener("online", () => void drainOutbox());
  window.addEventListener("offline", () => ($("#network").textContent = "offline: new images are queued"));
  try {
    config = await loadSignedInConfig();
    showStack(config);
  } catch (error) {
    $("#stack").textContent = navigator.onLine
      ? `the stack is not reachable: ${error instanceof Error ? error.message : String(error)}`
      : "offline: queued images are sent when the connection returns";
  }
  document.body.dataset["ready"] = "true";
  await drainOutbox();
}

void main();
