// The shim Worker. The gateway POSTs one execution to /run (or, to a local
// process, sends it on the process's channel: channel.js); the shim loads the
// guest's modules into a fresh isolate with env.LOADER.load, runs them behind
// the capture wrapper (guest/__dw_wrapper.js), and streams what happens back as
// NDJSON events, one per line, as they occur:
//
//   {"type":"log","level":"log","stream":"stdout","message":"...","time":"..."}
//   {"type":"net"}
//   {"type":"outbound","method":"GET","url":"https://...","capability":"..."?}
//   {"type":"result","success":true,"response":{...},"outbound":[...]}
//
// Exactly one result event ends every stream. An outbound event announces
// each request of the guest (an outbound one or a capability call) as it
// reaches the Outbound or Capability entrypoint, before it is decided or
// sent: the gateway keeps them, so that the result of an execution run again
// lists the calls of every run. Two internal lines are not events:
// {"type":"ping"}, sent while the guest is silent, and {"type":"net"}, sent
// at most once per execution, before the first outbound event (the first
// request waits until both are written), so the gateway knows whether the
// guest may have reached the network. A request the runtime rejects before
// anything runs (bad compatibility date or flags) gets a 400 with
// {"field": ..., "message": ...} instead.
//
// The shim authenticates before it reads: a call without well-formed
// signature headers inside the time window gets 401, one without a
// Content-Length 411, one longer than MAX_JOB_BYTES 413, all before its body
// is read; then the body is read up to its length and the signature checked.
// The routes are served under any path prefix (auth.js): with the shim on a
// route like example.com/gw/*, /gw/run is /run. Besides /run, the signed
// paths are /verify (204: the secrets match) and
// /stats (how many executions the Outbound ledger holds, for tests); /health
// is open.

import { admit, verify, MAX_JOB_BYTES, routeOf } from "./auth.js";
import { open, Whole, WHOLE } from "./channel.js";
import { begin, size as ledgerSize } from "./ledger.js";
import { acquire } from "./warm.js";
import { ndjson, relay, collect, endedWithout, result, hasLocation, PING_INTERVAL_MS } from "./relay.js";
import { guestModules, RESERVED, RESERVED_PREFIX, WRAPPER_MODULE } from "./modules.js";
import { checkPackages } from "./packages.js";
import { recordCap } from "./records.js";
import { limitOfError } from "./limits.js";
import { reportsHeld } from "./tail.js";
import CONTRACT from "./contract.json" with { type: "json" };

export { Outbound } from "./outbound.js";
export { Capability } from "./capability.js";
export { Tail } from "./tail.js";

export default {
  async fetch(request, env, ctx) {
    // The routes are served under any path prefix; the signature covers
    // the whole path (auth.js).
    const route = routeOf(new URL(request.url).pathname);
    if (route === "/health") {
      return new Response("ok");
    }
    if (route === "/channel" && env.CHANNEL === true) {
      return channel(request, env, ctx);
    }
    if (route === null || route === "/channel" || request.method !== "POST") {
      return new Response("not found", { status: 404 });
    }
    // The previous secret too, while the gateways move to a new one.
    const admitted = await admit(request, [env.SHIM_SECRET, env.SHIM_SECRET_PREVIOUS], MAX_JOB_BYTES);
    if (admitted.status) {
      return Response.json({ message: admitted.message }, { status: admitted.status });
    }
    if (route === "/verify") {
      // The gateway checking, at start and then and again, that it and the
      // shim share the signing secret; on Cloudflare the answer names the
      // version of the shim that gave it (its version_metadata binding), so
      // that a deploy checks the version it made.
      const version = env.CF_VERSION_METADATA?.id;
      return new Response(null, { status: 204, headers: version ? { "X-Shim-Version": version } : {} });
    }
    if (route === "/stats") {
      // For tests: how many executions the Outbound ledger holds, and how
      // many tail reports no execution asked for (tail.js).
      return Response.json({ executions: ledgerSize(), tailReports: reportsHeld() });
    }
    const answer = await handle(env, ctx, admitted.body, request.signal);
    return answer instanceof Whole ? new Response(answer.bytes, NDJSON) : answer;
  },
};

const NDJSON = { headers: { "content-type": "application/x-ndjson" } };

// channel opens the local runtime's channel (channel.js) for a signed
// upgrade: the signature covers GET /channel and an empty body, checked once
// for every execution the channel then carries.
async function channel(request, env, ctx) {
  if (request.method !== "GET" || request.headers.get("upgrade")?.toLowerCase() !== "websocket") {
    return Response.json({ message: "the channel is a WebSocket" }, { status: 426 });
  }
  const bad = await verify(request, new Uint8Array(0), [env.SHIM_SECRET, env.SHIM_SECRET_PREVIOUS]);
  if (bad !== null) return Response.json({ message: `unauthorized: ${bad}` }, { status: 401 });
  return open((body, signal) => handle(env, ctx, body, signal));
}

// handle runs one job, its JSON as bytes, whether it came as /run's body
// or on the channel, and answers as /run does: with a Response, or with a
// Whole (a 200 whose NDJSON body was complete when made), which the channel
// sends as it is and /run as a Response's body. signal aborts when the
// gateway goes away.
function handle(env, ctx, body, signal) {
  let job;
  try {
    job = JSON.parse(decoder.decode(body));
  } catch (err) {
    return Response.json({ message: `invalid job: ${err.message}` }, { status: 400 });
  }
  const reserved = Object.keys(job?.modules ?? {}).find((name) => RESERVED.test(name));
  if (reserved !== undefined) {
    return Response.json({ field: "modules", message: `module name ${JSON.stringify(reserved)} is reserved (names starting with ${RESERVED_PREFIX})` }, { status: 400 });
  }
  const malformed = checkJob(job);
  if (malformed !== null) {
    return Response.json({ message: `invalid job: ${malformed}` }, { status: 400 });
  }
  return run(env, ctx, job, signal);
}

// TRACEPARENT is a W3C traceparent of version 00, as the gateway sends it.
const TRACEPARENT = /^00-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

// The caps every job carries: the gateway always sends them (from its
// configuration), so the shim keeps no defaults of its own.
const JOB_CAPS = ["maxResponseBytes", "maxLogLineBytes", "maxLogBytes"];

// checkJob returns why a job the gateway sent cannot run, or null: its
// modules, main module and caps are not what the gateway always sends.
function checkJob(job) {
  if (job === null || typeof job !== "object" || job.modules === null || typeof job.modules !== "object") {
    return "modules must be an object";
  }
  if (typeof job.mainModule !== "string" || !Object.hasOwn(job.modules, job.mainModule)) {
    return "mainModule must name one of the modules";
  }
  for (const cap of JOB_CAPS) {
    if (!Number.isSafeInteger(job[cap]) || job[cap] <= 0) return `${cap} must be a positive integer`;
  }
  if (job.trace !== undefined && (typeof job.trace !== "string" || !TRACEPARENT.test(job.trace))) {
    return "trace must be a W3C traceparent";
  }
  return checkPackages(job) ?? checkCapabilities(job.capabilities);
}

// checkCapabilities returns why a job's capabilities are not what the
// gateway sends, or null.
function checkCapabilities(caps) {
  if (caps === undefined || caps === null) return null;
  if (typeof caps !== "object" || Array.isArray(caps)) return "capabilities must be an object";
  for (const [name, c] of Object.entries(caps)) {
    const ok = c !== null && typeof c === "object" && typeof c.url === "string" && URL.canParse(c.url) &&
      Array.isArray(c.methods) && Number.isSafeInteger(c.timeoutMs) && c.timeoutMs > 0 &&
      Number.isSafeInteger(c.maxCalls) && c.maxCalls > 0 &&
      (c.forwardHeaders === undefined || (Array.isArray(c.forwardHeaders) && c.forwardHeaders.every((h) => typeof h === "string"))) &&
      (c.maxAnswerBytes === undefined || (Number.isSafeInteger(c.maxAnswerBytes) && c.maxAnswerBytes > 0)) &&
      (c.vpc === undefined || typeof c.vpc === "boolean");
    if (!ok) return `capability ${JSON.stringify(name)} is malformed`;
  }
  return null;
}

// guestEnv is the job's env with a binding per capability: a stub of the
// Capability entrypoint, whose props (headers included) stay in the shim.
function guestEnv(ctx, job, key) {
  const env = { ...(job.env ?? {}) };
  for (const [name, c] of Object.entries(job.capabilities ?? {})) {
    env[name] = ctx.exports.Capability({
      props: {
        key, name, url: c.url, headers: c.headers ?? {}, methods: c.methods, timeoutMs: c.timeoutMs, maxCalls: c.maxCalls, mask: c.mask ?? [],
        forwardHeaders: c.forwardHeaders, maxAnswerBytes: c.maxAnswerBytes, vpc: c.vpc === true,
      },
    });
  }
  return env;
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
// entrypoint, which enforces and records it. A job with a reuse key runs in
// the warm isolate named isolateId (warm.js), kept by LOADER.get: the gateway
// derives the key from everything that defines the isolate and the caller's
// API key.
function load(env, ctx, job, isolateId) {
  if (isolateId) {
    return env.LOADER.get(isolateId, async () => workerCode(ctx, job, isolateId));
  }
  return env.LOADER.load(workerCode(ctx, job, null));
}

function workerCode(ctx, job, isolateId) {
  const flags = job.compatibilityFlags ?? [];
  const reuse = isolateId !== null;
  const code = {
    compatibilityDate: job.compatibilityDate,
    // In a reused isolate the wrapper keeps a call from a timer an earlier
    // execution left behind out of the current one with AsyncLocalStorage.
    compatibilityFlags: reuse && !flags.includes("nodejs_als") && !flags.includes("nodejs_compat") ? [...flags, "nodejs_als"] : flags,
    mainModule: WRAPPER_MODULE,
    modules: guestModules(job),
    env: guestEnv(ctx, job, reuse ? isolateId : job.id),
    globalOutbound: null,
  };
  if (job.outbound) {
    // The Outbound entrypoint records requests under the execution (a fresh
    // isolate) or the warm isolate, which runs one execution at a time.
    code.globalOutbound = ctx.exports.Outbound({
      props: { key: reuse ? isolateId : job.id, hosts: job.outbound.hosts, deny: job.outbound.deny ?? [], denyHosts: job.outbound.denyHosts ?? [] },
    });
  }
  if (job.limits) code.limits = job.limits;
  if (job.tail) {
    // On Cloudflare the platform reports through a tail why a guest was
    // stopped (exceededCpu, exceededMemory); the local runtime has no such
    // limits, so the gateway asks for the tail only on the cloudflare backend.
    // A reused isolate's tail reports under its id (tail.js).
    code.tails = [ctx.exports.Tail({ props: { id: reuse ? isolateId : job.id } })];
  }
  return code;
}

async function run(env, ctx, job, signal) {
  let warm = null;
  if (job.reuseKey) {
    try {
      warm = await acquire(job.reuseKey, signal);
    } catch {
      return new Response(null, { status: 499 }); // the gateway went away while waiting
    }
  }
  // The tail's reports count from here for a reused isolate (tail.js).
  if (job.tail) job.tail = { id: warm ? warm.id : job.id, since: warm ? Date.now() : 0 };
  const ledger = begin(warm ? warm.id : job.id, job.trace);
  const done = () => {
    ledger.take();
    warm?.release();
  };
  // When the gateway hangs up, workerd cancels what this request awaits
  // (the relay's own cleanup never runs), but request.signal aborts (on by
  // default from the shim's compatibility date, 2026-11-17): release here.
  signal?.addEventListener("abort", done);
  let answer;
  try {
    answer = await start(env, ctx, job, warm, signal, ledger);
  } catch (err) {
    done();
    throw err;
  }
  if (!answer.stream) {
    done();
    if (!(answer.response instanceof Whole)) WHOLE.add(answer.response);
  }
  return answer.response;
}

// start loads the guest and answers with its events, or with a 400 when
// the runtime refused the job's configuration.
async function start(env, ctx, job, warm, signal, ledger) {
  let worker;
  try {
    worker = load(env, ctx, job, warm?.id);
  } catch (err) {
    return { response: Response.json({ field: fieldOf(err.message), message: err.message }, { status: 400 }) };
  }
  const exec = {
    job,
    signal,
    started: Date.now(),
    outbound: ledger.take,
    locate: () => locateSyntaxError(env, ctx, job),
    // Every outbound request is announced as it arrives; the first waits
    // until the gateway is told.
    onStart: (emit) => announce(ledger, emit).then(ledger.confirm, ledger.confirm),
    failure: (err) => failureOf(err, job),
  };
  if (job.buffered) return startBuffered(worker, exec, warm, ledger);
  let guest;
  try {
    guest = await worker.getEntrypoint().fetch(guestRequest(job));
  } catch (err) {
    return refused(err, ledger);
  }
  return streamed(guest, exec, warm, ledger);
}

// announce tells the gateway of each outbound request the guest makes, as
// it arrives, until the execution ends: the first time with the net line
// before it, after which the first request goes on.
async function announce(ledger, emit) {
  let first = true;
  for (let calls = await ledger.next(); calls !== null; calls = await ledger.next()) {
    const events = calls.map(({ method, url, capability }) =>
      capability === undefined ? { type: "outbound", method, url } : { type: "outbound", method, url, capability });
    await emit(first ? [{ type: CONTRACT.netType }, ...events] : events);
    if (first) ledger.confirm();
    first = false;
  }
}

// streamed answers with the guest's events as they happen.
function streamed(answer, exec, warm, ledger) {
  const stream = ndjson(async (send) => {
    try {
      await relay(answer, send, exec);
    } finally {
      ledger.take();
      warm?.release();
    }
  });
  return { response: stream, stream: true };
}

// refused answers for a guest whose isolate failed before the wrapper ran.
// A guest over its limits throws in this, its caller, at once: that
// exception is the limit's result.
function refused(err, ledger) {
  const failed = classifyStartError(err);
  if (failed.field) {
    return { response: Response.json(failed, { status: 400 }) };
  }
  const limit = failed.code === "exception" ? limitOfError(failed.message) : null;
  return { response: ndjson(async (send) => send({ ...result(limit ?? failed), outbound: ledger.take() })) };
}

// failureOf is the result of a guest whose answer failed: it failed to
// start, or ended without a result.
async function failureOf(err, job) {
  const failed = classifyStartError(err);
  if (failed.field) return result({ code: "invalid_module", message: failed.message });
  if (failed.code !== "exception") return result(failed);
  return endedWithout(err, job);
}

// startBuffered runs a job whose caller wants one result. The wrapper's
// buffered entrypoint answers when the guest is done, with every record in
// one body; if that comes within a ping interval (as most executions do),
// the events go back in one body too: no stream, no ping. Otherwise, or as
// soon as the guest's first outbound request must be announced, the events
// stream as on the live path, with pings while the guest runs.
async function startBuffered(worker, exec, warm, ledger) {
  const answer = worker.getEntrypoint("buffered").fetch(guestRequest(exec.job));
  let timer;
  const early = new Promise((resolve) => {
    timer = setTimeout(resolve, PING_INTERVAL_MS);
    ledger.first.then(resolve);
  });
  const first = await Promise.race([answer.then((guest) => ({ guest }), (err) => ({ err })), early]);
  clearTimeout(timer);
  if (first === undefined) return streamed(answer, exec, warm, ledger);
  if (first.guest?.headers.has("x-dw-live")) return streamed(first.guest, exec, warm, ledger);
  if (first.err) {
    if (classifyStartError(first.err).field) return refused(first.err, ledger);
    const event = { ...(await exec.failure(first.err)), outbound: ledger.take() };
    return { response: new Response(JSON.stringify(event) + "\n", { headers: { "content-type": "application/x-ndjson" } }) };
  }
  const read = await readUpTo(first.guest.body, bufferCap(exec.job));
  if (read.rest) return streamed({ reader: read.rest }, exec, warm, ledger);
  return { response: new Whole(encoder.encode(await collect(read.text, exec))) };
}

// bufferCap is the most of a buffered answer the shim reads at once: room
// for a response record, the logs' text (each character escaped at worst)
// and their framing. An honest answer is longer only with very many empty
// logs; that one goes line by line, as a stream does.
function bufferCap(job) {
  const opts = { maxResponseBytes: job.maxResponseBytes, maxLogLineBytes: job.maxLogLineBytes };
  return recordCap(opts) + 6 * job.maxLogBytes + (1 << 20);
}

const decoder = new TextDecoder();
const encoder = new TextEncoder();
const CHUNK = 64 << 10;
const FIRST = 4 << 10;

// readUpTo reads body to its end if that comes within cap bytes: {text};
// else {rest}, a reader that gives what was read and then the rest. An
// answer under FIRST bytes (most are) takes one readAtLeast: fewer bytes
// back than asked means it ended. (A first buffer of CHUNK bytes, zeroed
// and then garbage for every execution, cost a warm one more in V8's
// collector than everything else the shim does.)
async function readUpTo(body, cap) {
  const bytes = body.getReader({ mode: "byob" });
  const reader = { read: () => bytes.read(new Uint8Array(CHUNK)), cancel: (why) => bytes.cancel(why) };
  const first = Math.min(cap + 1, FIRST);
  const { done, value } = await bytes.readAtLeast(first, new Uint8Array(first));
  if (done || value.length < first) return { text: value ? decoder.decode(value) : "" };
  const chunks = [value];
  let size = value.length;
  for (;;) {
    if (size > cap) return { rest: replay(chunks, reader) };
    const next = await reader.read();
    if (next.done) break;
    chunks.push(next.value);
    size += next.value.length;
  }
  const all = new Uint8Array(size);
  let offset = 0;
  for (const chunk of chunks) {
    all.set(chunk, offset);
    offset += chunk.length;
  }
  return { text: decoder.decode(all) };
}

// replay is a reader that gives chunks and then what reader has left.
function replay(chunks, reader) {
  let i = 0;
  return {
    read: () => (i < chunks.length ? Promise.resolve({ done: false, value: chunks[i++] }) : reader.read()),
    cancel: (why) => reader.cancel(why),
  };
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
    const worker = load(env, ctx, { ...job, outbound: null, capabilities: undefined, reuseKey: undefined, compatibilityFlags: [...flags, "legacy_module_registry"] }, null);
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
