// quick (guest/quick.js) is the capture wrapper's formatting without the
// formatter: wherever it answers, its answer is the formatter's and Node's
// util.format's; where it cannot be sure, it answers null and the wrapper
// loads the formatter.
import { test } from "node:test";
import assert from "node:assert/strict";
import util from "node:util";
import { format } from "../src/guest/__dw_format.js";
import { quick } from "../src/guest/quick.js";

class Point {
  constructor(x, y) {
    this.x = x;
    this.y = y;
  }
}
class MyError extends Error {}
const withProps = Object.assign(new Error("with props"), { code: "E" });
const noStack = new Error("no stack");
Object.defineProperty(noStack, "stack", { value: "", enumerable: false });
const named = new TypeError("renamed");
Object.defineProperty(named, "name", { value: "Custom", enumerable: false });
const cause = new Error("outer", { cause: new Error("inner") });
const hole = [1, , 3];
const extraKey = Object.assign([1, 2], { k: 1 });
const arrayObjectProto = Object.setPrototypeOf([1, 2], Object.prototype);
const nonEnum = Object.defineProperty({ a: 1 }, "hidden", { value: 2, enumerable: false });
const getter = { get x() { return 1; } };
const symbolKey = { [Symbol("k")]: 1 };
const tagged = { [Symbol.toStringTag]: "T", a: 1 };
const ownCtor = Object.assign(new Error("own constructor"), {});
Object.defineProperty(ownCtor, "constructor", { value: Point, enumerable: false });

// Each is answered by quick and must equal the formatter and Node.
const answered = [
  [],
  ["hi"],
  ["100%"],
  ["hi", 1, true, null, undefined, -0, 2n, NaN, Infinity],
  [1, "two"],
  [{}],
  [[]],
  [{ a: 1 }],
  [{ a: 1, b: "two", c: null, d: undefined, e: -0, f: 5n, g: false }],
  [{ "needs-quote": 1, valid_id: 2, "": 3, 0: 4, "a b": 5 }],
  [{ s: "it's", t: 'say "hi"', u: "both ' and \"", v: "all '\"`", w: "tab\there", x: "line\nbreak", y: "\0\x01\x7f\\", z: "é ü 😀" }],
  [{ wide: "a".repeat(30), wider: "b".repeat(30) }],
  [{ first: "a".repeat(30), second: "b".repeat(30), third: "c".repeat(30) }],
  [{ a: 1, b: 2, c: 3, d: 4, e: 5, f: 6, g: 7, h: 8, i: 9, j: 10, k: 11, l: 12, m: 13, n: 14, o: 15, p: 16, q: 17, r: 18, s: 19, t: 20, u: 21, v: 22, w: 23, x: 24, y: 25, z: 26 }],
  [{ "it's": 1, 'q"': 2 }],
  [[1, "two", null, undefined, true, 3n]],
  [["a".repeat(40), "b".repeat(40)]],
  ["hi", { a: 1 }, new Error("e")],
  [new Error("e")],
  [new TypeError("bad thing")],
  [new RangeError("r")],
  [noStack],
  ["failed:", new Error("boom"), "after"],
  [{ a: "x".repeat(100) }],
];

// Each is answered by quick as the formatter answers, where the formatter
// differs from Node (a renamed error, a cause): quick changes nothing.
const asFormatter = [[named], [cause], ["x", named]];

// Each is left to the formatter.
const declined = [
  [new MyError("sub")],
  ["%s is %d", "Bob", 42],
  ["100%%", 1],
  [{ a: { b: 1 } }],
  [[1, [2]]],
  [[1, 2, 3, 4, 5, 6, 7]],
  [hole],
  [extraKey],
  [arrayObjectProto],
  [nonEnum],
  [getter],
  [symbolKey],
  [tagged],
  [new Point(1, 2)],
  [Object.create(null)],
  [new Map()],
  [new Set([1])],
  [new Date(0)],
  [/x/],
  [() => 1],
  [Symbol("s")],
  [withProps],
  [ownCtor],
  [{ a: "x".repeat(10001) }],
  [new Uint8Array(2)],
  [new Number(1)],
  [{ f() {} }],
];

for (const args of answered) {
  test(`quick answers ${util.inspect(args, { depth: 1, breakLength: Infinity }).slice(0, 70)}`, () => {
    const got = quick(args);
    assert.notEqual(got, null);
    assert.equal(got, format(...args));
    assert.equal(got, util.format(...args));
  });
}

for (const args of asFormatter) {
  test(`quick answers ${util.inspect(args, { depth: 0, breakLength: Infinity }).slice(0, 50)} as the formatter does`, () => {
    const got = quick(args);
    assert.notEqual(got, null);
    assert.equal(got, format(...args));
  });
}

for (const args of declined) {
  test(`quick leaves ${util.inspect(args, { depth: 1, breakLength: Infinity }).slice(0, 70)} to the formatter`, () => {
    assert.equal(quick(args), null);
  });
}

test("quick reads a guest's object no more than the formatter would: a throwing tag getter declines", () => {
  const hostile = { get [Symbol.toStringTag]() { throw new Error("no"); } };
  assert.equal(quick([hostile]), null);
  const proxy = new Proxy({}, { getPrototypeOf() { throw new Error("trap"); } });
  assert.throws(() => quick([proxy]), /trap/); // the wrapper catches it, as it does the formatter's
});

test("quick consults nothing a guest set on a prototype", () => {
  const setter = Object.getOwnPropertyDescriptor(Array.prototype, "0");
  const exec = RegExp.prototype.exec;
  let called = 0;
  Object.defineProperty(Array.prototype, "0", { configurable: true, set() { called++; }, get() { called++; return "forged"; } });
  RegExp.prototype.exec = function () {
    called++;
    return null;
  };
  try {
    assert.equal(quick([{ a: 1, b: "two" }]), "{ a: 1, b: 'two' }");
    assert.equal(quick([[1, 2]]), "[ 1, 2 ]");
  } finally {
    RegExp.prototype.exec = exec;
    if (setter === undefined) delete Array.prototype[0];
    else Object.defineProperty(Array.prototype, "0", setter);
  }
  assert.equal(called, 0);
});
