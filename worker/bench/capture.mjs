// What the capture wrapper costs per fresh isolate, for several versions of
// it side by side and three guests, in one workerd: the table of
// docs/performance.md ("The lean capture"). Each version is a git ref, "."
// for the working tree, a directory holding a copy of worker/src (its
// src/modules.js guestModules gives the guest's module map), or "floor":
// the working tree with bench/floor-wrapper.js, a wrapper with none of the
// capture's features, in place of the built one. Per round, for
// each guest, it creates `loops` fresh isolates of each version and as many
// bare ones (the guest's module alone), the order rotating from round to
// round, and takes workerd's CPU time over them (the sum over its threads
// of /proc/PID/task/*/schedstat). It prints, per version and guest, the
// median over rounds of (version − bare of the same round), in ms of
// workerd CPU per isolate, and in how many rounds the version cost more
// than the first one.
//
//   node worker/bench/capture.mjs [rounds=12] [loops=20] REF...
//
// Run from the repository's root. The guests: silent (answers "ok"), one
// that logs a string, one that logs a string, an object and an error, and
// one that logs what only the full formatter prints (a nested object, a
// Map).
import { spawn } from "node:child_process";
import { cpSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { cpuMs, extract, files, freePort, moduleEntry } from "./lib.mjs";

const [rounds = "12", loops = "20", ...refs] = process.argv.slice(2);
if (refs.length === 0) refs.push("main", ".");
const dir = mkdtempSync(join(tmpdir(), "dw-capture-"));

const GUESTS = {
  silent: "",
  string: '"hi"',
  "object+error": '"hi", {a:1}, new Error("e")',
  nested: '"hi", {a:{b:[1,2]}}, new Map([[1,2]])',
};

function extractSide(ref, into) {
  if (ref === "floor") {
    cpSync("worker/src", join(dir, into), { recursive: true });
    cpSync("worker/bench/floor-wrapper.js", join(dir, into, "guest", "min", "__dw_wrapper.js"));
    return;
  }
  extract(ref, join(dir, into));
}

const sides = refs.map((_, i) => `v${i}`);
const HARNESS = `
${sides.map((s) => `import { guestModules as ${s} } from "./${s}/modules.js";`).join("\n")}
const versions = { ${sides.join(", ")} };
const GUESTS = ${JSON.stringify(GUESTS)};
const code = (logArgs) => \`export default { fetch() { \${logArgs === "" ? "" : \`console.log(\${logArgs});\`} return new Response("ok"); } }\`;
const job = (source) => ({ id: "x", mainModule: "main.js", modules: { "main.js": source }, maxResponseBytes: 1 << 20,
  maxLogLineBytes: 16384, maxLogBytes: 1 << 20 });
export default {
  async fetch(request, env) {
    const { side, guest, loops } = await request.json();
    const source = code(GUESTS[guest]);
    for (let i = 0; i < loops; i++) {
      const wrapped = side !== "bare";
      const worker = env.LOADER.load({ compatibilityDate: "2026-11-17", compatibilityFlags: [],
        mainModule: wrapped ? "__dw_wrapper.js" : "main.js",
        modules: wrapped ? versions[side](job(source)) : { "main.js": source }, env: {}, globalOutbound: null });
      const text = await (await worker.getEntrypoint(wrapped ? "buffered" : undefined).fetch("http://localhost/")).text();
      if (!text.includes(wrapped ? '"t":"response"' : "ok")) throw new Error(side + ": " + text);
    }
    return new Response("done");
  },
};
`;

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

refs.forEach((ref, i) => extractSide(ref, sides[i]));
writeFileSync(join(dir, "harness.js"), HARNESS);
const port = await freePort();
const mods = ["harness.js", ...sides.flatMap((s) => files(join(dir, s)))]
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
process.on("SIGINT", () => {
  workerd.kill();
  process.exit(130);
});

async function measure(side, guest, n) {
  for (let tries = 0; ; tries++) {
    try {
      const before = cpuMs(workerd.pid);
      const r = await fetch(`http://127.0.0.1:${port}/`, { method: "POST", body: JSON.stringify({ side, guest, loops: n }) });
      if (!r.ok) throw new Error(`${side}: ${r.status} ${await r.text()}`);
      await r.text();
      return (cpuMs(workerd.pid) - before) / n;
    } catch (err) {
      if (tries > 100 || !(err.cause?.code === "ECONNREFUSED")) throw err;
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

try {
  const all = [...sides, "bare"];
  const over = {}; // over[side][guest]: per round, CPU over bare
  const bare = {};
  for (const s of sides) over[s] = Object.fromEntries(Object.keys(GUESTS).map((g) => [g, []]));
  for (const g of Object.keys(GUESTS)) bare[g] = [];
  for (const g of Object.keys(GUESTS)) for (const s of all) await measure(s, g, 5); // warm up
  for (let i = 0; i < Number(rounds); i++) {
    for (const g of Object.keys(GUESTS)) {
      const order = all.map((_, k) => all[(k + i) % all.length]);
      const got = {};
      for (const s of order) got[s] = await measure(s, g, Number(loops));
      bare[g].push(got.bare);
      for (const s of sides) over[s][g].push(got[s] - got.bare);
    }
    process.stderr.write(`round ${i + 1}/${rounds}\n`);
  }
  const guests = Object.keys(GUESTS);
  console.log(`workerd CPU per fresh isolate over bare, ms (median of ${rounds} rounds of ${loops}; rounds above ${refs[0]}):`);
  console.log(["version", ...guests].join(" | "));
  refs.forEach((ref, i) => {
    const cells = guests.map((g) => {
      const xs = over[sides[i]][g];
      const above = i === 0 ? "" : ` (${xs.filter((x, r) => x > over.v0[g][r]).length}/${xs.length})`;
      return `${median(xs).toFixed(3)}${above}`;
    });
    console.log([ref, ...cells].join(" | "));
  });
  console.log(["bare itself", ...guests.map((g) => median(bare[g]).toFixed(3))].join(" | "));
} finally {
  workerd.kill();
  rmSync(dir, { recursive: true, force: true });
}
