/**
 * Verify that a result came from a release the tenant pinned, and from the input this browser
 * uploaded: the page's mirror of src/ccc/client/provenance.py (same checks, same reason codes).
 *
 * A verified result proves: the attestation document chains to the trust file's root and is
 * signed (ES384) at its own time by an enclave whose PCRs are one pinned release's; its user_data
 * is a ccc-result-binding/1 naming SHA-256 of *this* result ciphertext and of the input ciphertext
 * the enclave decrypted; with `expectedInputSha256` (recorded at upload) that input is ours.
 * After decryption, `checkResultDocument` confirms the document inside names the same input/job.
 */
import { equalBytes, hex, sha256 } from "./bytes";
import { parseResultBinding, ResultBindingError } from "./binding";
import { type AttestationDocument, checkPcrs, parseDocument, verifyDocument } from "./document";
import { AttestationError, VerificationError } from "./errors";
import { releasesWithPcr0, type Trust, type TrustedRelease } from "./trust";

/** How far ahead of this machine's clock an attestation timestamp may be (Python: 5 minutes). */
export const ATTESTATION_CLOCK_SKEW_MS = 5 * 60 * 1000;

export interface VerifiedResult {
  document: AttestationDocument;
  release: string; // the pinned release id that matched
  inputSha256: string; // hex SHA-256 of the input ciphertext the enclave decrypted
  resultSha256: string; // hex SHA-256 of the result ciphertext
}

export interface VerifyOptions {
  rootDer: Uint8Array;
  expectedPcrs: Map<number, Uint8Array>;
  expectedInputSha256?: string | null;
  now?: Date;
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

/** One release: the same function as Python's verify_result_attestation. */
export async function verifyResultAttestation(
  documentBytes: Uint8Array,
  resultCiphertext: Uint8Array,
  options: VerifyOptions,
): Promise<Omit<VerifiedResult, "release">> {
  const expectedInput = expectedDigest(options.expectedInputSha256 ?? null);
  const now = options.now ?? new Date();
  let verified: AttestationDocument;
  try {
    const signedAt = parseDocument(documentBytes).timestamp;
    if (signedAt.getTime() > now.getTime() + ATTESTATION_CLOCK_SKEW_MS) {
      throw new AttestationError(`document timestamp ${signedAt.toISOString()} is in the future`);
    }
    // Provenance is checked at the moment the enclave signed (leaf certificates live ~3 hours).
    verified = await verifyDocument(documentBytes, options.rootDer, signedAt);
  } catch (error) {
    if (error instanceof AttestationError) {
      throw new VerificationError(`attestation does not verify: ${error.message}`, "attestation_invalid");
    }
    throw new VerificationError(`attestation does not verify: ${message(error)}`, "attestation_invalid");
  }
  try {
    checkPcrs(verified, options.expectedPcrs);
  } catch (error) {
    throw new VerificationError(`attestation is not from the expected release: ${message(error)}`, "pcr_mismatch");
  }
  let binding;
  try {
    binding = parseResultBinding(verified.userData);
  } catch (error) {
    if (!(error instanceof ResultBindingError)) throw error;
    throw new VerificationError(`attestation does not bind a result: ${error.message}`, "binding_unknown");
  }
  const resultDigest = await sha256(resultCiphertext);
  if (!equalBytes(binding.resultSha256, resultDigest)) {
    throw new VerificationError("attestation user_data names another result ciphertext", "result_mismatch");
  }
  if (expectedInput !== null && !equalBytes(binding.inputSha256, expectedInput)) {
    throw new VerificationError(
      `the result was computed from input ${hex(binding.inputSha256).slice(0, 16)}…, not the ` +
        `${hex(expectedInput).slice(0, 16)}… this browser uploaded`,
      "input_mismatch",
    );
  }
  return { document: verified, inputSha256: hex(binding.inputSha256), resultSha256: hex(resultDigest) };
}

function expectedDigest(value: string | null): Uint8Array | null {
  if (value === null) return null;
  if (typeof value !== "string" || !/^[0-9a-f]{64}$/.test(value)) {
    // A damaged upload record cannot confirm any input: refuse rather than skip the check.
    throw new VerificationError("the recorded input digest is not 64 lower-case hex characters", "input_mismatch");
  }
  return Uint8Array.from(value.match(/../g)!.map((b) => parseInt(b, 16)));
}

/**
 * Against a trust file: the release is chosen by the (not yet verified) document's PCR0 among the
 * pinned ones, then verification checks every PCR that release pins; a PCR0 no pinned release has
 * is refused by name (as ccc.client.job_runner does). A job with no upload record is input_unknown.
 */
export async function verifyAgainstTrust(
  documentBytes: Uint8Array,
  resultCiphertext: Uint8Array,
  trust: Trust,
  expectedInputSha256: string | null,
  now?: Date,
): Promise<VerifiedResult> {
  if (expectedInputSha256 === null) {
    throw new VerificationError(
      "this browser has no record of uploading this job: nothing proves the result was computed from your input",
      "input_unknown",
    );
  }
  let candidates: TrustedRelease[];
  try {
    const claimed = parseDocument(documentBytes).pcrs.get(0)!;
    candidates = releasesWithPcr0(trust, claimed);
    if (candidates.length === 0) {
      const pinned = trust.releases.map((r) => r.id).join(", ");
      throw new VerificationError(
        `the result was attested by an enclave with PCR0 ${hex(claimed).slice(0, 16)}…, not a release this trust file pins (${pinned})`,
        "pcr_mismatch",
      );
    }
  } catch (error) {
    if (error instanceof VerificationError) throw error;
    candidates = trust.releases; // let the verifier name the structural problem
  }
  let last: VerificationError | null = null;
  for (const release of candidates) {
    try {
      const verified = await verifyResultAttestation(documentBytes, resultCiphertext, {
        rootDer: trust.rootDer,
        expectedPcrs: release.pcrs,
        expectedInputSha256,
        now,
      });
      return { ...verified, release: release.id };
    } catch (error) {
      if (!(error instanceof VerificationError)) throw error;
      last = error;
    }
  }
  throw last!;
}

export interface Detection {
  box: [number, number, number, number];
  score: number;
}

export interface ResultDocument {
  format: "ccc-result/2";
  job_id: string;
  tenant: string;
  input_sha256: string;
  cats: number;
  detections: Detection[];
  detections_truncated: boolean;
  model: { name: string; sha256: string };
}

/**
 * The decrypted `ccc-result/2` document, which must name this job, tenant and the attested input
 * (`input_mismatch` otherwise; ccc_core/result_document.py defines the format).
 */
export function checkResultDocument(
  plaintext: Uint8Array,
  verified: VerifiedResult,
  job: { jobId: string; tenant: string },
): ResultDocument {
  let doc: ResultDocument;
  try {
    doc = JSON.parse(new TextDecoder("utf-8", { fatal: true }).decode(plaintext)) as ResultDocument;
  } catch {
    throw new VerificationError("the result document is not JSON", "decrypt_failed");
  }
  const fields = ["format", "job_id", "tenant", "input_sha256", "cats", "detections", "detections_truncated", "model"];
  if (typeof doc !== "object" || doc === null || Object.keys(doc).sort().join() !== [...fields].sort().join()) {
    throw new VerificationError("the result document does not have the ccc-result/2 fields", "decrypt_failed");
  }
  if (doc.format !== "ccc-result/2") throw new VerificationError(`unknown result format ${String(doc.format)}`, "decrypt_failed");
  if (doc.job_id !== job.jobId || doc.tenant !== job.tenant) {
    throw new VerificationError("the result document names another job or tenant", "input_mismatch");
  }
  if (doc.input_sha256 !== verified.inputSha256) {
    throw new VerificationError("the result document names another input than its attestation", "input_mismatch");
  }
  const boxesOk =
    Array.isArray(doc.detections) &&
    doc.detections.every(
      (d) => Array.isArray(d.box) && d.box.length === 4 && d.box.every((v) => typeof v === "number" && v >= 0) && typeof d.score === "number",
    );
  if (!Number.isInteger(doc.cats) || doc.cats < 0 || !boxesOk || doc.cats < doc.detections.length) {
    throw new VerificationError("the result document's count or boxes are malformed", "decrypt_failed");
  }
  return doc;
}
