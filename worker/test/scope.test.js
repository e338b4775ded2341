// Which URLs lie under a capability's base: placed there, or refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { place, checkPath, ORIGIN } from "../src/scope.js";

const BASE = "http://10.0.3.7:9000/api/";

// What the guest's binding sends for a relative URL: resolved against the
// stand-in origin plus the base path, by the runtime's URL parser.
const relative = (u) => new URL(u, ORIGIN + "/api/").href;

test("URLs under the base are placed there", () => {
  const cases = [
    [relative("items/1"), "/api/items/1"],
    [relative("./items/2?q=a%20b"), "/api/items/2?q=a%20b"],
    [relative("/api/items/3#frag"), "/api/items/3"],
    [relative("items/4/../5"), "/api/items/5"],
    ["http://10.0.3.7:9000/api/items/6", "/api/items/6"],
    ["HTTP://10.0.3.7:9000/api/items/7", "/api/items/7"],
    ["http://10.0.3.7:9000/api/", "/api/"],
  ];
  for (const [raw, path] of cases) {
    const placed = place(raw, BASE);
    assert.equal(placed.why, undefined, `${raw}: ${placed.why}`);
    assert.equal(placed.url.href, "http://10.0.3.7:9000" + path, raw);
    assert.equal(placed.shown, path, raw);
  }
});

test("every spelling of a URL outside the base is refused", () => {
  const outside = [
    relative("../admin"), relative("/admin"), relative("/api"), relative(".."), relative("../api2/x"),
    relative("items/..%2f..%2fadmin"), relative("items%2F..%2F..%2Fadmin"), relative("%2e%2e/admin"),
    relative("items/%2E%2E/%2e%2e/admin"), relative("..\\admin"), relative("items\\..\\..\\admin"),
    relative("items/%5c..%5cadmin"), relative("items/%252e%252e/admin"), relative("x%00y"),
    relative("//evil.example/api/x"), ORIGIN + "//evil.example/api/x", ORIGIN + "//", ORIGIN + "//api/x",
    "http://10.0.3.7:9000/admin", "http://10.0.3.7:9000/api", "http://10.0.3.7:9000/apix/",
    "https://10.0.3.7:9000/api/x", "http://10.0.3.7:9001/api/x", "http://10.0.3.7/api/x",
    "http://10.0.3.8:9000/api/x", "http://evil.example/api/x", "http://10.0.3.7:9000@evil.example/api/x",
    "http://10.0.3.7@evil.example:9000/api/x", "http://user:pw@10.0.3.7:9000/api/x", "http://u@10.0.3.7:9000/api/x",
    "http://[::ffff:10.0.3.7]:9000/api/x", "http://0x0a000307:9000/api/x".replace("0x0a000307", "167969543"),
    ORIGIN.replace("http:", "https:") + "/api/x", "http://user@capability.invalid/api/x",
    "file:///etc/passwd", "data:text/plain,x", "not a url",
  ];
  for (const raw of outside) {
    const placed = place(raw, BASE);
    assert.ok(placed.why, `${raw} was placed at ${placed.url}`);
    assert.equal(placed.url, undefined);
    assert.ok(placed.shown.length <= 2048);
  }
});

test("a base without a path takes everything on its host, and only that", () => {
  assert.equal(place(new URL("anything", ORIGIN + "/").href, "http://svc.example/").shown, "/anything");
  assert.equal(place("http://svc.example/x/y", "http://svc.example/").url.href, "http://svc.example/x/y");
  assert.equal(place("http://svc.example.evil/x", "http://svc.example/").why, "the URL is not under the capability's base");
});

// Every combination of up to four pieces that path tricks are made of,
// relative and after the base's origin: whatever place accepts is on the
// base's origin, under its path, free of encoded separators, and reads the
// same when the service parses it again.
test("generated spellings never leave the base", () => {
  const pieces = ["..", ".", "%2e", "%2E%2e", "%2f", "%5C", "\\", "/", "api", "x", "@", ":", "evil.example", "?", "#", "%25", ";", "//", "%00"];
  const root = new URL(BASE);
  let accepted = 0;
  const visit = (prefix, depth) => {
    // A relative URL the parser refuses fails in the guest's binding.
    const rel = URL.canParse(prefix, ORIGIN + "/api/") ? [relative(prefix)] : [];
    for (const raw of [...rel, "http://10.0.3.7:9000/" + prefix, "http://10.0.3.7:9000" + prefix, ORIGIN + "/" + prefix]) {
      let placed;
      try {
        placed = place(raw, BASE);
      } catch (err) {
        assert.fail(`place(${raw}) threw ${err}`);
      }
      if (placed.url === undefined) continue;
      accepted++;
      const u = placed.url;
      assert.equal(u.origin, root.origin, raw);
      assert.ok(u.pathname.startsWith(root.pathname), `${raw} -> ${u.href}`);
      assert.ok(!/%(2f|5c|2e|25|00)/i.test(u.pathname) && !u.pathname.includes("\\"), `${raw} -> ${u.href}`);
      assert.equal(new URL(u.href).pathname, u.pathname, raw);
    }
    if (depth === 0) return;
    for (const p of pieces) visit(prefix + p, depth - 1);
  };
  visit("", 4);
  assert.ok(accepted > 1000, `only ${accepted} accepted: the generator is not reaching the base`);
});

// Spellings that a common server reads as another path than the URL
// parser's, each family in several spellings: all refused, though every
// one of them lies under the base as the parser reads it.
const normalisedAway = {
  "path parameters (Tomcat, Jetty, Spring drop ;...)": ["..;/admin", "items/..;/..;/admin", "..;x=1/admin", "x;jsessionid=1", ";/admin", "%2e%2e;/admin", "items/.;/x"],
  "%u escapes (IIS)": ["%u002e%u002e/admin", "%U002E%u002E/admin", "items/%u2215admin", "%u005c..%u005cadmin", "x%u0025"],
  "overlong UTF-8": ["%c0%ae%c0%ae/admin", "%C0%AE%C0%AE/admin", "%e0%80%ae%e0%80%ae/admin", "%f0%80%80%ae./admin", "items%c0%afadmin", "%c1%9c..%c1%9cadmin"],
  "Unicode dots and slashes (NFKC, best fit)": ["．．/admin", "%EF%BC%8E%EF%BC%8E/admin", "items%EF%BC%8F..%EF%BC%8Fadmin", "%E2%80%A4%E2%80%A4/admin",
    "items%E2%88%95admin", "items%EF%BC%BCadmin", "%E3%80%82%E3%80%82/admin", "%EF%B9%92%EF%B9%92/admin", "items%C2%A5admin", "%E2%80%A5/admin", "％２ｅ％２ｅ/admin"],
  "escapes of characters that are not safe": ["%3B/admin", "x%3Fy", "x%23y", "x%00y", "x%0Ay", "x%09y", "x%7Fy", "x%2Dy", "%41dmin", "x%2Cy", "x%2Ey"],
  "escapes escaped": ["%252e%252e/admin", "%25%32%65%25%32%65/admin", "%255c", "x%25"],
  "empty and dot-only segments": ["a//b", "...", "..../admin", "items//..//admin"],
  "invisible and combining characters": ["%EF%BB%BFadmin", "x%E2%80%8By", "x%E2%80%AEy", "cafe%CC%81", "x%E2%84%AAy", "x%C2%A0y", "%EF%AC%81le"],
  "characters outside the set": ["a|b", "a[0]", "a^b", "a\u0001b".replace("\u0001", "%01")],
};

test("spellings a common server reads otherwise are refused, family by family", () => {
  for (const [family, spellings] of Object.entries(normalisedAway)) {
    assert.ok(spellings.length >= 3, `${family}: at least three spellings`);
    for (const s of spellings) {
      for (const raw of [relative(s), relative("items/" + s), "http://10.0.3.7:9000/api/" + s]) {
        const placed = place(raw, BASE);
        assert.ok(placed.why, `${family}: ${raw} was placed at ${placed.url}`);
        assert.equal(placed.url, undefined);
      }
    }
  }
});

test("paths of safe characters and allowed escapes are placed as they are", () => {
  for (const s of ["caf%C3%A9", "%E6%97%A5%E6%9C%AC/x", "a%20b", "a%7Cb", "v1/things:batchGet", "~user", "x@y", "a.b.c", "items/",
    "a!$&'()*+,=b", "%D9%A1%D9%A2", "x-y_z", "%22q%22", "%5B0%5D", "%7B%7D"]) {
    const placed = place(relative(s), BASE);
    assert.equal(placed.why, undefined, `${s}: ${placed.why}`);
    assert.equal(placed.url.pathname, "/api/" + s);
  }
  assert.equal(checkPath(""), null, "the base itself");
});

// How servers behind a capability may read a path, as far as it concerns
// where it lands: each reading returns the path's segments. The shim's own
// reading is strict: split on "/", then each segment decoded once.
const strictly = (p) => p.split("/").map(decodeURIComponent);

function looseUTF8(bytes) {
  let out = "";
  for (let i = 0; i < bytes.length;) {
    const b = bytes[i];
    const n = b >= 0xf0 ? 3 : b >= 0xe0 ? 2 : b >= 0xc0 ? 1 : 0;
    let cp = n === 3 ? b & 7 : n === 2 ? b & 15 : n === 1 ? b & 31 : b;
    let j = 1;
    for (; j <= n && (bytes[i + j] & 0xc0) === 0x80; j++) cp = (cp << 6) | (bytes[i + j] & 63);
    if (j !== n + 1) {
      out += String.fromCharCode(b);
      i++;
    } else {
      out += String.fromCodePoint(cp);
      i += j;
    }
  }
  return out;
}

// lenient decodes %XX (and, with u, %uXXXX) as old Java and IIS decoders
// did: overlong UTF-8 taken for the character it spells.
function lenient(s, u = false) {
  const t = u ? s.replace(/%u([0-9a-f]{4})/gi, (_, h) => encodeURIComponent(String.fromCharCode(parseInt(h, 16)))) : s;
  const bytes = [];
  for (let i = 0; i < t.length; i++) {
    if (t[i] === "%" && /^[0-9a-f]{2}$/i.test(t.slice(i + 1, i + 3))) {
      bytes.push(parseInt(t.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      bytes.push(...new TextEncoder().encode(t[i]));
    }
  }
  return looseUTF8(bytes);
}

// resolved is a decoded path as a server that then splits it on "/" and
// "\", merges empty segments and removes dot segments reads it.
function resolved(decoded) {
  const out = [];
  for (const s of decoded.split(/[\\/]/)) {
    if (s === "" || s === ".") continue;
    if (s === "..") out.pop();
    else out.push(s);
  }
  return out;
}

const readings = {
  tomcat: (p) => resolved(lenient(p.split("/").map((s) => s.split(";")[0]).join("/"))),
  iis: (p) => resolved(lenient(p, true)),
  twice: (p) => resolved(lenient(lenient(p))),
  nfkc: (p) => resolved(lenient(p).normalize("NFKC")),
  bestFit: (p) => resolved(lenient(p).replace(/[\u2215\uff0f\u2044]/g, "/").replace(/[\uff3c\u00a5\u20a9]/g, "\\").replace(/[\uff0e\u2024\ufe52]/g, ".")),
};

// Every combination of up to three pieces of path tricks: whatever place
// accepts reads, to every server above, as the same segments under the
// base as it reads to the shim.
test("what is placed reads the same to every server's normalisation", () => {
  const pieces = ["..", ".", ";", "%2e", "%u002e", "%c0%ae", "．", "%EF%BC%8E", "%E2%88%95", "%EF%BC%8F", "\\", "/", "%5c", "%252e",
    "%3B", "%41", "a", "é", "%C3%A9", "e%CC%81", "%20", ";x=1", "%7C", "//", "%00", "~", "%u2215"];
  const root = new URL(BASE);
  let accepted = 0;
  const visit = (prefix, depth) => {
    if (URL.canParse(prefix, ORIGIN + "/api/")) {
      const placed = place(relative(prefix), BASE);
      if (placed.url !== undefined) {
        accepted++;
        const rest = placed.url.pathname.slice(root.pathname.length);
        const want = ["api", ...strictly(rest).filter((s, i, all) => s !== "" || i < all.length - 1)];
        for (const [server, read] of Object.entries(readings)) {
          assert.deepEqual(read(placed.url.pathname), want, `${JSON.stringify(prefix)} -> ${placed.url.pathname} reads otherwise to ${server}`);
        }
      }
    }
    if (depth === 0) return;
    for (const p of pieces) visit(prefix + p, depth - 1);
  };
  visit("", 3);
  assert.ok(accepted > 300, `only ${accepted} accepted: the generator is not reaching the base`);
});
