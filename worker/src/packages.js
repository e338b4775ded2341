// The modules a job's dependencies add to a guest isolate: the gateway
// bundles them (internal/packages) and sends them beside the guest's own
// modules, so that a guest's module name is never read as one of theirs.
// Each of job.packages is JavaScript whatever its name ("hono",
// "date-fns/format.js" and "node_modules/.dw/chunk-X.js" alike); each of
// job.wasm is a WebAssembly module, base64 in the job, which the Worker
// Loader takes as bytes and the guest imports as a compiled
// WebAssembly.Module.

import { RESERVED_NAME } from "./reserved.js";

// packageModules is the module map entries of job's dependencies.
export function packageModules(job) {
  const modules = {};
  for (const [name, source] of Object.entries(job.packages ?? {})) {
    modules[name] = { js: source };
  }
  for (const [name, base64] of Object.entries(job.wasm ?? {})) {
    modules[name] = { wasm: decodeBase64(base64) };
  }
  return modules;
}

// checkPackages returns why a job's dependency modules are not what the
// gateway sends, or null: strings by names no guest module has, none
// reserved.
export function checkPackages(job) {
  for (const field of ["packages", "wasm"]) {
    const map = job[field];
    if (map === undefined || map === null) continue;
    if (typeof map !== "object" || Array.isArray(map)) return `${field} must be an object`;
    for (const [name, value] of Object.entries(map)) {
      if (typeof value !== "string") return `${field}[${JSON.stringify(name)}] must be a string`;
      if (RESERVED_NAME.test(name)) return `${field}: module name ${JSON.stringify(name)} is reserved`;
      if (Object.hasOwn(job.modules ?? {}, name)) return `${field}: ${JSON.stringify(name)} is also a guest module`;
    }
  }
  return null;
}

// decodeBase64 is the ArrayBuffer of standard base64 text (Go's encoding
// of []byte); it throws on anything else.
export function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}
