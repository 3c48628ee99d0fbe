/**
 * Why a result is not shown as verified. The reason codes are the Python client's
 * (src/ccc/client/provenance.py), so the page and `ccc result --json` say the same thing.
 */
export type ReasonCode =
  | "attestation_invalid" // malformed, not authentic under the pinned root, signed in the future
  | "pcr_mismatch" // authentic, but not from a release the trust file pins
  | "binding_unknown" // user_data is not a ccc-result-binding/1
  | "result_mismatch" // the attested result digest is not this ciphertext's
  | "input_mismatch" // the attested or documented input is not the expected upload
  | "input_unknown" // this browser has no record of uploading the job
  | "decrypt_failed" // the result does not decrypt under the pinned key with this job's context
  | "trust_invalid"; // the trust file is not a usable ccc.trust/v1

/** Structure or signature problems inside the attestation document (mirrors AttestationError). */
export class AttestationError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "AttestationError";
  }
}

/** A refusal with a reason code (mirrors ccc.client.errors.VerificationError). */
export class VerificationError extends Error {
  readonly reason: ReasonCode;
  constructor(message: string, reason: ReasonCode) {
    super(message);
    this.name = "VerificationError";
    this.reason = reason;
  }
}
