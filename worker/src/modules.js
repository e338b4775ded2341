// The module map of every guest isolate: the capture wrapper in front of the
// job's own modules, and what the wrapper needs beside it. The shim hands it
// to env.LOADER.load or LOADER.get (index.js).

// The guest modules are the minified builds of guest/ (worker/guestbuild,
// run by `make build`).
import WRAPPER from "./guest/min/__dw_wrapper.js";
import FORMAT from "./guest/min/__dw_format.js";
import { LOG_LINE_COST, MAX_ERROR_NAME, MAX_ERROR_TEXT } from "./records.js";
import { PING_INTERVAL_MS } from "./relay.js";
import { ORIGIN as CAPABILITY_ORIGIN } from "./scope.js";
import { binaryModules, packageModules } from "./packages.js";
import { RESERVED_NAME, RESERVED_PREFIX } from "./reserved.js";

// The shim's own guest modules are named with the reserved prefix
// (contract.json), as the wrapper imports them.
export const WRAPPER_MODULE = "__dw_wrapper.js";
const FORMAT_MODULE = "__dw_format.js";
const OPTIONS_MODULE = "__dw_options.json"; // read by the wrapper
// A CommonJS module whose export is its require: the wrapper loads the
// formatter with it, synchronously, only when a console call needs it.
const REQUIRE_MODULE = "__dw_require.js";
const REQUIRE = "module.exports = (specifier) => require(specifier);";

// A guest module named like the wrapper's, its formatter's or its options'
// could take its place: no part of a job's module path may start with the
// prefix, in any case.
export const RESERVED = RESERVED_NAME;
export { RESERVED_PREFIX };

// guestModules is the guest's module map: the wrapper (its main module), the
// formatter and the require that loads it, the wrapper's options as data,
// the modules of the job's dependencies (packages.js), and the job's own
// modules, no part of whose names starts with the reserved prefix (fetch
// refuses them).
export function guestModules(job) {
  const modules = {
    [WRAPPER_MODULE]: { js: WRAPPER },
    [FORMAT_MODULE]: { js: FORMAT },
    [REQUIRE_MODULE]: { cjs: REQUIRE },
    [OPTIONS_MODULE]: {
      json: {
        main: job.mainModule,
        maxResponseBytes: job.maxResponseBytes,
        maxLogLineBytes: job.maxLogLineBytes,
        maxLogBytes: job.maxLogBytes,
        logLineCost: LOG_LINE_COST,
        maxErrorText: MAX_ERROR_TEXT,
        maxErrorName: MAX_ERROR_NAME,
        reuse: Boolean(job.reuseKey),
        mode: job.mode === "script" ? "script" : "worker",
        liveAfterMs: PING_INTERVAL_MS,
        capabilities: capabilityPaths(job),
        capabilityOrigin: CAPABILITY_ORIGIN,
        reservedPrefix: RESERVED_PREFIX,
      },
    },
  };
  Object.assign(modules, packageModules(job));
  Object.assign(modules, binaryModules(job));
  for (const [name, source] of Object.entries(job.modules)) {
    modules[name] = moduleFor(name, source);
  }
  return modules;
}

// moduleFor types a text module by its name's extension; the gateway accepts
// only .js, .mjs, .json and .txt here (TypeScript arrives compiled to .js;
// binary modules come in job.binary, typed by their kind).
function moduleFor(name, source) {
  if (name.endsWith(".json")) return { json: JSON.parse(source) };
  if (name.endsWith(".txt")) return { text: source };
  return { js: source };
}

// capabilityPaths maps each capability's name to its base path: the
// wrapper's binding resolves a relative URL against it (scope.js ORIGIN).
function capabilityPaths(job) {
  const paths = {};
  for (const [name, c] of Object.entries(job.capabilities ?? {})) paths[name] = new URL(c.url).pathname;
  return paths;
}
