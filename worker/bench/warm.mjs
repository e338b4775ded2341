// An A/B measure of the shim's warm path: what workerd spends per warm
// (isolate "reuse") execution that the gateway sends on its channel. Three
// workerd processes run side by side: the shim of version A, the shim of
// version B (git refs, "." for the working tree, or a directory holding a
// copy of worker/src), each with the config the gateway writes
// (internal/loader/local/workerd.go: the shim's modules, LOADER, the secret,
// the channel on), and a bare Worker that takes one WebSocket message per
// execution and answers it with LOADER.get(id, …).getEntrypoint().fetch()'s
// body, the least an execution on a channel can cost. The harness opens
// each side's channel as the gateway does (a signed GET of /channel) and
// sends jobs as the gateway sends them (one E message each, the job's JSON:
// a buffered execution with a reuse key), `conc` at a time; per round it
// runs `n` executions on each side, the three sides at the same time (so
// that whatever else the machine does weighs on each alike), and takes each
// process's CPU (the sum over its threads of /proc/PID/task/*/schedstat) per
// execution. It prints the medians.
//
//   node worker/bench/warm.mjs [refA=HEAD] [refB=.] [rounds=11] [n=600] [conc=4] [logArgs=""]
//
// On a machine busy with other work a round's figures move by half; rounds
// next to each other move together, so the median of the per-round
// differences (B-A, and each side less bare) is the figure to read.
//
// The guest answers "ok"; with logArgs (e.g. '"hi"') it logs
// console.log(logArgs) first. Run from the repository's root. With
// PROFILE=file.cpuprofile set, B's workerd runs with its inspector on, and
// one extra run of n executions on B is profiled with V8's sampling profiler
// (Chrome's .cpuprofile format; `node worker/bench/warm.mjs --top file n`
// prints its self time by function, per execution when given n);
// PROFILE_SIDE=a or bare profiles that side instead.
import { spawn } from "node:child_process";
import { createHash, createHmac, randomBytes } from "node:crypto";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import net from "node:net";
import { cpuMs, extract, files, freePort, moduleEntry } from "./lib.mjs";

if (process.argv[2] === "--top") {
  top(JSON.parse(readFileSync(process.argv[3], "utf8")), Number(process.argv[4] ?? 0));
  process.exit(0);
}

const [refA = "HEAD", refB = ".", rounds = "11", n = "600", conc = "4", logArgs = ""] = process.argv.slice(2);
const SECRET = randomBytes(24).toString("hex");
const dir = mkdtempSync(join(tmpdir(), "dw-warm-"));
const code = `export default { fetch() { ${logArgs === "" ? "" : `console.log(${logArgs}); `}return new Response("ok"); } }`;

// shimConfig is the gateway's config for the shim in src (its modules named
// as worker/embed.go names them: their path under src).
function shimConfig(src, port) {
  const mods = files(src).map((path) => moduleEntry(dir, path, src));
  const index = mods.findIndex((m) => m.startsWith('(name = "index.js"'));
  mods.unshift(...mods.splice(index, 1)); // the main module first
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "shim", worker = .shim), (name = "internet", network = (allow = ["public"], deny = ["local", "private"]))],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "shim")],
);
const shim :Workerd.Worker = (
  modules = [${mods.join(",\n    ")}],
  compatibilityDate = "2026-11-17",
  compatibilityFlags = ["global_fetch_strictly_public"],
  bindings = [
    (name = "LOADER", workerLoader = ()),
    (name = "SHIM_SECRET", fromEnvironment = "GATEWAY_SHIM_SECRET"),
    (name = "CHANNEL", json = "true"),
  ],
  globalOutbound = "internet",
);
`;
}

// BARE answers each message (kind, id, job JSON: the channel's framing) with
// the guest's body as a W message: LOADER.get, getEntrypoint().fetch, read.
const BARE = `
export default {
  fetch(request, env) {
    const [client, server] = Object.values(new WebSocketPair());
    server.accept();
    server.binaryType = "arraybuffer";
    const decoder = new TextDecoder();
    server.addEventListener("message", async ({ data }) => {
      const id = new DataView(data).getUint32(1);
      const job = JSON.parse(decoder.decode(new Uint8Array(data, 5)));
      const worker = env.LOADER.get(job.reuseKey, async () => ({ compatibilityDate: job.compatibilityDate,
        mainModule: job.mainModule, modules: job.modules, env: {}, globalOutbound: null }));
      const body = new Uint8Array(await (await worker.getEntrypoint().fetch("http://localhost/")).arrayBuffer());
      const out = new Uint8Array(7 + body.length);
      out[0] = 0x57;
      new DataView(out.buffer).setUint32(1, id);
      out[5] = 0;
      out[6] = 200;
      out.set(body, 7);
      server.send(out);
    });
    return new Response(null, { status: 101, webSocket: client });
  },
};
`;

function bareConfig(path, port) {
  return `using Workerd = import "/workerd/workerd.capnp";
const config :Workerd.Config = (
  services = [(name = "bare", worker = .bare)],
  sockets = [(name = "http", address = "127.0.0.1:${port}", http = (), service = "bare")],
);
const bare :Workerd.Worker = (
  modules = [(name = "bare.js", esModule = embed "${path}")],
  compatibilityDate = "2026-11-17",
  bindings = [(name = "LOADER", workerLoader = ())],
);
`;
}

// start runs workerd with config; inspector, if given, is its inspector's port.
function start(config, inspector) {
  const args = ["serve", "--experimental", config];
  if (inspector) args.push(`--inspector-addr=127.0.0.1:${inspector}`);
  return spawn("worker/node_modules/.bin/workerd", args, {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, GATEWAY_SHIM_SECRET: SECRET },
  });
}

// A WebSocket client, just what the harness needs: one connection, masked
// frames out, unfragmented frames in (workerd sends each message whole).
async function connect(port, path, headers) {
  for (let tries = 0; ; tries++) {
    try {
      return await connectOnce(port, path, headers);
    } catch (err) {
      if (tries > 200 || err.code !== "ECONNREFUSED") throw err;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
}

function connectOnce(port, path, headers) {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, "127.0.0.1");
    socket.setNoDelay(true);
    let buf = Buffer.alloc(0);
    let open = false;
    const ws = {
      onmessage: null,
      send(data, text = false) {
        const payload = typeof data === "string" ? Buffer.from(data) : Buffer.from(data.buffer, data.byteOffset, data.length);
        const len = payload.length;
        const head = len < 126 ? 2 : len < 65536 ? 4 : 10;
        const frame = Buffer.alloc(head + 4 + len);
        frame[0] = 0x80 | (text ? 1 : 2);
        if (len < 126) frame[1] = 0x80 | len;
        else if (len < 65536) {
          frame[1] = 0x80 | 126;
          frame.writeUInt16BE(len, 2);
        } else {
          frame[1] = 0x80 | 127;
          frame.writeBigUInt64BE(BigInt(len), 2);
        }
        frame.fill(0, head, head + 4); // a zero mask: the payload as it is
        payload.copy(frame, head + 4);
        socket.write(frame);
      },
      close: () => socket.destroy(),
    };
    socket.on("error", reject);
    socket.on("connect", () => {
      const lines = [`GET ${path} HTTP/1.1`, `Host: 127.0.0.1:${port}`, "Upgrade: websocket", "Connection: Upgrade",
        `Sec-WebSocket-Key: ${randomBytes(16).toString("base64")}`, "Sec-WebSocket-Version: 13"];
      for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
    socket.on("data", (chunk) => {
      buf = buf.length ? Buffer.concat([buf, chunk]) : chunk;
      if (!open) {
        const end = buf.indexOf("\r\n\r\n");
        if (end < 0) return;
        const head = buf.subarray(0, end).toString();
        if (!head.startsWith("HTTP/1.1 101")) {
          reject(new Error(`upgrade refused: ${head.split("\r\n")[0]} ${buf.subarray(end + 4).toString()}`));
          socket.destroy();
          return;
        }
        open = true;
        buf = buf.subarray(end + 4);
        resolve(ws);
      }
      for (;;) {
        if (buf.length < 2) return;
        let len = buf[1] & 0x7f;
        let off = 2;
        if (len === 126) {
          if (buf.length < 4) return;
          len = buf.readUInt16BE(2);
          off = 4;
        } else if (len === 127) {
          if (buf.length < 10) return;
          len = Number(buf.readBigUInt64BE(2));
          off = 10;
        }
        if (buf.length < off + len) return;
        const opcode = buf[0] & 0x0f;
        const payload = buf.subarray(off, off + len);
        buf = buf.subarray(off + len);
        if (opcode === 1 || opcode === 2) ws.onmessage?.(opcode === 1 ? payload.toString() : payload);
      }
    });
  });
}

function signedHeaders(path) {
  const ts = String(Math.floor(Date.now() / 1000));
  const nonce = randomBytes(12).toString("hex");
  const bodyHash = createHash("sha256").update("").digest("hex");
  const sig = createHmac("sha256", SECRET).update(`GET\n${path}\n${ts}\n${nonce}\n${bodyHash}`).digest("hex");
  return { "X-Gateway-Timestamp": ts, "X-Gateway-Nonce": nonce, "X-Gateway-Signature": sig };
}

const job = (id) => JSON.stringify({
  id, modules: { "main.js": code }, mainModule: "main.js", env: {}, compatibilityDate: "2026-11-17",
  compatibilityFlags: null, outbound: null, request: { method: "GET", url: "http://localhost/" },
  maxResponseBytes: 1 << 20, maxLogLineBytes: 64 << 10, maxLogBytes: 1 << 20, reuseKey: "warm-bench", buffered: true,
});

// channel is a side's open channel: run(count) runs count executions,
// conc at a time, and checks each answer.
function channel(ws, side) {
  const waiting = new Map();
  const bodies = new Map();
  ws.onmessage = (data) => {
    const id = data.readUInt32BE(1);
    const kind = data[0];
    if (kind === 0x57) {
      waiting.get(id)?.(data.subarray(7).toString());
    } else if (kind === 0x48) {
      bodies.set(id, "");
    } else if (kind === 0x44) {
      bodies.set(id, bodies.get(id) + data.subarray(5).toString());
      const credit = Buffer.alloc(9);
      credit[0] = 0x43;
      credit.writeUInt32BE(id, 1);
      credit.writeUInt32BE(data.length - 5, 5);
      ws.send(credit);
    } else if (kind === 0x46) {
      waiting.get(id)?.(bodies.get(id));
      bodies.delete(id);
    }
  };
  let next = 1;
  const one = () => new Promise((resolve, reject) => {
    const id = next++;
    const stuck = setTimeout(() => reject(new Error(`${side}: execution ${id} got no answer in 30 s`)), 30000);
    waiting.set(id, (body) => {
      waiting.delete(id);
      clearTimeout(stuck);
      if (side === "bare" ? body !== "ok" : !body.includes('"success":true')) reject(new Error(`${side}: ${body}`));
      else resolve();
    });
    const payload = Buffer.from(job(`x${id}`));
    const frame = Buffer.alloc(5 + payload.length);
    frame[0] = 0x45;
    frame.writeUInt32BE(id, 1);
    payload.copy(frame, 5);
    ws.send(frame);
  });
  return {
    async run(count) {
      let left = count;
      const worker = async () => {
        while (left > 0) {
          left--;
          await one();
        }
      };
      await Promise.all(Array.from({ length: Number(conc) }, worker));
    },
  };
}

const median = (xs) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)];

// profile records a CPU profile of B's workerd while it runs count executions.
async function profile(port, side, count, out) {
  const list = await (await fetch(`http://127.0.0.1:${port}/json/list`)).json();
  const target = list.find((t) => t.title?.includes(side.worker)) ?? list[0];
  const path = new URL(target.webSocketDebuggerUrl).pathname;
  const ws = await connect(port, path, {});
  let id = 0;
  const pending = new Map();
  ws.onmessage = (text) => {
    const msg = JSON.parse(text);
    if (msg.id !== undefined) pending.get(msg.id)?.(msg);
  };
  const call = (method, params = {}) => new Promise((resolve) => {
    const i = ++id;
    pending.set(i, resolve);
    ws.send(JSON.stringify({ id: i, method, params }), true);
  });
  await call("Profiler.enable");
  await call("Profiler.setSamplingInterval", { interval: 50 });
  await call("Profiler.start");
  await side.ch.run(count);
  const { result } = await call("Profiler.stop");
  writeFileSync(out, JSON.stringify(result.profile));
  ws.close();
}

// top prints a .cpuprofile's self time by function, largest first.
function top(p, count) {
  const self = new Map();
  const total = p.samples.length;
  const byId = new Map(p.nodes.map((node) => [node.id, node]));
  const counts = new Map();
  for (const s of p.samples) counts.set(s, (counts.get(s) ?? 0) + 1);
  for (const [nodeId, c] of counts) {
    const { functionName, url, lineNumber } = byId.get(nodeId).callFrame;
    const key = `${functionName || "(anonymous)"} ${url.split("/").pop()}:${lineNumber + 1}`;
    self.set(key, (self.get(key) ?? 0) + c);
  }
  for (const [k, c] of [...self].sort((a, b) => b[1] - a[1]).slice(0, 40)) {
    const us = count > 0 ? `${(((p.endTime - p.startTime) * c) / total / count).toFixed(1).padStart(7)} µs  ` : "";
    console.log(`${(100 * c / total).toFixed(1).padStart(5)}%  ${us}${k}`);
  }
}

const procs = [];
try {
  extract(refA, join(dir, "a"));
  extract(refB, join(dir, "b"));
  writeFileSync(join(dir, "bare.js"), BARE);
  const sides = {};
  const inspector = process.env.PROFILE ? await freePort() : undefined;
  const profiled = process.env.PROFILE_SIDE ?? "b";
  for (const name of ["a", "b", "bare"]) {
    const port = await freePort();
    const config = join(dir, `${name}.capnp`);
    writeFileSync(config, name === "bare" ? bareConfig("bare.js", port) : shimConfig(join(dir, name), port));
    const proc = start(config, name === profiled ? inspector : undefined);
    procs.push(proc);
    const ws = await connect(port, "/channel", name === "bare" ? {} : signedHeaders("/channel"));
    sides[name] = { pid: proc.pid, ch: channel(ws, name), worker: name === "bare" ? "bare" : "shim" };
  }
  const cpu = { a: [], b: [], bare: [] };
  const wall = { a: [], b: [], bare: [] };
  for (const name of ["a", "b", "bare"]) await sides[name].ch.run(200); // warm up
  // The three sides run at the same time, so that they share whatever else
  // the machine is doing; with TOGETHER=0 one after another instead, the
  // order alternating.
  const together = process.env.TOGETHER !== "0";
  const measure = async (name) => {
    const { pid, ch } = sides[name];
    const before = cpuMs(pid);
    const t = performance.now();
    await ch.run(Number(n));
    wall[name].push((1000 * Number(n)) / (performance.now() - t));
    cpu[name].push((1000 * (cpuMs(pid) - before)) / Number(n));
  };
  for (let i = 0; i < Number(rounds); i++) {
    const order = i % 2 === 0 ? ["a", "b", "bare"] : ["bare", "b", "a"];
    if (together) await Promise.all(order.map(measure));
    else for (const name of order) await measure(name);
    console.log(`round ${i + 1}: ${order.map((name) => `${name} ${cpu[name].at(-1).toFixed(0)} µs`).join("   ")}`);
  }
  const m = (name) => median(cpu[name]);
  console.log(`workerd CPU per warm execution (medians of ${rounds} rounds, ${n} executions each, concurrency ${conc}):`);
  console.log(`  A ${refA}: ${m("a").toFixed(0)} µs   B ${refB}: ${m("b").toFixed(0)} µs   bare: ${m("bare").toFixed(0)} µs`);
  console.log(`  B-A ${(m("b") - m("a")).toFixed(0)} µs   A-bare ${(m("a") - m("bare")).toFixed(0)} µs   B-bare ${(m("b") - m("bare")).toFixed(0)} µs`);
  const diff = (x, y) => cpu[x].map((v, i) => v - cpu[y][i]);
  console.log(`  per-round B-A: ${diff("b", "a").map((d) => d.toFixed(0)).join(" ")}`);
  console.log(`  medians of the per-round differences: B-A ${median(diff("b", "a")).toFixed(0)} µs   A-bare ${median(diff("a", "bare")).toFixed(0)} µs   B-bare ${median(diff("b", "bare")).toFixed(0)} µs`);
  console.log(`  executions/s${together ? " (the three sides at once)" : ""}: A ${median(wall.a).toFixed(0)}   B ${median(wall.b).toFixed(0)}   bare ${median(wall.bare).toFixed(0)}`);
  if (process.env.PROFILE) {
    await profile(inspector, sides[profiled], Number(n), process.env.PROFILE);
    console.log(`profile of ${profiled}: ${process.env.PROFILE}`);
  }
} finally {
  for (const p of procs) p.kill();
  rmSync(dir, { recursive: true, force: true });
}
