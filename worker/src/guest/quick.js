// The console formatting most calls need, without the formatter
// (__dw_format.js, whose loading costs a fresh isolate about 0.8 ms): the
// capture wrapper tries quick first and loads the formatter only when quick
// returns null. quick gives exactly what format gives (worker/test checks it
// against the formatter and Node's util.format) for arguments that are
// primitives, plain objects and short arrays holding primitives, and errors
// with no own enumerable keys; anything else, or anything it is unsure of,
// is null.
//
// Bundled into the wrapper (worker/guestbuild), so it runs before any guest
// module: what it calls is captured here and called uncurried, as in the
// wrapper, and what it builds is null-prototype objects, not arrays, so
// nothing a guest set on a prototype is consulted. What it reads of the
// guest's values (a Symbol.toStringTag, an error's name and stack) the
// formatter reads too.

const uncurry = Function.prototype.bind.bind(Function.prototype.call);
const getPrototypeOf = Object.getPrototypeOf;
const getOwn = Object.getOwnPropertyDescriptor;
const hasOwn = Object.hasOwn;
const ownKeys = Reflect.ownKeys;
const isArray = Array.isArray;
const objectIs = Object.is;
const ObjectPrototype = Object.prototype;
const ArrayPrototype = Array.prototype;
const ObjectCtor = Object;
const ArrayCtor = Array;
const TO_STRING_TAG = Symbol.toStringTag;
const stringIncludes = uncurry(String.prototype.includes);
const stringStartsWith = uncurry(String.prototype.startsWith);
const stringSlice = uncurry(String.prototype.slice);
const charCodeAt = uncurry(String.prototype.charCodeAt);
const regexpExec = uncurry(RegExp.prototype.exec); // test would look up exec
const errorToString = uncurry(Error.prototype.toString);
const numberToString = uncurry(Number.prototype.toString);
const stringPadStart = uncurry(String.prototype.padStart);
const stringToUpperCase = uncurry(String.prototype.toUpperCase);
const IDENTIFIER = /^[a-zA-Z_][a-zA-Z_0-9]*$/;
const MAX_STRING_LENGTH = 10000;
const BREAK_LENGTH = 80;
const MAX_ARRAY = 6; // longer arrays are laid out in columns: the formatter's

// The native errors' prototypes: an object whose prototype is one of them
// is an error quick can print.
const ERROR_PROTOTYPES = [Error, TypeError, RangeError, SyntaxError, ReferenceError, EvalError, URIError]
  .map((ctor) => ctor.prototype);

// quick returns the message console.log(...args) prints, or null.
export function quick(args) {
  const count = args.length;
  if (count === 0) return "";
  let out = "";
  for (let i = 0; i < count; i++) {
    const arg = args[i];
    let piece;
    if (typeof arg === "string") {
      if (i === 0 && count > 1 && stringIncludes(arg, "%")) return null;
      piece = arg;
    } else {
      piece = value(arg, true);
      if (piece === null) return null;
    }
    out += i === 0 ? piece : " " + piece;
  }
  return out;
}

// value is how inspect prints v (top: not inside an object or array), or
// null.
function value(v, top) {
  switch (typeof v) {
    case "string":
      return v.length > MAX_STRING_LENGTH ? null : quote(v);
    case "number":
      return objectIs(v, -0) ? "-0" : `${v}`;
    case "bigint":
      return `${v}n`;
    case "boolean":
    case "undefined":
      return `${v}`;
    case "object":
      if (v === null) return "null";
      return top ? object(v) : null;
    default:
      return null; // functions, symbols
  }
}

function object(v) {
  const proto = getPrototypeOf(v);
  if (tagged(v)) return null;
  if (proto === ObjectPrototype) {
    if (isArray(v) || !constructorName(proto, ObjectCtor, "Object")) return null;
    return entries(v, false);
  }
  if (proto === ArrayPrototype) {
    if (!isArray(v) || !constructorName(proto, ArrayCtor, "Array")) return null;
    return entries(v, true);
  }
  for (let i = 0; i < ERROR_PROTOTYPES.length; i++) {
    if (proto === ERROR_PROTOTYPES[i]) return error(v, proto);
  }
  return null;
}

// tagged reports whether v has a Symbol.toStringTag the formatter would
// print (or one quick cannot read plainly).
function tagged(v) {
  let tag;
  try {
    tag = v[TO_STRING_TAG];
  } catch {
    return true;
  }
  return tag !== undefined;
}

// constructorName reports whether proto's own constructor is ctor, named
// name: what the formatter prints before the braces.
function constructorName(proto, ctor, name) {
  const d = getOwn(proto, "constructor");
  if (d === undefined || !hasOwn(d, "value") || d.value !== ctor) return false;
  const n = getOwn(ctor, "name");
  return n !== undefined && hasOwn(n, "value") && n.value === name;
}

// entries prints a plain object or an array whose own keys are all
// enumerable data properties holding primitives (indices only, none
// missing, for an array), on one line when it fits in 80 columns, as the
// formatter does.
function entries(v, array) {
  const keys = ownKeys(v);
  const output = { __proto__: null }; // not an array: nothing of Array.prototype's is consulted
  let n = 0;
  let length = 0;
  if (array) {
    length = v.length;
    if (length > MAX_ARRAY || keys.length !== length + 1) return null; // the indices and "length"
  }
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (typeof key !== "string") return null;
    if (array && key === "length") continue;
    if (array && key !== `${n}`) return null;
    const d = getOwn(v, key);
    if (d === undefined || d.enumerable !== true || !hasOwn(d, "value")) return null;
    const text = value(d.value, false);
    if (text === null) return null;
    output[n++] = array ? text : `${regexpExec(IDENTIFIER, key) !== null ? key : quote(key)}: ${text}`;
  }
  if (array && n !== length) return null;
  const open = array ? "[" : "{";
  const close = array ? "]" : "}";
  if (n === 0) return open + close;
  // The formatter's isBelowBreakLength: entries, their separators and the
  // braces within 80 columns.
  let total = n + (n + open.length + 10);
  if (total + n > BREAK_LENGTH) return multiline(output, n, open, close);
  for (let i = 0; i < n; i++) {
    total += output[i].length;
    if (total > BREAK_LENGTH) return multiline(output, n, open, close);
  }
  let joined = output[0];
  for (let i = 1; i < n; i++) joined += ", " + output[i];
  return `${open} ${joined} ${close}`;
}

function multiline(output, n, open, close) {
  let text = open;
  for (let i = 0; i < n; i++) text += `${i === 0 ? "" : ","}\n  ${output[i]}`;
  return `${text}\n${close}`;
}

// error prints an error with no own enumerable keys: its stack, with the
// constructor's name where the stack does not name it, as the formatter does.
function error(err, proto) {
  if (ownKeysShown(err) || getOwn(err, "constructor") !== undefined) return null;
  const d = getOwn(proto, "constructor");
  if (d === undefined || !hasOwn(d, "value") || typeof d.value !== "function") return null;
  const nameDesc = getOwn(d.value, "name");
  const constructor = nameDesc === undefined || !hasOwn(nameDesc, "value") ? null : nameDesc.value;
  if (typeof constructor !== "string" || constructor === "") return null;
  let name;
  let stack;
  try {
    name = err.name;
    stack = err.stack;
    if (name === undefined || name === null) name = "Error";
    if (typeof name !== "string") return null;
    if (typeof stack !== "string" || stack === "") stack = `[${errorToString(err)}]`;
  } catch {
    return null;
  }
  if (constructor !== name && stringStartsWith(stack, name) && !stringIncludes(stack, constructor)) {
    stack = `${constructor} [${name}]${stringSlice(stack, name.length)}`;
  }
  return stack;
}

// ownKeysShown reports whether the formatter would print keys of err's
// besides its stack: any own enumerable key, or any own symbol.
function ownKeysShown(err) {
  const keys = ownKeys(err);
  for (let i = 0; i < keys.length; i++) {
    const key = keys[i];
    if (typeof key !== "string") return true;
    const d = getOwn(err, key);
    if (d !== undefined && d.enumerable === true) return true;
  }
  return false;
}

// quote is the formatter's: single quotes unless the string holds one, then
// double, then backticks; control characters escaped.
function quote(s) {
  let q = "'";
  if (stringIncludes(s, "'")) {
    if (!stringIncludes(s, '"')) q = '"';
    else if (!stringIncludes(s, "`") && !stringIncludes(s, "${")) q = "`";
  }
  let out = "";
  let last = 0;
  for (let i = 0; i < s.length; i++) {
    const code = charCodeAt(s, i);
    let escaped = null;
    if (code === 39 || code === 34 || code === 96) {
      if (s[i] === q) escaped = "\\" + q;
    } else if (code === 92) {
      escaped = "\\\\";
    } else if (code < 0x20 || code === 0x7f) {
      escaped = ESCAPES[code] ?? "\\x" + stringPadStart(stringToUpperCase(numberToString(code, 16)), 2, "0");
    }
    if (escaped !== null) {
      out += stringSlice(s, last, i) + escaped;
      last = i + 1;
    }
  }
  return q + out + stringSlice(s, last) + q;
}

const ESCAPES = { __proto__: null, 8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r" };
