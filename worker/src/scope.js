// The rules of a capability call (capability.js), kept apart so node tests
// can load them: which URL a call may reach (place), and how the configured
// header values are kept from the guest in what comes back (maskHeaders,
// maskBody).
//
// The guest's binding (the wrapper's adapter, guest/__dw_wrapper.js)
// resolves a relative URL against ORIGIN plus the capability's base path,
// since a Request needs an absolute URL; ORIGIN stands for the base's
// origin, which the guest is never told. An absolute URL must lie under
// the base itself. Either way the URL has been parsed by the runtime's URL
// parser in the guest (dot segments resolved, backslashes made slashes)
// before it gets here; place takes it as given and only narrows.

// ORIGIN is the origin a guest's relative URL is resolved against.
export const ORIGIN = "http://capability.invalid";

// What a masked value reads as: the gateway's redact.Text.
export const MASK = "[REDACTED]";

// The longest URL recorded for a refused call.
const MAX_RECORDED_URL = 2048;

// Percent-encodings a server may decode into a path separator or a dot
// segment (or decode twice: %25), and NUL: refused anywhere in the path.
const ENCODED = /%(2f|5c|2e|25|00)/i;

// place decides where a call may go. raw is the request's URL, base the
// capability's base URL (its path ends in /). It returns {url} (a URL under
// base) or {why}; either way shown, what the call's record names: the path
// and query on the service, or for a URL elsewhere, raw itself.
export function place(raw, base) {
  const root = new URL(base);
  let url;
  try {
    url = new URL(raw);
  } catch {
    return refuse("it is not a URL", raw);
  }
  if (url.origin === ORIGIN && url.username === "" && url.password === "") {
    // Set, not parsed: a path starting "//" must stay a path.
    const mapped = new URL(root.origin);
    mapped.pathname = url.pathname;
    mapped.search = url.search;
    url = mapped;
  }
  if (url.username !== "" || url.password !== "") return refuse("a URL with user info is not allowed", raw);
  if (url.protocol !== root.protocol || url.hostname !== root.hostname || url.port !== root.port) {
    return refuse("the URL is not under the capability's base", raw);
  }
  const shown = url.pathname + url.search;
  if (ENCODED.test(url.pathname) || url.pathname.includes("\\")) {
    return refuse("an encoded slash, backslash, dot or percent sign is not allowed in the path", shown);
  }
  if (!url.pathname.startsWith(root.pathname)) return refuse("the URL is not under the capability's base", shown);
  url.hash = "";
  return { url, shown };
}

function refuse(why, shown) {
  return { why, shown: String(shown).slice(0, MAX_RECORDED_URL) };
}

// maskText replaces every secret in s with MASK, longest first.
export function maskText(s, secrets) {
  let out = s;
  for (const secret of sortedSecrets(secrets)) out = out.split(secret).join(MASK);
  return out;
}

function sortedSecrets(secrets) {
  return [...new Set(secrets.filter((s) => typeof s === "string" && s !== ""))].sort((a, b) => b.length - a.length);
}

// maskHeaders returns a copy of headers with every secret masked in the
// values, without the headers whose name holds one (a masked name would
// not be a header name).
export function maskHeaders(headers, secrets) {
  const out = new Headers();
  for (const [name, value] of headers) {
    if (maskText(name, secrets) === name) out.append(name, maskText(value, secrets));
  }
  return out;
}

const encoder = new TextEncoder();
const MASK_BYTES = encoder.encode(MASK);

// maskBody returns body (a ReadableStream of bytes) with every secret's
// UTF-8 bytes replaced by MASK, also where a secret is split between
// chunks: the last bytes of a chunk that may start one wait for the next.
export function maskBody(body, secrets) {
  const needles = sortedSecrets(secrets).map((s) => encoder.encode(s));
  if (body === null || needles.length === 0) return body;
  const keep = Math.max(...needles.map((n) => n.length)) - 1;
  let carry = new Uint8Array(0);
  return body.pipeThrough(new TransformStream({
    transform(chunk, controller) {
      const data = concat(carry, chunk);
      const { out, rest } = replace(data, needles, data.length - keep);
      carry = data.slice(rest);
      if (out.length > 0) controller.enqueue(out);
    },
    flush(controller) {
      const { out } = replace(carry, needles, carry.length);
      if (out.length > 0) controller.enqueue(out);
    },
  }));
}

// maskBytes returns bytes with every secret's UTF-8 bytes replaced by
// MASK: a body read whole.
export function maskBytes(bytes, secrets) {
  const needles = sortedSecrets(secrets).map((s) => encoder.encode(s));
  if (needles.length === 0) return bytes;
  return replace(bytes, needles, bytes.length).out;
}

function concat(a, b) {
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

// replace masks the needles in data starting before end and returns the
// bytes done and where the rest (kept for the next chunk) starts.
function replace(data, needles, end) {
  const parts = [];
  let from = 0;
  let i = 0;
  for (; i < end; i++) {
    const needle = needles.find((n) => startsAt(data, i, n));
    if (needle === undefined) continue;
    parts.push(data.subarray(from, i), MASK_BYTES);
    i += needle.length - 1;
    from = i + 1;
  }
  const stop = Math.max(from, Math.min(i, data.length));
  parts.push(data.subarray(from, stop));
  let size = 0;
  for (const p of parts) size += p.length;
  const out = new Uint8Array(size);
  let offset = 0;
  for (const p of parts) {
    out.set(p, offset);
    offset += p.length;
  }
  return { out, rest: stop };
}

function startsAt(data, i, needle) {
  if (i + needle.length > data.length) return false;
  for (let j = 0; j < needle.length; j++) {
    if (data[i + j] !== needle[j]) return false;
  }
  return true;
}
