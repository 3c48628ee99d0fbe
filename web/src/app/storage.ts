/**
 * What the page keeps in the browser: the imported trust file (its text, re-validated on every
 * load) and the upload records (job id -> SHA-256 of the ciphertext this browser uploaded), which
 * are what makes a result "from your input". Nothing here is secret; whoever can change it decides
 * what the page believes, exactly like the CLI's trust file and records on disk.
 */
const TRUST_KEY = "ccc.trust/v1";
const UPLOADS_KEY = "ccc.uploads/v1";

export function savedTrustText(): string | null {
  return localStorage.getItem(TRUST_KEY);
}

export function saveTrustText(text: string): void {
  localStorage.setItem(TRUST_KEY, text);
}

function uploads(): Record<string, string> {
  try {
    return JSON.parse(localStorage.getItem(UPLOADS_KEY) ?? "{}") as Record<string, string>;
  } catch {
    return {};
  }
}

export function recordUpload(jobId: string, inputSha256: string): void {
  localStorage.setItem(UPLOADS_KEY, JSON.stringify({ ...uploads(), [jobId]: inputSha256 }));
}

export function recordedUpload(jobId: string): string | null {
  return uploads()[jobId] ?? null;
}
