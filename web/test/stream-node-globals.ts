/**
 * Imported first by the stream tests: the ESDK for JavaScript finds WebCrypto through
 * `@aws-sdk/util-locate-window` (window, then self), which node does not define; its WebCrypto is
 * `globalThis.crypto`. Pointing `self` at the global object gives the ESDK node's real WebCrypto.
 */
const global = globalThis as unknown as { self?: unknown };
global.self ??= globalThis;
export {};
