// The words the shim shares with the gateway come from contract.json, which
// the gateway reads too (worker.Contract): the shim's sources use no code,
// level, stream, marker or line type that is not there, and spell none of
// them a second time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import CONTRACT from "../src/contract.json" with { type: "json" };
import { ERROR_CODES, LEVELS, parseRecord } from "../src/records.js";
import { MASK } from "../src/mask.js";

const SRC = new URL("../src/", import.meta.url).pathname;

// sources maps each of the shim's JavaScript files (guest/ included) to its
// text without its comments: whole comment lines, and /* */ blocks that
// start a line.
function sources() {
  const out = {};
  for (const name of readdirSync(SRC, { recursive: true })) {
    if (!name.endsWith(".js")) continue;
    out[name] = readFileSync(join(SRC, name), "utf8")
      .replace(/^\s*\/\*[\s\S]*?\*\//gm, "")
      .split("\n").filter((line) => !/^\s*\/\//.test(line)).join("\n");
  }
  return out;
}

// CODE_SPOTS are where a source spells an error code: `code: "x"`,
// `code = "x"`, `code === "x"`, the wrapper's failure("x", …) and
// describeError(err, "x").
const CODE_SPOTS = [
  /\bcode\s*(?::|===?|!==?)\s*"([^"]*)"/g,
  /\bfailure\(\s*"([^"]*)"/g,
  /\bdescribeError\([^()]*,\s*"([^"]*)"\s*\)/g,
];

function spelledCodes(files) {
  const found = [];
  for (const [name, text] of Object.entries(files)) {
    for (const spot of CODE_SPOTS) {
      for (const m of text.matchAll(spot)) found.push({ name, code: m[1] });
    }
  }
  return found;
}

test("every error code the shim or the wrapper spells is one of contract.json's", () => {
  const found = spelledCodes(sources());
  for (const { name, code } of found) {
    assert.ok(CONTRACT.errorCodes.includes(code), `${name} spells the error code ${JSON.stringify(code)}, not in contract.json's errorCodes`);
  }
  // The scan sees the codes where they are spelled.
  const where = new Set(found.map(({ name, code }) => `${name} ${code}`));
  for (const spot of ["relay.js output_limit", "limits.js cpu_limit", "index.js syntax_error", "guest/__dw_wrapper.js invalid_module", "guest/__dw_wrapper.js exception"]) {
    assert.ok(where.has(spot), `the scan did not find ${spot}`);
  }
  assert.deepEqual(spelledCodes({ "x.js": `return { code: "disk_full" };` }), [{ name: "x.js", code: "disk_full" }]);
});

test("the records' levels and error codes are contract.json's, and parseRecord takes each", () => {
  assert.deepEqual([...ERROR_CODES], CONTRACT.errorCodes);
  assert.deepEqual([...LEVELS], Object.keys(CONTRACT.levelStreams));
  const opts = { maxResponseBytes: 10, maxLogLineBytes: 10 };
  for (const code of CONTRACT.errorCodes) {
    assert.notEqual(parseRecord(JSON.stringify({ t: "error", code, message: "m" }), opts), null, code);
  }
  for (const code of CONTRACT.gatewayErrorCodes) {
    assert.equal(parseRecord(JSON.stringify({ t: "error", code, message: "m" }), opts), null, `the gateway's own ${code}`);
  }
  for (const level of Object.keys(CONTRACT.levelStreams)) {
    assert.notEqual(parseRecord(JSON.stringify({ t: "log", level, message: "m" }), opts), null, level);
  }
});

test("the wrapper captures exactly contract.json's console levels", () => {
  const wrapper = sources()["guest/__dw_wrapper.js"];
  const levels = [...wrapper.matchAll(/\bcapture\("([^"]*)"\)/g)].map((m) => m[1]);
  assert.deepEqual(levels.sort(), Object.keys(CONTRACT.levelStreams).sort());
});

test("the shim's own guest modules are named with the reserved prefix", () => {
  const modules = sources()["modules.js"];
  const names = [...modules.matchAll(/_MODULE = "([^"]*)"/g)].map((m) => m[1]);
  assert.ok(names.length >= 4, `found ${names}`);
  for (const name of names) {
    assert.ok(name.toLowerCase().startsWith(CONTRACT.reservedModulePrefix.toLowerCase()), `${name} does not start with ${CONTRACT.reservedModulePrefix}`);
  }
});

test("no source spells a word of contract.json a second time", () => {
  assert.equal(MASK, CONTRACT.mask);
  const words = [
    JSON.stringify(CONTRACT.malformedRecord),
    JSON.stringify(CONTRACT.mask),
    ...new Set(Object.values(CONTRACT.levelStreams).map((s) => JSON.stringify(s))),
    `type: ${JSON.stringify(CONTRACT.pingType)}`,
    `type: ${JSON.stringify(CONTRACT.netType)}`,
  ];
  for (const [name, text] of Object.entries(sources())) {
    for (const word of words) {
      assert.ok(!text.includes(word), `${name} spells ${word}: take it from contract.json`);
    }
    assert.ok(!/\bnew Set\(\[\s*"exception"/.test(text), `${name} lists error codes: take them from contract.json`);
  }
});
