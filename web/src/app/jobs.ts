/** The jobs API as the page uses it (layers/ccc_common/domain/jobs_api.py defines the answers). */
import type { PageConfig } from "./config";
import { signedFetch } from "./sigv4";

export interface CreatedJob {
  jobId: string;
  tenant: string;
  context: Record<string, string>;
  uploadUrl: string;
  uploadHeaders: Record<string, string>;
  maxBytes: number;
}

export interface JobView {
  status: string;
  error: string | null;
  resultUrl: string | null;
  attestationUrl: string | null;
}

async function json(response: Response, what: string): Promise<Record<string, unknown>> {
  const text = await response.text();
  let body: Record<string, unknown> = {};
  try {
    body = text ? (JSON.parse(text) as Record<string, unknown>) : {};
  } catch {
    throw new Error(`${what}: HTTP ${response.status} with non-JSON`);
  }
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status}: ${String(body["message"] ?? "no reason given")}`);
  return body;
}

export async function createJob(config: PageConfig, tenant: string): Promise<CreatedJob> {
  const body = await json(
    await signedFetch("POST", `${config.api_url.replace(/\/$/, "")}/jobs`, "{}", config.credentials, config.region),
    "cannot create a job",
  );
  const jobId = String(body["job_id"]);
  const context = body["encryption_context"] as Record<string, string>;
  // The API states the context; the page checks it names exactly this job and our tenant, or an
  // API that lied would have us encrypt our image for someone else's job.
  if (!/^[0-9a-f]{32}$/.test(jobId) || body["tenant"] !== tenant) throw new Error("the jobs API created a job for another tenant");
  const keys = Object.keys(context ?? {}).sort();
  if (keys.join() !== "ccc:job,ccc:tenant" || context["ccc:job"] !== jobId || context["ccc:tenant"] !== tenant) {
    throw new Error("the jobs API asks for an encryption context that does not name exactly this job and tenant");
  }
  const upload = body["upload"] as { method?: string; url?: string; headers?: Record<string, string>; max_bytes?: number };
  if (!upload || upload.method !== "PUT" || typeof upload.url !== "string") throw new Error("the jobs API returned no presigned PUT");
  return { jobId, tenant, context, uploadUrl: upload.url, uploadHeaders: upload.headers ?? {}, maxBytes: upload.max_bytes ?? 0 };
}

export async function getJob(config: PageConfig, jobId: string): Promise<JobView> {
  const body = await json(
    await signedFetch("GET", `${config.api_url.replace(/\/$/, "")}/jobs/${jobId}`, undefined, config.credentials, config.region),
    "cannot read the job",
  );
  const result = body["result"] as { url?: string } | null;
  const attestation = body["attestation"] as { url?: string } | null;
  return {
    status: String(body["status"]),
    error: typeof body["error"] === "string" ? body["error"] : null,
    resultUrl: result?.url ?? null,
    attestationUrl: attestation?.url ?? null,
  };
}

/**
 * PUT the ciphertext Blob through the presigned URL, reporting progress (fetch has no upload
 * progress). The body is the Blob itself: its exact length goes out as Content-Length and its bytes
 * are read by the browser, not copied into the page; one larger than the job allows is not sent.
 */
export function upload(job: CreatedJob, ciphertext: Blob, onProgress: (fraction: number) => void): Promise<void> {
  if (job.maxBytes > 0 && ciphertext.size > job.maxBytes) {
    return Promise.reject(new Error(`the ciphertext is ${ciphertext.size} bytes, more than the ${job.maxBytes} the job accepts`));
  }
  return new Promise((resolve, reject) => {
    const xhr = new XMLHttpRequest();
    xhr.open("PUT", job.uploadUrl);
    for (const [name, value] of Object.entries(job.uploadHeaders)) xhr.setRequestHeader(name, value);
    xhr.upload.onprogress = (event) => event.lengthComputable && onProgress(event.loaded / event.total);
    xhr.onload = () => (xhr.status >= 200 && xhr.status < 300 ? resolve() : reject(new Error(`upload refused: HTTP ${xhr.status}`)));
    xhr.onerror = () => reject(new Error("upload failed (network or CORS)"));
    xhr.send(ciphertext);
  });
}

export async function download(url: string, limit: number, what: string): Promise<Uint8Array> {
  const response = await fetch(url, { mode: "cors", credentials: "omit", cache: "no-store" });
  if (!response.ok) throw new Error(`${what}: HTTP ${response.status}`);
  const data = new Uint8Array(await response.arrayBuffer());
  if (data.length > limit) throw new Error(`${what} is ${data.length} bytes, more than a genuine one can have`);
  return data;
}

export const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));
