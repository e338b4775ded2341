// Reuse mode's warm isolates: one execution per isolate at a time.
import { test } from "node:test";
import assert from "node:assert/strict";
import { acquire, busyCount, MAX_WARM } from "../src/warm.js";

test("concurrent executions of one key get distinct warm isolates, then wait", async () => {
  const held = [];
  for (let i = 0; i < MAX_WARM; i++) held.push(await acquire("k"));
  assert.deepEqual(held.map((h) => h.id), ["k", "k#1", "k#2", "k#3"].slice(0, MAX_WARM));
  assert.equal(busyCount("k"), MAX_WARM);

  let next = null;
  const waiting = acquire("k").then((h) => {
    next = h;
    return h;
  });
  await new Promise((resolve) => setImmediate(resolve)); // every promise that can settle has
  assert.equal(next, null, "an execution took a busy isolate");
  held[2].release();
  held[2].release(); // a second release changes nothing
  assert.equal((await waiting).id, held[2].id);
  assert.equal(busyCount("k"), MAX_WARM);
  for (const h of [held[0], held[1], held[3], next]) h.release();
  assert.equal(busyCount("k"), 0);
  // Idle again: the first name is handed out first, so one caller at a time
  // always meets the same warm isolate.
  const again = await acquire("k");
  assert.equal(again.id, "k");
  again.release();
});

test("a waiting execution whose caller goes away gives up its place", async () => {
  const held = [];
  for (let i = 0; i < MAX_WARM; i++) held.push(await acquire("gone"));
  const controller = new AbortController();
  const waiting = acquire("gone", controller.signal);
  const later = acquire("gone");
  controller.abort(new Error("caller left"));
  await assert.rejects(waiting, /caller left/);
  held[0].release();
  assert.equal((await later).id, "gone");
  for (const h of held.slice(1)) h.release();
  (await later).release();
  assert.equal(busyCount("gone"), 0);
});

test("keys do not share warm isolates", async () => {
  const a = await acquire("key-a");
  const b = await acquire("key-b");
  assert.equal(a.id, "key-a");
  assert.equal(b.id, "key-b");
  a.release();
  b.release();
});
