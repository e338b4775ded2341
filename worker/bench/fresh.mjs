// The whole fresh path, piece by piece: what a fresh execution costs the
// gateway's workerd over a bare loader Worker, taken apart inside one workerd
// process so the machine's noise matters less. Every step is an HTTP request
// from this script, as the gateway and cmd/bench make them, and adds one
// piece of the gateway's fresh path to the one before:
//
//   noop     a Worker answering "ok": the HTTP request alone
//   admit    the same plus the shim's admit (body read, SHA-256, HMAC,
//            replay cache) over a signed job
//   bare     cmd/bench/bare.js: LOADER.load of the guest alone, its body read
//   wrapper  LOADER.load of the shim's module map for the job (the capture
//            wrapper in front of the guest) through its buffered entrypoint,
//            the answer read as text, as ab.mjs measures it, but per request
//   run      the real shim's signed /run of the same job (buffered, as the
//            gateway sends a synchronous execution): admit, the job's checks,
//            the ledger, the buffered race, the records' checks, the answer
//
// Each shim version (git refs, "." for the working tree, or a directory
// holding a copy of worker/src) gets its own wrapper and run steps, all in
// the same workerd. Per round every step runs `loops` requests one after
// another, in a new random order each round; the workerd
// process's CPU (the sum over its threads of /proc/PID/task/*/schedstat)
// per request is taken for each. It prints the median per step, each
// step's difference to bare, and for two versions the per-round run B−A.
//
//   node worker/bench/fresh.mjs [rounds=12] [loops=40] [refs=.]...
//
// Run from the repository's root. The guest is cmd/bench's helloCode
// (console.log("hi"), answers "ok"), compatibility date 2026-11-17 and no
// flags on every side, as cmd/bench gives both.
import { spawn } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, cpuMs, extract, files, moduleEntry, shuffled } from "./lib.mjs";

const [rounds = "12", loops = "40", ...refArgs] = process.argv.slice(2);
const refs = refArgs.length > 0 ? refArgs : ["."];
const dir = mkdtempSync(join(tmpdir(), "dw-fresh-"));
const SECRET = randomBytes(24).toString("hex");
const DATE = "2026-11-17";
const CODE = `export default { fetch() { console.log("hi"); return new Response("ok"); } }`;

// The job as the gateway sends a synchronous fresh execution of CODE
// (execution.Job's JSON with the default limits).
const job = (id) => ({
  id, modules: { "main.js": CODE }, mainModule: "main.js", env: {}, compatibilityDate: DATE,
  compatibilityFlags: [], outbound: null, request: { method: "GET", url: "http://localhost/", headers: {} },
  maxResponseBytes: 10 << 20, maxLogLineBytes: 16 << 10, maxLogBytes: 1 << 20, buffered: true,
});

// The harness Worker of a version: its shim's sources beside it, the
// wrapper step and the admit step.
const HARNESS = `
import { guestModules } from "./modules.js";
import { admit, MAX_JOB_BYTES } from "./auth.js";
export default {
  async fetch(request, env) {
    const path = new URL(request.url).pathname;
    if (path === "/noop") { await request.arrayBuffer(); return new Response("ok"); }
    if (path.endsWith("/admit")) {
      const a = await admit(request, [env.SHIM_SECRET], MAX_JOB_BYTES);
      return new Response(a.body ? "ok" : a.message, { status: a.body ? 200 : 401 });
    }
    const job = await request.json();
    const worker = env.LOADER.load({ compatibilityDate: job.compatibilityDate, compatibilityFlags: job.compatibilityFlags,
      mainModule: "__dw_wrapper.js", modules: guestModules(job), env: {}, globalOutbound: null });
    const text = await (await worker.getEntrypoint("buffered").fetch("http://localhost/")).text();
    if (!text.includes('"t":"response"')) return new Response(text, { status: 500 });
    return new Response(text);
  },
};
`;

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

const services = [];
const sockets = [];
const workers = [];
const urls = {};
async function addService(name, worker, path) {
  const port = await freePort();
  services.push(`(name = "${name}", worker = .${name})`);
  sockets.push(`(name = "${name}", address = "127.0.0.1:${port}", http = (), service = "${name}")`);
  workers.push(`const ${name} :Workerd.Worker = (${worker});`);
  urls[name] = `http://127.0.0.1:${port}${path}`;
}

const BINDINGS = `bindings = [(name = "LOADER", workerLoader = ()), (name = "SHIM_SECRET", text = "${SECRET}"), (name = "CHANNEL", json = "false")]`;
const SHIM_FLAGS = JSON.stringify(JSON.parse(readFileSync("worker/wrangler.jsonc", "utf8").replace(/^\s*\/\/.*$/gm, "")).compatibility_flags ?? []);

cpSync("cmd/bench/bare.js", join(dir, "bare.js"));
await addService("bare", `modules = [(name = "bare.js", esModule = embed "bare.js")], compatibilityDate = "${DATE}",
  bindings = [(name = "LOADER", workerLoader = ())]`, "/");
const steps = ["noop", "bare"];
for (const [i, ref] of refs.entries()) {
  const root = join(dir, "v" + i);
  extract(ref, join(dir, "v" + i));
  writeFileSync(join(root, "__harness.js"), HARNESS);
  // The first module is a Worker's main one.
  const mods = files(root).filter((p) => !p.endsWith("__harness.js")).map((p) => moduleEntry(dir, p, root))
    .sort((x, y) => Number(y.includes('"index.js"')) - Number(x.includes('"index.js"')));
  const harnessMods = [`(name = "__harness.js", esModule = embed "v${i}/__harness.js")`, ...mods];
  await addService(`shim${i}`, `modules = [${mods.join(", ")}],
  compatibilityDate = "${DATE}", compatibilityFlags = ${SHIM_FLAGS}, ${BINDINGS}`, "/run");
  await addService(`h${i}`, `modules = [${harnessMods.join(", ")}], compatibilityDate = "${DATE}", compatibilityFlags = ${SHIM_FLAGS}, ${BINDINGS}`, "");
  steps.push(`wrapper${i}`, `run${i}`);
  if (i === 0) steps.push("admit0");
}
writeFileSync(join(dir, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (services = [${services.join(", ")}], sockets = [${sockets.join(", ")}]);
${workers.join("\n")}
`);
const workerd = spawn("worker/node_modules/.bin/workerd", ["serve", "--experimental", join(dir, "config.capnp")],
  { stdio: ["ignore", "ignore", "inherit"] });

let seq = 0;
function signed(path, body) {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(12).toString("hex");
  const hash = createHash("sha256").update(body).digest("hex");
  const sig = createHmac("sha256", SECRET).update(`POST\n${path}\n${ts}\n${nonce}\n${hash}`).digest("hex");
  return { "x-gateway-timestamp": ts, "x-gateway-nonce": nonce, "x-gateway-signature": sig, "content-type": "application/json" };
}

// request makes one request of a step and checks its answer.
async function request(step) {
  const id = `ex-${++seq}`;
  let url, body, headers = {};
  if (step === "noop") {
    url = urls.h0 + "/noop";
    body = JSON.stringify(job(id));
  } else if (step === "bare") {
    url = urls.bare;
    body = JSON.stringify({ code: CODE, compatibilityDate: DATE });
  } else {
    const i = /\d+$/.exec(step)[0];
    const kind = step.slice(0, -i.length);
    body = JSON.stringify(job(id));
    if (kind === "wrapper") url = urls["h" + i] + "/wrapper";
    else if (kind === "admit") {
      url = urls["h" + i] + "/admit";
      headers = signed("/admit", body);
    } else {
      url = urls["shim" + i];
      headers = signed("/run", body);
    }
  }
  const r = await fetch(url, { method: "POST", body, headers });
  const text = await r.text();
  if (!r.ok || (step.startsWith("run") && !text.includes('"type":"result","success":true'))) {
    throw new Error(`${step}: ${r.status} ${text.slice(0, 300)}`);
  }
}

async function measure(step, n) {
  const before = cpuMs(workerd.pid);
  for (let i = 0; i < n; i++) await request(step);
  return (cpuMs(workerd.pid) - before) / n;
}

const cpu = Object.fromEntries(steps.map((s) => [s, []]));
try {
  for (let tries = 0; ; tries++) {
    try {
      await request("noop");
      break;
    } catch (err) {
      if (tries > 100) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  for (const s of steps) await measure(s, 10); // warm up
  for (let r = 0; r < Number(rounds); r++) {
    for (const s of shuffled(steps)) cpu[s].push(await measure(s, Number(loops)));
  }
  const m = Object.fromEntries(steps.map((s) => [s, median(cpu[s])]));
  // Per-round differences, then their median: steadier than a difference of medians.
  const diff = (a, b) => median(cpu[a].map((x, k) => x - cpu[b][k]));
  console.log(`workerd CPU per request, ms (median of ${rounds} rounds of ${loops}); refs: ${refs.map((r, i) => `${i}=${r}`).join(" ")}`);
  console.log(`| step | ms | over the step before (per-round median) | over bare |`);
  console.log(`|---|---|---|---|`);
  console.log(`| noop (HTTP request alone) | ${m.noop.toFixed(3)} | | |`);
  console.log(`| admit0 (HMAC verify of the job) | ${m.admit0.toFixed(3)} | ${diff("admit0", "noop").toFixed(3)} over noop | |`);
  console.log(`| bare (LOADER.load, bare.js) | ${m.bare.toFixed(3)} | ${diff("bare", "noop").toFixed(3)} over noop | |`);
  for (const [i] of refs.entries()) {
    console.log(`| wrapper${i} | ${m["wrapper" + i].toFixed(3)} | ${diff("wrapper" + i, "bare").toFixed(3)} over bare | ${diff("wrapper" + i, "bare").toFixed(3)} |`);
    console.log(`| run${i} (the shim's /run) | ${m["run" + i].toFixed(3)} | ${diff("run" + i, "wrapper" + i).toFixed(3)} over wrapper${i} | ${diff("run" + i, "bare").toFixed(3)} |`);
  }
  if (refs.length > 1) {
    console.log(`run1−run0 per round: ${cpu.run0.map((x, k) => (cpu.run1[k] - x).toFixed(2)).join(" ")} (median ${diff("run1", "run0").toFixed(3)})`);
    console.log(`wrapper1−wrapper0 per round: ${cpu.wrapper0.map((x, k) => (cpu.wrapper1[k] - x).toFixed(2)).join(" ")} (median ${diff("wrapper1", "wrapper0").toFixed(3)})`);
  }
} finally {
  workerd.kill();
  rmSync(dir, { recursive: true, force: true });
}
