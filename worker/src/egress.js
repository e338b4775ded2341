// Which hosts guest code may reach. The gateway validates allowOutbound host
// lists with the same rules (internal/egress) and the same deny ranges
// (deny-ranges.json, which it also embeds); both are checked against
// internal/egress/testdata/hosts.json. workerd's network service denies the
// same ranges again after DNS resolution, so a name that resolves to a
// private address is refused there.

import DENY_RANGES from "./deny-ranges.json" with { type: "json" };

const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"];

function v4ToInt(parts) {
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

// parseIPv4 parses dotted-decimal a.b.c.d (as new URL() writes IPv4, and as
// the last 32 bits of an IPv6 address may be written) to a 32-bit number.
function parseIPv4(host) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? v4ToInt(parts) : null;
}

// parseIPv6 returns the eight 16-bit groups of an IPv6 address in any of
// its spellings (hex in either case, leading zeros, "::" compression, the
// last 32 bits as dotted IPv4: ::127.0.0.1, ::ffff:0:127.0.0.1), or null.
function parseIPv6(text) {
  const halves = text.split("::");
  if (halves.length > 2) return null;
  const split = (h) => (h === "" ? [] : h.split(":"));
  const head = split(halves[0]);
  const tail = halves.length === 2 ? split(halves[1]) : head;
  const last = tail[tail.length - 1];
  if (last !== undefined && last.includes(".")) {
    const n = parseIPv4(last);
    if (n === null) return null;
    tail.splice(tail.length - 1, 1, (n >>> 16).toString(16), (n & 0xffff).toString(16));
  }
  const groups = halves.length === 2 ? [...head, ...new Array(Math.max(0, 8 - head.length - tail.length)).fill("0"), ...tail] : head;
  if (groups.length !== 8 || (halves.length === 2 && head.length + tail.length > 7)) return null;
  if (!groups.every((g) => /^[0-9a-f]{1,4}$/i.test(g))) return null;
  return groups.map((g) => parseInt(g, 16));
}

// The deny ranges: IPv4 networks as numbers, IPv6 networks as eight groups.
const BLOCKED_V4 = [];
const BLOCKED_V6 = [];
for (const { cidr, reason } of DENY_RANGES.ranges) {
  const [addr, bits] = cidr.split("/");
  const v6 = addr.includes(":");
  const net = v6 ? parseIPv6(addr) : parseIPv4(addr);
  if (net === null) throw new Error(`deny-ranges.json: bad range ${cidr}`);
  (v6 ? BLOCKED_V6 : BLOCKED_V4).push({ cidr, reason, net, bits: Number(bits) });
}

function inV4({ net, bits }, n) {
  const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
  return ((n & mask) >>> 0) === net;
}

function inV6({ net, bits }, groups) {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i] & mask) !== (net[i] & mask)) return false;
  }
  return true;
}

// addressOf parses a URL hostname that is an address literal (IPv4, or
// IPv6 in brackets, zone dropped): a number, eight groups, or null.
function addressOf(host) {
  if (host.startsWith("[") && host.endsWith("]")) return parseIPv6(host.slice(1, -1).replace(/%.*$/, ""));
  return parseIPv4(host);
}

// deniedBy returns the deny ranges ({cidr, reason}) holding the address a
// URL hostname names (IPv4, or IPv6 in brackets; an IPv4-mapped address
// also by the ranges of the IPv4 address inside), [] for a public address,
// or null if hostname is not an address literal.
export function deniedBy(hostname) {
  const addr = addressOf(hostname.toLowerCase());
  if (addr === null) return null;
  if (typeof addr === "number") return BLOCKED_V4.filter((r) => inV4(r, addr));
  const out = BLOCKED_V6.filter((r) => inV6(r, addr));
  if (addr.slice(0, 6).every((g, i) => g === (i === 5 ? 0xffff : 0))) {
    const v4 = ((addr[6] << 16) | addr[7]) >>> 0;
    out.push(...BLOCKED_V4.filter((r) => inV4(r, v4)));
  }
  return out;
}

// checkHost says why a URL's hostname (as new URL() gives it: lower case,
// IPv4 canonical, IPv6 in brackets) can never be reached, or returns null.
export function checkHost(hostname) {
  let host = hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  const ranges = deniedBy(host);
  if (ranges !== null) return ranges.length === 0 ? null : `is not a public address (${ranges[0].cidr}: ${ranges[0].reason})`;
  if (host.startsWith("[")) return "is not a valid address";
  if (/^[0-9.]+$/.test(host) || /(^|\.)0x[0-9a-f]*$/.test(host)) return "is not a valid address";
  if (host === "" || host === "localhost" || !host.includes(".")) return "names a local host";
  for (const suffix of INTERNAL_SUFFIXES) {
    if (host.endsWith(suffix)) return "names a local or internal host";
  }
  return null;
}

// matches reports whether host matches an allowOutbound pattern: "*", an
// exact name, or "*.suffix" (subdomains of suffix, not suffix itself).
export function matches(pattern, hostname) {
  let host = hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (pattern === "*") return true;
  if (pattern.startsWith("*.")) return host.endsWith(pattern.slice(1)) && host.length > pattern.length - 1;
  return host === pattern;
}

// sameAddress reports whether a URL hostname is the address addr (as Go
// writes it: IPv6 without brackets), however either is spelt.
function sameAddress(hostname, addr) {
  const a = addressOf(hostname.toLowerCase());
  const b = addressOf(addr.includes(":") ? `[${addr}]` : addr);
  if (a === null || b === null) return hostname.replace(/^\[|\]$/g, "") === addr;
  return String(a) === String(b);
}

// sameHost reports whether a URL hostname names host (a capability's, as
// Go writes it: lower case, no trailing dot, IPv6 without brackets), in
// any case, with or without trailing dots, an address in any spelling.
function sameHost(hostname, host) {
  const h = hostname.toLowerCase().replace(/\.+$/, "");
  return h === host || sameAddress(h, host);
}

// decide applies an execution's outbound policy to a URL: null if allowed,
// else why not. policy: { hosts: ["*"] | [patterns], deny: [own addresses],
// denyHosts: [capability hosts] }.
export function decide(url, policy) {
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${url.protocol} is not allowed`;
  if ((policy.denyHosts ?? []).some((host) => sameHost(url.hostname, host))) {
    return `${url.hostname} is a capability's host: call it through its binding`;
  }
  const why = checkHost(url.hostname);
  if (why) return `${url.hostname} ${why}`;
  if ((policy.deny ?? []).some((addr) => sameAddress(url.hostname, addr))) return `${url.hostname} is the gateway itself`;
  if (!policy.hosts.some((p) => matches(p, url.hostname))) return `${url.hostname} is not in allowOutbound`;
  return null;
}
