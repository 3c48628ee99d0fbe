/** The in-page verifier: everything the page needs to decide whether a result is shown as verified. */
export { AttestationError, VerificationError, type ReasonCode } from "./errors";
export { parseDocument, verifyDocument, type AttestationDocument } from "./document";
export { parseResultBinding, RESULT_BINDING_BYTES } from "./binding";
export { parseTrust, releasesWithPcr0, type Trust, type TrustedRelease } from "./trust";
export {
  checkResultDocument,
  verifyAgainstTrust,
  verifyResultAttestation,
  type ResultDocument,
  type VerifiedResult,
} from "./provenance";
export { hex, fromHex, sha256 } from "./bytes";
