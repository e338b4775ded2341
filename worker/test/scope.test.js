// Which URLs lie under a capability's base: placed there, or refused.
import { test } from "node:test";
import assert from "node:assert/strict";
import { place, ORIGIN } from "../src/scope.js";

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
