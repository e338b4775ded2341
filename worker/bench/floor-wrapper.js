// The floor of the lean-capture table (docs/performance.md): a wrapper with
// none of the capture's features, like the 35-line one of the issue's
// experiment. It replaces console.log and friends with plain functions,
// imports the guest, and answers the buffered entrypoint with the records
// the shim expects. `node worker/bench/capture.mjs R L … floor` puts it in
// place of the built wrapper. Not for use: no caps, no tamper-proofing.
import options from "./__dw_options.json";
const MAIN = "./" + options.main;
let out = "";
const q = JSON.stringify;
for (const level of ["log", "info", "warn", "error", "debug"]) {
  console[level] = (...args) => {
    out += `{"t":"log","level":"${level}","message":${q(args.map((v) => typeof v === "string" ? v : String(v)).join(" "))},"ms":${Date.now()}}\n`;
  };
}
export const buffered = {
  async fetch(request, env, ctx) {
    const user = (await import(MAIN)).default;
    const r = await user.fetch(request, env, ctx);
    const headers = {};
    r.headers.forEach((v, k) => { headers[k] = v; });
    out += `{"t":"response","status":${r.status},"headers":${q(headers)},"body":${q(await r.text())},"bodyEncoding":"utf8"}\n`;
    return new Response(out);
  },
};
export default buffered;
