// Method overrides a capability call carries in its query or its form body
// (capability.js), kept apart so node tests can load it. Rails (Rack's
// MethodOverride), Laravel and Symfony take a POST's method from a
// parameter named _method: `_method=DELETE` in a form body (or, for
// Laravel and Symfony, in the query) makes a DELETE of it, past the
// capability's methods. The shim cannot see inside every body a service
// may read parameters from (Laravel also reads JSON bodies), but where it
// can see it refuses a _method whose value is not one of the capability's
// methods: in the query of any call, and in a body the service would read
// as a form (application/x-www-form-urlencoded, multipart/form-data, or no
// Content-Type at all, which Rack reads as a form), read whole up to a
// bound.
//
// A parameter's name is read as loosely as any of those servers might:
// "+" and percent-escapes (also "%u" ones, also escaped twice) decoded,
// bytes decoded as UTF-8 allowing overlong forms, folded to NFKC and lower
// case, trimmed; and as PHP names its variables: " ", "." and "[" read as
// "_", "[...]" after the name (an array) and what follows a NUL dropped.

// OVERRIDE is the parameter's name, as the servers spell it.
const OVERRIDE = "_method";

// The longest value quoted in a refusal.
const MAX_QUOTED = 32;

// queryOverride returns why the query (a URL's search, "?" and all)
// carries a method override that is not one of methods, or null.
export function queryOverride(search, methods) {
  return paramsOverride(search.startsWith("?") ? search.slice(1) : search, methods);
}

// isForm reports whether a service may read a body with this Content-Type
// (null: none) as form parameters.
export function isForm(contentType) {
  return contentType === null || contentType.trim() === "" || /form|multipart/i.test(contentType);
}

// formOverride returns why a form body (bytes, its Content-Type
// contentType, null if none) carries a method override that is not one of
// methods, or cannot be read for one; or null.
export function formOverride(contentType, bytes, methods) {
  const params = parameters(contentType ?? "");
  const charset = params.get("charset");
  if (charset !== undefined && (charset.length !== 1 || !/^(utf-?8|us-ascii|iso-8859-1)$/i.test(charset[0]))) {
    return `a form body in charset ${JSON.stringify(charset.join(",").slice(0, MAX_QUOTED))} cannot be checked for ${OVERRIDE}`;
  }
  const text = binary(bytes);
  if (!/multipart/i.test(contentType ?? "")) return paramsOverride(text, methods);
  const boundary = params.get("boundary");
  if (boundary === undefined || boundary.length !== 1 || !/^[0-9A-Za-z'()+_,\-./:=? ]{0,69}[0-9A-Za-z'()+_,\-./:=?]$/.test(boundary[0])) {
    return `a multipart body without one plain boundary cannot be checked for ${OVERRIDE}`;
  }
  for (const { names, value } of multipartFields(text, boundary[0])) {
    for (const name of names) {
      const why = check(name, value, methods);
      if (why !== null) return why;
    }
  }
  return null;
}

// paramsOverride checks every name=value pair of text, split on "&" and
// ";" (older Rack and Python split on both).
function paramsOverride(text, methods) {
  if (text === "") return null;
  for (const pair of text.split(/[&;]/)) {
    const eq = pair.indexOf("=");
    const why = eq < 0 ? check(pair, "", methods) : check(pair.slice(0, eq), pair.slice(eq + 1), methods);
    if (why !== null) return why;
  }
  return null;
}

// check returns why a parameter named name (still encoded) with value is
// an override that is not one of methods, or null.
function check(name, value, methods) {
  if (!isOverride(name)) return null;
  const method = loose(value).trim().toUpperCase();
  if (methods.includes(method)) return null;
  return `${OVERRIDE} ${JSON.stringify(method.slice(0, MAX_QUOTED))} is not an allowed method (allowed: ${methods.join(", ")})`;
}

// isOverride reports whether a server might read name as _method.
export function isOverride(name) {
  let n = loose(name).toLowerCase().trim();
  const nul = n.indexOf("\0");
  if (nul >= 0) n = n.slice(0, nul).trim();
  const forms = [n, n.split("[")[0]];
  for (const f of forms) {
    if (f === OVERRIDE || f.replace(/[ .[]/g, "_") === OVERRIDE) return true;
  }
  return false;
}

// loose decodes s as loosely as a server might: "+" as a space, "%XX" and
// "%uXXXX" escapes, again while that changes it (an escape escaped), bytes
// as UTF-8 allowing overlong forms, then folded to NFKC.
function loose(s) {
  let bytes = s;
  for (let round = 0; round < 4; round++) {
    const next = bytes.replace(/\+/g, " ").replace(/%u([0-9a-fA-F]{4})|%([0-9a-fA-F]{2})/g, (_, u, x) =>
      u !== undefined ? binary(new TextEncoder().encode(String.fromCharCode(parseInt(u, 16)))) : String.fromCharCode(parseInt(x, 16)));
    if (next === bytes) break;
    bytes = next;
  }
  return looseUTF8(bytes).normalize("NFKC");
}

// looseUTF8 decodes a string of bytes (char codes below 256) as UTF-8,
// taking overlong forms for the character they spell (as Java and IIS
// decoders once did: "\xc0\xae" is "."); a byte that begins no sequence
// stands for itself.
function looseUTF8(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length;) {
    const b = bytes.charCodeAt(i);
    const n = b >= 0xf0 && b < 0xf8 ? 3 : b >= 0xe0 && b < 0xf0 ? 2 : b >= 0xc0 && b < 0xe0 ? 1 : 0;
    let cp = n === 3 ? b & 0x07 : n === 2 ? b & 0x0f : n === 1 ? b & 0x1f : b;
    let j = 1;
    for (; j <= n && i + j < bytes.length && (bytes.charCodeAt(i + j) & 0xc0) === 0x80; j++) {
      cp = (cp << 6) | (bytes.charCodeAt(i + j) & 0x3f);
    }
    if (j !== n + 1 || cp > 0x10ffff) {
      out += String.fromCharCode(b);
      i++;
      continue;
    }
    out += String.fromCodePoint(cp);
    i += j;
  }
  return out;
}

// binary is bytes as a string of char codes below 256.
function binary(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length; i += 8192) out += String.fromCharCode.apply(null, bytes.subarray(i, i + 8192));
  return out;
}

// parameters reads a Content-Type's or Content-Disposition's parameters:
// name (lower case) -> every value given for it, unquoted.
function parameters(header) {
  const params = new Map();
  const re = /;\s*([^=;\s]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;]*)/g;
  for (const [, key, raw] of header.matchAll(re)) {
    const name = key.toLowerCase();
    const value = raw.startsWith('"') ? raw.slice(1, -1).replace(/\\(.)/g, "$1") : raw.trim();
    if (!params.has(name)) params.set(name, []);
    params.get(name).push(value);
  }
  return params;
}

// multipartFields returns each part of a multipart body (a string of
// bytes) as {names, value}: every name its Content-Disposition gives it
// (name, name* of RFC 2231, an RFC 2047 encoded word decoded) and its body.
function multipartFields(text, boundary) {
  const fields = [];
  const pieces = text.split("--" + boundary);
  // Every piece after a delimiter, also after the closing one: a lenient
  // parser may read on past it.
  for (const piece of pieces.slice(1)) {
    const start = piece.search(/\r?\n/);
    if (start < 0) continue;
    const rest = piece.slice(start).replace(/^\r?\n/, "");
    const split = rest.search(/\r?\n\r?\n/);
    const head = split < 0 ? rest : rest.slice(0, split);
    const value = split < 0 ? "" : rest.slice(split).replace(/^\r?\n\r?\n/, "").replace(/\r?\n$/, "");
    const names = [];
    for (const line of head.replace(/\r?\n[ \t]+/g, " ").split(/\r?\n/)) {
      const colon = line.indexOf(":");
      if (colon < 0 || line.slice(0, colon).trim().toLowerCase() !== "content-disposition") continue;
      const params = parameters(line.slice(colon + 1));
      for (const v of params.get("name") ?? []) names.push(encodedWord(v));
      for (const v of params.get("name*") ?? []) names.push(v.replace(/^[^']*'[^']*'/, ""));
    }
    fields.push({ names, value });
  }
  return fields;
}

// encodedWord decodes an RFC 2047 encoded word (=?charset?B?...?= or
// ?Q?), which some multipart parsers read in names; else returns s.
function encodedWord(s) {
  const m = /^=\?[^?]*\?([bq])\?([^?]*)\?=$/i.exec(s.trim());
  if (m === null) return s;
  if (m[1].toLowerCase() === "b") {
    try {
      return atob(m[2]);
    } catch {
      return s;
    }
  }
  return m[2].replace(/_/g, " ").replace(/=([0-9a-fA-F]{2})/g, (_, x) => String.fromCharCode(parseInt(x, 16)));
}
