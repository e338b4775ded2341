// The main module of every guest isolate. The shim loads it in front of the
// user's modules: it takes over `console` before any user code is evaluated,
// imports the user's main module, calls its fetch handler, and writes what
// happened to its response body as NDJSON records, one per line, as they occur:
//
//   {"t":"log","level":"log","message":"..."}
//   {"t":"response","status":200,"headers":{...},"body":"...","bodyEncoding":"utf8"}
//   {"t":"error","code":"exception","name":"Error","message":"...","stack":"..."}
//
// The shim turns these records into the gateway's events. Everything this module
// uses is captured at load time, so guest code that replaces globals later cannot
// change how its output is recorded. The shim replaces the values of MAIN and
// OPTIONS below with JSON literals.

import { format } from "./__dw_format.js";

const MAIN = "__DW_MAIN__";
const OPTIONS = "__DW_OPTIONS__";

const stringify = JSON.stringify;
const encoder = new TextEncoder();
const encode = TextEncoder.prototype.encode.bind(encoder);
const strictDecoder = new TextDecoder("utf-8", { fatal: true });
const decode = TextDecoder.prototype.decode.bind(strictDecoder);
const writerWrite = WritableStreamDefaultWriter.prototype.write;
const writerClose = WritableStreamDefaultWriter.prototype.close;
const fromCharCode = String.fromCharCode;
const toBase64 = btoa;
const allSettled = Promise.allSettled.bind(Promise);
const ResponseClass = Response;
const headersEntries = Headers.prototype.entries;

// Each execution's output state. A fresh isolate runs one execution, whose
// state exists from the start so that top-level console calls are kept
// until its fetch begins. A reused isolate ("reuse" mode) may run several
// executions at once; AsyncLocalStorage (the nodejs_als flag, which the
// shim adds in that mode) tells which one a console call belongs to.
function newState() {
  return { writer: null, pending: [], budget: OPTIONS.maxLogBytes, dropped: false, outbound: null };
}

const freshState = OPTIONS.reuse ? null : newState();
let als = null;
if (OPTIONS.reuse) {
  const { AsyncLocalStorage } = await import("node:async_hooks");
  als = new AsyncLocalStorage();
}

function current() {
  return als === null ? freshState : als.getStore() ?? null;
}

function emit(state, record) {
  if (state === null) return; // no execution to give it to
  const line = stringify(record) + "\n";
  if (state.writer === null) {
    state.pending.push(line);
    return;
  }
  writerWrite.call(state.writer, encode(line)).catch(() => {});
}

function capture(level) {
  return (...args) => {
    const state = current();
    if (state === null || state.dropped) return;
    let message;
    try {
      message = format(...args);
    } catch (err) {
      message = `[unformattable console arguments: ${err}]`;
    }
    if (indent !== "") message = indent + message.replaceAll("\n", "\n" + indent);
    let truncated = false;
    // Cut enormous lines here, before they cross into the shim. The limit is
    // in bytes; a UTF-16 unit is at most 3 UTF-8 bytes, and the gateway cuts
    // to the exact byte count.
    if (message.length > OPTIONS.maxLogLineBytes) {
      message = message.slice(0, OPTIONS.maxLogLineBytes);
      truncated = true;
    }
    if (message.length > state.budget) {
      state.dropped = true;
      return;
    }
    state.budget -= message.length;
    emit(state, truncated ? { t: "log", level, message, truncated } : { t: "log", level, message });
  };
}

let indent = "";
const counts = new Map();
const timers = new Map();
const log = capture("log");
const warn = capture("warn");
const error = capture("error");

Object.assign(console, {
  log,
  info: capture("info"),
  debug: capture("debug"),
  warn,
  error,
  trace: (...args) => {
    const stack = new Error().stack.split("\n").slice(2).join("\n");
    error(`Trace${args.length ? ": " + format(...args) : ""}\n${stack}`);
  },
  dir: (value) => log(value),
  dirxml: (...args) => log(...args),
  table: (...args) => log(...args),
  assert: (ok, ...args) => {
    if (ok) return;
    if (args.length === 0) warn("Assertion failed");
    else if (typeof args[0] === "string") warn(`Assertion failed: ${args[0]}`, ...args.slice(1));
    else warn("Assertion failed:", ...args);
  },
  count: (label = "default") => {
    const n = (counts.get(`${label}`) ?? 0) + 1;
    counts.set(`${label}`, n);
    log(`${label}: ${n}`);
  },
  countReset: (label = "default") => counts.delete(`${label}`),
  group: (...args) => {
    if (args.length > 0) log(...args);
    indent += "  ";
  },
  groupCollapsed: (...args) => console.group(...args),
  groupEnd: () => {
    indent = indent.slice(0, -2);
  },
  time: (label = "default") => timers.set(`${label}`, performance.now()),
  timeLog: (label = "default", ...args) => {
    const start = timers.get(`${label}`);
    if (start === undefined) return warn(`Warning: No such label '${label}' for console.timeLog()`);
    log(`${label}: ${elapsed(start)}`, ...args);
  },
  timeEnd: (label = "default") => {
    const start = timers.get(`${label}`);
    if (start === undefined) return warn(`Warning: No such label '${label}' for console.timeEnd()`);
    timers.delete(`${label}`);
    log(`${label}: ${elapsed(start)}`);
  },
});

function elapsed(start) {
  const ms = performance.now() - start;
  return ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
}

addEventListener("unhandledrejection", (event) => {
  error("Uncaught (in promise)", event.reason);
});

function describeError(err, fallbackCode) {
  if (err !== null && typeof err === "object" && typeof err.message === "string") {
    const name = typeof err.name === "string" ? err.name : "Error";
    const message = typeof err.message === "string" ? err.message : String(err);
    const stack = typeof err.stack === "string" ? err.stack : undefined;
    let code = fallbackCode;
    if (name === "SyntaxError") code = "syntax_error";
    if (/^No such module/.test(message)) code = "invalid_module";
    if (/too many subrequests/i.test(message)) code = "subrequest_limit";
    return { code, name, message, stack };
  }
  return { code: fallbackCode, message: `Uncaught ${format("%o", err)}` };
}

function bytesToBase64(bytes) {
  let binary = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    binary += fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return toBase64(binary);
}

// readBody reads at most limit bytes of a response body.
async function readBody(response, limit) {
  const body = response.body;
  if (body === null) return { bytes: new Uint8Array(0), truncated: false };
  const reader = body.getReader();
  const chunks = [];
  let size = 0;
  let truncated = false;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    if (size + value.byteLength > limit) {
      chunks.push(value.subarray(0, limit - size));
      size = limit;
      truncated = true;
      await reader.cancel().catch(() => {});
      break;
    }
    chunks.push(value);
    size += value.byteLength;
  }
  const bytes = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return { bytes, truncated };
}

async function describeResponse(response) {
  const headers = {};
  for (const [name, value] of headersEntries.call(response.headers)) {
    headers[name] = headers[name] === undefined ? value : `${headers[name]}, ${value}`;
  }
  const { bytes, truncated } = await readBody(response, OPTIONS.maxResponseBytes);
  let body;
  let bodyEncoding = "utf8";
  try {
    body = decode(bytes);
  } catch {
    body = bytesToBase64(bytes);
    bodyEncoding = "base64";
  }
  return { t: "response", status: response.status, headers, body, bodyEncoding, truncated };
}

function findHandler(mod) {
  const main = mod.default;
  if (main !== null && typeof main === "object" && typeof main.fetch === "function") {
    return (request, env, ctx) => main.fetch(request, env, ctx);
  }
  if (typeof main === "function" && main.prototype !== undefined && typeof main.prototype.fetch === "function") {
    // A class default export (WorkerEntrypoint style): construct it per request.
    return (request, env, ctx) => new main(ctx, env).fetch(request);
  }
  return null;
}

async function run(request, env, ctx) {
  let mod;
  try {
    mod = await import(MAIN);
  } catch (err) {
    return describeError(err, "exception");
  }
  const handler = findHandler(mod);
  if (handler === null) {
    return {
      code: "invalid_module",
      message: `main module ${stringify(MAIN.slice(2))} has no default export with a fetch(request, env, ctx) handler`,
    };
  }

  // Keep what the guest hands to ctx.waitUntil so its late logs are not lost.
  const background = [];
  const waitUntil = ctx.waitUntil.bind(ctx);
  ctx.waitUntil = (promise) => {
    background.push(promise);
    waitUntil(promise);
  };

  let outcome;
  try {
    const response = await handler(request, env, ctx);
    if (!(response instanceof ResponseClass)) {
      outcome = {
        code: "exception",
        name: "TypeError",
        message: `fetch handler returned ${response === undefined ? "undefined" : format("%o", response).slice(0, 200)}, not a Response`,
      };
    } else {
      outcome = await describeResponse(response);
    }
  } catch (err) {
    outcome = describeError(err, "exception");
  }
  if (background.length > 0) await allSettled(background);
  return outcome;
}

// In a reused isolate the Outbound entrypoint cannot tell executions apart,
// so the wrapper records each execution's requests itself (the entrypoint
// still decides what is allowed).
if (OPTIONS.reuse) {
  const realFetch = globalThis.fetch;
  const RequestClass = Request;
  globalThis.fetch = async function fetch(input, init) {
    const request = new RequestClass(input, init);
    const entry = { method: request.method, url: request.url };
    const state = current();
    if (state !== null && state.outbound.length < 1000) state.outbound.push(entry);
    try {
      const response = await realFetch(request);
      entry.status = response.status;
      return response;
    } catch (err) {
      if (/ denied: /.test(String(err && err.message))) entry.denied = true;
      throw err;
    }
  };
}

let served = 0;

export default {
  async fetch(request, env, ctx) {
    const { readable, writable } = new TransformStream();
    const warm = served++ > 0;
    let state = freshState;
    if (state === null) {
      state = newState();
      state.outbound = [];
    }
    state.writer = writable.getWriter();
    const early = state.pending;
    state.pending = null;
    for (const line of early) writerWrite.call(state.writer, encode(line)).catch(() => {});

    // The run goes on while the caller reads the stream; it is deliberately
    // not a waitUntil task, so the caller hanging up cancels it.
    const go = () => run(request, env, ctx).then((outcome) => {
      if (outcome.t !== "response") outcome = { t: "error", ...outcome };
      if (state.dropped) outcome.logsTruncated = true;
      if (warm) outcome.warm = true;
      if (state.outbound !== null) outcome.outbound = state.outbound;
      emit(state, outcome);
      return writerClose.call(state.writer);
    }).catch(() => {});
    if (als !== null) als.run(state, go);
    else go();
    return new ResponseClass(readable, { headers: { "content-type": "application/x-ndjson" } });
  },
};
