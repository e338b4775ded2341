// Masking a capability's configured values in what its service answers:
// in text and headers, in a body read whole, and in a stream cut anywhere;
// the one-pass search checked against the plain scan it replaced, and the
// bound on an answer's length.
import { test } from "node:test";
import assert from "node:assert/strict";
import { maskText, maskHeaders, maskBody, maskBytes, matcher, MASK } from "../src/mask.js";

test("secrets are masked in text and headers, longest first", () => {
  const secrets = ["tok", "Bearer tok", "", null];
  assert.equal(maskText("auth=Bearer tok; again tok", secrets), `auth=${MASK}; again ${MASK}`);
  const h = maskHeaders(new Headers({ "x-echo": "Bearer tok", "x-tok": "plain" }), secrets);
  assert.equal(h.get("x-echo"), MASK);
  assert.equal(h.has("x-tok"), false);
  assert.equal([...h].length, 1);
});

async function readAll(stream) {
  const chunks = [];
  for await (const c of stream) chunks.push(...c);
  return new TextDecoder().decode(new Uint8Array(chunks));
}

function streamOf(parts) {
  const enc = new TextEncoder();
  return new ReadableStream({
    start(controller) {
      for (const p of parts) controller.enqueue(enc.encode(p));
      controller.close();
    },
  });
}

test("a body is masked also where a secret is split between chunks", async () => {
  const secret = "s3cr3t-value";
  const text = `a ${secret} b ${secret}${secret} c ü ${secret.slice(0, 5)} end ${secret}`;
  const want = text.split(secret).join(MASK);
  // Every way to cut the text in two and in three.
  for (let i = 0; i <= text.length; i++) {
    assert.equal(await readAll(maskBody(streamOf([text.slice(0, i), text.slice(i)]), [secret])), want, `cut at ${i}`);
    for (let j = i; j <= text.length; j += 3) {
      const parts = [text.slice(0, i), text.slice(i, j), text.slice(j)];
      assert.equal(await readAll(maskBody(streamOf(parts), [secret, "cr3"])), text.split(secret).join(MASK).split("cr3").join(MASK));
    }
  }
  // One byte at a time.
  assert.equal(await readAll(maskBody(streamOf([...text]), [secret])), want);
  assert.equal(maskBody(null, [secret]), null);
});

test("a body read whole is masked at once", () => {
  const enc = new TextEncoder();
  const dec = new TextDecoder();
  assert.equal(dec.decode(maskBytes(enc.encode("x tok y toktok"), ["tok"])), `x ${MASK} y ${MASK}${MASK}`);
  assert.equal(dec.decode(maskBytes(enc.encode("plain"), [])), "plain");
});

// reference is the scan the automaton replaced: at each position the
// longest secret starting there is masked, else the position is kept.
function reference(bytes, secrets) {
  const needles = [...new Set(secrets.filter((s) => typeof s === "string" && s !== ""))]
    .sort((a, b) => b.length - a.length).map((s) => new TextEncoder().encode(s));
  const out = [];
  for (let i = 0; i < bytes.length;) {
    const n = needles.find((x) => x.every((b, j) => bytes[i + j] === b));
    if (n === undefined) {
      out.push(bytes[i++]);
      continue;
    }
    out.push(...new TextEncoder().encode(MASK));
    i += n.length;
  }
  return new Uint8Array(out);
}

// random is a small deterministic generator (xorshift), so a failure
// repeats.
function random(seed) {
  let x = seed;
  return (n) => {
    x ^= x << 13;
    x ^= x >>> 17;
    x ^= x << 5;
    return (x >>> 0) % n;
  };
}

function bytesOf(stream) {
  return (async () => {
    const parts = [];
    for await (const c of stream) parts.push(...c);
    return new Uint8Array(parts);
  })();
}

function streamOfBytes(bytes, cuts) {
  return new ReadableStream({
    start(controller) {
      let from = 0;
      for (const to of [...cuts, bytes.length]) {
        controller.enqueue(bytes.slice(from, to));
        from = to;
      }
      controller.close();
    },
  });
}

// Secrets over a small alphabet overlap, nest and repeat; each case is
// masked whole and streamed in random cuts, and must equal the reference.
// Alphabets of 2 to 4 letters make anchors dense (the search falls back to
// the automaton); many secrets leave it no anchors at all; bytes past
// ASCII and a secret of one byte are among them.
test("masking agrees with the plain scan, whole and streamed, on generated text", async () => {
  for (let seed = 1; seed <= 400; seed++) {
    const r = random(seed * 2654435761);
    const alphabet = ["ab", "abc", "abcd", "aé", "xyzQ"][seed % 5];
    const word = (max) => Array.from({ length: 1 + r(max) }, () => alphabet[r(alphabet.length)]).join("");
    const secrets = Array.from({ length: 1 + r(seed % 7 === 0 ? 9 : 4) }, () => word(6));
    const text = new TextEncoder().encode(Array.from({ length: r(300) }, () => (r(5) === 0 ? secrets[r(secrets.length)] : word(3))).join(r(2) ? "" : "-"));
    const want = reference(text, secrets);
    assert.deepEqual(maskBytes(text, secrets), want, `seed ${seed}: whole`);
    const cuts = [...new Set(Array.from({ length: r(8) }, () => r(text.length + 1)))].sort((a, b) => a - b);
    const got = await bytesOf(maskBody(streamOfBytes(text, cuts), secrets));
    assert.deepEqual(got, want, `seed ${seed}: secrets ${JSON.stringify(secrets)} cut at ${cuts}`);
  }
});

test("data full of anchor bytes is masked all the same (the automaton takes over)", async () => {
  const secrets = ["ZZZa", "Zb"];
  const m = matcher(secrets);
  assert.ok(m.anchors !== null && m.anchors.some((a) => a.byte === "Z".charCodeAt(0)), "Z is an anchor");
  const text = new TextEncoder().encode("Z".repeat(5000) + "ZZZa" + "Zb".repeat(300) + "Z");
  assert.deepEqual(maskBytes(text, secrets), reference(text, secrets));
  assert.deepEqual(await bytesOf(maskBody(streamOfBytes(text, [100, 4001, 4003, 5002]), secrets)), reference(text, secrets));
  const many = Array.from({ length: 12 }, (_, i) => "secret-" + String.fromCharCode(65 + i) + i);
  assert.equal(matcher(many).anchors, null, "12 secrets of different anchors: the automaton alone");
  const t2 = new TextEncoder().encode(many.join(" and ") + " secret-A");
  assert.deepEqual(maskBytes(t2, many), reference(t2, many));
});

test("an answer past its bound ends with the bound's error, masked or not", async () => {
  for (const secrets of [["tok"], []]) {
    const body = streamOfBytes(new TextEncoder().encode("x".repeat(100) + "tok"), [40, 80]);
    const reader = maskBody(body, secrets, 90, (n) => `longer than ${n}`).getReader();
    const first = await reader.read();
    assert.equal(new TextDecoder().decode(first.value), "x".repeat(40));
    await reader.read();
    await assert.rejects(reader.read(), /longer than 90/);
  }
  const exact = await bytesOf(maskBody(streamOfBytes(new TextEncoder().encode("x".repeat(90)), [45]), ["tok"], 90));
  assert.equal(exact.length, 90, "an answer of exactly the bound passes");
});

test("a body without secrets or bound is passed as it is", () => {
  const body = new ReadableStream();
  assert.equal(maskBody(body, []), body);
});
