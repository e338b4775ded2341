// Which URL a capability call may reach (capability.js), kept apart so
// node tests can load it.
//
// The guest's binding (the wrapper's adapter, guest/__dw_wrapper.js)
// resolves a relative URL against ORIGIN plus the capability's base path,
// since a Request needs an absolute URL; ORIGIN stands for the base's
// origin, which the guest is never told. An absolute URL must lie under
// the base itself. Either way the URL has been parsed by the runtime's URL
// parser in the guest (dot segments resolved, backslashes made slashes)
// before it gets here; place takes it as given and only narrows.
//
// The service behind the base is not that parser: Tomcat, Jetty and Spring
// drop ";" path parameters ("..;/" is "../" to them), IIS decodes "%u002e"
// and overlong UTF-8 ("%c0%ae"), some servers fold Unicode to its
// compatibility form ("\uff0e" is "."), decode twice ("%252e") or take a
// backslash for a slash. So the path under the base is allowed, not
// screened: each segment holds only characters that read the same to all
// of them (checkPath), and anything else is refused.

import RULES from "./capability-rules.json" with { type: "json" };

// ORIGIN is the origin a guest's relative URL is resolved against.
export const ORIGIN = "http://capability.invalid";

// The longest URL recorded for a refused call.
const MAX_RECORDED_URL = 2048;

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
  if (!url.pathname.startsWith(root.pathname)) return refuse("the URL is not under the capability's base", shown);
  const why = checkPath(url.pathname.slice(root.pathname.length));
  if (why !== null) return refuse(why, shown);
  url.hash = "";
  return { url, shown };
}

function refuse(why, shown) {
  return { why, shown: String(shown).slice(0, MAX_RECORDED_URL) };
}

// The characters a path segment under the base may hold as they are: RFC
// 3986's unreserved characters (letters, digits, -._~), its
// sub-delimiters but ";" (!$&'()*+,=), and ":" and "@".
const PLAIN = RULES.pathPlain;

// The ASCII characters a segment may hold percent-encoded: those not plain
// that no decoding makes a separator (/ \), a dot, a path parameter (;), a
// query or fragment (? #), another escape (%) or a control character. A
// plain character percent-encoded is refused too: a server that decodes it
// reads another path than the one checked.
const ESCAPABLE = RULES.pathEscapable;

const plainTable = new Uint8Array(128);
for (const c of PLAIN) plainTable[c.charCodeAt(0)] = 1;
const escapableTable = new Uint8Array(128);
for (const c of ESCAPABLE) escapableTable[c.charCodeAt(0)] = 1;

// A non-ASCII character, percent-encoded as UTF-8, must be a letter, a mark
// or a digit: no Unicode dot, slash, space or invisible character.
const WORDLIKE = /^[\p{L}\p{M}\p{N}]$/u;

const utf8 = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });

// The longest segment quoted in a refusal.
const MAX_QUOTED = 64;

// checkPath returns why rest (the path under the base) is refused, or null.
// Its segments are not empty (a server may merge "//"; the last may be, a
// trailing "/"), not all dots, and hold only PLAIN characters and
// percent-escapes: of an ESCAPABLE character, or of a non-ASCII character
// in valid shortest-form UTF-8 that is WORDLIKE; and the segment, decoded,
// is its own NFKC form, so no server folding Unicode reads it otherwise.
export function checkPath(rest) {
  const segments = rest.split("/");
  for (let i = 0; i < segments.length; i++) {
    const segment = segments[i];
    if (segment === "" && i === segments.length - 1) continue;
    const why = checkSegment(segment);
    if (why !== null) return `path segment ${JSON.stringify(segment.slice(0, MAX_QUOTED))}: ${why}`;
  }
  return null;
}

function checkSegment(segment) {
  if (segment === "") return "an empty segment (//) is not allowed";
  if (/^\.+$/.test(segment)) return "a segment of dots is not allowed";
  let decoded = "";
  for (let i = 0; i < segment.length;) {
    const c = segment.charCodeAt(i);
    if (c !== 0x25) {
      if (c >= 128 || plainTable[c] === 0) return `${JSON.stringify(segment[i])} is not allowed (${ALLOWED})`;
      decoded += segment[i++];
      continue;
    }
    const bytes = [];
    for (; i < segment.length && segment.charCodeAt(i) === 0x25; i += 3) {
      const hex = segment.slice(i + 1, i + 3);
      if (!/^[0-9A-Fa-f]{2}$/.test(hex)) return `"%" must begin an escape of two hex digits (${ALLOWED})`;
      bytes.push(parseInt(hex, 16));
    }
    const text = decodeEscapes(bytes);
    if (text === null) return `an escape of a character that is not allowed (${ALLOWED})`;
    decoded += text;
  }
  if (decoded.normalize("NFKC") !== decoded) return "its characters change under Unicode compatibility folding (NFKC)";
  return null;
}

const ALLOWED = `allowed: letters, digits, ${PLAIN.replace(/[A-Za-z0-9]/g, "")} and percent-escapes of ${ESCAPABLE.trim()}, space or non-ASCII letters and digits in UTF-8`;

// decodeEscapes decodes one run of percent-escaped bytes, or returns null
// if one of them is not allowed.
function decodeEscapes(bytes) {
  let out = "";
  for (let j = 0; j < bytes.length;) {
    if (bytes[j] < 0x80) {
      if (escapableTable[bytes[j]] === 0) return null;
      out += String.fromCharCode(bytes[j++]);
      continue;
    }
    let end = j;
    while (end < bytes.length && bytes[end] >= 0x80) end++;
    let text;
    try {
      text = utf8.decode(new Uint8Array(bytes.slice(j, end)));
    } catch {
      return null; // not UTF-8, or not in shortest form (overlong)
    }
    for (const ch of text) if (!WORDLIKE.test(ch)) return null;
    out += text;
    j = end;
  }
  return out;
}
