// Whether a V8 flag the gateway gives its workerd processes changes what a
// bare fresh isolate costs: two workerd processes, one without v8Flags (as
// cmd/bench's bare Worker runs) and one with the flag (the local runtime
// passes --max-old-space-size from runtime.v8_heap_mb), each creating
// `loops` fresh isolates of cmd/bench's hello world per round, the order
// alternating; CPU per isolate from /proc/PID/task/*/schedstat.
//
//   node worker/bench/v8flag.mjs [rounds=12] [loops=30] [flag=--max-old-space-size=512]
//
// Run from the repository's root.
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { freePort, cpuMs } from "./lib.mjs";

const [rounds = "12", loops = "30", flag = "--max-old-space-size=512"] = process.argv.slice(2);
const CODE = `export default { fetch() { console.log("hi"); return new Response("ok"); } }`;
const HARNESS = `export default {
  async fetch(request, env) {
    const { loops } = await request.json();
    for (let i = 0; i < loops; i++) {
      const worker = env.LOADER.load({ compatibilityDate: "2026-11-17", compatibilityFlags: [], mainModule: "main.js",
        modules: { "main.js": ${JSON.stringify(CODE)} }, globalOutbound: null });
      await (await worker.getEntrypoint().fetch("http://localhost/")).text();
    }
    return new Response("ok");
  },
};`;

const dirs = [];
const sides = {};
for (const [name, v8Flags] of [["plain", ""], ["flagged", `v8Flags = [${JSON.stringify(flag)}],`]]) {
  const dir = mkdtempSync(join(tmpdir(), "dw-v8flag-"));
  dirs.push(dir);
  const port = await freePort();
  writeFileSync(join(dir, "h.js"), HARNESS);
  writeFileSync(join(dir, "config.capnp"), `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  ${v8Flags}
  services = [(name = "h", worker = .h)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "h")],
);
const h :Workerd.Worker = (
  modules = [(name = "h.js", esModule = embed "h.js")],
  compatibilityDate = "2026-11-17",
  bindings = [(name = "LOADER", workerLoader = ())],
);
`);
  const proc = spawn("worker/node_modules/.bin/workerd", ["serve", "--experimental", join(dir, "config.capnp")],
    { stdio: ["ignore", "ignore", "inherit"] });
  sides[name] = { port, proc, cpu: [] };
}

async function measure(name, n) {
  const side = sides[name];
  for (let tries = 0; ; tries++) {
    try {
      const before = cpuMs(side.proc.pid);
      const r = await fetch(`http://127.0.0.1:${side.port}/`, { method: "POST", body: JSON.stringify({ loops: n }) });
      if (!r.ok) throw new Error(`${name}: ${r.status} ${await r.text()}`);
      await r.text();
      return (cpuMs(side.proc.pid) - before) / n;
    } catch (err) {
      if (tries > 100 || err.cause?.code !== "ECONNREFUSED") throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
try {
  for (const name of ["plain", "flagged"]) await measure(name, 5); // warm up
  for (let i = 0; i < Number(rounds); i++) {
    for (const name of i % 2 === 0 ? ["flagged", "plain"] : ["plain", "flagged"]) {
      sides[name].cpu.push(await measure(name, Number(loops)));
    }
  }
  const d = sides.flagged.cpu.map((x, k) => x - sides.plain.cpu[k]);
  console.log(`workerd CPU per bare fresh isolate: without v8Flags ${median(sides.plain.cpu).toFixed(3)} ms, with ${flag} ` +
    `${median(sides.flagged.cpu).toFixed(3)} ms; per-round difference ${median(d).toFixed(3)} ms, higher in ${d.filter((x) => x > 0).length}/${rounds}`);
} finally {
  for (const name in sides) sides[name].proc.kill();
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
}
