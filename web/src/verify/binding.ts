/**
 * `ccc-result-binding/1`: the attestation's user_data for a job result (mirrors
 * ccc_core/result_binding.py, the one definition the enclave writes):
 *
 *     "ccc-result-binding/1\x00"  (21 bytes)  ||  SHA-256(input ciphertext) (32)  ||  SHA-256(result ciphertext) (32)
 *
 * 85 bytes, fixed. Anything else is an unknown binding, never misread.
 */
import { equalBytes } from "./bytes";

export const RESULT_BINDING_TAG = new TextEncoder().encode("ccc-result-binding/1\x00");
export const DIGEST_BYTES = 32;
export const RESULT_BINDING_BYTES = RESULT_BINDING_TAG.length + 2 * DIGEST_BYTES;

export interface ResultBinding {
  inputSha256: Uint8Array;
  resultSha256: Uint8Array;
}

export class ResultBindingError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "ResultBindingError";
  }
}

export function parseResultBinding(userData: Uint8Array | null): ResultBinding {
  if (userData === null) throw new ResultBindingError("the attestation document carries no user_data (no result binding)");
  if (
    userData.length !== RESULT_BINDING_BYTES ||
    !equalBytes(userData.subarray(0, RESULT_BINDING_TAG.length), RESULT_BINDING_TAG)
  ) {
    throw new ResultBindingError(
      `user_data (${userData.length} bytes) is not a ccc-result-binding/1 (an older or foreign enclave)`,
    );
  }
  const body = userData.subarray(RESULT_BINDING_TAG.length);
  return { inputSha256: body.slice(0, DIGEST_BYTES), resultSha256: body.slice(DIGEST_BYTES) };
}
