// What the workerd benchmarks here share: a free port, a process's CPU
// time, a copy of the shim's sources at a git ref, the files under a
// directory, a capnp module entry, and a shuffled order. Run the scripts
// from the repository's root.
import { execFileSync } from "node:child_process";
import { cpSync, existsSync, mkdirSync, readFileSync, readdirSync, statSync } from "node:fs";
import { join, relative } from "node:path";
import net from "node:net";

// freePort resolves to a loopback port nothing listens on.
export async function freePort() {
  return new Promise((resolve) => {
    const s = net.createServer().listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

// cpuMs is the CPU time, in ms, process pid's threads have run (the sum of
// /proc/PID/task/*/schedstat): a busy machine inflates it much less than
// wall time. NaN once the process is gone.
export function cpuMs(pid) {
  let ns = 0;
  let tasks;
  try {
    tasks = readdirSync(`/proc/${pid}/task`);
  } catch {
    return NaN;
  }
  for (const t of tasks) {
    try {
      ns += Number(readFileSync(`/proc/${pid}/task/${t}/schedstat`, "utf8").split(" ")[0]);
    } catch {
      // the thread ended
    }
  }
  return ns / 1e6;
}

// extract copies worker/src as it is at ref into the directory into: "."
// is the working tree, an existing directory a copy of worker/src.
export function extract(ref, into) {
  if (ref === "." || existsSync(ref)) {
    cpSync(ref === "." ? "worker/src" : ref, into, { recursive: true });
    return;
  }
  const tar = execFileSync("git", ["archive", ref, "worker/src"], { maxBuffer: 1 << 28 });
  mkdirSync(into, { recursive: true });
  execFileSync("tar", ["-x", "--strip-components=2", "-C", into], { input: tar });
}

// files lists the files under root, at any depth.
export function files(root) {
  const out = [];
  for (const name of readdirSync(root)) {
    const path = join(root, name);
    if (statSync(path).isDirectory()) out.push(...files(path));
    else out.push(path);
  }
  return out;
}

// moduleEntry is the capnp module of the file at path, embedded relative to
// the config's directory base and named relative to root: JSON as json,
// the guest's modules as text (the shim hands them to isolates), the rest
// as ES modules.
export function moduleEntry(base, path, root = base) {
  const name = relative(root, path);
  const embed = relative(base, path);
  if (name.endsWith(".json")) return `(name = "${name}", json = embed "${embed}")`;
  if (name.includes("guest/")) return `(name = "${name}", text = embed "${embed}")`;
  return `(name = "${name}", esModule = embed "${embed}")`;
}

// shuffled is names in a random order.
export function shuffled(names) {
  const out = [...names];
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    [out[i], out[j]] = [out[j], out[i]];
  }
  return out;
}
