// Compares the guest console formatter with Node's own util.format.
import { test } from "node:test";
import assert from "node:assert/strict";
import util from "node:util";
import { format } from "../src/guest/__dw_format.js";

class Point {
  constructor(x, y) {
    this.x = x;
    this.y = y;
  }
}
class WithToString {
  toString() {
    return "custom!";
  }
}
const circular = { name: "loop" };
circular.self = circular;
const nested = { a: { b: { c: { d: { e: 1 } } } } };
const sparse = [1, , 3];
const nullProto = Object.create(null);
nullProto.k = "v";
const long = Array.from({ length: 30 }, (_, i) => i * 3);
const many = Array.from({ length: 120 }, (_, i) => i);
const words = ["alpha", "beta", "gamma", "delta", "epsilon", "zeta", "eta", "theta"];
const wide = { first: "a".repeat(30), second: "b".repeat(30), third: "c".repeat(30) };
const err = new TypeError("bad thing");

const cases = [
  [],
  ["hello"],
  ["hello", "world"],
  ["%s is %d years", "Bob", 42],
  ["%s", 1.5],
  ["%s", -0],
  ["%d", -0],
  ["%s", 10n],
  ["%d", 10n],
  ["%i", 42.9],
  ["%f", "3.25abc"],
  ["%j", { a: [1, 2] }],
  ["%j", circular],
  ["%o", [1, 2]],
  ["%O", { a: 1 }],
  ["%c styled", "color: red"],
  ["100%% sure"],
  ["%s and %s", "one"],
  ["%x unknown", 1],
  ["trailing", 1, "two", { three: 3 }],
  ["%s", { a: 1, b: { c: 2 } }],
  ["%s", new WithToString()],
  ["%s", null],
  ["%s", undefined],
  ["%s", Symbol("s")],
  [1, 2, 3],
  [null, undefined, true],
  [{ a: 1, b: "two", c: [3, 4] }],
  [{}],
  [[]],
  [[1, "two", { three: 3 }]],
  [nested],
  [circular],
  [sparse],
  [nullProto],
  [new Point(1, 2)],
  [new Map([["a", 1], ["b", { c: 2 }]])],
  [new Set([1, "x"])],
  [new Map()],
  [new Date(0)],
  [new Date(NaN)],
  [/ab+c/gi],
  [function named() {}],
  [() => {}],
  [async function af() {}],
  [function* gen() {}],
  [class Foo {}],
  [class Bar extends Point {}],
  [Symbol("sym")],
  [{ [Symbol("k")]: 1 }],
  [{ "needs-quote": 1, valid_id: 2 }],
  [["it's", 'say "hi"', "tab\there", "line\nbreak"]],
  [long],
  [many],
  [words],
  [wide],
  [new Uint8Array([1, 2, 3])],
  [new ArrayBuffer(4)],
  [new Number(3)],
  [new String("boxed")],
  [-0],
  [123n],
  [NaN, Infinity],
  [{ f() {}, g: () => 1 }],
  [{ get x() { return 1; }, set y(v) {} }],
  [[[1, [2, [3, [4]]]]]],
  [{ arr: [{ a: 1 }, { b: 2 }] }],
  ["%s", err.message],
  [{ list: Array.from({ length: 26 }, (_, i) => String.fromCharCode(97 + i)) }],
  [{ users: [{ name: "alice", roles: ["admin", "dev"], active: true }, { name: "bob", roles: [], active: false }] }],
  [{ a: "x".repeat(100) }],
  [[["a", "b"], ["c", "d"]]],
  [Object.assign(new Error("with props"), { code: "E_CODE" })],
  [{ [Symbol.toStringTag]: "Tagged", v: 1 }],
  [new (class Foo { get [Symbol.toStringTag]() { return "Bar"; } })()],
  [{ nested: new Map([[{ k: 1 }, new Set(["v"])]]) }],
  [Array.from({ length: 8 }, (_, i) => ({ i }))],
  ["%o", { fn() {}, arr: [1] }],
  [{ date: new Date(86400000), re: /x/ }],
  [new Float64Array([1.5, -0, NaN])],
  [{ "": 1, "0": 2, "a b": 3 }],
  ["%s", [1, [2, [3]]]],
  ["%d", "42abc"],
  ["%s", { toString() { return "own"; } }],
  ["%s", new Date(0)],
  ["%s", new Point(1, 2)],
  ["%s", Object.create(null)],
  ["%s", new Map([[1, 2]])],
];

for (const args of cases) {
  test(`format(${util.inspect(args, { depth: 1, breakLength: Infinity }).slice(0, 60)})`, () => {
    assert.equal(format(...args), util.format(...args));
  });
}

test("errors print their stack", () => {
  assert.equal(format(err), util.format(err));
  assert.equal(format("failed:", err), util.format("failed:", err));
});
