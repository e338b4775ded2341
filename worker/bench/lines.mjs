// How long the shim's line splitter takes over one long line (a record of
// escaped bytes, as the wrapper writes a big response body), fed in the
// 4 KiB chunks workerd hands the shim: the figure the node tests leave out
// (they count the splitter's work instead). Prints CPU milliseconds per
// line and per MB, the median of `rounds`.
//
//   node worker/bench/lines.mjs [rounds=5]
import { LineSplitter } from "../src/lines.js";

const [rounds = "5"] = process.argv.slice(2);

function lineOf(bytes) {
  const line = new Uint8Array(bytes + 1).fill(0x5c);
  line[bytes] = 0x0a;
  return line;
}

function split(line) {
  const s = new LineSplitter(line.length - 1);
  for (let i = 0; i < line.length; i += 4096) s.push(line.subarray(i, i + 4096));
}

console.log(`| line | CPU ms (median of ${rounds}) | CPU ms per MB |\n|---|---|---|`);
for (const mb of [1, 6, 8, 32]) {
  const times = [];
  const line = lineOf(mb << 20);
  for (let r = 0; r < Number(rounds); r++) {
    const c0 = process.cpuUsage();
    split(line);
    const c = process.cpuUsage(c0);
    times.push((c.user + c.system) / 1000);
  }
  times.sort((a, b) => a - b);
  const ms = times[times.length >> 1];
  console.log(`| ${mb} MB | ${ms.toFixed(1)} | ${(ms / mb).toFixed(2)} |`);
}
