// The ESDK's signature verification (asn1.js, via safer-buffer) uses Node's global Buffer; esbuild
// injects this module wherever a bundled file refers to `Buffer`, so the page needs no global.
export { Buffer } from "buffer";
