// Which hosts guest code may reach. The gateway validates allowOutbound host
// lists with the same rules (internal/egress); both are checked against
// internal/egress/testdata/hosts.json. workerd's network service denies the
// same ranges again after DNS resolution, so a name that resolves to a
// private address is refused there.

const BLOCKED_V4 = [
  ["0.0.0.0", 8], ["10.0.0.0", 8], ["100.64.0.0", 10], ["127.0.0.0", 8], ["169.254.0.0", 16],
  ["172.16.0.0", 12], ["192.0.0.0", 24], ["192.0.2.0", 24], ["192.168.0.0", 16], ["198.18.0.0", 15],
  ["198.51.100.0", 24], ["203.0.113.0", 24], ["224.0.0.0", 4], ["240.0.0.0", 4],
].map(([a, bits]) => [v4ToInt(a.split(".").map(Number)), bits]);

const BLOCKED_V6 = [
  ["::", 128], ["::1", 128], ["::ffff:0:0", 96], ["64:ff9b::", 96], ["100::", 64], ["2001:db8::", 32],
  ["fc00::", 7], ["fe80::", 10], ["ff00::", 8],
].map(([a, bits]) => [parseIPv6(a), bits]);

const INTERNAL_SUFFIXES = [".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan", ".intranet", ".corp"];

function v4ToInt(parts) {
  return ((parts[0] << 24) | (parts[1] << 16) | (parts[2] << 8) | parts[3]) >>> 0;
}

function parseIPv4(host) {
  const m = /^(\d{1,3})\.(\d{1,3})\.(\d{1,3})\.(\d{1,3})$/.exec(host);
  if (!m) return null;
  const parts = m.slice(1).map(Number);
  return parts.every((p) => p <= 255) ? v4ToInt(parts) : null;
}

// parseIPv6 returns the eight 16-bit groups of an IPv6 address, or null.
function parseIPv6(text) {
  let s = text;
  const v4 = /(\d+\.\d+\.\d+\.\d+)$/.exec(s);
  let tail = [];
  if (v4) {
    const n = parseIPv4(v4[1]);
    if (n === null) return null;
    tail = [n >>> 16, n & 0xffff];
    s = s.slice(0, -v4[1].length) + (s.endsWith("::" + v4[1]) ? "" : "0");
    if (s.endsWith(":0")) s = s.slice(0, -2);
    if (s === "") s = "::";
  }
  const halves = s.split("::");
  if (halves.length > 2) return null;
  const parse = (h) => (h === "" ? [] : h.split(":").map((g) => (/^[0-9a-f]{1,4}$/i.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]);
  const rest = halves.length === 2 ? parse(halves[1]) : [];
  const want = 8 - tail.length;
  let groups;
  if (halves.length === 2) {
    const fill = want - head.length - rest.length;
    if (fill < 0) return null;
    groups = [...head, ...new Array(fill).fill(0), ...rest];
  } else {
    groups = head;
  }
  groups = [...groups, ...tail];
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return null;
  return groups;
}

function inV6Prefix(groups, [prefix, bits]) {
  for (let i = 0; i < 8 && bits > 0; i++, bits -= 16) {
    const mask = bits >= 16 ? 0xffff : (0xffff << (16 - bits)) & 0xffff;
    if ((groups[i] & mask) !== (prefix[i] & mask)) return false;
  }
  return true;
}

function checkV4(n) {
  for (const [net, bits] of BLOCKED_V4) {
    const mask = bits === 0 ? 0 : (0xffffffff << (32 - bits)) >>> 0;
    if (((n & mask) >>> 0) === net) return "is not a public address";
  }
  return null;
}

// checkHost says why a URL's hostname (as new URL() gives it: lower case,
// IPv4 canonical, IPv6 in brackets) can never be reached, or returns null.
export function checkHost(hostname) {
  let host = hostname.toLowerCase();
  if (host.endsWith(".")) host = host.slice(0, -1);
  if (host.startsWith("[") && host.endsWith("]")) {
    const groups = parseIPv6(host.slice(1, -1).replace(/%.*$/, ""));
    if (groups === null) return "is not a valid address";
    if (groups.slice(0, 6).every((g, i) => g === (i === 5 ? 0xffff : 0))) {
      const why = checkV4(((groups[6] << 16) | groups[7]) >>> 0);
      if (why) return why;
    }
    for (const p of BLOCKED_V6) if (inV6Prefix(groups, p)) return "is not a public address";
    return null;
  }
  const v4 = parseIPv4(host);
  if (v4 !== null) return checkV4(v4);
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

// decide applies an execution's outbound policy to a URL: null if allowed,
// else why not. policy: { hosts: ["*"] | [patterns], deny: [own addresses] }.
export function decide(url, policy) {
  if (url.protocol !== "http:" && url.protocol !== "https:") return `${url.protocol} is not allowed`;
  const why = checkHost(url.hostname);
  if (why) return `${url.hostname} ${why}`;
  if ((policy.deny ?? []).includes(url.hostname.replace(/^\[|\]$/g, ""))) return `${url.hostname} is the gateway itself`;
  if (!policy.hosts.some((p) => matches(p, url.hostname))) return `${url.hostname} is not in allowOutbound`;
  return null;
}
