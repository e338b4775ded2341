// The shim's verification of the gateway's signed calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { admit, MAX_JOB_BYTES, replayCacheSize, sign, verify } from "../src/auth.js";
import CAPS from "../src/caps.json" with { type: "json" };

const secret = "0123456789abcdef0123456789abcdef";
const body = new TextEncoder().encode('{"id":"x"}');

test("sign matches the gateway's Go implementation", async () => {
  // The same vector as TestSignatureVector in internal/loader.
  assert.equal(
    await sign(secret, "POST", "/run", "1700000000", "nonce-1", body),
    "d1c9bd351d4173c031fa26e6c35d16a4a42423ca801593b97224ac8bb22d3c43",
  );
});

async function signed(nowSeconds, nonce, signBody = body, key = secret) {
  const headers = new Headers({ "x-gateway-timestamp": String(nowSeconds), "x-gateway-nonce": nonce });
  headers.set("x-gateway-signature", await sign(key, "POST", "/run", String(nowSeconds), nonce, signBody));
  return new Request("http://shim/run", { method: "POST", headers });
}

test("verify accepts a signed call once", async () => {
  const now = 1_800_000_000;
  const req = await signed(now, "n-accept");
  assert.equal(await verify(req, body, secret, now * 1000), null);
  assert.match(await verify(req, body, secret, now * 1000 + 10), /replayed/);
});

test("the replay cache drops expired signatures and only those", async () => {
  const start = 1_900_000_000;
  const calls = [];
  for (let i = 0; i < 200; i++) {
    const req = await signed(start, `n-cache-${i}`);
    assert.equal(await verify(req, body, secret, start * 1000 + i), null);
    calls.push(req);
  }
  // Within the window every one of them is still refused as a replay.
  assert.match(await verify(calls[0], body, secret, start * 1000 + 500), /replayed/);
  assert.match(await verify(calls[199], body, secret, start * 1000 + 500), /replayed/);
  // Two windows later they have all expired: one new call leaves one entry.
  const later = start + 2 * 60 + 1;
  assert.equal(await verify(await signed(later, "n-cache-later"), body, secret, later * 1000), null);
  assert.equal(replayCacheSize(), 1);
});

test("verify refuses bad calls", async () => {
  const now = 1_800_000_000;
  assert.match(await verify(new Request("http://shim/run", { method: "POST" }), body, secret, now * 1000), /not signed/);
  assert.match(await verify(await signed(now - 120, "n-stale"), body, secret, now * 1000), /time window/);
  assert.match(await verify(await signed(now, "n-key", body, "f".repeat(32)), body, secret, now * 1000), /does not match/);
  const tampered = new TextEncoder().encode('{"id":"y"}');
  assert.match(await verify(await signed(now, "n-body"), tampered, secret, now * 1000), /does not match/);
  assert.match(await verify(await signed(now, "n-short"), body, "short", now * 1000), /SHIM_SECRET/);
});

// A body that fails the test if anything reads it.
function untouchable() {
  const read = { pulls: 0 };
  const stream = new ReadableStream({
    pull() {
      read.pulls++;
      throw new Error("the body was read");
    },
  }, { highWaterMark: 0 }); // pulled only when something reads it
  return { stream, read };
}

function call(headers, body) {
  return new Request("http://shim/run", { method: "POST", headers, body, duplex: "half" });
}

async function signedHeaders(now, nonce, signBody, extra = {}) {
  return {
    "x-gateway-timestamp": String(now),
    "x-gateway-nonce": nonce,
    "x-gateway-signature": await sign(secret, "POST", "/run", String(now), nonce, signBody),
    ...extra,
  };
}

test("admit refuses before reading the body", async () => {
  const now = 1_800_000_000;
  const forged = { "x-gateway-timestamp": String(now), "x-gateway-nonce": "n", "x-gateway-signature": "ab".repeat(32) };
  const cases = [
    { name: "unsigned, 400 MB declared", headers: { "content-length": String(400 << 20) }, status: 401 },
    { name: "unsigned, no length", headers: {}, status: 401 },
    { name: "no nonce", headers: { ...forged, "x-gateway-nonce": "", "content-length": "10" }, status: 401 },
    { name: "signature not hex", headers: { ...forged, "x-gateway-signature": "zz".repeat(32), "content-length": "10" }, status: 401 },
    { name: "signature too short", headers: { ...forged, "x-gateway-signature": "ab", "content-length": "10" }, status: 401 },
    { name: "stale", headers: { ...forged, "x-gateway-timestamp": String(now - 3600), "content-length": "10" }, status: 401 },
    { name: "timestamp not a number", headers: { ...forged, "x-gateway-timestamp": "1e9", "content-length": "10" }, status: 401 },
    { name: "no length (chunked)", headers: forged, status: 411 },
    { name: "length not a number", headers: { ...forged, "content-length": "-1" }, status: 400 },
    { name: "over the cap", headers: { ...forged, "content-length": String(400 << 20) }, status: 413 },
    { name: "just over the cap", headers: { ...forged, "content-length": "1025" }, status: 413 },
  ];
  for (const c of cases) {
    const { stream, read } = untouchable();
    const request = call(new Headers(c.headers), stream);
    const got = await admit(request, secret, 1024, now * 1000);
    assert.equal(got.status, c.status, `${c.name}: ${JSON.stringify(got)}`);
    assert.equal(read.pulls, 0, `${c.name}: the body was read`);
  }
});

test("admit reads a signed body of its declared length and checks it", async () => {
  const now = 1_800_000_100;
  const ok = await admit(call(await signedHeaders(now, "a-1", body, { "content-length": String(body.length) }), body), secret, 1024, now * 1000);
  assert.deepEqual(ok.body, body);
  // A well-formed but wrong signature is refused once the body is read.
  const wrong = await admit(call(await signedHeaders(now, "a-2", new Uint8Array([1]), { "content-length": String(body.length) }), body), secret, 1024, now * 1000);
  assert.equal(wrong.status, 401);
  assert.match(wrong.message, /does not match/);
  // A body longer than its declared length is not read past it.
  const long = new ReadableStream({
    start(c) {
      c.enqueue(body);
      c.enqueue(new Uint8Array(1 << 20));
      c.close();
    },
  });
  const over = await admit(call(await signedHeaders(now, "a-3", body, { "content-length": String(body.length) }), long), secret, 1024, now * 1000);
  assert.equal(over.status, 400);
});

test("the body cap is the gateway's own, from caps.json", () => {
  assert.equal(MAX_JOB_BYTES, CAPS.maxJobBytes);
  assert.equal(MAX_JOB_BYTES, 32 << 20);
});

test("during a rotation the current and the previous secret are accepted, no third", async () => {
  const now = 1_800_000_200;
  const current = "c".repeat(32);
  const previous = "p".repeat(32);
  const secrets = [current, previous];
  const cases = [
    { name: "the current secret", key: current, want: null },
    { name: "the previous secret", key: previous, want: null },
    { name: "a third secret", key: "t".repeat(32), want: /does not match/ },
    { name: "the previous secret's prefix", key: previous.slice(0, 31) + "q", want: /does not match/ },
  ];
  for (const [i, c] of cases.entries()) {
    const got = await verify(await signed(now, `n-rotate-${i}`, body, c.key), body, secrets, now * 1000);
    if (c.want === null) assert.equal(got, null, c.name);
    else assert.match(got ?? "accepted", c.want, c.name);
  }
  // Once the previous secret is deleted, it is refused; so is one too short
  // to have been a secret the gateway accepts.
  assert.match(await verify(await signed(now, "n-rotate-gone", body, previous), body, [current, undefined], now * 1000), /does not match/);
  assert.match(await verify(await signed(now, "n-rotate-short", body, "s".repeat(8)), body, [current, "s".repeat(8)], now * 1000), /does not match/);
  // A call signed with the previous secret is a replay the second time too.
  const req = await signed(now, "n-rotate-replay", body, previous);
  assert.equal(await verify(req, body, secrets, now * 1000), null);
  assert.match(await verify(req, body, secrets, now * 1000), /replayed/);
});

test("admit takes the previous secret through to the body's signature", async () => {
  const now = 1_800_000_300;
  const previous = "p".repeat(32);
  const headers = {
    "x-gateway-timestamp": String(now),
    "x-gateway-nonce": "a-prev",
    "x-gateway-signature": await sign(previous, "POST", "/run", String(now), "a-prev", body),
    "content-length": String(body.length),
  };
  const ok = await admit(call(headers, body), [secret, previous], 1024, now * 1000);
  assert.deepEqual(ok.body, body);
  const refused = await admit(call({ ...headers, "x-gateway-nonce": "a-prev" }, body), [secret, undefined], 1024, now * 1000);
  assert.equal(refused.status, 401);
});
