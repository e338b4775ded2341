// The Capability entrypoint answers fetch and nothing else: any other
// method on its prototype chain (below WorkerEntrypoint) is callable by the
// guest over RPC on its stub, so a helper there, such as one returning the
// configured credentials, would be the guest's for the asking.
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
const { WorkerEntrypoint } = await import("cloudflare:workers");
const { Capability } = await import("../src/capability.js");
const { begin } = await import("../src/ledger.js");

// callable lists the functions reachable by name on a Capability: on its
// prototypes above WorkerEntrypoint's, and on an instance itself.
function callable(instance) {
  const names = new Set();
  for (let p = Object.getPrototypeOf(instance); p && p !== WorkerEntrypoint.prototype; p = Object.getPrototypeOf(p)) {
    for (const n of Reflect.ownKeys(p)) {
      if (n !== "constructor" && typeof Object.getOwnPropertyDescriptor(p, n).value === "function") names.add(String(n));
      const d = Object.getOwnPropertyDescriptor(p, n);
      if (d.get || d.set) names.add(String(n)); // an accessor is reachable over RPC too
    }
  }
  for (const n of Reflect.ownKeys(instance)) {
    if (typeof instance[n] === "function") names.add(String(n));
  }
  return [...names].sort();
}

const props = {
  key: "exec-rpc", name: "inventory", url: "https://svc.example/api/", methods: ["GET"], maxCalls: 5, timeoutMs: 1000,
  headers: { authorization: "Bearer s3cret-token-value" }, mask: ["s3cret-token-value"],
};

test("the Capability entrypoint exposes fetch and nothing else", () => {
  const network = { fetch: async () => new Response("") };
  assert.deepEqual(callable(new Capability({ props }, { CAPABILITY_NETWORK: network })), ["fetch"]);
});

test("fetch still adds the headers and masks the answer", async () => {
  const ledger = begin("exec-rpc");
  ledger.confirm();
  let sent;
  const network = {
    fetch: async (r) => {
      sent = r;
      return new Response("echo " + r.headers.get("authorization"), { headers: { "x-echo": r.headers.get("authorization") } });
    },
  };
  const cap = new Capability({ props }, { CAPABILITY_NETWORK: network });
  const res = await cap.fetch(new Request("https://svc.example/api/items/1", { headers: { "accept-encoding": "zstd" } }));
  assert.equal(sent.url, "https://svc.example/api/items/1");
  assert.equal(sent.headers.get("authorization"), "Bearer s3cret-token-value");
  assert.equal(sent.headers.get("accept-encoding"), null);
  const body = await res.text();
  assert.ok(!body.includes("s3cret") && !res.headers.get("x-echo").includes("s3cret"), `answer ${body} ${res.headers.get("x-echo")} shows the secret`);
  ledger.take();
});
