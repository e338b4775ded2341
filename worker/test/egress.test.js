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

// A capability's host is reached only through its binding: a guest allowed
// "*" (or that names the host) is refused it by a plain fetch, in every
// spelling of the host the URL parser lets through.
test("decide refuses capabilities' hosts in any spelling", () => {
  const policy = { hosts: ["*"], denyHosts: ["internal-api.example.com", "93.184.216.7", "2606:4700::7"] };
  const attacks = [
    "https://internal-api.example.com/v1",
    "https://INTERNAL-API.example.com/",
    "https://internal-api.example.com./",
    "https://internal-api.example.com../",
    "http://internal-api.example.com:8443/",
    "https://user:pw@internal-api.example.com/",
    "https://internal-api%2Eexample.com/",
    "https://ｉnternal-api.example.com/",
    "https://93.184.216.7/",
    "https://0x5d.0xb8.0xd8.0x7/",
    "https://1572395015/",
    "https://93.184.216.7./",
    "https://[2606:4700:0:0:0:0:0:7]/",
    "https://[2606:4700::0007]/",
  ];
  for (const raw of attacks) {
    assert.match(decide(new URL(raw), policy) ?? "allowed", /capability's host/, raw);
  }
  assert.equal(decide(new URL("https://api.example.com/"), policy), null);
  assert.equal(decide(new URL("https://internal-api.example.com.evil.net/"), policy), null);
  assert.match(decide(new URL("https://internal-api.example.com/"), { hosts: ["internal-api.example.com"], denyHosts: policy.denyHosts }), /capability's host/);
});
