// The shim's routes, at the root and under a path prefix.
import { test } from "node:test";
import assert from "node:assert/strict";
import { routeOf, sign, verify } from "../src/auth.js";

test("routes are served at the root and under any prefix", () => {
  const cases = [
    ["/run", "/run"],
    ["/verify", "/verify"],
    ["/health", "/health"],
    ["/gw/run", "/run"],
    ["/gw/verify", "/verify"],
    ["/team/gw/stats", "/stats"],
    ["/", null],
    ["/gw", null],
    ["/gw/run/", null],
    ["/runner", null],
    ["/gw/run/x", null],
    ["/gw/Run", null],
  ];
  for (const [path, want] of cases) {
    assert.equal(routeOf(path), want, path);
  }
});

test("a call signed for /gw/run is accepted there, and at no other prefix", async () => {
  const secret = "0123456789abcdef0123456789abcdef";
  const body = new TextEncoder().encode("{}");
  const now = 1_800_000_400;
  const signedFor = async (path, url, nonce) => {
    const headers = new Headers({ "x-gateway-timestamp": String(now), "x-gateway-nonce": nonce });
    headers.set("x-gateway-signature", await sign(secret, "POST", path, String(now), nonce, body));
    return new Request(url, { method: "POST", headers });
  };
  assert.equal(await verify(await signedFor("/gw/run", "https://x.example/gw/run", "p-1"), body, secret, now * 1000), null);
  for (const [i, url] of ["https://x.example/run", "https://x.example/other/run", "https://x.example/gw/gw/run"].entries()) {
    assert.match(await verify(await signedFor("/gw/run", url, `p-moved-${i}`), body, secret, now * 1000), /does not match/, url);
  }
});
