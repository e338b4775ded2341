// Checks the shim's outbound rules against the vectors the gateway's Go
// package (internal/egress) is tested with, so both sides agree.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { checkHost, matches, decide } from "../src/egress.js";

const vectors = JSON.parse(readFileSync(new URL("../../internal/egress/testdata/hosts.json", import.meta.url)));

// The shim sees hosts as new URL() normalizes them.
const hostnameOf = (host) => new URL(`http://${host}/`).hostname;

for (const { host, blocked } of vectors.hosts) {
  test(`checkHost(${host})`, () => {
    assert.equal(checkHost(hostnameOf(host)) !== null, blocked, `normalized: ${hostnameOf(host)}`);
  });
}

for (const { pattern, host, match } of vectors.matches) {
  test(`matches(${pattern}, ${host})`, () => {
    assert.equal(matches(pattern, hostnameOf(host)), match);
  });
}

test("decide applies the policy", () => {
  const policy = { hosts: ["api.example.com", "*.cdn.example"], deny: ["203.0.114.9"] };
  assert.equal(decide(new URL("https://api.example.com/x"), policy), null);
  assert.equal(decide(new URL("https://a.cdn.example/"), policy), null);
  assert.match(decide(new URL("https://other.example.com/"), policy), /not in allowOutbound/);
  assert.match(decide(new URL("http://127.0.0.1:8080/"), { hosts: ["*"] }), /not a public address/);
  assert.match(decide(new URL("http://203.0.114.9/"), { hosts: ["*"], deny: ["203.0.114.9"] }), /gateway itself/);
  assert.match(decide(new URL("ftp://example.com/"), { hosts: ["*"] }), /not allowed/);
});
