// Bundles the page (src/app.ts -> dist/app.js) and, with --tests, each test/*.test.ts into
// dist-test/ for `node --test`. No CDN at run time: everything the page runs is in dist/.
import { build } from "esbuild";
import { readdirSync } from "node:fs";

const tests = process.argv.includes("--tests");
if (tests) {
  await build({
    entryPoints: readdirSync("test").filter((f) => f.endsWith(".test.ts")).map((f) => `test/${f}`),
    outdir: "dist-test",
    outExtension: { ".js": ".mjs" },
    bundle: true,
    platform: "node",
    format: "esm",
    target: "node20",
    // CommonJS dependencies bundled into ESM (the ESDK's asn1.js) still require node's builtins.
    banner: { js: 'import { createRequire as __cccRequire } from "node:module"; const require = __cccRequire(import.meta.url);' },
    sourcemap: "inline",
    logLevel: "warning",
  });
} else {
  await build({
    entryPoints: ["src/app.ts"],
    outdir: "dist",
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
    define: { global: "globalThis" },
    inject: ["src/buffer-shim.ts"],
  });
  // A classic (non-module) worker: served at /sw.js so its scope is the whole page.
  await build({
    entryPoints: ["src/sw.ts"],
    outdir: "dist",
    bundle: true,
    platform: "browser",
    format: "iife",
    target: "es2022",
    minify: true,
    sourcemap: true,
    logLevel: "warning",
  });
}
