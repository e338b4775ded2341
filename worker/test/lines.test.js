// The shim's line splitter: linear in the bytes it is given, and a line over
// the cap is refused before it is complete.
import { test } from "node:test";
import assert from "node:assert/strict";
import { LineSplitter, LineTooLong } from "../src/lines.js";

const enc = new TextEncoder();

function splitAll(text, chunkSize, cap = 1 << 30) {
  const bytes = enc.encode(text);
  const s = new LineSplitter(cap);
  const out = [];
  for (let i = 0; i < bytes.length; i += chunkSize) {
    const got = s.push(bytes.subarray(i, i + chunkSize));
    if (got === LineTooLong) return LineTooLong;
    out.push(...got);
  }
  return out;
}

test("LineSplitter splits at every chunk size, multi-byte characters included", () => {
  const lines = ["", "a", "héllo wörld", "€".repeat(50), "😀 x 😀", "{\"t\":\"log\"}", "z".repeat(300)];
  const text = lines.join("\n") + "\n";
  for (const size of [1, 2, 3, 5, 7, 64, 1000, text.length * 4]) {
    assert.deepEqual(splitAll(text, size), lines, `chunk size ${size}`);
  }
});

test("LineSplitter keeps an unfinished line until its newline", () => {
  const s = new LineSplitter(100);
  assert.deepEqual(s.push(enc.encode("abc")), []);
  assert.deepEqual(s.push(enc.encode("def\ngh")), ["abcdef"]);
  assert.deepEqual(s.push(enc.encode("\n")), ["gh"]);
});

test("LineSplitter refuses a line over the cap as soon as it passes it", () => {
  for (const size of [1, 10, 99, 100, 101, 1000]) {
    assert.deepEqual(splitAll("x".repeat(100) + "\n", size, 100), ["x".repeat(100)], `at the cap, chunk ${size}`);
    const s = new LineSplitter(100);
    const first = s.push(enc.encode("y".repeat(Math.min(size, 100))));
    assert.deepEqual(first, []);
    // One more byte than the cap, with no newline yet: refused now.
    assert.equal(s.push(enc.encode("y".repeat(101 - Math.min(size, 100)))), LineTooLong, `chunk ${size}`);
  }
  assert.equal(splitAll("ok\n" + "x".repeat(101) + "\n", 7, 100), LineTooLong);
});

function timeLine(bytes, chunk) {
  const line = new Uint8Array(bytes + 1).fill(0x5c); // "\\\\\\..." as an escaped JSON line would be
  line[bytes] = 0x0a;
  const s = new LineSplitter(bytes);
  const start = performance.now();
  let got;
  for (let i = 0; i < line.length; i += chunk) got = s.push(line.subarray(i, i + chunk));
  const ms = performance.now() - start;
  assert.equal(got.length, 1);
  assert.equal(got[0].length, bytes);
  return ms;
}

test("LineSplitter splits a 6 MB line in milliseconds, and linearly", () => {
  // workerd hands the shim the wrapper's stream in chunks of a few KB.
  const ms6 = timeLine(6 << 20, 4096);
  assert.ok(ms6 < 1000, `a 6 MB line took ${ms6} ms`);
  // The best of three runs each, to keep a busy machine's noise out.
  const best = (bytes) => Math.min(...[0, 1, 2].map(() => timeLine(bytes, 4096)));
  const ms1 = Math.max(best(1 << 20), 1);
  const ms8 = best(8 << 20);
  // Linear: 8x the bytes costs about 8x the time. Quadratic would be 64x;
  // the bound is wide for a busy machine.
  assert.ok(ms8 < ms1 * 32, `1 MB: ${ms1} ms, 8 MB: ${ms8} ms`);
});
