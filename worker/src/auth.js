// Verifies that a call comes from the gateway. The gateway signs every call
// with HMAC-SHA256 over "METHOD\nPATH\nTIMESTAMP\nNONCE\nSHA256(BODY)" using
// the secret it shares with the shim (env.SHIM_SECRET), and sends
//
//   X-Gateway-Timestamp: unix seconds
//   X-Gateway-Nonce:     random, new for every call
//   X-Gateway-Signature: lower-case hex HMAC
//
// During a rotation the shim also accepts the secret it had before
// (env.SHIM_SECRET_PREVIOUS), so gateways signing with either keep working
// while they move to the new one: put the old secret there, the new one in
// SHIM_SECRET, move the gateways, then delete SHIM_SECRET_PREVIOUS.
//
// Calls unsigned, signed with any other secret, with a tampered body, or
// outside the time window are refused; so is a signature this isolate has
// seen before. The headers, the window and the body's declared length are
// checked before the body is read (admit).

import CAPS from "./caps.json" with { type: "json" };

const WINDOW_SECONDS = 60;
const encoder = new TextEncoder();

const keys = new Map(); // secret -> imported HMAC key (the current and the previous)
const seen = new Map(); // signature -> expiry (ms), to refuse replays

async function hmacKey(secret) {
  let key = keys.get(secret);
  if (key === undefined) {
    key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    if (keys.size >= 4) keys.clear(); // only ever two in use
    keys.set(secret, key);
  }
  return key;
}

const HEX = Array.from({ length: 256 }, (_, b) => b.toString(16).padStart(2, "0"));

function hex(buffer) {
  const bytes = new Uint8Array(buffer);
  let out = "";
  for (let i = 0; i < bytes.length; i++) out += HEX[bytes[i]];
  return out;
}

// sign returns the signature of a call; the gateway's Go code computes the same.
export async function sign(secret, method, path, timestamp, nonce, body) {
  const bodyHash = hex(await crypto.subtle.digest("SHA-256", body));
  const message = `${method}\n${path}\n${timestamp}\n${nonce}\n${bodyHash}`;
  return hex(await crypto.subtle.sign("HMAC", await hmacKey(secret), encoder.encode(message)));
}

function equalConstantTime(a, b) {
  if (a.length !== b.length) return false;
  let diff = 0;
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return diff === 0;
}

// secretsOf returns the secrets a call may be signed with: secrets is the
// current one, or [current, previous]; a previous one shorter than 32
// characters (or unset) is ignored.
function secretsOf(secrets) {
  const [current, previous] = Array.isArray(secrets) ? secrets : [secrets];
  return typeof previous === "string" && previous.length >= 32 ? [current, previous] : [current];
}

// precheck returns null if a call carries well-formed signature headers
// inside the time window, else why it is refused. It reads no body: the shim
// runs it before reading one. secrets: see secretsOf.
export function precheck(request, secrets, nowMs = Date.now()) {
  const [secret] = secretsOf(secrets);
  if (typeof secret !== "string" || secret.length < 32) return "the shim has no SHIM_SECRET of at least 32 characters";
  const timestamp = request.headers.get("x-gateway-timestamp");
  const nonce = request.headers.get("x-gateway-nonce");
  const signature = request.headers.get("x-gateway-signature");
  if (!timestamp || !nonce || !signature) return "the call is not signed";
  if (!/^[0-9a-fA-F]{64}$/.test(signature) || nonce.length > 128) return "the signature does not match (it is not 64 hex digits)";
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > WINDOW_SECONDS) {
    return "the signature is outside the time window";
  }
  return null;
}

// verify returns null for a call the gateway signed with one of secrets
// (see secretsOf), else why it is refused. A signature is accepted once per
// isolate (the replay cache lives in its memory only).
export async function verify(request, body, secrets, nowMs = Date.now()) {
  const refused = precheck(request, secrets, nowMs);
  if (refused !== null) return refused;
  const timestamp = request.headers.get("x-gateway-timestamp");
  const nonce = request.headers.get("x-gateway-nonce");
  const signature = request.headers.get("x-gateway-signature");
  const path = new URL(request.url).pathname;
  const given = signature.toLowerCase();
  let expected = null;
  for (const secret of secretsOf(secrets)) {
    const candidate = await sign(secret, request.method, path, timestamp, nonce, body);
    if (equalConstantTime(candidate, given)) expected = candidate;
  }
  if (expected === null) return "the signature does not match";
  // Entries go in in the order they expire (a Map keeps insertion order and
  // every entry lives as long), so the expired ones are at the front: drop
  // those and stop, instead of walking every signature of the last two
  // minutes on each call.
  for (const [sig, expiry] of seen) {
    if (expiry >= nowMs) break;
    seen.delete(sig);
  }
  if (seen.has(expected)) return "the call was replayed";
  seen.set(expected, nowMs + 2 * WINDOW_SECONDS * 1000);
  return null;
}

// replayCacheSize is how many accepted signatures the replay cache holds
// (for tests).
export function replayCacheSize() {
  return seen.size;
}

// MAX_JOB_BYTES is the largest body the shim reads: caps.json's, which the
// gateway reads too (worker.Caps), so it never sends a larger job.
export const MAX_JOB_BYTES = CAPS.maxJobBytes;

// admit checks a call before and while reading its body, in this order:
// signature headers and time window (401), a Content-Length (411) within cap
// (413), the body read up to that length and no further (400), then the
// signature over it (401). It returns {body} or {status, message}; an
// unsigned or oversized body is never read.
export async function admit(request, secrets, cap, nowMs = Date.now()) {
  const refused = precheck(request, secrets, nowMs);
  if (refused !== null) return { status: 401, message: `unauthorized: ${refused}` };
  const length = request.headers.get("content-length");
  if (length === null) return { status: 411, message: "a Content-Length is required" };
  if (!/^\d{1,15}$/.test(length)) return { status: 400, message: "invalid Content-Length" };
  if (Number(length) > cap) return { status: 413, message: `the call's body exceeds ${cap} bytes` };
  // HTTP framing holds the body to its Content-Length, checked above: read
  // whole, it is at most cap bytes.
  let body;
  try {
    body = new Uint8Array(await request.arrayBuffer());
  } catch {
    return { status: 400, message: "the body could not be read" };
  }
  if (body.byteLength !== Number(length)) return { status: 400, message: "the body does not match its Content-Length" };
  const bad = await verify(request, body, secrets, nowMs);
  if (bad !== null) return { status: 401, message: `unauthorized: ${bad}` };
  return { body };
}

// Which of the shim's routes a call is for. The shim may be served under a
// path prefix (a route such as example.com/gw/*, the gateway's cloudflare.url
// https://example.com/gw): it serves its routes under any prefix, and the
// gateway signs the whole path, prefix included, so a call can be moved to
// no other prefix than the one it was signed for.

const ROUTES = new Set(["/run", "/channel", "/verify", "/stats", "/health"]);

// routeOf returns the route of a request's path ("/run" for "/gw/run"), or
// null when it names none.
export function routeOf(pathname) {
  const route = pathname.slice(pathname.lastIndexOf("/"));
  return ROUTES.has(route) ? route : null;
}
