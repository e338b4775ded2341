// What each piece of the capture wrapper costs a fresh isolate, by taking
// it out: variants of the working tree's wrapper, each with one piece
// removed (an edit of guest/__dw_wrapper.js, rebuilt with worker/guestbuild
// into a copy of worker/src), side by side with the wrapper as it is, the
// bare guest and two references, in one workerd process. Per round every
// variant creates `loops` fresh isolates of the same guest (cmd/bench's
// helloCode) one after another, in a new random order each round; the
// workerd process's CPU (/proc/PID/task/*/schedstat) per isolate is taken
// for each. It prints, per variant, the median over rounds of (variant −
// wrapper of the same round) and in how many rounds the variant cost less,
// and the median over bare. None of the variants is safe to ship: each
// drops a feature to see its price.
//
//   node worker/bench/knockout.mjs [rounds=16] [loops=25] [variant,...]
//
// With PERF=FILE it runs workerd under `perf record -k mono -g` (Linux
// perf; the machine must allow it) and splits the samples by which variant
// was running when they were taken, into categories of workerd's and V8's
// work (isolate creation, module compilation, parsing, code-cache
// serialization, …): ms per isolate of each. That is how the categories of
// docs/performance.md ("The fresh path, piece by piece") were found.
//
// Run from the repository's root (it needs go, for worker/guestbuild).
import { execFileSync, spawn } from "node:child_process";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMs, files, freePort, moduleEntry, shuffled } from "./lib.mjs";

const WRAPPER = readFileSync("worker/src/guest/__dw_wrapper.js", "utf8");

// Each knockout: [what it takes out, the edits (from, to) of the source].
const EDITS = {
  timer: ["the 100 ms live-switch timer (a buffered execution never goes live)", [
    ["    const timer = setTimer(() => resolve(true), OPTIONS.liveAfterMs);\n    finished(served, timer, resolve);", "    finished(served, null, resolve);"],
    ["  await settle(served);\n  clearTimer(timer);", "  await settle(served);\n  if (timer !== null) clearTimer(timer);"],
  ]],
  require: ["the __dw_require.js import (the formatter can no longer load)", [
    ['import requireModule from "./__dw_require.js";', "const requireModule = null;"],
  ]],
  unhandled: ["the unhandledrejection listener", [
    ['addEventListener("unhandledrejection", (event) => {\n  error("Uncaught (in promise)", event.reason);\n});', ""],
  ]],
  prepare: ["the Error.prepareStackTrace accessor (the stack filter)", [
    ['defineProperty(ErrorCtor, "prepareStackTrace", {', 'if (false) defineProperty(ErrorCtor, "prepareStackTrace", {'],
  ]],
  proxies: ["the 17 console Proxies (plain functions instead)", [
    ['  console[name] = typeof native === "function" ? new ProxyCtor(native, { __proto__: null, apply }) : method;', "  console[name] = method;"],
  ]],
  body: ["reading the guest's body (the answer's body is empty)", [
    ["  const { bytes, truncated } = await own(readBody(parts.body, OPTIONS.maxResponseBytes));",
      "  const bytes = new Uint8ArrayCtor(0);\n  const truncated = false;\n  settle(parts.body?.cancel());"],
  ]],
  waituntil: ["the waitUntil Proxy on ExecutionContext.prototype", [
    ["  if (!waitUntilPatched) {", "  if (false) {"],
  ]],
  react: ["calling the handler from a promise reaction (called directly)", [
    ["    return (request, env, ctx) => react(bind(main.fetch, main, request, env), ctx);",
      "    return (request, env, ctx) => bind(main.fetch, main, request, env)(ctx);"],
  ]],
};
EDITS.features = ["timer, require, unhandled, prepare and proxies together",
  ["timer", "require", "unhandled", "prepare", "proxies"].flatMap((k) => EDITS[k][1])];
EDITS.handler = ["body, waituntil and react together", ["body", "waituntil", "react"].flatMap((k) => EDITS[k][1])];

// cold: the wrapper without the code the hello path never runs (the
// console methods but log, info, debug, warn and error; quick.js; the
// bodies of the functions below): the most that moving cold code out of
// the wrapper, into a module loaded on demand, could save.
const COLD_FUNCTIONS = ["describeReturn", "loadAls", "startReused", "bindCapabilities", "capabilityBinding", "ownFrame",
  "errorHeader", "learnCallSites", "prepare", "describeError", "bytesToBase64", "readChunks", "goLive", "elapsed"];

// closing returns the index of the brace that closes the one at open,
// skipping strings, template literals and line comments.
function closing(s, open) {
  let depth = 0;
  for (let i = open; i < s.length; i++) {
    const c = s[i];
    if (c === '"' || c === "'") {
      for (i++; s[i] !== c; i++) if (s[i] === "\\") i++;
    } else if (c === "`") {
      for (i++; s[i] !== "`"; i++) {
        if (s[i] === "\\") i++;
        else if (s[i] === "$" && s[i + 1] === "{") i = closing(s, i + 1);
      }
    } else if (c === "/" && s[i + 1] === "/") {
      while (s[i] !== "\n") i++;
    } else if (c === "{") depth++;
    else if (c === "}" && --depth === 0) return i;
  }
  throw new Error("unbalanced braces");
}

function coldEdits(src) {
  let s = src.replace('import { quick } from "./quick.js"; // bundled in (worker/guestbuild)', "const quick = () => null;");
  const from = s.indexOf("  trace: (...args) => {");
  const to = s.indexOf("};\n\n// Each console method");
  if (from < 0 || to < 0 || s === src) throw new Error("cold: the wrapper no longer has its console methods or quick import as expected");
  s = s.slice(0, from) + s.slice(to);
  for (const name of COLD_FUNCTIONS) {
    const m = new RegExp(`(async )?function ${name}\\([^)]*\\) \\{`).exec(s);
    if (m === null) throw new Error(`cold: no function ${name}`);
    const open = m.index + m[0].length - 1;
    s = s.slice(0, open + 1) + s.slice(closing(s, open));
  }
  return [[src, s]];
}
EDITS.cold = ["the code the hello path never runs (see COLD_FUNCTIONS)", null];

// The references: the floor wrapper (bench/floor-wrapper.js), the same with
// the built wrapper's code as a function never called (its parse alone), and
// with the built wrapper's top level run (its top level without its handler).
const REFS = ["floor", "dead", "toplevel"];

const [rounds = "16", loops = "25", only] = process.argv.slice(2);
const chosen = only ? only.split(",") : [...REFS, ...Object.keys(EDITS)];
const dir = mkdtempSync(join(tmpdir(), "dw-knockout-"));
const CODE = `export default { fetch() { console.log("hi"); return new Response("ok"); } }`;

function build(name, edits) {
  const root = join(dir, "v-" + name);
  cpSync("worker/src", root, { recursive: true });
  let src = WRAPPER;
  for (const [from, to] of edits) {
    if (!src.includes(from)) throw new Error(`${name}: the wrapper no longer has ${JSON.stringify(from.slice(0, 60))}`);
    src = src.replace(from, to);
  }
  writeFileSync(join(root, "guest", "__dw_wrapper.js"), src);
  execFileSync("go", ["run", "./worker/guestbuild", "-dir", join(root, "guest")], { stdio: "inherit" });
  return readFileSync(join(root, "guest", "min", "__dw_wrapper.js"), "utf8");
}

// reference builds the floor-based references from the built wrapper.
function reference(name) {
  const floor = readFileSync("worker/bench/floor-wrapper.js", "utf8");
  if (name === "floor") return floor;
  const built = readFileSync("worker/src/guest/min/__dw_wrapper.js", "utf8").split("\n").slice(1).join("\n");
  const imports = [...built.matchAll(/import ([A-Za-z_$][\w$]*) ?from ?"(\.\/__dw_(?:require\.js|options\.json))";/g)];
  let body = built;
  for (const m of imports) body = body.replace(m[0], "");
  body = body.slice(0, body.lastIndexOf("export{"));
  const names = imports.map((m) => m[1]);
  const req = imports.find((m) => m[2] === "./__dw_require.js");
  const opts = imports.find((m) => m[2] === "./__dw_options.json");
  if (req === undefined || opts === undefined) throw new Error("the built wrapper's imports are not as expected");
  if (name === "dead") return `${floor}\nfunction __dead(${names.join(",")}) {${body}}\n`;
  return `${floor.replace('import options from "./__dw_options.json";', `import options from "./__dw_options.json";\nimport __req from "./__dw_require.js";`)}
;(function __top(${req[1]}, ${opts[1]}) {${body}})(__req, options);\n`;
}

const wrappers = { wrapper: readFileSync("worker/src/guest/min/__dw_wrapper.js", "utf8") };
for (const name of chosen) {
  if (REFS.includes(name)) wrappers[name] = reference(name);
  else if (name === "cold") wrappers[name] = build(name, coldEdits(WRAPPER));
  else if (EDITS[name]) wrappers[name] = build(name, EDITS[name][1]);
  else throw new Error(`unknown variant ${name}`);
}
const NAMES = ["bare", ...Object.keys(wrappers)];

// The harness: the working tree's sources (modules.js builds the module
// map), each variant's wrapper as a text module.
const src = join(dir, "src");
cpSync("worker/src", src, { recursive: true });
for (const [name, text] of Object.entries(wrappers)) writeFileSync(join(src, "guest", `__v_${name}.js`), text);
writeFileSync(join(dir, "harness.js"), `
import { guestModules } from "./src/modules.js";
${Object.keys(wrappers).map((n, i) => `import W${i} from "./src/guest/__v_${n}.js";`).join("\n")}
const WRAPPERS = { ${Object.keys(wrappers).map((n, i) => `${JSON.stringify(n)}: W${i}`).join(", ")} };
const CODE = ${JSON.stringify(CODE)};
const job = () => ({ id: "x", mainModule: "main.js", modules: { "main.js": CODE }, maxResponseBytes: 10 << 20,
  maxLogLineBytes: 16 << 10, maxLogBytes: 1 << 20 });
export default {
  async fetch(request, env) {
    const { side, loops } = await request.json();
    for (let i = 0; i < loops; i++) {
      let mainModule = "main.js", modules = { "main.js": CODE }, entry;
      if (side !== "bare") {
        modules = guestModules(job());
        modules["__dw_wrapper.js"] = { js: WRAPPERS[side] };
        mainModule = "__dw_wrapper.js";
        entry = "buffered";
      }
      const worker = env.LOADER.load({ compatibilityDate: "2026-11-17", compatibilityFlags: [], mainModule, modules, env: {}, globalOutbound: null });
      const text = await (await worker.getEntrypoint(entry).fetch("http://localhost/")).text();
      if (!text.includes(side === "bare" ? "ok" : '"t":"response"')) throw new Error(side + ": " + text);
    }
    return new Response("done");
  },
};
`);

const port = await freePort();
const mods = [`(name = "harness.js", esModule = embed "harness.js")`, ...files(src).map((p) => moduleEntry(dir, p))];
writeFileSync(join(dir, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "h", worker = .h)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "h")],
);
const h :Workerd.Worker = (
  modules = [${mods.join(",\n    ")}],
  compatibilityDate = "2026-11-17",
  bindings = [(name = "LOADER", workerLoader = ())],
);
`);
const args = ["serve", "--experimental", join(dir, "config.capnp")];
const perfFile = process.env.PERF;
const workerd = perfFile
  ? spawn("perf", ["record", "-k", "mono", "-F", "2000", "-g", "-o", perfFile, "--", "worker/node_modules/.bin/workerd", ...args], { stdio: ["ignore", "ignore", "inherit"] })
  : spawn("worker/node_modules/.bin/workerd", args, { stdio: ["ignore", "ignore", "inherit"] });

async function measure(side, n) {
  for (let tries = 0; ; tries++) {
    try {
      const before = cpuMs(workerd.pid);
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: JSON.stringify({ side, loops: n }) });
      if (!r.ok) throw new Error(`${side}: ${r.status} ${await r.text()}`);
      await r.text();
      return (cpuMs(workerd.pid) - before) / n;
    } catch (err) {
      if (tries > 100 || err.cause?.code !== "ECONNREFUSED") throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];
const cpu = Object.fromEntries(NAMES.map((n) => [n, []]));
const phases = []; // [variant, start, end] in CLOCK_MONOTONIC seconds, as perf -k mono stamps samples
try {
  for (const n of NAMES) await measure(n, 5); // warm up
  for (let r = 0; r < Number(rounds); r++) {
    for (const n of shuffled(NAMES)) {
      const start = process.hrtime.bigint();
      cpu[n].push(await measure(n, Number(loops)));
      phases.push([n, Number(start) / 1e9, Number(process.hrtime.bigint()) / 1e9]);
    }
  }
  if (!perfFile) {
    console.log(`workerd CPU per fresh isolate, ms (median of ${rounds} rounds of ${loops}; guest logs "hi")`);
    console.log("| variant | takes out | ms | over bare | − wrapper (per-round median) | cheaper than wrapper in |");
    console.log("|---|---|---|---|---|---|");
    for (const n of NAMES) {
      const what = n === "bare" ? "the guest alone" : n === "wrapper" ? "nothing (the wrapper as built)" : EDITS[n]?.[0] ??
        { floor: "all: bench/floor-wrapper.js", dead: "floor + the wrapper's code never called (parse only)", toplevel: "floor + the wrapper's top level run" }[n];
      const over = median(cpu[n].map((x, k) => x - cpu.bare[k]));
      const vs = median(cpu[n].map((x, k) => x - cpu.wrapper[k]));
      const fewer = cpu[n].filter((x, k) => x < cpu.wrapper[k]).length;
      console.log(`| ${n} | ${what} | ${median(cpu[n]).toFixed(2)} | ${over.toFixed(2)} | ${n === "wrapper" ? "" : vs.toFixed(2)} | ${n === "wrapper" ? "" : `${fewer}/${rounds}`} |`);
    }
  }
} finally {
  workerd.kill(perfFile ? "SIGINT" : "SIGTERM");
  await new Promise((r) => workerd.on("exit", r));
  rmSync(dir, { recursive: true, force: true });
}

// With PERF: the samples by variant and category.
if (perfFile) {
  const CATEGORIES = [
    ["isolate creation", ["IsolateBase::IsolateBase"]],
    ["isolate teardown", ["IsolateBase::~IsolateBase", "Worker::~Worker"]],
    ["global context", ["WorkerdApi::newContext"]],
    ["built-in modules (node compat)", ["resolveInternalModule"]],
    ["module compilation", ["jsg::compileModule"]],
    ["  of it: code cache serialized", ["CodeSerializer::Serialize"]],
    ["parsing (module and lazy)", ["Parser::", "PreParser", "Scanner::"]],
    ["lazy function compilation", ["Runtime_CompileLazy"]],
    ["module evaluation", ["SourceTextModule::Evaluate"]],
    ["the request (IoContext::runImpl)", ["IoContext::runImpl"]],
    ["kernel", []],
  ];
  const out = execFileSync("perf", ["script", "-i", perfFile, "-F", "time,ip,sym", "--ns"], { maxBuffer: 1 << 30, stdio: ["ignore", "pipe", "ignore"] }).toString();
  const count = Object.fromEntries(NAMES.map((n) => [n, { all: 0, ...Object.fromEntries(CATEGORIES.map(([c]) => [c, 0])) }]));
  const rounds = Object.fromEntries(NAMES.map((n) => [n, phases.filter((p) => p[0] === n).length]));
  const phaseOf = (t) => phases.find((p) => p[1] <= t && t <= p[2])?.[0];
  for (const sample of out.split("\n\n")) {
    const lines = sample.split("\n").filter((l) => l.trim() !== "");
    if (lines.length === 0) continue;
    const m = /(\d+\.\d+):/.exec(lines[0]);
    const phase = m && phaseOf(Number(m[1]));
    if (!phase) continue;
    count[phase].all++;
    const stack = lines.slice(1).join("\n");
    for (const [c, keys] of CATEGORIES) {
      if (c === "kernel" ? /^\s*ffffffff/.test(lines[1] ?? "") : keys.some((k) => stack.includes(k))) count[phase][c]++;
    }
  }
  const ms = (n, c) => ((c / 2000) * 1000) / (rounds[n] * Number(loops)); // 2000 samples a second
  console.log(`workerd CPU per fresh isolate by category, ms (perf samples; categories overlap)`);
  console.log(`| category | ${NAMES.join(" | ")} |`);
  console.log(`|---|${NAMES.map(() => "---").join("|")}|`);
  console.log(`| all | ${NAMES.map((n) => ms(n, count[n].all).toFixed(2)).join(" | ")} |`);
  for (const [c] of CATEGORIES) console.log(`| ${c} | ${NAMES.map((n) => ms(n, count[n][c]).toFixed(2)).join(" | ")} |`);
}
