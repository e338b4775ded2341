// The shim's line splitter: linear in the bytes it is given (counted, not
// timed: worker/bench/lines.mjs times it), and a line over the cap is
// refused before it is complete.
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

// work splits one line of bytes, fed in chunks of chunk bytes, and counts
// the bytes any Uint8Array's indexOf scanned and set copied meanwhile: the
// splitter's work, whatever buffers it makes.
function work(bytes, chunk) {
  const line = new Uint8Array(bytes + 1).fill(0x5c); // "\\\\\\..." as an escaped JSON line would be
  line[bytes] = 0x0a;
  const s = new LineSplitter(bytes);
  const count = { scanned: 0, copied: 0 };
  const { indexOf, set } = Uint8Array.prototype;
  Uint8Array.prototype.indexOf = function (value, from = 0) {
    const at = indexOf.call(this, value, from);
    count.scanned += (at < 0 ? this.length : at + 1) - Math.max(from, 0);
    return at;
  };
  Uint8Array.prototype.set = function (source, offset) {
    count.copied += source.length;
    return set.call(this, source, offset);
  };
  let got;
  try {
    for (let i = 0; i < line.length; i += chunk) got = s.push(line.subarray(i, i + chunk));
  } finally {
    Object.assign(Uint8Array.prototype, { indexOf, set });
  }
  assert.equal(got.length, 1);
  assert.equal(got[0].length, bytes);
  return count;
}

test("LineSplitter scans each byte once and copies a line once: linear in the bytes", () => {
  // workerd hands the shim the wrapper's stream in chunks of a few KB.
  for (const [bytes, chunk] of [[6 << 20, 4096], [1 << 20, 4096], [8 << 20, 4096], [1 << 20, 1], [100000, 7]]) {
    const { scanned, copied } = work(bytes, chunk);
    assert.equal(scanned, bytes + 1, `${bytes} bytes in chunks of ${chunk}: scanned ${scanned}`);
    assert.equal(copied, bytes, `${bytes} bytes in chunks of ${chunk}: copied ${copied}`);
  }
});
