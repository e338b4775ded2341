// The deny ranges (src/deny-ranges.json, shared with the gateway) and the
// IPv6 spellings that embed an IPv4 address, checked both as a guest writes
// them and as new URL() normalizes them before the shim sees them.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { checkHost, deniedBy, decide } from "../src/egress.js";
import DENY_RANGES from "../src/deny-ranges.json" with { type: "json" };

const vectors = JSON.parse(readFileSync(new URL("../../internal/egress/testdata/hosts.json", import.meta.url)));
const hostnameOf = (host) => new URL(`http://${host}/`).hostname;

test("every deny range has a blocked test vector inside it", () => {
  const covered = new Set();
  for (const { host, blocked } of vectors.hosts) {
    if (!blocked) continue;
    for (const r of deniedBy(hostnameOf(host)) ?? []) covered.add(r.cidr);
  }
  const missing = DENY_RANGES.ranges.filter((r) => !covered.has(r.cidr)).map((r) => r.cidr);
  assert.deepEqual(missing, [], "ranges without a vector in internal/egress/testdata/hosts.json");
});

test("every range parses and has a reason", () => {
  for (const { cidr, reason } of DENY_RANGES.ranges) {
    const [addr] = cidr.split("/");
    const host = addr.includes(":") ? `[${addr}]` : addr;
    assert.ok(reason, cidr);
    assert.ok(deniedBy(host)?.some((r) => r.cidr === cidr), `${cidr}: its own network address is not inside it`);
  }
});

// A vector written in brackets reaches the shim as new URL() writes it, but
// checkHost must read the guest's own spelling the same way.
for (const { host, blocked } of vectors.hosts.filter((v) => v.host.startsWith("["))) {
  test(`raw ${host} reads as its URL form ${hostnameOf(host)}`, () => {
    assert.equal(checkHost(host) !== null, blocked, checkHost(host) ?? "allowed");
    const raw = deniedBy(host).map((r) => r.cidr);
    assert.deepEqual(raw, deniedBy(hostnameOf(host)).map((r) => r.cidr));
  });
}

// embeddings spell an IPv4 address (as four bytes) inside IPv6 forms.
const hex = (b, i) => ((b[i] << 8) | b[i + 1]).toString(16);
const embeddings = {
  "IPv4-compatible": (d, b) => [`::${d}`, `::${hex(b, 0)}:${hex(b, 2)}`, `0:0:0:0:0:0:${d}`, `0000:0000:0000:0000:0000:0000:${hex(b, 0).padStart(4, "0")}:${hex(b, 2).padStart(4, "0")}`],
  "IPv4-mapped": (d, b) => [`::ffff:${d}`, `::ffff:${hex(b, 0)}:${hex(b, 2)}`, `0:0:0:0:0:ffff:${d}`, `0::ffff:${hex(b, 0)}:${hex(b, 2)}`],
  SIIT: (d, b) => [`::ffff:0:${d}`, `::ffff:0:${hex(b, 0)}:${hex(b, 2)}`, `0:0:0:0:ffff:0:${d}`, `0:0:0:0:ffff:0000:${hex(b, 0)}:${hex(b, 2)}`],
  NAT64: (d, b) => [`64:ff9b::${d}`, `64:ff9b::${hex(b, 0)}:${hex(b, 2)}`, `64:ff9b:0:0:0:0:${d}`],
  "NAT64 local": (d, b) => [`64:ff9b:1::${d}`, `64:ff9b:1::${hex(b, 0)}:${hex(b, 2)}`, `64:ff9b:1:0:0:0:${d}`],
  "6to4": (d, b) => [`2002:${hex(b, 0)}:${hex(b, 2)}::`, `2002:${hex(b, 0)}:${hex(b, 2)}::1`, `2002:${hex(b, 0)}:${hex(b, 2)}:0:0:0:0:0`, `2002:${hex(b, 0)}:${hex(b, 2)}::${d}`],
  Teredo: (d, b) => [`2001:0:${hex(b, 0)}:${hex(b, 2)}::`, `2001::${d}`, `2001:0000:${hex(b, 0)}:${hex(b, 2)}:0:0:0:1`],
};
const inner = ["127.0.0.1", "10.0.0.1", "169.254.169.254", "192.168.1.1", "0.0.0.0", "8.8.8.8"];

for (const [name, spell] of Object.entries(embeddings)) {
  test(`${name} spellings are denied, raw and normalized`, () => {
    for (const d of inner) {
      const b = d.split(".").map(Number);
      for (const form of spell(d, b)) {
        for (const host of [`[${form}]`, `[${form.toUpperCase()}]`, hostnameOf(`[${form}]`)]) {
          assert.match(checkHost(host) ?? "allowed", /not a public address/, host);
          assert.match(decide(new URL(`http://${host}:8080/`), { hosts: ["*"] }) ?? "allowed", /not a public address/, host);
        }
      }
    }
  });
}

test("new URL() writes embedded IPv4 as hex; both forms are the same address", () => {
  assert.equal(hostnameOf("[::127.0.0.1]"), "[::7f00:1]");
  assert.equal(hostnameOf("[::ffff:0:127.0.0.1]"), "[::ffff:0:7f00:1]");
  assert.equal(hostnameOf("[0:0:0:0:0:FFFF:7F00:0001]"), "[::ffff:7f00:1]");
  assert.deepEqual(deniedBy("[::127.0.0.1]"), deniedBy("[::7f00:1]"));
});

test("malformed IPv6 literals are refused, not read as names", () => {
  for (const host of ["[1::2::3]", "[::ffff:1.2.3]", "[::ffff:256.0.0.1]", "[::ffff:1.2.3.4.5]", "[1:2:3:4:5:6:7:8:9]",
    "[1:2:3:4:5:6:7:8::]", "[12345::]", "[:1::]", "[1::2:]", "[::g]", "[1.2.3.4::]", "[]", "[::1.2.3.4:5]"]) {
    assert.equal(checkHost(host), "is not a valid address", host);
  }
});

test("public IPv6 addresses next to the ranges stay reachable", () => {
  for (const host of ["[2003::1]", "[2001:4860:4860::8888]", "[2606:4700:4700::1111]", "[2001:3::1]", "[3fff:1000::1]"]) {
    assert.equal(checkHost(host), null, host);
  }
});

test("the gateway's own address is denied however it is spelt", () => {
  const policy = { hosts: ["*"], deny: ["2606:4700::6810:84e5", "93.184.216.34"] };
  for (const u of ["http://[2606:4700:0:0:0:0:6810:84e5]/", "http://[2606:4700::6810:84E5]:8080/", "http://[2606:4700::104.16.132.229]/",
    "http://93.184.216.34/", "http://1572395042/", "http://0x5d.0xb8.0xd8.0x22/"]) {
    assert.match(decide(new URL(u), policy) ?? "allowed", /gateway itself/, u);
  }
  assert.equal(decide(new URL("http://[2606:4700::6810:84e6]/"), policy), null);
});
