// The Tail entrypoint's reports and the waits for them: a fresh isolate's
// report is its execution's whenever it comes; a reused isolate's counts
// for an execution only if its invocation started since the execution did,
// so an earlier execution's late report is never taken for a later one.
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
const { Tail, awaitOutcome, reportsHeld } = await import("../src/tail.js");

// tail delivers events to the Tail of the isolate key names, as the runtime does.
const tail = (key, events) => new Tail({ props: { id: key } }, {}).tail(events);

test("a fresh isolate's report is taken whether it comes before or during the wait", async () => {
  tail("exec-1", [{ outcome: "exceededCpu", eventTimestamp: 5 }]);
  assert.equal(await awaitOutcome("exec-1"), "exceededCpu");
  const waiting = awaitOutcome("exec-2", 0, 2000);
  tail("exec-2", [{ outcome: "exceededMemory", eventTimestamp: null }]);
  assert.equal(await waiting, "exceededMemory");
  assert.equal(await awaitOutcome("exec-3", 0, 20), undefined, "no tail came");
});

test("a reused isolate's report counts only for the execution running when its invocation started", async () => {
  const key = "relay-a/k1#0";
  const started = Date.now();
  // The earlier execution in the same isolate, reported late.
  tail(key, [{ outcome: "exceededCpu", eventTimestamp: started - 50 }]);
  assert.equal(await awaitOutcome(key, started, 30), undefined, "an earlier execution's report");
  // One without a time cannot be placed: never taken for a reused isolate.
  tail(key, [{ outcome: "exceededMemory", eventTimestamp: null }, { outcome: "exceededMemory" }, { outcome: "exceededCpu", eventTimestamp: "soon" }]);
  assert.equal(await awaitOutcome(key, started, 30), undefined, "a report without a time");
  const waiting = awaitOutcome(key, started, 2000);
  tail(key, [{ outcome: "exceededMemory", eventTimestamp: started - 1 }]);
  tail(key, [{ outcome: "exceededCpu", eventTimestamp: started + 3 }]);
  assert.equal(await waiting, "exceededCpu");
  // Kept reports are the latest of the key, then none: the ones that
  // could not count are dropped after a while, not taken.
  tail(key, [{ outcome: "exceededMemory", eventTimestamp: started + 10 }]);
  assert.equal(await awaitOutcome(key, started + 10, 30), "exceededMemory");
});

test("two reused isolates' reports stay apart, and a key's kept reports are bounded", async () => {
  const started = Date.now();
  const waitA = awaitOutcome("iso-a", started, 2000);
  const waitB = awaitOutcome("iso-b", started, 2000);
  tail("iso-b", [{ outcome: "exceededMemory", eventTimestamp: started + 1 }]);
  tail("iso-a", [{ outcome: "exceededCpu", eventTimestamp: started + 1 }]);
  assert.deepEqual(await Promise.all([waitA, waitB]), ["exceededCpu", "exceededMemory"]);
  const before = reportsHeld().held;
  for (let i = 0; i < 100; i++) tail("iso-c", [{ outcome: "ok", eventTimestamp: started + i }]);
  assert.ok(reportsHeld().held - before <= 8, `${reportsHeld().held - before} reports kept for one key`);
  assert.equal(await awaitOutcome("iso-c", started + 99, 30), "ok");
});

test("events that are not reports are ignored", async () => {
  tail("exec-odd", [null, {}, { outcome: 7 }, { outcome: { toString: () => "exceededCpu" } }]);
  tail("exec-odd", undefined);
  assert.equal(await awaitOutcome("exec-odd", 0, 20), undefined);
});
