// The Capability entrypoint's fetch, with a stand-in network: what of the
// answer the guest gets (status text masked, a long answer cut).
import { test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";

// cloudflare:workers exists only in the runtime: a stand-in base class.
register("data:text/javascript," + encodeURIComponent(`
export async function resolve(specifier, context, next) {
  if (specifier === "cloudflare:workers") {
    return { shortCircuit: true, url: "data:text/javascript," + encodeURIComponent(
      "export class WorkerEntrypoint { constructor(ctx, env) { this.ctx = ctx; this.env = env; } }") };
  }
  return next(specifier, context);
}`));
const { Capability } = await import("../src/capability.js");
const { begin } = await import("../src/ledger.js");

const SECRET = "s3cret-token-value";
const props = {
  key: "exec-cap", name: "inventory", url: "https://svc.example/api/", methods: ["GET", "POST"], maxCalls: 100, timeoutMs: 1000,
  headers: { authorization: "Bearer " + SECRET }, mask: [SECRET],
};

// call makes one call through a Capability whose network records the
// request it sends and answers with answer(request).
async function call(request, answer = () => new Response("ok"), more = {}) {
  const ledger = begin(props.key);
  ledger.confirm();
  let sent = null;
  const network = { fetch: async (r) => (sent = r, answer(r)) };
  try {
    const res = await new Capability({ props: { ...props, ...more } }, { CAPABILITY_NETWORK: network }).fetch(request);
    return { res, sent, records: ledger.take() };
  } catch (err) {
    return { err, sent, records: ledger.take() };
  }
}

test("the answer's status text is masked, and a long answer is cut", async () => {
  const { res } = await call(new Request("https://svc.example/api/x"), () => new Response("ok", { status: 200, statusText: "OK Bearer " + SECRET }));
  assert.equal(res.statusText, "OK [REDACTED]");
  const big = (length) => () => new Response(new ReadableStream({
    start(c) {
      c.enqueue(new TextEncoder().encode("x".repeat(length)));
      c.close();
    },
  }), { headers: length % 2 ? {} : { "content-length": String(length) } });
  const cut = await call(new Request("https://svc.example/api/x"), big(101), { maxAnswerBytes: 100 });
  await assert.rejects(cut.res.text(), /the service's answer was cut: it is longer than 100 bytes/);
  const refused = await call(new Request("https://svc.example/api/x"), big(200), { maxAnswerBytes: 100 });
  assert.match(refused.err?.message ?? "", /the service's answer was cut: it is longer than 100 bytes/);
  const whole = await call(new Request("https://svc.example/api/x"), big(100), { maxAnswerBytes: 100 });
  assert.equal((await whole.res.text()).length, 100);
});
