// The fidelity probe: what a guest can observe of its isolate, as one JSON
// object of named results. internal/loader/fidelity_test.go runs it through
// the gateway and through a bare Worker calling LOADER.load, and compares the
// two key by key; accepted.json lists the differences that are known and
// why. Every result must be the same on every run: no times, no random
// values (only their types and shapes).
import { thrower, Failure, later } from "./lib.js";

const results = {};

// The first stack of the isolate: no frames, and a prepareStackTrace.
const firstStack = (() => {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  Error.prepareStackTrace = (e, sites) => `prepared ${e.message} ${sites.length}`;
  try {
    return new Error("first").stack;
  } finally {
    Error.stackTraceLimit = limit;
    Error.prepareStackTrace = undefined;
    try {
      delete Error.prepareStackTrace; // as it was, in a bare Worker
    } catch {
      // the wrapper's cannot be deleted
    }
  }
})();

// What top-level code sees: it runs as the module is evaluated.
const topLevelStack = new Error("top level").stack;
let topLevelSites;
try {
  const util = globalThis.process?.getBuiltinModule?.("node:util");
  topLevelSites = typeof util?.getCallSites === "function" ? util.getCallSites().map((s) => `${s.functionName} ${s.scriptName}:${s.lineNumber}:${s.column}`) : "none";
} catch (e) {
  topLevelSites = `throws ${e.name}`;
}

// probe records what fn gives, or what it throws, under key.
async function probe(key, fn) {
  try {
    results[key] = await fn();
  } catch (err) {
    results[key] = `throws ${describe(err)}`;
  }
}

function describe(err) {
  if (err === null || typeof err !== "object") return `${typeof err} ${String(err)}`;
  return `${err.constructor?.name}: ${err.name}: ${err.message}`;
}

function names(obj) {
  return Object.getOwnPropertyNames(obj).sort();
}

function shape(obj) {
  const out = {};
  for (const name of names(obj)) {
    const d = Object.getOwnPropertyDescriptor(obj, name);
    out[name] = "value" in d ? typeof d.value : `accessor(${d.get ? "get" : ""}${d.set ? "set" : ""})`;
  }
  return out;
}

function fnShape(f) {
  return { type: typeof f, name: f?.name, length: f?.length, source: typeof f === "function" ? Function.prototype.toString.call(f) : undefined };
}

async function drain(stream) {
  const chunks = [];
  const reader = stream.getReader();
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    chunks.push(...value);
  }
  return chunks;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

function inner() {
  null.x;
}

function outer() {
  inner();
}

async function asyncInner() {
  await null;
  throw new TypeError("async inner");
}

async function asyncOuter() {
  await asyncInner();
}

async function tryNode(name) {
  return await import(name);
}

// The stacks a guest reads: each must show the guest's frames only.
async function stacks() {
  await probe("stack.sync", () => {
    try {
      outer();
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.newError", () => new Error("here").stack);
  await probe("stack.captureStackTrace", () => {
    const o = { message: "captured" };
    Error.captureStackTrace(o);
    return o.stack;
  });
  await probe("stack.captureStackTraceSkip", () => {
    const o = {};
    function skipped() {
      Error.captureStackTrace(o, skipped);
    }
    skipped();
    return o.stack;
  });
  await probe("stack.otherModule", () => {
    try {
      thrower("range");
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.subclass", () => new Failure("sub").stack);
  await probe("stack.async", async () => {
    try {
      await asyncOuter();
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.asyncOtherModule", async () => {
    try {
      await later(() => thrower("later"));
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.promiseAll", async () => {
    try {
      await Promise.all([asyncInner()]);
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.rejection", async () => {
    try {
      await new Promise((_, reject) => reject(new Error("rejected")));
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.timer", async () => {
    const e = await new Promise((resolve) => setTimeout(() => resolve(new Error("in a timer")), 1));
    return e.stack;
  });
  await probe("stack.runtimeError", () => {
    try {
      new URL("not a url");
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.jsonError", () => {
    try {
      JSON.parse("{");
    } catch (e) {
      return e.stack;
    }
  });
  await probe("stack.eval", () => {
    try {
      return eval("new Error('evaluated').stack");
    } catch (e) {
      return `throws ${describe(e)}`;
    }
  });
  await probe("stack.limit", () => {
    const saved = Error.stackTraceLimit;
    try {
      const out = {};
      for (const limit of [0, 1, 2, 50, Infinity]) {
        Error.stackTraceLimit = limit;
        out[String(limit)] = new Error("limit").stack;
      }
      Error.stackTraceLimit = "x";
      out.notANumber = new Error("limit").stack ?? "none";
      return out;
    } finally {
      Error.stackTraceLimit = saved;
    }
  });
  await probe("stack.getterOnStack", () => {
    class Loud extends Error {
      get stack() {
        return `loud: ${new Error("inside").stack}`;
      }
    }
    return new Loud("x").stack;
  });
  await probe("stack.deep", () => {
    function recurse(n) {
      if (n === 0) return new Error("deep").stack;
      return recurse(n - 1);
    }
    return recurse(20);
  });
  // The call sites a prepareStackTrace of the guest's is given.
  await probe("stack.prepareCallSites", () => {
    const saved = Error.prepareStackTrace;
    try {
      Error.prepareStackTrace = (err, sites) =>
        sites.map((s) => ({
          file: s.getFileName(), fn: s.getFunctionName(), line: s.getLineNumber(), column: s.getColumnNumber(),
          async: s.isAsync(), toplevel: s.isToplevel(), function: typeof s.getFunction(), this: typeof s.getThis(), text: s.toString(),
        }));
      return new Error("sites").stack;
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.prepareAsyncCallSites", async () => {
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = (err, sites) => sites.map((s) => s.toString());
    try {
      await asyncOuter();
    } catch (e) {
      return e.stack;
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.prepareReceiver", () => {
    const saved = Error.prepareStackTrace;
    try {
      Error.prepareStackTrace = function (err, sites) {
        return { thisIsError: this === Error, args: arguments.length, isArray: Array.isArray(sites), errIs: err instanceof Error };
      };
      return new Error("r").stack;
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.prepareReturnsNonString", () => {
    const saved = Error.prepareStackTrace;
    try {
      Error.prepareStackTrace = () => 42;
      return new Error("n").stack;
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.prepareThrows", () => {
    const saved = Error.prepareStackTrace;
    try {
      Error.prepareStackTrace = () => {
        throw new Error("from prepare");
      };
      const e = new Error("t");
      try {
        return e.stack;
      } catch (thrown) {
        return `stack getter threw ${thrown.message}`;
      }
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.prepareRestored", () => {
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = (e, s) => s.length;
    Error.prepareStackTrace = saved;
    return new Error("restored").stack;
  });
  await probe("stack.nameThrows", () => {
    const e = new Error("m");
    Object.defineProperty(e, "name", {
      get() {
        throw new Error("no name");
      },
    });
    return e.stack;
  });
  await probe("stack.errorToStringReplaced", () => {
    const saved = Error.prototype.toString;
    Error.prototype.toString = () => "replaced";
    try {
      return new Error("m").stack;
    } finally {
      Error.prototype.toString = saved;
    }
  });
  await probe("stack.errorReplaced", () => {
    const Saved = globalThis.Error;
    globalThis.Error = class extends Saved {};
    try {
      inner();
    } catch (e) {
      return e.stack;
    } finally {
      globalThis.Error = Saved;
    }
  });
  await probe("stack.insideConsole", () => {
    // A toString the console calls: the frames under it that are the guest's.
    let seen = "not called";
    console.log("%s", { toString() { seen = new Error("in toString").stack.split("\n").filter((l) => l.includes("probe.js")); return "x"; } });
    return seen;
  });
  await probe("stack.insideConsoleSites", () => {
    let seen = "not called";
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = (e, sites) => sites.map((s) => s.getFileName());
    try {
      console.log("%s", { toString() { seen = new Error("sites").stack.filter((f) => !f || !f.startsWith("node-internal")); return "x"; } });
    } finally {
      Error.prepareStackTrace = saved;
    }
    return seen;
  });
  await probe("stack.insidePrepare", () => {
    const saved = Error.prepareStackTrace;
    Error.prepareStackTrace = () => new Error("inner").stack;
    try {
      return new Error("outer").stack;
    } finally {
      Error.prepareStackTrace = saved;
    }
  });
  await probe("stack.callSiteMethodsReplaced", () => {
    // The guest changes the call sites' own methods: stacks read after are
    // formatted as before.
    const saved = Error.prepareStackTrace;
    let proto;
    Error.prepareStackTrace = (e, sites) => (proto = Object.getPrototypeOf(sites[0]));
    void new Error("get one").stack;
    Error.prepareStackTrace = saved;
    const methods = { toString: proto.toString, getFileName: proto.getFileName };
    proto.toString = () => "replaced";
    proto.getFileName = () => "replaced.js";
    try {
      return new Error("after").stack;
    } finally {
      Object.assign(proto, methods);
    }
  });
  await probe("stack.getCallSites", async () => {
    const util = await tryNode("node:util");
    if (typeof util.getCallSites !== "function") return "none";
    return util.getCallSites().map((s) => `${s.functionName} ${s.scriptName}:${s.lineNumber}:${s.column}`);
  });
  await probe("stack.inspectError", async () => {
    const util = await tryNode("node:util");
    return util.inspect(new Error("inspected"));
  });
}

// What the guest reads of Error and console, before any probe sets
// Error.prepareStackTrace.
async function reflection() {
  await probe("console.methods", () => {
    const out = {};
    for (const name of names(console)) {
      const d = Object.getOwnPropertyDescriptor(console, name);
      out[name] = { ...fnShape(d.value), prototype: typeof d.value?.prototype, own: names(d.value), attributes: [d.writable, d.enumerable, d.configurable] };
    }
    return out;
  });
  await probe("Error.names", () => names(Error));
  await probe("Error.prepareStackTrace", () => typeof Error.prepareStackTrace);
  await probe("Error.stackTraceLimit", () => Error.stackTraceLimit);
  await probe("Error.prepareStackTrace.delete", () => {
    try {
      return delete Error.prepareStackTrace;
    } catch (e) {
      return `throws ${describe(e)}`;
    }
  });
  await probe("Error.prepareStackTrace.define", () => {
    try {
      Object.defineProperty(Error, "prepareStackTrace", { value: undefined, writable: true, configurable: true });
      return "defined";
    } catch (e) {
      return `throws ${describe(e)}`;
    } finally {
      try {
        delete Error.prepareStackTrace;
      } catch {
        // the wrapper's stays
      }
    }
  });
  await probe("Error.prepareStackTrace.readBack", () => {
    const saved = Error.prepareStackTrace;
    const mine = () => "mine";
    Error.prepareStackTrace = mine;
    const same = Error.prepareStackTrace === mine;
    Error.prepareStackTrace = saved;
    return same;
  });
}

async function web(request, env, ctx) {
  await probe("globalThis.names", () => names(globalThis));
  await probe("globalThis.symbols", () => Object.getOwnPropertySymbols(globalThis).map(String));
  await probe("globalThis.shape", () => shape(globalThis));
  await probe("console.names", () => names(console));
  await probe("console.log", () => fnShape(console.log));
  await probe("console.proto", () => names(Object.getPrototypeOf(console)));
  await probe("Object.prototype", () => names(Object.prototype));
  await probe("Function.prototype", () => names(Function.prototype));
  await probe("Array.prototype", () => names(Array.prototype));
  await probe("Promise", () => [names(Promise), names(Promise.prototype)]);
  await probe("this.module", () => typeof this);
  await probe("self", () => globalThis.self === globalThis);
  await probe("commonjs", () => [typeof require, typeof module, typeof exports, typeof __dirname, typeof __filename]);
  await probe("import.meta", () => ({ keys: Object.keys(import.meta).sort(), url: import.meta.url }));
  await probe("navigator", () => ({ userAgent: navigator.userAgent, language: navigator.language, hardwareConcurrency: typeof navigator.hardwareConcurrency }));
  await probe("request", () => ({
    url: request.url, method: request.method, headers: [...request.headers].sort(), cf: typeof request.cf,
    body: request.body === null, signal: typeof request.signal, proto: names(Object.getPrototypeOf(request)),
  }));
  await probe("env", () => ({ keys: Object.keys(env).sort(), values: JSON.stringify(env), proto: Object.getPrototypeOf(env) === Object.prototype, frozen: Object.isFrozen(env) }));
  await probe("ctx", () => ({ own: names(ctx), proto: names(Object.getPrototypeOf(ctx)), props: JSON.stringify(ctx.props), exports: typeof ctx.exports }));
  await probe("ctx.waitUntil", () => fnShape(ctx.waitUntil));
  await probe("ctx.passThroughOnException", () => fnShape(ctx.passThroughOnException));
  await probe("URL", () => {
    const u = new URL("https://user:pw@例え.jp:8080/a/../b?q=1&q=2#h");
    return [u.href, u.host, u.origin, [...u.searchParams], URL.canParse("x"), new URLSearchParams("a=1&b=%20").toString()];
  });
  await probe("URLPattern", () => (typeof URLPattern === "function" ? new URLPattern({ pathname: "/a/:id" }).exec("https://x/a/7").pathname.groups : "none"));
  await probe("TextEncoder", () => [[...new TextEncoder().encode("é€")], new TextDecoder().decode(new Uint8Array([0xe2, 0x82, 0xac])), new TextDecoder("utf-16le").encoding]);
  await probe("atob", () => [btoa("hello"), atob("aGVsbG8=")]);
  await probe("ReadableStream", async () => {
    const s = new ReadableStream({ start(c) { c.enqueue(new Uint8Array([1, 2])); c.enqueue(new Uint8Array([3])); c.close(); } });
    return drain(s);
  });
  await probe("TransformStream", async () => {
    const t = new TransformStream({ transform(chunk, c) { c.enqueue(chunk.map((b) => b * 2)); } });
    const w = t.writable.getWriter();
    w.write(new Uint8Array([1, 2, 3]));
    w.close();
    return drain(t.readable);
  });
  await probe("IdentityTransformStream", () => typeof IdentityTransformStream);
  await probe("CompressionStream", async () => {
    const data = new TextEncoder().encode("hello hello hello hello");
    const gz = new Response(data).body.pipeThrough(new CompressionStream("gzip"));
    const back = new Response(gz).body.pipeThrough(new DecompressionStream("gzip"));
    return new TextDecoder().decode(new Uint8Array(await drain(back)));
  });
  await probe("crypto.subtle", async () => hex(await crypto.subtle.digest("SHA-256", new TextEncoder().encode("abc"))));
  await probe("crypto.hmac", async () => {
    const key = await crypto.subtle.importKey("raw", new TextEncoder().encode("k"), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    return hex(await crypto.subtle.sign("HMAC", key, new TextEncoder().encode("m")));
  });
  await probe("crypto.random", () => [crypto.getRandomValues(new Uint8Array(16)).length, /^[0-9a-f-]{36}$/.test(crypto.randomUUID())]);
  await probe("crypto.quota", () => crypto.getRandomValues(new Uint8Array(65537)).length);
  await probe("Intl", () => [
    Intl.DateTimeFormat().resolvedOptions().timeZone, new Intl.NumberFormat("de-DE").format(1234567.891),
    new Intl.DateTimeFormat("en-US", { timeZone: "UTC", dateStyle: "full" }).format(new Date(0)), ["b", "a", "ä"].sort(new Intl.Collator("de").compare),
    typeof Intl.Segmenter, Intl.supportedValuesOf("calendar").length > 0, new Intl.PluralRules("en").select(1),
  ]);
  await probe("Date", () => [new Date(0).toString(), new Date(0).getTimezoneOffset(), typeof Date.now(), typeof performance.now(), performance.timeOrigin]);
  await probe("timers", async () => {
    const order = [];
    const id = setTimeout(() => order.push("cancelled"), 0);
    clearTimeout(id);
    setTimeout(() => order.push("timeout"), 0);
    queueMicrotask(() => order.push("microtask"));
    Promise.resolve().then(() => order.push("then"));
    await new Promise((r) => setTimeout(r, 5));
    return [order, typeof id, typeof setInterval, typeof setImmediate];
  });
  await probe("scheduler", async () => (typeof scheduler === "object" ? [names(Object.getPrototypeOf(scheduler)), await scheduler.wait(1)] : "none"));
  await probe("AbortController", () => {
    const c = new AbortController();
    c.abort("why");
    return [c.signal.aborted, c.signal.reason, typeof AbortSignal.timeout, typeof AbortSignal.any, AbortSignal.abort().reason?.name];
  });
  await probe("EventTarget", () => {
    const t = new EventTarget();
    const got = [];
    t.addEventListener("x", (e) => got.push(e.type, e instanceof Event));
    t.dispatchEvent(new Event("x"));
    return got;
  });
  await probe("structuredClone", () => {
    const a = { d: new Date(0), m: new Map([[1, 2]]), r: /x/g, b: new Uint8Array([1]) };
    a.self = a;
    const b = structuredClone(a);
    return [b.self === b, b.d.getTime(), [...b.m], String(b.r), [...b.b]];
  });
  await probe("structuredClone.function", () => structuredClone(() => 1));
  await probe("Blob", async () => [await new Blob(["a", "b"]).text(), new File(["x"], "f.txt").name, typeof FormData]);
  await probe("Response", async () => {
    const r = Response.json({ a: 1 });
    return [r.status, [...r.headers], await r.text(), new Response(null, { status: 204 }).body];
  });
  await probe("Headers", () => [...new Headers([["B", "2"], ["a", "1"], ["set-cookie", "x"], ["set-cookie", "y"]])]);
  await probe("fetch.noNetwork", async () => {
    const r = await fetch("https://example.com/");
    return r.status;
  });
  await probe("caches", () => (typeof caches === "object" ? [typeof caches.default, names(Object.getPrototypeOf(caches))] : "none"));
  await probe("WebSocketPair", () => typeof WebSocketPair);
  await probe("HTMLRewriter", () => typeof HTMLRewriter);
  await probe("eval", () => eval("1 + 1"));
  await probe("Function", () => new Function("return 2")());
  await probe("wasm.memory", () => {
    const m = new WebAssembly.Memory({ initial: 1, maximum: 3 });
    const before = m.buffer.byteLength;
    m.grow(1);
    return [before, m.buffer.byteLength, names(WebAssembly)];
  });
  await probe("wasm.compile", async () => {
    const empty = new Uint8Array([0, 0x61, 0x73, 0x6d, 1, 0, 0, 0]);
    return typeof (await WebAssembly.compile(empty));
  });
  await probe("cloudflare:workers", async () => {
    const m = await import("cloudflare:workers");
    return [Object.keys(m).sort(), typeof m.WorkerEntrypoint, typeof m.env];
  });
  await probe("cloudflare:sockets", async () => Object.keys(await import("cloudflare:sockets")).sort());
}

async function node() {
  await probe("node:buffer", async () => {
    const { Buffer } = await tryNode("node:buffer");
    return [Buffer.from("hi").toString("base64"), Buffer.concat([Buffer.from([1]), Buffer.from([2])]).toString("hex"), typeof globalThis.Buffer];
  });
  await probe("node:crypto", async () => {
    const c = await tryNode("node:crypto");
    return [c.createHash("sha256").update("abc").digest("hex"), c.randomBytes(8).length, c.createHmac("sha1", "k").update("m").digest("base64")];
  });
  await probe("node:util", async () => {
    const util = await tryNode("node:util");
    return [util.format("%s=%d %j", "a", 1, { b: [2] }), util.inspect({ a: { b: { c: { d: 1 } } }, s: "x" }), util.types.isPromise(Promise.resolve()), typeof util.promisify];
  });
  await probe("node:events", async () => {
    const { EventEmitter } = await tryNode("node:events");
    const e = new EventEmitter();
    const got = [];
    e.on("x", (v) => got.push(`on ${v}`));
    e.prependListener("x", (v) => got.push(`first ${v}`));
    e.emit("x", 1);
    return [got, e.listenerCount("x")];
  });
  await probe("AsyncLocalStorage", async () => {
    const { AsyncLocalStorage } = await tryNode("node:async_hooks");
    const als = new AsyncLocalStorage();
    return await als.run("store", async () => {
      await null;
      await new Promise((r) => setTimeout(r, 1));
      return [als.getStore(), typeof AsyncLocalStorage.bind];
    });
  });
  await probe("node:path", async () => (await tryNode("node:path")).join("/a", "b", "../c"));
  await probe("node:process", async () => {
    const p = await tryNode("node:process");
    const proc = p.default ?? p;
    return [typeof proc.nextTick, proc.platform, typeof proc.env, Object.keys(proc.env ?? {}).sort(), typeof globalThis.process];
  });
  await probe("node:stream", async () => {
    const { Readable } = await tryNode("node:stream");
    const out = [];
    for await (const chunk of Readable.from(["a", "b"])) out.push(chunk);
    return out;
  });
  await probe("node:zlib", async () => {
    const z = await tryNode("node:zlib");
    return typeof z.gzipSync === "function" ? z.gunzipSync(z.gzipSync("zip")).toString() : "none";
  });
  await probe("node:assert", async () => {
    const assert = (await tryNode("node:assert")).default;
    try {
      assert.strictEqual(1, 2);
    } catch (e) {
      return e.code;
    }
  });
  await probe("node:string_decoder", async () => new (await tryNode("node:string_decoder")).StringDecoder("utf8").write(new Uint8Array([0xc3, 0xa9])));
  await probe("node:url", async () => (await tryNode("node:url")).fileURLToPath("file:///a/b"));
  await probe("node:timers", async () => typeof (await tryNode("node:timers")).setTimeout);
  await probe("node:fs", async () => Object.keys(await tryNode("node:fs")).length > 0);
  await probe("node:os", async () => typeof (await tryNode("node:os")).platform);
}

const handler = {
  async fetch(request, env, ctx) {
    // Synchronously, before the handler first awaits: the frames under it.
    const entryStack = new Error("entry").stack;
    let entrySites;
    try {
      const util = globalThis.process?.getBuiltinModule?.("node:util");
      entrySites = typeof util?.getCallSites === "function" ? util.getCallSites().map((s) => `${s.functionName} ${s.scriptName}:${s.lineNumber}:${s.column}`) : "none";
    } catch (e) {
      entrySites = `throws ${describe(e)}`;
    }
    await probe("stack.entry", () => entryStack);
    await probe("stack.topLevel", () => topLevelStack);
    await probe("stack.first", () => firstStack);
    await probe("stack.topLevelCallSites", () => topLevelSites);
    await probe("stack.entryCallSites", () => entrySites);
    await reflection();
    await probe("fetch.arguments", () => arguments.length);
    await probe("fetch.this", () => this === handler);
    await stacks();
    await web(request, env, ctx);
    await node();
    const sorted = {};
    for (const key of Object.keys(results).sort()) sorted[key] = results[key];
    return new Response(JSON.stringify(sorted), { headers: { "content-type": "application/json" } });
  },
};

export default handler;
