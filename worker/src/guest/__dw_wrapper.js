// The main module of every guest isolate. The shim loads it in front of the
// user's modules: it takes over `console` before any user code is evaluated,
// imports the user's main module, calls its fetch handler, and writes what
// happened to its response body as NDJSON records, one per line, as they occur
// (the contract is worker/src/records.js, which the shim checks each line
// against):
//
//   {"t":"log","level":"log","message":"...","ms":1767225600000}
//   {"t":"response","status":200,"headers":{...},"body":"...","bodyEncoding":"utf8"}
//   {"t":"error","code":"exception","name":"Error","message":"...","stack":"..."}
//
// It runs in the guest's realm, after which the guest may replace any global
// or prototype method. So everything this module calls is captured at load
// time, before any user module is evaluated, and called in uncurried form (no
// .call/.apply, iterator, toJSON, `then` or getter lookups at call time);
// records are built from null-prototype objects and written by a hand-written
// encoder that hands JSON.stringify only primitive strings.
//
// The formatter (__dw_format.js) is loaded by a synchronous require the
// first time a console call needs it, not in every isolate: strings, numbers
// and the like need none. Loaded after the guest ran, it may capture what
// the guest replaced; that can only change the text it returns, which the
// wrapper takes only as a primitive string and encodes itself.
// requireModule is the require of a CommonJS module beside it
// (__dw_require.js), taken at load time like everything else.
//
// Its options come as data, a JSON module beside it (__dw_options.json; no
// guest module may be named __dw_*). A guest module may import that object
// and change it, so what is needed is copied here, before any guest module is
// evaluated. MAIN, the main module's specifier, is a string the runtime
// resolves, never spliced into source.

import requireModule from "./__dw_require.js";
import options from "./__dw_options.json";
import { quick } from "./quick.js"; // bundled in (worker/guestbuild)

const OPTIONS = { __proto__: null, maxResponseBytes: options.maxResponseBytes, maxLogLineBytes: options.maxLogLineBytes,
  maxLogBytes: options.maxLogBytes, logLineCost: options.logLineCost, maxErrorText: options.maxErrorText, maxErrorName: options.maxErrorName, reuse: options.reuse === true,
  liveAfterMs: options.liveAfterMs, script: options.mode === "script" };
const MAIN = "./" + options.main;

// uncurry(f)(self, ...args) calls f with self as this.
const uncurry = Function.prototype.bind.bind(Function.prototype.call);
const getOwn = Object.getOwnPropertyDescriptor;
const getPrototypeOf = Object.getPrototypeOf;
const defineProperty = Object.defineProperty;

// getter returns the accessor name of proto or the nearest prototype above it
// that has one, uncurried; null if there is none. (Before compatibility date
// 2022-01-31 the runtime's own classes have their properties on each instance
// instead of accessors on the prototype.)
function getter(proto, name) {
  for (let p = proto; p !== null; p = getPrototypeOf(p)) {
    const d = getOwn(p, name);
    if (d !== undefined && typeof d.get === "function") return uncurry(d.get);
  }
  return null;
}

// read reads a property of an object of the runtime's through its captured
// accessor, or, for a runtime with per-instance properties, from the
// instance itself (own properties: nothing the guest set on a prototype
// is consulted). Only for objects the wrapper made.
function read(get, obj, name) {
  return get !== null ? get(obj) : obj[name];
}
const reflectApply = Reflect.apply;
const dateNow = Date.now;
const setTimer = setTimeout;
const clearTimer = clearTimeout;
const queueMicrotaskFn = queueMicrotask;
const jsonStringify = JSON.stringify;
const PromiseCtor = Promise;
const ProxyCtor = Proxy;
const Uint8ArrayCtor = Uint8Array;
const ResponseCtor = Response;
const TransformStreamCtor = TransformStream;
const fromCharCode = String.fromCharCode;
const toBase64 = btoa;
const stringSlice = uncurry(String.prototype.slice);
const stringReplaceAll = uncurry(String.prototype.replaceAll);
const stringIncludes = uncurry(String.prototype.includes);
const stringIndexOf = uncurry(String.prototype.indexOf);
const regexpExec = uncurry(RegExp.prototype.exec);
const encode = uncurry(TextEncoder.prototype.encode);
const decode = uncurry(TextDecoder.prototype.decode);
// The encoder and the strict decoder are made the first time they are
// needed (a buffered execution never encodes), from the constructors
// captured here.
const TextEncoderCtor = TextEncoder;
const TextDecoderCtor = TextDecoder;
let encoder = null;
let strictDecoder = null;
const TypedArrayProto = getPrototypeOf(Uint8Array.prototype);
const typedArrayTag = getter(TypedArrayProto, Symbol.toStringTag);
const typedArrayByteLength = getter(TypedArrayProto, "byteLength");
const typedArrayByteOffset = getter(TypedArrayProto, "byteOffset");
const typedArrayBuffer = getter(TypedArrayProto, "buffer");
const typedArraySet = uncurry(TypedArrayProto.set);
const uint8ToBase64 = typeof Uint8Array.prototype.toBase64 === "function" ? uncurry(Uint8Array.prototype.toBase64) : null;
const responseStatus = getter(Response.prototype, "status");
const responseHeaders = getter(Response.prototype, "headers");
const responseBody = getter(Response.prototype, "body");
const responseClone = uncurry(Response.prototype.clone);
const headersForEach = uncurry(Headers.prototype.forEach);
const streamGetReader = uncurry(ReadableStream.prototype.getReader);
const transformReadable = getter(TransformStream.prototype, "readable");
const transformWritable = getter(TransformStream.prototype, "writable");
const readerRead = uncurry(ReadableStreamDefaultReader.prototype.read);
const readerCancel = uncurry(ReadableStreamDefaultReader.prototype.cancel);
const byobProto = typeof ReadableStreamBYOBReader === "function" ? ReadableStreamBYOBReader.prototype : null;
const byobReadAtLeast = typeof byobProto?.readAtLeast === "function" ? uncurry(byobProto.readAtLeast) : null;
const byobRead = byobReadAtLeast === null ? null : uncurry(byobProto.read);
const byobCancel = byobReadAtLeast === null ? null : uncurry(byobProto.cancel);
const writableGetWriter = uncurry(WritableStream.prototype.getWriter);
const writerWrite = uncurry(WritableStreamDefaultWriter.prototype.write);
const writerClose = uncurry(WritableStreamDefaultWriter.prototype.close);

// The stacks the guest reads show its own frames only, as a bare Worker's
// do: e.stack, new Error().stack, Error.captureStackTrace and the call sites
// a prepareStackTrace of the guest's is given. V8 formats every stack it
// captures through Error.prepareStackTrace, read from the realm's Error
// when the stack is first read; that property is an accessor of the
// wrapper's, which cannot be removed or redefined, and always gives V8
// prepare. prepare drops the frames of the wrapper's own modules (no part
// of a guest module's path starts with the reserved prefix) and formats
// the rest as V8 does, or hands them to the function the guest assigned.
// The call sites' methods are taken from the first real call sites, before
// the guest can reach one. Known limits (docs/fidelity.md): a stack
// read inside the guest's own prepareStackTrace is formatted by V8 without
// it (V8 does not recurse), so with the wrapper's frames; reading
// Error.prepareStackTrace gives prepare, not what the guest assigned.
const RESERVED_PREFIX = String(options.reservedPrefix);
const RESERVED_PART = "/" + RESERVED_PREFIX;
const ErrorCtor = Error;
const errorToString = uncurry(Error.prototype.toString);
const stringStartsWith = uncurry(String.prototype.startsWith);
const captureStack = Error.captureStackTrace;
const functionSource = uncurry(Function.prototype.toString);
const stackFrame = { __proto__: null, toString: null, fileName: null };
let guestPrepare; // what the guest assigned to Error.prepareStackTrace
let inGuestPrepare = false;

function ownFrame(site) {
  const name = stackFrame.fileName(site);
  return typeof name === "string" && (stringStartsWith(name, RESERVED_PREFIX) || stringIncludes(name, RESERVED_PART));
}

// errorHeader is the first line of a stack as V8 writes it.
function errorHeader(error) {
  try {
    return errorToString(error);
  } catch (thrown) {
    try {
      return `<error: ${errorToString(thrown)}>`;
    } catch {
      return "<error>";
    }
  }
}

// learnCallSites takes the call sites' methods from the first real ones
// prepare is given. The guest cannot have a call site before V8 first calls
// prepare (it gets them only from prepare), so it cannot have changed their
// methods; what it could pass prepare itself is told apart by the methods'
// native source, which no function of the guest's has.
function learnCallSites(sites) {
  try {
    const proto = getPrototypeOf(sites[0]);
    const toString = getOwn(proto, "toString").value;
    const fileName = getOwn(proto, "getFileName").value;
    if (functionSource(toString) !== "function toString() { [native code] }" ||
      functionSource(fileName) !== "function getFileName() { [native code] }") return false;
    stackFrame.toString = uncurry(toString);
    stackFrame.fileName = uncurry(fileName);
    return true;
  } catch {
    return false;
  }
}

function prepare(error, sites) {
  // Until real call sites are known, no frame is shown.
  if (stackFrame.toString === null && sites.length > 0 && !learnCallSites(sites)) return errorHeader(error);
  const kept = [];
  let n = 0;
  const count = sites.length;
  for (let i = 0; i < count; i++) {
    const site = sites[i];
    if (ownFrame(site)) continue;
    defineProperty(kept, n++, { __proto__: null, value: site, writable: true, enumerable: true, configurable: true });
  }
  const user = guestPrepare;
  if (typeof user === "function" && !inGuestPrepare) {
    inGuestPrepare = true;
    try {
      return reflectApply(user, ErrorCtor, [error, kept]);
    } finally {
      inGuestPrepare = false;
    }
  }
  let text = errorHeader(error);
  for (let i = 0; i < n; i++) text += "\n    at " + stackFrame.toString(kept[i]);
  return text;
}

defineProperty(ErrorCtor, "prepareStackTrace", {
  __proto__: null,
  // Bound, so that their source is not the guest's to read.
  get: function () {
    return prepare;
  }.bind(undefined),
  set: function (value) {
    guestPrepare = value === prepare ? undefined : value;
  }.bind(undefined),
  enumerable: false,
  configurable: false,
});

// The capabilities' bindings (worker/src/capability.js): each name in env
// holds a stub of the shim's Capability entrypoint, whose fetch takes only
// absolute URLs. The wrapper puts in its place a binding whose fetch also
// takes a URL relative to the capability's base: resolved against the
// stand-in origin the shim maps to the base's (the guest is never told the
// base's host). Names and paths are copied before any guest module runs.
const CAPABILITY_ORIGIN = String(options.capabilityOrigin);
const CAPABILITIES = { __proto__: null, n: 0 };
for (const name of Object.keys(options.capabilities ?? {})) {
  CAPABILITIES[CAPABILITIES.n++] = { __proto__: null, name, base: CAPABILITY_ORIGIN + String(options.capabilities[name]) };
}
// What the bindings call is captured only where there are capabilities
// (options say so before any guest module runs): the runtime makes a class
// such as URL or Request the first time it is touched, which costs an
// isolate that never uses it.
const HAS_CAPABILITIES = CAPABILITIES.n > 0;
const URLCtor = HAS_CAPABILITIES ? URL : null;
const RequestCtor = HAS_CAPABILITIES ? Request : null;
const urlHref = HAS_CAPABILITIES ? getter(URL.prototype, "href") : null;
const freeze = Object.freeze;
const bindings = new WeakSet();
const isBinding = uncurry(WeakSet.prototype.has);
const addBinding = uncurry(WeakSet.prototype.add);

// bindCapabilities replaces each capability's stub in env with its binding
// (once: a warm isolate's env keeps them). An env the runtime made
// unchangeable keeps the stubs, which take absolute URLs.
function bindCapabilities(env) {
  for (let i = 0; i < CAPABILITIES.n; i++) {
    const { name, base } = CAPABILITIES[i];
    const stub = env[name];
    if (stub === null || typeof stub !== "object" || isBinding(bindings, stub)) continue;
    const binding = capabilityBinding(stub, base);
    try {
      defineProperty(env, name, { __proto__: null, value: binding, enumerable: true, configurable: true, writable: false });
      addBinding(bindings, binding);
    } catch {
      // the stubs stay
    }
  }
}

function capabilityBinding(stub, base) {
  const call = uncurry(stub.fetch);
  return freeze({
    fetch(input, init) {
      const target = input instanceof RequestCtor ? input : read(urlHref, new URLCtor(`${input}`, base), "href");
      return call(stub, target, init);
    },
  });
}

const ownPromise = { __proto__: null, value: PromiseCtor, configurable: true };

// own makes `await p` on a native promise skip every lookup the guest could
// have replaced: with its own `constructor`, the await takes p as it is and
// never looks up `then`.
function own(p) {
  try {
    defineProperty(p, "constructor", ownPromise);
  } catch {
    // not an extensible object: awaiting it is the guest's own business
  }
  return p;
}

// settle ignores how p ends.
async function settle(p) {
  try {
    await own(p);
  } catch {
    // nothing to do
  }
}

// list is an append-only array of our own that never touches Array.prototype.
function list() {
  return { __proto__: null, n: 0 };
}

function append(l, value) {
  l[l.n] = value;
  l.n++;
}

// A reused isolate's AsyncLocalStorage, imported when its first execution
// starts (a top-level await would make every isolate's wrapper an async
// module); no guest module has run before that.
let als = null;
let alsGetStore = null;
let alsRun = null;

async function loadAls() {
  const storage = new (await import("node:async_hooks")).AsyncLocalStorage();
  alsGetStore = uncurry(getPrototypeOf(storage).getStore);
  alsRun = uncurry(getPrototypeOf(storage).run);
  als = storage;
}

// Each execution's output state. A fresh isolate runs one execution, whose
// state exists from the start so that top-level console calls are kept
// until its fetch begins. A reused isolate runs one execution at a time (the
// shim sees to it); AsyncLocalStorage (the nodejs_als flag, which the shim
// adds in that mode) still keeps a call from a timer an earlier execution
// left behind out of the current one.
//
// An execution's records go to its writer: null until its fetch begins (they
// wait in pending), BUFFER for a buffered execution (they collect in queued
// and leave as one body when it ends), else the writer of its stream.
function newState() {
  return { __proto__: null, writer: null, pending: list(), queued: "", flushing: false, budget: OPTIONS.maxLogBytes, dropped: false, ended: false, readable: null };
}

const BUFFER = { __proto__: null };

const freshState = OPTIONS.reuse ? null : newState();

function current() {
  if (!OPTIONS.reuse) return freshState;
  return als === null ? null : alsGetStore(als) ?? null;
}

function q(s) {
  return jsonStringify(s); // s is always a primitive string: no toJSON
}

// emit queues a record; the records queued while the guest runs on are
// written as one chunk once it yields (a microtask), so a guest printing in
// a tight loop costs one stream write, not one per line: a queued write
// holds kilobytes in the runtime, a queued line only its text.
function emit(state, line) {
  if (state === null) return; // no execution to give it to
  if (state.writer === null) {
    append(state.pending, line);
    return;
  }
  state.queued += line + "\n";
  if (!state.flushing && state.writer !== BUFFER) {
    state.flushing = true;
    queueMicrotaskFn(() => flush(state));
  }
}

// flush writes what emit queued.
function flush(state) {
  state.flushing = false;
  if (state.queued === "") return;
  const chunk = state.queued;
  state.queued = "";
  encoder ??= new TextEncoderCtor();
  settle(writerWrite(state.writer, encode(encoder, chunk)));
}

function cut(text, max) {
  return text.length > max ? stringSlice(text, 0, max) : text;
}

let format = null;

// loadFormat loads the formatter. Under some compatibility dates require
// gives an ES module's default export, not its namespace.
function loadFormat() {
  const mod = requireModule("./__dw_format.js");
  return typeof mod.format === "function" ? mod.format : mod.default.format;
}

function formatted(args) {
  // The commonest console calls need no formatter. One string is its own
  // message, "%" or not.
  if (args.length === 1 && typeof args[0] === "string") return args[0];
  // quick (quick.js) formats primitives, flat plain objects and short arrays
  // of them, and errors, as the formatter would; loading the formatter costs
  // an isolate about 0.8 ms. A guest's getter or Proxy trap that throws in
  // quick leaves the call to the formatter.
  let simple = null;
  try {
    simple = quick(args);
  } catch {
    // the formatter tries
  }
  if (simple !== null) return simple;
  try {
    if (format === null) format = loadFormat();
    const message = reflectApply(format, undefined, args);
    return typeof message === "string" ? message : "[unformattable console arguments]";
  } catch {
    return "[unformattable console arguments]";
  }
}

function capture(level) {
  return (...args) => {
    const state = current();
    if (state === null || state.dropped) return;
    let message = formatted(args);
    if (indent !== "") message = indent + stringReplaceAll(message, "\n", "\n" + indent);
    // Cut enormous lines here, before they cross into the shim. The limit is
    // in bytes; a UTF-16 unit is at most 3 UTF-8 bytes, and the gateway cuts
    // to the exact byte count.
    const truncated = message.length > OPTIONS.maxLogLineBytes;
    message = cut(message, OPTIONS.maxLogLineBytes);
    // Each line costs a fixed amount besides its length (about what its
    // record costs to store and send): a loop of empty lines would
    // otherwise make events without end for almost nothing.
    if (message.length + OPTIONS.logLineCost > state.budget) {
      state.dropped = true;
      return;
    }
    state.budget -= message.length + OPTIONS.logLineCost;
    emit(state, `{"t":"log","level":${q(level)},"message":${q(message)}${truncated ? ',"truncated":true' : ""},"ms":${dateNow()}}`);
  };
}

let indent = "";
// console.count's and console.time's labels, made at their first use.
let counts = null;
let timers = null;
const MapCtor = Map;
const log = capture("log");
const warn = capture("warn");
const error = capture("error");

const methods = {
  __proto__: null,
  log,
  info: capture("info"),
  debug: capture("debug"),
  warn,
  error,
  trace: (...args) => {
    // The trace's own frame is the wrapper's, left out of the stack.
    const probe = {};
    captureStack(probe);
    const stack = text(probe, "stack") ?? "";
    const at = stringIndexOf(stack, "\n");
    error(`Trace${args.length ? ": " + formatted(args) : ""}${at < 0 ? "" : stringSlice(stack, at)}`);
  },
  dir: (value) => log(value),
  dirxml: (...args) => reflectApply(log, undefined, args),
  table: (...args) => reflectApply(log, undefined, args),
  assert: (ok, ...args) => {
    if (ok) return;
    warn(args.length === 0 ? "Assertion failed" : `Assertion failed: ${formatted(args)}`);
  },
  count: (label = "default") => {
    counts ??= new MapCtor();
    const n = (counts.get(`${label}`) ?? 0) + 1;
    counts.set(`${label}`, n);
    log(`${label}: ${n}`);
  },
  countReset: (label = "default") => {
    counts?.delete(`${label}`);
  },
  group: (...args) => {
    if (args.length > 0) reflectApply(log, undefined, args);
    indent += "  ";
  },
  groupCollapsed: (...args) => reflectApply(methods.group, undefined, args),
  groupEnd: () => {
    indent = stringSlice(indent, 0, -2);
  },
  time: (label = "default") => {
    timers ??= new MapCtor();
    timers.set(`${label}`, performance.now());
  },
  timeLog: (label = "default", ...args) => {
    const start = timers?.get(`${label}`);
    if (start === undefined) return warn(`Warning: No such label '${label}' for console.timeLog()`);
    log(`${label}: ${elapsed(start)}${args.length ? " " + formatted(args) : ""}`);
  },
  timeEnd: (label = "default") => {
    const start = timers?.get(`${label}`);
    if (start === undefined) return warn(`Warning: No such label '${label}' for console.timeEnd()`);
    timers.delete(`${label}`);
    log(`${label}: ${elapsed(start)}`);
  },
};

// Each console method is the runtime's own seen through a Proxy that calls
// the capture's: its name, length and prototype are the runtime's, and its
// source reads as native code, as a bare Worker's does.
for (const name in methods) {
  const method = methods[name];
  const native = console[name];
  const apply = (target, self, args) => reflectApply(method, undefined, args);
  console[name] = typeof native === "function" ? new ProxyCtor(native, { __proto__: null, apply }) : method;
}

function elapsed(start) {
  const ms = performance.now() - start;
  return ms >= 1000 ? `${(ms / 1000).toFixed(3)}s` : `${ms.toFixed(3)}ms`;
}

addEventListener("unhandledrejection", (event) => {
  error("Uncaught (in promise)", event.reason);
});

function failure(code, name, message, stack) {
  return { __proto__: null, t: "error", code, name, message, stack };
}

// text reads a member of a guest value as a primitive string, or undefined.
function text(value, key) {
  try {
    const v = value[key];
    return typeof v === "string" ? v : undefined;
  } catch {
    return undefined;
  }
}

const SUBREQUESTS = /too many subrequests/i;
const NO_MODULE = /^No such module/;

function describeError(err, fallbackCode) {
  const message = err !== null && typeof err === "object" ? text(err, "message") : undefined;
  if (message === undefined) {
    return failure(fallbackCode, undefined, `Uncaught ${cut(formatted(["%o", err]), OPTIONS.maxErrorText - 9)}`, undefined);
  }
  const name = text(err, "name") ?? "Error";
  let code = fallbackCode;
  if (name === "SyntaxError") code = "syntax_error";
  if (regexpExec(NO_MODULE, message) !== null) code = "invalid_module";
  if (regexpExec(SUBREQUESTS, message) !== null) code = "subrequest_limit";
  const stack = text(err, "stack");
  return failure(code, cut(name, OPTIONS.maxErrorName), cut(message, OPTIONS.maxErrorText),
    stack === undefined ? undefined : cut(stack, OPTIONS.maxErrorText));
}

function bytesToBase64(bytes) {
  if (uint8ToBase64 !== null) return uint8ToBase64(bytes);
  let binary = "";
  const n = typedArrayByteLength(bytes);
  for (let i = 0; i < n; i++) binary += fromCharCode(bytes[i]);
  return toBase64(binary);
}

// readBody reads at most limit bytes of a response body. A body the
// runtime holds (a string, bytes) is read in one readAtLeast of up to
// SMALL_BODY bytes: fewer back means it ended. Other bodies, and the rest of
// a larger one, are read chunk by chunk. Each chunk is checked to be a real
// Uint8Array and measured with the captured getters.
async function readBody(stream, limit) {
  const acc = { __proto__: null, chunks: list(), size: 0, truncated: false };
  if (stream !== null) {
    const byob = byobReaderOf(stream);
    if (byob === null) await own(readChunks(streamGetReader(stream), readerRead, readerCancel, acc, limit));
    else await own(readBytes(byob, acc, limit));
  }
  if (acc.chunks.n === 1) return { __proto__: null, bytes: acc.chunks[0], truncated: acc.truncated };
  const bytes = new Uint8ArrayCtor(acc.size);
  let offset = 0;
  for (let i = 0; i < acc.chunks.n; i++) {
    typedArraySet(bytes, acc.chunks[i], offset);
    offset += typedArrayByteLength(acc.chunks[i]);
  }
  return { __proto__: null, bytes, truncated: acc.truncated };
}

const SMALL_BODY = 64 << 10;
const BYOB = { __proto__: null, mode: "byob" };

// byobReaderOf returns a BYOB reader of stream, or null if it is not a byte
// stream (or the runtime has no readAtLeast).
function byobReaderOf(stream) {
  if (byobReadAtLeast === null) return null;
  try {
    return streamGetReader(stream, BYOB);
  } catch {
    return null;
  }
}

function readNext(reader) {
  return byobRead(reader, new Uint8ArrayCtor(SMALL_BODY));
}

async function readBytes(reader, acc, limit) {
  const small = limit < SMALL_BODY ? limit + 1 : SMALL_BODY;
  const result = await own(byobReadAtLeast(reader, small, new Uint8ArrayCtor(small)));
  if (result.done === true && result.value === undefined) return;
  if (take(acc, result.value, limit)) {
    settle(byobCancel(reader));
    return;
  }
  if (result.done === true || acc.size < small) return; // it ended
  await own(readChunks(reader, readNext, byobCancel, acc, limit));
}

// readChunks reads what reader has left into acc, up to limit bytes.
async function readChunks(reader, read, cancel, acc, limit) {
  for (;;) {
    const result = await own(read(reader));
    if (result.done === true) return;
    if (take(acc, result.value, limit)) {
      settle(cancel(reader));
      return;
    }
  }
}

// take adds a chunk to acc, cut at limit; it returns whether limit was
// reached past.
function take(acc, value, limit) {
  if (typedArrayTag(value) !== "Uint8Array") throw new TypeError("a response body chunk is not a Uint8Array");
  const length = typedArrayByteLength(value);
  if (acc.size + length > limit) {
    append(acc.chunks, new Uint8ArrayCtor(typedArrayBuffer(value), typedArrayByteOffset(value), limit - acc.size));
    acc.size = limit;
    acc.truncated = true;
    return true;
  }
  append(acc.chunks, value);
  acc.size += length;
  return false;
}

async function describeResponse(parts) {
  const status = parts.status;
  if (status < 200) {
    return failure("exception", "TypeError", `fetch handler returned a Response with status ${status}; an execution returns 200 to 599`, undefined);
  }
  const headers = { __proto__: null };
  const names = list();
  headersForEach(parts.headers, (value, name) => {
    if (headers[name] === undefined) {
      append(names, name);
      headers[name] = value;
    } else {
      headers[name] = `${headers[name]}, ${value}`;
    }
  });
  const { bytes, truncated } = await own(readBody(parts.body, OPTIONS.maxResponseBytes));
  let body;
  let bodyEncoding = "utf8";
  try {
    strictDecoder ??= new TextDecoderCtor("utf-8", { __proto__: null, fatal: true });
    body = decode(strictDecoder, bytes);
  } catch {
    body = bytesToBase64(bytes);
    bodyEncoding = "base64";
  }
  return { __proto__: null, t: "response", status, headers, names, body, bodyEncoding, truncated };
}

// describeReturn is the outcome of code that returned value, not a Response:
// its JSON (none for undefined), or why it has none. Functions, symbols and
// BigInts anywhere in it, and cycles, are named rather than dropped.
function describeReturn(value) {
  if (value === undefined) return { __proto__: null, t: "return", json: undefined };
  let json;
  let why = null; // what the replacer refused, if it refused
  try {
    json = jsonStringify(value, (key, v) => {
      const kind = typeof v;
      if (kind === "function" || kind === "symbol" || kind === "bigint") {
        why = `${key === "" ? "it is" : `its ${cut(q(key), 100)} is`} a ${kind}`;
        throw why;
      }
      return v;
    });
  } catch {
    // Nothing of what was thrown is read: it may be the guest's own.
    const text = why ?? "it has a cycle, or a toJSON that throws";
    return failure("exception", "TypeError", `the returned value cannot be sent as JSON: ${text}`, undefined);
  }
  if (json === undefined) return { __proto__: null, t: "return", json: undefined };
  if (json.length > OPTIONS.maxResponseBytes) {
    return failure("output_limit", undefined,
      `the returned value is ${json.length} characters of JSON, more than the ${OPTIONS.maxResponseBytes} bytes a result holds`, undefined);
  }
  return { __proto__: null, t: "return", json };
}

// responseParts reads a Response's status, headers and body through what
// the guest cannot replace, or returns null for anything but a real Response.
// The captured accessors are a brand check no subclass, prototype or
// Symbol.hasInstance can fake: they throw on anything else. Where the runtime
// has per-instance properties, the parts are read from a clone the wrapper
// made (clone is itself a brand check), which no guest code has touched.
function responseParts(value) {
  try {
    if (responseStatus !== null) {
      return { __proto__: null, status: responseStatus(value), headers: responseHeaders(value), body: responseBody(value) };
    }
    const real = responseClone(value);
    return { __proto__: null, status: real.status, headers: real.headers, body: real.body };
  } catch {
    return null;
  }
}

function findHandler(mod) {
  const main = mod.default;
  if (main !== null && typeof main === "object" && typeof main.fetch === "function") {
    return (request, env, ctx) => react(bind(main.fetch, main, request, env), ctx);
  }
  if (typeof main === "function" && main.prototype !== undefined && typeof main.prototype.fetch === "function") {
    // A class default export (WorkerEntrypoint style): construct it per request.
    return (request, env, ctx) => {
      const instance = new main(ctx, env);
      return react(bind(instance.fetch, instance), request);
    };
  }
  return null;
}

const bind = uncurry(Function.prototype.bind);
const promiseThen = uncurry(PromiseCtor.prototype.then);
const promiseReject = PromiseCtor.reject;
const SPECIES = Symbol.species;
const speciesGetter = getOwn(PromiseCtor, SPECIES).get;

// react calls handler(last) as the runtime calls a handler, with no frame
// of the wrapper's under it (node:util's getCallSites lists frames without
// Error.prepareStackTrace): from a promise reaction, which hands it last,
// the value of a rejected promise (a rejection looks up no then). It
// returns a promise of what handler returns. Should the guest have changed
// Promise[Symbol.species] (a reused isolate), which then would consult, the
// wrapper calls handler itself.
function react(handler, last) {
  const species = getOwn(PromiseCtor, SPECIES);
  if (species === undefined || species.get !== speciesGetter) return handler(last);
  // own: then takes the promise's own constructor, not Promise.prototype's.
  return promiseThen(own(reflectApply(promiseReject, PromiseCtor, [last])), undefined, handler);
}

const backgrounds = new WeakMap();
const backgroundOf = uncurry(WeakMap.prototype.get);
const setBackground = uncurry(WeakMap.prototype.set);
let waitUntilPatched = false;

// trackBackground keeps what the guest hands to ctx.waitUntil so its late
// logs are not lost: the result waits for it. The runtime's waitUntil, on
// ExecutionContext.prototype, is replaced once per isolate (when the first
// request brings a ctx, before any guest module is evaluated) by a Proxy of
// itself: as a bare Worker's, ctx has no own waitUntil, and the method
// keeps its name and length; each call is noted under the ctx it is made
// on, then passed on to the runtime's.
function trackBackground(ctx) {
  if (!waitUntilPatched) {
    waitUntilPatched = true;
    const proto = getPrototypeOf(ctx);
    const native = proto.waitUntil;
    const apply = (target, self, args) => {
      const background = backgroundOf(backgrounds, self);
      if (background !== undefined && args.length > 0) append(background, args[0]);
      return reflectApply(target, self, args);
    };
    try {
      defineProperty(proto, "waitUntil", { __proto__: null, value: new ProxyCtor(native, { __proto__: null, apply }) });
    } catch {
      // a runtime whose prototype cannot be changed: waitUntil is not tracked
    }
  }
  const background = list();
  setBackground(backgrounds, ctx, background);
  return background;
}

// mainNamespace is the main module's namespace once imported: a warm
// isolate's later executions skip the dynamic import (the same object
// again, its bindings live). An import that failed is tried again.
let mainNamespace = null;

async function run(request, env, ctx) {
  const background = trackBackground(ctx);
  if (CAPABILITIES.n > 0) bindCapabilities(env);
  let mod = mainNamespace;
  if (mod === null) {
    try {
      mod = await own(import(MAIN));
    } catch (err) {
      return describeError(err, "exception");
    }
    mainNamespace = mod;
  }
  const handler = findHandler(mod);
  if (handler === null) {
    return failure("invalid_module", undefined,
      `main module ${q(stringSlice(MAIN, 2))} has no default export with a fetch(request, env, ctx) handler`, undefined);
  }
  let outcome;
  try {
    const response = await own(handler(request, env, ctx));
    const parts = responseParts(response);
    if (parts !== null) {
      outcome = await own(describeResponse(parts));
    } else if (response === undefined && !OPTIONS.script) {
      outcome = failure("exception", "TypeError", "fetch handler returned undefined, not a Response", undefined);
    } else {
      outcome = describeReturn(response);
    }
  } catch (err) {
    outcome = describeError(err, "exception");
  }
  for (let i = 0; i < background.n; i++) {
    try {
      await background[i];
    } catch {
      // the guest's own failure; its logs are kept
    }
  }
  return outcome;
}

// encodeOutcome writes the final record of an execution.
function encodeOutcome(o, logsTruncated, warm) {
  let line;
  if (o.t === "return") {
    line = o.json === undefined ? '{"t":"return"' : `{"t":"return","value":${o.json}`;
  } else if (o.t === "response") {
    let headers = "";
    for (let i = 0; i < o.names.n; i++) {
      const name = o.names[i];
      headers += `${i === 0 ? "" : ","}${q(name)}:${q(o.headers[name])}`;
    }
    line = `{"t":"response","status":${o.status},"headers":{${headers}},"body":${q(o.body)},"bodyEncoding":${q(o.bodyEncoding)},"truncated":${o.truncated === true}`;
  } else {
    line = `{"t":"error","code":${q(o.code)}`;
    if (o.name !== undefined) line += `,"name":${q(o.name)}`;
    line += `,"message":${q(o.message)}`;
    if (o.stack !== undefined) line += `,"stack":${q(o.stack)}`;
  }
  if (logsTruncated) line += ',"logsTruncated":true';
  if (warm) line += ',"warm":true';
  return line + "}";
}

async function serve(state, warm, request, env, ctx) {
  let outcome;
  try {
    outcome = await own(run(request, env, ctx));
  } catch (err) {
    outcome = describeError(err, "exception");
  }
  emit(state, encodeOutcome(outcome, state.dropped, warm));
  state.ended = true;
  if (state.writer === BUFFER) return;
  flush(state);
  await settle(writerClose(state.writer));
}

let served = 0;

// begin starts an execution, its records buffered or live, with the
// records its isolate wrote before (top-level console calls) first.
function begin(buffered) {
  const state = freshState ?? newState();
  if (buffered) state.writer = BUFFER;
  else goLive(state);
  const early = state.pending;
  state.pending = null;
  for (let i = 0; i < early.n; i++) state.queued += early[i] + "\n";
  return state;
}

// start runs the execution, in its own AsyncLocalStorage context in a
// reused isolate, and returns serve's promise.
function start(state, request, env, ctx) {
  const warm = served++ > 0;
  if (!OPTIONS.reuse) return serve(state, warm, request, env, ctx);
  if (als !== null) return alsRun(als, state, serve, state, warm, request, env, ctx);
  return own(startReused(state, warm, request, env, ctx));
}

async function startReused(state, warm, request, env, ctx) {
  try {
    await own(loadAls());
  } catch (err) {
    emit(state, encodeOutcome(describeError(err, "exception"), false, warm));
    state.ended = true;
    if (state.writer !== BUFFER) {
      flush(state);
      await settle(writerClose(state.writer));
    }
    return;
  }
  await own(alsRun(als, state, serve, state, warm, request, env, ctx));
}

const noThen = { __proto__: null, value: undefined };
const LIVE = { __proto__: null, headers: { __proto__: null, "x-dw-live": "1" } };

// The guest cannot reach these objects to change them: they are frozen.
export default Object.freeze({
  // fetch answers at once with a stream the records are written to as
  // they occur.
  fetch(request, env, ctx) {
    const state = begin(false);
    flush(state);
    // The run goes on while the caller reads the stream; it is deliberately
    // not a waitUntil task, so the caller hanging up cancels it.
    start(state, request, env, ctx);
    return new ResponseCtor(state.readable);
  },
});

// The shim's entrypoint for a caller that wants one result. A guest done
// within liveAfterMs (as most are) gets every record in one body: no stream
// on either side. A longer one gets, from then on, a stream (marked with an
// x-dw-live header) that gives the records so far and then each as it
// occurs, as fetch's does.
export const buffered = Object.freeze({
  fetch(request, env, ctx) {
    const state = begin(true);
    return own(answer(state, start(state, request, env, ctx)));
  },
});

// goLive gives an execution the stream its records are written to.
function goLive(state) {
  const stream = new TransformStreamCtor();
  state.writer = writableGetWriter(read(transformWritable, stream, "writable"));
  state.readable = read(transformReadable, stream, "readable");
}

// answer resolves, for a buffered execution served by served, with its
// answer.
async function answer(state, served) {
  const late = await own(new PromiseCtor((resolve) => {
    const timer = setTimer(() => resolve(true), OPTIONS.liveAfterMs);
    finished(served, timer, resolve);
  }));
  let response;
  if (late) {
    goLive(state);
    flush(state);
    if (state.ended) settle(writerClose(state.writer)); // it ended meanwhile
    response = new ResponseCtor(state.readable, LIVE);
  } else {
    response = new ResponseCtor(state.queued);
  }
  // The promise of this async function resolves with response: with a
  // `then` of its own, that looks up nothing the guest could have set.
  defineProperty(response, "then", noThen);
  return response;
}

async function finished(served, timer, resolve) {
  await settle(served);
  clearTimer(timer);
  resolve(false);
}
