// The shim's verification of the gateway's signed calls.
import { test } from "node:test";
import assert from "node:assert/strict";
import { sign, verify } from "../src/auth.js";

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

test("verify refuses bad calls", async () => {
  const now = 1_800_000_000;
  assert.match(await verify(new Request("http://shim/run", { method: "POST" }), body, secret, now * 1000), /not signed/);
  assert.match(await verify(await signed(now - 120, "n-stale"), body, secret, now * 1000), /time window/);
  assert.match(await verify(await signed(now, "n-key", body, "f".repeat(32)), body, secret, now * 1000), /does not match/);
  const tampered = new TextEncoder().encode('{"id":"y"}');
  assert.match(await verify(await signed(now, "n-body"), tampered, secret, now * 1000), /does not match/);
  assert.match(await verify(await signed(now, "n-short"), body, "short", now * 1000), /SHIM_SECRET/);
});
