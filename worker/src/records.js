// The contract of the records the capture wrapper writes from inside the
// guest's isolate (guest/__dw_wrapper.js), one JSON object per line:
//
//   {"t":"log","level":"log","message":"...","truncated":true?,"ms":1767225600000?}
//   {"t":"response","status":200,"headers":{...},"body":"...","bodyEncoding":"utf8",
//    "truncated":false?,"logsTruncated":true?,"warm":true?}
//   {"t":"error","code":"exception","name":"Error"?,"message":"...","stack":"..."?,
//    "logsTruncated":true?,"warm":true?}
//   {"t":"return","value":<any JSON>?,"logsTruncated":true?,"warm":true?}
//
// A return record ends an execution whose code returned something other
// than a Response (a plain script's value, or nothing): value is that value,
// absent when it was undefined.
//
// A log's ms is when the guest logged it (the isolate's Date.now); the shim
// takes it only within the execution's span.
//
// The wrapper runs in the guest's realm, so the shim treats what it writes as
// hostile data: parseRecord checks each line against this contract (types,
// fixed sets, sizes; no other members) before anything is forwarded. Kept
// apart from index.js so node tests can load it.

import CAPS from "./caps.json" with { type: "json" };
import CONTRACT from "./contract.json" with { type: "json" };

// The console levels and error codes a record may carry: those the gateway
// takes from the shim (contract.json, which the gateway reads too).
export const LEVELS = new Set(Object.keys(CONTRACT.levelStreams));
export const ERROR_CODES = new Set(CONTRACT.errorCodes);

// The longest error name, message and stack the wrapper sends (UTF-16 units).
export const MAX_ERROR_NAME = CAPS.maxErrorName;
export const MAX_ERROR_TEXT = CAPS.maxErrorText;
// What a console line costs against the log budget besides its own length.
export const LOG_LINE_COST = CAPS.logLineCost;

// Room a response record needs besides its body: its headers and the rest.
const RECORD_OVERHEAD = 1 << 20;

// recordCap is the longest line a well-formed record can take: a body of
// maxResponseBytes where every byte is escaped as \u00XX (6 bytes), plus room
// for headers. A longer line is refused before it is parsed.
export function recordCap(opts) {
  return 6 * Math.max(opts.maxResponseBytes, opts.maxLogLineBytes, MAX_ERROR_TEXT * 2) + RECORD_OVERHEAD;
}

const MEMBERS = {
  log: new Set(["t", "level", "message", "truncated", "ms"]),
  response: new Set(["t", "status", "headers", "body", "bodyEncoding", "truncated", "logsTruncated", "warm"]),
  error: new Set(["t", "code", "name", "message", "stack", "logsTruncated", "warm"]),
  return: new Set(["t", "value", "logsTruncated", "warm"]),
};

// Header names are whatever the runtime's Headers accepted (workerd takes
// some that are not RFC 9110 tokens, "clé" say); they only ever travel as
// JSON keys, so a name or value need only be free of line breaks and NUL.
const BAD_HEADER_TEXT = /[\r\n\0]/;
const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/;

function isPlainObject(v) {
  return v !== null && typeof v === "object" && !Array.isArray(v);
}

function optionalBoolean(v) {
  return v === undefined || typeof v === "boolean";
}

function text(v, max) {
  return typeof v === "string" && v.length <= max;
}

function validHeaders(headers) {
  if (!isPlainObject(headers)) return false;
  for (const name of Object.keys(headers)) {
    const value = headers[name];
    if (name === "" || BAD_HEADER_TEXT.test(name) || typeof value !== "string" || BAD_HEADER_TEXT.test(value)) return false;
  }
  return true;
}

function validBody(body, encoding, max) {
  if (typeof body !== "string") return false;
  if (encoding === "utf8") return body.length <= max;
  if (encoding === "base64") {
    return body.length <= 4 * Math.ceil(max / 3) && body.length % 4 === 0 && BASE64.test(body);
  }
  return false;
}

const checks = {
  log: (r, opts) => LEVELS.has(r.level) && text(r.message, opts.maxLogLineBytes) && optionalBoolean(r.truncated) &&
    (r.ms === undefined || Number.isSafeInteger(r.ms)),
  response: (r, opts) => Number.isInteger(r.status) && r.status >= 200 && r.status <= 599 &&
    validHeaders(r.headers) && validBody(r.body, r.bodyEncoding, opts.maxResponseBytes) &&
    optionalBoolean(r.truncated) && optionalBoolean(r.logsTruncated) && optionalBoolean(r.warm),
  error: (r) => ERROR_CODES.has(r.code) && (r.name === undefined || text(r.name, MAX_ERROR_NAME)) &&
    text(r.message, MAX_ERROR_TEXT) && (r.stack === undefined || text(r.stack, MAX_ERROR_TEXT)) &&
    optionalBoolean(r.logsTruncated) && optionalBoolean(r.warm),
  // The line is at most recordCap long, so the value is bounded; the
  // wrapper keeps its JSON within maxResponseBytes.
  return: (r, opts) => (r.value === undefined || JSON.stringify(r.value).length <= 6 * opts.maxResponseBytes) &&
    optionalBoolean(r.logsTruncated) && optionalBoolean(r.warm),
};

// parseRecord parses one line the wrapper wrote and returns the record if it
// keeps the contract, else null. opts: {maxResponseBytes, maxLogLineBytes}.
export function parseRecord(line, opts) {
  let record;
  try {
    record = JSON.parse(line);
  } catch {
    return null;
  }
  if (!isPlainObject(record) || typeof record.t !== "string" || !Object.hasOwn(MEMBERS, record.t)) return null;
  const allowed = MEMBERS[record.t];
  for (const key of Object.keys(record)) {
    if (!allowed.has(key)) return null;
  }
  return checks[record.t](record, opts) ? record : null;
}
