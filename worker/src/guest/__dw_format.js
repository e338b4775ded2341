// Console message formatting for guest isolates, following Node's util.format
// and util.inspect (default options: depth 2, breakLength 80, compact 3).
//
// This module is loaded into every guest isolate, so it imports nothing: pulling
// in node:util would need nodejs_compat and would add to every execution's start
// cost. Its output is compared with Node's own util.format by worker/test.

const MAX_ARRAY_ITEMS = 100;
const MAX_STRING_LENGTH = 10000;
const BREAK_LENGTH = 80;
const COMPACT = 3;

const hasOwn = Object.prototype.hasOwnProperty;
const identifier = /^[a-zA-Z_][a-zA-Z_0-9]*$/;

const TypedArray = Object.getPrototypeOf(Uint8Array);
const typedArrayTag = Object.getOwnPropertyDescriptor(TypedArray.prototype, Symbol.toStringTag).get;
const mapSize = Object.getOwnPropertyDescriptor(Map.prototype, "size").get;
const setSize = Object.getOwnPropertyDescriptor(Set.prototype, "size").get;
const dateGetTime = Date.prototype.getTime;
const dateToISOString = Date.prototype.toISOString;
const regexpToString = RegExp.prototype.toString;
const errorToString = Error.prototype.toString;
const arrayBufferByteLength = Object.getOwnPropertyDescriptor(ArrayBuffer.prototype, "byteLength").get;
const AsyncFunction = Object.getPrototypeOf(async function () {}).constructor;
const GeneratorFunction = Object.getPrototypeOf(function* () {}).constructor;
const AsyncGeneratorFunction = Object.getPrototypeOf(async function* () {}).constructor;

// format renders console arguments as Node's util.format does.
export function format(...args) {
  const first = args[0];
  if (args.length === 0) return "";
  if (typeof first !== "string") return joinRest(args, 0);
  if (args.length === 1) return first;

  let out = "";
  let next = 1;
  let last = 0;
  for (let i = 0; i < first.length - 1; i++) {
    if (first.charCodeAt(i) !== 37) continue; // '%'
    const c = first[i + 1];
    if (c === "%") {
      out += first.slice(last, i) + "%";
      last = i + 2;
      i++;
      continue;
    }
    if (next >= args.length || !"sdifjoOc".includes(c)) continue;
    const arg = args[next++];
    out += first.slice(last, i) + formatSpecifier(c, arg);
    last = i + 2;
    i++;
  }
  out += first.slice(last);
  if (next < args.length) out += " " + joinRest(args, next);
  return out;
}

function joinRest(args, from) {
  let out = "";
  for (let i = from; i < args.length; i++) {
    if (i > from) out += " ";
    out += typeof args[i] === "string" ? args[i] : inspect(args[i]);
  }
  return out;
}

function formatSpecifier(c, arg) {
  switch (c) {
    case "s":
      if (typeof arg === "number") return formatNumber(arg);
      if (typeof arg === "bigint") return `${arg}n`;
      if (typeof arg === "symbol") return arg.toString();
      if (typeof arg === "object" && arg !== null && hasBuiltInToString(arg)) {
        return inspect(arg, { depth: 0 });
      }
      return String(arg);
    case "d":
      if (typeof arg === "bigint") return `${arg}n`;
      if (typeof arg === "symbol") return "NaN";
      if (typeof arg === "object" && arg !== null) return formatNumber(Number(arg));
      return formatNumber(Number(arg));
    case "i":
      if (typeof arg === "bigint") return `${arg}n`;
      if (typeof arg === "symbol") return "NaN";
      return formatNumber(parseInt(arg));
    case "f":
      if (typeof arg === "symbol") return "NaN";
      return formatNumber(parseFloat(arg));
    case "j":
      try {
        return JSON.stringify(arg);
      } catch (err) {
        if (err instanceof TypeError && /circular/i.test(err.message)) return "[Circular]";
        throw err;
      }
    case "o":
      return inspect(arg, { showHidden: true, depth: 4 });
    case "O":
      return inspect(arg);
    case "c":
      return "";
  }
  return "";
}

// hasBuiltInToString reports whether obj's toString is the language's own
// (so %s inspects it) rather than one the program defined (so %s calls it).
function hasBuiltInToString(obj) {
  if (typeof obj.toString !== "function") return true;
  if (hasOwn.call(obj, "toString")) return false;
  let pointer = obj;
  do {
    pointer = Object.getPrototypeOf(pointer);
  } while (pointer !== null && !hasOwn.call(pointer, "toString"));
  if (pointer === null) return true;
  const desc = Object.getOwnPropertyDescriptor(pointer, "constructor");
  builtInObjects ??= new Set(Object.getOwnPropertyNames(globalThis).filter((name) => /^[A-Z][a-zA-Z0-9]+$/.test(name)));
  return desc !== undefined && typeof desc.value === "function" && builtInObjects.has(desc.value.name);
}

// builtInObjects are the global constructors' names, listed the first time
// a %s needs them (about 0.1 ms in a fresh isolate), not when the formatter
// loads.
let builtInObjects = null;

function formatNumber(n) {
  return Object.is(n, -0) ? "-0" : `${n}`;
}

// inspect renders a value as Node's util.inspect does with default options.
export function inspect(value, opts = {}) {
  const ctx = {
    depth: opts.depth ?? 2,
    showHidden: opts.showHidden ?? false,
    seen: [],
    circular: new Map(),
    indentationLvl: 0,
    currentDepth: 0,
  };
  return formatValue(ctx, value, 0, true);
}

function formatValue(ctx, value, recurseTimes, typedArray) {
  if (typeof value !== "object" && typeof value !== "function") {
    return formatPrimitive(value);
  }
  if (value === null) return "null";
  if (ctx.seen.includes(value)) {
    let index = ctx.circular.get(value);
    if (index === undefined) {
      index = ctx.circular.size + 1;
      ctx.circular.set(value, index);
    }
    return `[Circular *${index}]`;
  }
  return formatRaw(ctx, value, recurseTimes, typedArray);
}

function formatPrimitive(value) {
  switch (typeof value) {
    case "string":
      return quote(value.length > MAX_STRING_LENGTH ? value.slice(0, MAX_STRING_LENGTH) : value) +
        (value.length > MAX_STRING_LENGTH ? `... ${value.length - MAX_STRING_LENGTH} more characters` : "");
    case "number":
      return formatNumber(value);
    case "bigint":
      return `${value}n`;
    case "symbol":
      return value.toString();
    default:
      return String(value); // undefined, boolean
  }
}

const escapes = {
  "\b": "\\b", "\t": "\\t", "\n": "\\n", "\f": "\\f", "\r": "\\r", "\\": "\\\\",
};

function quote(s) {
  let q = "'";
  if (s.includes("'")) {
    if (!s.includes('"')) q = '"';
    else if (!s.includes("`") && !s.includes("${")) q = "`";
  }
  let out = "";
  for (const ch of s) {
    const code = ch.codePointAt(0);
    if (ch === q) out += "\\" + ch;
    else if (escapes[ch] !== undefined) out += escapes[ch];
    else if (code < 0x20 || code === 0x7f) out += "\\x" + code.toString(16).toUpperCase().padStart(2, "0");
    else out += ch;
  }
  return q + out + q;
}

function getConstructorName(obj) {
  let proto = obj;
  while (proto !== null) {
    const desc = Object.getOwnPropertyDescriptor(proto, "constructor");
    if (desc !== undefined && typeof desc.value === "function" && desc.value.name !== "") {
      return desc.value.name;
    }
    proto = Object.getPrototypeOf(proto);
  }
  return null;
}

function getPrefix(constructor, tag, fallback, size = "") {
  if (constructor === null) {
    if (tag !== "" && fallback !== tag) return `[${fallback}${size}: null prototype] [${tag}] `;
    return `[${fallback}${size}: null prototype] `;
  }
  if (tag !== "" && constructor !== tag) return `${constructor}${size} [${tag}] `;
  return `${constructor}${size} `;
}

function getKeys(value, showHidden) {
  const keys = showHidden ? Object.getOwnPropertyNames(value) : Object.keys(value);
  const symbols = Object.getOwnPropertySymbols(value);
  for (const s of symbols) {
    if (showHidden || Object.prototype.propertyIsEnumerable.call(value, s)) keys.push(s);
  }
  return keys;
}

function formatRaw(ctx, value, recurseTimes, typedArray) {
  const constructor = getConstructorName(value);
  let tag = value[Symbol.toStringTag];
  // Only show the tag when it is not already printed as an own property.
  if (typeof tag !== "string" || (tag !== "" && (ctx.showHidden ? hasOwn : Object.prototype.propertyIsEnumerable).call(value, Symbol.toStringTag))) {
    tag = "";
  }
  let keys = [];
  let base = "";
  let braces;
  let formatter = formatObjectEntries;
  let extrasType = "object";
  let noIterator = true;

  if (Array.isArray(value)) {
    noIterator = false;
    keys = getKeys(value, ctx.showHidden).filter((k) => typeof k === "symbol" || !isIndex(k, value.length));
    const prefix = constructor !== "Array" || tag !== "" ? getPrefix(constructor, tag, "Array", `(${value.length})`) : "";
    braces = [`${prefix}[`, "]"];
    if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
    extrasType = "array";
    formatter = formatArray;
  } else if (value instanceof Map) {
    noIterator = false;
    const size = mapSize.call(value);
    keys = getKeys(value, ctx.showHidden);
    const prefix = getPrefix(constructor, tag, "Map", `(${size})`);
    if (size === 0 && keys.length === 0) return `${prefix}{}`;
    braces = [`${prefix}{`, "}"];
    formatter = formatMap;
  } else if (value instanceof Set) {
    noIterator = false;
    const size = setSize.call(value);
    keys = getKeys(value, ctx.showHidden);
    const prefix = getPrefix(constructor, tag, "Set", `(${size})`);
    if (size === 0 && keys.length === 0) return `${prefix}{}`;
    braces = [`${prefix}{`, "}"];
    formatter = formatSet;
  } else if (value instanceof TypedArray) {
    noIterator = false;
    const name = typedArrayTag.call(value);
    keys = getKeys(value, ctx.showHidden).filter((k) => typeof k === "symbol" || !isIndex(k, value.length));
    const prefix = getPrefix(constructor, constructor === name ? "" : name, name, `(${value.length})`);
    braces = [`${prefix}[`, "]"];
    if (value.length === 0 && keys.length === 0) return `${braces[0]}]`;
    extrasType = "array";
    formatter = formatTypedArray;
  }

  if (noIterator) {
    keys = getKeys(value, ctx.showHidden);
    braces = ["{", "}"];
    if (constructor === "Object") {
      if (tag !== "") braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
      if (keys.length === 0) return `${braces[0]}}`;
    } else if (typeof value === "function") {
      base = functionBase(value, constructor, tag);
      if (keys.length === 0) return base;
    } else if (value instanceof RegExp) {
      base = regexpToString.call(value);
      const prefix = getPrefix(constructor, tag, "RegExp");
      if (prefix !== "RegExp ") base = `${prefix}${base}`;
      keys = keys.filter((k) => k !== "lastIndex");
      if (keys.length === 0) return base;
    } else if (value instanceof Date) {
      const t = dateGetTime.call(value);
      base = Number.isNaN(t) ? "Invalid Date" : dateToISOString.call(value);
      const prefix = getPrefix(constructor, tag, "Date");
      if (prefix !== "Date ") base = `${prefix}${base}`;
      if (keys.length === 0) return base;
    } else if (value instanceof Error) {
      base = formatError(value, constructor, keys);
      keys = keys.filter((k) => k !== "stack" && k !== "message" && !(k === "cause" && !Object.prototype.propertyIsEnumerable.call(value, "cause")));
      if (keys.length === 0) return base;
    } else if (value instanceof Promise) {
      braces[0] = `${getPrefix(constructor, tag, "Promise")}{`;
      return `${braces[0]} <unknown> }`;
    } else if (value instanceof WeakSet || value instanceof WeakMap) {
      braces[0] = `${getPrefix(constructor, tag, value instanceof WeakSet ? "WeakSet" : "WeakMap")}{`;
      return `${braces[0]} <items unknown> }`;
    } else if (value instanceof ArrayBuffer) {
      const len = arrayBufferByteLength.call(value);
      const bytes = [...new Uint8Array(value, 0, Math.min(len, 50))].map((b) => b.toString(16).padStart(2, "0")).join(" ");
      const more = len > 50 ? ` ... ${len - 50} more byte${len - 50 > 1 ? "s" : ""}` : "";
      return `${getPrefix(constructor, tag, "ArrayBuffer")}{ [Uint8Contents]: <${bytes}${more}>, byteLength: ${len} }`;
    } else if (isBoxed(value)) {
      base = boxedBase(value, constructor, tag);
      if (value instanceof String) keys = keys.filter((k) => typeof k === "symbol" || !isIndex(k, value.length));
      if (keys.length === 0) return base;
    } else {
      braces[0] = `${getPrefix(constructor, tag, "Object")}{`;
      if (keys.length === 0) return `${braces[0]}}`;
    }
  }

  if (recurseTimes > ctx.depth && ctx.depth !== null) {
    return `[${constructor ?? (tag || "Object")}]`;
  }

  recurseTimes += 1;
  ctx.seen.push(value);
  ctx.currentDepth = recurseTimes;
  let output;
  try {
    output = formatter(ctx, value, recurseTimes);
    for (const key of keys) {
      output.push(formatProperty(ctx, value, recurseTimes, key, extrasType));
    }
  } finally {
    ctx.seen.pop();
  }

  const ref = ctx.circular.get(value);
  if (ref !== undefined) {
    const reference = `<ref *${ref}>`;
    if (base === "") braces[0] = `${reference} ${braces[0]}`;
    else base = `${reference} ${base}`;
  }
  return reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value);
}

function isIndex(key, length) {
  if (typeof key !== "string" || !/^(0|[1-9][0-9]*)$/.test(key)) return false;
  return Number(key) < length;
}

function isBoxed(v) {
  return v instanceof Number || v instanceof String || v instanceof Boolean ||
    (typeof BigInt === "function" && v instanceof BigInt) || v instanceof Symbol;
}

function boxedBase(value, constructor, tag) {
  let type;
  let fallback;
  if (value instanceof Number) { type = "Number"; fallback = formatNumber(Number.prototype.valueOf.call(value)); }
  else if (value instanceof String) { type = "String"; fallback = quote(String.prototype.valueOf.call(value)); }
  else if (value instanceof Boolean) { type = "Boolean"; fallback = String(Boolean.prototype.valueOf.call(value)); }
  else if (value instanceof BigInt) { type = "BigInt"; fallback = `${BigInt.prototype.valueOf.call(value)}n`; }
  else { type = "Symbol"; fallback = Symbol.prototype.toString.call(Symbol.prototype.valueOf.call(value)); }
  let base = `[${type}`;
  if (type !== constructor) base += constructor === null ? " (null prototype)" : ` (${constructor})`;
  base += `: ${fallback}]`;
  if (tag !== "" && tag !== constructor) base += ` [${tag}]`;
  return base;
}

function functionBase(value, constructor, tag) {
  const source = Function.prototype.toString.call(value);
  if (source.startsWith("class") && source.endsWith("}")) {
    let base = `[class ${value.name || "(anonymous)"}`;
    const superName = Object.getPrototypeOf(value).name;
    if (superName) base += ` extends ${superName}`;
    return base + "]";
  }
  let type = "Function";
  if (value instanceof AsyncGeneratorFunction) type = "AsyncGeneratorFunction";
  else if (value instanceof GeneratorFunction) type = "GeneratorFunction";
  else if (value instanceof AsyncFunction) type = "AsyncFunction";
  let base = `[${type}`;
  if (constructor === null) base += " (null prototype)";
  base += value.name === "" ? " (anonymous)" : `: ${value.name}`;
  base += "]";
  if (constructor !== type && constructor !== null) base += ` ${constructor}`;
  if (tag !== "" && constructor !== tag) base += ` [${tag}]`;
  return base;
}

function formatError(err, constructor, keys) {
  const name = err.name != null ? String(err.name) : "Error";
  const message = err.message != null ? String(err.message) : "";
  let stack = typeof err.stack === "string" && err.stack !== "" ? err.stack : errorToString.call(err);
  if (typeof err.stack !== "string" || err.stack === "") {
    stack = `[${stack}]`;
  }
  // Node shows the constructor name when the stack does not already name it.
  if (constructor !== null && constructor !== name && stack.startsWith(name) && !stack.includes(constructor)) {
    stack = `${constructor} [${name}]${stack.slice(name.length)}`;
  }
  return stack;
}

function formatObjectEntries() {
  return [];
}

function formatArray(ctx, value, recurseTimes) {
  const len = value.length;
  const shown = Math.min(MAX_ARRAY_ITEMS, len);
  const output = [];
  let holes = 0;
  for (let i = 0; i < shown; i++) {
    if (!hasOwn.call(value, i)) {
      holes++;
      continue;
    }
    if (holes > 0) {
      output.push(`<${holes} empty item${holes > 1 ? "s" : ""}>`);
      holes = 0;
    }
    output.push(formatValue(ctx, value[i], recurseTimes));
  }
  if (holes > 0) output.push(`<${holes} empty item${holes > 1 ? "s" : ""}>`);
  if (len > shown) output.push(`... ${len - shown} more item${len - shown > 1 ? "s" : ""}`);
  return output;
}

function formatTypedArray(ctx, value, recurseTimes) {
  const len = value.length;
  const shown = Math.min(MAX_ARRAY_ITEMS, len);
  const output = [];
  for (let i = 0; i < shown; i++) output.push(formatPrimitive(value[i]));
  if (len > shown) output.push(`... ${len - shown} more item${len - shown > 1 ? "s" : ""}`);
  return output;
}

function formatMap(ctx, value, recurseTimes) {
  const output = [];
  ctx.indentationLvl += 2;
  for (const [k, v] of Map.prototype.entries.call(value)) {
    output.push(`${formatValue(ctx, k, recurseTimes)} => ${formatValue(ctx, v, recurseTimes)}`);
  }
  ctx.indentationLvl -= 2;
  return output;
}

function formatSet(ctx, value, recurseTimes) {
  const output = [];
  ctx.indentationLvl += 2;
  for (const v of Set.prototype.values.call(value)) output.push(formatValue(ctx, v, recurseTimes));
  ctx.indentationLvl -= 2;
  return output;
}

function formatProperty(ctx, value, recurseTimes, key, extrasType) {
  let name;
  let str;
  const desc = Object.getOwnPropertyDescriptor(value, key) || { value: value[key], enumerable: true };
  if (desc.value !== undefined) {
    const diff = extrasType === "object" ? 2 : 3;
    ctx.indentationLvl += diff;
    str = formatValue(ctx, desc.value, recurseTimes);
    ctx.indentationLvl -= diff;
  } else if (desc.get !== undefined) {
    str = desc.set !== undefined ? "[Getter/Setter]" : "[Getter]";
  } else if (desc.set !== undefined) {
    str = "[Setter]";
  } else {
    str = "undefined";
  }
  if (typeof key === "symbol") {
    name = `[${key.toString()}]`;
  } else if (identifier.test(key)) {
    name = key;
  } else {
    name = quote(key);
  }
  if (desc.enumerable === false) name = `[${name}]`;
  return `${name}: ${str}`;
}

function isBelowBreakLength(ctx, output, start, base) {
  let total = output.length + start;
  if (total + output.length > BREAK_LENGTH) return false;
  for (const entry of output) {
    total += entry.length;
    if (total > BREAK_LENGTH) return false;
  }
  return base === "" || !base.includes("\n");
}

function reduceToSingleString(ctx, output, base, braces, extrasType, recurseTimes, value) {
  const entries = output.length;
  if (extrasType === "array" && entries > 6) output = groupArrayElements(ctx, output, value);
  if (ctx.currentDepth - recurseTimes < COMPACT && entries === output.length) {
    const start = output.length + ctx.indentationLvl + braces[0].length + base.length + 10;
    if (isBelowBreakLength(ctx, output, start, base)) {
      const joined = output.join(", ");
      if (!joined.includes("\n")) {
        return `${base ? `${base} ` : ""}${braces[0]} ${joined} ${braces[1]}`;
      }
    }
  }
  const indentation = `\n${" ".repeat(ctx.indentationLvl)}`;
  return `${base ? `${base} ` : ""}${braces[0]}${indentation}  ${output.join(`,${indentation}  `)}${indentation}${braces[1]}`;
}

// groupArrayElements lays out long arrays of short items in aligned columns,
// as Node does.
function groupArrayElements(ctx, output, value) {
  let totalLength = 0;
  let maxLength = 0;
  let i = 0;
  let outputLength = output.length;
  if (outputLength > MAX_ARRAY_ITEMS) outputLength--; // the "more items" entry
  const separatorSpace = 2;
  const dataLen = new Array(outputLength);
  for (; i < outputLength; i++) {
    const len = output[i].length;
    dataLen[i] = len;
    totalLength += len + separatorSpace;
    if (maxLength < len) maxLength = len;
  }
  const actualMax = maxLength + separatorSpace;
  if (actualMax * 3 + ctx.indentationLvl < BREAK_LENGTH &&
      (totalLength / actualMax > 5 || maxLength <= 6)) {
    const approxCharHeights = 2.5;
    const averageBias = Math.sqrt(actualMax - totalLength / output.length);
    const biasedMax = Math.max(actualMax - 3 - averageBias, 1);
    const columns = Math.min(
      Math.round(Math.sqrt(approxCharHeights * biasedMax * outputLength) / biasedMax),
      Math.floor((BREAK_LENGTH - ctx.indentationLvl) / actualMax),
      COMPACT * 4,
      15,
    );
    if (columns <= 1) return output;
    const tmp = [];
    const maxLineLength = [];
    for (let c = 0; c < columns; c++) {
      let lineLength = 0;
      for (let j = c; j < output.length; j += columns) {
        if (dataLen[j] > lineLength) lineLength = dataLen[j];
      }
      maxLineLength.push(lineLength + separatorSpace);
    }
    const numeric = value !== undefined && value.length !== undefined &&
      Array.prototype.every.call(Array.prototype.slice.call(value, 0, outputLength), (v) => typeof v === "number" || typeof v === "bigint");
    for (let k = 0; k < outputLength; k += columns) {
      const max = Math.min(k + columns, outputLength);
      let str = "";
      let j = k;
      for (; j < max - 1; j++) {
        const padding = maxLineLength[j - k] + output[j].length - dataLen[j];
        str += numeric ? `${output[j]}, `.padStart(padding, " ") : `${output[j]}, `.padEnd(padding, " ");
      }
      if (numeric) {
        const padding = maxLineLength[j - k] + output[j].length - dataLen[j] - separatorSpace;
        str += output[j].padStart(padding, " ");
      } else {
        str += output[j];
      }
      tmp.push(str);
    }
    if (outputLength < output.length) tmp.push(output[outputLength]);
    return tmp;
  }
  return output;
}

// What require gives under compatibility dates where it returns an ES
// module's default export (the wrapper loads this module with require).
export default Object.freeze({ format, inspect });
