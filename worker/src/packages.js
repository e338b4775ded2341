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

// binaryModules is the module map entries of the job's own binary modules:
// job.binary maps a name to {kind: "wasm" | "data", bytes: base64}, which
// the Worker Loader takes as {wasm: bytes} (the guest imports a compiled
// WebAssembly.Module) or {data: bytes} (an ArrayBuffer).
export function binaryModules(job) {
  const modules = {};
  for (const [name, { kind, bytes }] of Object.entries(job.binary ?? {})) {
    modules[name] = { [kind]: decodeBase64(bytes) };
  }
  return modules;
}

// BINARY_KINDS are the Worker Loader's binary module types.
const BINARY_KINDS = new Set(["wasm", "data"]);

// checkBinary returns why a job's binary modules are not what the gateway
// sends, or null: {kind, bytes} of a known kind, by names no other module
// has, none reserved.
function checkBinary(job) {
  const map = job.binary;
  if (map === undefined || map === null) return null;
  if (typeof map !== "object" || Array.isArray(map)) return "binary must be an object";
  for (const [name, m] of Object.entries(map)) {
    if (m === null || typeof m !== "object" || !BINARY_KINDS.has(m.kind) || typeof m.bytes !== "string") {
      return `binary[${JSON.stringify(name)}] must be {kind: "wasm" | "data", bytes: base64}`;
    }
    if (RESERVED_NAME.test(name)) return `binary: module name ${JSON.stringify(name)} is reserved`;
    for (const field of ["modules", "packages", "wasm"]) {
      if (Object.hasOwn(job[field] ?? {}, name)) return `binary: ${JSON.stringify(name)} is also in ${field}`;
    }
  }
  return null;
}

// checkPackages returns why a job's dependency modules (and its binary
// modules) are not what the gateway sends, or null: strings by names no
// guest module has, none reserved.
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
  return checkBinary(job);
}

// decodeBase64 is the ArrayBuffer of standard base64 text (Go's encoding
// of []byte); it throws on anything else.
export function decodeBase64(text) {
  const binary = atob(text);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes.buffer;
}
