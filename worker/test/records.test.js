// The shim's check of the records the capture wrapper writes from inside the
// guest's isolate: every spelling outside the contract is refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { parseRecord, recordCap, MAX_ERROR_TEXT } from "../src/records.js";

const opts = { maxResponseBytes: 1000, maxLogLineBytes: 100 };

const valid = [
  { t: "log", level: "log", message: "hi" },
  { t: "log", level: "error", message: "x".repeat(100), truncated: true },
  { t: "log", level: "info", message: "m", ms: 1767225600000 },
  { t: "log", level: "warn", message: "", ms: 0 },
  { t: "response", status: 200, headers: {}, body: "ok", bodyEncoding: "utf8" },
  { t: "response", status: 200, headers: { "clé": "ключ", "a b": "x" }, body: "", bodyEncoding: "utf8" },
  { t: "response", status: 599, headers: { "content-type": "text/plain", "x-a": "1, 2" }, body: "AP8=", bodyEncoding: "base64", truncated: false, logsTruncated: true, warm: true },
  { t: "error", code: "exception", name: "TypeError", message: "bad", stack: "TypeError: bad\n    at main.js:1:1" },
  { t: "error", code: "output_limit", message: "" },
];

test("parseRecord accepts every record of the contract", () => {
  const protoHeader = '{"t":"response","status":404,"headers":{"__proto__":"v"},"body":"b","bodyEncoding":"utf8"}';
  assert.equal(parseRecord(protoHeader, opts).headers["__proto__"], "v");
  for (const r of valid) {
    const line = JSON.stringify(r);
    assert.deepEqual(parseRecord(line, opts), JSON.parse(line), line);
  }
});

const response = { t: "response", status: 200, headers: {}, body: "ok", bodyEncoding: "utf8" };
const error = { t: "error", code: "exception", message: "m" };
const log = { t: "log", level: "log", message: "m" };

// Each malformed record: a valid one with one member changed, added or removed.
const malformed = [
  ...["", "Log", "result", "ping", "net", "response ", null, 1, true, ["log"], { t: "log" }].map((t) => ({ ...log, t })),
  ...["trace", "LOG", "", "fatal", null, 0, ["log"]].map((level) => ({ ...log, level })),
  ...[1, null, true, ["m"], { toString: "m" }, "x".repeat(101)].map((message) => ({ ...log, message })),
  ...[1, "true", null, "yes"].map((truncated) => ({ ...log, truncated })),
  ...["1767225600000", 1.5, 2 ** 53, -(2 ** 53), null, true, 1e309, NaN, [1], { ms: 1 }].map((ms) => ({ ...log, ms })),
  ...[0, 100, 101, 199, 600, 999, -200, 200.5, "200", null, true, 1e309, NaN].map((status) => ({ ...response, status })),
  ...[null, "a: b", ["a", "b"], { a: 1 }, { a: null }, { a: ["x"] }, { "": "x" }, { "a\nb": "x" }, { "a\r": "x" }, { "\0": "x" }, { a: "x\r\ny: z" }, { a: "x\n" }, { a: "\0" }].map((headers) => ({ ...response, headers })),
  ...["", "UTF8", "utf-8", "hex", "base32", "binary", "Base64", null, 1].map((bodyEncoding) => ({ ...response, bodyEncoding })),
  ...[1, null, ["ok"], { s: "ok" }, "b".repeat(1001)].map((body) => ({ ...response, body })),
  ...["AP8", "AP8*", "A===", "QUJD\n", "QU JD", "Q".repeat(1340)].map((body) => ({ ...response, body, bodyEncoding: "base64" })),
  ...["warm", "truncated", "logsTruncated"].flatMap((k) => [1, "true", null].map((v) => ({ ...response, [k]: v }))),
  ...["Exception", "unknown", "runtime_crashed", "runtime_unavailable", "secret-value", "", null, 1, ["exception"], "exception "].map((code) => ({ ...error, code })),
  ...[null, 1, "n".repeat(257)].map((name) => ({ ...error, name })),
  ...[null, 1, undefined, "m".repeat(MAX_ERROR_TEXT + 1)].map((message) => ({ ...error, message })),
  ...[null, 1, "s".repeat(MAX_ERROR_TEXT + 1)].map((stack) => ({ ...error, stack })),
  // members outside the contract
  { ...response, outbound: [] },
  { ...response, outbound: [{ method: "GET", url: "http://x/" }] },
  { ...error, outbound: [] },
  { ...response, status: 200, type: "result" },
  { ...log, stream: "stdout" },
  { ...log, time: "now" },
  { ...response, ms: 1 },
  { ...error, ms: 1 },
  { ...error, response: response },
  { ...response, statusText: "OK" },
  { ...response, toJSON: "x" },
];

test("parseRecord refuses malformed records", () => {
  assert.ok(malformed.length > 100, `only ${malformed.length} cases`);
  for (const r of malformed) {
    const line = JSON.stringify(r);
    assert.equal(parseRecord(line, opts), null, line.slice(0, 200));
  }
});

test("parseRecord refuses what is not one JSON object", () => {
  const lines = ["", " ", "null", "1", '"log"', "[]", '[{"t":"log"}]', "{", '{"t":"log","level":"log","message":"m"} x',
    '{"t":"log","level":"log","message":"m"}{"t":"log"}', "undefined", "{t:'log'}", '{"__proto__":{"t":"log","level":"log","message":"m"}}'];
  for (const line of lines) assert.equal(parseRecord(line, opts), null, line);
});

test("parseRecord refuses members the record inherits", () => {
  // JSON.parse makes "__proto__" an own member: it is not the record's prototype.
  const line = '{"t":"response","status":200,"headers":{},"body":"ok","bodyEncoding":"utf8","__proto__":{"outbound":[]}}';
  assert.equal(parseRecord(line, opts), null);
});

test("recordCap leaves room for a body escaped in full", () => {
  const big = { maxResponseBytes: 1 << 20, maxLogLineBytes: 65536 };
  const body = "\x01".repeat(1 << 20);
  const line = JSON.stringify({ t: "response", status: 200, headers: {}, body, bodyEncoding: "utf8" });
  assert.ok(line.length <= recordCap(big), `${line.length} > ${recordCap(big)}`);
  assert.notEqual(parseRecord(line, big), null);
});
