// The modules of a job's dependencies: JavaScript by any name, wasm from
// base64, checked before anything loads.
import { test } from "node:test";
import assert from "node:assert/strict";
import { checkPackages, decodeBase64, packageModules } from "../src/packages.js";

// The smallest valid WebAssembly module: its magic and version.
const EMPTY_WASM = new Uint8Array([0x00, 0x61, 0x73, 0x6d, 0x01, 0x00, 0x00, 0x00]);
const base64 = (bytes) => Buffer.from(bytes).toString("base64");

test("packages are JavaScript whatever their name; wasm arrives as a module's bytes", async () => {
  const job = {
    modules: { "main.js": "" },
    packages: { hono: "export const a = 1", "pkg/data.json": "export default 1", "node_modules/.dw/chunk-A.js": "" },
    wasm: { "node_modules/.dw/png_bg-0123.wasm": base64(EMPTY_WASM) },
  };
  const modules = packageModules(job);
  assert.deepEqual(modules.hono, { js: "export const a = 1" });
  assert.deepEqual(modules["pkg/data.json"], { js: "export default 1" }, "a .json name is not read as JSON");
  const wasm = modules["node_modules/.dw/png_bg-0123.wasm"].wasm;
  assert.ok(wasm instanceof ArrayBuffer);
  assert.deepEqual(new Uint8Array(wasm), EMPTY_WASM);
  // The bytes compile: what the Worker Loader does with a wasm module.
  assert.ok((await WebAssembly.compile(wasm)) instanceof WebAssembly.Module);
});

test("a job without dependencies adds nothing", () => {
  assert.deepEqual(packageModules({ modules: {} }), {});
});

test("dependency modules that are not what the gateway sends are refused", () => {
  const cases = [
    [{ modules: {}, packages: [] }, /packages must be an object/],
    [{ modules: {}, packages: { a: 1 } }, /must be a string/],
    [{ modules: {}, wasm: { "x.wasm": null } }, /must be a string/],
    [{ modules: {}, packages: { "__dw_wrapper.js": "" } }, /reserved/],
    [{ modules: {}, packages: { "lib/__DW_x": "" } }, /reserved/],
    [{ modules: {}, wasm: { "a/__dw_options.json": "" } }, /reserved/],
    [{ modules: { "main.js": "" }, packages: { "main.js": "" } }, /also a guest module/],
  ];
  for (const [job, want] of cases) assert.match(checkPackages(job), want, JSON.stringify(job));
  assert.equal(checkPackages({ modules: { "main.js": "" }, packages: { hono: "" }, wasm: { "x.wasm": "AA==" } }), null);
});

test("base64 decodes exactly; anything else throws", () => {
  for (const bytes of [[], [0], [0, 255], [1, 2, 3, 4, 5, 250, 251]]) {
    assert.deepEqual([...new Uint8Array(decodeBase64(base64(bytes)))], bytes);
  }
  assert.throws(() => decodeBase64("not base64!"));
});
