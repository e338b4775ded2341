// The Capability entrypoint's fetch, with a stand-in network: which of the
// guest's headers reach the service, which bodies are refused for their
// _method, and what of the answer the guest gets (status text masked, a
// long answer cut).
import { test } from "node:test";
import assert from "node:assert/strict";
import { register } from "node:module";
import RULES from "../src/capability-rules.json" with { type: "json" };
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
const { Capability, neverForward } = await import("../src/capability.js");
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

test("the default list forwards no header a call must never forward, and the groups catch every spelling", () => {
  for (const h of RULES.forwardHeaders) assert.equal(neverForward(h), false, h);
  for (const g of RULES.neverForward) {
    for (const n of g.names ?? []) assert.ok(neverForward(n), n);
    for (const p of g.prefixes ?? []) assert.ok(neverForward(p + "x"), p);
  }
  for (const h of ["x_http_method_override", "x_original_url", "x_forwarded_for", "x-original-uri", "x-ms-http-method", "content_type", "x-forwarded-for", "x-original-host"]) {
    assert.ok(neverForward(h), h);
  }
});

// Headers services take from the proxy in front of them, in the spellings
// that reach them: underscores (CGI, PHP, nginx, WSGI read them as "-"),
// other names for the same override, any case.
const hostile = ["X_HTTP_METHOD_OVERRIDE", "X-HTTP-Method-Override", "x_http_method", "X_Original_URL", "X-Original-URI", "X-Rewrite-URL",
  "X_Forwarded_For", "X-Forwarded-For", "Forwarded", "X_Real_IP", "True-Client-IP", "Accept-Encoding", "Range", "If-Range",
  "X-Envoy-Original-Path", "Content_Type", "Proxy-Authorization", "Cookie", "X-Custom", "Authorization"];

test("only the headers on the list reach the service, whatever the guest's spelling", async () => {
  const headers = Object.fromEntries(hostile.map((h) => [h, "DELETE /admin 10.0.0.1"]));
  const { sent } = await call(new Request("https://svc.example/api/x", { headers: { ...headers, Accept: "application/json", "If-None-Match": '"e1"' } }));
  assert.deepEqual([...sent.headers.keys()].sort(), ["accept", "authorization", "if-none-match"]);
  assert.equal(sent.headers.get("authorization"), "Bearer " + SECRET, "the configured header, not the guest's");
  const custom = await call(new Request("https://svc.example/api/x", { headers: { "X-Custom": "1", "X_Forwarded_For": "1", Accept: "x" } }), undefined,
    { forwardHeaders: ["x-custom", "x_forwarded_for", "x-forwarded-for"] });
  assert.deepEqual([...custom.sent.headers.keys()].sort(), ["authorization", "x-custom"], "a list that reached the shim with a forbidden name");
});

test("a form body with a _method past the methods is refused, recorded denied; other bodies pass", async () => {
  const refused = [
    ["_method=DELETE", "application/x-www-form-urlencoded"],
    ["a=1&%5Fmethod=put", "application/x-www-form-urlencoded; charset=utf-8"],
    ["_method=PATCH", null],
    ['--b\r\nContent-Disposition: form-data; name="_method"\r\n\r\nDELETE\r\n--b--', "multipart/form-data; boundary=b"],
    ["x".repeat(RULES.maxFormBytes + 1), "application/x-www-form-urlencoded"],
  ];
  for (const [body, type] of refused) {
    const init = { method: "POST", body, headers: type === null ? {} : { "content-type": type } };
    const request = new Request("https://svc.example/api/orders", init);
    if (type === null) request.headers.delete("content-type"); // a string body gets text/plain
    const { err, sent, records } = await call(request);
    assert.match(err?.message ?? "", /^capability inventory: refused: /, `${type}: ${body.slice(0, 40)}`);
    assert.equal(sent, null, "nothing was sent");
    assert.equal(records.length, 1);
    assert.equal(records[0].denied, true);
  }
  for (const [body, type] of [["_method=POST&qty=2", "application/x-www-form-urlencoded"], ['{"_method":"DELETE"}', "application/json"], ["_method=DELETE", "text/plain"]]) {
    const { err, sent } = await call(new Request("https://svc.example/api/orders", { method: "POST", body, headers: { "content-type": type } }));
    assert.equal(err, undefined, `${type}: ${err?.message}`);
    assert.equal(await sent.text(), body, "the body as the guest sent it");
  }
  const q = await call(new Request("https://svc.example/api/orders?_method=DELETE"));
  assert.match(q.err?.message ?? "", /refused: _method "DELETE" is not an allowed method/);
});

test("the answer's status text is masked, and a long answer is cut", async () => {
  const { res } = await call(new Request("https://svc.example/api/x"), () => new Response("ok", { status: 200, statusText: "OK Bearer " + SECRET }));
  assert.equal(res.statusText, `OK ${CONTRACT.mask}`);
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

test("a traced execution's call goes out with a traceparent of its trace, over the guest's, and its record reports the span", async () => {
  const trace = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
  const ledger = begin(props.key, trace);
  ledger.confirm();
  let sent = null;
  const network = { fetch: async (r) => (sent = r, new Response("ok")) };
  const guest = new Request("https://svc.example/api/items", { headers: { traceparent: "00-" + "1".repeat(32) + "-" + "2".repeat(16) + "-01", tracestate: "a=b" } });
  const before = Date.now();
  await new Capability({ props: { ...props, forwardHeaders: ["traceparent", "tracestate"] } }, { CAPABILITY_NETWORK: network }).fetch(guest);
  const [record] = ledger.take();
  const m = /^00-4bf92f3577b34da6a3ce929d0e0e4736-([0-9a-f]{16})-01$/.exec(sent.headers.get("traceparent"));
  assert.ok(m, `traceparent ${sent.headers.get("traceparent")} is not of the execution's trace`);
  assert.notEqual(m[1], "00f067aa0ba902b7", "the call's span is the runtime's, not one of its own");
  assert.equal(sent.headers.get("tracestate"), null);
  assert.equal(record.trace.spanId, m[1]);
  assert.ok(record.trace.start >= before && record.trace.ms >= 0, JSON.stringify(record.trace));
});

test("an execution not traced sends no traceparent of the gateway's and reports no span", async () => {
  const { sent, records } = await call(new Request("https://svc.example/api/items"));
  assert.equal(sent.headers.get("traceparent"), null);
  assert.equal(records[0].trace, undefined);
});
