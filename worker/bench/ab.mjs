// An A/B measure of what the capture wrapper costs per fresh isolate,
// taken inside workerd so the machine's noise matters less. One workerd
// process holds the shim's sources of two versions: git refs, "." for the
// working tree, or a directory holding a copy of worker/src. Per round it
// creates `loops` isolates one after another with each version's module map
// (src/modules.js guestModules, so both must have that file) and as many
// bare isolates of the same guest, the versions' order alternating from
// round to round. It prints the median milliseconds per isolate of each,
// B's difference to A and each round's.
//
//   node worker/bench/ab.mjs [refA=HEAD] [refB=.] [rounds=10] [loops=50] [logArgs='"hi"']
//
// The guest logs console.log(logArgs) and answers "ok"; with logArgs ""
// it logs nothing (a silent guest).
//
// Run from the repository's root. A wrapped isolate's figure includes the
// guest's console.log and the buffered answer, read by the caller, as the
// shim's path does; a bare one's its body read by the caller.
//
// Besides wall time it prints the workerd process's CPU time per isolate
// (the sum over its threads of /proc/PID/task/*/schedstat, on Linux), which
// a machine busy with other work inflates much less than wall time.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, cpuMs, extract, files, moduleEntry } from "./lib.mjs";

const [refA = "HEAD", refB = ".", rounds = "10", loops = "50", logArgs = '"hi"'] = process.argv.slice(2);
const dir = mkdtempSync(join(tmpdir(), "dw-ab-"));

const HARNESS = `
import { guestModules as a } from "./a/modules.js";
import { guestModules as b } from "./b/modules.js";
const code = ${JSON.stringify(`export default { fetch() { ${logArgs === "" ? "" : `console.log(${logArgs});`} return new Response("ok"); } }`)};
const job = () => ({ id: "x", mainModule: "main.js", modules: { "main.js": code }, maxResponseBytes: 1 << 20,
  maxLogLineBytes: 16384, maxLogBytes: 1 << 20 });
const sides = {
  a: () => ({ mainModule: "__dw_wrapper.js", modules: a(job()), entry: "buffered" }),
  b: () => ({ mainModule: "__dw_wrapper.js", modules: b(job()), entry: "buffered" }),
  bare: () => ({ mainModule: "main.js", modules: { "main.js": code }, entry: undefined }),
};
export default {
  async fetch(request, env) {
    const { side, loops } = await request.json();
    const start = performance.now();
    let t = Date.now();
    for (let i = 0; i < loops; i++) {
      const { mainModule, modules, entry } = sides[side]();
      const worker = env.LOADER.load({ compatibilityDate: "2026-11-17", compatibilityFlags: [], mainModule, modules,
        env: {}, globalOutbound: null });
      const text = await (await worker.getEntrypoint(entry).fetch("http://localhost/")).text();
      if (!text.includes(side === "bare" ? "ok" : '"t":"response"')) throw new Error(side + ": " + text);
    }
    return Response.json({ ms: (Date.now() - t) / loops });
  },
};
`;

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

extract(refA, join(dir, "a"));
extract(refB, join(dir, "b"));
writeFileSync(join(dir, "harness.js"), HARNESS);
const port = await freePort();
const mods = ["harness.js", ...files(join(dir, "a")), ...files(join(dir, "b"))]
  .map((p) => (p === "harness.js" ? `(name = "harness.js", esModule = embed "harness.js")` : moduleEntry(dir, p)));
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
const workerd = spawn("worker/node_modules/.bin/workerd", ["serve", "--experimental", join(dir, "config.capnp")],
  { stdio: ["ignore", "ignore", "inherit"] });

async function measure(side, n) {
  for (let tries = 0; ; tries++) {
    try {
      const before = cpuMs(workerd.pid);
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: JSON.stringify({ side, loops: n }) });
      if (!r.ok) throw new Error(`${side}: ${r.status} ${await r.text()}`);
      const { ms } = await r.json();
      cpu[side].push((cpuMs(workerd.pid) - before) / n);
      return ms;
    } catch (err) {
      if (tries > 100 || !(err.cause?.code === "ECONNREFUSED")) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const cpu = { a: [], b: [], bare: [] };
try {
  const got = { a: [], b: [], bare: [] };
  for (const side of ["a", "b", "bare"]) await measure(side, 10); // warm up
  for (const side of ["a", "b", "bare"]) cpu[side].length = 0;
  for (let i = 0; i < Number(rounds); i++) {
    const order = i % 2 === 0 ? ["a", "b", "bare"] : ["b", "a", "bare"];
    for (const side of order) got[side].push(await measure(side, Number(loops)));
  }
  const a = median(got.a), b = median(got.b), bare = median(got.bare);
  console.log(`A ${refA}: ${a.toFixed(3)} ms/isolate   B ${refB}: ${b.toFixed(3)} ms/isolate   bare: ${bare.toFixed(3)} ms/isolate`);
  console.log(`B/A ${(b / a).toFixed(3)}   B-A ${(b - a).toFixed(3)} ms   A-bare ${(a - bare).toFixed(3)} ms   B-bare ${(b - bare).toFixed(3)} ms`);
  console.log(`per-round B-A: ${got.a.map((x, i) => (got.b[i] - x).toFixed(2)).join(" ")}`);
  const ca = median(cpu.a), cb = median(cpu.b), cbare = median(cpu.bare);
  console.log(`workerd CPU: A ${ca.toFixed(3)} ms/isolate   B ${cb.toFixed(3)}   bare ${cbare.toFixed(3)}   B-A ${(cb - ca).toFixed(3)} ms   A-bare ${(ca - cbare).toFixed(3)} ms`);
  console.log(`per-round CPU B-A: ${cpu.a.map((x, i) => (cpu.b[i] - x).toFixed(2)).join(" ")}`);
} finally {
  workerd.kill();
  rmSync(dir, { recursive: true, force: true });
}
