// A capability: an operator's service the guest may call without holding
// its credentials. A job that names capabilities gets, for each, an env
// binding made from this entrypoint (index.js), with the capability's
// configuration as props: base URL, headers, methods, per-call timeout,
// calls per execution, and the values to mask. Props stay in the shim; the
// guest holds only a stub, whose fetch arrives here as a request. So the
// headers are added here, outside the guest's isolate, and the guest sees
// none of them: not in env, not on the stub, not in what comes back (their
// values are masked in the response's status text, headers and body).
//
// What the guest sends is narrowed to what the capability allows: a path
// under the base that reads the same to every common server (scope.js),
// only the request headers on its forwardHeaders list (none that overrides
// the method or path, or names the client, whatever its spelling), and no
// _method override to a method it does not allow (override.js). An answer
// longer than maxAnswerBytes is cut: the masking's work per call is bound.
//
// A call of a traced execution (the job carries a traceparent) goes out
// with a traceparent of that trace naming a span of the shim's own, over
// any the guest or the configuration set; the call's record reports that
// span ({spanId, start, ms}), which the gateway records as the call's.
//
// Every call, allowed or refused, is reported to the ledger like an
// outbound request (the first one makes the shim tell the gateway the
// guest may have reached the network) and recorded with the capability's
// name. A capability reached through a Workers VPC service (props.vpc) is
// called through the shim's binding to it, env.VPC_<name> (the prefix is
// contract.json's): gateway deploy adds it on Cloudflare, the local workerd
// makes it a network reaching that capability's address only; a shim
// without it refuses the call rather than fetch the url otherwise. Other
// calls leave through env.CAPABILITY_NETWORK where the runtime has it (the
// local workerd: a network service that reaches only the configured
// services' addresses, which no guest can reach), else through the shim's
// own fetch (on Cloudflare).

import { WorkerEntrypoint } from "cloudflare:workers";
import { arrive, countCall, traceOf, FULL } from "./ledger.js";
import { place } from "./scope.js";
import { maskHeaders, maskBody, maskBytes, maskText } from "./mask.js";
import { queryOverride, isForm, formOverride } from "./override.js";
import RULES from "./capability-rules.json" with { type: "json" };
import CONTRACT from "./contract.json" with { type: "json" };

// An answer with a Content-Length up to this many bytes is read whole and
// masked at once, which costs less than a stream.
const READ_WHOLE = 64 << 10;

// neverForward reports whether a header name (lower case) is one no call
// passes on, whatever the capability's list: the runtime's framing, a
// method or path override, the client's address, what would carry a
// credential past the masking (capability-rules.json), or a name spelled
// with "_", which many servers read as "-". The gateway refuses such a
// name in forward_headers; this keeps a list that reached the shim anyway
// from passing one.
export function neverForward(name) {
  if (name.includes("_")) return true;
  return RULES.neverForward.some((g) => (g.names ?? []).includes(name) || (g.prefixes ?? []).some((p) => name.startsWith(p)) ||
    (g.containing ?? []).some((c) => name.includes(c)));
}

// The content codings the runtime decodes in a response (exactly so
// spelled): the body the shim reads is plain, and masked. An answer in any
// other coding is refused: its bytes would reach the guest still encoded,
// where no masking sees an echoed credential. The guest's Accept-Encoding
// is dropped, so it cannot ask for one.
const DECODED = new Set(["gzip", "br"]);

// Capability is the entrypoint. Its one method is fetch: every other
// member of its prototype could be called by the guest over RPC on the
// stub (env.<capability>.secrets() would hand over the credentials), so the
// helpers below are module functions, given the props they need.
export class Capability extends WorkerEntrypoint {
  async fetch(request) {
    const props = this.ctx.props;
    const { key, name, url: base, methods, maxCalls } = props;
    const placed = place(request.url, base);
    const record = await arrive(key, request.method, placed.shown, name);
    if (record === null) throw new Error(`capability ${name}: refused: its execution has ended`);
    if (record === FULL) throw new Error(`capability ${name}: refused: the execution made as many outbound requests as it may`);
    let why = placed.why ?? null;
    if (why === null && !methods.includes(request.method)) why = `method ${request.method} is not allowed (allowed: ${methods.join(", ")})`;
    if (why === null) why = queryOverride(placed.url.search, methods);
    const headers = forwarded(props, request.headers);
    let body = null;
    if (why === null) ({ why, body } = await checkedBody(request, headers.get("content-type"), methods));
    if (why === null && countCall(key, name) > maxCalls) why = `more than ${maxCalls} calls in one execution`;
    if (why !== null) {
      record.denied = true;
      await body?.cancel?.();
      throw new Error(`capability ${name}: refused: ${why}`);
    }
    const span = traced(traceOf(key), headers, record);
    let response;
    try {
      response = await send(props, networkOf(props, this.env), request.method, placed.url, headers, body);
    } finally {
      if (span !== null) span.ms = Date.now() - span.start;
    }
    record.status = response.status;
    return masked(props, response);
  }
}

// traced sets a call's traceparent when its execution is traced: the
// trace's id and flags, a new span id. It returns the span's report, kept
// on the call's record (ms set when the answer comes), or null.
function traced(trace, headers, record) {
  if (trace === undefined) return null;
  const [version, traceId, , flags] = trace.split("-");
  const bytes = crypto.getRandomValues(new Uint8Array(8));
  if (bytes.every((b) => b === 0)) bytes[7] = 1; // an all-zero span id is invalid
  const spanId = [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  headers.set("traceparent", `${version}-${traceId}-${spanId}-${flags}`);
  headers.delete("tracestate");
  record.trace = { spanId, start: Date.now(), ms: 0 };
  return record.trace;
}

// forwarded are the headers a call sends: the guest's on the capability's
// forwardHeaders list, then the configured ones over them.
function forwarded(props, guest) {
  const allowed = props.forwardHeaders ?? RULES.forwardHeaders;
  const out = new Headers();
  for (const [h, v] of guest) {
    if (allowed.includes(h) && !neverForward(h)) out.set(h, v);
  }
  for (const [h, v] of Object.entries(props.headers ?? {})) out.set(h, v);
  return out;
}

// checkedBody returns the body a call sends ({body}) or why it is refused
// ({why}). A body the service would read as a form is read whole, up to
// maxFormBytes, and looked into for _method; any other passes as a stream.
async function checkedBody(request, contentType, methods) {
  if (request.body === null || request.method === "GET" || request.method === "HEAD") return { why: null, body: null };
  if (!isForm(contentType)) return { why: null, body: request.body };
  const bytes = await readUpTo(request.body, RULES.maxFormBytes);
  if (bytes === null) return { why: `a form body (or one without a Content-Type) longer than ${RULES.maxFormBytes} bytes cannot be checked for _method`, body: null };
  return { why: formOverride(contentType, bytes, methods), body: bytes };
}

// readUpTo reads stream whole, or returns null (the stream cancelled) once
// it holds more than limit bytes.
async function readUpTo(stream, limit) {
  const reader = stream.getReader();
  const chunks = [];
  let size = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    size += value.length;
    if (size > limit) {
      await reader.cancel();
      return null;
    }
    chunks.push(value);
  }
  const out = new Uint8Array(size);
  let at = 0;
  for (const c of chunks) {
    out.set(c, at);
    at += c.length;
  }
  return out;
}

// networkOf is what a capability's calls leave through: its VPC binding,
// the capability network, or the shim's own fetch; for a capability
// reached through a VPC service whose binding the shim lacks, a string
// saying so.
function networkOf(props, env) {
  if (props.vpc === true) {
    const binding = CONTRACT.vpcBindingPrefix + props.name;
    const service = Object.hasOwn(env ?? {}, binding) ? env[binding] : undefined;
    if (typeof service?.fetch !== "function") return `the shim has no binding ${binding} to the capability's VPC service (deploy the shim again: gateway deploy)`;
    return service;
  }
  return env?.CAPABILITY_NETWORK ?? { fetch: (r) => fetch(r) };
}

// send makes the call through network: the headers and body given, no
// redirect followed (a Location goes back to the guest, the headers stay
// here), within the per-call timeout.
async function send(props, network, method, url, headers, body) {
  const { name, timeoutMs } = props;
  if (typeof network === "string") {
    await body?.cancel?.();
    throw new Error(`capability ${name}: call failed: ${network}`);
  }
  const init = { method, headers, redirect: "manual", signal: AbortSignal.timeout(timeoutMs) };
  if (body !== null) {
    init.body = body;
    init.duplex = "half"; // a stream body, sent as it comes
  }
  try {
    return await network.fetch(new Request(url, init));
  } catch (err) {
    const message = err?.name === "TimeoutError" ? `no answer within ${timeoutMs} ms` : String(err?.message ?? err);
    throw new Error(`capability ${name}: call failed: ${maskText(message, secretsOf(props))}`);
  }
}

// masked is the service's response as the guest gets it: every
// configured value masked in its status text, headers and body; a body
// longer than maxAnswerBytes cut there.
async function masked(props, response) {
  const { name } = props;
  const limit = props.maxAnswerBytes ?? RULES.maxAnswerBytes;
  const secrets = secretsOf(props);
  const coding = response.headers.get("content-encoding");
  if (coding !== null && coding.trim().toLowerCase() !== "identity" && !DECODED.has(coding)) {
    await response.body?.cancel();
    throw new Error(`capability ${name}: refused the service's answer: its Content-Encoding ${JSON.stringify(maskText(coding, secrets))} is not one the gateway can mask`);
  }
  const headers = maskHeaders(response.headers, secrets);
  headers.delete("content-length"); // the body's length may change
  headers.delete("content-encoding"); // the body is decoded
  const length = Number(response.headers.get("content-length") ?? NaN);
  const tooLong = (n) => `capability ${name}: the service's answer was cut: it is longer than ${n} bytes, the most one call passes on (max_answer_bytes)`;
  if (response.body !== null && Number.isSafeInteger(length) && length > limit && coding === null) {
    await response.body.cancel();
    throw new Error(tooLong(limit));
  }
  let body;
  if (Number.isSafeInteger(length) && length <= limit && coding === null && secrets.every((s) => s === "")) {
    body = response.body; // nothing to mask, and its length known: as it comes
  } else if (response.body !== null && Number.isSafeInteger(length) && length <= Math.min(READ_WHOLE, limit) && coding === null) {
    body = maskBytes(new Uint8Array(await response.arrayBuffer()), secrets);
  } else {
    body = maskBody(response.body, secrets, limit, tooLong);
  }
  return new Response(body, { status: response.status, statusText: maskText(response.statusText, secrets), headers });
}

// secretsOf are the values the guest must not see: the configured header
// values and the environment variables spliced into them.
function secretsOf(props) {
  const { headers, mask } = props;
  return [...Object.values(headers ?? {}), ...(mask ?? [])];
}
