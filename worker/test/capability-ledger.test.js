// Capability calls in the ledger: recorded with their capability's name,
// counted per execution and capability, also under a key this isolate
// never registered.
import { test } from "node:test";
import assert from "node:assert/strict";
import { begin, arrive, countCall } from "../src/ledger.js";

test("capability calls are recorded with their name and counted per execution", async () => {
  const ledger = begin("exec-cap");
  ledger.confirm();
  const record = await arrive("exec-cap", "GET", "/api/items/1", "inventory");
  record.status = 200;
  assert.deepEqual([countCall("exec-cap", "inventory"), countCall("exec-cap", "inventory"), countCall("exec-cap", "other")], [1, 2, 1]);
  assert.deepEqual(ledger.take(), [{ method: "GET", url: "/api/items/1", capability: "inventory", status: 200 }]);
  // A new execution under the same key (a warm isolate) counts afresh.
  const again = begin("exec-cap");
  assert.equal(countCall("exec-cap", "inventory"), 1);
  again.take();
  assert.equal(await arrive("exec-cap", "GET", "/api/x", "inventory"), null, "a call after its execution ended");
});

test("calls under a key never registered here are still counted", () => {
  assert.deepEqual([1, 2, 3].map(() => countCall("stray-key", "inventory")), [1, 2, 3]);
});
