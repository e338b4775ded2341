// The shim Worker. The gateway POSTs one execution to /run; the shim loads the
// guest's modules into a fresh isolate with env.LOADER.load, runs them behind
// the capture wrapper (guest/__dw_wrapper.js), and streams what happens back as
// NDJSON events, one per line, as they occur:
//
//   {"type":"log","level":"log","stream":"stdout","message":"...","time":"..."}
//   {"type":"result","success":true,"response":{...}}
//
// Exactly one result event ends every stream. A request the runtime rejects
// before anything runs (bad compatibility date or flags) gets a 400 with
// {"field": ..., "message": ...} instead.

import WRAPPER from "./guest/__dw_wrapper.js";
import FORMAT from "./guest/__dw_format.js";
import { verify } from "./auth.js";
import { takeOutbound } from "./outbound.js";
import { awaitOutcome } from "./tail.js";
import { limitOf } from "./limits.js";

export { Outbound } from "./outbound.js";
export { Tail } from "./tail.js";

const WRAPPER_MODULE = "__dw_wrapper.js";
const FORMAT_MODULE = "__dw_format.js";
const STREAMS = { log: "stdout", info: "stdout", debug: "stdout", warn: "stderr", error: "stderr" };
const encoder = new TextEncoder();

export default {
  async fetch(request, env, ctx) {
    const url = new URL(request.url);
    if (url.pathname === "/health") {
      return new Response("ok");
    }
    if ((url.pathname !== "/run" && url.pathname !== "/verify") || request.method !== "POST") {
      return new Response("not found", { status: 404 });
    }
    const body = await request.arrayBuffer();
    const refused = await verify(request, body, env.SHIM_SECRET);
    if (refused !== null) {
      return Response.json({ message: `unauthorized: ${refused}` }, { status: 401 });
    }
    if (url.pathname === "/verify") {
      // The gateway checking, at start and then and again, that it and the
      // shim share the signing secret.
      return new Response(null, { status: 204 });
    }
    let job;
    try {
      job = JSON.parse(new TextDecoder().decode(body));
    } catch (err) {
      return Response.json({ message: `invalid job: ${err.message}` }, { status: 400 });
    }
    return run(env, ctx, job, request.signal);
  },
};

function guestModules(job) {
  const modules = {
    [WRAPPER_MODULE]: {
      js: WRAPPER
        .replace('const MAIN = "__DW_MAIN__";', `const MAIN = ${JSON.stringify("./" + job.mainModule)};`)
        .replace('const OPTIONS = "__DW_OPTIONS__";', `const OPTIONS = ${JSON.stringify({
          maxResponseBytes: job.maxResponseBytes || 1048576,
          maxLogLineBytes: job.maxLogLineBytes || 65536,
          maxLogBytes: job.maxLogBytes || 1048576,
          reuse: Boolean(job.reuseKey),
        })};`),
    },
    [FORMAT_MODULE]: { js: FORMAT },
  };
  for (const [name, source] of Object.entries(job.modules)) {
    modules[name] = moduleFor(name, source);
  }
  return modules;
}

function moduleFor(name, source) {
  if (name.endsWith(".json")) return { json: JSON.parse(source) };
  if (name.endsWith(".txt")) return { text: source };
  if (name.endsWith(".cjs")) return { cjs: source };
  return { js: source };
}

function guestRequest(job) {
  const r = job.request ?? {};
  const init = { method: r.method ?? "GET", headers: r.headers ?? {} };
  if (r.body !== undefined && r.body !== null && init.method !== "GET" && init.method !== "HEAD") {
    init.body = r.bodyEncoding === "base64" ? base64ToBytes(r.body) : r.body;
  }
  return new Request(r.url ?? "http://localhost/", init);
}

function base64ToBytes(s) {
  const binary = atob(s);
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}

// load creates the guest's isolate. With no outbound policy it has no
// network at all; with one, every request goes through the Outbound
// entrypoint, which enforces and records it. A job with a reuse key may run
// in a warm isolate kept by LOADER.get under that key: the gateway derives
// the key from everything that defines the isolate and the caller's API key.
function load(env, ctx, job) {
  if (job.reuseKey) {
    return env.LOADER.get(job.reuseKey, async () => workerCode(ctx, job, true));
  }
  return env.LOADER.load(workerCode(ctx, job, false));
}

function workerCode(ctx, job, reuse) {
  const flags = job.compatibilityFlags ?? [];
  const code = {
    compatibilityDate: job.compatibilityDate,
    // A reused isolate runs several executions at once; the wrapper tells
    // their console calls apart with AsyncLocalStorage.
    compatibilityFlags: reuse && !flags.includes("nodejs_als") && !flags.includes("nodejs_compat") ? [...flags, "nodejs_als"] : flags,
    mainModule: WRAPPER_MODULE,
    modules: guestModules(job),
    env: job.env ?? {},
    globalOutbound: null,
  };
  if (job.outbound) {
    code.globalOutbound = ctx.exports.Outbound({
      // In a reused isolate the wrapper records requests per execution.
      props: { id: reuse ? null : job.id, hosts: job.outbound.hosts, deny: job.outbound.deny ?? [] },
    });
  }
  if (job.limits) code.limits = job.limits;
  if (job.tail && !reuse) {
    // On Cloudflare the platform reports through a tail why a guest was
    // stopped (exceededCpu, exceededMemory); the local runtime has no such
    // limits, so the gateway asks for the tail only on the cloudflare backend.
    code.tails = [ctx.exports.Tail({ props: { id: job.id } })];
  }
  return code;
}

async function run(env, ctx, job, signal) {
  let worker;
  try {
    worker = load(env, ctx, job);
  } catch (err) {
    return Response.json({ field: fieldOf(err.message), message: err.message }, { status: 400 });
  }

  let guest;
  try {
    guest = await worker.getEntrypoint().fetch(guestRequest(job));
  } catch (err) {
    const failed = classifyStartError(err);
    if (failed.field) {
      return Response.json(failed, { status: 400 });
    }
    return ndjson(async (send) => send(result(failed)));
  }
  return ndjson((send) => relay(guest.body, send, env, ctx, job, signal));
}

const location = /\n\s*at [^\n]*:\d+:\d+/;

function hasLocation(stack) {
  return typeof stack === "string" && location.test(stack);
}

// locateSyntaxError finds where a syntax error is. With new_module_registry
// (the default from 2026-11-17) modules compile when first imported and V8's
// SyntaxError carries no position; the legacy registry compiles every module
// before anything runs and reports "at module:line:col". So on this error
// path only, the same modules are loaded again under the legacy registry just
// to be compiled: no guest code runs, since compilation fails first.
async function locateSyntaxError(env, ctx, job) {
  const flags = (job.compatibilityFlags ?? []).filter((f) => f !== "new_module_registry");
  try {
    const worker = load(env, ctx, { ...job, outbound: null, reuseKey: undefined, compatibilityFlags: [...flags, "legacy_module_registry"] });
    const probe = await worker.getEntrypoint().fetch("http://localhost/", { method: "HEAD" });
    await probe.body?.cancel();
  } catch (err) {
    const failed = classifyStartError(err);
    if (failed.code === "syntax_error" && hasLocation(failed.stack)) return failed.stack;
  }
  return undefined;
}

function fieldOf(message) {
  if (/compatibility date/i.test(message)) return "compatibilityDate";
  if (/compatibility flag/i.test(message)) return "compatibilityFlags";
  return "";
}

// classifyStartError maps an error thrown before the wrapper ran: the guest's
// modules failed to compile, or the runtime refused its configuration.
function classifyStartError(err) {
  const message = String(err && err.message || err);
  const field = fieldOf(message);
  if (field) return { field, message };
  const m = /Uncaught (SyntaxError: [^\n]*)(?:\n\s*at ([^\n]*))?/.exec(message);
  if (m) {
    return { code: "syntax_error", message: m[1], stack: m[2] ? `${m[1]}\n    at ${m[2]}` : undefined };
  }
  if (/^Failed to start Worker/.test(message)) {
    return { code: "invalid_module", message: message.replace(/^Failed to start Worker:\s*/, "") };
  }
  return { code: "exception", message, stack: err && err.stack };
}

function result(error, response, truncated = false) {
  const event = { type: "result", success: error === null };
  if (response) event.response = response;
  if (error) event.error = error;
  if (truncated) event.truncated = true;
  return event;
}

// ndjson returns a streaming response fed by producer(send).
function ndjson(producer) {
  const { readable, writable } = new TransformStream();
  const writer = writable.getWriter();
  const send = (event) => writer.write(encoder.encode(JSON.stringify(event) + "\n"));
  (async () => {
    try {
      await producer(send);
    } catch (err) {
      await send(result({ code: "exception", message: `shim: ${err.message}` })).catch(() => {});
    }
    await writer.close().catch(() => {});
  })();
  return new Response(readable, { headers: { "content-type": "application/x-ndjson" } });
}

// relay reads the wrapper's records and forwards them as events. The guest can
// only write through the wrapper, but the records are still checked: anything
// that is not a well-formed record ends the execution.
// While the guest is silent the shim sends a ping this often. workerd learns
// that the gateway hung up only when a write fails, so the pings are what
// turn a hang-up into the guest's cancellation within this interval.
const PING_INTERVAL_MS = 100;

const HUNG = /hung and would never generate a response/;

async function relay(body, send, env, ctx, job, signal) {
  const reader = body.getReader();
  // Cancelling the guest's response stream ends the guest's request, and with
  // it the guest's timers and pending I/O.
  const cancel = () => reader.cancel("the caller went away").catch(() => {});
  signal?.addEventListener("abort", cancel);
  let last = Date.now();
  const emit = async (event) => {
    last = Date.now();
    if (event.type === "result" && event.outbound === undefined) event.outbound = takeOutbound(job.id);
    try {
      await send(event);
    } catch (err) {
      cancel();
      throw err;
    }
  };
  const pinger = setInterval(() => {
    if (Date.now() - last >= PING_INTERVAL_MS) emit({ type: "ping" }).catch(() => {});
  }, PING_INTERVAL_MS);
  try {
    await relayRecords(reader, emit, env, ctx, job);
  } finally {
    clearInterval(pinger);
  }
}

async function relayRecords(reader, send, env, ctx, job) {
  const decoder = new TextDecoder();
  let buffered = "";
  let finished = false;
  let failure = null;
  for (;;) {
    let chunk;
    try {
      chunk = await reader.read();
    } catch (err) {
      failure = err;
      break;
    }
    if (chunk.done) break;
    buffered += decoder.decode(chunk.value, { stream: true });
    let nl;
    while ((nl = buffered.indexOf("\n")) >= 0) {
      const line = buffered.slice(0, nl);
      buffered = buffered.slice(nl + 1);
      if (finished || line === "") continue;
      finished = await forward(line, send, env, ctx, job);
    }
  }
  if (!finished) {
    const why = failure ? String(failure.message || failure) : "";
    const limit = limitOf(job.tail ? await awaitOutcome(job.id) : undefined, why);
    if (limit !== null) {
      await send(result(limit));
    } else if (HUNG.test(why)) {
      // workerd saw the guest wait on something that can never complete.
      await send(result({ code: "timeout", message: "the guest waits for something that can never complete (a promise nothing will resolve); the runtime ended it" }));
    } else {
      await send(result({ code: "exception", message: `the guest isolate ended without a result${why ? ": " + cleanStack(why) : ""}` }));
    }
  }
}

// annotate copies what only the wrapper knows onto a result event: whether
// the isolate was warm, and (in a reused isolate) the requests it recorded.
function annotate(event, record) {
  if (record.warm === true) event.warm = true;
  if (Array.isArray(record.outbound)) {
    event.outbound = record.outbound.slice(0, 1000).map((o) => ({
      method: String(o.method), url: String(o.url),
      ...(Number.isInteger(o.status) ? { status: o.status } : {}),
      ...(o.denied === true ? { denied: true } : {}),
    }));
  }
  return event;
}

async function forward(line, send, env, ctx, job) {
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    await send(result({ code: "exception", message: "malformed record from the guest isolate" }));
    return true;
  }
  switch (record.t) {
    case "log": {
      const level = STREAMS[record.level] ? record.level : "log";
      const event = {
        type: "log",
        level,
        stream: STREAMS[level],
        message: cleanStack(String(record.message)),
        time: new Date().toISOString(),
      };
      if (record.truncated) event.truncated = true;
      await send(event);
      return false;
    }
    case "response": {
      const { status, headers, body, bodyEncoding } = record;
      await send(annotate(result(null, { status, headers, body, bodyEncoding }, Boolean(record.truncated || record.logsTruncated)), record));
      return true;
    }
    case "error": {
      const { code, name, message } = record;
      const text = name && !String(message).startsWith(name) ? `${name}: ${message}` : String(message);
      let stack = record.stack && cleanStack(String(record.stack));
      if (code === "syntax_error" && !hasLocation(stack)) {
        stack = (await locateSyntaxError(env, ctx, job)) ?? stack;
      }
      await send(annotate(result({ code, message: cleanStack(text), stack }, undefined, Boolean(record.logsTruncated)), record));
      return true;
    }
    default:
      await send(result({ code: "exception", message: "unknown record from the guest isolate" }));
      return true;
  }
}

const wrapperFrame = /\n\s*at [^\n]*__dw_(?:wrapper|format)\.js[^\n]*/g;

// cleanStack removes the capture wrapper's frames and the runtime's bundle
// prefix from stack traces, so they show only the guest's own modules.
function cleanStack(text) {
  if (!text.includes("file:///bundle/")) return text;
  return text.replace(wrapperFrame, "").replaceAll("file:///bundle/", "");
}
