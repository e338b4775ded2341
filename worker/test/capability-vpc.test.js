// A capability reached through a Workers VPC service: the Capability
// entrypoint's calls go through the shim's binding to it (VPC_<name>), with
// the same checks, headers, masking and records as any call; never through
// the capability network or the shim's own fetch, and not at all when the
// binding is missing or only looks like it.
import { test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";
import CONTRACT from "../src/contract.json" with { type: "json" };

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

const SECRET = "vpc-s3cret-4Qz";
const props = {
  key: "exec-vpc", name: "billing", url: "http://10.0.3.7:9000/api/", methods: ["GET", "POST"], maxCalls: 2, timeoutMs: 1000,
  headers: { authorization: "Bearer " + SECRET }, mask: [SECRET], vpc: true,
};

// recorder is a fetcher that records what it was sent and echoes the
// credential back.
function recorder() {
  const sent = [];
  return {
    sent,
    fetch: async (r) => {
      sent.push(r);
      return new Response(`${r.method} ${new URL(r.url).pathname} ${r.headers.get("authorization")}`, { headers: { "x-echo": r.headers.get("authorization") } });
    },
  };
}

// call makes one call of a Capability with env and props (more over them).
async function call(env, request, more = {}) {
  const ledger = begin(props.key);
  ledger.confirm();
  try {
    const res = await new Capability({ props: { ...props, ...more } }, env).fetch(request);
    return { res, records: ledger.take() };
  } catch (err) {
    return { err, records: ledger.take() };
  }
}

test("the prefix is contract.json's, and the binding is the prefix and the capability's name", () => {
  assert.equal(CONTRACT.vpcBindingPrefix, "VPC_");
});

test("a VPC capability's call goes through its binding only, with the configured header, its answer masked", async () => {
  const vpc = recorder();
  const network = recorder();
  let globalCalls = 0;
  const saved = globalThis.fetch;
  globalThis.fetch = async () => (globalCalls++, new Response("global"));
  try {
    const { res, records, err } = await call({ VPC_billing: vpc, CAPABILITY_NETWORK: network }, new Request("http://10.0.3.7:9000/api/invoices/42"));
    assert.equal(err, undefined);
    assert.equal(await res.text(), `GET /api/invoices/42 ${CONTRACT.mask}`);
    assert.equal(res.headers.get("x-echo"), CONTRACT.mask);
    assert.equal(vpc.sent.length, 1);
    assert.equal(vpc.sent[0].url, "http://10.0.3.7:9000/api/invoices/42", "the capability's url, which names the host the VPC service is asked for");
    assert.equal(vpc.sent[0].headers.get("authorization"), "Bearer " + SECRET);
    assert.equal(network.sent.length, 0, "the capability network is not used");
    assert.equal(globalCalls, 0, "the shim's own fetch is not used");
    assert.deepEqual(records.map((r) => [r.method, r.capability, r.status]), [["GET", "billing", 200]]);
  } finally {
    globalThis.fetch = saved;
  }
});

test("the same checks hold through the binding: a method not allowed, a path outside the base, the call cap", async () => {
  const vpc = recorder();
  const env = { VPC_billing: vpc };
  for (const request of [
    new Request("http://10.0.3.7:9000/api/x", { method: "DELETE" }),
    new Request("http://10.0.3.7:9000/admin/x"),
    new Request("http://10.0.3.7:9000/api/%2e%2e/admin"),
  ]) {
    const { err, records } = await call(env, request);
    assert.match(String(err?.message), /^capability billing: refused: /, request.url);
    assert.equal(records[0]?.denied, true);
  }
  assert.equal(vpc.sent.length, 0);
  const ledger = begin(props.key);
  ledger.confirm();
  const outcomes = [];
  for (let i = 0; i < 3; i++) {
    try {
      await (await new Capability({ props }, env).fetch(new Request("http://10.0.3.7:9000/api/x"))).text();
      outcomes.push("ok");
    } catch (err) {
      outcomes.push(err.message);
    }
  }
  ledger.take();
  assert.deepEqual(outcomes.slice(0, 2), ["ok", "ok"]);
  assert.match(outcomes[2], /more than 2 calls in one execution/);
  assert.equal(vpc.sent.length, 2);
});

test("without its binding a VPC capability's call fails, going nowhere else, in every shape of a missing binding", async () => {
  const inherited = Object.create({ VPC_billing: recorder() });
  const envs = {
    "no binding": {},
    "another capability's": { VPC_inventory: recorder() },
    "upper case name": { VPC_BILLING: recorder() },
    "lower case prefix": { vpc_billing: recorder() },
    "not a fetcher": { VPC_billing: "0199295b-b3ac-7760-8246-bca40877b3e9" },
    "inherited, not own": inherited,
  };
  for (const [name, env] of Object.entries(envs)) {
    const network = recorder();
    const saved = globalThis.fetch;
    let globalCalls = 0;
    globalThis.fetch = async () => (globalCalls++, new Response("global"));
    try {
      const { err, records } = await call({ ...env, CAPABILITY_NETWORK: network }, new Request("http://10.0.3.7:9000/api/x", { method: "POST", body: "a=1", headers: { "content-type": "text/plain" } }));
      assert.equal(String(err?.message), "capability billing: call failed: the shim has no binding VPC_billing to the capability's VPC service (deploy the shim again: gateway deploy)", name);
      assert.equal(network.sent.length + globalCalls, 0, name);
      assert.deepEqual(records.map((r) => [r.capability, r.status, r.denied]), [["billing", undefined, undefined]], name);
      for (const v of Object.values(env)) assert.equal(v?.sent?.length ?? 0, 0, name);
    } finally {
      globalThis.fetch = saved;
    }
  }
  assert.equal(Object.getPrototypeOf(inherited).VPC_billing.sent.length, 0);
});

test("a capability not marked vpc never uses a VPC binding of its name", async () => {
  const vpc = recorder();
  const network = recorder();
  const { err } = await call({ VPC_billing: vpc, CAPABILITY_NETWORK: network }, new Request("http://10.0.3.7:9000/api/x"), { vpc: false });
  assert.equal(err, undefined);
  assert.equal(vpc.sent.length, 0);
  assert.equal(network.sent.length, 1);
});
