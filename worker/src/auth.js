// Verifies that a call comes from the gateway. The gateway signs every call
// with HMAC-SHA256 over "METHOD\nPATH\nTIMESTAMP\nNONCE\nSHA256(BODY)" using
// the secret it shares with the shim (env.SHIM_SECRET), and sends
//
//   X-Gateway-Timestamp: unix seconds
//   X-Gateway-Nonce:     random, new for every call
//   X-Gateway-Signature: lower-case hex HMAC
//
// Calls unsigned, signed with another secret, with a tampered body, or
// outside the time window are refused; so is a signature seen before.

const WINDOW_SECONDS = 60;
const encoder = new TextEncoder();

let cachedKey = null; // { secret, key }
const seen = new Map(); // signature -> expiry (ms), to refuse replays

async function hmacKey(secret) {
  if (cachedKey === null || cachedKey.secret !== secret) {
    const key = await crypto.subtle.importKey("raw", encoder.encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    cachedKey = { secret, key };
  }
  return cachedKey.key;
}

function hex(buffer) {
  return [...new Uint8Array(buffer)].map((b) => b.toString(16).padStart(2, "0")).join("");
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

// verify returns null for a call the gateway signed, else why it is refused.
export async function verify(request, body, secret, nowMs = Date.now()) {
  if (typeof secret !== "string" || secret.length < 32) return "the shim has no SHIM_SECRET of at least 32 characters";
  const timestamp = request.headers.get("x-gateway-timestamp");
  const nonce = request.headers.get("x-gateway-nonce");
  const signature = request.headers.get("x-gateway-signature");
  if (!timestamp || !nonce || !signature) return "the call is not signed";
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowMs / 1000 - Number(timestamp)) > WINDOW_SECONDS) {
    return "the signature is outside the time window";
  }
  const path = new URL(request.url).pathname;
  const expected = await sign(secret, request.method, path, timestamp, nonce, body);
  if (!equalConstantTime(expected, signature.toLowerCase())) return "the signature does not match";
  for (const [sig, expiry] of seen) {
    if (expiry < nowMs) seen.delete(sig);
  }
  if (seen.has(expected)) return "the call was replayed";
  seen.set(expected, nowMs + 2 * WINDOW_SECONDS * 1000);
  return null;
}
