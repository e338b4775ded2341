// Masking throughput of a capability's answer in node (V8, as workerd),
// without the runtime around it: maskBody over an answer streamed in
// chunks, and maskBytes over one read whole. The answer is filler text with
// a secret echoed once per 64 KiB; the secrets are a capability's usual
// three (a token, "Bearer " + token, a tenant id). Prints MB per CPU
// second per case, the median of `rounds`.
//
//   node worker/bench/mask.mjs [module=worker/src/mask.js] [MB=64] [rounds=5]
//
// Give another module exporting maskBody and maskBytes (say, the old
// scope.js: `git show df3f885:worker/src/scope.js > /tmp/scope.js`) to compare.
import { resolve } from "node:path";
import { pathToFileURL } from "node:url";

const [file = "worker/src/mask.js", mb = "64", rounds = "5"] = process.argv.slice(2);
const { maskBody, maskBytes } = await import(pathToFileURL(resolve(file)).href);

const token = "tok-7Qx93vLmZ2";
const secrets = [token, "Bearer " + token, "tenant-Hk4pW81"];
const total = Number(mb) << 20;
const block = new TextEncoder().encode("filler text, ".repeat(5042).slice(0, 64 << 10));
block.set(new TextEncoder().encode("Bearer " + token), 32 << 10);

function chunks(size) {
  let sent = 0;
  return new ReadableStream({
    pull(controller) {
      if (sent >= total) return controller.close();
      const at = sent % block.length;
      const n = Math.min(size, block.length - at, total - sent);
      controller.enqueue(block.slice(at, at + n));
      sent += n;
    },
  }, { highWaterMark: 0 });
}

async function drain(stream) {
  let n = 0;
  for await (const c of stream) n += c.length;
  return n;
}

// What capability.js reads whole: answers up to 64 KiB.
const whole = block;

const cases = {
  "stream, 4 KiB chunks": async () => drain(maskBody(chunks(4 << 10), secrets)),
  "stream, 64 KiB chunks": async () => drain(maskBody(chunks(64 << 10), secrets)),
  "stream, 4 KiB chunks, not masked (floor)": async () => drain(chunks(4 << 10).pipeThrough(new TransformStream())),
  "stream, 64 KiB chunks, not masked (floor)": async () => drain(chunks(64 << 10).pipeThrough(new TransformStream())),
  "whole, 64 KiB answers": async () => {
    for (let n = 0; n < total; n += whole.length) maskBytes(whole, secrets);
  },
};

// MB per second of this process's CPU time (user and system), which a
// machine busy with other work changes less than the wall clock.
console.log(`| case | MB per CPU second (median of ${rounds}) |\n|---|---|`);
for (const [name, run] of Object.entries(cases)) {
  const rates = [];
  for (let r = 0; r < Number(rounds); r++) {
    const c0 = process.cpuUsage();
    await run();
    const c = process.cpuUsage(c0);
    rates.push(total / (1 << 20) / ((c.user + c.system) / 1e6));
  }
  rates.sort((a, b) => a - b);
  console.log(`| ${name} | ${rates[rates.length >> 1].toFixed(1)} |`);
}
